//! Tests of the decisions, what is paged, and the restore plan.
//! Compiled only under #[cfg(test)] (declared in the parent module).

use serde_json::json;

use super::*;
use crate::events::{Actor, Change, Incident};
use crate::registry::{parse_item, Entry, Manifest, Pin, RepoKey};
use crate::text::sha256_digest;

const REPO: &str = "123456789012/eu-west-1/web";

fn body(name: &str) -> String {
    format!("{{\"mediaType\":\"m\",\"name\":\"{name}\"}}")
}

fn d(name: &str) -> String {
    sha256_digest(body(name).as_bytes())
}

fn entry(tag: &str, pinned_to: Option<&str>, extra: serde_json::Value) -> Entry {
    let mut v = json!({"repository": REPO, "tag": tag});
    if let Some(name) = pinned_to {
        v["digest"] = json!(d(name));
        v["manifest"] = json!(body(name));
    }
    if let (Some(a), Some(b)) = (v.as_object_mut(), extra.as_object()) {
        a.extend(b.clone());
    }
    parse_item(&v).unwrap()
}

fn user(name: &str) -> Actor {
    Actor::Principal {
        arn: format!("arn:aws:iam::123456789012:user/{name}"),
        role_arn: None,
    }
}

fn deploy() -> Actor {
    Actor::Principal {
        arn: "arn:aws:sts::123456789012:assumed-role/deploy/run-1".into(),
        role_arn: Some("arn:aws:iam::123456789012:role/deploy".into()),
    }
}

fn incident(actor: Actor, changes: Vec<Change>) -> Incident {
    Incident {
        event_id: "e-1".into(),
        source: "test".into(),
        time: "2026-01-01T00:00:00Z".into(),
        repo: RepoKey::parse(REPO).unwrap(),
        actor,
        changes,
        note: None,
    }
}

fn removed(tag: &str, from: Option<&str>) -> Change {
    Change::TagRemoved {
        tag: tag.into(),
        digest: from.map(d),
    }
}

fn pushed(tag: &str, to: &str) -> Change {
    Change::TagPushed {
        tag: tag.into(),
        digest: d(to),
        manifest: None,
    }
}

fn actions(i: &Incident, entries: &[Entry]) -> Vec<(String, Action)> {
    decide(i, entries, "etg-keep-")
        .into_iter()
        .map(|x| (x.tag, x.action))
        .collect()
}

fn one(i: &Incident, e: Entry) -> Action {
    let mut all = actions(i, &[e]);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0).1
}

#[test]
fn a_deleted_tag_is_restored() {
    let i = incident(user("bob"), vec![removed("prod", Some("a"))]);
    assert_eq!(
        one(&i, entry("prod", Some("a"), json!({}))),
        Action::Restore
    );
    // The event need not say which image.
    let i = incident(user("bob"), vec![removed("prod", None)]);
    assert_eq!(
        one(&i, entry("prod", Some("a"), json!({}))),
        Action::Restore
    );
}

#[test]
fn delete_modes_and_allowed_callers() {
    let i = incident(user("bob"), vec![removed("prod", Some("a"))]);
    assert_eq!(
        one(&i, entry("prod", Some("a"), json!({"on_delete": "alert"}))),
        Action::Alert
    );
    assert_eq!(
        one(
            &i,
            entry(
                "prod",
                Some("a"),
                json!({"allow": ["arn:aws:iam::*:user/bob"]})
            )
        ),
        Action::Release
    );
    assert_eq!(
        one(
            &i,
            entry(
                "prod",
                Some("a"),
                json!({"allow": ["arn:aws:iam::*:user/alice"]})
            )
        ),
        Action::Restore
    );
    // A lifecycle rule is never an allowed caller.
    let i = incident(
        Actor::Lifecycle,
        vec![Change::ImageDeleted {
            digest: d("a"),
            tags: vec!["prod".into()],
            rule: Some(1),
        }],
    );
    assert_eq!(
        one(&i, entry("prod", Some("a"), json!({"allow": ["*"]}))),
        Action::Restore
    );
}

#[test]
fn a_tag_removed_from_another_image_than_its_pin_is_only_reported() {
    let i = incident(user("bob"), vec![removed("prod", Some("b"))]);
    let x = decide(&i, &[entry("prod", Some("a"), json!({}))], "etg-keep-");
    assert_eq!(x[0].action, Action::Alert);
    assert!(x[0].why.contains("not from its pin"), "{}", x[0].why);
}

#[test]
fn deleting_an_image_restores_every_protected_tag_on_it_and_nothing_else() {
    let i = incident(
        user("bob"),
        vec![Change::ImageDeleted {
            digest: d("a"),
            tags: vec![],
            rule: None,
        }],
    );
    let entries = [
        entry("prod", Some("a"), json!({})),
        entry("stable", Some("a"), json!({})),
        entry("old", Some("b"), json!({})),
        entry("new", None, json!({})),
    ];
    assert_eq!(
        actions(&i, &entries),
        vec![
            ("prod".into(), Action::Restore),
            ("stable".into(), Action::Restore)
        ]
    );
}

#[test]
fn lifecycle_expiry_is_named_as_such() {
    let i = incident(
        Actor::Lifecycle,
        vec![Change::ImageDeleted {
            digest: d("a"),
            tags: vec!["prod".into()],
            rule: Some(3),
        }],
    );
    let x = decide(&i, &[entry("prod", Some("a"), json!({}))], "etg-keep-");
    assert_eq!(
        x[0].cause,
        Cause::Expired {
            digest: d("a"),
            rule: Some(3)
        }
    );
    assert_eq!(who(&i, &x[0].cause), "lifecycle policy rule 3");
}

#[test]
fn moves_are_reverted_followed_or_reported() {
    let i = incident(user("mallory"), vec![pushed("prod", "b")]);
    assert_eq!(one(&i, entry("prod", Some("a"), json!({}))), Action::Revert);
    assert_eq!(
        one(&i, entry("prod", Some("a"), json!({"on_move": "alert"}))),
        Action::Alert
    );
    assert!(
        matches!(one(&i, entry("prod", Some("a"), json!({"on_move": "follow"}))), Action::Follow { to, .. } if to == d("b"))
    );
    let allow = json!({"allow": ["arn:aws:iam::123456789012:role/deploy"]});
    assert_eq!(
        one(&i, entry("prod", Some("a"), allow.clone())),
        Action::Revert
    );
    let i = incident(deploy(), vec![pushed("prod", "b")]);
    assert!(matches!(
        one(&i, entry("prod", Some("a"), allow.clone())),
        Action::Follow { .. }
    ));
    // The session ARN matches too.
    let by_session = json!({"allow": ["arn:aws:sts::123456789012:assumed-role/deploy/*"]});
    assert!(matches!(
        one(&i, entry("prod", Some("a"), by_session)),
        Action::Follow { .. }
    ));
}

#[test]
fn a_move_without_a_known_caller_waits_for_cloudtrail_only_when_someone_is_allowed() {
    let i = incident(
        Actor::Unknown {
            label: "image action".into(),
        },
        vec![pushed("prod", "b")],
    );
    assert_eq!(one(&i, entry("prod", Some("a"), json!({}))), Action::Revert);
    assert_eq!(
        one(&i, entry("prod", Some("a"), json!({"allow": ["arn:*"]}))),
        Action::Nothing
    );
}

#[test]
fn a_push_to_the_pin_does_nothing_and_a_first_push_pins() {
    let i = incident(user("bob"), vec![pushed("prod", "a")]);
    assert_eq!(
        one(&i, entry("prod", Some("a"), json!({}))),
        Action::Nothing
    );
    assert_eq!(
        one(&i, entry("prod", None, json!({}))),
        Action::Pin {
            digest: d("a"),
            manifest: None,
            restore: false
        }
    );
}

#[test]
fn an_unpinned_tag_is_pinned_when_first_seen_deleted() {
    let i = incident(user("bob"), vec![removed("qa", Some("a"))]);
    assert_eq!(
        one(&i, entry("qa", None, json!({}))),
        Action::Pin {
            digest: d("a"),
            manifest: None,
            restore: true
        }
    );
    assert_eq!(
        one(&i, entry("qa", None, json!({"on_delete": "alert"}))),
        Action::Pin {
            digest: d("a"),
            manifest: None,
            restore: false
        }
    );
    let i = incident(user("bob"), vec![removed("qa", None)]);
    assert_eq!(one(&i, entry("qa", None, json!({}))), Action::Alert);
}

#[test]
fn a_deleted_repository_takes_every_tag_with_it() {
    let i = incident(user("bob"), vec![Change::RepositoryDeleted]);
    assert_eq!(
        actions(
            &i,
            &[
                entry("prod", Some("a"), json!({})),
                entry("qa", None, json!({}))
            ]
        ),
        vec![
            ("prod".into(), Action::Restore),
            ("qa".into(), Action::Alert)
        ]
    );
}

#[test]
fn each_tag_is_decided_once_and_strangers_are_untouched() {
    let i = incident(
        user("bob"),
        vec![
            removed("prod", Some("a")),
            Change::ImageDeleted {
                digest: d("a"),
                tags: vec!["prod".into()],
                rule: None,
            },
            removed("other", None),
        ],
    );
    assert_eq!(actions(&i, &[entry("prod", Some("a"), json!({}))]).len(), 1);
}

#[test]
fn screening_by_account_region_and_own_role() {
    let mut s = Settings {
        own_role_arn: Some("arn:aws:iam::123456789012:role/path/ecr-tag-guard".into()),
        ..Settings::default()
    };
    let own = Actor::Principal {
        arn: "arn:aws:sts::123456789012:assumed-role/ecr-tag-guard/fn".into(),
        role_arn: None,
    };
    assert!(screen(&incident(own, vec![]), &s)
        .unwrap()
        .contains("own role"));
    let own_exact = Actor::Principal {
        arn: "x".into(),
        role_arn: Some("arn:aws:iam::123456789012:role/path/ecr-tag-guard".into()),
    };
    assert!(screen(&incident(own_exact, vec![]), &s).is_some());
    let similar = Actor::Principal {
        arn: "arn:aws:sts::123456789012:assumed-role/ecr-tag-guard-dev/fn".into(),
        role_arn: None,
    };
    assert_eq!(screen(&incident(similar, vec![]), &s), None);
    let other_account = Actor::Principal {
        arn: "arn:aws:sts::999999999999:assumed-role/ecr-tag-guard/fn".into(),
        role_arn: None,
    };
    assert_eq!(screen(&incident(other_account, vec![]), &s), None);
    s.accounts = vec!["999999999999".into()];
    assert!(screen(&incident(user("bob"), vec![]), &s)
        .unwrap()
        .contains("account 123456789012"));
    s.accounts.clear();
    s.regions = vec!["us-east-1".into()];
    assert!(screen(&incident(user("bob"), vec![]), &s)
        .unwrap()
        .contains("region eu-west-1"));
}

fn decision(action: Action, cause: Cause, e: Entry) -> Decision {
    Decision {
        tag: e.tag.clone(),
        cause,
        action,
        why: "w".into(),
        entry: e,
    }
}

#[test]
fn what_is_paged() {
    let e = entry("prod", Some("a"), json!({"severity": "low"}));
    let restore = decision(Action::Restore, Cause::Deleted { digest: None }, e.clone());
    assert_eq!(
        report(&restore, &Outcome::Restored, false).unwrap().action,
        "restored"
    );
    assert_eq!(
        report(&restore, &Outcome::AlreadyInPlace, false),
        None,
        "nothing was put back: nothing to say"
    );
    assert_eq!(
        report(&restore, &Outcome::AlreadyInPlace, true)
            .unwrap()
            .action,
        "restored",
        "a retry after a crash pages what the first attempt did"
    );
    let failed = report(
        &restore,
        &Outcome::Failed {
            failure: Failure::LayersGone,
            detail: "LayersNotFoundException".into(),
        },
        false,
    )
    .unwrap();
    assert_eq!(
        (failed.action, failed.severity),
        ("failed", Severity::High),
        "a failure is never paged below high"
    );
    assert!(failed.todo.unwrap().contains("Push the image again"));
    let refused = report(
        &restore,
        &Outcome::Refused {
            why: "altered".into(),
        },
        false,
    )
    .unwrap();
    assert_eq!(refused.action, "refused");
    let revert = decision(Action::Revert, Cause::Moved { to: d("b") }, e.clone());
    let a = report(&revert, &Outcome::Restored, false).unwrap();
    assert_eq!((a.action, a.new_digest), ("reverted", Some(d("b"))));
    assert_eq!(
        report(
            &decision(
                Action::Pin {
                    digest: d("a"),
                    manifest: None,
                    restore: false
                },
                Cause::Pushed { digest: d("a") },
                e.clone()
            ),
            &Outcome::Pinned,
            false
        ),
        None
    );
    assert_eq!(
        report(
            &decision(Action::Nothing, Cause::Pushed { digest: d("a") }, e.clone()),
            &Outcome::Skipped,
            false
        ),
        None
    );
    assert_eq!(report(&restore, &Outcome::Conflict, false), None);
    assert_eq!(
        report(
            &decision(Action::Alert, Cause::Moved { to: d("b") }, e),
            &Outcome::Alerted,
            false
        )
        .unwrap()
        .headline,
        "moved; not reverted"
    );
}

fn pin(name: &str) -> Pin {
    Pin {
        digest: d(name),
        manifest: Some(Manifest {
            digest: d(name),
            media_type: Some("m".into()),
            body: body(name),
        }),
        children: vec![],
        pinned_by: None,
        pinned_at: None,
    }
}

#[test]
fn a_restore_pushes_the_pinned_bytes_with_the_tag() {
    let steps = plan_restore("prod", &pin("a"), None).unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].tag.as_deref(), Some("prod"));
    assert_eq!(steps[0].manifest.digest, d("a"));
    assert_eq!(steps[0].manifest.body, body("a"));
}

#[test]
fn a_restore_refuses_bytes_that_are_not_the_pin() {
    let mut p = pin("a");
    p.manifest.as_mut().unwrap().body.push(' ');
    let why = plan_restore("prod", &p, None).unwrap_err();
    assert!(why.contains("altered"), "{why}");
    let mut p = pin("a");
    p.manifest = None;
    assert!(plan_restore("prod", &p, None)
        .unwrap_err()
        .contains("no manifest"));
    // A manifest read from ECR is checked just the same.
    let fetched = Manifest {
        digest: d("a"),
        media_type: None,
        body: body("b"),
    };
    assert!(plan_restore("prod", &p, Some(&fetched)).is_err());
    let fetched = Manifest {
        digest: d("a"),
        media_type: None,
        body: body("a"),
    };
    assert_eq!(plan_restore("prod", &p, Some(&fetched)).unwrap().len(), 1);
}

#[test]
fn an_index_puts_its_stored_children_first() {
    let (c1, c2) = (body("c1"), body("c2"));
    let idx = json!({"mediaType": "i", "manifests": [{"digest": d("c1")}, {"digest": d("c2")}]})
        .to_string();
    let child = |b: &str| Manifest {
        digest: sha256_digest(b.as_bytes()),
        media_type: None,
        body: b.to_string(),
    };
    let p = Pin {
        digest: sha256_digest(idx.as_bytes()),
        manifest: Some(child(&idx)),
        children: vec![child(&c2), child(&c1)],
        pinned_by: None,
        pinned_at: None,
    };
    let steps = plan_restore("prod", &p, None).unwrap();
    let order: Vec<(String, Option<String>)> = steps
        .iter()
        .map(|s| (s.manifest.digest.clone(), s.tag.clone()))
        .collect();
    assert_eq!(
        order,
        vec![
            (d("c1"), None),
            (d("c2"), None),
            (p.digest.clone(), Some("prod".into()))
        ]
    );
    let mut bad = p.clone();
    bad.children[0].body.push(' ');
    assert!(plan_restore("prod", &bad, None)
        .unwrap_err()
        .contains("child"));
}

fn keep(name: &str) -> String {
    crate::registry::keep_tag("etg-keep-", &d(name)).unwrap()
}

#[test]
fn a_deleted_keep_alive_tag_is_put_back_when_a_pin_needs_it() {
    let i = incident(user("bob"), vec![removed(&keep("a"), Some("a"))]);
    let x = decide(&i, &[entry("prod", Some("a"), json!({}))], "etg-keep-");
    assert_eq!(x.len(), 1);
    assert_eq!(
        (x[0].tag.clone(), x[0].action.clone()),
        (keep("a"), Action::RestoreKeep)
    );
    assert_eq!(x[0].entry.tag, "prod");
    // No pin on that digest: not the guard's business.
    assert!(decide(&i, &[entry("prod", Some("b"), json!({}))], "etg-keep-").is_empty());
    let a = report(&x[0], &Outcome::Restored, false).unwrap();
    assert_eq!((a.action, a.severity), ("keep_alive", Severity::Low));
    assert_eq!(report(&x[0], &Outcome::AlreadyInPlace, false), None);
}

#[test]
fn keep_alive_tags_are_put_once_per_digest_after_restores_and_dropped_only_when_unshared() {
    let (p, s) = (
        entry("prod", Some("a"), json!({})),
        entry("stable", Some("a"), json!({})),
    );
    let restore = |e: &Entry| decision(Action::Restore, Cause::Deleted { digest: None }, e.clone());
    let (dp, ds) = (restore(&p), restore(&s));
    let steps = keep_alive_steps(
        &[(&dp, &Outcome::Restored), (&ds, &Outcome::AlreadyInPlace)],
        "etg-keep-",
    );
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].tag, Some(keep("a")));
    assert_eq!(steps[0].manifest.body, body("a"));
    let failed = Outcome::Failed {
        failure: Failure::LayersGone,
        detail: "x".into(),
    };
    assert!(keep_alive_steps(&[(&dp, &failed)], "etg-keep-").is_empty());
    assert_eq!(
        keep_alive_to_drop(&[p.clone(), s.clone()], "prod", &d("a"), "etg-keep-"),
        None,
        "stable still pins it"
    );
    assert_eq!(
        keep_alive_to_drop(&[p], "prod", &d("a"), "etg-keep-"),
        Some(keep("a"))
    );
}
