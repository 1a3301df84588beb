//! The decisions: the part of the guard a newcomer should read first.
//!
//! Everything here is pure: an [`Incident`] (what an event says happened), the registry
//! [`Entry`]s of its repository and the [`Scope`] go in; [`Decision`]s come out. After the
//! handler has acted, [`report`] turns each decision and its [`Outcome`] into a page (or none)
//! and a history record. No AWS types, no I/O, no clock: the handler passes the time in.
//!
//! The rules, per protected tag an event touches:
//!
//! | what happened                          | decision                                          |
//! |----------------------------------------|---------------------------------------------------|
//! | deleted (by tag, digest, lifecycle, with its repository) | restore (`on_delete: alert` → page only; an `allow`ed caller → release the pin) |
//! | moved to another digest                | revert; follow when the caller is `allow`ed or `on_move: follow`; `on_move: alert` → page only |
//! | pushed again to its pinned digest      | nothing (a pin without a seal: seal it)           |
//! | pushed for the first time (item not pinned) | pin it (sealed: the guard saw it there)      |
//! | deleted before the guard ever saw it (item not pinned) | page only: the guard puts back only what it saw there |
//! | restore or revert from a pin without a valid seal | nothing pushed; paged as `untrusted_pin` (see the service's `trust`) |
//! | deleted or moved, the event names no caller, the item has `allow` | nothing: the CloudTrail record of the same change decides (reconcile is the backstop) |
//! | a keep-alive tag deleted or moved onto another image | put it back on the pin, page low     |
//! | anything done by the guard's own role  | nothing (this is what stops loops)                |
//!
//! Before any of it is carried out, [`present::confirm`] checks each decision that writes
//! against what ECR holds now: a decision the present has overtaken is superseded.

pub mod history;
mod keep_alive;
pub mod lifecycle;
mod outcome;
pub mod present;
pub mod reconcile;
mod restore;
pub mod rules;
mod screen;
pub mod status;
#[cfg(test)]
mod tests;

use serde::Serialize;

pub use keep_alive::{
    after_leave, keep_alive_steps, keep_alive_to_drop, needed_keep_tags, plan_leave,
    stray_guard_tags, Leave,
};
pub use outcome::{Failure, Outcome};
pub use restore::{plan_restore, PutStep};
pub use screen::{is_same_role, screen, Scope};

use crate::events::{Actor, Change, Incident};
use crate::registry::{Entry, Manifest, OnDelete, OnMove};
use crate::text::short_digest;

/// What happened to one protected tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cause {
    /// The tag was deleted, or its image was; `digest` is the image it was on, if known.
    Deleted {
        /// The image the tag was removed from.
        digest: Option<String>,
    },
    /// A lifecycle rule expired the tag's image.
    Expired {
        /// The image.
        digest: String,
        /// The rule's priority.
        rule: Option<u32>,
    },
    /// The repository was deleted.
    RepositoryDeleted,
    /// The tag now points at another digest.
    Moved {
        /// The digest it points at now.
        to: String,
    },
    /// The tag was pushed (to its pin, or for the first time).
    Pushed {
        /// The digest pushed.
        digest: String,
    },
    /// The pinned image was moved to archive storage (found by reconcile).
    Archived {
        /// The image.
        digest: String,
    },
}

/// What the guard will do for one protected tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Put the tag back on the pinned digest (a delete).
    Restore,
    /// Put the tag back on the pinned digest (a move).
    Revert,
    /// Pin the digest the tag was moved to; the old pin goes to history.
    Follow {
        /// The new digest.
        to: String,
        /// Its manifest, from the event (checked before it is stored).
        #[serde(skip)]
        manifest: Option<Manifest>,
    },
    /// Pin a tag seen pushed for the first time (confirmed against ECR before it is carried
    /// out, then sealed).
    Pin {
        /// The digest to pin.
        digest: String,
        /// Its manifest, from the event (checked before it is stored).
        #[serde(skip)]
        manifest: Option<Manifest>,
    },
    /// An allowed principal deleted the tag: clear the pin, do not restore.
    Release,
    /// The tag was pushed again to its pinned digest, and the pin carries no seal (written
    /// by hand): seal it, once ECR confirms the tag is there.
    Seal,
    /// Put back the keep-alive tag of the entry's pinned digest (the decision's tag).
    RestoreKeep,
    /// Read the pinned image's manifest from ECR and keep it in the item.
    StoreManifest,
    /// Bring the pinned image back from archive to standard storage
    /// (`UpdateImageStorageClass`).
    Unarchive,
    /// Page only.
    Alert,
    /// Nothing to do.
    Nothing,
    /// Nothing to do: ECR's present state has overtaken the event (see [`present`]).
    Superseded,
}

impl Cause {
    /// Its name, as in replay's output and the decision's JSON (`deleted`, `moved`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Cause::Deleted { .. } => "deleted",
            Cause::Expired { .. } => "expired",
            Cause::RepositoryDeleted => "repository_deleted",
            Cause::Moved { .. } => "moved",
            Cause::Pushed { .. } => "pushed",
            Cause::Archived { .. } => "archived",
        }
    }
}

impl Action {
    /// Its name, as in logs, history, pages' JSON and `--json` output (`restore`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Action::Restore => "restore",
            Action::Revert => "revert",
            Action::Follow { .. } => "follow",
            Action::Pin { .. } => "pin",
            Action::Release => "release",
            Action::Seal => "seal",
            Action::RestoreKeep => "restore_keep",
            Action::StoreManifest => "store_manifest",
            Action::Unarchive => "unarchive",
            Action::Alert => "alert",
            Action::Nothing => "nothing",
            Action::Superseded => "superseded",
        }
    }
}

/// One decision: the entry, what happened to it, what to do and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The tag.
    pub tag: String,
    /// What happened.
    pub cause: Cause,
    /// What to do.
    pub action: Action,
    /// Why, in a sentence.
    pub why: String,
    /// The registry entry as read.
    #[serde(skip)]
    pub entry: Entry,
}

/// Decides, for every protected tag the incident touches, what to do. One decision per tag,
/// in the order the event names them; tags the registry does not hold are not touched,
/// except a removed keep-alive tag (`keep_prefix`) of a digest some entry pins.
pub fn decide(incident: &Incident, entries: &[Entry], keep_prefix: &str) -> Vec<Decision> {
    let mut out: Vec<Decision> = Vec::new();
    for change in &incident.changes {
        let decided: Vec<Decision> = match change {
            Change::TagRemoved { tag, digest } if tag.starts_with(keep_prefix) => {
                let cause = Cause::Deleted {
                    digest: digest.clone(),
                };
                on_keep_alive(entries, tag, None, cause, keep_prefix)
            }
            Change::TagPushed { tag, digest, .. } if tag.starts_with(keep_prefix) => {
                let cause = Cause::Moved { to: digest.clone() };
                on_keep_alive(entries, tag, Some(digest), cause, keep_prefix)
            }
            Change::TagRemoved { tag, digest } => entries
                .iter()
                .filter(|e| &e.tag == tag)
                .map(|e| {
                    let cause = Cause::Deleted {
                        digest: digest.clone(),
                    };
                    on_delete(incident, e, cause, digest.as_deref())
                })
                .collect(),
            Change::ImageDeleted { digest, tags, rule } => entries
                .iter()
                .filter(|e| e.digest() == Some(digest.as_str()) || tags.contains(&e.tag))
                .map(|e| {
                    let cause = match incident.actor {
                        Actor::Lifecycle => Cause::Expired {
                            digest: digest.clone(),
                            rule: *rule,
                        },
                        _ => Cause::Deleted {
                            digest: Some(digest.clone()),
                        },
                    };
                    on_delete(incident, e, cause, Some(digest))
                })
                .collect(),
            Change::TagPushed {
                tag,
                digest,
                manifest,
            } => entries
                .iter()
                .filter(|e| &e.tag == tag)
                .map(|e| on_push(incident, e, digest, manifest.as_ref()))
                .collect(),
            Change::RepositoryDeleted => entries.iter().map(on_repository_deleted).collect(),
        };
        for d in decided {
            // Each tag is decided once, by the first change that names it.
            if !out.iter().any(|o| o.tag == d.tag) {
                out.push(d);
            }
        }
    }
    out
}

/// A keep-alive tag `tag` deleted (`moved_to: None`) or pushed onto `moved_to`: put back on
/// the pin it keeps, when some entry pins that digest and it is not already there.
fn on_keep_alive(
    entries: &[Entry],
    tag: &str,
    moved_to: Option<&String>,
    cause: Cause,
    keep_prefix: &str,
) -> Vec<Decision> {
    let keeps = |e: &&Entry| {
        e.keep_alive
            && e.digest()
                .and_then(|d| crate::registry::keep_tag(keep_prefix, d))
                .as_deref()
                == Some(tag)
    };
    let Some(e) = entries
        .iter()
        .find(keeps)
        .filter(|e| moved_to.is_none_or(|to| e.digest() != Some(to.as_str())))
    else {
        return Vec::new();
    };
    let why = match moved_to {
        None => "the keep-alive tag of a pinned digest was deleted",
        Some(_) => "the keep-alive tag of a pinned digest was moved onto another image",
    };
    vec![Decision {
        tag: tag.to_string(),
        ..decision(e, cause, Action::RestoreKeep, why)
    }]
}

/// The repository was deleted: a pinned tag is put back (which finds out and pages), an
/// unpinned one can only be paged.
fn on_repository_deleted(e: &Entry) -> Decision {
    match e.pin {
        Some(_) => decision(
            e,
            Cause::RepositoryDeleted,
            Action::Restore,
            "the repository was deleted with the tag in it",
        ),
        None => decision(
            e,
            Cause::RepositoryDeleted,
            Action::Alert,
            "the repository was deleted; the tag was never pinned, so it cannot be put back",
        ),
    }
}

pub(crate) fn decision(e: &Entry, cause: Cause, action: Action, why: &str) -> Decision {
    Decision {
        tag: e.tag.clone(),
        cause,
        action,
        why: why.to_string(),
        entry: e.clone(),
    }
}

fn on_delete(incident: &Incident, e: &Entry, cause: Cause, from: Option<&str>) -> Decision {
    let allowed = e.allows(&incident.actor.arns());
    if e.on_delete == OnDelete::Restore && !e.allow.is_empty() && !names_caller(incident) {
        return decision(
            e,
            cause,
            Action::Nothing,
            "this event does not name the caller and some callers are allowed: the CloudTrail record of the same delete decides",
        );
    }
    match (e.digest(), from) {
        // The guard puts back only an image it has seen under the tag itself: the event's
        // word for which image that was is not enough (see `crate::registry::seal`).
        (None, Some(d)) => decision(
            e,
            cause,
            Action::Alert,
            &format!(
                "the tag was deleted before the guard had seen it (the event says it was on {}); the guard puts back only an image it has seen under the tag itself",
                short_digest(d)
            ),
        ),
        (None, None) => decision(
            e,
            cause,
            Action::Alert,
            "the tag was never pinned and the event does not say which image it was on",
        ),
        (Some(pin), Some(d)) if pin != d => decision(
            e,
            cause,
            Action::Alert,
            &format!(
                "the tag was removed from {}, not from its pin {}: check which is right",
                short_digest(d),
                short_digest(pin)
            ),
        ),
        (Some(_), _) if e.on_delete == OnDelete::Alert => {
            decision(e, cause, Action::Alert, "on_delete is alert")
        }
        (Some(_), _) if allowed => decision(
            e,
            cause,
            Action::Release,
            "deleted by an allowed principal: not put back, pin released",
        ),
        (Some(_), _) => decision(e, cause, Action::Restore, "a protected tag was deleted"),
    }
}

fn on_push(incident: &Incident, e: &Entry, to: &str, manifest: Option<&Manifest>) -> Decision {
    let Some(pin) = e.digest() else {
        return decision(
            e,
            Cause::Pushed { digest: to.into() },
            Action::Pin {
                digest: to.into(),
                manifest: manifest.cloned(),
            },
            "first sight of the tag: pin the pushed image",
        );
    };
    if pin == to {
        let unsealed = e.pin.as_ref().is_some_and(|p| p.mac.is_none());
        let (action, why) = if unsealed {
            (
                Action::Seal,
                "pushed again to its pinned digest; the pin has no seal: sealed once ECR shows the tag there",
            )
        } else {
            (Action::Nothing, "pushed again to its pinned digest")
        };
        return decision(e, Cause::Pushed { digest: to.into() }, action, why);
    }
    let cause = Cause::Moved { to: to.into() };
    let follow = Action::Follow {
        to: to.into(),
        manifest: manifest.cloned(),
    };
    let known_caller = names_caller(incident);
    match e.on_move {
        OnMove::Alert => decision(e, cause, Action::Alert, "on_move is alert"),
        OnMove::Follow => decision(e, cause, follow, "on_move is follow"),
        OnMove::Revert if e.allows(&incident.actor.arns()) => {
            decision(e, cause, follow, "moved by an allowed principal")
        }
        OnMove::Revert if !known_caller && !e.allow.is_empty() => decision(
            e,
            cause,
            Action::Nothing,
            "this event does not name the caller and some callers are allowed: the CloudTrail record of the same push decides",
        ),
        OnMove::Revert => decision(e, cause, Action::Revert, "moved by a caller not allowed to"),
    }
}

/// True when the event says who made the change (a principal, or the lifecycle policy, which
/// no `allow` list names).
fn names_caller(incident: &Incident) -> bool {
    matches!(incident.actor, Actor::Principal { .. } | Actor::Lifecycle)
}

/// Who did it, for a person: the caller ARN, the lifecycle rule, or what the event says.
pub fn who(incident: &Incident, cause: &Cause) -> String {
    match (&incident.actor, cause) {
        (_, Cause::Expired { rule: Some(r), .. }) => format!("lifecycle policy rule {r}"),
        (actor, _) => actor.describe(None),
    }
}
