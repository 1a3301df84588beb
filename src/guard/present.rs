//! Read before you write: each decision that would write to ECR is checked against what ECR
//! holds *now* for its tag, read just before acting.
//!
//! Events arrive late, twice and out of order. A decision made from an event's snapshot alone
//! can undo a newer change (a delete handled after the next deploy rolls the deploy back) or
//! pin an older digest. So every write is confirmed against the present: when ECR's state has
//! moved on since the event, the decision is *superseded* — no write, no page — and the newer
//! change is left to its own event or to reconcile.
//!
//! | decision                         | ECR now                   | result                 |
//! |----------------------------------|---------------------------|------------------------|
//! | restore (a delete)               | tag missing               | restore                |
//! | restore                          | tag on its pin            | superseded: back already (a retry after a crash restores, so the page goes out) |
//! | restore, release, pin (a delete) | tag on another digest     | superseded: pushed since |
//! | revert / follow to `D`           | tag on `D`                | revert / follow        |
//! | revert / follow                  | on the pin, elsewhere, or gone | superseded        |
//! | pin a pushed `D` (first sight)   | tag on `D`                | pin                    |
//! | put a keep-alive tag back        | keep-alive tag on the pin | superseded             |
//! | seal a pin (pushed to it again)  | tag on the pin            | seal                   |
//! | seal a pin                       | anything else             | superseded             |
//! | page a removal from an older image | tag on its pin          | superseded             |
//! | anything that writes             | ECR could not say         | page instead (alert)   |

use std::collections::BTreeMap;

use super::{Action, Cause, Decision};
use crate::registry::Manifest;
use crate::text::short_digest;

/// What ECR holds now for one tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagNow {
    /// The tag sits on this digest.
    At(String),
    /// The repository has no such tag.
    Absent,
    /// The repository does not exist.
    RepositoryGone,
    /// ECR could not say (its failure code).
    Unreadable(String),
}

/// ECR's present answer for the tags a set of decisions touches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Present {
    repository_gone: bool,
    tags: BTreeMap<String, Result<Manifest, String>>,
    /// What a tag that was not read answers.
    unread: String,
}

impl Present {
    /// Builds it from a lookup of `tags` (the answers in the same order; `None` when the
    /// repository does not exist).
    pub fn from_lookup(tags: &[String], answer: Option<&[Result<Manifest, String>]>) -> Present {
        let Some(answer) = answer else {
            return Present {
                repository_gone: true,
                ..Present::default()
            };
        };
        Present {
            repository_gone: false,
            tags: tags.iter().cloned().zip(answer.iter().cloned()).collect(),
            unread: "not read".into(),
        }
    }

    /// ECR could not be read (`why`): every tag is unreadable, so nothing is written.
    pub fn unreadable(why: &str) -> Present {
        Present {
            unread: why.to_string(),
            ..Present::default()
        }
    }

    /// Where `tag` is now.
    pub fn tag(&self, tag: &str) -> TagNow {
        if self.repository_gone {
            return TagNow::RepositoryGone;
        }
        match self.tags.get(tag) {
            Some(Ok(m)) => TagNow::At(m.digest.clone()),
            Some(Err(code)) if code == "ImageNotFound" || code == "ImageTagDoesNotMatchDigest" => {
                TagNow::Absent
            }
            Some(Err(code)) => TagNow::Unreadable(code.clone()),
            None => TagNow::Unreadable(self.unread.clone()),
        }
    }

    /// The manifest ECR answered with for `tag`, when it sits on `digest`: what a follow or a
    /// first-sight pin captures without another read.
    pub fn manifest(&self, tag: &str, digest: &str) -> Option<&Manifest> {
        self.tags
            .get(tag)
            .and_then(|r| r.as_ref().ok())
            .filter(|m| m.digest == digest)
    }
}

/// True when carrying out `action` writes to ECR (or moves a pin to what ECR holds).
pub fn writes(action: &Action) -> bool {
    matches!(
        action,
        Action::Restore
            | Action::Revert
            | Action::Follow { .. }
            | Action::Pin { .. }
            | Action::Release
            | Action::RestoreKeep
            | Action::Seal
    )
}

/// True for a page about a tag removed from another image than its pin: when the tag sits
/// on its pin now, the removal was of an older image and there is nothing to say.
fn stale_removal(d: &Decision) -> bool {
    matches!(
        (&d.action, &d.cause, d.entry.digest()),
        (Action::Alert, super::Cause::Deleted { digest: Some(x) }, Some(pin)) if x != pin
    )
}

/// The tags to read before acting on `decisions`: the tag of each decision that writes (or
/// that reports a removal the present may have made moot), once.
pub fn tags_to_read(decisions: &[Decision]) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for d in decisions
        .iter()
        .filter(|d| writes(&d.action) || stale_removal(d))
    {
        if !tags.contains(&d.tag) {
            tags.push(d.tag.clone());
        }
    }
    tags
}

/// `d`, confirmed against ECR now: unchanged when the present still calls for it, else
/// [`Action::Superseded`] (or [`Action::Alert`] when ECR could not say). `resumed`: an
/// earlier attempt at this event may have acted already, so a restore found in place is
/// still carried out (it answers "already there") and paged.
pub fn confirm(d: Decision, present: &Present, resumed: bool) -> Decision {
    if stale_removal(&d) {
        return match (present.tag(&d.tag), d.entry.digest()) {
            (TagNow::At(x), Some(pin)) if x == pin => Decision {
                action: Action::Superseded,
                why: format!(
                    "superseded: the tag is on its pin {} now; the image it was removed from is an older one",
                    short_digest(pin)
                ),
                ..d
            },
            _ => d,
        };
    }
    if !writes(&d.action) {
        return d;
    }
    let now = present.tag(&d.tag);
    let pin = d.entry.digest().map(String::from);
    let on_pin = |x: &str| pin.as_deref() == Some(x);
    let verdict: Result<(), String> = match (&d.action, &now) {
        // A seal needs the guard's own sight of the tag on its pin; anything else: not now.
        (Action::Seal, TagNow::At(x)) if on_pin(x) => Ok(()),
        (Action::Seal, _) => Err("the tag is not on its pin now: nothing to seal".into()),
        (_, TagNow::Unreadable(code)) => {
            let why = format!(
                "ECR could not say where the tag is now ({code}): nothing changed, check it by hand"
            );
            return Decision {
                action: Action::Alert,
                why,
                ..d
            };
        }
        // A repository that is gone: a restore finds out and pages the failure.
        (Action::Restore, TagNow::RepositoryGone) => Ok(()),
        (_, TagNow::RepositoryGone) => Err("the repository does not exist now".into()),
        (Action::Restore, TagNow::Absent) => Ok(()),
        (Action::Restore, TagNow::At(x)) if on_pin(x) && resumed => Ok(()),
        (Action::Restore | Action::Release, TagNow::At(x)) if on_pin(x) => {
            Err("the tag is already back on its pin".into())
        }
        (Action::Release, TagNow::Absent) => Ok(()),
        (Action::Restore | Action::Release, TagNow::At(x)) => Err(format!(
            "the tag has been pushed since, to {}: that push decides",
            short_digest(x)
        )),
        (Action::Revert | Action::Follow { .. }, TagNow::At(x)) if Some(x) == moved_to(&d) => {
            Ok(())
        }
        (Action::Revert, TagNow::At(x)) if on_pin(x) && resumed => Ok(()),
        (Action::Revert | Action::Follow { .. }, TagNow::At(x)) if on_pin(x) => Err(format!(
            "the tag is on its pin {} now: nothing to revert or follow",
            short_digest(x)
        )),
        (Action::Revert | Action::Follow { .. }, TagNow::At(x)) => Err(format!(
            "the tag has moved again since, to {}: that push decides",
            short_digest(x)
        )),
        (Action::Revert | Action::Follow { .. }, TagNow::Absent) => {
            Err("the tag has been deleted since: that delete decides".into())
        }
        (Action::Pin { digest, .. }, TagNow::At(x)) if x == digest && is_push(&d.cause) => Ok(()),
        (Action::Pin { .. }, TagNow::At(x)) => Err(format!(
            "the tag is on {} now: the event that put it there decides",
            short_digest(x)
        )),
        (Action::Pin { .. }, TagNow::Absent) => {
            Err("the tag has been deleted since: that delete decides".into())
        }
        // `d.tag` is the keep-alive tag here.
        (Action::RestoreKeep, TagNow::At(x)) if on_pin(x) => {
            Err("the keep-alive tag is already on the pinned digest".into())
        }
        (Action::RestoreKeep, _) => Ok(()),
        _ => Ok(()),
    };
    match verdict {
        Ok(()) => with_manifest(d, present),
        Err(why) => Decision {
            action: Action::Superseded,
            why: format!("superseded: {why}"),
            ..d
        },
    }
}

/// A follow or a pin takes the manifest ECR just answered with when the event carried none.
fn with_manifest(mut d: Decision, present: &Present) -> Decision {
    if let Action::Follow {
        to: digest,
        manifest,
    }
    | Action::Pin {
        digest, manifest, ..
    } = &mut d.action
    {
        if manifest.as_ref().is_none_or(|m| !m.verify()) {
            *manifest = present.manifest(&d.tag, digest).cloned();
        }
    }
    d
}

fn moved_to(d: &Decision) -> Option<&String> {
    match (&d.cause, &d.action) {
        (_, Action::Follow { to, .. }) => Some(to),
        (Cause::Moved { to }, _) => Some(to),
        _ => None,
    }
}

fn is_push(cause: &Cause) -> bool {
    matches!(cause, Cause::Pushed { .. } | Cause::Moved { .. })
}
