//! Reconcile: what to do about a protected tag whose standing in ECR is not ok, when no
//! event said so (an event was lost, an item was written by hand, a keep-alive tag is gone).
//!
//! Nobody is named by a drift itself. For an item without `allow` that does not matter: no
//! caller may move or delete the tag, so the repair goes ahead. For an item with `allow`, a
//! restore or a revert could undo an allowed deploy, so it waits for who made the change:
//! first for the event path (a grace period), then for CloudTrail's record of the change
//! ([`with_caller`]); with no way to learn the caller it pages instead of undoing anything.

use super::status::TagState;
use super::{decision, Action, Cause, Decision};
use crate::events::{Change, Incident};
use crate::registry::{Entry, OnDelete, OnMove};
use crate::text::parse_time;

/// The repair for `entry` in `standing`, as a decision the handler carries out like one
/// from an event; `None` when there is nothing to do. Nobody is known to have caused the
/// drift, so `allow` plays no part: `on_move: revert` reverts.
pub fn repair(entry: &Entry, standing: &TagState, keep_prefix: &str) -> Option<Decision> {
    let d = match standing {
        TagState::Ok => return None,
        TagState::Missing => missing(entry),
        TagState::Moved { to } => moved(entry, to),
        // Pinned when first seen (a push); registration has paged it once.
        TagState::NotPinned | TagState::TagNotFound => return None,
        TagState::PinWithoutManifest => decision(
            entry,
            Cause::Pushed {
                digest: entry.digest()?.to_string(),
            },
            Action::StoreManifest,
            "reconcile: the pin has no stored manifest",
        ),
        TagState::KeepAliveMissing => {
            let keep = crate::registry::keep_tag(keep_prefix, entry.digest()?)?;
            let d = decision(
                entry,
                Cause::Deleted {
                    digest: entry.digest().map(String::from),
                },
                Action::RestoreKeep,
                "reconcile: the keep-alive tag is missing",
            );
            Decision { tag: keep, ..d }
        }
        TagState::Archived => decision(
            entry,
            Cause::Archived {
                digest: entry.digest()?.to_string(),
            },
            Action::Unarchive,
            "reconcile: the pinned image is in archive storage",
        ),
        // Already on its way back: the next run sees the outcome.
        TagState::Activating => return None,
        TagState::RepositoryGone => decision(
            entry,
            Cause::RepositoryDeleted,
            Action::Alert,
            "reconcile: the repository does not exist",
        ),
        TagState::Unreadable { code } => decision(
            entry,
            Cause::Deleted { digest: None },
            Action::Alert,
            &format!("reconcile: ECR could not read the tag ({code})"),
        ),
    };
    Some(d)
}

/// A protected tag reconcile finds missing: restored, or paged (`on_delete: alert`).
fn missing(entry: &Entry) -> Decision {
    match entry.on_delete {
        OnDelete::Restore => decision(
            entry,
            Cause::Deleted { digest: None },
            Action::Restore,
            "reconcile: the tag is missing",
        ),
        OnDelete::Alert => decision(
            entry,
            Cause::Deleted { digest: None },
            Action::Alert,
            "reconcile: the tag is missing (on_delete is alert)",
        ),
    }
}

/// A protected tag reconcile finds on another digest (`to`): as `on_move` says.
fn moved(entry: &Entry, to: &str) -> Decision {
    let cause = Cause::Moved { to: to.to_string() };
    match entry.on_move {
        OnMove::Revert => decision(
            entry,
            cause,
            Action::Revert,
            "reconcile: the tag is on another digest",
        ),
        OnMove::Follow => decision(
            entry,
            cause,
            Action::Follow {
                to: to.to_string(),
                manifest: None,
            },
            "reconcile: the tag moved (on_move is follow)",
        ),
        OnMove::Alert => decision(
            entry,
            cause,
            Action::Alert,
            "reconcile: the tag is on another digest (on_move is alert)",
        ),
    }
}

/// The decision for an item that has only repository and tag, when ECR has the tag at
/// `digest`: pin it.
pub fn pin_first_seen(entry: &Entry, digest: &str) -> Decision {
    decision(
        entry,
        Cause::Pushed {
            digest: digest.to_string(),
        },
        Action::Pin {
            digest: digest.to_string(),
            manifest: None,
        },
        "reconcile: first sight of the tag",
    )
}

/// True when the repair `d` would undo a change an allowed caller may have made: a restore
/// or a revert of an item with an `allow` list. Such a repair waits for the caller.
pub fn needs_caller(d: &Decision) -> bool {
    !d.entry.allow.is_empty() && matches!(d.action, Action::Restore | Action::Revert)
}

/// The newest CloudTrail record among `records` that explains `d`'s drift: a push of the tag
/// to the digest it is on now (a revert), or a delete of the tag or of its pinned image (a
/// restore).
pub fn explaining<'a>(d: &Decision, records: &'a [Incident]) -> Option<&'a Incident> {
    let pin = d.entry.digest();
    let explains = |c: &Change| match (&d.action, &d.cause, c) {
        (Action::Revert, Cause::Moved { to }, Change::TagPushed { tag, digest, .. }) => {
            *tag == d.tag && digest == to
        }
        (Action::Restore, _, Change::TagRemoved { tag, .. }) => *tag == d.tag,
        (Action::Restore, _, Change::ImageDeleted { digest, tags, .. }) => {
            Some(digest.as_str()) == pin || tags.contains(&d.tag)
        }
        _ => false,
    };
    records
        .iter()
        .filter(|i| d.entry.repo == i.repo && i.changes.iter().any(explains))
        .max_by_key(|i| parse_time(&serde_json::Value::String(i.time.clone())).unwrap_or(0))
}

/// What is known of who made a drift.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WhoChanged<'a> {
    /// CloudTrail's record of the change: who and when.
    Record(&'a Incident),
    /// No record of it (yet); reconcile first saw the drift at `first_seen` (epoch seconds).
    NotFound {
        /// When reconcile first saw it.
        first_seen: i64,
    },
    /// The caller cannot be learnt (CloudTrail refused, or cannot be asked); reconcile first
    /// saw the drift at `first_seen`.
    Unknowable {
        /// Why.
        problem: String,
        /// When reconcile first saw it.
        first_seen: i64,
    },
}

/// The repair `d` (see [`needs_caller`]) decided with what is known of the caller, at `now`
/// (epoch seconds). `None` while the change is younger than `grace` seconds: its own event
/// is expected to decide. After that, a change by an allowed caller is kept (a move is
/// followed, a delete releases the pin), one by anybody else is undone, and one whose caller
/// cannot be learnt is paged, not undone.
pub fn with_caller(d: Decision, witness: WhoChanged<'_>, now: i64, grace: i64) -> Option<Decision> {
    let young = |since: i64| now - since < grace;
    let verb = if d.action == Action::Revert {
        "moved"
    } else {
        "deleted"
    };
    match witness {
        WhoChanged::Record(i) => {
            let at = parse_time(&serde_json::Value::String(i.time.clone())).unwrap_or(now);
            if young(at) {
                return None;
            }
            let who = super::who(i, &d.cause);
            if !d.entry.allows(&i.actor.arns()) {
                let why = format!(
                    "reconcile: CloudTrail says {who} {verb} it, a caller not allowed to"
                );
                return Some(Decision { why, ..d });
            }
            let why = format!("reconcile: CloudTrail says {who} {verb} it, an allowed caller");
            let action = match &d.cause {
                Cause::Moved { to } => Action::Follow {
                    to: to.clone(),
                    manifest: None,
                },
                _ => Action::Release,
            };
            Some(Decision { action, why, ..d })
        }
        WhoChanged::NotFound { first_seen } | WhoChanged::Unknowable { first_seen, .. }
            if young(first_seen) =>
        {
            None
        }
        WhoChanged::NotFound { .. } => Some(Decision {
            action: Action::Alert,
            why: format!(
                "reconcile: the tag was {verb}, no CloudTrail record says by whom, and some callers are allowed to: not undone"
            ),
            ..d
        }),
        WhoChanged::Unknowable { problem, .. } => Some(Decision {
            action: Action::Alert,
            why: format!(
                "reconcile: the tag was {verb} and who did it cannot be learnt ({problem}); some callers are allowed to: not undone"
            ),
            ..d
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::registry::parse_item;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn entry(extra: serde_json::Value) -> Entry {
        let mut v = json!({"repository": "123456789012/eu-west-1/web", "tag": "prod", "digest": D1, "manifest": "{}"});
        if let (Some(a), Some(b)) = (v.as_object_mut(), extra.as_object()) {
            a.extend(b.clone());
        }
        parse_item(&v).unwrap()
    }

    fn action(e: &Entry, s: TagState) -> Option<Action> {
        repair(e, &s, "etg-keep-").map(|d| d.action)
    }

    #[test]
    fn each_standing_has_its_repair() {
        let e = entry(json!({}));
        assert_eq!(action(&e, TagState::Ok), None);
        assert_eq!(action(&e, TagState::Missing), Some(Action::Restore));
        assert_eq!(
            action(&entry(json!({"on_delete": "alert"})), TagState::Missing),
            Some(Action::Alert)
        );
        assert_eq!(
            action(&e, TagState::Moved { to: D2.into() }),
            Some(Action::Revert)
        );
        assert_eq!(
            action(
                &entry(json!({"allow": ["*"]})),
                TagState::Moved { to: D2.into() }
            ),
            Some(Action::Revert),
            "no caller is known"
        );
        assert_eq!(
            action(
                &entry(json!({"on_move": "follow"})),
                TagState::Moved { to: D2.into() }
            ),
            Some(Action::Follow {
                to: D2.into(),
                manifest: None
            })
        );
        assert_eq!(
            action(
                &entry(json!({"on_move": "alert"})),
                TagState::Moved { to: D2.into() }
            ),
            Some(Action::Alert)
        );
        assert_eq!(
            action(&e, TagState::PinWithoutManifest),
            Some(Action::StoreManifest)
        );
        assert_eq!(action(&e, TagState::Archived), Some(Action::Unarchive));
        assert_eq!(
            action(&e, TagState::Activating),
            None,
            "already coming back"
        );
        assert_eq!(action(&e, TagState::RepositoryGone), Some(Action::Alert));
        assert_eq!(
            action(&e, TagState::Unreadable { code: "X".into() }),
            Some(Action::Alert)
        );
        let keep = repair(&e, &TagState::KeepAliveMissing, "etg-keep-").unwrap();
        assert_eq!(
            (keep.tag.as_str(), keep.action),
            ("etg-keep-1111111111111111", Action::RestoreKeep)
        );
        assert_eq!(
            pin_first_seen(&e, D2).action,
            Action::Pin {
                digest: D2.into(),
                manifest: None,
            }
        );
    }
}
