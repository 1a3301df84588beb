//! The narrow traits the guard and the commands need, one per file. [`crate::aws`] implements
//! them with the AWS SDK, [`crate::memory`] with an embedded in-memory world. Adapters
//! translate; they never decide.
//!
//! The guard's own: [`Registry`], [`Images`], [`Pager`], [`Ledger`], [`PinKey`], [`Trail`].
//! The commands' besides: [`Items`] (item administration), [`Policies`] (lifecycle
//! policies), [`Identity`] (the caller), and `audit`'s sources [`EventLookup`] and
//! [`LogArchive`].

mod identity;
mod images;
mod items;
mod ledger;
mod pager;
mod pin_key;
mod policies;
mod registry;
mod trail;

pub use crate::registry::history::{HistoryAction, HistoryOutcome, HistoryRecord};
pub use identity::Identity;
pub use images::{Images, Put, PutError};
pub use items::Items;
pub use ledger::{Claim, Ledger, CLAIM_LEASE_SECS, LEDGER_TTL_SECS};
pub use pager::Pager;
pub use pin_key::PinKey;
pub use policies::Policies;
pub use registry::Registry;
pub use trail::{EventLookup, LogArchive, NoTrail, Trail};

/// Everything a command works with: the table's items, lifecycle policies, the caller, ECR's
/// images and the pin key — one backend, AWS or the embedded world.
pub trait Console: Items + Policies + Identity + Images + PinKey {}

impl<T: Items + Policies + Identity + Images + PinKey> Console for T {}
