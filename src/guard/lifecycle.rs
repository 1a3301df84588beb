//! ECR lifecycle policies as far as protected images are concerned: which rule could expire
//! (or archive) a protected image, and the priority-1 "shield" rule on the keep-alive prefix.
//!
//! "Could" is about tagging requirements only: counts and ages are not evaluated. ECR's rule:
//! an image that matches the tagging requirements of a higher-priority rule cannot be
//! expired by a lower-priority one. A `tagged` rule matches when, for every prefix in
//! `tagPrefixList`, some tag starts with it, and, for every pattern in `tagPatternList`, some
//! tag matches it (`*` is a wildcard); `untagged` never matches a protected (tagged) image.

use serde::Serialize;
use serde_json::{json, Value};

/// The shield rule's `countNumber`: more images than any repository keeps.
pub const SHIELD_COUNT: u64 = 9999;

/// A protected image a rule could take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Risk {
    /// The image.
    pub digest: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// The rule's priority.
    pub rule_priority: u64,
    /// The rule's description, if any.
    pub description: Option<String>,
    /// `expire` or `transition`.
    pub action: String,
}

struct Rule {
    priority: u64,
    description: Option<String>,
    tag_status: String,
    prefixes: Vec<String>,
    patterns: Vec<String>,
    action: String,
}

fn rules(policy: &Value) -> Result<Vec<Rule>, String> {
    let list = policy
        .get("rules")
        .and_then(Value::as_array)
        .ok_or("the policy has no `rules` list")?;
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let priority = r
            .get("rulePriority")
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("rules[{i}] has no rulePriority"))?;
        let sel = r
            .get("selection")
            .ok_or_else(|| format!("rules[{i}] has no selection"))?;
        out.push(Rule {
            priority,
            description: r
                .get("description")
                .and_then(Value::as_str)
                .map(String::from),
            tag_status: sel
                .get("tagStatus")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_lowercase(),
            prefixes: strings(sel.get("tagPrefixList")),
            patterns: strings(sel.get("tagPatternList")),
            action: r
                .get("action")
                .and_then(|a| a.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("expire")
                .to_string(),
        });
    }
    out.sort_by_key(|r| r.priority);
    Ok(out)
}

fn selects(rule: &Rule, tags: &[String]) -> bool {
    match rule.tag_status.as_str() {
        "any" => true,
        "tagged" => {
            !tags.is_empty()
                && rule
                    .prefixes
                    .iter()
                    .all(|p| tags.iter().any(|t| t.starts_with(p.as_str())))
                && rule
                    .patterns
                    .iter()
                    .all(|p| tags.iter().any(|t| crate::text::glob_match(p, t)))
        }
        _ => tags.is_empty(),
    }
}

/// For each image (digest, all its tags), the rule that could expire or archive it, if any:
/// the first rule, by priority, whose tagging requirements it meets, unless that is a rule
/// that keeps (a shield on a prefix the image carries).
pub fn at_risk(
    policy: &Value,
    images: &[(String, Vec<String>)],
    keep_prefix: &str,
) -> Result<Vec<Risk>, String> {
    let rules = rules(policy)?;
    let mut out = Vec::new();
    for (digest, tags) in images {
        let Some(first) = rules.iter().find(|r| selects(r, tags)) else {
            continue;
        };
        if is_shield(first, keep_prefix) {
            continue;
        }
        out.push(Risk {
            digest: digest.clone(),
            tags: tags.clone(),
            rule_priority: first.priority,
            description: first.description.clone(),
            action: first.action.clone(),
        });
    }
    Ok(out)
}

fn is_shield(r: &Rule, prefix: &str) -> bool {
    r.tag_status == "tagged" && r.prefixes == [prefix] && r.patterns.is_empty()
}

/// The shield rule for `prefix` at `priority`.
pub fn shield_rule(prefix: &str, priority: u64) -> Value {
    json!({
        "rulePriority": priority,
        "description": "ecr-tag-guard: never expire images that carry a keep-alive tag",
        "selection": {
            "tagStatus": "tagged",
            "tagPrefixList": [prefix],
            "countType": "imageCountMoreThan",
            "countNumber": SHIELD_COUNT
        },
        "action": {"type": "expire"}
    })
}

/// The policy with the shield rule at priority 1 and the user's rules kept in order,
/// their priorities raised by one only when one of them holds priority 1. `None` when the
/// policy already starts with the shield.
pub fn shield(policy: Option<&Value>, prefix: &str) -> Result<Option<Value>, String> {
    let mut policy = policy.cloned().unwrap_or_else(|| json!({"rules": []}));
    let existing = rules(&policy)?;
    if existing.first().is_some_and(|r| is_shield(r, prefix)) {
        return Ok(None);
    }
    let taken = existing.iter().any(|r| r.priority == 1);
    let list = policy
        .get_mut("rules")
        .and_then(Value::as_array_mut)
        .ok_or("the policy has no `rules` list")?;
    if taken {
        for r in list.iter_mut() {
            if let Some(p) = r.get("rulePriority").and_then(Value::as_u64) {
                r["rulePriority"] = json!(p + 1);
            }
        }
    }
    list.insert(0, shield_rule(prefix, 1));
    list.sort_by_key(|r| {
        r.get("rulePriority")
            .and_then(Value::as_u64)
            .unwrap_or(u64::MAX)
    });
    Ok(Some(policy))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(d: &str, tags: &[&str]) -> (String, Vec<String>) {
        (d.to_string(), tags.iter().map(|t| t.to_string()).collect())
    }

    fn policy() -> Value {
        json!({"rules": [
            {"rulePriority": 1, "description": "old builds", "selection": {"tagStatus": "tagged", "tagPrefixList": ["build-"], "countType": "imageCountMoreThan", "countNumber": 5}, "action": {"type": "expire"}},
            {"rulePriority": 2, "selection": {"tagStatus": "tagged", "tagPatternList": ["*rc*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30}, "action": {"type": "transition", "targetStorageClass": "archive"}},
            {"rulePriority": 10, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 100}, "action": {"type": "expire"}}
        ]})
    }

    #[test]
    fn the_first_matching_rule_is_the_risk() {
        let images = [
            img("a", &["prod", "build-7"]),
            img("b", &["v2-rc1"]),
            img("c", &["prod"]),
        ];
        let risks = at_risk(&policy(), &images, "etg-keep-").unwrap();
        let got: Vec<(&str, u64, &str)> = risks
            .iter()
            .map(|r| (r.digest.as_str(), r.rule_priority, r.action.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", 1, "expire"),
                ("b", 2, "transition"),
                ("c", 10, "expire")
            ]
        );
        assert_eq!(risks[0].description.as_deref(), Some("old builds"));
    }

    #[test]
    fn every_prefix_and_pattern_must_match() {
        let p = json!({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["prod", "v"]}, "action": {"type": "expire"}}]});
        assert!(at_risk(&p, &[img("a", &["prod"])], "k-")
            .unwrap()
            .is_empty());
        assert_eq!(
            at_risk(&p, &[img("a", &["prod", "v1"])], "k-")
                .unwrap()
                .len(),
            1
        );
        let untagged =
            json!({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged"}}]});
        assert!(at_risk(&untagged, &[img("a", &["prod"])], "k-")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn the_shield_goes_first_and_protects() {
        let shielded = shield(Some(&policy()), "etg-keep-").unwrap().unwrap();
        let prios: Vec<u64> = shielded["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["rulePriority"].as_u64().unwrap())
            .collect();
        assert_eq!(
            prios,
            vec![1, 2, 3, 11],
            "the user's rules keep their order, moved up by one"
        );
        assert_eq!(shielded["rules"][1]["description"], "old builds");
        assert_eq!(
            shielded["rules"][3]["selection"]["tagStatus"], "any",
            "`any` stays last"
        );
        let images = [img("a", &["prod", "build-7", "etg-keep-0123"])];
        assert!(at_risk(&shielded, &images, "etg-keep-").unwrap().is_empty());
        assert_eq!(
            shield(Some(&shielded), "etg-keep-").unwrap(),
            None,
            "already shielded"
        );
        let free = json!({"rules": [{"rulePriority": 5, "selection": {"tagStatus": "any"}, "action": {"type": "expire"}}]});
        let s = shield(Some(&free), "etg-keep-").unwrap().unwrap();
        assert_eq!(
            s["rules"][1]["rulePriority"], 5,
            "no renumbering when 1 is free"
        );
        assert_eq!(
            shield(None, "k-").unwrap().unwrap()["rules"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn malformed_policies_are_named() {
        assert!(at_risk(&json!({}), &[], "k-")
            .unwrap_err()
            .contains("rules"));
        assert!(at_risk(&json!({"rules": [{"selection": {}}]}), &[], "k-")
            .unwrap_err()
            .contains("rules[0] has no rulePriority"));
    }
}
