//! Trust boundaries on moto with the real SDK clients: a pin written or edited in the table
//! steers no push, a pin the guard saw itself is sealed with the KMS key and restored, event
//! text cannot reach a page raw; `protect` without the key or the right to use it is refused
//! (KMS refusals from the SDK's own mocks: moto does not enforce IAM).

use crate::util::*;
use aws_sdk_kms::error::ErrorMetadata;
use aws_sdk_kms::operation::generate_mac::GenerateMacError;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use ecr_tag_guard::cli::registry::{self, ProtectOptions};
use ecr_tag_guard::ports::NoTrail;
use ecr_tag_guard::service::Now;
use serde_json::{json, Value};

async fn reconcile(w: &World) -> ecr_tag_guard::service::reconcile::ReconcileReport {
    w.handler()
        .reconcile(&Now::system(), &NoTrail, &mut |_, _, _| {})
        .await
        .expect("reconcile")
}

fn page_text(pages: &[Value]) -> String {
    pages
        .iter()
        .map(|p| p["Message"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn a_pin_written_by_hand_onto_another_image_steers_no_revert_and_no_reconcile() {
    let Some(w) = World::new().await else { return };
    w.create_repo("web", false).await;
    let (good, other) = (manifest("trust-good"), manifest("trust-other"));
    let d_good = w.push("web", &good, DOCKER, Some("prod")).await;
    w.push("web", &other, DOCKER, Some("v2")).await;
    // `aws dynamodb put-item` of a consistent pin (digest and manifest agree) on `v2`'s image.
    w.put_item(pinned_item(&w, "web", "prod", &other, DOCKER))
        .await;
    // The next ordinary deploy of `prod` is not "reverted" onto the item's image...
    let (d_next, event) = w
        .push_by(user(&w, "ci"), "web", "prod", &manifest("trust-next"))
        .await;
    assert_ne!(d_next, d_good);
    let (report, _) = w.handle(&event).await;
    assert_eq!(
        report.decisions[0].outcome.as_ref().map(|o| o.name()),
        Some("untrusted_pin")
    );
    w.expect_tag("web", "prod", Some(&d_next)).await;
    let pages = w.expect_pages(&["untrusted_pin"]).await;
    assert!(page_text(&pages).contains("no seal"), "{pages:?}");
    // ... nor by reconcile, with no event: it pages its finding once.
    let r = reconcile(&w).await;
    w.expect_tag("web", "prod", Some(&d_next)).await;
    let outcomes: Vec<&str> = r
        .repairs
        .iter()
        .map(|h| h.outcome.as_ref().map_or("-", |o| o.name()))
        .collect();
    assert_eq!(outcomes, ["untrusted_pin"]);
    w.expect_pages(&["untrusted_pin"]).await;
    reconcile(&w).await;
    w.expect_tag("web", "prod", Some(&d_next)).await;
    w.expect_pages(&[]).await;
}

#[tokio::test]
async fn a_pin_overwritten_after_protect_is_not_pushed() {
    let Some(w) = World::new().await else { return };
    w.create_repo("web", false).await;
    let (good, other) = (manifest("ow-good"), manifest("ow-other"));
    let d_good = w.push("web", &good, DOCKER, Some("prod")).await;
    let d_other = w.push("web", &other, DOCKER, Some("v2")).await;
    registry::protect(
        &w.ops(),
        "web:prod",
        &ProtectOptions::default(),
        &Now::system(),
        &mut Vec::new(),
    )
    .await
    .expect("protect");
    let mut item = w.item("web", "prod").await.expect("item");
    assert!(item["pin_mac"].is_string(), "protect seals: {item}");
    // The digest and manifest overwritten with another image's; the seal left as it was.
    item["digest"] = json!(d_other);
    item["manifest"] = json!(other);
    w.put_item(item).await;
    let r = reconcile(&w).await;
    assert_eq!(
        r.repairs[0].outcome.as_ref().map(|o| o.name()),
        Some("untrusted_pin")
    );
    w.expect_tag("web", "prod", Some(&d_good)).await;
    // A delete is not "restored" onto the other image either.
    let event = w.delete_by(user(&w, "bob"), "web", "prod").await;
    let (report, _) = w.handle(&event).await;
    assert_eq!(
        report.decisions[0].outcome.as_ref().map(|o| o.name()),
        Some("alerted"),
        "the delete names the image prod was on, not the edited pin: paged, nothing pushed"
    );
    w.expect_tag("web", "prod", None).await;
    let pages = w.expect_pages(&["untrusted_pin", "alert"]).await;
    assert!(page_text(&pages).contains("edited"), "{pages:?}");
}

#[tokio::test]
async fn a_hand_written_pin_of_the_tags_current_image_is_sealed_then_restored() {
    let Some(w) = World::new().await else { return };
    w.create_repo("web", false).await;
    let m = manifest("legit");
    let d = w.push("web", &m, DOCKER, Some("prod")).await;
    w.put_item(pinned_item(&w, "web", "prod", &m, DOCKER)).await;
    let r = reconcile(&w).await;
    assert_eq!(r.sealed, [format!("{}:prod", w.repo("web"))]);
    assert!(w.item("web", "prod").await.expect("item")["pin_mac"].is_string());
    let event = w.delete_by(user(&w, "bob"), "web", "prod").await;
    w.handle(&event).await;
    w.expect_tag("web", "prod", Some(&d)).await;
    // Reconcile also gave the sealed pin its keep-alive tag (a low page), then the restore.
    w.expect_pages(&["keep_alive", "restored"]).await;
}

#[tokio::test]
async fn hostile_event_text_is_ignored_and_never_paged() {
    let Some(w) = World::new().await else { return };
    let (_, d) = w.seed("web", "prod", "hostile", json!({})).await;
    let evil = "sha256:0123456789aé\nInjected-Header: evil";
    let mut event = batch_delete(
        &w,
        user(&w, "mallory"),
        "web",
        json!([{"imageTag": "prod", "imageDigest": evil}]),
        Vec::new(),
    );
    // No `responseElements`: the request's text is all the event says.
    if let Some(o) = event["detail"].as_object_mut() {
        o.remove("responseElements");
    }
    if let Some(o) = event.as_object_mut() {
        o.remove("responseElements");
    }
    let (report, _) = w.handle(&event).await;
    let why = report.ignored.expect("ignored");
    assert!(why.contains("not sha256: and 64 lowercase hex"), "{why}");
    assert!(!why.contains('\n'));
    w.expect_tag("web", "prod", Some(&d)).await;
    w.expect_pages(&[]).await;
}

/// `protect web:prod` with the pin key as `key` leaves it; its error, once nothing was written.
async fn protect_refused(
    w: &World,
    key: impl FnOnce(&mut ecr_tag_guard::aws::KmsPinKey),
) -> String {
    w.create_repo("web", false).await;
    w.push("web", &manifest("refused"), DOCKER, Some("prod"))
        .await;
    let mut ops = w.ops();
    key(&mut ops.backend.kms);
    let err = registry::protect(
        &ops,
        "web:prod",
        &ProtectOptions::default(),
        &Now::system(),
        &mut Vec::new(),
    )
    .await
    .expect_err("refused");
    assert!(w.item("web", "prod").await.is_none(), "nothing written");
    err.to_string()
}

#[tokio::test]
async fn protect_without_a_pin_key_says_so_and_writes_nothing() {
    let Some(w) = World::new().await else { return };
    let err = protect_refused(&w, |k| k.key_id = None).await;
    assert!(err.contains("TAG_GUARD_PIN_KEY"), "{err}");
}

#[tokio::test]
async fn protect_by_a_caller_kms_refuses_is_refused_and_writes_nothing() {
    let Some(w) = World::new().await else { return };
    // What KMS answers a caller without kms:GenerateMac on the key.
    let denied = mock!(aws_sdk_kms::Client::generate_mac).then_error(|| {
        GenerateMacError::generic(
            ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("User: arn:aws:iam::123456789012:user/writer is not authorized to perform: kms:GenerateMac")
                .build(),
        )
    });
    let kms = mock_client!(aws_sdk_kms, RuleMode::MatchAny, &[&denied]);
    let err = protect_refused(&w, |k| k.client = kms).await;
    assert!(err.contains("kms:GenerateMac"), "{err}");
    assert!(err.contains("AccessDeniedException"), "{err}");
    assert_eq!(denied.num_calls(), 1);
}

#[tokio::test]
async fn a_forged_stream_record_changes_nothing() {
    let Some(w) = World::new().await else { return };
    let (_, d) = w.seed("web", "prod", "forged-record", json!({})).await;
    let before = w.item("web", "prod").await.expect("item");
    // An invocation carrying a record the table never wrote: another pin, a release.
    let forged = json!({"repository": w.repo("web").key(), "tag": "prod",
        "digest": format!("sha256:{}", "b".repeat(64)), "released_at": "2026-11-30T00:00:00Z"});
    let records = vec![Ok(ecr_tag_guard::events::stream::StreamRecord {
        id: "1".into(),
        event_name: "MODIFY".into(),
        item: Some(forged),
    })];
    w.take_calls();
    let report = w.handler().register(&records, &Now::system()).await;
    assert_eq!(
        report.records[0].outcome,
        "skipped: already pinned and sealed"
    );
    assert_eq!(
        w.take_calls(),
        ["dynamodb:GetItem", "kms:VerifyMac"],
        "read back and checked, nothing written"
    );
    assert_eq!(w.item("web", "prod").await.expect("item"), before);
    w.expect_tag("web", "prod", Some(&d)).await;
    w.expect_pages(&[]).await;
}
