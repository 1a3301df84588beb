//! Tests of the decisions, what is paged, and the restore plan.
//! Compiled only under #[cfg(test)] (declared in the parent module).

use serde_json::json;

use super::*;
use crate::events::{Actor, Change, Incident};
use crate::page::report;
use crate::registry::Severity;
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
    // The guard's own pin (sealed): nothing. A pin written by hand: sealed now it is seen.
    assert_eq!(
        one(&i, entry("prod", Some("a"), json!({"pin_mac": "00"}))),
        Action::Nothing
    );
    assert_eq!(one(&i, entry("prod", Some("a"), json!({}))), Action::Seal);
    assert_eq!(
        one(&i, entry("prod", None, json!({}))),
        Action::Pin {
            digest: d("a"),
            manifest: None
        }
    );
}

#[test]
fn an_unpinned_tag_deleted_before_the_guard_saw_it_is_paged_not_pinned_from_the_event() {
    // The event's word for which image the tag was on is not the guard's own sight of it.
    let i = incident(user("bob"), vec![removed("qa", Some("a"))]);
    assert_eq!(one(&i, entry("qa", None, json!({}))), Action::Alert);
    assert_eq!(
        one(&i, entry("qa", None, json!({"on_delete": "alert"}))),
        Action::Alert
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
    let mut s = Scope {
        own_role_arn: Some("arn:aws:iam::123456789012:role/path/ecr-tag-guard".into()),
        ..Scope::default()
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
                    manifest: None
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
        mac: None,
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
        mac: None,
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
    // Not put back because the pin is in doubt: paged as what it is, not as a low line.
    let untrusted = Outcome::Untrusted {
        why: "no seal".into(),
    };
    let a = report(&x[0], &untrusted, false).unwrap();
    assert_eq!((a.action, a.severity), ("untrusted_pin", Severity::High));
    assert!(a.todo.is_some());
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

#[test]
fn a_delete_without_a_known_caller_waits_for_cloudtrail_only_when_someone_is_allowed() {
    let allow = json!({"allow": ["arn:aws:iam::*:role/deploy"]});
    let unknown = Actor::Unknown {
        label: "not named".into(),
    };
    let gone = incident(unknown.clone(), vec![removed("prod", Some("a"))]);
    assert_eq!(
        one(&gone, entry("prod", Some("a"), allow.clone())),
        Action::Nothing,
        "the CloudTrail record of the same delete decides"
    );
    assert_eq!(
        one(&gone, entry("prod", None, allow.clone())),
        Action::Nothing,
        "nor is an unpinned tag pinned and put back from it"
    );
    assert_eq!(
        one(&gone, entry("prod", Some("a"), json!({}))),
        Action::Restore,
        "nobody is allowed: no caller needs to be known"
    );
    let expired = incident(
        Actor::Lifecycle,
        vec![Change::ImageDeleted {
            digest: d("a"),
            tags: vec!["prod".into()],
            rule: Some(1),
        }],
    );
    assert_eq!(
        one(&expired, entry("prod", Some("a"), allow.clone())),
        Action::Restore,
        "the lifecycle policy is a known caller no allow list names"
    );
    let by_deploy = incident(deploy(), vec![removed("prod", Some("a"))]);
    assert_eq!(
        one(&by_deploy, entry("prod", Some("a"), allow)),
        Action::Release
    );
}

#[test]
fn a_keep_alive_tag_moved_onto_another_image_is_put_back() {
    let e = entry("prod", Some("a"), json!({}));
    let moved = incident(user("bob"), vec![pushed(&keep("a"), "b")]);
    let got = decide(&moved, std::slice::from_ref(&e), "etg-keep-");
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].tag.as_str(), &got[0].action, &got[0].cause),
        (
            keep("a").as_str(),
            &Action::RestoreKeep,
            &Cause::Moved { to: d("b") }
        )
    );
    let alarm = report(&got[0], &Outcome::Restored, false).unwrap();
    assert_eq!(
        (alarm.action, alarm.severity, alarm.headline.as_str()),
        (
            "keep_alive",
            Severity::Low,
            "keep-alive tag moved; restored"
        )
    );
    let onto_its_pin = incident(user("bob"), vec![pushed(&keep("a"), "a")]);
    assert!(decide(&onto_its_pin, std::slice::from_ref(&e), "etg-keep-").is_empty());
    let nobodys = incident(user("bob"), vec![pushed(&keep("z"), "b")]);
    assert!(decide(&nobodys, &[e], "etg-keep-").is_empty());
}

mod present_state {
    use super::*;
    use crate::guard::present::{confirm, tags_to_read, Present};

    fn manifest(name: &str) -> Manifest {
        Manifest {
            digest: d(name),
            media_type: Some("m".into()),
            body: body(name),
        }
    }

    /// ECR now: each tag on an image, or a failure code.
    fn now(tags: &[(&str, Result<&str, &str>)]) -> Present {
        let names: Vec<String> = tags.iter().map(|(t, _)| t.to_string()).collect();
        let answer: Vec<Result<Manifest, String>> = tags
            .iter()
            .map(|(_, r)| r.map(manifest).map_err(String::from))
            .collect();
        Present::from_lookup(&names, Some(&answer))
    }

    fn check(d: Decision, p: &Present) -> (Action, String) {
        let c = confirm(d, p, false);
        (c.action, c.why)
    }

    fn restore() -> Decision {
        decision(
            Action::Restore,
            Cause::Deleted {
                digest: Some(d("a")),
            },
            entry("prod", Some("a"), json!({})),
        )
    }

    fn revert(to: &str) -> Decision {
        decision(
            Action::Revert,
            Cause::Moved { to: d(to) },
            entry("prod", Some("a"), json!({})),
        )
    }

    fn follow(to: &str) -> Decision {
        decision(
            Action::Follow {
                to: d(to),
                manifest: None,
            },
            Cause::Moved { to: d(to) },
            entry("prod", Some("a"), json!({})),
        )
    }

    #[test]
    fn a_restore_goes_ahead_only_while_the_tag_is_missing() {
        let gone = now(&[("prod", Err("ImageNotFound"))]);
        assert_eq!(check(restore(), &gone).0, Action::Restore);
        let (a, why) = check(restore(), &now(&[("prod", Ok("a"))]));
        assert_eq!(a, Action::Superseded);
        assert!(why.contains("already back on its pin"), "{why}");
        let (a, why) = check(restore(), &now(&[("prod", Ok("b"))]));
        assert_eq!(
            a,
            Action::Superseded,
            "a late delete never rolls a deploy back"
        );
        assert!(why.contains("pushed since"), "{why}");
        assert_eq!(
            confirm(restore(), &now(&[("prod", Ok("a"))]), true).action,
            Action::Restore,
            "a retry after a crash restores again, so the page goes out"
        );
        assert_eq!(
            check(restore(), &Present::from_lookup(&["prod".into()], None)).0,
            Action::Restore,
            "a repository that is gone: the restore finds out and pages the failure"
        );
    }

    #[test]
    fn a_revert_or_follow_needs_the_tag_where_the_event_put_it() {
        let on_b = now(&[("prod", Ok("b"))]);
        assert_eq!(check(revert("b"), &on_b).0, Action::Revert);
        let (a, why) = check(revert("b"), &now(&[("prod", Ok("c"))]));
        assert_eq!(
            a,
            Action::Superseded,
            "moved again since: that push decides"
        );
        assert!(why.contains("moved again"), "{why}");
        assert_eq!(
            check(revert("b"), &now(&[("prod", Ok("a"))])).0,
            Action::Superseded
        );
        assert_eq!(
            check(revert("b"), &now(&[("prod", Err("ImageNotFound"))])).0,
            Action::Superseded,
            "deleted since: that delete decides"
        );
        // A follow pins what ECR holds now, with the manifest ECR just answered with.
        let f = confirm(follow("b"), &on_b, false);
        assert_eq!(
            f.action,
            Action::Follow {
                to: d("b"),
                manifest: Some(manifest("b"))
            }
        );
        assert_eq!(
            check(follow("b"), &now(&[("prod", Ok("c"))])).0,
            Action::Superseded,
            "never an older digest"
        );
    }

    #[test]
    fn a_release_and_a_first_sight_pin_follow_the_present_too() {
        let release = decision(
            Action::Release,
            Cause::Deleted {
                digest: Some(d("a")),
            },
            entry("prod", Some("a"), json!({})),
        );
        assert_eq!(
            check(release.clone(), &now(&[("prod", Err("ImageNotFound"))])).0,
            Action::Release
        );
        assert_eq!(
            check(release, &now(&[("prod", Ok("b"))])).0,
            Action::Superseded
        );
        let pin = |to: &str| {
            decision(
                Action::Pin {
                    digest: d(to),
                    manifest: None,
                },
                Cause::Pushed { digest: d(to) },
                entry("prod", None, json!({})),
            )
        };
        assert_eq!(
            check(pin("b"), &now(&[("prod", Ok("c"))])).0,
            Action::Superseded
        );
        assert!(matches!(
            check(pin("c"), &now(&[("prod", Ok("c"))])).0,
            Action::Pin { .. }
        ));
    }

    #[test]
    fn a_keep_alive_tag_is_put_back_unless_it_is_on_the_pin() {
        let k = Decision {
            tag: keep("a"),
            ..decision(
                Action::RestoreKeep,
                Cause::Moved { to: d("b") },
                entry("prod", Some("a"), json!({})),
            )
        };
        assert_eq!(
            check(k.clone(), &now(&[(keep("a").as_str(), Ok("b"))])).0,
            Action::RestoreKeep
        );
        assert_eq!(
            check(
                k.clone(),
                &now(&[(keep("a").as_str(), Err("ImageNotFound"))])
            )
            .0,
            Action::RestoreKeep
        );
        assert_eq!(
            check(k, &now(&[(keep("a").as_str(), Ok("a"))])).0,
            Action::Superseded
        );
    }

    #[test]
    fn when_ecr_cannot_say_the_guard_pages_instead_of_writing() {
        let (a, why) = check(restore(), &Present::unreadable("AccessDenied"));
        assert_eq!(a, Action::Alert);
        assert!(why.contains("AccessDenied"), "{why}");
        let (a, _) = check(revert("b"), &now(&[("prod", Err("InvalidImageTag"))]));
        assert_eq!(a, Action::Alert);
        let alert = decision(
            Action::Alert,
            Cause::Deleted { digest: None },
            entry("prod", Some("a"), json!({})),
        );
        assert_eq!(
            check(alert, &Present::unreadable("x")).0,
            Action::Alert,
            "a page writes nothing: it needs no read"
        );
    }

    #[test]
    fn a_removal_from_an_older_image_is_moot_once_the_tag_is_on_its_pin() {
        // The deploy moved prod to b (pin followed); a delete of prod from a, made before
        // the deploy, is delivered after it.
        let late = decide(
            &incident(user("bob"), vec![removed("prod", Some("a"))]),
            &[entry("prod", Some("b"), json!({}))],
            "etg-keep-",
        )
        .remove(0);
        assert_eq!(late.action, Action::Alert);
        assert_eq!(tags_to_read(std::slice::from_ref(&late)), vec!["prod"]);
        assert_eq!(
            check(late.clone(), &now(&[("prod", Ok("b"))])).0,
            Action::Superseded
        );
        assert_eq!(
            check(late, &now(&[("prod", Err("ImageNotFound"))])).0,
            Action::Alert,
            "still worth a page while the tag is off its pin"
        );
    }

    #[test]
    fn only_writes_are_read_and_each_tag_once() {
        let nothing = decision(
            Action::Nothing,
            Cause::Pushed { digest: d("a") },
            entry("other", Some("a"), json!({})),
        );
        assert_eq!(
            tags_to_read(&[restore(), revert("b"), nothing]),
            vec!["prod".to_string()]
        );
    }
}

mod reconcile_callers {
    use super::*;
    use crate::guard::reconcile::{explaining, needs_caller, with_caller, WhoChanged};

    const GRACE: i64 = 900;

    fn at(t: &str, actor: Actor, changes: Vec<Change>) -> Incident {
        Incident {
            time: t.into(),
            ..incident(actor, changes)
        }
    }

    fn drift(action: Action, cause: Cause) -> Decision {
        decision(
            action,
            cause,
            entry(
                "prod",
                Some("a"),
                json!({"allow": ["arn:aws:iam::*:role/deploy"]}),
            ),
        )
    }

    // 2026-01-01T01:00:00Z
    const NOW: i64 = 1_767_229_200;

    #[test]
    fn only_undoing_a_change_on_an_item_with_allow_waits_for_the_caller() {
        assert!(needs_caller(&drift(
            Action::Revert,
            Cause::Moved { to: d("b") }
        )));
        assert!(needs_caller(&drift(
            Action::Restore,
            Cause::Deleted { digest: None }
        )));
        assert!(!needs_caller(&drift(
            Action::Alert,
            Cause::Deleted { digest: None }
        )));
        let no_allow = decision(
            Action::Restore,
            Cause::Deleted { digest: None },
            entry("prod", Some("a"), json!({})),
        );
        assert!(!needs_caller(&no_allow));
    }

    #[test]
    fn the_newest_record_of_the_change_explains_it() {
        let moved = drift(Action::Revert, Cause::Moved { to: d("b") });
        let records = vec![
            at(
                "2026-01-01T00:10:00Z",
                user("bob"),
                vec![pushed("prod", "b")],
            ),
            at("2026-01-01T00:20:00Z", deploy(), vec![pushed("prod", "b")]),
            at(
                "2026-01-01T00:30:00Z",
                user("eve"),
                vec![pushed("prod", "c")],
            ),
            at(
                "2026-01-01T00:40:00Z",
                user("eve"),
                vec![pushed("other", "b")],
            ),
        ];
        let got = explaining(&moved, &records).map(|i| i.time.as_str());
        assert_eq!(got, Some("2026-01-01T00:20:00Z"));
        let missing = drift(Action::Restore, Cause::Deleted { digest: None });
        let deletes = vec![
            at(
                "2026-01-01T00:05:00Z",
                user("bob"),
                vec![Change::ImageDeleted {
                    digest: d("a"),
                    tags: vec![],
                    rule: None,
                }],
            ),
            at(
                "2026-01-01T00:01:00Z",
                deploy(),
                vec![removed("prod", Some("a"))],
            ),
        ];
        let got = explaining(&missing, &deletes).map(|i| i.time.as_str());
        assert_eq!(
            got,
            Some("2026-01-01T00:05:00Z"),
            "a delete by digest counts"
        );
        assert!(explaining(&missing, &records).is_none());
    }

    #[test]
    fn a_drift_is_kept_undone_or_paged_by_who_made_it() {
        let moved = || drift(Action::Revert, Cause::Moved { to: d("b") });
        let by_deploy = at("2026-01-01T00:20:00Z", deploy(), vec![pushed("prod", "b")]);
        let by_bob = at(
            "2026-01-01T00:20:00Z",
            user("bob"),
            vec![pushed("prod", "b")],
        );
        let got = with_caller(moved(), WhoChanged::Record(&by_deploy), NOW, GRACE).unwrap();
        assert_eq!(
            got.action,
            Action::Follow {
                to: d("b"),
                manifest: None
            },
            "an allowed deploy is kept: {}",
            got.why
        );
        let got = with_caller(moved(), WhoChanged::Record(&by_bob), NOW, GRACE).unwrap();
        assert_eq!(got.action, Action::Revert);
        assert!(got.why.contains("user/bob"), "{}", got.why);
        let deleted = drift(Action::Restore, Cause::Deleted { digest: None });
        let del = at(
            "2026-01-01T00:20:00Z",
            deploy(),
            vec![removed("prod", None)],
        );
        assert_eq!(
            with_caller(deleted, WhoChanged::Record(&del), NOW, GRACE)
                .unwrap()
                .action,
            Action::Release
        );
        let young = at(
            "2026-01-01T00:50:00Z",
            user("bob"),
            vec![pushed("prod", "b")],
        );
        assert_eq!(
            with_caller(moved(), WhoChanged::Record(&young), NOW, GRACE),
            None,
            "within the grace period its own event decides"
        );
        assert_eq!(
            with_caller(
                moved(),
                WhoChanged::NotFound {
                    first_seen: NOW - 60
                },
                NOW,
                GRACE
            ),
            None
        );
        let late = with_caller(
            moved(),
            WhoChanged::NotFound {
                first_seen: NOW - GRACE,
            },
            NOW,
            GRACE,
        )
        .unwrap();
        assert_eq!(late.action, Action::Alert, "no record: paged, not undone");
        let refused = |first_seen| {
            with_caller(
                moved(),
                WhoChanged::Unknowable {
                    problem: "AccessDenied".into(),
                    first_seen,
                },
                NOW,
                GRACE,
            )
        };
        assert_eq!(refused(NOW), None, "the grace period first");
        let refused = refused(NOW - 3600).unwrap();
        assert_eq!(refused.action, Action::Alert);
        assert!(refused.why.contains("AccessDenied"), "{}", refused.why);
    }
}

#[test]
fn names_are_the_serialised_kinds() {
    let kind = |v: serde_json::Value| v["kind"].as_str().unwrap_or("?").to_string();
    let actions = [
        Action::Restore,
        Action::Revert,
        Action::Follow {
            to: d("a"),
            manifest: None,
        },
        Action::Pin {
            digest: d("a"),
            manifest: None,
        },
        Action::Release,
        Action::RestoreKeep,
        Action::StoreManifest,
        Action::Unarchive,
        Action::Alert,
        Action::Nothing,
        Action::Superseded,
    ];
    for a in actions {
        assert_eq!(a.name(), kind(serde_json::to_value(&a).unwrap()));
    }
    let outcomes = [
        Outcome::Restored,
        Outcome::AlreadyInPlace,
        Outcome::Followed,
        Outcome::Pinned,
        Outcome::Released,
        Outcome::Alerted,
        Outcome::Unarchiving,
        Outcome::Skipped,
        Outcome::Refused { why: "x".into() },
        Outcome::Failed {
            failure: Failure::Other,
            detail: "x".into(),
        },
        Outcome::Conflict,
    ];
    for o in outcomes {
        assert_eq!(o.name(), kind(serde_json::to_value(&o).unwrap()));
    }
    let causes = [
        Cause::Deleted { digest: None },
        Cause::Expired {
            digest: d("a"),
            rule: None,
        },
        Cause::RepositoryDeleted,
        Cause::Moved { to: d("a") },
        Cause::Pushed { digest: d("a") },
        Cause::Archived { digest: d("a") },
    ];
    for c in causes {
        assert_eq!(c.name(), kind(serde_json::to_value(&c).unwrap()));
    }
}
