//! The use cases: what the guard does with an event, on a schedule, for a registry stream,
//! over the ports. One job per file:
//!
//! * [`event`]: one event, read → claim → confirm against ECR now → act → page → record;
//! * [`act`]: carrying out one decision (restore, revert, follow, pin, release, keep-alive);
//! * [`reconcile`]: every item compared with ECR and put right, without an event (its report
//!   in `reconcile_report`);
//! * [`rules`]: pattern rules materialised into pins;
//! * [`registration`]: hand-written items pinned from the table's stream;
//! * [`history`]: the decision log line and the history record;
//! * [`protect`]: the registry commands that change items (protect, unprotect, edit);
//! * [`restore`]: `restore REPO:TAG` by hand, on the Lambda's own steps;
//! * [`keep`]: the one way the guard takes its own tags off images (it deletes none);
//! * [`audit`]: CloudTrail history beside the registry and the guard's history;
//! * `once`: the once-only ledger's answers, marking events handled, sending pages;
//! * `paging`: a reconcile run's page budget, one page per repository and a summary.
//!
//! The Lambda and every command run these, with the AWS adapters or the embedded world: the
//! service never knows which.

pub mod act;
pub mod audit;
#[cfg(test)]
mod differential_tests;
pub mod event;
mod exactly_once;
pub mod history;
pub mod keep;
pub mod protect;
#[cfg(test)]
mod protect_tests;
pub mod reconcile;
pub mod registration;
pub mod restore;
pub mod rules;
pub mod status;
#[cfg(test)]
mod tests;
pub mod trust;
#[cfg(test)]
mod trust_tests;
mod tuning;

use serde::Serialize;

use crate::guard::{Decision, Outcome, Scope};
use crate::ports::CLAIM_LEASE_SECS;

pub use event::Report;
pub use tuning::{
    Tuning, DEFAULT_BUSY_WAIT_MS, DEFAULT_CALL_CONCURRENCY, DEFAULT_GRACE_SECS,
    DEFAULT_PAGES_PER_RUN, DEFAULT_RECONCILE_CONCURRENCY,
};

/// The moment the handler runs, read once by the caller (the core never reads a clock), and
/// how long what it starts may run.
#[derive(Clone, Debug)]
pub struct Now {
    /// Seconds since the epoch.
    pub epoch: i64,
    /// The same, RFC 3339.
    pub rfc3339: String,
    /// Until when (epoch seconds) a claim taken now protects the work: past the moment this
    /// attempt must have stopped, so no other attempt takes over an event it may still be
    /// acting on. See [`Now::until`].
    pub lease_until: i64,
}

impl Now {
    /// The system clock; claims last [`CLAIM_LEASE_SECS`] (a command has no deadline).
    pub fn system() -> Now {
        let t = time::OffsetDateTime::now_utc();
        Now {
            epoch: t.unix_timestamp(),
            rfc3339: t
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| t.unix_timestamp().to_string()),
            lease_until: t.unix_timestamp() + CLAIM_LEASE_SECS,
        }
    }

    /// The same moment for an attempt that is stopped at `deadline_ms` (epoch milliseconds:
    /// the Lambda invocation's deadline, which its timeout sets): its claims last until
    /// [`LEASE_MARGIN_SECS`] after it, so the lease follows the function's timeout.
    pub fn until(self, deadline_ms: u64) -> Now {
        let deadline = i64::try_from(deadline_ms / 1000).unwrap_or(i64::MAX - LEASE_MARGIN_SECS);
        Now {
            lease_until: deadline.max(self.epoch) + LEASE_MARGIN_SECS,
            ..self
        }
    }
}

/// How long a claim outlives the attempt's deadline: clock skew between invocations, and the
/// last call in flight when the deadline struck.
pub const LEASE_MARGIN_SECS: i64 = 60;

/// The adapters and settings the use cases work with.
pub struct Handler<R, I, P, L, K> {
    /// The registry of protected tags.
    pub registry: R,
    /// ECR.
    pub images: I,
    /// SNS.
    pub pager: P,
    /// The once-only ledger.
    pub ledger: L,
    /// The key that seals pins (KMS).
    pub pin_key: K,
    /// What is guarded and who the guard is.
    pub scope: Scope,
    /// How the service paces itself.
    pub tuning: Tuning,
    /// Decide only: make no write call and no page.
    pub dry_run: bool,
}

/// Runs `futures` with at most `limit` in flight, keeping their order in the answers: every
/// fan-out over one repository's tags goes through here ([`Tuning::call_concurrency`]).
pub(crate) async fn bounded<F: std::future::Future>(
    limit: usize,
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    use futures::StreamExt;
    futures::stream::iter(futures)
        .buffered(limit.max(1))
        .collect()
        .await
}

/// One decision and how it went.
#[derive(Clone, Debug, Serialize)]
pub struct Handled {
    /// The decision.
    #[serde(flatten)]
    pub decision: Decision,
    /// How acting on it went (`None` in a dry run).
    pub outcome: Option<Outcome>,
}
