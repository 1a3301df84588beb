//! Acting on what is true now, end to end with the real SDK clients against moto (its ECR
//! made AWS-like by tests/moto_launcher.py): late, duplicated and out-of-order events, a moved
//! keep-alive tag, items in other regions, the configured scope, and reconcile leaving an
//! allowed change to its caller. Each story changes ECR first, as the real calls did, then
//! delivers the events in the order under test, and checks ECR, the registry, the history
//! and the pages — the same end state in either order.

use crate::util::*;
use ecr_tag_guard::cli::registry::{protect, ProtectOptions};
use ecr_tag_guard::guard::Scope;
use ecr_tag_guard::ports::NoTrail;
use ecr_tag_guard::service::registration::StreamRecord;
use ecr_tag_guard::service::Tuning;
use ecr_tag_guard::service::{Handler, Now};
use serde_json::{json, Value};

fn attr<'a>(page: &'a Value, name: &str) -> &'a str {
    page["MessageAttributes"][name]["Value"]
        .as_str()
        .unwrap_or("")
}

/// The `action` attribute of every page on the on-call queue.
async fn page_actions(w: &World) -> Vec<String> {
    w.pages()
        .await
        .iter()
        .map(|p| attr(p, "action").to_string())
        .collect()
}

fn deploy_arn(w: &World) -> String {
    format!("arn:aws:iam::{}:role/deploy", w.account)
}

/// A repository `web` whose `prod` is pinned to its first image (with its keep-alive tag, as
/// the guard keeps it) by an item that lets the deploy role move or delete it.
async fn seeded(w: &World) -> (String, String) {
    let allow = json!({"allow": [deploy_arn(w)], "severity": "critical"});
    let (m0, d0) = w.seed("web", "prod", "web-0", allow).await;
    w.push("web", &m0, DOCKER, Some(&keep(&d0))).await;
    (m0, d0)
}

/// What a story ends with: where `prod` is, the pin, and the pages' actions.
async fn end_state(w: &World) -> (Option<String>, Option<String>, Vec<String>) {
    let item = w.item("web", "prod").await.expect("item");
    (
        w.digest_of("web", "prod").await,
        item["digest"].as_str().map(String::from),
        page_actions(w).await,
    )
}

#[tokio::test]
async fn an_allowed_delete_is_kept_whichever_report_comes_first() {
    let mut ends = Vec::new();
    for image_action_first in [true, false] {
        let Some(w) = World::new().await else { return };
        let (_, d0) = seeded(&w).await;
        let ids = w.delete("web", &[(Some("prod"), None)]).await;
        let trail = batch_delete(
            &w,
            role(&w, "deploy", "pipeline-1"),
            "web",
            json!([{"imageTag": "prod"}]),
            ids,
        );
        let ecr = image_action(&w, "web", "DELETE", "prod", &d0);
        let order = if image_action_first {
            [ecr, trail]
        } else {
            [trail, ecr]
        };
        let mut puts = 0;
        for ev in &order {
            let (_, made) = w.handle(ev).await;
            puts += made.iter().filter(|c| *c == "ecr:PutImage").count();
        }
        assert_eq!(
            puts, 0,
            "nothing is put back (image action first: {image_action_first})"
        );
        let item = w.item("web", "prod").await.expect("item");
        assert!(item["released_at"].is_string(), "{item}");
        // Its keep-alive tag is the image's last tag now, and no other image can carry it:
        // it stays (retired) rather than delete the image, and status reports it.
        assert_eq!(
            w.digest_of("web", &keep(&d0)).await.as_deref(),
            Some(d0.as_str()),
            "the guard deletes no image"
        );
        let history = w.history("web", "prod").await;
        assert_eq!(history.len(), 1, "{history:?}");
        assert_eq!(history[0]["outcome"], "released");
        ends.push(end_state(&w).await);
    }
    assert_eq!(ends[0], (None, None, vec!["released".to_string()]));
    assert_eq!(ends[0], ends[1], "the same end either way");
}

#[tokio::test]
async fn a_late_delete_never_rolls_a_new_deploy_back() {
    let mut ends = Vec::new();
    for delete_first in [true, false] {
        let Some(w) = World::new().await else { return };
        let (_, d0) = seeded(&w).await;
        assert!(!d0.is_empty());
        // A person deletes prod; a minute later the deploy pushes a new prod.
        let ids = w.delete("web", &[(Some("prod"), None)]).await;
        let late = batch_delete(
            &w,
            user(&w, "tired-human"),
            "web",
            json!([{"imageTag": "prod"}]),
            ids,
        );
        let m1 = manifest("web-1");
        let d1 = w.push("web", &m1, DOCKER, Some("prod")).await;
        let deploy = put_image(&w, role(&w, "deploy", "pipeline-2"), "web", "prod", &m1);
        let order = if delete_first {
            [late.clone(), deploy]
        } else {
            [deploy, late.clone()]
        };
        for ev in &order {
            let (report, made) = w.handle(ev).await;
            if ev == &late {
                assert!(
                    !made.iter().any(|c| c == "ecr:PutImage"),
                    "the late delete writes nothing: {made:?}"
                );
                assert_eq!(
                    report.decisions[0].decision.action,
                    ecr_tag_guard::guard::Action::Superseded,
                    "{:?}",
                    report.decisions
                );
            }
        }
        let end = end_state(&w).await;
        assert_eq!(end.0.as_deref(), Some(d1.as_str()), "ECR serves the deploy");
        assert_eq!(end.1.as_deref(), Some(d1.as_str()), "the pin followed it");
        assert_eq!(
            w.digest_of("web", &keep(&d1)).await.as_deref(),
            Some(d1.as_str()),
            "the new pin keeps its image alive"
        );
        assert_eq!(
            w.digest_of("web", &keep(&d0)).await,
            None,
            "the old pin's keep-alive tag is gone"
        );
        ends.push(end);
    }
    assert_eq!(ends[0].2, vec!["followed".to_string()]);
    assert_eq!(ends[0], ends[1], "the same end either way");
}

#[tokio::test]
async fn two_deploys_delivered_out_of_order_leave_the_pin_on_the_newest() {
    let mut ends = Vec::new();
    for newest_first in [true, false] {
        let Some(w) = World::new().await else { return };
        seeded(&w).await;
        let (m1, m2) = (manifest("web-1"), manifest("web-2"));
        w.push("web", &m1, DOCKER, Some("prod")).await;
        let first = put_image(&w, role(&w, "deploy", "p-1"), "web", "prod", &m1);
        let d2 = w.push("web", &m2, DOCKER, Some("prod")).await;
        let second = put_image(&w, role(&w, "deploy", "p-2"), "web", "prod", &m2);
        let order = if newest_first {
            [second, first]
        } else {
            [first, second]
        };
        for ev in &order {
            w.handle(ev).await;
        }
        // Reconcile, run now, finds nothing to force back.
        let r = w
            .handler()
            .reconcile(&Now::system(), &NoTrail, &mut |_, _, _| {})
            .await
            .expect("reconcile");
        assert!(r.repairs.is_empty(), "{:?}", r.repairs);
        let end = end_state(&w).await;
        assert_eq!(end.0.as_deref(), Some(d2.as_str()));
        assert_eq!(end.1.as_deref(), Some(d2.as_str()), "never an older digest");
        let item = w.item("web", "prod").await.expect("item");
        assert_eq!(item["manifest"], m2);
        ends.push(end);
    }
    assert_eq!(ends[0].2, vec!["followed".to_string()]);
    assert_eq!(ends[0], ends[1], "the same end either way");
}

#[tokio::test]
async fn a_moved_keep_alive_tag_is_put_back_so_a_later_delete_only_untags() {
    let Some(w) = World::new().await else { return };
    let (_, d0) = seeded(&w).await;
    let m1 = manifest("web-1");
    w.push("web", &m1, DOCKER, Some(&keep(&d0))).await;
    assert_ne!(
        w.digest_of("web", &keep(&d0)).await.as_deref(),
        Some(d0.as_str())
    );

    let (report, made) = w
        .handle(&put_image(&w, user(&w, "bob"), "web", &keep(&d0), &m1))
        .await;

    assert_eq!(
        w.digest_of("web", &keep(&d0)).await.as_deref(),
        Some(d0.as_str()),
        "{:?}",
        report.decisions
    );
    assert_eq!(made.iter().filter(|c| *c == "ecr:PutImage").count(), 1);
    let pages = w.pages().await;
    assert_eq!(pages.len(), 1);
    assert_eq!(attr(&pages[0], "action"), "keep_alive");
    assert_eq!(attr(&pages[0], "severity"), "low");
    assert!(pages[0]["Subject"]
        .as_str()
        .unwrap_or("")
        .contains("keep-alive tag moved; restored"));
    // The protected tag deleted now only untags: the pinned image stays.
    w.delete("web", &[(Some("prod"), None)]).await;
    assert!(w.digests("web").await.contains(&d0));
}

#[tokio::test]
async fn items_are_guarded_in_their_own_region_with_the_table_in_a_third() {
    let Some(w) = World::new().await else { return };
    let (east, west) = ("us-east-1", "us-west-2");
    let (ecr_east, ecr_west) = (w.ecr_in(east), w.ecr_in(west));
    let mut digests = Vec::new();
    for (ecr, name) in [(&ecr_east, "east"), (&ecr_west, "west")] {
        ecr.create_repository()
            .repository_name("web")
            .send()
            .await
            .expect("repository");
        let m = manifest(name);
        ecr.put_image()
            .repository_name("web")
            .image_manifest(&m)
            .image_manifest_media_type(DOCKER)
            .image_tag("prod")
            .send()
            .await
            .expect("push");
        digests.push(sha256(&m));
    }
    assert_eq!(
        w.digest_of("web", "prod").await,
        None,
        "no repository in the table's region"
    );

    // protect ACCOUNT/REGION/NAME reads that region's ECR, whatever region the table is in.
    for region in [east, west] {
        let target = format!("{}/{region}/web:prod", w.account);
        let mut out = Vec::new();
        protect(
            &w.ops(),
            &target,
            &ProtectOptions::default(),
            &Now::system(),
            &mut out,
        )
        .await
        .expect("protected");
    }
    for (region, digest) in [(east, &digests[0]), (west, &digests[1])] {
        let item = w
            .item_at(&w.repo_in(region, "web"), "prod")
            .await
            .expect("item");
        assert_eq!(&item["digest"], digest, "{region}");
    }
    assert_eq!(
        digest_in(&ecr_east, "web", &keep(&digests[0]))
            .await
            .as_deref(),
        Some(digests[0].as_str()),
        "the keep-alive tag went to us-east-1"
    );

    // A delete in us-west-2 is restored there.
    let handler = Handler {
        scope: Scope {
            regions: Vec::new(),
            ..w.handler().scope
        },
        ..w.handler()
    };
    untag_in(&ecr_west, "web", "prod").await;
    let mut ev = batch_delete(
        &w,
        user(&w, "bob"),
        "web",
        json!([{"imageTag": "prod"}]),
        vec![json!({"imageTag": "prod", "imageDigest": digests[1]})],
    );
    ev["region"] = json!(west);
    ev["detail"]["awsRegion"] = json!(west);
    let report = handler.handle(&ev, &Now::system()).await.expect("handled");
    assert_eq!(report.pages.len(), 1, "{report:?}");
    assert_eq!(
        digest_in(&ecr_west, "web", "prod").await.as_deref(),
        Some(digests[1].as_str())
    );

    // Drift in us-east-1, put right by reconcile there.
    untag_in(&ecr_east, "web", "prod").await;
    let r = handler
        .reconcile(&Now::system(), &NoTrail, &mut |_, _, _| {})
        .await
        .expect("reconcile");
    assert_eq!(r.repositories, 2);
    assert_eq!(r.checked, 2);
    assert_eq!(
        digest_in(&ecr_east, "web", "prod").await.as_deref(),
        Some(digests[0].as_str())
    );
    assert_eq!(
        w.digest_of("web", "prod").await,
        None,
        "nothing written in the table's region"
    );
}

#[tokio::test]
async fn outside_the_configured_scope_nothing_is_written() {
    let Some(w) = World::new().await else { return };
    seeded(&w).await;
    w.put_item(json!({"repository": w.repo("web").key(), "tag": "v1"}))
        .await;
    let m1 = manifest("web-1");
    w.push("web", &m1, DOCKER, Some("v1")).await;
    w.delete("web", &[(Some("prod"), None)]).await;
    let other = Handler {
        scope: Scope {
            accounts: vec!["999999999999".into()],
            ..w.handler().scope
        },
        ..w.handler()
    };
    w.take_calls();
    let r = other
        .reconcile(&Now::system(), &NoTrail, &mut |_, _, _| {})
        .await
        .expect("reconcile");
    let made = w.take_calls();
    assert!(
        !made.iter().any(|c| c.starts_with("ecr:")),
        "not even read: {made:?}"
    );
    assert_eq!(r.out_of_scope.len(), 2, "{:?}", r.out_of_scope);
    assert!(r.out_of_scope[0].contains("TAG_GUARD_ACCOUNTS"));
    assert_eq!(w.digest_of("web", "prod").await, None);
    // Registration from the stream leaves an item outside the scope alone too.
    let item = w.item("web", "v1").await.expect("item");
    let records = vec![Ok(StreamRecord {
        id: "1".into(),
        event_name: "INSERT".into(),
        item: Some(item),
    })];
    let report = other.register(&records, &Now::system()).await;
    assert!(
        report.records[0]
            .outcome
            .contains("outside the guard's scope"),
        "{:?}",
        report.records
    );
    assert!(w
        .item("web", "v1")
        .await
        .expect("item")
        .get("digest")
        .is_none());
    // The CLI refuses to protect there when the scope is set.
    let ops = ecr_tag_guard::cli::registry::Ops {
        scope: other.scope.clone(),
        ..w.ops()
    };
    let e = protect(
        &ops,
        &format!("{}:v1", w.repo("web").key()),
        &ProtectOptions::default(),
        &Now::system(),
        &mut Vec::new(),
    )
    .await
    .expect_err("refused");
    assert!(e.to_string().contains("outside the guard's scope"), "{e}");
}

#[tokio::test]
async fn reconcile_leaves_an_allowed_move_to_its_caller_and_never_reverts_blind() {
    let Some(w) = World::new().await else { return };
    let (_, d0) = seeded(&w).await;
    // The deploy moves prod; no event reaches the guard (no trail, or not yet).
    let m1 = manifest("web-1");
    let d1 = w.push("web", &m1, DOCKER, Some("prod")).await;

    let r = w
        .handler()
        .reconcile(&Now::system(), &NoTrail, &mut |_, _, _| {})
        .await
        .expect("reconcile");
    assert_eq!(r.waiting.len(), 1, "{r:?}");
    assert!(r.repairs.is_empty(), "{:?}", r.repairs);
    assert_eq!(
        w.digest_of("web", "prod").await.as_deref(),
        Some(d1.as_str())
    );
    assert!(w.pages().await.is_empty());

    // After the grace period, with no way to learn who moved it: paged, not reverted.
    let after = Handler {
        tuning: Tuning {
            grace_secs: 0,
            ..w.handler().tuning
        },
        ..w.handler()
    };
    let r = after
        .reconcile(&Now::system(), &NoTrail, &mut |_, _, _| {})
        .await
        .expect("reconcile");
    assert_eq!(r.repairs.len(), 1);
    assert_eq!(
        r.repairs[0].decision.action,
        ecr_tag_guard::guard::Action::Alert,
        "{}",
        r.repairs[0].decision.why
    );
    assert_eq!(
        w.digest_of("web", "prod").await.as_deref(),
        Some(d1.as_str())
    );
    assert_eq!(
        w.item("web", "prod").await.expect("item")["digest"],
        json!(d0)
    );
    assert_eq!(page_actions(&w).await, vec!["alert".to_string()]);
    // Paged once per incident.
    let r = after
        .reconcile(&Now::system(), &NoTrail, &mut |_, _, _| {})
        .await
        .expect("reconcile");
    assert!(r.pages.is_empty());
}

#[tokio::test]
async fn a_release_does_not_come_back_as_work_through_the_stream() {
    let Some(w) = World::new().await else { return };
    seeded(&w).await;
    let ids = w.delete("web", &[(Some("prod"), None)]).await;
    w.handle(&batch_delete(
        &w,
        role(&w, "deploy", "pipeline-3"),
        "web",
        json!([{"imageTag": "prod"}]),
        ids,
    ))
    .await;
    // The release is a MODIFY of the item; the stream hands it back.
    let item = w.item("web", "prod").await.expect("item");
    assert!(item.get("digest").is_none());
    let records = vec![Ok(StreamRecord {
        id: "7".into(),
        event_name: "MODIFY".into(),
        item: Some(item),
    })];
    w.take_calls();
    let report = w.handler().register(&records, &Now::system()).await;
    assert!(
        report.records[0].outcome.starts_with("skipped: released"),
        "{:?}",
        report.records
    );
    assert_eq!(
        w.take_calls(),
        ["dynamodb:GetItem"],
        "the item read back, and no other call"
    );
    assert_eq!(page_actions(&w).await, vec!["released".to_string()]);
}

#[tokio::test]
async fn the_dynamodb_ledger_and_the_embedded_one_lease_alike() {
    ledger_contract(&ecr_tag_guard::memory::Memory::default()).await;
    let Some(w) = World::new().await else { return };
    ledger_contract(&w.handler().ledger).await;
}

#[tokio::test]
async fn the_ledger_keeps_first_sightings_and_reconcile_progress_in_dynamodb() {
    use ecr_tag_guard::ports::Ledger;
    let Some(w) = World::new().await else { return };
    let ledger = w.handler().ledger;
    assert_eq!(ledger.first_seen("drift/x", 100).await.expect("noted"), 100);
    assert_eq!(
        ledger.first_seen("drift/x", 200).await.expect("read"),
        100,
        "the first sighting stands"
    );
    assert_eq!(ledger.first_seen("drift/y", 300).await.expect("noted"), 300);
    let repos: Vec<String> = (0..30)
        .map(|i| format!("{}/eu-west-1/r{i:02}", w.account))
        .collect();
    ledger.mark_reconciled(&repos, 500).await.expect("noted");
    ledger
        .mark_reconciled(&repos[..1], 600)
        .await
        .expect("noted");
    let mut got = ledger.reconciled().await.expect("read");
    got.sort();
    assert_eq!(got.len(), 30, "more than one batch of 25");
    assert_eq!(got[0], (repos[0].clone(), 600));
    assert_eq!(got[29], (repos[29].clone(), 500));
    // Neither is a registry item: reconcile's scan does not see them.
    let r = w
        .handler()
        .reconcile(&Now::system(), &NoTrail, &mut |_, _, _| {})
        .await
        .expect("reconcile");
    assert_eq!((r.repositories, r.invalid.len()), (0, 0));
}
