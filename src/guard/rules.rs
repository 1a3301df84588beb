//! Pattern rules, materialised: which images a rule protects now, the pins to add and
//! release to get there, and the settings a tag ends up with when a tag item and rules both
//! cover it. Pure, like the rest of the guard.

use std::collections::BTreeMap;

use super::lifecycle::ImageInfo;
use crate::registry::rule::stricter;
use crate::registry::{Entry, TagRule};

/// One tag a rule protects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protected {
    /// The group (what `group_by` captured; empty without it).
    pub group: String,
    /// The tag.
    pub tag: String,
    /// The image it is on.
    pub digest: String,
}

/// Per group, the images with a tag the rule matches, newest first (by push time, ties by
/// digest), each with its matching tags. The guard's own keep-alive tags (`keep_prefix`) are
/// never the rule's: a rule neither protects nor counts an image by them.
fn groups<'a>(
    rule: &TagRule,
    images: &'a [ImageInfo],
    keep_prefix: &str,
) -> BTreeMap<String, Vec<(&'a ImageInfo, Vec<String>)>> {
    let mut groups: BTreeMap<String, Vec<(&ImageInfo, Vec<String>)>> = BTreeMap::new();
    for im in images {
        for tag in im.tags.iter().filter(|t| !t.starts_with(keep_prefix)) {
            let Some(g) = rule.group_of(tag) else {
                continue;
            };
            let list = groups.entry(g).or_default();
            match list.iter_mut().find(|(i, _)| i.digest == im.digest) {
                Some((_, tags)) => tags.push(tag.clone()),
                None => list.push((im, vec![tag.clone()])),
            }
        }
    }
    for list in groups.values_mut() {
        list.sort_by(|(a, _), (b, _)| {
            b.pushed_at
                .cmp(&a.pushed_at)
                .then_with(|| a.digest.cmp(&b.digest))
        });
    }
    groups
}

/// The tags the rule protects now: in each group, every matching tag of the newest
/// `keep` images.
pub fn protected(rule: &TagRule, images: &[ImageInfo], keep_prefix: &str) -> Vec<Protected> {
    groups(rule, images, keep_prefix)
        .into_iter()
        .flat_map(|(group, list)| {
            list.into_iter()
                .take(rule.keep)
                .flat_map(move |(im, tags)| {
                    let group = group.clone();
                    tags.into_iter().map(move |tag| Protected {
                        group: group.clone(),
                        tag,
                        digest: im.digest.clone(),
                    })
                })
        })
        .collect()
}

/// Per group that is full, the image the next push to it releases: its oldest protected one.
pub fn next_to_release(
    rule: &TagRule,
    images: &[ImageInfo],
    keep_prefix: &str,
) -> Vec<(String, String)> {
    groups(rule, images, keep_prefix)
        .into_iter()
        .filter(|(_, list)| list.len() >= rule.keep)
        .filter_map(|(g, list)| {
            list.get(rule.keep - 1)
                .map(|(im, _)| (g, im.digest.clone()))
        })
        .collect()
}

/// What to change so the rule's pins are what it protects now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RulePlan {
    /// Tags to pin (tag, digest): protected, with no item yet.
    pub pin: Vec<(String, String)>,
    /// Items the rule made whose tag it no longer protects.
    pub release: Vec<Entry>,
}

/// The plan for `rule` in one repository, from its images and its current items. A tag that
/// already has an item (written by hand, or by another rule) is left to that item; an item
/// whose image is gone is kept (it is a failed restore, not a release).
pub fn plan(
    rule: &TagRule,
    images: &[ImageInfo],
    entries: &[Entry],
    keep_prefix: &str,
) -> RulePlan {
    let want = protected(rule, images, keep_prefix);
    let pin = want
        .iter()
        .filter(|p| !entries.iter().any(|e| e.tag == p.tag))
        .map(|p| (p.tag.clone(), p.digest.clone()))
        .collect();
    let release = entries
        .iter()
        .filter(|e| e.rule.as_deref() == Some(rule.name.as_str()))
        .filter(|e| !want.iter().any(|p| p.tag == e.tag))
        // An image that is gone did not fall out of the newest N: it was deleted and its
        // restore failed. Its item stays, so reconcile keeps trying and paging.
        .filter(|e| {
            e.digest()
                .is_none_or(|d| images.iter().any(|i| i.digest == d))
        })
        .cloned()
        .collect();
    RulePlan { pin, release }
}

/// Items made by a rule that no longer exists.
pub fn orphans<'a>(entries: &'a [Entry], rules: &[TagRule]) -> Vec<&'a Entry> {
    entries
        .iter()
        .filter(|e| {
            e.rule
                .as_deref()
                .is_some_and(|r| !rules.iter().any(|x| x.name == r))
        })
        .collect()
}

/// The rules that cover a tag of a repository: the rule covers the repository and its
/// pattern matches the tag.
pub fn covering<'a>(rules: &'a [TagRule], entry: &Entry) -> Vec<&'a TagRule> {
    rules
        .iter()
        .filter(|r| r.covers(&entry.repo) && r.group_of(&entry.tag).is_some())
        .collect()
}

/// Each entry with the settings it is guarded by: an item a rule made takes its rule's
/// settings; any other item whose tag a rule covers gets the stricter of its own and the
/// rule's (restore over alert, revert over follow over alert, the higher severity), keeping
/// its own `allow` list as written.
pub fn effective(entries: Vec<Entry>, rules: &[TagRule]) -> Vec<Entry> {
    entries
        .into_iter()
        .map(|e| {
            if let Some(own) = e.rule.as_deref() {
                return match rules.iter().find(|r| r.name == own) {
                    Some(r) => e.with_protection(r.settings.clone()),
                    None => e,
                };
            }
            let p = covering(rules, &e)
                .iter()
                .fold(e.protection(), |p, r| stricter(&p, &r.settings));
            e.with_protection(p)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::guard::status::Storage;
    use crate::registry::{parse_item, parse_rule, OnDelete, OnMove, Severity};

    const REPO: &str = "123456789012/eu-west-1/web";
    const K: &str = "etg-keep-";

    fn rule(extra: serde_json::Value) -> TagRule {
        let mut v = json!({"repository": "rule#", "tag": "pr", "repositories": REPO,
            "pattern": "^pr-(?P<branch>.+)-[0-9a-f]{4}$", "group_by": "branch", "keep": 2});
        if let (Some(a), Some(b)) = (v.as_object_mut(), extra.as_object()) {
            a.extend(b.clone());
        }
        parse_rule(&v).unwrap()
    }

    fn im(d: &str, at: i64, tags: &[&str]) -> ImageInfo {
        ImageInfo {
            digest: d.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: at,
            last_pulled: None,
            storage: Storage::Standard,
            archived_at: None,
        }
    }

    fn entry(tag: &str, extra: serde_json::Value) -> Entry {
        let mut v = json!({"repository": REPO, "tag": tag});
        if let (Some(a), Some(b)) = (v.as_object_mut(), extra.as_object()) {
            a.extend(b.clone());
        }
        parse_item(&v).unwrap()
    }

    fn images() -> Vec<ImageInfo> {
        vec![
            im("a1", 1, &["pr-a-0001"]),
            im("a2", 2, &["pr-a-0002"]),
            im("a3", 3, &["pr-a-0003", "latest"]),
            im("b1", 1, &["pr-b-0001"]),
            im("b2", 2, &["pr-b-0002"]),
            im("x", 9, &["main-0009"]),
        ]
    }

    #[test]
    fn the_newest_n_per_group_are_protected() {
        let got: Vec<(String, String)> = protected(&rule(json!({})), &images(), K)
            .into_iter()
            .map(|p| (p.group, p.digest))
            .collect();
        let want = [("a", "a3"), ("a", "a2"), ("b", "b2"), ("b", "b1")];
        assert_eq!(
            got,
            want.map(|(g, d)| (g.to_string(), d.to_string())).to_vec()
        );
        // The guard's keep-alive tags are never the rule's.
        let any = rule(json!({"pattern": ".", "group_by": null, "keep": 9}));
        let kept = [im("k", 1, &["etg-keep-0123456789abcdef"])];
        assert!(protected(&any, &kept, "etg-keep-").is_empty());
        assert_eq!(
            protected(&any, &kept, "other-").len(),
            1,
            "without the filter it would be"
        );
        // Without group_by the lineage is one group.
        let one = rule(json!({"pattern": "^pr-", "group_by": null}));
        let got: Vec<String> = protected(&one, &images(), K)
            .into_iter()
            .map(|p| p.digest)
            .collect();
        assert_eq!(got, vec!["a3", "a2"]);
        // Ties in push time go by digest.
        let tie = [im("z", 5, &["pr-c-0001"]), im("m", 5, &["pr-c-0002"])];
        let got: Vec<String> = protected(&rule(json!({"keep": 1})), &tie, K)
            .into_iter()
            .map(|p| p.digest)
            .collect();
        assert_eq!(got, vec!["m"]);
    }

    #[test]
    fn the_plan_pins_the_new_and_releases_what_fell_out() {
        let r = rule(json!({}));
        let entries = vec![
            entry(
                "pr-a-0001",
                json!({"rule": "pr", "digest": format!("sha256:{}", "1".repeat(64))}),
            ),
            entry("pr-a-0002", json!({"rule": "pr"})),
            entry("pr-b-0002", json!({})),
            entry("pr-b-0001", json!({"rule": "other"})),
        ];
        // pr-a-0001's image is still there, untagged: it fell out of the newest two.
        let mut listed = images();
        listed.push(im(&format!("sha256:{}", "1".repeat(64)), 0, &[]));
        let p = plan(&r, &listed, &entries, K);
        assert_eq!(p.pin, vec![("pr-a-0003".to_string(), "a3".to_string())]);
        let released: Vec<&str> = p.release.iter().map(|e| e.tag.as_str()).collect();
        assert_eq!(released, vec!["pr-a-0001"], "only its own items");
        // Its image gone (deleted, not restored): the item is kept, not released.
        let gone: Vec<ImageInfo> = images()
            .into_iter()
            .filter(|i| i.digest != format!("sha256:{}", "1".repeat(64)))
            .collect();
        let with_image = vec![entry(
            "pr-a-0001",
            json!({"rule": "pr", "digest": format!("sha256:{}", "1".repeat(64))}),
        )];
        assert!(plan(&r, &gone, &with_image, K).release.is_empty());
        let mut listed = images();
        listed.push(im(&format!("sha256:{}", "1".repeat(64)), 0, &[]));
        assert_eq!(
            plan(&r, &listed, &with_image, K).release.len(),
            1,
            "listed, untagged: fell out"
        );
        assert_eq!(
            next_to_release(&r, &images(), K),
            vec![
                ("a".to_string(), "a2".to_string()),
                ("b".to_string(), "b1".to_string())
            ]
        );
        let rules = [r];
        let orphans: Vec<&str> = orphans(&entries, &rules)
            .iter()
            .map(|e| e.tag.as_str())
            .collect();
        assert_eq!(orphans, vec!["pr-b-0001"]);
    }

    #[test]
    fn the_stricter_setting_wins() {
        let lax = rule(
            json!({"on_delete": "alert", "on_move": "follow", "severity": "low", "allow": ["arn:a", "arn:b"]}),
        );
        let strict = rule(
            json!({"tag": "strict", "on_move": "revert", "severity": "critical", "allow": ["arn:b"]}),
        );
        let hand = entry(
            "pr-a-0003",
            json!({"on_delete": "alert", "on_move": "alert", "severity": "medium", "allow": ["arn:a", "arn:b"]}),
        );
        let made = entry("pr-a-0002", json!({"rule": "pr"}));
        let elsewhere = entry("prod", json!({"on_delete": "alert"}));
        let got = effective(vec![hand.clone(), made, elsewhere], &[lax.clone(), strict]);
        assert_eq!(
            (
                got[0].on_delete,
                got[0].on_move,
                got[0].severity,
                got[0].allow.clone()
            ),
            (
                OnDelete::Restore,
                OnMove::Revert,
                Severity::Critical,
                vec!["arn:a".to_string(), "arn:b".to_string()]
            ),
            "every covering rule tightens a hand-written item (strict restores by default), but its own allow list stands"
        );
        assert_eq!(
            (got[1].on_delete, got[1].on_move, got[1].severity),
            (OnDelete::Alert, OnMove::Follow, Severity::Low),
            "an item a rule made takes its rule's settings"
        );
        assert_eq!(
            got[2].on_delete,
            OnDelete::Alert,
            "a tag no rule matches is left alone"
        );
        let only_lax = effective(vec![hand], &[lax]);
        assert_eq!(
            only_lax[0].on_move,
            OnMove::Follow,
            "follow is stricter than alert"
        );
        assert_eq!(only_lax[0].severity, Severity::Medium);
        // The README's example: a broad rule beside an item that lets the deploy role move it.
        let broad = rule(json!({"tag": "web-newest", "pattern": ".", "group_by": null, "keep": 5}));
        let prod = entry(
            "prod.latest",
            json!({"allow": ["arn:aws:iam::*:role/deploy"]}),
        );
        let got = effective(vec![prod], &[broad]);
        assert_eq!(got[0].on_move, OnMove::Revert);
        assert!(
            got[0].allows(&["arn:aws:iam::123456789012:role/deploy"]),
            "the deploy role stays allowed: its moves are followed, not reverted"
        );
    }

    #[test]
    fn bad_rules_are_named_not_crashed_on() {
        let bad = |v: serde_json::Value| parse_rule(&v).unwrap_err().problems;
        let has = |p: Vec<String>, want: &str| {
            assert!(p.iter().any(|x| x.contains(want)), "{want:?} not in {p:?}")
        };
        has(
            bad(
                json!({"repository": "rule#", "tag": "r", "repositories": REPO, "pattern": "(", "keep": 1}),
            ),
            "not a valid regex",
        );
        has(
            bad(
                json!({"repository": "rule#", "tag": "r", "repositories": REPO, "pattern": "^a", "group_by": "branch", "keep": 1}),
            ),
            "not a named group",
        );
        has(
            bad(
                json!({"repository": "rule#", "tag": "r", "repositories": "web", "pattern": "^a", "keep": 1}),
            ),
            "glob over ACCOUNT/REGION/NAME",
        );
        has(
            bad(
                json!({"repository": "rule#", "tag": "r", "repositories": REPO, "pattern": "^a", "keep": 0}),
            ),
            "`keep` must be",
        );
        has(
            bad(
                json!({"repository": "rule#", "tag": "r", "repositories": REPO, "pattern": "^a", "keep": 1, "colour": "red"}),
            ),
            "unknown field `colour`",
        );
        has(
            bad(
                json!({"repository": "rule#", "tag": "r", "repositories": REPO, "keep": 1, "severity": "loud"}),
            ),
            "`pattern` (the tag regex) is missing",
        );
        has(
            bad(
                json!({"repository": "rule#", "tag": "r", "repositories": REPO, "keep": 1, "severity": "loud", "pattern": "x"}),
            ),
            "severity `loud`",
        );
        has(bad(json!("text")), "JSON object");
        let ok = rule(json!({"repositories": "123456789012/*/we?"}));
        assert!(ok.covers(&crate::registry::RepoKey::parse(REPO).unwrap()));
        assert_eq!(
            parse_rule(&ok.to_item()).unwrap(),
            ok,
            "an item written back reads the same"
        );
    }
}
