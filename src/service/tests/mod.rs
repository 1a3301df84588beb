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

pub(super) async fn register(
    w: &Memory,
    event: &Value,
) -> crate::service::registration::StreamReport {
    let records = crate::service::registration::stream_records(event).expect("a stream event");
    handler(w).register(&records, &now(500)).await
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

pub(super) fn item(w: &Memory, tag: &str) -> Value {
    w.state().items[&(REPO.to_string(), tag.to_string())].clone()
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

mod event;
mod reconcile;
mod registration;
mod unreadable;
mod world;
