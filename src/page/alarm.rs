//! The alarm: what on-call should hear of a decision and how it went, in words, from the pure
//! decisions. [`super::render`] turns it into the page.

use serde::Serialize;

use crate::guard::{Action, Cause, Decision, Outcome};
use crate::registry::Severity;

/// What to page about one decision; [`crate::page`] renders it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Alarm {
    /// One word for filters: restored, reverted, followed, released, refused, failed, alert.
    pub action: &'static str,
    /// Page severity.
    pub severity: Severity,
    /// The headline, e.g. `deleted; restored`.
    pub headline: String,
    /// What happened, in a sentence.
    pub happened: String,
    /// What the guard did.
    pub did: String,
    /// What a person should do, if anything.
    pub todo: Option<String>,
    /// The pinned digest before the event.
    pub old_digest: Option<String>,
    /// The digest involved now (moved to, pinned).
    pub new_digest: Option<String>,
}

/// Turns a decision and its outcome into a page, or `None` when nobody needs to hear of it.
/// `resumed` says the event is being retried after an attempt that may have acted already:
/// then a tag found in place is taken as put back by that attempt, and paged.
pub fn report(d: &Decision, outcome: &Outcome, resumed: bool) -> Option<Alarm> {
    let old = d.entry.digest().map(String::from);
    let happened = happened(&d.cause);
    let sev = d.entry.severity;
    let alarm = |action, severity, headline: &str, did: String, todo: Option<String>, new| Alarm {
        action,
        severity,
        headline: headline.to_string(),
        happened: happened.clone(),
        did,
        todo,
        old_digest: old.clone(),
        new_digest: new,
    };
    let moved_to = match &d.cause {
        Cause::Moved { to } => Some(to.clone()),
        _ => None,
    };
    if d.action == Action::RestoreKeep {
        return keep_alive(d, outcome, alarm);
    }
    match outcome {
        Outcome::Restored | Outcome::AlreadyInPlace
            if matches!(outcome, Outcome::Restored) || resumed =>
        {
            let (word, head) = match (&d.action, &d.cause) {
                (Action::Revert, _) => ("reverted", "moved; reverted"),
                (_, Cause::Expired { .. }) => ("restored", "expired by lifecycle; restored"),
                (_, Cause::RepositoryDeleted) => ("restored", "repository deleted; restored"),
                _ => ("restored", "deleted; restored"),
            };
            Some(alarm(
                word,
                sev,
                head,
                format!("put the tag back on the pinned digest with PutImage ({word})."),
                None,
                moved_to,
            ))
        }
        Outcome::Followed => Some(alarm(
            "followed",
            Severity::Low,
            "moved; pin followed",
            format!("kept the move and pinned the new digest ({}); the old pin is in the tag's history.", d.why),
            None,
            moved_to,
        )),
        Outcome::Released => Some(alarm(
            "released",
            Severity::Low,
            "deleted by an allowed principal",
            "did not put the tag back; released the pin (it is in the tag's history).".into(),
            Some("nothing, if the delete was intended. To protect the tag again, push it: the guard pins it.".into()),
            None,
        )),
        Outcome::Alerted => Some(alarm(
            "alert",
            sev,
            if matches!(d.cause, Cause::Moved { .. }) { "moved; not reverted" } else { "removed; not restored" },
            format!("changed nothing in ECR: {}.", d.why),
            Some("check the tag and put it right by hand if needed.".into()),
            moved_to,
        )),
        Outcome::Refused { why } => Some(alarm(
            "refused",
            sev.max(Severity::High),
            "NOT restored (refused)",
            format!("refused to push: {why}."),
            Some("push the right image to the tag by hand, then re-pin it in the registry.".into()),
            moved_to,
        )),
        Outcome::Failed { failure, detail } => Some(alarm(
            "failed",
            sev.max(Severity::High),
            "NOT restored (failed)",
            format!("tried to put the tag back; ECR refused: {}.", crate::text::clean(detail, 300)),
            Some(failure.advice().into()),
            moved_to,
        )),
        Outcome::Unarchiving => Some(alarm(
            "unarchive",
            sev,
            "archived; being brought back",
            "asked ECR to bring the image back to standard storage (UpdateImageStorageClass). It takes up to 20 minutes; until then it cannot be pulled.".into(),
            Some("if a launch cannot wait, push the image again from your build (same digest). Keep lifecycle transition rules off protected images: `ecr-tag-guard lifecycle check`.".into()),
            None,
        )),
        Outcome::Restored
        | Outcome::AlreadyInPlace
        | Outcome::Pinned
        | Outcome::Skipped
        | Outcome::Conflict => None,
    }
}

/// The alarm for a keep-alive tag put back (or not): the protected tag itself was not
/// touched, so it is worth a line, not a wake-up.
fn keep_alive(
    d: &Decision,
    outcome: &Outcome,
    alarm: impl Fn(&'static str, Severity, &str, String, Option<String>, Option<String>) -> Alarm,
) -> Option<Alarm> {
    let did = match outcome {
        Outcome::Restored => format!("put the keep-alive tag back on the pinned digest of {} (it keeps the image alive when the protected tag is deleted).", d.entry.tag),
        Outcome::Refused { why } => format!("did not put the keep-alive tag back: {why}."),
        Outcome::Failed { detail, .. } => format!("could not put the keep-alive tag back; ECR said: {}.", crate::text::clean(detail, 300)),
        _ => return None,
    };
    let what = match d.cause {
        Cause::Moved { .. } => "moved",
        _ => "deleted",
    };
    let done = if *outcome == Outcome::Restored {
        "restored"
    } else {
        "NOT restored"
    };
    let head = format!("keep-alive tag {what}; {done}");
    Some(alarm("keep_alive", Severity::Low, &head, did, None, None))
}

fn happened(cause: &Cause) -> String {
    match cause {
        Cause::Deleted { digest: Some(d) } => format!("the tag was deleted from {d}"),
        Cause::Deleted { digest: None } => "the tag was deleted".into(),
        Cause::Expired { digest, rule } => format!(
            "lifecycle policy rule {} expired image {digest}",
            rule.map_or("?".to_string(), |r| r.to_string())
        ),
        Cause::RepositoryDeleted => "the repository was deleted".into(),
        Cause::Moved { to } => format!("the tag was moved to {to}"),
        Cause::Pushed { digest } => format!("the tag was pushed to {digest}"),
        Cause::Archived { digest } => format!(
            "image {digest} was moved to archive storage (by a lifecycle transition rule or by hand); it cannot be pulled"
        ),
    }
}
