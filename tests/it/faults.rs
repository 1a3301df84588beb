//! What moto cannot produce — faults (throttling, 5xx), ECR's refusals, archived images —
//! through the real ECR adapter with responses from the SDK's own mock utilities; the rest of
//! the world is the embedded one.

use aws_sdk_ecr::config::retry::RetryConfig;
use aws_sdk_ecr::error::ErrorMetadata;
use aws_sdk_ecr::operation::batch_get_image::BatchGetImageOutput;
use aws_sdk_ecr::operation::describe_images::DescribeImagesOutput;
use aws_sdk_ecr::operation::put_image::{PutImageError, PutImageOutput};
use aws_sdk_ecr::operation::update_image_storage_class::{
    UpdateImageStorageClassError, UpdateImageStorageClassOutput,
};
use aws_sdk_ecr::types::{
    Image, ImageDetail, ImageIdentifier, ImageStatus, ImageStatusFilter, TargetStorageClass,
};
use aws_sdk_ecr::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use ecr_tag_guard::aws::EcrImages;
use ecr_tag_guard::memory::{Memory, Scenario};
use ecr_tag_guard::service::reconcile::ReconcileReport;
use ecr_tag_guard::service::{Handler, Now, Report};
use serde_json::{json, Value};

const REPO: &str = "123456789012/eu-west-1/web";
const BODY: &str = "{\"mediaType\":\"m\",\"v\":1}";

fn digest() -> String {
    ecr_tag_guard::text::sha256_digest(BODY.as_bytes())
}

fn event() -> Value {
    json!({
        "eventSource": "ecr.amazonaws.com", "eventName": "BatchDeleteImage", "eventID": "f-1",
        "awsRegion": "eu-west-1", "userIdentity": {"arn": "arn:aws:iam::123456789012:user/bob"},
        "requestParameters": {"registryId": "123456789012", "repositoryName": "web", "imageIds": [{"imageTag": "prod"}]},
        "responseElements": {"imageIds": [{"imageTag": "prod", "imageDigest": digest()}]}
    })
}

/// ECR's answer, read before the restore: `prod` is not in the repository.
fn prod_missing() -> Rule {
    mock!(Client::batch_get_image).then_output(|| {
        BatchGetImageOutput::builder()
            .failures(
                aws_sdk_ecr::types::ImageFailure::builder()
                    .image_id(ImageIdentifier::builder().image_tag("prod").build())
                    .failure_code(aws_sdk_ecr::types::ImageFailureCode::ImageNotFound)
                    .failure_reason("Requested image not found")
                    .build(),
            )
            .build()
    })
}

async fn run(rule: Rule) -> (Result<Report, ecr_tag_guard::error::Error>, Memory) {
    let missing = prod_missing();
    let ecr: Client = mock_client!(aws_sdk_ecr, RuleMode::MatchAny, &[&missing, &rule], |c| c
        .retry_config(RetryConfig::disabled()));
    let scenario: Scenario = serde_json::from_value(json!({
        "registry": [ecr_tag_guard::memory::seal_item(&json!({"repository": REPO, "tag": "prod", "digest": digest(), "manifest": BODY, "severity": "low"}))]
    }))
    .expect("scenario");
    let world = Memory::new(scenario.into_state("test").expect("state"));
    let h = Handler {
        registry: world.clone(),
        images: EcrImages::new(ecr),
        pager: world.clone(),
        ledger: world.clone(),
        pin_key: world.clone(),
        scope: Default::default(),
        tuning: Default::default(),
        dry_run: false,
    };
    (h.handle(&event(), &Now::system()).await, world)
}

fn ecr_error(code: &str) -> Rule {
    let code = code.to_string();
    mock!(Client::put_image).then_error(move || {
        PutImageError::generic(
            ErrorMetadata::builder()
                .code(code.clone())
                .message("from ECR")
                .build(),
        )
    })
}

#[tokio::test]
async fn throttling_fails_the_invocation_so_it_is_retried() {
    let (result, world) = run(ecr_error("ThrottlingException")).await;
    let err = result.expect_err("throttled");
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("ThrottlingException"), "{err}");
    assert!(world.state().pages.is_empty());
    assert!(
        world.state().ledger.is_empty(),
        "the claim is released for the retry"
    );
}

#[tokio::test]
async fn a_5xx_fails_the_invocation_so_it_is_retried() {
    let rule = mock!(Client::put_image).then_http_response(|| {
        Response::new(
            StatusCode::try_from(503).expect("status"),
            SdkBody::from("{}"),
        )
    });
    let (result, _) = run(rule).await;
    assert!(result.expect_err("503").is_retryable());
}

#[tokio::test]
async fn layers_gone_is_paged_as_a_failure_with_what_to_do() {
    let (result, world) = run(ecr_error("LayersNotFoundException")).await;
    let report = result.expect("handled");
    assert_eq!(report.pages.len(), 1);
    let page = &world.state().pages[0];
    assert_eq!(page.attributes["action"], "failed");
    assert_eq!(
        page.attributes["severity"], "high",
        "a failed restore is paged at least high"
    );
    assert!(page.message.contains("LayersNotFoundException"));
    assert!(page.message.contains("Push the image again"));
}

#[tokio::test]
async fn an_unknown_refusal_is_paged_not_retried() {
    let (result, world) = run(ecr_error("AccessDeniedException")).await;
    assert!(result.is_ok());
    assert_eq!(world.state().pages[0].attributes["action"], "failed");
}

#[tokio::test]
async fn image_already_exists_means_the_tag_is_in_place() {
    let (result, world) = run(ecr_error("ImageAlreadyExistsException")).await;
    let report = result.expect("handled");
    assert!(
        report.pages.is_empty(),
        "nothing was put back, nobody is paged"
    );
    assert_eq!(
        world.state().history[0].outcome.as_str(),
        "already_in_place"
    );
}

#[tokio::test]
async fn a_restore_sends_the_pinned_bytes_digest_and_tag() {
    let rule = mock!(Client::put_image)
        .match_requests(|r| {
            r.image_manifest() == Some(BODY)
                && r.image_digest() == Some(digest().as_str())
                && (r.image_tag() == Some("prod") || r.image_tag() == keep_tag().as_deref())
                && r.registry_id() == Some("123456789012")
                && r.repository_name() == Some("web")
        })
        .then_output(|| PutImageOutput::builder().build());
    let (result, _) = run(rule.clone()).await;
    let report = result.expect("handled");
    assert_eq!(report.pages.len(), 1);
    assert_eq!(report.pages[0].attributes["action"], "restored");
    assert_eq!(rule.num_calls(), 2, "the tag, then its keep-alive tag");
}

/// The pinned image, tagged `prod` and with its keep-alive tag, as `BatchGetImage` returns it.
fn pinned_image_rule() -> Rule {
    mock!(Client::batch_get_image).then_output(|| {
        let image = |tag: &str| {
            Image::builder()
                .image_id(
                    ImageIdentifier::builder()
                        .image_tag(tag)
                        .image_digest(digest())
                        .build(),
                )
                .image_manifest(BODY)
                .build()
        };
        BatchGetImageOutput::builder()
            .images(image("prod"))
            .images(image(&keep_tag().unwrap_or_default()))
            .build()
    })
}

/// `DescribeImages` answering the `filter` status with the pinned image in `status`, and any
/// other filter with nothing.
fn describe_rules(status: ImageStatus) -> Vec<Rule> {
    let filter = match status {
        ImageStatus::Activating => ImageStatusFilter::Activating,
        _ => ImageStatusFilter::Archived,
    };
    let hit = mock!(Client::describe_images)
        .match_requests(move |r| {
            r.filter().and_then(|f| f.image_status()) == Some(&filter)
                && r.repository_name() == Some("web")
                && r.registry_id() == Some("123456789012")
        })
        .then_output(move || {
            DescribeImagesOutput::builder()
                .image_details(
                    ImageDetail::builder()
                        .image_digest(digest())
                        .image_status(status.clone())
                        .build(),
                )
                .build()
        });
    let rest =
        mock!(Client::describe_images).then_output(|| DescribeImagesOutput::builder().build());
    vec![hit, rest]
}

/// One reconcile over `world` with ECR answering by `rules`.
async fn reconcile(world: &Memory, rules: &[&Rule]) -> ReconcileReport {
    let ecr: Client = mock_client!(aws_sdk_ecr, RuleMode::MatchAny, rules, |c| c
        .retry_config(RetryConfig::disabled()));
    let h = Handler {
        registry: world.clone(),
        images: EcrImages::new(ecr),
        pager: world.clone(),
        ledger: world.clone(),
        pin_key: world.clone(),
        scope: Default::default(),
        tuning: Default::default(),
        dry_run: false,
    };
    h.reconcile(
        &Now::system(),
        &ecr_tag_guard::ports::NoTrail,
        &mut |_, _, _| {},
    )
    .await
    .expect("reconciled")
}

fn pinned_world() -> Memory {
    let scenario: Scenario = serde_json::from_value(json!({
        "registry": [ecr_tag_guard::memory::seal_item(&json!({"repository": REPO, "tag": "prod", "digest": digest(), "manifest": BODY, "severity": "high"}))]
    }))
    .expect("scenario");
    Memory::new(scenario.into_state("test").expect("state"))
}

#[tokio::test]
async fn an_archived_pin_is_brought_back_once_and_paged_once() {
    let world = pinned_world();
    let unarchive = mock!(Client::update_image_storage_class)
        .match_requests(|r| {
            r.target_storage_class() == Some(&TargetStorageClass::Standard)
                && r.image_id().and_then(|i| i.image_digest()) == Some(digest().as_str())
                && r.repository_name() == Some("web")
                && r.registry_id() == Some("123456789012")
        })
        .then_output(|| {
            UpdateImageStorageClassOutput::builder()
                .image_status(ImageStatus::Activating)
                .build()
        });
    let get = pinned_image_rule();
    let archived = describe_rules(ImageStatus::Archived);
    let report = reconcile(&world, &[&get, &archived[0], &archived[1], &unarchive]).await;
    assert_eq!(unarchive.num_calls(), 1);
    assert_eq!(
        archived[0].num_calls() + archived[1].num_calls(),
        3,
        "one DescribeImages per storage status, each one page, and one of the images in standard storage (for guard tags no pin needs)"
    );
    assert_eq!(report.ok, 0);
    assert_eq!(report.pages.len(), 1);
    let page = &report.pages[0];
    assert_eq!(page.attributes["action"], "unarchive");
    assert_eq!(page.attributes["severity"], "high");
    assert!(page.message.contains("archive storage"), "{}", page.message);
    assert_eq!(world.state().history[0].action.as_str(), "unarchive");
    assert_eq!(world.state().history[0].outcome.as_str(), "unarchiving");

    // The next run finds it on its way back: nothing to do, nobody paged again.
    let unarchive_again = mock!(Client::update_image_storage_class)
        .then_output(|| UpdateImageStorageClassOutput::builder().build());
    let activating = describe_rules(ImageStatus::Activating);
    let report = reconcile(
        &world,
        &[&get, &activating[0], &activating[1], &unarchive_again],
    )
    .await;
    assert_eq!(unarchive_again.num_calls(), 0);
    assert!(report.pages.is_empty());
    assert!(report.repairs.is_empty());
    assert_eq!((report.checked, report.ok), (1, 0), "not ok until active");
}

#[tokio::test]
async fn an_archived_pin_that_cannot_be_brought_back_is_paged_once_per_incident() {
    let world = pinned_world();
    let denied = mock!(Client::update_image_storage_class).then_error(|| {
        UpdateImageStorageClassError::generic(
            ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("not allowed")
                .build(),
        )
    });
    let get = pinned_image_rule();
    let archived = describe_rules(ImageStatus::Archived);
    let rules = [&get, &archived[0], &archived[1], &denied];
    let first = reconcile(&world, &rules).await;
    assert_eq!(first.pages.len(), 1);
    assert_eq!(first.pages[0].attributes["action"], "failed");
    assert!(first.pages[0].message.contains("AccessDeniedException"));
    let second = reconcile(&world, &rules).await;
    assert_eq!(denied.num_calls(), 2, "tried again on the next run");
    assert!(
        second.pages.is_empty(),
        "the same incident is not paged twice"
    );
}

#[tokio::test]
async fn a_standard_image_with_no_status_is_not_archived() {
    // An endpoint that ignores the filter and leaves out imageStatus (moto does) returns
    // every image: none of them counts as archived.
    let world = pinned_world();
    let get = pinned_image_rule();
    let all = mock!(Client::describe_images).then_output(|| {
        DescribeImagesOutput::builder()
            .image_details(ImageDetail::builder().image_digest(digest()).build())
            .build()
    });
    let report = reconcile(&world, &[&get, &all]).await;
    assert_eq!((report.checked, report.ok), (1, 1));
    assert!(report.pages.is_empty());
}

fn keep_tag() -> Option<String> {
    ecr_tag_guard::registry::keep_tag(ecr_tag_guard::registry::DEFAULT_KEEP_PREFIX, &digest())
}
