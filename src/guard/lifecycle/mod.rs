//! ECR lifecycle policies and protected images: the policy model and its checks
//! ([`policy`]), what a policy does to a repository now ([`simulate`]), which rule could take
//! a protected image ([`at_risk`]), and the priority-1 "shield" rule on the keep-alive prefix.
//!
//! ECR's rule that all of this rests on: an image that meets the tagging requirements of a
//! higher-priority rule cannot be acted on by a lower-priority one. So the only rule that can
//! ever expire (or archive) an image is the first one whose tagging requirements it meets —
//! its *owner* ([`Policy::owner`]); whether it does so now depends on counts and ages, which
//! [`simulate`] evaluates.

pub mod policy;
pub mod simulate;
#[cfg(test)]
mod tests;

use serde::Serialize;
use serde_json::{json, Value};

pub use policy::{Policy, Rule, RuleAction, TagStatus};
pub use simulate::{simulate, Fate, ImageInfo, Verdict};

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

/// For each image (digest, all its tags), the rule that could expire or archive it, if any:
/// its owner rule, unless that is a rule that keeps (a shield on a prefix the image carries).
pub fn at_risk(policy: &Policy, images: &[(String, Vec<String>)], keep_prefix: &str) -> Vec<Risk> {
    images
        .iter()
        .filter_map(|(digest, tags)| {
            let owner = policy.owner(tags, false)?;
            (!is_shield(owner, keep_prefix)).then(|| Risk {
                digest: digest.clone(),
                tags: tags.clone(),
                rule_priority: owner.priority,
                description: owner.description.clone(),
                action: owner.action_name().to_string(),
            })
        })
        .collect()
}

/// The rule that could expire or archive an image whose only tag is a keep-alive tag (one the
/// guard keeps alive after its protected tag was deleted, or moved away), when that rule is
/// not the shield: its tag patterns or prefixes take the guard's own tag. `None` when no rule
/// would, or the shield comes first.
pub fn keep_alive_exposure<'a>(policy: &'a Policy, keep_prefix: &str) -> Option<&'a Rule> {
    let only_keep_alive = [format!("{keep_prefix}0123456789abcdef")];
    policy
        .owner(&only_keep_alive, false)
        .filter(|r| !is_shield(r, keep_prefix))
}

/// True for a rule that can never take an image carrying a keep-alive tag: a `tagged` rule
/// on exactly the keep-alive prefix that keeps more images than any repository holds.
fn is_shield(r: &Rule, prefix: &str) -> bool {
    r.tag_status == TagStatus::Tagged
        && r.prefixes == [prefix]
        && r.patterns.is_empty()
        && r.count == policy::Count::MoreThan(SHIELD_COUNT)
        && !r.archived
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
    let existing = Policy::parse(&policy).map_err(|p| p.join("; "))?.rules;
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
mod shield_tests {
    use super::*;

    fn parsed(v: &Value) -> Policy {
        Policy::parse(v).unwrap()
    }

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
        let risks = at_risk(&parsed(&policy()), &images, "etg-keep-");
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
        let p = parsed(
            &json!({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["prod", "v"], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}),
        );
        assert!(at_risk(&p, &[img("a", &["prod"])], "k-").is_empty());
        assert_eq!(at_risk(&p, &[img("a", &["prod", "v1"])], "k-").len(), 1);
        let untagged = parsed(
            &json!({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}),
        );
        assert!(at_risk(&untagged, &[img("a", &["prod"])], "k-").is_empty());
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
        assert!(at_risk(&parsed(&shielded), &images, "etg-keep-").is_empty());
        assert_eq!(
            shield(Some(&shielded), "etg-keep-").unwrap(),
            None,
            "already shielded"
        );
        let free = json!({"rules": [{"rulePriority": 5, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]});
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
        assert_eq!(
            Policy::parse(&json!({})).unwrap_err(),
            vec!["the policy has no `rules` list"]
        );
        let bad = Policy::parse(&json!({"rules": [{"selection": {}}]})).unwrap_err();
        assert!(bad[0].starts_with("rules[0]: rulePriority"), "{bad:?}");
        assert!(shield(Some(&json!({"rules": 3})), "k-")
            .unwrap_err()
            .contains("rules"));
    }
}
