//! The use cases on the embedded world: the exactly-once and failure paths, reconcile,
//! registration, rules, with the calls each costs. Compiled only under #[cfg(test)].

use serde_json::{json, Value};

use super::*;
use crate::guard::status::Storage;
use crate::memory::{Image, LedgerRecord, Memory, Scenario};
use crate::ports::Claim;
use crate::ports::{Ledger, Registry, CLAIM_LEASE_SECS};
use crate::registry::{Pin, RepoKey};
use crate::service::{Handler, Now};
use crate::text::sha256_digest;

pub(super) const REPO: &str = "123456789012/eu-west-1/web";

pub(super) fn body(name: &str) -> String {
    format!("{{\"mediaType\":\"m\",\"name\":\"{name}\"}}")
}

pub(super) fn d(name: &str) -> String {
    sha256_digest(body(name).as_bytes())
}

pub(super) fn world(items: Vec<Value>) -> Memory {
    let scenario: Scenario = serde_json::from_value(json!({
        "guard_role_arn": "arn:aws:iam::123456789012:role/guard",
        "repositories": [{"repository": REPO, "images": [
            {"manifest": body("a"), "media_type": "m", "tags": ["keep"]},
            {"manifest": body("b"), "media_type": "m", "tags": ["other"]}
        ]}],
        "registry": items
    }))
    .unwrap();
    Memory::new(scenario.into_state("test").unwrap())
}

/// An item pinning `tag` to image `name`, sealed as if the guard had pinned it.
pub(super) fn pinned(tag: &str, name: &str) -> Value {
    crate::memory::seal_item(&hand_pinned(tag, name))
}

/// An item pinning `tag` to image `name`, written by hand (no seal).
pub(super) fn hand_pinned(tag: &str, name: &str) -> Value {
    json!({"repository": REPO, "tag": tag, "digest": d(name), "manifest": body(name), "media_type": "m"})
}

pub(super) fn handler(w: &Memory) -> Handler<Memory, Memory, Memory, Memory, Memory> {
    Handler {
        registry: w.clone(),
        images: w.clone(),
        pager: w.clone(),
        ledger: w.clone(),
        pin_key: w.clone(),
        scope: crate::guard::Scope {
            own_role_arn: Some("arn:aws:iam::123456789012:role/guard".into()),
            ..Default::default()
        },
        tuning: crate::service::Tuning {
            busy_wait_ms: 600,
            ..Default::default()
        },
        dry_run: false,
    }
}

pub(super) fn now(epoch: i64) -> Now {
    Now {
        epoch,
        rfc3339: "2026-01-01T00:00:00Z".into(),
        lease_until: epoch + CLAIM_LEASE_SECS,
    }
}

pub(super) fn delete_event(id: &str, tag: &str, name: &str) -> Value {
    json!({
        "eventSource": "ecr.amazonaws.com", "eventName": "BatchDeleteImage", "eventID": id,
        "awsRegion": "eu-west-1", "eventTime": "2026-01-01T00:00:00Z",
        "userIdentity": {"arn": "arn:aws:iam::123456789012:user/bob"},
        "requestParameters": {"registryId": "123456789012", "repositoryName": "web", "imageIds": [{"imageTag": tag}]},
        "responseElements": {"imageIds": [{"imageTag": tag, "imageDigest": d(name)}], "failures": []}
    })
}

/// Repositories `a1`, `b2`, `c3`, each with one image tagged `tags` and an item pinning its
/// `prod` tag to that image.
fn three_repositories(tags: &[&str]) -> Memory {
    let repo = |n: &str| format!("123456789012/eu-west-1/{n}");
    let names = ["a1", "b2", "c3"];
    let repos: Vec<Value> = names
        .iter()
        .map(|n| json!({"repository": repo(n), "images": [{"manifest": body("a"), "media_type": "m", "tags": tags}]}))
        .collect();
    let items: Vec<Value> = names
        .iter()
        .map(|n| crate::memory::seal_item(&json!({"repository": repo(n), "tag": "prod", "digest": d("a"), "manifest": body("a"), "media_type": "m"})))
        .collect();
    let scenario: Scenario =
        serde_json::from_value(json!({"repositories": repos, "registry": items})).unwrap();
    Memory::new(scenario.into_state("test").unwrap())
}

/// The next call of `op` fails with `message` (worth a retry when `retryable`).
pub(super) fn fail_next(w: &Memory, op: &str, retryable: bool, message: &str) {
    let e = if retryable {
        crate::error::CallError::transient(op, message)
    } else {
        crate::error::CallError::fatal(op, message)
    };
    w.state().faults.insert(op.into(), e);
}

/// Another invocation claimed `id` at `at` and is still at it.
fn claimed_by_another(w: &Memory, id: &str, at: i64) {
    w.state().ledger.insert(
        id.into(),
        LedgerRecord {
            claimed_at: at,
            lease_until: at + CLAIM_LEASE_SECS,
            ..LedgerRecord::default()
        },
    );
}

/// What a page says was done to each tag it lists (`TAG` → action, in the page's order).
fn tag_actions(p: &crate::page::Page) -> Vec<String> {
    let json: Value =
        serde_json::from_str(p.message.split("--- JSON ---\n").nth(1).unwrap()).unwrap();
    match json["changes"].as_array() {
        Some(changes) => changes
            .iter()
            .map(|c| c["action"].as_str().unwrap().to_string())
            .collect(),
        None => vec![json["action"].as_str().unwrap().to_string()],
    }
}

pub(super) fn take_calls(w: &Memory) -> Vec<String> {
    let mut c = std::mem::take(&mut w.state().calls);
    c.sort();
    c
}

pub(super) fn tag_on(w: &Memory, tag: &str) -> Option<String> {
    let key = RepoKey::parse(REPO).unwrap();
    w.state()
        .repos
        .get(&key)
        .and_then(|r| r.digest_of(tag).map(String::from))
}

#[tokio::test]
async fn restore_then_duplicate() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    let ev = delete_event("e1", "prod", "a");
    let r = h.handle(&ev, &now(100)).await.unwrap();
    assert_eq!(r.pages.len(), 1);
    assert_eq!(tag_on(&w, "prod"), Some(d("a")));
    assert_eq!(
        take_calls(&w),
        [
            "dynamodb:BatchWriteItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "ecr:BatchGetImage",
            "ecr:PutImage",
            "ecr:PutImage",
            "kms:VerifyMac",
            "sns:Publish"
        ],
        "ECR is read and the pin's seal checked before the restore; the second PutImage puts the keep-alive tag, beside the page"
    );
    let r = h.handle(&ev, &now(101)).await.unwrap();
    assert!(r.duplicate);
    assert_eq!(
        take_calls(&w),
        ["dynamodb:Query", "dynamodb:Query", "dynamodb:UpdateItem"]
    );
    assert_eq!(w.state().pages.len(), 1);
    assert_eq!(w.state().history.len(), 1);
}

#[tokio::test]
async fn a_throttled_restore_fails_the_event_releases_the_claim_and_the_retry_restores() {
    let w = world(vec![pinned("prod", "a"), pinned("keep", "a")]);
    let h = handler(&w);
    fail_next(&w, "ecr:PutImage", true, "ThrottlingException");
    let ev = delete_event("e1", "prod", "a");
    let err = h.handle(&ev, &now(100)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        w.state().pages.is_empty(),
        "no page for a restore that will be retried"
    );
    assert!(!w.state().ledger.contains_key("e1"), "claim released");
    assert_eq!(tag_on(&w, "prod"), None);
    let r = h.handle(&ev, &now(160)).await.unwrap();
    assert_eq!(r.pages.len(), 1);
    assert_eq!(tag_on(&w, "prod"), Some(d("a")));
}

#[tokio::test]
async fn a_failed_page_is_kept_and_sent_by_the_retry_without_acting() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    fail_next(&w, "sns:Publish", true, "ThrottlingException");
    let ev = delete_event("e1", "prod", "a");
    let err = h.handle(&ev, &now(100)).await.unwrap_err();
    assert!(err.is_retryable(), "throttled: worth a retry: {err}");
    assert_eq!(w.state().ledger["e1"].pending.len(), 1);
    take_calls(&w);
    let r = h.handle(&ev, &now(200)).await.unwrap();
    assert!(r.duplicate);
    assert_eq!(r.pages.len(), 1);
    assert_eq!(
        take_calls(&w),
        [
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "sns:Publish"
        ]
    );
    assert!(w.state().ledger["e1"].done);
    assert_eq!(w.state().pages.len(), 1);
}

#[tokio::test]
async fn a_page_sns_refuses_is_kept_but_not_retried_as_if_it_could_pass() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    fail_next(
        &w,
        "sns:Publish",
        false,
        "InvalidParameter: Message too long",
    );
    let ev = delete_event("e1", "prod", "a");
    let err = h.handle(&ev, &now(100)).await.unwrap_err();
    assert!(!err.is_retryable(), "SNS would refuse it again: {err}");
    assert_eq!(
        tag_on(&w, "prod"),
        Some(d("a")),
        "the restore itself went through"
    );
    assert_eq!(w.state().ledger["e1"].pending.len(), 1, "kept for a replay");
    // Once the cause is fixed, a replay of the event sends it, and acts no more.
    let r = h.handle(&ev, &now(200)).await.unwrap();
    assert!(r.duplicate);
    assert_eq!(w.state().pages.len(), 1);
}

#[tokio::test]
async fn a_mass_incident_keeps_its_calls_in_flight_within_the_setting() {
    // 200 protected tags, each on its own image, all expired by one lifecycle run.
    let names: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    let images: Vec<Value> = names
        .iter()
        .map(|n| json!({"manifest": body(n), "media_type": "m", "tags": []}))
        .collect();
    let items: Vec<Value> = names.iter().map(|n| pinned(&format!("t-{n}"), n)).collect();
    let scenario: Scenario = serde_json::from_value(json!({
        "guard_role_arn": "arn:aws:iam::123456789012:role/guard",
        "repositories": [{"repository": REPO, "images": images}],
        "registry": items
    }))
    .unwrap();
    let w = Memory::new(scenario.into_state("test").unwrap());
    w.state()
        .repos
        .get_mut(&RepoKey::parse(REPO).unwrap())
        .unwrap()
        .images
        .clear();
    w.state().latency = Some(std::time::Duration::from_millis(2));
    let mut h = handler(&w);
    h.tuning.call_concurrency = 8;
    let actions: Vec<Value> = names
        .iter()
        .map(|n| json!({"lifecycleEventImage": {"digest": d(n), "tagStatus": "Tagged", "tagList": [format!("t-{n}")], "pushedAt": 1}, "rulePriority": 1}))
        .collect();
    let ev = json!({
        "eventSource": "ecr.amazonaws.com", "eventName": "PolicyExecutionEvent", "eventID": "run-1",
        "awsRegion": "eu-west-1", "eventTime": "2026-01-01T00:00:00Z", "eventType": "AwsServiceEvent",
        "userIdentity": {"accountId": "123456789012", "invokedBy": "AWS Internal"},
        "serviceEventDetails": {"repositoryName": "web", "lifecycleEventImageActions": actions}
    });
    let r = h.handle(&ev, &now(100)).await.unwrap();
    let restored = r
        .decisions
        .iter()
        .filter(|d| d.outcome == Some(crate::guard::Outcome::Restored))
        .count();
    assert_eq!(restored, 200);
    assert_eq!(r.pages.len(), 1, "one page for the incident");
    let peaks = w.state().in_flight.clone();
    for op in ["ecr:PutImage", "kms:VerifyMac"] {
        let peak = peaks.get(op).map_or(0, |p| p.1);
        assert!(peak <= 8, "{op}: {peak} calls in flight at once");
        assert!(peak > 1, "{op}: the calls do run side by side ({peak})");
    }
}

#[tokio::test]
async fn two_retries_at_once_send_the_pending_page_once() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    fail_next(&w, "sns:Publish", true, "InternalError");
    let ev = delete_event("e1", "prod", "a");
    assert!(h.handle(&ev, &now(100)).await.is_err());
    assert!(w.state().pages.is_empty());
    // Every call takes a while, so the two deliveries overlap.
    w.state().latency = Some(std::time::Duration::from_millis(50));
    let at = now(200);
    let (a, b) = futures::join!(h.handle(&ev, &at), h.handle(&ev, &at));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.duplicate && b.duplicate, "{a:?} {b:?}");
    assert_eq!(
        a.pages.len() + b.pages.len(),
        1,
        "one of them sent it, the other waited and found it done"
    );
    assert_eq!(w.state().pages.len(), 1);
    assert!(w.state().ledger["e1"].done);
}

#[test]
fn an_invocations_claims_outlast_its_deadline() {
    let n = now(1_000).until(1_000_000 + 300_000);
    assert_eq!(n.lease_until, 1_300 + super::LEASE_MARGIN_SECS);
    assert_eq!(
        now(1_000).until(0).lease_until,
        1_000 + super::LEASE_MARGIN_SECS,
        "a deadline already past still leases beyond now"
    );
}

#[tokio::test]
async fn a_failed_page_and_a_failed_restore_in_one_event_are_both_retried() {
    let w = world(vec![pinned("prod", "a"), pinned("keep", "a")]);
    let h = handler(&w);
    // Two protected tags go with the image; one PutImage is throttled, the page of the other
    // cannot be sent.
    let ev = json!({
        "eventSource": "ecr.amazonaws.com", "eventName": "BatchDeleteImage", "eventID": "e2",
        "awsRegion": "eu-west-1", "userIdentity": {"arn": "arn:aws:iam::123456789012:user/bob"},
        "requestParameters": {"registryId": "123456789012", "repositoryName": "web", "imageIds": [{"imageDigest": d("a")}]},
        "responseElements": {"imageIds": [{"imageDigest": d("a")}]}
    });
    let key = RepoKey::parse(REPO).unwrap();
    w.state()
        .repos
        .get_mut(&key)
        .unwrap()
        .images
        .remove(&d("a"));
    fail_next(&w, "ecr:PutImage", true, "ThrottlingException");
    fail_next(&w, "sns:Publish", true, "InternalError");
    assert!(h.handle(&ev, &now(100)).await.unwrap_err().is_retryable());
    let restored: Vec<bool> = ["prod", "keep"]
        .iter()
        .map(|t| tag_on(&w, t).is_some())
        .collect();
    assert_eq!(
        restored.iter().filter(|r| **r).count(),
        1,
        "one restored, one throttled"
    );
    assert!(w.state().ledger["e2"].redo);
    // The retry sends the kept page and restores the other tag, paging it too.
    let r = h.handle(&ev, &now(200)).await.unwrap();
    assert_eq!(r.pages.len(), 2, "{:?}", r.pages);
    assert_eq!(tag_on(&w, "prod"), Some(d("a")));
    assert_eq!(tag_on(&w, "keep"), Some(d("a")));
    assert!(w.state().ledger["e2"].done);
    assert_eq!(w.state().pages.len(), 2);
}

#[tokio::test]
async fn a_failed_registry_read_releases_the_claim_taken_beside_it() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    w.state().faults.insert(
        "dynamodb:Query".into(),
        crate::error::CallError::transient(
            "dynamodb:Query",
            "ProvisionedThroughputExceededException",
        ),
    );
    let ev = delete_event("e3", "prod", "a");
    assert!(h.handle(&ev, &now(100)).await.unwrap_err().is_retryable());
    assert!(
        !w.state().ledger.contains_key("e3"),
        "the retry must not find it busy"
    );
    assert_eq!(h.handle(&ev, &now(101)).await.unwrap().pages.len(), 1);
}

#[tokio::test]
async fn a_claim_held_by_another_invocation_is_retried_later_and_a_stale_one_resumed() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    claimed_by_another(&w, "e1", 100);
    let ev = delete_event("e1", "prod", "a");
    assert!(matches!(
        h.handle(&ev, &now(110)).await,
        Err(crate::error::Error::Busy(_))
    ));
    // The other invocation died after restoring: the tag is in place, yet it was never paged.
    let key = RepoKey::parse(REPO).unwrap();
    w.state()
        .repos
        .get_mut(&key)
        .unwrap()
        .images
        .get_mut(&d("a"))
        .unwrap()
        .tags
        .insert("prod".into());
    let r = h
        .handle(&ev, &now(100 + CLAIM_LEASE_SECS + 1))
        .await
        .unwrap();
    assert_eq!(
        r.pages.len(),
        1,
        "the resumed attempt pages what the first one did"
    );
}

#[tokio::test]
async fn ignored_events_cost_nothing_and_unprotected_pushes_two_reads() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    let mut ev = delete_event("e1", "prod", "a");
    ev["errorCode"] = json!("AccessDenied");
    assert!(h.handle(&ev, &now(1)).await.unwrap().ignored.is_some());
    assert!(take_calls(&w).is_empty());
    let push = json!({"detail-type": "ECR Image Action", "source": "aws.ecr", "id": "p1", "account": "123456789012", "region": "eu-west-1",
        "detail": {"result": "SUCCESS", "action-type": "PUSH", "repository-name": "web", "image-digest": d("b"), "image-tag": "dev"}});
    assert!(h.handle(&push, &now(1)).await.unwrap().decisions.is_empty());
    assert_eq!(
        take_calls(&w),
        ["dynamodb:Query", "dynamodb:Query"],
        "the repository's items and the rules, together"
    );
}

#[tokio::test]
async fn invalid_items_are_reported_and_do_not_hide_the_others() {
    let w = world(vec![
        pinned("prod", "a"),
        json!({"repository": REPO, "tag": "bad", "on_move": "sideways"}),
    ]);
    let r = handler(&w)
        .handle(&delete_event("e1", "prod", "a"), &now(1))
        .await
        .unwrap();
    assert_eq!(r.invalid_entries.len(), 1);
    assert!(r.invalid_entries[0].problems[0].contains("sideways"));
    assert_eq!(r.pages.len(), 1);
    assert_eq!(tag_on(&w, "prod"), Some(d("a")));
}

#[tokio::test]
async fn a_pin_is_only_written_over_the_digest_it_was_read_with() {
    let w = world(vec![
        pinned("prod", "a"),
        json!({"repository": REPO, "tag": "qa"}),
    ]);
    let key = RepoKey::parse(REPO).unwrap();
    let new_pin = Pin {
        digest: d("b"),
        manifest: None,
        children: vec![],
        pinned_by: Some("t".into()),
        pinned_at: None,
        mac: None,
    };
    assert!(
        !w.set_pin(&key, "prod", Some(&d("b")), Some(&new_pin))
            .await
            .unwrap(),
        "changed meanwhile"
    );
    assert!(
        !w.set_pin(&key, "prod", None, Some(&new_pin)).await.unwrap(),
        "already pinned"
    );
    assert!(
        !w.set_pin(&key, "missing", None, Some(&new_pin))
            .await
            .unwrap(),
        "no such item"
    );
    assert_eq!(
        w.state().items[&(REPO.to_string(), "prod".to_string())]["digest"],
        json!(d("a"))
    );
    assert!(w
        .set_pin(&key, "prod", Some(&d("a")), Some(&new_pin))
        .await
        .unwrap());
    let item = w.state().items[&(REPO.to_string(), "prod".to_string())].clone();
    assert_eq!(item["digest"], json!(d("b")));
    assert!(
        item.get("manifest").is_none(),
        "the old manifest does not stay with the new digest"
    );
    assert!(w.set_pin(&key, "qa", None, Some(&new_pin)).await.unwrap());
    assert!(
        w.set_pin(&key, "qa", Some(&d("b")), None).await.unwrap(),
        "released"
    );
    assert!(w.state().items[&(REPO.to_string(), "qa".to_string())]
        .get("digest")
        .is_none());
    assert!(matches!(
        w.claim("fresh", 1, 361).await.unwrap(),
        Claim::Fresh
    ));
}

#[test]
fn scenario_errors_name_the_place() {
    let bad: Scenario =
        serde_json::from_value(json!({"repositories": [{"repository": "nope", "images": []}]}))
            .unwrap();
    let e = bad.into_state("s.json").unwrap_err().to_string();
    assert!(e.starts_with("s.json: repositories[0]"), "{e}");
    let bad: Scenario = serde_json::from_value(
        json!({"repositories": [{"repository": REPO, "images": [{"tags": ["x"]}]}]}),
    )
    .unwrap();
    assert!(bad
        .into_state("s")
        .unwrap_err()
        .problem
        .contains("images[0]"));
    let twice: Scenario = serde_json::from_value(
        json!({"registry": [{"repository": REPO, "tag": "t"}, {"repository": REPO, "tag": "t"}]}),
    )
    .unwrap();
    assert!(twice.into_state("s").unwrap_err().problem.contains("twice"));
    assert!(
        serde_json::from_value::<Scenario>(json!({"repos": []})).is_err(),
        "unknown fields are refused"
    );
}

#[test]
fn a_saved_state_loads_back_the_same() {
    let w = world(vec![pinned("prod", "a")]);
    let saved = Scenario::from_state(
        &w.state(),
        Some("arn:aws:iam::123456789012:role/guard".into()),
    );
    let again = Memory::new(saved.clone().into_state("saved").unwrap());
    assert_eq!(again.state().repos, w.state().repos);
    assert_eq!(again.state().items, w.state().items);
}

/// A world where each protected tag has drifted in its own way.
fn drifted() -> Memory {
    let keep = |n: &str| crate::registry::keep_tag("etg-keep-", &d(n)).unwrap();
    let scenario: Scenario = serde_json::from_value(json!({
        "repositories": [{"repository": REPO, "images": [
            {"manifest": body("a"), "media_type": "m", "tags": ["holder", keep("a")]},
            {"manifest": body("b"), "media_type": "m", "tags": ["moved", "qa"]},
            {"manifest": body("f"), "media_type": "m", "tags": ["fine", "bare"]},
            {"manifest": body("z"), "media_type": "m", "tags": ["cold", keep("z")], "storage": "archived"}
        ], "layers_gone": [d("c")]}],
        "registry": [
            pinned("missing", "a"),
            pinned("moved", "a"),
            {"repository": REPO, "tag": "qa"},
            {"repository": REPO, "tag": "bare", "digest": d("f")},
            pinned("fine", "f"),
            pinned("gone", "c"),
            pinned("cold", "z"),
            {"repository": REPO, "tag": "broken", "on_move": "sideways"}
        ]
    }))
    .unwrap();
    Memory::new(scenario.into_state("drifted").unwrap())
}

#[tokio::test]
async fn reconcile_repairs_each_drift_and_pages_a_lasting_problem_once() {
    let w = drifted();
    let h = handler(&w);
    let keep = |n: &str| crate::registry::keep_tag("etg-keep-", &d(n)).unwrap();
    let mut seen = Vec::new();
    let r = h
        .reconcile(&now(1000), &w.clone(), &mut |done, total, _| {
            seen.push((done, total))
        })
        .await
        .unwrap();
    assert_eq!(seen, vec![(1, 1)], "progress per repository");
    assert_eq!((r.repositories, r.checked, r.invalid.len()), (1, 7, 1));
    let outcome = |tag: &str| {
        r.repairs
            .iter()
            .find(|h| h.decision.tag == tag)
            .and_then(|h| h.outcome.clone())
    };
    assert_eq!(outcome("missing"), Some(Outcome::Restored));
    assert_eq!(outcome("moved"), Some(Outcome::Restored), "reverted");
    assert_eq!(outcome("qa"), Some(Outcome::Pinned));
    assert_eq!(
        outcome("bare"),
        Some(Outcome::Pinned),
        "its manifest is now stored"
    );
    // fine's keep-alive tag: put back by its own repair, or already by bare's (same digest).
    assert!(matches!(
        outcome(&keep("f")),
        Some(Outcome::Restored | Outcome::AlreadyInPlace)
    ));
    assert_eq!(tag_on(&w, &keep("f")), Some(d("f")));
    assert!(matches!(outcome("gone"), Some(Outcome::Failed { .. })));
    assert_eq!(outcome("cold"), Some(Outcome::Unarchiving));
    assert_eq!(
        w.state().repos[&RepoKey::parse(REPO).unwrap()].images[&d("z")].storage,
        Storage::Activating
    );
    assert_eq!(tag_on(&w, "missing"), Some(d("a")));
    assert_eq!(tag_on(&w, "moved"), Some(d("a")));
    assert_eq!(
        tag_on(&w, &keep("b")),
        Some(d("b")),
        "qa's new pin carries its keep-alive tag"
    );
    let items = w.state().items.clone();
    assert_eq!(
        items[&(REPO.to_string(), "qa".to_string())]["digest"],
        json!(d("b"))
    );
    assert_eq!(
        items[&(REPO.to_string(), "bare".to_string())]["manifest"],
        json!(body("f"))
    );
    assert_eq!(r.pages.len(), 1, "one page for the repository");
    let pages = tag_actions(&r.pages[0]);
    assert_eq!(
        pages.iter().filter(|a| *a == "failed").count(),
        1,
        "{pages:?}"
    );
    assert_eq!(
        pages.iter().filter(|a| *a == "unarchive").count(),
        1,
        "{pages:?}"
    );
    assert!(pages.contains(&"restored".to_string()), "{pages:?}");
    assert!(pages.contains(&"reverted".to_string()), "{pages:?}");
    assert!(
        r.pages[0]
            .subject
            .starts_with(&format!("[HIGH] {} tags in web: ", pages.len())),
        "{}",
        r.pages[0].subject
    );
    assert_eq!(r.pages[0].attributes["severity"], "high");

    // The next run finds everything right but the lasting failure and the image on its way
    // back from archive (left to ECR), and pages neither.
    let again = h
        .reconcile(&now(4600), &w.clone(), &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(again.ok, 5, "{:?}", again.repairs);
    assert_eq!(again.repairs.len(), 1);
    assert!(again.pages.is_empty());
}

#[tokio::test]
async fn a_dry_run_reconcile_changes_nothing() {
    let w = drifted();
    let h = Handler {
        dry_run: true,
        ..handler(&w)
    };
    let r = h
        .reconcile(&now(1000), &w.clone(), &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(r.repairs.len(), 7);
    assert!(r.repairs.iter().all(|h| h.outcome.is_none()));
    assert_eq!(tag_on(&w, "missing"), None);
    assert!(w.state().pages.is_empty());
    let writes: Vec<String> = w
        .state()
        .calls
        .iter()
        .filter(|c| {
            ![
                "Scan",
                "Query",
                "BatchGetImage",
                "DescribeImages",
                "VerifyMac",
            ]
            .iter()
            .any(|r| c.ends_with(r))
        })
        .cloned()
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
}

/// A plain-JSON value as DynamoDB JSON, as a stream record carries it.
fn ddb(v: &Value) -> Value {
    match v {
        Value::String(s) => json!({"S": s}),
        Value::Number(n) => json!({"N": n.to_string()}),
        Value::Bool(b) => json!({"BOOL": b}),
        Value::Array(a) => json!({"L": a.iter().map(ddb).collect::<Vec<_>>()}),
        Value::Object(o) => {
            json!({"M": o.iter().map(|(k, v)| (k.clone(), ddb(v))).collect::<serde_json::Map<_, _>>()})
        }
        Value::Null => json!({"NULL": true}),
    }
}

/// A DynamoDB Stream event with one record per (sequence number, event name, new image).
pub(super) fn stream_event(records: &[(&str, &str, Value)]) -> Value {
    let recs: Vec<Value> = records
        .iter()
        .map(|(seq, name, item)| {
            let image = match ddb(item) {
                Value::Object(mut m) => m.remove("M").unwrap_or(Value::Null),
                other => other,
            };
            json!({"eventID": format!("e{seq}"), "eventName": name, "eventSource": "aws:dynamodb",
                "dynamodb": {"Keys": {}, "NewImage": image, "SequenceNumber": seq, "StreamViewType": "NEW_IMAGE"}})
        })
        .collect();
    json!({ "Records": recs })
}

pub(super) async fn register(
    w: &Memory,
    event: &Value,
) -> crate::service::registration::StreamReport {
    let records = crate::service::registration::stream_records(event).expect("a stream event");
    handler(w).register(&records, &now(500)).await
}

pub(super) fn item(w: &Memory, tag: &str) -> Value {
    w.state().items[&(REPO.to_string(), tag.to_string())].clone()
}

#[tokio::test]
async fn a_bare_item_written_by_hand_is_pinned_from_its_stream_record() {
    let bare = json!({"repository": REPO, "tag": "keep", "owner": "team"});
    let w = world(vec![bare.clone()]);
    let r = register(&w, &stream_event(&[("100", "INSERT", bare)])).await;
    assert_eq!(r.records[0].outcome, "pinned");
    assert!(r.failures.is_empty());
    let it = item(&w, "keep");
    assert_eq!(it["digest"], json!(d("a")));
    assert_eq!(it["manifest"], json!(body("a")));
    assert_eq!(it["pinned_by"], "ecr-tag-guard (pinned on registration)");
    assert_eq!(it["owner"], "team", "the user's fields stay");
    let keep = crate::registry::keep_tag("etg-keep-", &d("a")).unwrap();
    assert_eq!(tag_on(&w, &keep), Some(d("a")), "keep-alive tag");
    assert_eq!(w.state().history[0].action.as_str(), "pin");
    assert!(w.state().pages.is_empty(), "a pin is not paged");

    // The guard's own write comes back as a record: nothing to do, no call.
    take_calls(&w);
    let r = register(&w, &stream_event(&[("101", "MODIFY", it)])).await;
    assert_eq!(r.records[0].outcome, "skipped: already pinned and sealed");
    assert_eq!(
        take_calls(&w),
        ["dynamodb:GetItem", "kms:VerifyMac"],
        "read back and checked, nothing written: no loop"
    );
}

#[tokio::test]
async fn a_missing_tag_is_marked_and_paged_once() {
    let bare = json!({"repository": REPO, "tag": "nope"});
    let w = world(vec![bare.clone()]);
    let r = register(&w, &stream_event(&[("100", "INSERT", bare.clone())])).await;
    assert_eq!(r.records[0].outcome, "not found");
    let marked = item(&w, "nope");
    assert_eq!(marked["not_found_at"], "2026-01-01T00:00:00Z");
    assert_eq!(w.state().pages.len(), 1);
    let page = w.state().pages[0].clone();
    assert_eq!(page.attributes["severity"], "low");
    assert_eq!(page.attributes["action"], "not_found");
    // The mark's own record, and the same item written again: no second page, no retry.
    let r = register(&w, &stream_event(&[("101", "MODIFY", marked)])).await;
    assert!(r.records[0]
        .outcome
        .starts_with("skipped: marked not found"));
    w.state()
        .items
        .insert((REPO.to_string(), "nope".to_string()), bare.clone());
    let r = register(&w, &stream_event(&[("102", "MODIFY", bare)])).await;
    assert_eq!(r.records[0].outcome, "not found");
    assert_eq!(w.state().pages.len(), 1, "paged once per item");
    // Status reads it as what it is.
    let entry = crate::registry::parse_item(&item(&w, "nope")).unwrap();
    assert_eq!(
        crate::guard::status::standing(
            &entry,
            Some(Err("ImageNotFound")),
            crate::guard::status::Storage::Standard,
            false
        ),
        crate::guard::status::TagState::TagNotFound
    );
}

#[tokio::test]
async fn one_bad_record_neither_blocks_nor_reruns_the_others() {
    let good = json!({"repository": REPO, "tag": "keep"});
    let other = json!({"repository": REPO, "tag": "other"});
    let invalid = json!({"repository": REPO, "tag": "bad", "on_move": "sideways"});
    let history =
        json!({"repository": format!("history#{REPO}:keep"), "tag": "2026#x#0", "action": "pin"});
    let w = world(vec![good.clone(), other.clone(), invalid.clone()]);
    let mut event = stream_event(&[
        ("1", "INSERT", good),
        ("2", "INSERT", invalid),
        ("3", "INSERT", history),
        ("4", "REMOVE", json!({})),
        ("5", "INSERT", other),
    ]);
    event["Records"][3]["dynamodb"]
        .as_object_mut()
        .unwrap()
        .remove("NewImage");
    // ECR throttles the third read: that record, and only it, is named for a retry.
    let r = register(&w, &event).await;
    let outcomes: Vec<&str> = r.records.iter().map(|x| x.outcome.as_str()).collect();
    assert_eq!(outcomes[0], "pinned");
    assert!(
        outcomes[1].starts_with("invalid: on_move `sideways`"),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[2], "skipped: the guard's own record");
    assert_eq!(outcomes[3], "skipped: a removal");
    assert_eq!(outcomes[4], "pinned");
    assert!(r.failures.is_empty());

    let again = json!({"repository": REPO, "tag": "again"});
    w.state()
        .items
        .insert((REPO.to_string(), "again".into()), again.clone());
    fail_next(
        &w,
        "ecr:BatchGetImage",
        true,
        "ThrottlingException: slow down",
    );
    let r = register(
        &w,
        &stream_event(&[("7", "INSERT", again), ("8", "MODIFY", item(&w, "keep"))]),
    )
    .await;
    assert_eq!(r.failures, vec!["7"], "{:?}", r.records);
    assert_eq!(r.records[1].outcome, "skipped: already pinned and sealed");
}

#[test]
fn stream_records_are_read_and_their_problems_named() {
    assert!(crate::service::registration::stream_records(&json!({"detail-type": "x"})).is_none());
    assert!(crate::service::registration::stream_records(
        &json!({"Records": [{"eventSource": "aws:sqs"}]})
    )
    .is_none());
    let got = crate::service::registration::stream_records(&json!({"Records": [
        {"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": {"NewImage": {"a": {"S": "x"}}}},
        {"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": {"SequenceNumber": "9", "NewImage": {"a": {"Q": "x"}}}},
        {"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": {"SequenceNumber": "10", "NewImage": {
            "n": {"N": "3"}, "l": {"L": [{"S": "a"}, {"M": {"k": {"BOOL": true}}}]}, "ss": {"SS": ["x"]}}}}
    ]}))
    .unwrap();
    assert!(got[0]
        .as_ref()
        .unwrap_err()
        .1
        .contains("no dynamodb.SequenceNumber"));
    assert_eq!(
        got[1].as_ref().unwrap_err(),
        &(
            "9".to_string(),
            "Records[1]: attribute a: type Q is not read".to_string()
        )
    );
    assert_eq!(
        got[2].as_ref().unwrap().item,
        Some(json!({"n": 3, "l": ["a", {"k": true}], "ss": ["x"]}))
    );
}

#[tokio::test]
async fn registration_stores_a_missing_manifest_and_pages_a_pin_whose_image_is_gone() {
    let no_manifest = json!({"repository": REPO, "tag": "keep", "digest": d("a")});
    // Sealed: the guard saw it under the tag before ECR lost it.
    let gone =
        crate::memory::seal_item(&json!({"repository": REPO, "tag": "old", "digest": d("z")}));
    let w = world(vec![no_manifest.clone(), gone.clone()]);
    let r = register(
        &w,
        &stream_event(&[("1", "MODIFY", no_manifest), ("2", "INSERT", gone)]),
    )
    .await;
    let outcomes: Vec<&str> = r.records.iter().map(|x| x.outcome.as_str()).collect();
    assert_eq!(outcomes, ["manifest stored", "pinned image not found"]);
    assert_eq!(item(&w, "keep")["manifest"], json!(body("a")));
    assert_eq!(w.state().history[0].action.as_str(), "store_manifest");
    assert_eq!(w.state().pages.len(), 1);
    assert_eq!(w.state().pages[0].attributes["action"], "not_found");
    assert_eq!(item(&w, "old").get("manifest"), None, "nothing invented");
}

/// A user's push of `tag` on a new image `name` (in ECR already), as CloudTrail records it.
pub(super) fn push_event(id: &str, tag: &str, name: &str, w: &Memory, pushed_at: i64) -> Value {
    let repo = RepoKey::parse(REPO).unwrap();
    w.state().repos.get_mut(&repo).unwrap().images.insert(
        d(name),
        Image {
            manifest: Some(body(name)),
            media_type: Some("m".into()),
            tags: [tag.to_string()].into_iter().collect(),
            storage: Storage::Standard,
            pushed_at,
        },
    );
    json!({
        "eventSource": "ecr.amazonaws.com", "eventName": "PutImage", "eventID": id,
        "awsRegion": "eu-west-1", "eventTime": "2026-01-01T00:00:00Z",
        "userIdentity": {"arn": "arn:aws:iam::123456789012:user/ci"},
        "requestParameters": {"registryId": "123456789012", "repositoryName": "web", "imageTag": tag, "imageManifest": body(name)},
        "responseElements": {"image": {"imageId": {"imageDigest": d(name), "imageTag": tag}, "imageManifest": body(name)}}
    })
}

#[tokio::test]
async fn a_rule_push_that_cannot_list_the_images_is_retried_and_an_invalid_rule_never_stops_it() {
    let rule = json!({"repository": "rule#", "tag": "rel", "repositories": REPO, "pattern": "^rel-", "keep": 1});
    let broken = json!({"repository": "rule#", "tag": "broken", "repositories": REPO, "pattern": "(", "keep": 1});
    let w = world(vec![rule, broken]);
    let h = handler(&w);
    let ev = push_event("p1", "rel-1", "c", &w, 10);
    fail_next(
        &w,
        "ecr:DescribeImages",
        true,
        "ThrottlingException: slow down",
    );
    let err = h.handle(&ev, &now(1)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        w.state().ledger.is_empty(),
        "nothing claimed for the retry to trip on"
    );
    let r = h.handle(&ev, &now(2)).await.unwrap();
    assert_eq!(
        r.invalid_entries
            .iter()
            .map(|b| b.key.as_str())
            .collect::<Vec<_>>(),
        ["rule#:broken"]
    );
    let changes: Vec<(&str, &str)> = r
        .rule_changes
        .iter()
        .map(|c| (c.tag.as_str(), c.change.as_str()))
        .collect();
    assert_eq!(changes, [("rel-1", "pinned")]);
    assert_eq!(item(&w, "rel-1")["rule"], "rel");
    // The next build releases it: keep 1.
    let r = h
        .handle(&push_event("p2", "rel-2", "d", &w, 20), &now(3))
        .await
        .unwrap();
    let changes: Vec<(&str, &str)> = r
        .rule_changes
        .iter()
        .map(|c| (c.tag.as_str(), c.change.as_str()))
        .collect();
    assert_eq!(changes, [("rel-2", "pinned"), ("rel-1", "released")]);
    assert!(!w
        .state()
        .items
        .contains_key(&(REPO.to_string(), "rel-1".to_string())));
}

#[tokio::test]
async fn an_unreadable_event_is_paged_once_and_a_failed_page_is_worth_a_retry() {
    let w = world(vec![]);
    let h = handler(&w);
    let ev = json!({"id": "bad-1", "detail-type": "ECR Image Action", "source": "aws.ecr", "detail": {}});
    let bad = || crate::error::Error::BadEvent(crate::events::ParseError("no image-digest".into()));
    fail_next(&w, "sns:Publish", false, "AuthorizationError");
    let err = h.page_unreadable(&ev, &bad(), &now(100)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(w.state().pages.is_empty());
    h.page_unreadable(&ev, &bad(), &now(101)).await.unwrap();
    h.page_unreadable(&ev, &bad(), &now(102)).await.unwrap();
    let pages = &w.state().pages;
    assert_eq!(pages.len(), 1, "once per event");
    assert_eq!(pages[0].attributes["action"], "unreadable");
    assert!(pages[0].message.contains("no image-digest"));
    assert!(pages[0].message.contains("bad-1"));
}

#[tokio::test]
async fn an_event_read_and_then_stopped_is_never_paged_as_unreadable() {
    let w = world(vec![]);
    let h = handler(&w);
    let ev = delete_event("e-stopped", "prod", "a");
    let refused = crate::error::Error::Call(crate::error::CallError::fatal(
        "ecr:PutImage",
        "AccessDeniedException: not authorized",
    ));
    h.page_unreadable(&ev, &refused, &now(100)).await.unwrap();
    let pages = &w.state().pages;
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].attributes["action"], "not_handled");
    assert_eq!(pages[0].attributes["severity"], "high");
    assert!(
        !pages[0].subject.contains("could not be read"),
        "{}",
        pages[0].subject
    );
    assert!(
        pages[0].message.contains("AccessDeniedException"),
        "{}",
        pages[0].message
    );
    assert!(
        pages[0].message.contains("replay --aws"),
        "{}",
        pages[0].message
    );
}

#[tokio::test]
async fn a_problem_whose_page_failed_is_paged_by_the_next_reconcile() {
    // A protected tag whose repository is gone: a problem reconcile pages once per incident.
    let gone = json!({"repository": "123456789012/eu-west-1/gone", "tag": "prod",
        "digest": d("a"), "manifest": body("a"), "media_type": "m"});
    let w = world(vec![gone]);
    let h = handler(&w);
    fail_next(&w, "sns:Publish", true, "ServiceUnavailable");
    let r = h
        .reconcile(&now(1000), &w.clone(), &mut |_, _, _| {})
        .await
        .unwrap();
    // The repository was checked: a page SNS did not take is no reconcile failure. It is
    // kept, and the next run sends it first.
    assert!(r.failures.is_empty(), "{r:?}");
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("kept, the next run sends it")),
        "{:?}",
        r.warnings
    );
    assert_eq!(w.state().unsent.len(), 1);
    let alerts = |w: &Memory| {
        w.state()
            .pages
            .iter()
            .filter(|p| p.attributes["action"] == "alert")
            .count()
    };
    assert_eq!(alerts(&w), 0);
    // SNS healthy again: the page goes out now, not three days later.
    let r = h
        .reconcile(&now(1100), &w.clone(), &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(r.pages.len(), 1, "{:?}", r.repairs);
    assert_eq!(alerts(&w), 1);
    // ...and only once.
    let r = h
        .reconcile(&now(1200), &w.clone(), &mut |_, _, _| {})
        .await
        .unwrap();
    assert!(r.pages.is_empty());
}

#[tokio::test]
async fn an_event_is_marked_done_only_after_its_page_went_out() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    fail_next(&w, "sns:Publish", true, "ServiceUnavailable");
    let ev = delete_event("e9", "prod", "a");
    assert!(h.handle(&ev, &now(100)).await.is_err());
    let record = w.state().ledger["e9"].clone();
    assert!(!record.done, "not done: the page is still to go");
    assert_eq!(record.pending.len(), 1);
}

#[tokio::test]
async fn one_unreadable_repository_does_not_stop_reconcile() {
    let w = three_repositories(&["v1"]);
    let h = handler(&w);
    // The first repository's read is refused.
    fail_next(
        &w,
        "ecr:BatchGetImage",
        false,
        "AccessDeniedException: not allowed",
    );
    let r = h
        .reconcile(&now(1000), &w.clone(), &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
    assert!(
        r.failures[0].starts_with("123456789012/eu-west-1/a1: ecr:BatchGetImage"),
        "named with its repository and the AWS error: {:?}",
        r.failures
    );
    let restored: Vec<&str> = r
        .repairs
        .iter()
        .filter(|h| h.outcome == Some(Outcome::Restored))
        .map(|h| h.decision.entry.repo.name.as_str())
        .collect();
    assert_eq!(restored, ["b2", "c3"], "the run went on");
    let actions: Vec<String> = w
        .state()
        .pages
        .iter()
        .map(|p| p.attributes["action"].clone())
        .collect();
    assert!(
        actions.contains(&"reconcile_failed".to_string()),
        "{actions:?}"
    );
    // The next run gets through it.
    let r = h
        .reconcile(&now(2000), &w.clone(), &mut |_, _, _| {})
        .await
        .unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(r.repairs.len(), 1);
}

#[tokio::test]
async fn a_delivery_that_finds_its_event_in_hand_waits_and_stays_quiet() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    // Another invocation claimed the event a moment ago...
    claimed_by_another(&w, "e1", 100);
    let ev = delete_event("e1", "prod", "a");
    // ...and finishes it while this delivery waits.
    let other = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        w.state().ledger.get_mut("e1").unwrap().done = true;
    };
    let at = now(101);
    let (r, ()) = tokio::join!(h.handle(&ev, &at), other);
    let r = r.expect("a duplicate is not a failed invocation");
    assert!(r.duplicate);
    assert!(r.pages.is_empty());
    assert!(w.state().pages.is_empty(), "nothing sent twice");
}

#[tokio::test]
async fn reconcile_takes_the_least_recently_reconciled_first_and_resumes_after_a_deadline() {
    let repo = |n: &str| format!("123456789012/eu-west-1/{n}");
    let w = three_repositories(&["prod"]);
    let h = Handler {
        tuning: crate::service::Tuning {
            reconcile_concurrency: 1,
            ..handler(&w).tuning
        },
        ..handler(&w)
    };
    // Out of time before it starts: nothing done, everything left for the next run.
    let past = std::time::Instant::now();
    let r = h
        .reconcile_until(&now(1000), &w.clone(), Some(past), &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!((r.repositories, r.left, r.checked), (3, 3, 0));
    // a1 reconciled most recently, c3 never: c3 goes first, a1 last.
    w.state().reconciled.insert(repo("a1"), 900);
    w.state().reconciled.insert(repo("b2"), 800);
    let mut order = Vec::new();
    let r = h
        .reconcile_until(&now(1000), &w.clone(), None, &mut |_, _, r| {
            order.push(r.name.clone())
        })
        .await
        .unwrap();
    assert_eq!(order, ["c3", "b2", "a1"]);
    assert_eq!(r.left, 0);
    let noted: Vec<i64> = w.state().reconciled.values().copied().collect();
    assert_eq!(noted, [1000, 1000, 1000], "each noted as reconciled now");
}

#[tokio::test]
async fn registration_completes_a_sealed_pin_once_and_its_own_write_does_not_loop() {
    // The guard's own pin without manifest (a follow whose image ECR had lost meanwhile).
    let own =
        crate::memory::seal_item(&json!({"repository": REPO, "tag": "keep", "digest": d("a"),
        "pinned_by": "ecr-tag-guard (followed the move)"}));
    let w = world(vec![own.clone()]);
    take_calls(&w);
    let r = register(&w, &stream_event(&[("1", "MODIFY", own)])).await;
    assert_eq!(r.records[0].outcome, "manifest stored");
    assert_eq!(item(&w, "keep")["manifest"], json!(body("a")));
    take_calls(&w);
    // The write comes back as a record: read back and checked, nothing written.
    let again = register(&w, &stream_event(&[("2", "MODIFY", item(&w, "keep"))])).await;
    assert_eq!(
        again.records[0].outcome,
        "skipped: already pinned and sealed"
    );
    assert_eq!(
        take_calls(&w),
        ["dynamodb:GetItem", "kms:VerifyMac"],
        "no loop through the stream"
    );
}

#[tokio::test]
async fn when_ecr_cannot_be_read_before_a_restore_the_guard_pages_and_writes_nothing() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    fail_next(&w, "ecr:BatchGetImage", false, "AccessDeniedException: no");
    let r = h
        .handle(&delete_event("e1", "prod", "a"), &now(100))
        .await
        .unwrap();
    assert_eq!(r.decisions[0].decision.action, crate::guard::Action::Alert);
    assert!(
        r.decisions[0]
            .decision
            .why
            .contains("AccessDeniedException"),
        "{}",
        r.decisions[0].decision.why
    );
    assert!(!take_calls(&w).contains(&"ecr:PutImage".to_string()));
    assert_eq!(w.state().pages[0].attributes["action"], "alert");
    assert_eq!(tag_on(&w, "prod"), None);
}

#[tokio::test]
async fn a_throttled_read_before_a_restore_is_retried_with_the_claim_released() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    fail_next(&w, "ecr:BatchGetImage", true, "ThrottlingException");
    let ev = delete_event("e1", "prod", "a");
    let err = h.handle(&ev, &now(100)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(!w.state().ledger.contains_key("e1"), "claim released");
    assert!(w.state().pages.is_empty());
    let r = h.handle(&ev, &now(101)).await.unwrap();
    assert_eq!(r.pages.len(), 1);
    assert_eq!(tag_on(&w, "prod"), Some(d("a")));
}

/// `n` repositories `r0`… each with `prod` deleted (restored by reconcile) and `watch`
/// deleted with `on_delete: alert` (a problem that stays).
fn drifted_repositories(n: usize) -> Memory {
    let repo = |i: usize| format!("123456789012/eu-west-1/r{i}");
    let repos: Vec<Value> = (0..n)
        .map(|i| json!({"repository": repo(i), "images": [{"manifest": body("a"), "media_type": "m", "tags": [crate::registry::keep_tag("etg-keep-", &d("a")).unwrap()]}]}))
        .collect();
    let items: Vec<Value> = (0..n)
        .flat_map(|i| {
            [
                crate::memory::seal_item(&json!({"repository": repo(i), "tag": "prod", "digest": d("a"), "manifest": body("a"), "media_type": "m"})),
                crate::memory::seal_item(&json!({"repository": repo(i), "tag": "watch", "digest": d("a"), "manifest": body("a"), "media_type": "m", "on_delete": "alert"})),
            ]
        })
        .collect();
    let scenario: Scenario =
        serde_json::from_value(json!({"repositories": repos, "registry": items})).unwrap();
    Memory::new(scenario.into_state("test").unwrap())
}

#[tokio::test]
async fn a_mass_drift_pages_once_per_repository_up_to_the_budget_then_sums_up() {
    let w = drifted_repositories(8);
    let mut h = handler(&w);
    h.tuning.pages_per_run = 3;
    let r = h
        .reconcile(&now(1000), &w.clone(), &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(r.repairs.len(), 16, "every tag is repaired or alerted");
    assert_eq!(w.state().history.len(), 16, "history keeps every one");
    let subjects: Vec<&str> = r.pages.iter().map(|p| p.subject.as_str()).collect();
    assert_eq!(
        r.pages.len(),
        4,
        "3 repositories, then one summary: {subjects:?}"
    );
    let own: Vec<&crate::page::Page> = r
        .pages
        .iter()
        .filter(|p| p.attributes["action"] != "summary")
        .collect();
    assert_eq!(own.len(), 3);
    for p in &own {
        assert_eq!(tag_actions(p), ["restored", "alert"], "{}", p.subject);
    }
    let summary = r
        .pages
        .iter()
        .find(|p| p.attributes["action"] == "summary")
        .unwrap();
    assert_eq!(
        summary.subject,
        "[HIGH] reconcile: 10 more findings in 5 repositories (summary)"
    );
    let listed = summary
        .message
        .lines()
        .filter(|l| l.starts_with("123456789012/eu-west-1/r"))
        .count();
    assert_eq!(listed, 10, "{}", summary.message);
    assert_eq!(summary.attributes["tag"], r#"["prod","watch"]"#);
    assert_eq!(w.state().pages.len(), 4);

    // The alerts stay, but each was paged (on its own or in the summary): nothing again.
    let again = h
        .reconcile(&now(4600), &w.clone(), &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(again.repairs.len(), 8);
    assert!(again.pages.is_empty(), "{:?}", again.pages);
}

#[tokio::test]
async fn a_summary_sns_refused_is_sent_by_the_next_run() {
    let w = drifted_repositories(2);
    let mut h = handler(&w);
    h.tuning.pages_per_run = 0;
    fail_next(&w, "sns:Publish", true, "InternalError");
    let r = h
        .reconcile(&now(1000), &w.clone(), &mut |_, _, _| {})
        .await
        .unwrap();
    assert!(r.pages.is_empty());
    assert!(
        r.warnings
            .iter()
            .any(|w| w.starts_with("summary/") && w.contains("kept, the next run sends it")),
        "{:?}",
        r.warnings
    );
    // The restores are done and the alerts were not heard: the next run sends the kept
    // summary first, the restores in it as well as the alerts, and pages nothing twice.
    let again = h
        .reconcile(&now(4600), &w.clone(), &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(again.pages.len(), 1, "{:?}", again.pages);
    assert_eq!(
        again.pages[0].subject,
        "[HIGH] reconcile: 4 more findings in 2 repositories (summary)"
    );
    assert!(w.state().unsent.is_empty(), "sent, no longer kept");
    assert!(
        again.pages[0]
            .message
            .contains("r0:watch: removed; not restored (alert)"),
        "{}",
        again.pages[0].message
    );
}

#[tokio::test]
async fn reconcile_names_a_partition_that_is_no_repository_and_goes_on() {
    let w = world(vec![
        pinned("prod", "a"),
        json!({"repository": "not-a-repository", "tag": "prod"}),
    ]);
    let r = handler(&w)
        .reconcile(&now(1000), &w.clone(), &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!((r.repositories, r.checked), (1, 1));
    assert_eq!(r.invalid.len(), 1);
    assert_eq!(r.invalid[0].key, "not-a-repository");
    assert!(!r.invalid[0].problems.is_empty());
    assert_eq!(
        tag_on(&w, "prod"),
        Some(d("a")),
        "the good item is reconciled"
    );
}

#[tokio::test]
async fn a_repository_reconcile_could_not_check_is_folded_into_the_summary_too() {
    let w = drifted_repositories(2);
    let mut h = handler(&w);
    h.tuning.pages_per_run = 0;
    fail_next(&w, "ecr:BatchGetImage", false, "AccessDeniedException");
    let r = h
        .reconcile(&now(1000), &w.clone(), &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
    assert_eq!(r.pages.len(), 1, "only the summary");
    let summary = &r.pages[0];
    assert_eq!(summary.attributes["action"], "summary");
    assert!(
        summary
            .message
            .contains("reconcile could not check it: ecr:BatchGetImage")
            && summary.message.contains("(reconcile_failed)"),
        "{}",
        summary.message
    );
    assert!(summary
        .message
        .contains(":prod: deleted; restored (restored)"));
    let key = r.failures[0].split(": ").next().unwrap().to_string();
    assert!(
        w.state().ledger[&format!("reconcile-failure/{key}/ecr:BatchGetImage")].done,
        "the failure counts as paged once the summary went out"
    );
}
