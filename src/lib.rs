//! ecr-tag-guard: per-tag deletion and move protection for Amazon ECR.
//!
//! The crate is laid out in floors; each only looks down:
//!
//! * [`events`] turns EventBridge / CloudTrail input into plain [`events::Incident`]s;
//! * [`registry`] is the critical-tag item model and its validation;
//! * [`guard`] is the pure core: incident + registry entries → decisions, outcomes → pages;
//! * [`ports`] are the narrow traits the handler needs; [`aws`] and [`memory`] implement them;
//! * [`handler`] runs one event through parse → look up → decide → act → page → record;
//! * [`lambda`] and [`cli`] are the two entry points that call the handler.

pub mod aws;
pub mod cli;
pub mod config;
pub mod error;
pub mod events;
pub mod guard;
pub mod handler;
pub mod lambda;
pub mod memory;
pub mod page;
pub mod ports;
pub mod reconcile;
pub mod registration;
pub mod registry;
pub mod rules;
pub mod text;
