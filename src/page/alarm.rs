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
    if d.action == Action::RestoreKeep {
        return keep_alive(d, outcome, alarm);
    }
    let w = fixed(d, outcome, resumed).or_else(|| problem(d, outcome))?;
    let moved_to = match (&d.cause, w.with_new_digest) {
        (Cause::Moved { to }, true) => Some(to.clone()),
        _ => None,
    };
    Some(alarm(
        w.action, w.severity, w.headline, w.did, w.todo, moved_to,
    ))
}

/// What an alarm says, before the facts every alarm carries are added.
struct Words {
    action: &'static str,
    severity: Severity,
    headline: &'static str,
    did: String,
    todo: Option<String>,
    /// Whether the digest the tag moved to is shown.
    with_new_digest: bool,
}

/// The words for a change the guard put right or kept: restored, reverted, followed,
/// released, coming back from archive.
fn fixed(d: &Decision, outcome: &Outcome, resumed: bool) -> Option<Words> {
    let sev = d.entry.severity;
    let w = match outcome {
        Outcome::Restored | Outcome::AlreadyInPlace
            if matches!(outcome, Outcome::Restored) || resumed =>
        {
            let (word, head) = match (&d.action, &d.cause) {
                (Action::Revert, _) => ("reverted", "moved; reverted"),
                (_, Cause::Expired { .. }) => ("restored", "expired by lifecycle; restored"),
                (_, Cause::RepositoryDeleted) => ("restored", "repository deleted; restored"),
                _ => ("restored", "deleted; restored"),
            };
            let did = format!("put the tag back on the pinned digest with PutImage ({word}).");
            Words { action: word, severity: sev, headline: head, did, todo: None, with_new_digest: true }
        }
        Outcome::Followed => Words {
            action: "followed",
            severity: Severity::Low,
            headline: "moved; pin followed",
            did: format!("kept the move and pinned the new digest ({}); the old pin is in the tag's history, and its image stays in ECR (the guard deletes no image).", d.why),
            todo: None,
            with_new_digest: true,
        },
        Outcome::Released => Words {
            action: "released",
            severity: Severity::Low,
            headline: "deleted by an allowed principal",
            did: "did not put the tag back; released the pin (it is in the tag's history). The guard deleted no image.".into(),
            todo: Some("nothing, if the delete was intended. To protect the tag again, push it: the guard pins it.".into()),
            with_new_digest: false,
        },
        Outcome::Unarchiving => Words {
            action: "unarchive",
            severity: sev,
            headline: "archived; being brought back",
            did: "asked ECR to bring the image back to standard storage (UpdateImageStorageClass). It takes up to 20 minutes; until then it cannot be pulled.".into(),
            todo: Some("if a launch cannot wait, push the image again from your build (same digest). Keep lifecycle transition rules off protected images: `ecr-tag-guard lifecycle check`.".into()),
            with_new_digest: false,
        },
        _ => return None,
    };
    Some(w)
}

/// The words for what is left for a person: an alert, a refusal, a failure.
fn problem(d: &Decision, outcome: &Outcome) -> Option<Words> {
    let sev = d.entry.severity;
    let w = match outcome {
        Outcome::Alerted => Words {
            action: "alert",
            severity: sev,
            headline: if matches!(d.cause, Cause::Moved { .. }) {
                "moved; not reverted"
            } else {
                "removed; not restored"
            },
            did: format!("changed nothing in ECR: {}.", d.why),
            todo: Some("check the tag and put it right by hand if needed.".into()),
            with_new_digest: true,
        },
        Outcome::Refused { why } => Words {
            action: "refused",
            severity: sev.max(Severity::High),
            headline: "NOT restored (refused)",
            did: format!("refused to push: {why}."),
            todo: Some(
                "push the right image to the tag by hand, then re-pin it in the registry.".into(),
            ),
            with_new_digest: true,
        },
        Outcome::Untrusted { why } => Words {
            action: "untrusted_pin",
            severity: sev.max(Severity::High),
            headline: "NOT restored (untrusted pin)",
            did: format!("changed nothing in ECR: {why}. The guard pushes only an image it has seen under the tag itself."),
            todo: Some(
                "check which image the tag should be on. If the item was written or edited by hand, the tag is not where it says: push the right image to the tag (the guard seals what it sees there), or run `ecr-tag-guard protect REPO:TAG --force` once the tag is right. If nobody edited the item, treat it as tampering: see who wrote the registry table (CloudTrail, DynamoDB data events)."
                    .into(),
            ),
            with_new_digest: true,
        },
        Outcome::Failed { failure, detail } => Words {
            action: "failed",
            severity: sev.max(Severity::High),
            headline: "NOT restored (failed)",
            did: format!(
                "tried to put the tag back; ECR refused: {}.",
                crate::text::clean(detail, 300)
            ),
            todo: Some(failure.advice().into()),
            with_new_digest: true,
        },
        _ => return None,
    };
    Some(w)
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
        Outcome::Refused { why } | Outcome::Untrusted { why } => {
            format!("did not put the keep-alive tag back: {why}.")
        }
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
    if let Outcome::Untrusted { .. } = outcome {
        // The pin itself is in doubt: that is the news, not the keep-alive tag.
        let todo = "check which image the tag should be on and who wrote its registry item; run `ecr-tag-guard protect REPO:TAG --force` once the tag is right.";
        let severity = d.entry.severity.max(Severity::High);
        return Some(alarm(
            "untrusted_pin",
            severity,
            &head,
            did,
            Some(todo.into()),
            None,
        ));
    }
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
