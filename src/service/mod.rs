//! The use cases: what the guard does with an event, on a schedule, for a registry stream,
//! over the ports. One job per file:
//!
//! * [`event`]: one event, read → claim → confirm against ECR now → act → page → record;
//! * [`act`]: carrying out one decision (restore, revert, follow, pin, release, keep-alive);
//! * [`reconcile`]: every item compared with ECR and put right, without an event;
//! * [`rules`]: pattern rules materialised into pins;
//! * [`registration`]: hand-written items pinned from the table's stream;
//! * [`history`]: the decision log line and the history record;
//! * `once`: the once-only ledger's answers, marking events handled, sending pages.
//!
//! The Lambda and every command run these, with the AWS adapters or the embedded world: the
//! service never knows which.

pub mod act;
mod callers;
pub mod event;
pub mod history;
mod once;
pub mod reconcile;
pub mod registration;
pub mod rules;
#[cfg(test)]
mod tests;

use serde::Serialize;

use crate::guard::{Decision, Outcome, Settings};

pub use event::Report;

/// The moment the handler runs, read once by the caller (the core never reads a clock).
#[derive(Clone, Debug)]
pub struct Now {
    /// Seconds since the epoch.
    pub epoch: i64,
    /// The same, RFC 3339.
    pub rfc3339: String,
}

impl Now {
    /// The system clock.
    pub fn system() -> Now {
        let t = time::OffsetDateTime::now_utc();
        Now {
            epoch: t.unix_timestamp(),
            rfc3339: t
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| t.unix_timestamp().to_string()),
        }
    }
}

/// The adapters and settings the use cases work with.
pub struct Handler<R, I, P, L> {
    /// The registry of protected tags.
    pub registry: R,
    /// ECR.
    pub images: I,
    /// SNS.
    pub pager: P,
    /// The once-only ledger.
    pub ledger: L,
    /// What is guarded and who the guard is.
    pub settings: Settings,
    /// Decide only: make no write call and no page.
    pub dry_run: bool,
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
