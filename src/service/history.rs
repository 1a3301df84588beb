//! The decision log line and the tag's history record.

use tracing::info;

use crate::events::Incident;
use crate::guard::{self, Action, Decision, Outcome};
use crate::ports::HistoryRecord;

use super::Now;

pub(crate) fn log_decision(i: &Incident, d: &Decision, outcome: Option<&Outcome>) {
    info!(
        event_id = %i.event_id,
        repository = %i.repo,
        tag = %crate::text::clean(&d.tag, 128),
        action = d.action.name(),
        outcome = outcome.map_or("planned", Outcome::name),
        why = %crate::text::clean(&d.why, 1000),
        "decision"
    );
}

pub(crate) fn record(i: &Incident, d: &Decision, o: &Outcome, now: &Now) -> HistoryRecord {
    let new_digest = match &d.action {
        Action::Follow { to, .. } => Some(to.clone()),
        Action::Pin { digest, .. } => Some(digest.clone()),
        _ => match &d.cause {
            guard::Cause::Moved { to } => Some(to.clone()),
            _ => None,
        },
    };
    let detail = match o {
        Outcome::Refused { why } | Outcome::Untrusted { why } => crate::text::clean(why, 1000),
        Outcome::Failed { detail, .. } => crate::text::clean(detail, 500),
        _ => crate::text::clean(&d.why, 1000),
    };
    HistoryRecord {
        repo: i.repo.clone(),
        tag: d.tag.clone(),
        at: now.rfc3339.clone(),
        event_id: i.event_id.clone(),
        action: (&d.action).into(),
        outcome: o.into(),
        old_digest: d.entry.digest().map(String::from),
        new_digest,
        who: crate::text::clean(&guard::who(i, &d.cause), 300),
        detail,
    }
}
