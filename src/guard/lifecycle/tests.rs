//! Compiled only under #[cfg(test)]: the evaluator against AWS's worked examples (when
//! `../shared` is here), cases of each documented rule, ECR's validation rules, and
//! properties that must hold for any policy and any images.

use std::path::Path;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::guard::status::Storage;

const NOW: i64 = 1_738_324_800; // 2025-01-31T12:00:00Z
const DAY: i64 = 86_400;

fn image(name: &str, days_ago: i64, tags: &[&str]) -> ImageInfo {
    ImageInfo {
        digest: name.to_string(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        pushed_at: NOW - days_ago * DAY,
        last_pulled: None,
        storage: Storage::Standard,
        archived_at: None,
    }
}

fn policy(rules: Value) -> Policy {
    Policy::parse(&json!({ "rules": rules })).unwrap()
}

fn fates(p: &Policy, images: &[ImageInfo]) -> Vec<(String, Fate, Option<u64>)> {
    simulate(p, images, NOW)
        .into_iter()
        .map(|v| (v.digest, v.action, v.rule))
        .collect()
}

fn expired(p: &Policy, images: &[ImageInfo]) -> Vec<String> {
    simulate(p, images, NOW)
        .into_iter()
        .filter(|v| v.action == Fate::Expire)
        .map(|v| v.digest)
        .collect()
}

fn count_rule(priority: u64, prefixes: &[&str], n: u64) -> Value {
    json!({"rulePriority": priority, "selection": {"tagStatus": "tagged", "tagPrefixList": prefixes,
        "countType": "imageCountMoreThan", "countNumber": n}, "action": {"type": "expire"}})
}

#[test]
fn the_documented_examples_come_out_as_documented() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples/lifecycle");
    let Ok(read) = std::fs::read_dir(&dir) else {
        crate::text::say_skipped("../shared/samples/lifecycle is not here (it comes with the project's CI, not with a clone); the cases below cover the same rules");
        return;
    };
    let mut files: Vec<_> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no examples in {}", dir.display());
    for f in files {
        let case: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let name = f.display();
        let p = Policy::parse(&case["policy"]).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let now = crate::text::parse_time(&case["now"]).unwrap();
        let images: Vec<ImageInfo> = case["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|im| ImageInfo {
                digest: im["id"].as_str().unwrap().to_string(),
                tags: serde_json::from_value(im["tags"].clone()).unwrap(),
                pushed_at: crate::text::parse_time(&im["pushedAt"]).unwrap(),
                last_pulled: im.get("lastPulledAt").and_then(crate::text::parse_time),
                storage: Storage::Standard,
                archived_at: None,
            })
            .collect();
        let verdicts = simulate(&p, &images, now);
        for (fate, key) in [
            (Fate::Expire, "expire"),
            (Fate::Transition, "transition"),
            (Fate::Keep, "keep"),
        ] {
            let mut got: Vec<&str> = verdicts
                .iter()
                .filter(|v| v.action == fate)
                .map(|v| v.digest.as_str())
                .collect();
            got.sort();
            let mut want: Vec<&str> = case["expected"][key]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            want.sort();
            assert_eq!(got, want, "{name}: {key}\n{}", case["docs_text"]);
        }
    }
}

#[test]
fn a_count_rule_counts_images_a_higher_rule_claims_but_cannot_take_them() {
    // prod images are claimed by rule 1, which keeps the newest; rule 2 counts them among
    // the beta images but may only take images no higher rule claims.
    let p = policy(json!([
        count_rule(1, &["prod"], 1),
        count_rule(2, &["beta"], 1)
    ]));
    let images = [
        image("a", 10, &["beta-1", "prod-1"]),
        image("b", 9, &["beta-2", "prod-2"]),
        image("c", 8, &["beta-3"]),
    ];
    assert_eq!(expired(&p, &images), vec!["a"]);
    // Swapped priorities: the beta rule claims all three and takes the two oldest.
    let p = policy(json!([
        count_rule(1, &["beta"], 1),
        count_rule(2, &["prod"], 1)
    ]));
    assert_eq!(expired(&p, &images), vec!["a", "b"]);
}

#[test]
fn every_prefix_must_start_some_tag() {
    let p = policy(
        json!([{"rulePriority": 1, "selection": {"tagStatus": "tagged",
        "tagPrefixList": ["alpha", "beta"], "countType": "sinceImagePushed", "countUnit": "days",
        "countNumber": 5}, "action": {"type": "expire"}}]),
    );
    let images = [
        image("a", 12, &["alpha-1"]),
        image("c", 10, &["alpha-2", "beta-2"]),
        image("f", 2, &["alpha-4", "beta-4"]),
    ];
    assert_eq!(expired(&p, &images), vec!["c"]);
}

#[test]
fn any_rule_last_keeps_the_newest_and_respects_every_claim() {
    let p = policy(json!([
        count_rule(1, &["alpha"], 1),
        {"rulePriority": 2, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
            "countUnit": "days", "countNumber": 1}, "action": {"type": "expire"}},
        {"rulePriority": 3, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
            "countNumber": 1}, "action": {"type": "expire"}}
    ]));
    let mut e = image("e", 0, &[]);
    e.pushed_at = NOW - DAY + 3600;
    let mut d = image("d", 0, &["git-hash"]);
    d.pushed_at = NOW - DAY - 3600;
    let images = [
        image("a", 4, &["alpha-1", "beta-1"]),
        image("b", 3, &[]),
        image("c", 2, &["alpha-2"]),
        d,
        e,
    ];
    assert_eq!(
        fates(&p, &images),
        vec![
            ("a".into(), Fate::Expire, Some(1)),
            ("b".into(), Fate::Expire, Some(2)),
            ("c".into(), Fate::Keep, Some(1)),
            ("d".into(), Fate::Expire, Some(3)),
            ("e".into(), Fate::Keep, Some(2)),
        ]
    );
}

#[test]
fn patterns_pull_times_transitions_and_archive_rules() {
    let p = policy(json!([
        {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPatternList": ["*-rc*"],
            "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 30},
            "action": {"type": "transition", "targetStorageClass": "archive"}},
        {"rulePriority": 2, "selection": {"tagStatus": "tagged", "tagPatternList": ["*"],
            "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days",
            "countNumber": 90}, "action": {"type": "expire"}}
    ]));
    let mut pulled = image("pulled-lately", 100, &["v2-rc1"]);
    pulled.last_pulled = Some(NOW - 3 * DAY);
    let never = image("never-pulled", 40, &["v3-rc1"]);
    let young = image("young", 10, &["v4-rc1"]);
    let mut old_archive = image("old-archive", 400, &["v1"]);
    old_archive.storage = Storage::Archived;
    old_archive.archived_at = Some(NOW - 200 * DAY);
    let mut new_archive = old_archive.clone();
    new_archive.digest = "new-archive".into();
    new_archive.archived_at = Some(NOW - 10 * DAY);
    let mut coming_back = old_archive.clone();
    coming_back.digest = "coming-back".into();
    coming_back.storage = Storage::Activating;
    let got = fates(
        &p,
        &[pulled, never, young, old_archive, new_archive, coming_back],
    );
    assert_eq!(
        got,
        vec![
            ("pulled-lately".into(), Fate::Keep, Some(1)),
            ("never-pulled".into(), Fate::Transition, Some(1)),
            ("young".into(), Fate::Keep, Some(1)),
            ("old-archive".into(), Fate::Expire, Some(2)),
            ("new-archive".into(), Fate::Keep, Some(2)),
            ("coming-back".into(), Fate::Keep, None),
        ]
    );
}

#[test]
fn the_shield_keeps_every_image_with_a_keep_alive_tag() {
    let user = json!({"rules": [
        {"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}
    ]});
    let shielded = Policy::parse(&shield(Some(&user), "etg-keep-").unwrap().unwrap()).unwrap();
    let images = [
        image("pinned-old", 30, &["prod", "etg-keep-0123"]),
        image("old", 20, &["x"]),
        image("new", 1, &["y"]),
    ];
    assert_eq!(expired(&shielded, &images), vec!["old"]);
    assert_eq!(
        expired(&Policy::parse(&user).unwrap(), &images),
        vec!["pinned-old", "old"],
        "without the shield the pinned image goes first"
    );
}

#[test]
fn ecr_validation_rules() {
    let problems = |rules: Value| Policy::parse(&json!({ "rules": rules })).unwrap_err();
    let sel = |s: Value| json!([{"rulePriority": 1, "selection": s, "action": {"type": "expire"}}]);
    let has = |p: Vec<String>, want: &str| {
        assert!(p.iter().any(|x| x.contains(want)), "{want:?} not in {p:?}")
    };
    has(
        problems(sel(
            json!({"tagStatus": "tagged", "tagPrefixList": ["a"], "tagPatternList": ["b*"],
            "countType": "imageCountMoreThan", "countNumber": 1}),
        )),
        "cannot be used together",
    );
    has(
        problems(sel(
            json!({"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1}),
        )),
        "needs a tagPrefixList or a tagPatternList",
    );
    has(
        problems(sel(
            json!({"tagStatus": "tagged", "tagPatternList": ["a*b*c*d*e*"],
            "countType": "imageCountMoreThan", "countNumber": 1}),
        )),
        "more than 4 wildcards",
    );
    has(
        problems(sel(json!({"tagStatus": "untagged", "tagPrefixList": ["a"],
            "countType": "imageCountMoreThan", "countNumber": 1}))),
        "only allowed with tagStatus `tagged`",
    );
    has(
        problems(sel(
            json!({"tagStatus": "any", "countType": "sinceImagePushed", "countNumber": 1}),
        )),
        "countUnit must be `days`",
    );
    has(
        problems(sel(
            json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countUnit": "days", "countNumber": 1}),
        )),
        "countUnit is not allowed",
    );
    has(
        problems(sel(
            json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 0}),
        )),
        "countNumber",
    );
    has(
        problems(sel(
            json!({"tagStatus": "any", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 1}),
        )),
        "storageClass `archive`",
    );
    has(
        problems(json!([
            {"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}},
            count_rule(2, &["a"], 1)
        ])),
        "rule 1: a rule with tagStatus `any` must have the highest rulePriority",
    );
    has(
        problems(json!([count_rule(3, &["a"], 1), count_rule(3, &["b"], 1)])),
        "rulePriority 3 is used by more than one rule",
    );
    has(
        problems(
            json!([{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
            "countNumber": 1}, "action": {"type": "transition"}}]),
        ),
        "targetStorageClass",
    );
    let several = problems(
        json!([{"rulePriority": 0, "selection": {"tagStatus": "some"}, "action": {"type": "delete"}}]),
    );
    assert!(several.len() >= 4, "every problem is reported: {several:?}");
    assert!(
        several.iter().all(|p| p.starts_with("rules[0]: ")),
        "{several:?}"
    );
}

#[test]
fn describe_images_output_is_read_and_its_problems_named() {
    let v = json!({"imageDetails": [
        {"imageDigest": "sha256:a", "imageTags": ["prod"], "imagePushedAt": "2025-01-30T12:00:00.000000+00:00",
         "lastRecordedPullTime": 1738238400.5, "imageStatus": "ARCHIVED", "lastArchivedAt": "2025-01-31T00:00:00Z"},
        {"imageDigest": "sha256:b", "imagePushedAt": 1738238400}
    ]});
    let images = simulate::images_from_describe(&v).unwrap();
    assert_eq!(images[0].tags, vec!["prod"]);
    assert_eq!(images[0].pushed_at, NOW - DAY);
    assert_eq!(images[0].last_pulled, Some(NOW - DAY));
    assert_eq!(images[0].storage, Storage::Archived);
    assert_eq!(images[0].archived_at, Some(NOW - 12 * 3600));
    assert!(images[1].tags.is_empty());
    let bad = json!([{"imageDigest": "sha256:c", "imagePushedAt": "last week"}]);
    assert_eq!(
        simulate::images_from_describe(&bad).unwrap_err(),
        "imageDetails[0] (sha256:c): imagePushedAt is not a time: \"last week\""
    );
    assert!(simulate::images_from_describe(&json!({"x": 1}))
        .unwrap_err()
        .contains("describe-images"));
}

// ---- properties ----

fn arb_rule() -> impl Strategy<Value = Value> {
    let tags = prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..=2);
    (tags, 0..3u8, 1..4u64, any::<bool>(), any::<bool>()).prop_map(
        |(mut t, kind, n, pattern, transition)| {
            t.sort();
            t.dedup();
            let mut sel = match kind {
                0 => json!({"tagStatus": "tagged"}),
                _ => json!({"tagStatus": "untagged"}),
            };
            if kind == 0 {
                if pattern {
                    sel["tagPatternList"] =
                        json!(t.iter().map(|x| format!("{x}*")).collect::<Vec<_>>());
                } else {
                    sel["tagPrefixList"] = json!(t);
                }
            }
            if kind == 2 || n == 3 {
                sel["countType"] = json!("sinceImagePushed");
                sel["countUnit"] = json!("days");
            } else {
                sel["countType"] = json!("imageCountMoreThan");
            }
            sel["countNumber"] = json!(n);
            let action = if transition {
                json!({"type": "transition", "targetStorageClass": "archive"})
            } else {
                json!({"type": "expire"})
            };
            json!({"selection": sel, "action": action})
        },
    )
}

fn arb_policy() -> impl Strategy<Value = Policy> {
    (prop::collection::vec(arb_rule(), 1..5), any::<bool>()).prop_map(|(rules, with_any)| {
        let mut rules: Vec<Value> = rules
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                r["rulePriority"] = json!(i as u64 + 1);
                r
            })
            .collect();
        if with_any {
            rules.push(json!({"rulePriority": 99, "selection": {"tagStatus": "any",
                "countType": "imageCountMoreThan", "countNumber": 2}, "action": {"type": "expire"}}));
        }
        Policy::parse(&json!({ "rules": rules })).expect("generated policies are valid")
    })
}

fn arb_images() -> impl Strategy<Value = Vec<ImageInfo>> {
    let tag = prop::sample::select(vec!["a-1", "a-2", "b-1", "b-2", "c-1", "etg-keep-1"]);
    prop::collection::vec((prop::collection::vec(tag, 0..3), 0..20i64), 0..12).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (mut tags, age))| {
                tags.sort();
                tags.dedup();
                let refs: Vec<&str> = tags.iter().map(|s| &**s).collect();
                image(&format!("sha256:{i:02}"), age, &refs)
            })
            .collect()
    })
}

proptest! {
    /// Only an image's owner rule (the first whose tagging requirements it meets) acts on it.
    #[test]
    fn only_the_owner_rule_acts(p in arb_policy(), images in arb_images()) {
        for (v, im) in simulate(&p, &images, NOW).iter().zip(&images) {
            if v.action != Fate::Keep {
                prop_assert_eq!(v.rule, p.owner(&im.tags, false).map(|r| r.priority));
            }
        }
    }

    /// A count rule never takes any of the newest N images meeting its tagging requirements,
    /// and what it takes goes oldest first.
    #[test]
    fn count_rules_keep_the_newest_and_take_the_oldest(p in arb_policy(), images in arb_images()) {
        let verdicts = simulate(&p, &images, NOW);
        for rule in &p.rules {
            let policy::Count::MoreThan(n) = rule.count else { continue };
            let mut matching: Vec<usize> = (0..images.len()).filter(|&i| rule.selects(&images[i].tags)).collect();
            matching.sort_by(|&a, &b| images[b].pushed_at.cmp(&images[a].pushed_at).then(images[a].digest.cmp(&images[b].digest)));
            for &i in matching.iter().take(n as usize) {
                prop_assert!(verdicts[i].action == Fate::Keep || verdicts[i].rule != Some(rule.priority));
            }
            let owned: Vec<usize> = matching.iter().copied().filter(|&i| p.owner(&images[i].tags, false).map(|r| r.priority) == Some(rule.priority)).collect();
            let taken: Vec<bool> = owned.iter().map(|&i| verdicts[i].action != Fate::Keep).collect();
            // Among the images it owns, once one is taken every older one is taken too.
            if let Some(first) = taken.iter().position(|&t| t) {
                prop_assert!(taken[first..].iter().all(|&t| t), "{:?}", taken);
            }
        }
    }

    /// The result does not depend on the order the images are listed in.
    #[test]
    fn order_does_not_matter(p in arb_policy(), images in arb_images()) {
        let forward = simulate(&p, &images, NOW);
        let mut reversed_in = images.clone();
        reversed_in.reverse();
        let mut backward = simulate(&p, &reversed_in, NOW);
        backward.reverse();
        prop_assert_eq!(forward, backward);
    }

    /// With the shield first, no image carrying a keep-alive tag is ever taken.
    #[test]
    fn the_shield_holds(p in arb_policy(), images in arb_images()) {
        let raw = json!({"rules": p.rules.iter().map(to_json).collect::<Vec<_>>()});
        let shielded = Policy::parse(&shield(Some(&raw), "etg-keep-").unwrap().unwrap()).unwrap();
        for (v, im) in simulate(&shielded, &images, NOW).iter().zip(&images) {
            if im.tags.iter().any(|t| t.starts_with("etg-keep-")) {
                prop_assert_eq!(v.action, Fate::Keep);
            }
        }
    }
}

/// A parsed rule written back as policy JSON (for the shield property).
fn to_json(r: &Rule) -> Value {
    let mut sel = json!({"tagStatus": match r.tag_status {
        TagStatus::Tagged => "tagged", TagStatus::Untagged => "untagged", TagStatus::Any => "any" }});
    if !r.prefixes.is_empty() {
        sel["tagPrefixList"] = json!(r.prefixes);
    }
    if !r.patterns.is_empty() {
        sel["tagPatternList"] = json!(r.patterns);
    }
    let (kind, n) = match r.count {
        policy::Count::MoreThan(n) => ("imageCountMoreThan", n),
        policy::Count::SincePushed(n) => ("sinceImagePushed", n),
        policy::Count::SincePulled(n) => ("sinceImagePulled", n),
        policy::Count::SinceTransitioned(n) => ("sinceImageTransitioned", n),
    };
    sel["countType"] = json!(kind);
    sel["countNumber"] = json!(n);
    if kind != "imageCountMoreThan" {
        sel["countUnit"] = json!("days");
    }
    let action = match r.action {
        RuleAction::Expire => json!({"type": "expire"}),
        RuleAction::Transition => json!({"type": "transition", "targetStorageClass": "archive"}),
    };
    json!({"rulePriority": r.priority, "selection": sel, "action": action})
}

#[test]
fn a_rule_that_takes_an_image_held_only_by_its_keep_alive_tag_is_named() {
    let any = json!({"rulePriority": 2, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5}, "action": {"type": "expire"}});
    let glob = json!({"rulePriority": 3, "selection": {"tagStatus": "tagged", "tagPatternList": ["*keep*"], "countType": "imageCountMoreThan", "countNumber": 5}, "action": {"type": "expire"}});
    let releases = json!({"rulePriority": 4, "selection": {"tagStatus": "tagged", "tagPrefixList": ["release-"], "countType": "imageCountMoreThan", "countNumber": 5}, "action": {"type": "expire"}});
    // A rule on other tags, or on untagged images, never sees the guard's tag.
    assert_eq!(
        keep_alive_exposure(&policy(json!([releases.clone()])), "etg-keep-"),
        None
    );
    let exposed = policy(json!([glob, releases.clone()]));
    assert_eq!(
        keep_alive_exposure(&exposed, "etg-keep-").map(|r| r.priority),
        Some(3)
    );
    let exposed = policy(json!([any.clone()]));
    assert_eq!(
        keep_alive_exposure(&exposed, "etg-keep-").map(|r| r.priority),
        Some(2)
    );
    // The shield first: the keep-alive tag keeps the image.
    let shielded = shield(Some(&json!({"rules": [any]})), "etg-keep-")
        .unwrap()
        .unwrap();
    assert_eq!(
        keep_alive_exposure(&Policy::parse(&shielded).unwrap(), "etg-keep-"),
        None
    );
}
