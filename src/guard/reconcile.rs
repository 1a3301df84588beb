//! Reconcile: what to do about a protected tag whose standing in ECR is not ok, when no
//! event said so (an event was lost, an item was written by hand, a keep-alive tag is gone).

use super::status::Standing;
use super::{decision, Action, Cause, Decision};
use crate::registry::{Entry, OnDelete, OnMove};

/// The repair for `entry` in `standing`, as a decision the handler carries out like one
/// from an event; `None` when there is nothing to do. Nobody is known to have caused the
/// drift, so `allow` plays no part: `on_move: revert` reverts.
pub fn repair(entry: &Entry, standing: &Standing, keep_prefix: &str) -> Option<Decision> {
    let d = match standing {
        Standing::Ok => return None,
        Standing::Missing => match entry.on_delete {
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
        },
        Standing::Moved { to } => {
            let cause = Cause::Moved { to: to.clone() };
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
                        to: to.clone(),
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
        // Pinned when first seen (a push); registration has paged it once.
        Standing::NotPinned | Standing::TagNotFound => return None,
        Standing::PinWithoutManifest => decision(
            entry,
            Cause::Pushed {
                digest: entry.digest()?.to_string(),
            },
            Action::StoreManifest,
            "reconcile: the pin has no stored manifest",
        ),
        Standing::KeepAliveMissing => {
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
        Standing::Archived => decision(
            entry,
            Cause::Archived {
                digest: entry.digest()?.to_string(),
            },
            Action::Unarchive,
            "reconcile: the pinned image is in archive storage",
        ),
        // Already on its way back: the next run sees the outcome.
        Standing::Activating => return None,
        Standing::RepositoryGone => decision(
            entry,
            Cause::RepositoryDeleted,
            Action::Alert,
            "reconcile: the repository does not exist",
        ),
        Standing::Unreadable { code } => decision(
            entry,
            Cause::Deleted { digest: None },
            Action::Alert,
            &format!("reconcile: ECR could not read the tag ({code})"),
        ),
    };
    Some(d)
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
            restore: false,
        },
        "reconcile: first sight of the tag",
    )
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

    fn action(e: &Entry, s: Standing) -> Option<Action> {
        repair(e, &s, "etg-keep-").map(|d| d.action)
    }

    #[test]
    fn each_standing_has_its_repair() {
        let e = entry(json!({}));
        assert_eq!(action(&e, Standing::Ok), None);
        assert_eq!(action(&e, Standing::Missing), Some(Action::Restore));
        assert_eq!(
            action(&entry(json!({"on_delete": "alert"})), Standing::Missing),
            Some(Action::Alert)
        );
        assert_eq!(
            action(&e, Standing::Moved { to: D2.into() }),
            Some(Action::Revert)
        );
        assert_eq!(
            action(
                &entry(json!({"allow": ["*"]})),
                Standing::Moved { to: D2.into() }
            ),
            Some(Action::Revert),
            "no caller is known"
        );
        assert_eq!(
            action(
                &entry(json!({"on_move": "follow"})),
                Standing::Moved { to: D2.into() }
            ),
            Some(Action::Follow {
                to: D2.into(),
                manifest: None
            })
        );
        assert_eq!(
            action(
                &entry(json!({"on_move": "alert"})),
                Standing::Moved { to: D2.into() }
            ),
            Some(Action::Alert)
        );
        assert_eq!(
            action(&e, Standing::PinWithoutManifest),
            Some(Action::StoreManifest)
        );
        assert_eq!(action(&e, Standing::Archived), Some(Action::Unarchive));
        assert_eq!(
            action(&e, Standing::Activating),
            None,
            "already coming back"
        );
        assert_eq!(action(&e, Standing::RepositoryGone), Some(Action::Alert));
        assert_eq!(
            action(&e, Standing::Unreadable { code: "X".into() }),
            Some(Action::Alert)
        );
        let keep = repair(&e, &Standing::KeepAliveMissing, "etg-keep-").unwrap();
        assert_eq!(
            (keep.tag.as_str(), keep.action),
            ("etg-keep-1111111111111111", Action::RestoreKeep)
        );
        assert_eq!(
            pin_first_seen(&e, D2).action,
            Action::Pin {
                digest: D2.into(),
                manifest: None,
                restore: false
            }
        );
    }
}
