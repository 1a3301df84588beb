//! The decision log line and the tag's history record, of a decision and of a command.

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

/// Records a command in the tag's history; `digests` is the pin before and after.
pub async fn record_command<O: crate::ports::Console>(
    o: &O,
    repo: &crate::registry::RepoKey,
    tag: &str,
    (action, outcome): (crate::ports::HistoryAction, crate::ports::HistoryOutcome),
    (old, new): (Option<String>, Option<String>),
    detail: &str,
    now: &Now,
) -> Result<(), crate::error::CallError> {
    let who = o
        .caller()
        .await
        .map_or_else(|| "unknown caller".to_string(), |(_, arn)| arn);
    let r = HistoryRecord {
        repo: repo.clone(),
        tag: tag.to_string(),
        at: now.rfc3339.clone(),
        event_id: format!(
            "cli-{}-{}-{}",
            action.as_str(),
            now.epoch,
            tail(new.as_deref().or(old.as_deref()))
        ),
        action,
        outcome,
        old_digest: old,
        new_digest: new,
        who,
        detail: detail.to_string(),
    };
    o.add_history(&[r]).await
}

/// The last 12 characters of a digest, to tell records of one second apart.
fn tail(digest: Option<&str>) -> String {
    let chars: Vec<char> = digest.unwrap_or("none").chars().collect();
    chars[chars.len().saturating_sub(12)..].iter().collect()
}
