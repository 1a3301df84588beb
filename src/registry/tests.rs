//! Tests of the registry item: validation, every field, and agreement with the JSON Schema.
//! Compiled only under #[cfg(test)] (declared in the parent module).

use serde_json::{json, Value};

use super::item::KNOWN;
use super::*;
use crate::text::sha256_digest;

const REPO: &str = "123456789012/eu-west-1/team/web";

fn problems(item: Value) -> Vec<String> {
    parse_item(&item).unwrap_err().problems
}

#[test]
fn repository_and_tag_alone_make_a_valid_unpinned_item() {
    let e = parse_item(&json!({"repository": REPO, "tag": "prod.latest"})).unwrap();
    assert_eq!(
        e.repo,
        RepoKey {
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            name: "team/web".into()
        }
    );
    assert_eq!(e.tag, "prod.latest");
    assert_eq!(e.pin, None);
    assert_eq!(
        (e.on_delete, e.on_move, e.severity),
        (OnDelete::Restore, OnMove::Revert, Severity::High)
    );
}

#[test]
fn a_full_item_reads_every_field() {
    let m = "{\"schemaVersion\":2}";
    let child = "{\"child\":1}";
    let e = parse_item(&json!({
        "repository": REPO, "tag": "v1", "digest": sha256_digest(m.as_bytes()), "manifest": m,
        "media_type": "application/vnd.oci.image.index.v1+json",
        "children": [{"digest": sha256_digest(child.as_bytes()), "manifest": child}],
        "on_delete": "alert", "on_move": "follow", "allow": ["arn:aws:iam::*:role/deploy"],
        "severity": "critical", "owner": "team", "notes": "n", "pinned_by": "me", "pinned_at": "2026-01-01T00:00:00Z"
    }))
    .unwrap();
    let pin = e.pin.clone().unwrap();
    assert!(pin.manifest.as_ref().unwrap().verify());
    assert_eq!(pin.children.len(), 1);
    assert_eq!(
        (e.on_delete, e.on_move, e.severity),
        (OnDelete::Alert, OnMove::Follow, Severity::Critical)
    );
    assert!(e.allows(&["arn:aws:iam::1:role/deploy"]));
    assert!(!e.allows(&["arn:aws:iam::1:role/admin"]));
    // What the guard writes back reads the same.
    let mut again = registry_item(&e);
    again.extend(pin_fields(&pin));
    assert_eq!(parse_item(&Value::Object(again)).unwrap(), e);
}

fn registry_item(e: &Entry) -> serde_json::Map<String, Value> {
    let v = json!({
        "repository": e.repo.key(), "tag": e.tag, "on_delete": "alert", "on_move": "follow",
        "allow": e.allow, "severity": "critical", "owner": e.owner, "notes": e.notes
    });
    v.as_object().unwrap().clone()
}

#[test]
fn every_problem_is_named() {
    let p = problems(json!({
        "repository": "12345/eu-west-1/Web", "tag": "-bad", "digest": "sha256:abc",
        "on_delete": "ignore", "on_move": "sometimes", "severity": "urgent", "allow": "arn:*", "colour": "red"
    }));
    let all = p.join("\n");
    for want in [
        "account `12345` is not 12 digits",
        "tag `-bad`",
        "digest `sha256:abc`",
        "on_delete `ignore`",
        "on_move `sometimes`",
        "severity `urgent`",
        "`allow` must be a list",
        "unknown field `colour`",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
}

#[test]
fn keys_are_checked_part_by_part() {
    assert!(problems(json!({"tag": "t"}))[0].contains("`repository`"));
    assert!(problems(json!({"repository": REPO}))[0].contains("`tag` is missing"));
    assert!(
        problems(json!({"repository": "123456789012/eu-west-1", "tag": "t"}))[0]
            .contains("ACCOUNT/REGION/REPOSITORY")
    );
    assert!(
        problems(json!({"repository": "123456789012/nowhere/web", "tag": "t"}))[0]
            .contains("region")
    );
    assert!(
        problems(json!({"repository": "123456789012/eu-west-1/Web", "tag": "t"}))[0]
            .contains("repository `Web`")
    );
    assert!(problems(json!({"repository": 7, "tag": "t"}))[0].contains("must be a string"));
    assert!(
        problems(json!({"repository": REPO, "tag": "t", "manifest": "{}"}))[0]
            .contains("`digest` is not")
    );
    assert!(
        problems(json!({"repository": REPO, "tag": "t", "children": [{"digest": "x"}]}))[0]
            .contains("children[0]")
    );
    assert!(problems(json!("text"))[0].contains("object"));
    let bad =
        parse_item(&json!({"repository": REPO, "tag": "t\u{1b}[2J", "on_move": 3})).unwrap_err();
    assert!(
        !bad.to_string().contains('\u{1b}'),
        "control characters never reach a report: {bad}"
    );
}

#[test]
fn names_follow_ecr_rules() {
    for ok in ["latest", "prod.latest", "_x", "A-1.b_c", &"a".repeat(128)] {
        assert!(is_tag(ok), "{ok}");
    }
    for bad in ["", ".x", "-x", "a b", "a/b", &"a".repeat(129), "é"] {
        assert!(!is_tag(bad), "{bad}");
    }
    for ok in ["web", "team/web", "a.b_c-d/e__f", "ab"] {
        assert!(is_repository_name(ok), "{ok}");
    }
    for bad in [
        "a",
        "Web",
        "team//web",
        "/web",
        "web/",
        "-web",
        "web-",
        "we b",
    ] {
        assert!(!is_repository_name(bad), "{bad}");
    }
}

/// The shipped JSON Schema and the parsers agree on the fields, the required ones and the
/// allowed values, for tag items and rule items.
#[test]
fn schema_matches_the_parser() {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let keys = |def: &str| {
        let mut props: Vec<String> = schema["$defs"][def]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        props.sort();
        props
    };
    let mut known: Vec<String> = KNOWN.iter().map(|s| s.to_string()).collect();
    known.sort();
    assert_eq!(keys("tag"), known);
    let tag = &schema["$defs"]["tag"];
    assert_eq!(tag["required"], json!(["repository", "tag"]));
    assert_eq!(tag["additionalProperties"], json!(false));
    for (f, values) in [
        ("on_delete", vec!["restore", "alert"]),
        ("on_move", vec!["revert", "follow", "alert"]),
        ("severity", vec!["critical", "high", "medium", "low"]),
    ] {
        assert_eq!(tag["properties"][f]["enum"], json!(values), "{f}");
        assert_eq!(
            schema["$defs"]["rule"]["properties"][f]["enum"],
            json!(values),
            "{f}"
        );
        for v in values {
            assert!(
                parse_item(&json!({"repository": REPO, "tag": "t", f: v})).is_ok(),
                "{f}={v}"
            );
        }
    }
    let mut rule_known: Vec<String> = [
        field::REPOSITORY,
        field::TAG,
        rule::rule_field::REPOSITORIES,
        rule::rule_field::PATTERN,
        rule::rule_field::GROUP_BY,
        rule::rule_field::KEEP,
    ]
    .iter()
    .chain(PROTECTION_FIELDS)
    .map(|s| s.to_string())
    .collect();
    rule_known.sort();
    assert_eq!(keys("rule"), rule_known);
    assert_eq!(
        schema["$defs"]["rule"]["required"],
        json!(["repository", "tag", "repositories", "pattern", "keep"])
    );
    assert_eq!(
        schema["$defs"]["rule"]["properties"]["repository"]["const"],
        RULE_PARTITION
    );
}
