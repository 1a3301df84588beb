//! Pages have a size: a mass incident reaches on-call as one page SNS takes, with the
//! problems first, the counts, and where the rest is. Compiled only under #[cfg(test)].

use serde_json::{json, Value};

use super::*;
use crate::events::{Actor, Incident};
use crate::guard::{Action, Cause, Decision, Failure, Outcome};
use crate::registry::{parse_item, RepoKey};

fn incident() -> Incident {
    Incident {
        event_id: "lifecycle-run-1".into(),
        source: "CloudTrail PolicyExecutionEvent".into(),
        time: "2026-11-21T03:22:13Z".into(),
        repo: RepoKey {
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            name: "team/web".into(),
        },
        actor: Actor::Lifecycle,
        changes: vec![],
        note: None,
    }
}

/// `n` expired tags, every `fail_every`-th not put back; owner and notes `filler` long.
fn mass(n: usize, fail_every: usize, filler: usize) -> Vec<(Decision, Alarm)> {
    (0..n)
        .map(|i| {
            let tag = format!("release-{i:05}-{}", "x".repeat(filler.min(100)));
            let item = json!({"repository": "123456789012/eu-west-1/team/web", "tag": tag,
                "digest": format!("sha256:{:064x}", i), "owner": "o".repeat(filler),
                "notes": "n\u{7}".repeat(filler / 2)});
            let entry = parse_item(&item).expect("item");
            let d = Decision {
                tag: tag.clone(),
                cause: Cause::Expired {
                    digest: format!("sha256:{:064x}", i),
                    rule: Some(1),
                },
                action: Action::Restore,
                why: "a protected tag was deleted".into(),
                entry,
            };
            let outcome = if fail_every > 0 && i % fail_every == 0 {
                Outcome::Failed {
                    failure: Failure::LayersGone,
                    detail: "LayersNotFoundException: ".repeat(filler / 20 + 1),
                }
            } else {
                Outcome::Restored
            };
            let a = report(&d, &outcome, false).expect("paged");
            (d, a)
        })
        .collect()
}

fn page_of(all: &[(Decision, Alarm)]) -> Page {
    let alarms: Vec<(&Decision, Alarm)> = all.iter().map(|(d, a)| (d, a.clone())).collect();
    render_all(&incident(), &alarms).expect("a page")
}

fn facts(p: &Page) -> Value {
    let json_part = p.message.split("--- JSON ---\n").nth(1).expect("JSON part");
    serde_json::from_str(json_part).expect("the JSON part parses")
}

fn within_bounds(p: &Page) {
    assert!(p.size() <= PAGE_MAX_BYTES, "{} bytes", p.size());
    assert!(
        p.subject.len() < 100 && p.subject.is_ascii(),
        "{}",
        p.subject
    );
    let chat = chat::render(p);
    assert!(
        chat.len() <= PAGE_MAX_BYTES,
        "chat copy {} bytes",
        chat.len()
    );
    facts(p);
}

#[test]
fn two_hundred_expired_tags_are_one_page_within_sns_limits_problems_first() {
    let all = mass(200, 17, 40);
    let p = page_of(&all);
    within_bounds(&p);
    let f = facts(&p);
    assert_eq!(f["tags_total"], 200);
    let failed = all.iter().filter(|(_, a)| a.action == "failed").count();
    assert_eq!(f["counts"]["failed"], failed);
    assert_eq!(f["counts"]["restored"], 200 - failed);
    let changes = f["changes"].as_array().expect("changes");
    assert!(changes.len() <= DETAIL_MAX);
    // Every problem is told before any repair.
    let first_ok = changes
        .iter()
        .position(|c| c["action"] != "failed")
        .unwrap_or(changes.len());
    assert_eq!(first_ok, failed.min(changes.len()), "problems first");
    assert!(
        p.message.contains("ecr-tag-guard history"),
        "where the rest is"
    );
    assert!(p.message.contains("Also:"));
    assert_eq!(p.attributes["severity"], "high");
}

#[test]
fn ten_thousand_tags_with_long_text_still_fit_and_say_how_many_are_not_named() {
    let all = mass(10_000, 1000, 900);
    let p = page_of(&all);
    within_bounds(&p);
    let f = facts(&p);
    assert_eq!(f["tags_total"], 10_000);
    let named = f["tags"].as_array().expect("tags").len();
    assert!(named < 10_000 && named > 0, "{named}");
    assert!(p.message.contains("more\n"), "the unnamed are counted");
    let attr: Vec<String> = serde_json::from_str(&p.attributes["tag"]).expect("String.Array");
    assert_eq!(attr.len(), named, "the tag attribute holds the named tags");
}

#[test]
fn a_page_of_few_tags_tells_every_one_in_full() {
    let all = mass(3, 0, 10);
    let p = page_of(&all);
    within_bounds(&p);
    assert!(!p.message.contains("Shown:"), "{}", p.message);
    assert_eq!(facts(&p)["changes"].as_array().map(Vec::len), Some(3));
    assert!(p.message.contains("[3/3]"));
}
