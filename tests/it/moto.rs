//! End to end through the handler with the real SDK clients against moto_server (its ECR
//! corrected to AWS's behaviour by tests/moto_launcher.py). Each test: seed ECR and the
//! registry, make the change in ECR, build the event CloudTrail/ECR would send, run the
//! handler, then check ECR, the registry, the on-call queue and the AWS calls made.

use crate::util::*;
use ecr_tag_guard::service::Report;
use serde_json::{json, Value};

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn calls(list: &[&str]) -> Vec<String> {
    sorted(list.iter().map(|s| s.to_string()).collect())
}

/// The calls a restore of one tag takes: registry read ‖ rules read ‖ claim, where the tag is
/// now (BatchGetImage) ‖ the pin's seal (VerifyMac), PutImage, then page ‖ history ‖ done ‖
/// keep-alive tag (a second PutImage). The restore starts after two round trips.
const ONE_RESTORE: &[&str] = &[
    "ecr:BatchGetImage",
    "kms:VerifyMac",
    "ecr:PutImage",
    "dynamodb:Query",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
    "ecr:PutImage",
    "sns:Publish",
    "dynamodb:BatchWriteItem",
    "dynamodb:PutItem",
];

fn attr<'a>(page: &'a Value, name: &str) -> &'a str {
    page["MessageAttributes"][name]["Value"]
        .as_str()
        .unwrap_or("")
}

#[tokio::test]
async fn delete_by_tag_is_restored_and_paged() {
    let Some(w) = World::new().await else { return };
    let (m, d) = w
        .seed("web", "prod.latest", "web-1", json!({"owner": "team-web"}))
        .await;
    w.push("web", &m, DOCKER, Some("v1")).await;
    let event = w.delete_by(user(&w, "bob"), "web", "prod.latest").await;
    w.expect_tag("web", "prod.latest", None).await;

    let (report, made) = w.handle(&event).await;

    w.expect_tag("web", "prod.latest", Some(&d)).await;
    assert_eq!(sorted(made), calls(ONE_RESTORE));
    assert_eq!(report.pages.len(), 1);
    let pages = w.expect_pages(&["restored"]).await;
    let p = &pages[0];
    assert_eq!(p["Subject"], "[HIGH] prod.latest in web: deleted; restored");
    assert_eq!(attr(p, "tag"), r#"["prod.latest"]"#);
    assert_eq!(
        p["MessageAttributes"]["tag"]["Type"], "String.Array",
        "a filter policy on one tag selects every page listing it"
    );
    assert_eq!(attr(p, "repository"), w.repo("web").key());
    let msg = p["Message"].as_str().unwrap_or("");
    assert!(
        msg.contains(&format!("arn:aws:iam::{}:user/bob", w.account)),
        "{msg}"
    );
    assert!(msg.contains(&d), "{msg}");
    // Links to the repository, the pinned image and the CloudTrail record, in the text and
    // in the JSON.
    let console = "https://eu-west-1.console.aws.amazon.com";
    let repo_link = format!(
        "{console}/ecr/repositories/private/{}/web?region=eu-west-1",
        w.account
    );
    let image_link = format!(
        "{console}/ecr/repositories/private/{}/web/_/image/{d}/details?region=eu-west-1",
        w.account
    );
    let event_id = event["detail"]["eventID"].as_str().unwrap_or("?");
    let event_link =
        format!("{console}/cloudtrail/home?region=eu-west-1#/events?EventId={event_id}");
    for link in [&repo_link, &image_link, &event_link] {
        assert!(msg.contains(&format!(" {link}\n")), "{link} in {msg}");
    }
    let facts: Value = serde_json::from_str(msg.split("--- JSON ---\n").nth(1).unwrap_or(""))
        .expect("the JSON part");
    assert_eq!(facts["links"]["repository"], repo_link.as_str());
    assert_eq!(facts["links"]["image"], image_link.as_str());
    assert_eq!(facts["links"]["event"], event_link.as_str());
    let history = w.history("web", "prod.latest").await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["outcome"], "restored");
}

#[tokio::test]
async fn delete_by_digest_restores_both_protected_tags() {
    let Some(w) = World::new().await else { return };
    w.create_repo("api", false).await;
    let m = manifest("api-2");
    let d = w.push("api", &m, DOCKER, Some("prod")).await;
    w.push("api", &m, DOCKER, Some("stable")).await;
    w.put_sealed(with(
        pinned_item(&w, "api", "prod", &m, DOCKER),
        json!({"severity": "critical"}),
    ))
    .await;
    w.put_sealed(pinned_item(&w, "api", "stable", &m, DOCKER))
        .await;
    let ids = w.delete("api", &[(None, Some(&d))]).await;
    assert!(w.digests("api").await.is_empty(), "the image is gone");

    let (report, made) = w
        .handle(&batch_delete(
            &w,
            role(&w, "cleanup", "nightly"),
            "api",
            json!([{"imageDigest": d}]),
            ids,
        ))
        .await;

    assert_eq!(
        w.digest_of("api", "prod").await.as_deref(),
        Some(d.as_str())
    );
    assert_eq!(
        w.digest_of("api", "stable").await.as_deref(),
        Some(d.as_str())
    );
    assert_eq!(report.decisions.len(), 2);
    let mut subjects: Vec<String> = w
        .pages()
        .await
        .iter()
        .map(|p| p["Subject"].as_str().unwrap_or("").to_string())
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        vec!["[CRITICAL] 2 tags in api: deleted; restored"],
        "one delete, one page listing both tags"
    );
    let expected = [
        "dynamodb:Query",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        "ecr:BatchGetImage",
        "ecr:PutImage",
        "ecr:PutImage",
        "ecr:PutImage",
        "kms:VerifyMac",
        "kms:VerifyMac",
        "sns:Publish",
        "dynamodb:BatchWriteItem",
        "dynamodb:PutItem",
    ];
    assert_eq!(sorted(made), calls(&expected));
}

#[tokio::test]
async fn lifecycle_expiry_of_two_images_restores_both() {
    let Some(w) = World::new().await else { return };
    w.create_repo("worker", false).await;
    let (m1, m2) = (manifest("worker-a"), manifest("worker-b"));
    let d1 = w.push("worker", &m1, DOCKER, Some("release-1")).await;
    let d2 = w.push("worker", &m2, DOCKER, Some("release-2")).await;
    w.put_sealed(pinned_item(&w, "worker", "release-1", &m1, DOCKER))
        .await;
    w.put_sealed(pinned_item(&w, "worker", "release-2", &m2, DOCKER))
        .await;
    w.delete("worker", &[(None, Some(&d1)), (None, Some(&d2))])
        .await;

    let (report, _) = w
        .handle(&lifecycle(
            &w,
            "worker",
            &[(&d1, &["release-1"]), (&d2, &["release-2"])],
        ))
        .await;

    assert_eq!(
        w.digest_of("worker", "release-1").await.as_deref(),
        Some(d1.as_str())
    );
    assert_eq!(
        w.digest_of("worker", "release-2").await.as_deref(),
        Some(d2.as_str())
    );
    assert_eq!(report.pages.len(), 1, "one expiry event, one page");
    let pages = w.pages().await;
    assert_eq!(pages.len(), 1);
    assert_eq!(tag_actions(&pages[0]), ["restored", "restored"]);
    for p in &pages {
        assert!(
            p["Subject"]
                .as_str()
                .unwrap_or("")
                .ends_with("expired by lifecycle; restored"),
            "{}",
            p["Subject"]
        );
        assert!(
            p["Message"]
                .as_str()
                .unwrap_or("")
                .contains("lifecycle policy rule 2"),
            "{}",
            p["Message"]
        );
    }
}

#[tokio::test]
async fn move_by_a_stranger_is_reverted() {
    let Some(w) = World::new().await else { return };
    let (_, d_good) = w.seed("web", "prod", "good", json!({})).await;
    let (d_bad, event) = w
        .push_by(user(&w, "mallory"), "web", "prod", &manifest("bad"))
        .await;

    let (_, made) = w.handle(&event).await;

    w.expect_tag("web", "prod", Some(&d_good)).await;
    assert!(
        w.digests("web").await.contains(&d_bad),
        "the other image stays, untagged"
    );
    let pages = w.expect_pages(&["reverted"]).await;
    assert!(pages[0]["Message"].as_str().unwrap_or("").contains(&d_bad));
    // A push is read first and claimed only once it touches a protected tag.
    assert_eq!(sorted(made), calls(ONE_RESTORE));
}

#[tokio::test]
async fn move_by_an_allowed_principal_is_followed() {
    let Some(w) = World::new().await else { return };
    w.create_repo("web", false).await;
    let (v1, v2) = (manifest("v1"), manifest("v2"));
    let d1 = w.push("web", &v1, DOCKER, Some("prod")).await;
    let d2 = w.push("web", &v2, DOCKER, Some("prod")).await;
    let deploy = format!("arn:aws:iam::{}:role/deploy", w.account);
    w.put_sealed(with(
        pinned_item(&w, "web", "prod", &v1, DOCKER),
        json!({"allow": [deploy]}),
    ))
    .await;

    let (report, made) = w
        .handle(&put_image(
            &w,
            role(&w, "deploy", "pipeline-9"),
            "web",
            "prod",
            &v2,
        ))
        .await;

    assert_eq!(
        w.digest_of("web", "prod").await.as_deref(),
        Some(d2.as_str()),
        "the move stays"
    );
    let item = w.item("web", "prod").await.expect("item");
    assert_eq!(item["digest"], d2);
    assert_eq!(
        item["manifest"], v2,
        "the new manifest is kept, from the event"
    );
    assert!(item["pinned_by"]
        .as_str()
        .unwrap_or("")
        .contains("followed"));
    let history = w.history("web", "prod").await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["old_digest"], d1);
    assert_eq!(history[0]["new_digest"], d2);
    assert_eq!(history[0]["outcome"], "followed");
    assert_eq!(report.pages.len(), 1);
    let pages = w.pages().await;
    assert_eq!(attr(&pages[0], "action"), "followed");
    assert_eq!(attr(&pages[0], "severity"), "low");
    // One PutImage: the new pin's keep-alive tag. The old pin (written into the table) had no
    // keep-alive tag in ECR: the guard looks (DescribeImages), finds none to let go of, and
    // removes nothing.
    assert_eq!(
        made.iter().filter(|c| *c == "ecr:PutImage").count(),
        1,
        "{made:?}"
    );
    assert!(made.contains(&"ecr:DescribeImages".to_string()), "{made:?}");
    assert!(
        !made.contains(&"ecr:BatchDeleteImage".to_string()),
        "{made:?}"
    );
    assert!(
        w.digests("web").await.contains(&d1),
        "the previous image is still in ECR: its deployments, scale-outs and rollbacks need it"
    );
    assert_eq!(w.tags_on("web", &d1).await, Vec::<String>::new());
    assert_eq!(
        w.digest_of("web", &keep(&d2)).await.as_deref(),
        Some(d2.as_str())
    );
}

#[tokio::test]
async fn keep_alive_tags_keep_pinned_images_and_follow_the_pin() {
    let Some(w) = World::new().await else { return };
    w.create_repo("web", false).await;
    let (v1, v2) = (manifest("keep-1"), manifest("keep-2"));
    let d1 = w.push("web", &v1, DOCKER, Some("prod")).await;
    w.put_item(json!({"repository": w.repo("web").key(), "tag": "prod", "on_move": "follow"}))
        .await;
    // First sight pins the image and tags it with its keep-alive tag.
    let (_, _) = w
        .handle(&put_image(&w, user(&w, "ci"), "web", "prod", &v1))
        .await;
    assert_eq!(
        w.digest_of("web", &keep(&d1)).await.as_deref(),
        Some(d1.as_str())
    );
    // Deleting the protected tag now only untags the image: it is still there to restore.
    let ids = w.delete("web", &[(Some("prod"), None)]).await;
    assert!(
        w.digests("web").await.contains(&d1),
        "the keep-alive tag kept the image"
    );
    w.handle(&batch_delete(
        &w,
        user(&w, "bob"),
        "web",
        json!([{"imageTag": "prod"}]),
        ids,
    ))
    .await;
    assert_eq!(
        w.digest_of("web", "prod").await.as_deref(),
        Some(d1.as_str())
    );
    // Someone deletes the keep-alive tag itself: the guard puts it back, paging low.
    let ids = w.delete("web", &[(Some(&keep(&d1)), None)]).await;
    w.pages().await;
    let (report, _) = w
        .handle(&batch_delete(
            &w,
            user(&w, "bob"),
            "web",
            json!([{"imageTag": keep(&d1)}]),
            ids,
        ))
        .await;
    assert_eq!(
        w.digest_of("web", &keep(&d1)).await.as_deref(),
        Some(d1.as_str()),
        "{report:?}"
    );
    let pages = w.pages().await;
    assert_eq!(pages.len(), 1);
    assert_eq!(attr(&pages[0], "severity"), "low");
    assert_eq!(attr(&pages[0], "action"), "keep_alive");
    // The pin follows a move: the keep-alive tag moves with it, and the old image, whose
    // last tag was the guard's, is left in ECR untagged, as ECR leaves any image whose tag
    // moved: the guard's tag is carried off it, never deleted from it.
    let d2 = w.push("web", &v2, DOCKER, Some("prod")).await;
    w.handle(&put_image(&w, user(&w, "ci"), "web", "prod", &v2))
        .await;
    assert_eq!(
        w.digest_of("web", &keep(&d2)).await.as_deref(),
        Some(d2.as_str())
    );
    assert_eq!(w.digest_of("web", &keep(&d1)).await, None);
    assert!(
        w.digests("web").await.contains(&d1),
        "the previous image is still in ECR"
    );
    assert_eq!(
        w.tags_on("web", &d1).await,
        Vec::<String>::new(),
        "and untagged"
    );
}

#[tokio::test]
async fn a_duplicate_event_neither_restores_nor_pages_again() {
    let Some(w) = World::new().await else { return };
    let (m, _) = w.seed("web", "prod", "dup", json!({})).await;
    w.push("web", &m, DOCKER, Some("keep")).await;
    let event = w.delete_by(user(&w, "bob"), "web", "prod").await;

    let (first, _) = w.handle(&event).await;
    let (second, made) = w.handle(&event).await;

    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert!(second.pages.is_empty());
    assert_eq!(
        sorted(made),
        calls(&["dynamodb:Query", "dynamodb:Query", "dynamodb:UpdateItem"])
    );
    w.expect_pages(&["restored"]).await;
}

#[tokio::test]
async fn the_guards_own_put_image_is_ignored_without_a_call() {
    let Some(w) = World::new().await else { return };
    w.create_repo("web", false).await;
    let m = manifest("own");
    w.push("web", &m, DOCKER, Some("prod")).await;
    w.put_sealed(pinned_item(&w, "web", "prod", &m, DOCKER))
        .await;
    let other = manifest("other");
    w.push("web", &other, DOCKER, Some("prod")).await;

    let (report, made) = w
        .handle(&put_image(
            &w,
            role(&w, GUARD_ROLE, "fn"),
            "web",
            "prod",
            &other,
        ))
        .await;

    assert!(
        report.ignored.as_deref().unwrap_or("").contains("own role"),
        "{report:?}"
    );
    assert!(made.is_empty(), "{made:?}");
    assert!(w.pages().await.is_empty());
}

#[tokio::test]
async fn a_failed_call_changes_nothing_and_costs_nothing() {
    let Some(w) = World::new().await else { return };
    w.create_repo("web", false).await;
    let m = manifest("f");
    w.push("web", &m, DOCKER, Some("prod")).await;
    w.put_sealed(pinned_item(&w, "web", "prod", &m, DOCKER))
        .await;
    let mut event = batch_delete(
        &w,
        user(&w, "intern"),
        "web",
        json!([{"imageTag": "prod"}]),
        vec![],
    );
    event["detail"]["errorCode"] = json!("AccessDenied");
    event["detail"]["responseElements"] = Value::Null;

    let (report, made) = w.handle(&event).await;

    assert!(report
        .ignored
        .as_deref()
        .unwrap_or("")
        .contains("AccessDenied"));
    assert!(made.is_empty());
    assert!(w.pages().await.is_empty());
}

#[tokio::test]
async fn an_unprotected_tag_costs_two_reads_when_pushed() {
    let Some(w) = World::new().await else { return };
    w.create_repo("web", false).await;
    let m = manifest("u");
    w.push("web", &m, DOCKER, Some("dev")).await;
    w.put_sealed(pinned_item(&w, "web", "prod", &manifest("p"), DOCKER))
        .await;

    let (report, made) = w
        .handle(&put_image(&w, user(&w, "dev"), "web", "dev", &m))
        .await;
    assert!(report.decisions.is_empty());
    assert_eq!(
        made,
        vec!["dynamodb:Query", "dynamodb:Query"],
        "the repository's items and the rules"
    );

    // A delete is claimed while the registry is read, to save a round trip when it matters.
    let ids = w.delete("web", &[(Some("dev"), None)]).await;
    let (report, made) = w
        .handle(&batch_delete(
            &w,
            user(&w, "dev"),
            "web",
            json!([{"imageTag": "dev"}]),
            ids,
        ))
        .await;
    assert!(report.decisions.is_empty());
    assert_eq!(
        sorted(made),
        calls(&[
            "dynamodb:Query",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem"
        ]),
        "read and claimed together, then marked handled so a duplicate stays quiet"
    );
    assert!(w.pages().await.is_empty());
}

#[tokio::test]
async fn a_tampered_stored_manifest_is_refused_and_paged() {
    let Some(w) = World::new().await else { return };
    w.create_repo("billing", false).await;
    let m = manifest("billing");
    let d = w.push("billing", &m, DOCKER, Some("prod")).await;
    let tampered = m.replace("1469", "1470");
    w.put_sealed(with(
        pinned_item(&w, "billing", "prod", &m, DOCKER),
        json!({"manifest": tampered}),
    ))
    .await;
    let ids = w.delete("billing", &[(None, Some(&d))]).await;

    let (report, made) = w
        .handle(&batch_delete(
            &w,
            user(&w, "bob"),
            "billing",
            json!([{"imageDigest": d}]),
            ids,
        ))
        .await;

    assert!(
        !made.contains(&"ecr:PutImage".to_string()),
        "nothing pushed: {made:?}"
    );
    assert!(w.digests("billing").await.is_empty());
    assert_eq!(report.pages.len(), 1);
    let pages = w.pages().await;
    assert_eq!(attr(&pages[0], "action"), "refused");
    assert!(pages[0]["Subject"]
        .as_str()
        .unwrap_or("")
        .contains("NOT restored"));
    assert!(pages[0]["Message"]
        .as_str()
        .unwrap_or("")
        .contains("altered"));
}

#[tokio::test]
async fn an_image_index_is_restored_children_first() {
    let Some(w) = World::new().await else { return };
    w.create_repo("edge", false).await;
    let (amd, arm) = (oci_manifest("edge-amd64"), oci_manifest("edge-arm64"));
    let idx = index(&[(&amd, "amd64"), (&arm, "arm64")]);
    let d_amd = w.push("edge", &amd, OCI, None).await;
    let d_arm = w.push("edge", &arm, OCI, None).await;
    let d_idx = w.push("edge", &idx, OCI_INDEX, Some("prod")).await;
    let child = |m: &str| json!({"digest": sha256(m), "manifest": m, "media_type": OCI});
    w.put_sealed(with(
        pinned_item(&w, "edge", "prod", &idx, OCI_INDEX),
        json!({"children": [child(&amd), child(&arm)]}),
    ))
    .await;
    let ids = w
        .delete(
            "edge",
            &[
                (None, Some(&d_idx)),
                (None, Some(&d_amd)),
                (None, Some(&d_arm)),
            ],
        )
        .await;
    assert!(w.digests("edge").await.is_empty());

    let (report, made) = w
        .handle(&batch_delete(
            &w,
            user(&w, "bob"),
            "edge",
            json!([{"imageDigest": d_idx}, {"imageDigest": d_amd}, {"imageDigest": d_arm}]),
            ids,
        ))
        .await;

    assert_eq!(
        w.digest_of("edge", "prod").await.as_deref(),
        Some(d_idx.as_str())
    );
    let mut all = vec![d_idx, d_amd, d_arm];
    all.sort();
    assert_eq!(w.digests("edge").await, all);
    assert_eq!(
        made.iter().filter(|c| *c == "ecr:PutImage").count(),
        4,
        "two children, the index, its keep-alive tag"
    );
    assert_eq!(report.pages.len(), 1);
}

#[tokio::test]
async fn an_immutable_tag_held_elsewhere_is_paged_with_what_to_do() {
    let Some(w) = World::new().await else { return };
    w.create_repo("locked", true).await;
    let (good, other) = (manifest("locked-good"), manifest("locked-other"));
    let d = w.push("locked", &good, DOCKER, Some("prod")).await;
    w.push("locked", &good, DOCKER, Some("keep")).await;
    w.put_sealed(pinned_item(&w, "locked", "prod", &good, DOCKER))
        .await;
    let ids = w.delete("locked", &[(Some("prod"), None)]).await;
    let d_other = w.push("locked", &other, DOCKER, Some("prod")).await;

    // The delete, delivered now, is overtaken by the push: it writes nothing, pages nothing.
    let (late, made) = w
        .handle(&batch_delete(
            &w,
            user(&w, "bob"),
            "locked",
            json!([{"imageTag": "prod"}]),
            ids,
        ))
        .await;
    assert!(late.pages.is_empty(), "{late:?}");
    assert!(!made.contains(&"ecr:PutImage".to_string()), "{made:?}");
    // The push's own event decides: the revert meets the immutable tag.
    let (report, _) = w
        .handle(&put_image(&w, user(&w, "bob"), "locked", "prod", &other))
        .await;

    assert_eq!(
        w.digest_of("locked", "prod").await.as_deref(),
        Some(d_other.as_str()),
        "nothing forced"
    );
    assert_ne!(d, d_other);
    let pages = w.pages().await;
    assert_eq!(pages.len(), 1, "{report:?}");
    assert_eq!(attr(&pages[0], "action"), "failed");
    let msg = pages[0]["Message"].as_str().unwrap_or("");
    assert!(msg.contains("ImageTagAlreadyExistsException"), "{msg}");
    assert!(msg.contains("immutable"), "{msg}");
}

#[tokio::test]
async fn a_bare_item_is_pinned_on_first_sight_with_its_manifest() {
    let Some(w) = World::new().await else { return };
    w.create_repo("web", false).await;
    let m = manifest("first");
    let d = w.push("web", &m, DOCKER, Some("qa")).await;
    w.put_item(json!({"repository": w.repo("web").key(), "tag": "qa"}))
        .await;

    // The Image Action event carries no manifest: the guard reads it from ECR.
    let event = json!({
        "version": "0", "id": "5a8c1f00-0000-4000-8000-000000000001", "detail-type": "ECR Image Action", "source": "aws.ecr",
        "account": w.account, "time": "2026-11-20T10:00:00Z", "region": REGION, "resources": [],
        "detail": {"result": "SUCCESS", "repository-name": "web", "image-digest": d, "action-type": "PUSH", "image-tag": "qa"}
    });
    let (report, made) = w.handle(&event).await;

    let item = w.item("web", "qa").await.expect("item");
    assert_eq!(item["digest"], d);
    assert_eq!(item["manifest"], m);
    assert_eq!(item["media_type"], DOCKER);
    assert!(item["pinned_by"]
        .as_str()
        .unwrap_or("")
        .contains("first sight"));
    assert!(report.pages.is_empty(), "pinning is recorded, not paged");
    assert!(made.contains(&"ecr:BatchGetImage".to_string()));
    assert_eq!(w.history("web", "qa").await[0]["outcome"], "pinned");
}

#[tokio::test]
async fn a_failed_page_is_sent_on_the_retry_without_restoring_again() {
    let Some(w) = World::new().await else { return };
    w.create_repo("web", false).await;
    let m = manifest("p");
    let d = w.push("web", &m, DOCKER, Some("prod")).await;
    w.push("web", &m, DOCKER, Some("keep")).await;
    w.put_sealed(pinned_item(&w, "web", "prod", &m, DOCKER))
        .await;
    let ids = w.delete("web", &[(Some("prod"), None)]).await;
    let event = batch_delete(
        &w,
        user(&w, "bob"),
        "web",
        json!([{"imageTag": "prod"}]),
        ids,
    );
    // The topic disappears: the page cannot go out.
    w.sns
        .delete_topic()
        .topic_arn(&w.topic_arn)
        .send()
        .await
        .expect("delete topic");

    let err = w
        .handler()
        .handle(&event, &ecr_tag_guard::service::Now::system())
        .await
        .expect_err("page failed");
    // SNS would answer NotFound again until the topic is back: not a retry's to mend, but the
    // page is kept, and the event's replay sends it.
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("NotFound"), "{err}");
    assert_eq!(
        w.digest_of("web", "prod").await.as_deref(),
        Some(d.as_str()),
        "restored before the page failed"
    );

    // The topic is back; the replay sends the page and does not touch ECR.
    w.sns
        .create_topic()
        .name("pages")
        .send()
        .await
        .expect("topic");
    w.sns
        .subscribe()
        .topic_arn(&w.topic_arn)
        .protocol("sqs")
        .endpoint(format!("arn:aws:sqs:{REGION}:{}:on-call", w.account))
        .send()
        .await
        .expect("subscribe");
    let (report, made) = w.handle(&event).await;
    assert_eq!(report.pages.len(), 1);
    assert!(!made.contains(&"ecr:PutImage".to_string()), "{made:?}");
    let pages = w.pages().await;
    assert_eq!(pages.len(), 1);
    assert_eq!(attr(&pages[0], "action"), "restored");
}

#[tokio::test]
async fn the_registry_writes_a_pin_only_over_the_digest_it_read() {
    use ecr_tag_guard::ports::Registry;
    use ecr_tag_guard::registry::Pin;
    let Some(w) = World::new().await else { return };
    let (a, b) = (manifest("a"), manifest("b"));
    w.put_sealed(with(
        pinned_item(&w, "web", "prod", &a, DOCKER),
        json!({"owner": "team"}),
    ))
    .await;
    let reg = w.handler().registry;
    let pin = Pin {
        digest: sha256(&b),
        manifest: None,
        children: vec![],
        pinned_by: Some("t".into()),
        pinned_at: None,
        mac: None,
    };
    assert!(!reg
        .set_pin(&w.repo("web"), "prod", Some(&sha256(&b)), Some(&pin))
        .await
        .expect("call"));
    assert!(!reg
        .set_pin(&w.repo("web"), "prod", None, Some(&pin))
        .await
        .expect("call"));
    assert!(
        !reg.set_pin(&w.repo("web"), "nope", None, Some(&pin))
            .await
            .expect("call"),
        "no item is created"
    );
    assert!(w.item("web", "nope").await.is_none());
    assert!(reg
        .set_pin(&w.repo("web"), "prod", Some(&sha256(&a)), Some(&pin))
        .await
        .expect("call"));
    let item = w.item("web", "prod").await.expect("item");
    assert_eq!(item["digest"], sha256(&b));
    assert!(item.get("manifest").is_none());
    assert_eq!(item["owner"], "team", "the user's fields stay");
    assert!(reg
        .set_pin(&w.repo("web"), "prod", Some(&sha256(&b)), None)
        .await
        .expect("call"));
    assert!(w
        .item("web", "prod")
        .await
        .expect("item")
        .get("digest")
        .is_none());
}

#[tokio::test]
async fn reconcile_repairs_drift_with_batched_reads_and_pages_a_lasting_problem_once() {
    let Some(w) = World::new().await else { return };
    w.create_repo("web", false).await;
    let (a, b) = (manifest("rc-a"), manifest("rc-b"));
    let da = w.push("web", &a, DOCKER, Some("holder")).await;
    let db = w.push("web", &b, DOCKER, Some("moved")).await;
    w.push("web", &b, DOCKER, Some("qa")).await;
    w.put_sealed(pinned_item(&w, "web", "missing", &a, DOCKER))
        .await;
    w.put_sealed(pinned_item(&w, "web", "moved", &a, DOCKER))
        .await;
    w.put_item(json!({"repository": w.repo("web").key(), "tag": "qa"}))
        .await;
    w.put_sealed(with(
        pinned_item(&w, "web", "watched", &a, DOCKER),
        json!({"on_delete": "alert"}),
    ))
    .await;
    w.take_calls();

    let h = w.handler();
    let r = h
        .reconcile(
            &ecr_tag_guard::service::Now::system(),
            &ecr_tag_guard::ports::NoTrail,
            &mut |_, _, _| {},
        )
        .await
        .expect("reconcile");
    let made = w.take_calls();

    assert_eq!(
        w.digest_of("web", "missing").await.as_deref(),
        Some(da.as_str())
    );
    assert_eq!(
        w.digest_of("web", "moved").await.as_deref(),
        Some(da.as_str())
    );
    assert_eq!(w.item("web", "qa").await.expect("qa")["digest"], db);
    assert_eq!(
        w.digest_of("web", &keep(&da)).await.as_deref(),
        Some(da.as_str())
    );
    assert_eq!(
        w.digest_of("web", &keep(&db)).await.as_deref(),
        Some(db.as_str())
    );
    assert_eq!(
        made.iter().filter(|c| *c == "dynamodb:Scan").count(),
        1,
        "{made:?}"
    );
    assert_eq!(
        made.iter().filter(|c| *c == "ecr:BatchGetImage").count(),
        2,
        "one batched read, and qa's manifest: {made:?}"
    );
    let pages = w.pages().await;
    assert_eq!(pages.len(), 1, "one page for the repository");
    let actions = tag_actions(&pages[0]);
    assert_eq!(
        actions.iter().filter(|a| *a == "restored").count(),
        1,
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "reverted").count(),
        1,
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "alert").count(),
        1,
        "{actions:?}"
    );
    assert_eq!(r.repairs.len(), 4);

    // Next run: only the watched tag is still missing (on_delete alert); it is not paged again.
    let again = h
        .reconcile(
            &ecr_tag_guard::service::Now::system(),
            &ecr_tag_guard::ports::NoTrail,
            &mut |_, _, _| {},
        )
        .await
        .expect("again");
    assert_eq!(again.ok, 3, "{:?}", again.repairs);
    assert!(w.pages().await.is_empty());
}

/// Pushes `tag` (its own image) as a user and hands the CloudTrail record to the guard.
async fn push_and_handle(w: &World, repo: &str, tag: &str) -> (String, Report) {
    let m = manifest(tag);
    let d = w.push(repo, &m, DOCKER, Some(tag)).await;
    let (report, _) = w.handle(&put_image(w, user(w, "ci"), repo, tag, &m)).await;
    // moto keeps push times in whole seconds: the next push must come later.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    (d, report)
}

#[tokio::test]
async fn a_rule_protects_the_newest_two_per_branch_restores_them_and_releases_the_oldest() {
    let Some(w) = World::new().await else { return };
    w.create_repo("app", false).await;
    w.put_item(json!({"repository": "rule#", "tag": "pr-branches", "repositories": w.repo("app").key(),
        "pattern": "^pr-(?P<branch>[a-z]+)-[0-9]+$", "group_by": "branch", "keep": 2, "severity": "low"}))
        .await;
    let mut d = std::collections::BTreeMap::new();
    for tag in ["pr-a-1", "pr-a-2", "pr-a-3", "pr-b-1", "pr-b-2"] {
        let (digest, report) = push_and_handle(&w, "app", tag).await;
        assert!(
            report
                .rule_changes
                .iter()
                .any(|c| c.tag == tag && c.change.as_str() == "pinned"),
            "{tag}: {:?}",
            report.rule_changes
        );
        d.insert(tag, digest);
    }
    for tag in ["pr-a-2", "pr-a-3", "pr-b-1", "pr-b-2"] {
        let item = w.item("app", tag).await.unwrap_or_default();
        assert_eq!(item["rule"], "pr-branches", "{tag}: {item}");
        assert_eq!(item["digest"], json!(d[tag]), "{tag}");
        assert_eq!(
            item["manifest"],
            json!(manifest(tag)),
            "{tag}: the manifest is kept"
        );
        assert_eq!(
            w.digest_of("app", &keep(&d[tag])).await,
            Some(d[tag].clone()),
            "{tag}: keep-alive tag"
        );
    }
    assert_eq!(
        w.item("app", "pr-a-1").await,
        None,
        "pr-a-1 fell out when pr-a-3 came"
    );
    assert_eq!(
        w.digest_of("app", &keep(&d["pr-a-1"])).await,
        None,
        "and lost its keep-alive tag"
    );
    assert_eq!(
        w.digest_of("app", "pr-a-1").await,
        Some(d["pr-a-1"].clone()),
        "the image itself is left alone"
    );

    // The protected ones deleted: put back.
    w.take_calls();
    let ids = w
        .delete("app", &[(Some("pr-a-3"), None), (Some("pr-b-2"), None)])
        .await;
    let (report, _) = w
        .handle(&batch_delete(
            &w,
            user(&w, "bob"),
            "app",
            json!([{"imageTag": "pr-a-3"}, {"imageTag": "pr-b-2"}]),
            ids,
        ))
        .await;
    assert_eq!(report.pages.len(), 1, "{:?}", report.decisions);
    assert_eq!(
        w.digest_of("app", "pr-a-3").await,
        Some(d["pr-a-3"].clone())
    );
    assert_eq!(
        w.digest_of("app", "pr-b-2").await,
        Some(d["pr-b-2"].clone())
    );
    assert!(
        report
            .pages
            .iter()
            .all(|p| p.attributes["severity"] == "low"),
        "the rule's severity"
    );

    // A newer push on branch b: it is protected, b's oldest is released.
    let (d3, report) = push_and_handle(&w, "app", "pr-b-3").await;
    let changes: Vec<(&str, &str)> = report
        .rule_changes
        .iter()
        .map(|c| (c.tag.as_str(), c.change.as_str()))
        .collect();
    assert_eq!(changes, vec![("pr-b-3", "pinned"), ("pr-b-1", "released")]);
    assert_eq!(w.item("app", "pr-b-1").await, None);
    assert_eq!(
        w.item("app", "pr-b-3").await.unwrap_or_default()["digest"],
        json!(d3)
    );
    assert_eq!(w.digest_of("app", &keep(&d["pr-b-1"])).await, None);
    assert!(report.pages.is_empty(), "rule changes are not paged");
    let history = w.history("app", "pr-b-1").await;
    let actions: Vec<(&str, &str)> = history
        .iter()
        .map(|h| {
            (
                h["action"].as_str().unwrap_or(""),
                h["who"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![("pin", "rule pr-branches"), ("release", "rule pr-branches")]
    );
}

fn records(
    event: &Value,
) -> Vec<Result<ecr_tag_guard::service::registration::StreamRecord, (String, String)>> {
    ecr_tag_guard::service::registration::stream_records(event).expect("a stream event")
}

#[tokio::test]
async fn an_item_written_by_hand_is_pinned_from_the_stream_and_restored_after_a_full_delete() {
    let Some(w) = World::new().await else { return };
    w.create_repo("web", false).await;
    let m = manifest("registered");
    let d = w.push("web", &m, DOCKER, Some("prod")).await;
    w.put_item(json!({"repository": w.repo("web").key(), "tag": "prod", "owner": "team-web"}))
        .await;

    let first = w.stream_event(0);
    let recs = records(&first);
    assert_eq!(recs.len(), 1, "{first}");
    let h = w.handler();
    let report = h
        .register(&recs, &ecr_tag_guard::service::Now::system())
        .await;
    assert_eq!(report.records[0].outcome, "pinned", "{:?}", report.records);
    assert!(report.failures.is_empty());
    let item = w.item("web", "prod").await.unwrap_or_default();
    assert_eq!(item["digest"], json!(d));
    assert_eq!(item["manifest"], json!(m));
    assert_eq!(item["owner"], "team-web");
    assert_eq!(item["pinned_by"], "ecr-tag-guard (pinned on registration)");
    assert_eq!(
        w.digest_of("web", &keep(&d)).await,
        Some(d.clone()),
        "keep-alive tag"
    );
    assert_eq!(w.history("web", "prod").await[0]["action"], "pin");

    // The guard's own writes come back through the stream: nothing to do, not a call made.
    let own = w.stream_event(1);
    assert!(
        records(&own).len() >= 2,
        "the pin and the history record: {own}"
    );
    w.take_calls();
    let report = h
        .register(&records(&own), &ecr_tag_guard::service::Now::system())
        .await;
    assert!(
        report
            .records
            .iter()
            .all(|r| r.outcome.starts_with("skipped")),
        "{:?}",
        report.records
    );
    let writes: Vec<String> = w
        .take_calls()
        .into_iter()
        .filter(|c| c != "dynamodb:GetItem" && c != "kms:VerifyMac")
        .collect();
    assert!(
        writes.is_empty(),
        "read back and checked, nothing written: no loop ({writes:?})"
    );

    // The image deleted entirely (the tag and its keep-alive tag): put back from the stored
    // manifest alone.
    let ids = w.delete("web", &[(None, Some(&d))]).await;
    assert!(w.digests("web").await.is_empty());
    let (report, _) = w
        .handle(&batch_delete(
            &w,
            user(&w, "bob"),
            "web",
            json!([{"imageDigest": d}]),
            ids,
        ))
        .await;
    assert_eq!(report.pages.len(), 1, "{:?}", report.decisions);
    assert_eq!(w.digest_of("web", "prod").await, Some(d));
}

#[tokio::test]
async fn registration_of_a_missing_tag_an_invalid_item_and_a_rule() {
    let Some(w) = World::new().await else { return };
    w.create_repo("web", false).await;
    w.push("web", &manifest("pr-x-1"), DOCKER, Some("pr-x-1"))
        .await;
    let repo = w.repo("web").key();
    w.put_item(json!({"repository": repo, "tag": "ghost"}))
        .await;
    w.put_item(json!({"repository": repo, "tag": "bad", "severity": "loud"}))
        .await;
    w.put_item(json!({"repository": "rule#", "tag": "prs", "repositories": repo, "pattern": "^pr-", "keep": 1}))
        .await;
    let h = w.handler();
    let report = h
        .register(
            &records(&w.stream_event(0)),
            &ecr_tag_guard::service::Now::system(),
        )
        .await;
    let outcomes: Vec<&str> = report.records.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes[0], "not found", "{outcomes:?}");
    assert!(
        outcomes[1].starts_with("invalid: severity `loud`"),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[2], "rule: 1 change(s)", "{outcomes:?}");
    assert!(report.failures.is_empty(), "nothing here is worth a retry");
    assert!(w.item("web", "ghost").await.unwrap_or_default()["not_found_at"].is_string());
    assert_eq!(
        w.item("web", "pr-x-1").await.unwrap_or_default()["rule"],
        "prs"
    );
    let pages = w.pages().await;
    assert_eq!(pages.len(), 1);
    assert_eq!(attr(&pages[0], "severity"), "low");
    assert_eq!(attr(&pages[0], "action"), "not_found");

    // Status shows the missing tag for what it is.
    let mut out = Vec::new();
    let ok = ecr_tag_guard::cli::registry::status(&w.ops(), false, &mut out)
        .await
        .expect("status");
    let shown = String::from_utf8_lossy(&out).to_string();
    assert!(!ok);
    assert!(shown.contains("tag not in ECR (not pinned)"), "{shown}");
    let mut out = Vec::new();
    ecr_tag_guard::cli::registry::list(&w.ops(), false, &mut out)
        .await
        .expect("list");
    let shown = String::from_utf8_lossy(&out).to_string();
    assert!(shown.contains("(tag not in ECR at "), "{shown}");
}

#[tokio::test]
async fn a_chat_topic_gets_each_page_as_a_custom_notification() {
    let Some(w) = World::new().await else { return };
    let (_, d) = w.seed("web", "prod", "chat", json!({})).await;
    let chat = w
        .sns
        .create_topic()
        .name("chat")
        .send()
        .await
        .expect("topic")
        .topic_arn()
        .expect("arn")
        .to_string();
    let queue = w.subscribe_queue(&chat, "chat-channel", None).await;
    let mut h = w.handler();
    h.pager.chat_topic_arn = Some(chat);
    let event = w.delete_by(user(&w, "bob"), "web", "prod").await;
    h.handle(&event, &ecr_tag_guard::service::Now::system())
        .await
        .expect("handled");
    w.expect_tag("web", "prod", Some(&d)).await;
    // The pager topic has the page as before; the chat topic its notification.
    let pages = w.expect_pages(&["restored"]).await;
    let got = w.received(&queue).await;
    assert_eq!(got.len(), 1);
    let note: Value =
        serde_json::from_str(got[0]["Message"].as_str().unwrap_or("")).expect("chat JSON");
    assert_eq!(note["version"], "1.0");
    assert_eq!(note["source"], "custom");
    assert_eq!(note["content"]["title"], pages[0]["Subject"]);
    assert!(note["content"]["description"]
        .as_str()
        .is_some_and(|t| t.contains("*prod*")));
}

#[tokio::test]
async fn a_subscription_filter_policy_on_one_tag_selects_every_page_that_lists_it() {
    let Some(w) = World::new().await else { return };
    // A subscriber that wants pages about `stable` only.
    let queue = w
        .subscribe_queue(&w.topic_arn, "stable-only", Some(r#"{"tag": ["stable"]}"#))
        .await;
    w.create_repo("api", false).await;
    let m = manifest("filtered");
    let d = w.push("api", &m, DOCKER, Some("prod")).await;
    w.push("api", &m, DOCKER, Some("stable")).await;
    w.put_sealed(pinned_item(&w, "api", "prod", &m, DOCKER))
        .await;
    w.put_sealed(pinned_item(&w, "api", "stable", &m, DOCKER))
        .await;
    w.push("api", &manifest("other"), DOCKER, Some("canary"))
        .await;
    w.put_sealed(pinned_item(&w, "api", "canary", &manifest("other"), DOCKER))
        .await;
    // One page listing prod and stable; then one about canary alone.
    let ids = w.delete("api", &[(None, Some(&d))]).await;
    w.handle(&batch_delete(
        &w,
        user(&w, "bob"),
        "api",
        json!([{"imageDigest": d}]),
        ids,
    ))
    .await;
    let event = w.delete_by(user(&w, "bob"), "api", "canary").await;
    w.handle(&event).await;
    let all = w.expect_pages(&["restored", "restored"]).await;
    assert_eq!(tag_actions(&all[0]).len(), 2, "one page for both tags");
    assert_eq!(
        all[0]["MessageAttributes"]["tag"]["Type"], "String.Array",
        "{}",
        all[0]
    );
    // Each tag of the grouped page links its pinned image; the page, its repository.
    let facts: Value = serde_json::from_str(
        all[0]["Message"]
            .as_str()
            .unwrap_or("")
            .split("--- JSON ---\n")
            .nth(1)
            .unwrap_or(""),
    )
    .expect("JSON part");
    for change in facts["changes"].as_array().expect("changes") {
        assert!(change["links"]["image"]
            .as_str()
            .is_some_and(|l| l.ends_with(&format!("/_/image/{d}/details?region={REGION}"))));
        assert!(change["links"]["repository"].as_str().is_some());
    }
    let subjects: Vec<String> = w
        .received(&queue)
        .await
        .iter()
        .map(|v| v["Subject"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        subjects,
        ["[HIGH] 2 tags in api: deleted; restored"],
        "{subjects:?}"
    );
}

#[tokio::test]
async fn a_lifecycle_run_expiring_two_hundred_protected_images_restores_all_and_pages_once_within_sns_limits(
) {
    let Some(w) = World::new().await else { return };
    w.create_repo("mass", false).await;
    // (digest, tag, sealed): five pins written into the table by hand are never pushed from.
    let mut expired: Vec<(String, String, bool)> = Vec::new();
    for i in 0..200 {
        let tag = format!("release-{i:03}");
        let m = manifest(&format!("mass-{i}"));
        let d = w.push("mass", &m, DOCKER, Some(&tag)).await;
        let item = pinned_item(&w, "mass", &tag, &m, DOCKER);
        let sealed = i % 40 != 7;
        if sealed {
            w.put_sealed(item).await;
        } else {
            w.put_item(item).await;
        }
        expired.push((d, tag, sealed));
    }
    for (d, _, _) in &expired {
        w.delete("mass", &[(None, Some(d.as_str()))]).await;
    }
    let tags: Vec<[&str; 1]> = expired.iter().map(|(_, t, _)| [t.as_str()]).collect();
    let images: Vec<(&str, &[&str])> = expired
        .iter()
        .zip(&tags)
        .map(|((d, _, _), t)| (d.as_str(), &t[..]))
        .collect();
    let (report, _) = w.handle(&lifecycle(&w, "mass", &images)).await;
    let restored = report
        .decisions
        .iter()
        .filter(|h| h.outcome.as_ref().is_some_and(|o| o.name() == "restored"))
        .count();
    assert_eq!(restored, 195, "every sealed pin is put back");
    // Counted on the wire: the restores and seal checks stream out within the setting.
    let limit = ecr_tag_guard::service::DEFAULT_CALL_CONCURRENCY;
    for op in ["ecr:PutImage", "kms:VerifyMac"] {
        let peak = w.peak_in_flight(op);
        assert!(peak > 1 && peak <= limit, "{op}: {peak} in flight at once");
    }
    for (d, t, sealed) in &expired {
        let want = sealed.then_some(d.as_str());
        assert_eq!(w.digest_of("mass", t).await.as_deref(), want, "{t}");
    }
    let pages = w.pages().await;
    assert_eq!(pages.len(), 1, "one page for the incident");
    let page = &pages[0];
    let subject = page["Subject"].as_str().unwrap_or("");
    let body = page["Message"].as_str().unwrap_or("");
    assert!(subject.len() < 100 && subject.is_ascii(), "{subject}");
    assert!(
        body.len() <= ecr_tag_guard::page::PAGE_MAX_BYTES,
        "{} bytes",
        body.len()
    );
    let facts: Value =
        serde_json::from_str(body.split("--- JSON ---\n").nth(1).expect("JSON part"))
            .expect("JSON");
    assert_eq!(facts["tags_total"], 200);
    assert_eq!(facts["counts"]["restored"], 195);
    assert_eq!(facts["counts"]["untrusted_pin"], 5);
    let first: Vec<&str> = facts["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .take(5)
        .filter_map(|c| c["action"].as_str())
        .collect();
    assert_eq!(first, ["untrusted_pin"; 5], "the problems first");
    assert!(body.contains("ecr-tag-guard history"), "where the rest is");
}

#[tokio::test]
async fn a_batch_delete_of_a_hundred_and_fifty_protected_tags_restores_all_and_pages_once_within_sns_limits(
) {
    let Some(w) = World::new().await else { return };
    w.create_repo("crowd", false).await;
    // One image holds every tag; three pins were written into the table by hand (unsealed).
    let m = manifest("crowd-base");
    let d = w.push("crowd", &m, DOCKER, Some("base")).await;
    let tags: Vec<String> = (0..150).map(|i| format!("team-{i:03}.latest")).collect();
    for (i, tag) in tags.iter().enumerate() {
        w.push("crowd", &m, DOCKER, Some(tag)).await;
        let item = pinned_item(&w, "crowd", tag, &m, DOCKER);
        if i % 50 == 13 {
            w.put_item(item).await;
        } else {
            w.put_sealed(item).await;
        }
    }
    let ids: Vec<(Option<&str>, Option<&str>)> =
        tags.iter().map(|t| (Some(t.as_str()), None)).collect();
    w.delete("crowd", &ids).await;
    let request: Vec<Value> = tags.iter().map(|t| json!({"imageTag": t})).collect();
    let response: Vec<Value> = tags
        .iter()
        .map(|t| json!({"imageTag": t, "imageDigest": d}))
        .collect();
    let event = batch_delete(
        &w,
        user(&w, "tired-human"),
        "crowd",
        json!(request),
        response,
    );
    let (report, _) = w.handle(&event).await;
    let restored = report
        .decisions
        .iter()
        .filter(|h| h.outcome.as_ref().is_some_and(|o| o.name() == "restored"))
        .count();
    assert_eq!(restored, 147, "every sealed pin is put back");
    for (i, t) in tags.iter().enumerate() {
        let want = (i % 50 != 13).then_some(d.as_str());
        assert_eq!(w.digest_of("crowd", t).await.as_deref(), want, "{t}");
    }
    let pages = w.pages().await;
    assert_eq!(pages.len(), 1, "one page for the incident");
    let (subject, body) = (
        pages[0]["Subject"].as_str().unwrap_or(""),
        pages[0]["Message"].as_str().unwrap_or(""),
    );
    assert!(subject.len() <= 100 && subject.is_ascii(), "{subject}");
    assert!(body.len() <= ecr_tag_guard::page::PAGE_MAX_BYTES);
    let facts: Value =
        serde_json::from_str(body.split("--- JSON ---\n").nth(1).expect("JSON part"))
            .expect("the JSON part parses");
    assert_eq!(facts["tags_total"], 150);
    assert_eq!(facts["counts"]["restored"], 147);
    assert_eq!(facts["counts"]["untrusted_pin"], 3);
    let first: Vec<&str> = facts["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .take(3)
        .filter_map(|c| c["action"].as_str())
        .collect();
    assert_eq!(first, ["untrusted_pin"; 3], "the problems first");
}

#[tokio::test]
async fn reconcile_of_two_thousand_pins_with_three_hundred_deleted_pages_its_repairs_once() {
    use futures::StreamExt;
    let Some(w) = World::new().await else { return };
    w.create_repo("fleet", false).await;
    let n = 2000;
    let setup = futures::stream::iter(0..n)
        .map(|i| {
            let w = &w;
            async move {
                let tag = format!("svc-{i:04}");
                let m = manifest(&tag);
                let d = w.push("fleet", &m, DOCKER, Some(&tag)).await;
                // As the guard pins: the item sealed, the keep-alive tag on the image.
                w.push("fleet", &m, DOCKER, Some(&keep(&d))).await;
                w.put_sealed(pinned_item(w, "fleet", &tag, &m, DOCKER))
                    .await;
                (tag, d)
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let index = |t: &str| t[4..].parse::<usize>().expect("svc-NNNN");
    let deleted: Vec<&(String, String)> = setup.iter().filter(|(t, _)| index(t) % 20 < 3).collect();
    assert_eq!(deleted.len(), 300);
    for chunk in deleted.chunks(100) {
        let ids: Vec<(Option<&str>, Option<&str>)> = chunk
            .iter()
            .map(|(t, _)| (Some(t.as_str()), None))
            .collect();
        w.delete("fleet", &ids).await;
    }
    let moved: Vec<&(String, String)> = setup.iter().filter(|(t, _)| index(t) % 100 == 7).collect();
    for (t, _) in &moved {
        w.push("fleet", &manifest(&format!("{t}-other")), DOCKER, Some(t))
            .await;
    }
    let h = w.handler();
    let run = || async {
        h.reconcile(
            &ecr_tag_guard::service::Now::system(),
            &ecr_tag_guard::ports::NoTrail,
            &mut |_, _, _| {},
        )
        .await
        .expect("reconcile")
    };
    let r = run().await;
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    for (t, d) in deleted.iter().chain(&moved) {
        assert_eq!(
            w.digest_of("fleet", t).await.as_deref(),
            Some(d.as_str()),
            "{t}"
        );
    }
    let pages = w.pages().await;
    assert_eq!(pages.len(), 1, "one page for the repository");
    let body = pages[0]["Message"].as_str().unwrap_or("");
    assert!(body.len() <= ecr_tag_guard::page::PAGE_MAX_BYTES);
    assert!(!body.contains("reconcile_failed"), "{body:.2000}");
    let facts: Value =
        serde_json::from_str(body.split("--- JSON ---\n").nth(1).expect("JSON part"))
            .expect("the JSON part parses");
    assert_eq!(facts["tags_total"], 320, "{}", facts["counts"]);
    assert_eq!(facts["counts"]["restored"], 300, "{}", facts["counts"]);
    assert_eq!(facts["counts"]["reverted"], 20, "{}", facts["counts"]);
    // The next run finds everything in place and says nothing.
    let again = run().await;
    assert_eq!(again.ok, n, "{:?}", again.failures);
    assert!(w.pages().await.is_empty());
}
