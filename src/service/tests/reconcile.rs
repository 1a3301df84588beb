//! Reconcile on the embedded world: repairs, problems paged once, dry runs, page budgets and
//! summaries, an order that resumes, repositories that cannot be read.

use super::*;

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
