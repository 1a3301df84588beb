//! Once-only records: claims of events, first sightings, pages kept for the next run.

use crate::error::CallError;
use crate::page::Page;

/// What the ledger knew of an event when it was claimed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Never seen: go ahead.
    Fresh,
    /// Handled and paged: a duplicate, do nothing.
    Done,
    /// An earlier attempt acted, but these pages did not go out: send them; act again only
    /// when `redo` says some action of that attempt failed too.
    PagesPending {
        /// The pages to send.
        pages: Vec<Page>,
        /// Whether to act again after sending them.
        redo: bool,
    },
    /// Another invocation holds the claim (or is sending the pending pages) and is still
    /// within its lease.
    Busy,
    /// An earlier attempt claimed it and stopped without finishing: go ahead, knowing that
    /// it may have acted already.
    Resumed,
}

/// Once-only records, keyed by event id, that expire after a while.
#[allow(async_fn_in_trait)]
pub trait Ledger {
    /// Claims the event at `now` (epoch seconds) until `lease_until`: a claim, or pages
    /// pending from an earlier attempt, are taken only when no other attempt holds them within
    /// its lease — so two deliveries never both act, nor both send the pending pages.
    async fn claim(&self, event_id: &str, now: i64, lease_until: i64) -> Result<Claim, CallError>;
    /// Marks the event handled; `pending` are pages still to send (empty: done), `redo` that
    /// some action must be tried again too.
    async fn finish(
        &self,
        event_id: &str,
        now: i64,
        pending: &[Page],
        redo: bool,
    ) -> Result<(), CallError>;
    /// Drops the claim so that a retry starts afresh.
    async fn release(&self, event_id: &str) -> Result<(), CallError>;
    /// When `key` was first noted (epoch seconds): `now` the first time, the first time's
    /// value after that, while the record lasts ([`LEDGER_TTL_SECS`]). Reconcile times its
    /// grace period with it.
    async fn first_seen(&self, key: &str, now: i64) -> Result<i64, CallError>;
    /// When each repository (`ACCOUNT/REGION/NAME`) was last reconciled (epoch seconds).
    async fn reconciled(&self) -> Result<Vec<(String, i64)>, CallError>;
    /// Notes that `repos` were reconciled at `at`.
    async fn mark_reconciled(&self, repos: &[String], at: i64) -> Result<(), CallError>;
    /// Notes (`held`) or clears that the repository (`ACCOUNT/REGION/NAME`) holds guard tags
    /// no pin needs (retired where nothing could carry them): reconcile visits every noted
    /// repository, items or not, until it has let go of them. Kept without expiry.
    async fn note_guard_tags(&self, repo: &str, held: bool) -> Result<(), CallError>;
    /// The repositories [`Ledger::note_guard_tags`] noted.
    async fn guard_tag_repositories(&self) -> Result<Vec<String>, CallError>;
    /// Keeps a reconcile page SNS did not take, under `key` (its repository, or the run's
    /// summary), with the once-only keys of the problems it carries, for the next run to send
    /// first. Kept without expiry; a page kept under the same key replaces the older one.
    async fn keep_unsent(
        &self,
        key: &str,
        page: &Page,
        problems: &[String],
    ) -> Result<(), CallError>;
    /// The pages [`Ledger::keep_unsent`] kept: key, page, problems.
    async fn unsent(&self) -> Result<Vec<(String, Page, Vec<String>)>, CallError>;
    /// Drops a kept page once it went out.
    async fn drop_unsent(&self, key: &str) -> Result<(), CallError>;
}

/// How long a claim protects an event being handled when the attempt has no deadline of its
/// own (a command): the Lambda derives its lease from the invocation's deadline instead
/// ([`crate::service::Now::until`]).
pub const CLAIM_LEASE_SECS: i64 = 360;

/// How long ledger records are kept (DynamoDB TTL): longer than EventBridge retries (24 h).
pub const LEDGER_TTL_SECS: i64 = 3 * 24 * 3600;
