//! Names of actions and outcomes, the decision log line and the tag's history record.

use tracing::info;

use crate::events::Incident;
use crate::guard::{self, Action, Decision, Outcome};
use crate::ports::HistoryRecord;

use super::Now;

/// The outcome's kind, as in logs, history and JSON output (`restored`, `failed`, ...).
pub fn outcome_name(o: &Outcome) -> String {
    o.name().to_string()
}

/// The action's kind, as in logs, history and JSON output (`restore`, `follow`, ...).
pub fn action_name(a: &Action) -> String {
    a.name().to_string()
}

pub(crate) fn log_decision(i: &Incident, d: &Decision, outcome: Option<&Outcome>) {
    info!(
        event_id = %i.event_id,
        repository = %i.repo,
        tag = %crate::text::clean(&d.tag, 128),
        action = %action_name(&d.action),
        outcome = %outcome.map_or("planned".to_string(), outcome_name),
        why = %d.why,
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
        Outcome::Refused { why } => why.clone(),
        Outcome::Failed { detail, .. } => crate::text::clean(detail, 500),
        _ => d.why.clone(),
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
