//! Reconcile asking CloudTrail who moved a tag whose item allows some callers: the real
//! `LookupEvents` adapter with answers from the SDK's own mock utilities (moto has no
//! CloudTrail lookup); ECR and the registry are the embedded world.

use aws_sdk_cloudtrail::config::retry::RetryConfig;
use aws_sdk_cloudtrail::error::ErrorMetadata;
use aws_sdk_cloudtrail::operation::lookup_events::{LookupEventsError, LookupEventsOutput};
use aws_sdk_cloudtrail::types::{Event, LookupAttributeKey};
use aws_sdk_cloudtrail::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use ecr_tag_guard::aws::CloudTrailLookup;
use ecr_tag_guard::guard::{Action, Scope};
use ecr_tag_guard::memory::{Memory, Scenario};
use ecr_tag_guard::registry::RepoKey;
use ecr_tag_guard::service::reconcile::ReconcileReport;
use ecr_tag_guard::service::Tuning;
use ecr_tag_guard::service::{Handler, Now};
use serde_json::json;

const REPO: &str = "123456789012/eu-west-1/web";
const OLD: &str = "{\"mediaType\":\"m\",\"v\":1}";
const NEW: &str = "{\"mediaType\":\"m\",\"v\":2}";

fn digest(body: &str) -> String {
    ecr_tag_guard::text::sha256_digest(body.as_bytes())
}

/// `prod` was pinned to OLD by an item that lets the deploy role move it; it now sits on NEW
/// and no event said so.
fn world() -> Memory {
    let keep = ecr_tag_guard::registry::keep_tag("etg-keep-", &digest(OLD)).unwrap_or_default();
    let scenario: Scenario = serde_json::from_value(json!({
        "repositories": [{"repository": REPO, "images": [
            {"manifest": OLD, "media_type": "m", "tags": ["v1", keep]},
            {"manifest": NEW, "media_type": "m", "tags": ["prod"]}
        ]}],
        // Sealed: the guard pinned it before the move.
        "registry": [ecr_tag_guard::memory::seal_item(&json!({"repository": REPO, "tag": "prod", "digest": digest(OLD), "manifest": OLD,
                      "media_type": "m", "pinned_at": "2026-11-20T00:00:00Z",
                      "allow": ["arn:aws:iam::123456789012:role/deploy"]}))]
    }))
    .expect("scenario");
    Memory::new(scenario.into_state("test").expect("state"))
}

/// The CloudTrail record of a PutImage of `prod` to NEW by `arn` (with its role, if any).
fn record(arn: &str, role: Option<&str>) -> String {
    let mut identity = json!({"type": "IAMUser", "arn": arn, "accountId": "123456789012"});
    if let Some(role) = role {
        identity = json!({"type": "AssumedRole", "arn": arn, "accountId": "123456789012",
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role}}});
    }
    json!({
        "eventVersion": "1.08", "userIdentity": identity, "eventTime": "2026-11-20T10:00:00Z",
        "eventSource": "ecr.amazonaws.com", "eventName": "PutImage", "awsRegion": "eu-west-1",
        "requestParameters": {"registryId": "123456789012", "repositoryName": "web", "imageTag": "prod", "imageManifest": NEW},
        "responseElements": {"image": {"registryId": "123456789012", "repositoryName": "web",
            "imageId": {"imageDigest": digest(NEW), "imageTag": "prod"}}},
        "eventID": "ct-1", "eventType": "AwsApiCall", "recipientAccountId": "123456789012"
    })
    .to_string()
}

/// `LookupEvents` of PutImage answering with `events`; of anything else, with none.
fn lookups(events: Vec<String>) -> Vec<Rule> {
    let puts = mock!(Client::lookup_events)
        .match_requests(|r| {
            r.lookup_attributes().first().is_some_and(|a| {
                a.attribute_key() == &LookupAttributeKey::EventName
                    && a.attribute_value() == "PutImage"
            }) && r.start_time().is_some()
        })
        .then_output(move || {
            let mut out = LookupEventsOutput::builder();
            for e in &events {
                out = out.events(Event::builder().cloud_trail_event(e).build());
            }
            out.build()
        });
    let rest = mock!(Client::lookup_events).then_output(|| LookupEventsOutput::builder().build());
    vec![puts, rest]
}

async fn reconcile(world: &Memory, rules: &[Rule]) -> ReconcileReport {
    reconcile_at(world, rules, &Now::system(), 0).await
}

/// Reconcile at `now` with a grace period of `grace` seconds.
async fn reconcile_at(world: &Memory, rules: &[Rule], now: &Now, grace: i64) -> ReconcileReport {
    let refs: Vec<&Rule> = rules.iter().collect();
    let client: Client = mock_client!(aws_sdk_cloudtrail, RuleMode::MatchAny, &refs, |c| c
        .retry_config(RetryConfig::disabled()));
    let h = Handler {
        registry: world.clone(),
        images: world.clone(),
        pager: world.clone(),
        ledger: world.clone(),
        pin_key: world.clone(),
        scope: Scope::default(),
        tuning: Tuning {
            grace_secs: grace,
            ..Tuning::default()
        },
        dry_run: false,
    };
    h.reconcile(now, &CloudTrailLookup { client }, &mut |_, _, _| {})
        .await
        .expect("reconcile")
}

fn prod(world: &Memory) -> Option<String> {
    let key = RepoKey::parse(REPO).expect("key");
    world
        .state()
        .repos
        .get(&key)
        .and_then(|r| r.digest_of("prod").map(String::from))
}

fn pin(world: &Memory) -> Option<String> {
    world
        .state()
        .items
        .values()
        .find(|i| i["tag"] == "prod")
        .and_then(|i| i["digest"].as_str().map(String::from))
}

#[tokio::test]
async fn a_move_by_an_allowed_caller_is_followed() {
    let w = world();
    let rules = lookups(vec![record(
        "arn:aws:sts::123456789012:assumed-role/deploy/p-1",
        Some("arn:aws:iam::123456789012:role/deploy"),
    )]);
    let r = reconcile(&w, &rules).await;
    assert_eq!(r.repairs.len(), 1, "{r:?}");
    assert!(
        matches!(r.repairs[0].decision.action, Action::Follow { .. }),
        "{}",
        r.repairs[0].decision.why
    );
    assert!(r.repairs[0].decision.why.contains("assumed-role/deploy"));
    assert_eq!(prod(&w), Some(digest(NEW)), "the deploy stays");
    assert_eq!(pin(&w), Some(digest(NEW)));
    assert_eq!(w.state().pages[0].attributes["action"], "followed");
}

#[tokio::test]
async fn a_move_by_anybody_else_is_reverted() {
    let w = world();
    let rules = lookups(vec![record("arn:aws:iam::123456789012:user/bob", None)]);
    let r = reconcile(&w, &rules).await;
    assert_eq!(r.repairs[0].decision.action, Action::Revert);
    assert_eq!(prod(&w), Some(digest(OLD)));
    assert_eq!(pin(&w), Some(digest(OLD)));
    assert_eq!(w.state().pages[0].attributes["action"], "reverted");
}

#[tokio::test]
async fn no_record_of_the_move_is_paged_not_reverted() {
    let w = world();
    let r = reconcile(&w, &lookups(Vec::new())).await;
    assert_eq!(r.repairs[0].decision.action, Action::Alert);
    assert_eq!(prod(&w), Some(digest(NEW)), "left as it is");
    assert_eq!(pin(&w), Some(digest(OLD)));
    assert_eq!(w.state().pages[0].attributes["action"], "alert");
}

#[tokio::test]
async fn a_throttled_lookup_waits_for_the_next_run_but_not_forever() {
    let w = world();
    let throttled = || {
        mock!(Client::lookup_events).then_error(|| {
            LookupEventsError::generic(
                ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        })
    };
    let at = |epoch: i64| Now {
        epoch,
        rfc3339: "2026-11-30T12:00:00Z".into(),
        lease_until: epoch + 360,
    };
    let t0 = Now::system().epoch;
    // First sight: within the grace period, CloudTrail is not even asked.
    let r = reconcile_at(&w, &[], &at(t0), 900).await;
    assert_eq!(r.waiting.len(), 1, "{r:?}");
    // After the grace period, throttled: left for the next run.
    let r = reconcile_at(&w, &[throttled()], &at(t0 + 901), 900).await;
    assert!(r.repairs.is_empty(), "{:?}", r.repairs);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].contains("ThrottlingException"));
    assert!(w.state().pages.is_empty());
    // Still failing twice the grace period after first sight: paged, nothing undone.
    let r = reconcile_at(&w, &[throttled()], &at(t0 + 1801), 900).await;
    assert_eq!(r.repairs[0].decision.action, Action::Alert);
    assert!(r.repairs[0].decision.why.contains("ThrottlingException"));
    assert_eq!(w.state().pages[0].attributes["action"], "alert");
    assert_eq!(prod(&w), Some(digest(NEW)));
}

#[tokio::test]
async fn every_page_is_read_and_only_the_repositorys_account_counts() {
    let w = world();
    let deploy = record(
        "arn:aws:sts::123456789012:assumed-role/deploy/p-1",
        Some("arn:aws:iam::123456789012:role/deploy"),
    );
    // A newer push of the same repository name, tag and image by a stranger, in another
    // account: not this repository's history.
    let elsewhere = record("arn:aws:iam::999999999999:user/eve", None)
        .replace("123456789012", "999999999999")
        .replace("2026-11-20T10:00:00Z", "2026-11-20T11:00:00Z");
    let is_put = |r: &aws_sdk_cloudtrail::operation::lookup_events::LookupEventsInput| {
        r.lookup_attributes()
            .first()
            .is_some_and(|a| a.attribute_value() == "PutImage")
    };
    let first = mock!(Client::lookup_events)
        .match_requests(move |r| is_put(r) && r.next_token().is_none())
        .then_output(move || {
            LookupEventsOutput::builder()
                .events(Event::builder().cloud_trail_event(&elsewhere).build())
                .next_token("page-2")
                .build()
        });
    let second = mock!(Client::lookup_events)
        .match_requests(move |r| is_put(r) && r.next_token() == Some("page-2"))
        .then_output(move || {
            LookupEventsOutput::builder()
                .events(Event::builder().cloud_trail_event(&deploy).build())
                .build()
        });
    let rest = mock!(Client::lookup_events).then_output(|| LookupEventsOutput::builder().build());
    let r = reconcile(&w, &[first, second, rest]).await;
    assert_eq!(r.repairs.len(), 1, "{r:?}");
    assert!(
        matches!(r.repairs[0].decision.action, Action::Follow { .. }),
        "the deploy's record on the second page decides, not the other account's: {}",
        r.repairs[0].decision.why
    );
    assert_eq!(prod(&w), Some(digest(NEW)));
}
