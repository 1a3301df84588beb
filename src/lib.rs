//! ecr-tag-guard: per-tag deletion and move protection for Amazon ECR.
//!
//! The crate is laid out in floors; each only looks down:
//!
//! * [`events`] turns EventBridge / CloudTrail input into plain [`events::Incident`]s;
//! * [`registry`] is the critical-tag item model and its validation;
//! * [`guard`] is the pure core: incident + registry entries → decisions, outcomes → pages;
//! * [`audit`] is the pure part of `audit`: CloudTrail history split, filtered and reported;
//! * [`ports`] are the narrow traits the handler needs; [`aws`] and [`memory`] implement them;
//! * [`service`] holds the use cases: an event (parse → look up → decide → confirm → act →
//!   page → record), reconcile, pattern rules, registration from the table's stream, audit;
//! * [`wiring`] builds the SDK clients into the service, for
//! * [`lambda`] and [`cli`], the two entry points;
//! * below them all, [`text`] (cleaning what comes from outside), [`records`] (splitting a
//!   stream of JSON into records, for `replay` and `audit`) and [`files`] (the files, folders,
//!   standard input and gzip the commands are handed).

#![warn(missing_docs)]

pub mod audit;
pub mod aws;
#[cfg(feature = "cli")]
pub mod cli;
pub mod config;
pub mod error;
pub mod events;
pub mod files;
pub mod guard;
pub mod lambda;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod page;
pub mod ports;
pub mod records;
pub mod registry;
pub mod service;
pub mod text;
pub mod wiring;
