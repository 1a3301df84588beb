//! Test fixtures: manifests, registry items and the events CloudTrail and ECR would send,
//! apart from the moto harness; plus small helpers over a world's ECR.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_ecr::types::ImageIdentifier;
use ecr_tag_guard::registry::RepoKey;
use serde_json::{json, Value};

use super::{World, REGION};

pub fn sha256(s: &str) -> String {
    ecr_tag_guard::text::sha256_digest(s.as_bytes())
}

pub const DOCKER: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const OCI: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A docker v2 manifest unique to `name`, pretty-printed like `docker` sends it.
pub fn manifest(name: &str) -> String {
    let layer = |i: u32| json!({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1000 + i, "digest": sha256(&format!("{name}-layer-{i}"))});
    serde_json::to_string_pretty(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1469, "digest": sha256(&format!("{name}-config"))},
        "layers": [layer(0), layer(1)]
    }))
    .expect("json")
}

/// A single-platform OCI manifest.
pub fn oci_manifest(name: &str) -> String {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 800, "digest": sha256(&format!("{name}-config"))},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 3000, "digest": sha256(&format!("{name}-layer"))}]
    })
    .to_string()
}

/// An OCI index over `children`.
pub fn index(children: &[(&str, &str)]) -> String {
    let ms: Vec<Value> = children
        .iter()
        .map(|(m, arch)| json!({"mediaType": OCI, "size": m.len(), "digest": sha256(m), "platform": {"architecture": arch, "os": "linux"}}))
        .collect();
    serde_json::to_string_pretty(
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": ms}),
    )
    .expect("json")
}

/// A protected-tag item with a full pin.
pub fn pinned_item(w: &World, repo: &str, tag: &str, manifest: &str, media_type: &str) -> Value {
    json!({
        "repository": w.repo(repo).key(), "tag": tag,
        "digest": sha256(manifest), "manifest": manifest, "media_type": media_type,
        "pinned_by": "arn:aws:iam::123456789012:user/ana", "pinned_at": "2026-11-01T00:00:00Z",
    })
}

fn next_id() -> String {
    static ID: AtomicU64 = AtomicU64::new(1);
    format!(
        "0e1d2c3b-4a59-4687-9a0b-{:012}",
        ID.fetch_add(1, Ordering::SeqCst)
    )
}

/// An IAM user identity.
pub fn user(w: &World, name: &str) -> Value {
    json!({"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": format!("arn:aws:iam::{}:user/{name}", w.account), "accountId": w.account, "userName": name})
}

/// An assumed-role identity.
pub fn role(w: &World, name: &str, session: &str) -> Value {
    json!({
        "type": "AssumedRole", "principalId": format!("AROAEXAMPLE:{session}"),
        "arn": format!("arn:aws:sts::{}:assumed-role/{name}/{session}", w.account), "accountId": w.account,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": format!("arn:aws:iam::{}:role/{name}", w.account), "accountId": w.account, "userName": name}, "attributes": {}}
    })
}

/// A CloudTrail API call inside its EventBridge envelope.
pub fn cloudtrail(
    w: &World,
    name: &str,
    identity: Value,
    request: Value,
    response: Value,
) -> Value {
    json!({
        "version": "0", "id": next_id(), "detail-type": "AWS API Call via CloudTrail", "source": "aws.ecr",
        "account": w.account, "time": "2026-11-20T10:00:00Z", "region": REGION, "resources": [],
        "detail": {
            "eventVersion": "1.08", "userIdentity": identity, "eventTime": "2026-11-20T10:00:00Z",
            "eventSource": "ecr.amazonaws.com", "eventName": name, "awsRegion": REGION,
            "sourceIPAddress": "203.0.113.7", "userAgent": "aws-cli/2",
            "requestParameters": request, "responseElements": response,
            "requestID": next_id(), "eventID": next_id(), "eventType": "AwsApiCall",
            "recipientAccountId": w.account
        }
    })
}

/// `BatchDeleteImage` as CloudTrail records it.
pub fn batch_delete(
    w: &World,
    identity: Value,
    repo: &str,
    request_ids: Value,
    response_ids: Vec<Value>,
) -> Value {
    cloudtrail(
        w,
        "BatchDeleteImage",
        identity,
        json!({"registryId": w.account, "repositoryName": repo, "imageIds": request_ids}),
        json!({"imageIds": response_ids, "failures": []}),
    )
}

/// `PutImage` as CloudTrail records it.
pub fn put_image(w: &World, identity: Value, repo: &str, tag: &str, manifest: &str) -> Value {
    cloudtrail(
        w,
        "PutImage",
        identity,
        json!({"registryId": w.account, "repositoryName": repo, "imageTag": tag, "imageManifest": manifest}),
        json!({"image": {"registryId": w.account, "repositoryName": repo, "imageManifest": manifest, "imageId": {"imageDigest": sha256(manifest), "imageTag": tag}}}),
    )
}

/// A lifecycle expiry (`PolicyExecutionEvent`) of `images` (digest, tags).
pub fn lifecycle(w: &World, repo: &str, images: &[(&str, &[&str])]) -> Value {
    let actions: Vec<Value> = images
        .iter()
        .map(|(d, tags)| json!({"lifecycleEventImage": {"digest": d, "tagStatus": "Tagged", "tagList": tags, "pushedAt": 1_762_070_400_000_u64}, "rulePriority": 2}))
        .collect();
    json!({
        "version": "0", "id": next_id(), "detail-type": "AWS Service Event via CloudTrail", "source": "aws.ecr",
        "account": w.account, "time": "2026-11-21T03:00:00Z", "region": REGION, "resources": [],
        "detail": {
            "eventVersion": "1.09", "userIdentity": {"accountId": w.account, "invokedBy": "AWS Internal"},
            "eventTime": "2026-11-21T03:00:00Z", "eventSource": "ecr.amazonaws.com", "eventName": "PolicyExecutionEvent",
            "awsRegion": REGION, "sourceIPAddress": "AWS Internal", "userAgent": "AWS Internal",
            "requestParameters": null, "responseElements": null, "eventID": next_id(), "readOnly": true,
            "eventType": "AwsServiceEvent", "recipientAccountId": w.account,
            "serviceEventDetails": {"repositoryName": repo, "lifecycleEventImageActions": actions, "lifecycleEventFailureDetails": []}
        }
    })
}

/// ECR's own `ECR Image Action` event (no caller) for `kind` (PUSH or DELETE) of `tag`.
pub fn image_action(w: &World, repo: &str, kind: &str, tag: &str, digest: &str) -> Value {
    json!({
        "version": "0", "id": next_id(), "detail-type": "ECR Image Action", "source": "aws.ecr",
        "account": w.account, "time": "2026-11-20T10:00:00Z", "region": REGION, "resources": [],
        "detail": {"result": "SUCCESS", "repository-name": repo, "image-digest": digest,
                   "action-type": kind, "image-tag": tag}
    })
}

impl World {
    /// An ECR client of this world (same moto account) in another region.
    pub fn ecr_in(&self, region: &str) -> aws_sdk_ecr::Client {
        aws_sdk_ecr::Client::from_conf(
            self.ecr
                .config()
                .to_builder()
                .region(aws_config::Region::new(region.to_string()))
                .build(),
        )
    }

    /// The repository `name` in another region of this world's account.
    pub fn repo_in(&self, region: &str, name: &str) -> RepoKey {
        RepoKey {
            region: region.into(),
            ..self.repo(name)
        }
    }
}

/// The digest a tag sits on now, through `ecr` (any region).
pub async fn digest_in(ecr: &aws_sdk_ecr::Client, repo: &str, tag: &str) -> Option<String> {
    let out = ecr
        .batch_get_image()
        .repository_name(repo)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await
        .ok()?;
    out.images()
        .first()
        .and_then(|i| i.image_id())
        .and_then(|i| i.image_digest())
        .map(String::from)
}

/// Deletes a tag through `ecr` (any region).
pub async fn untag_in(ecr: &aws_sdk_ecr::Client, repo: &str, tag: &str) {
    ecr.batch_delete_image()
        .repository_name(repo)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await
        .expect("delete");
}

/// The item with more fields.
pub fn with(mut item: Value, extra: Value) -> Value {
    if let (Some(a), Some(b)) = (item.as_object_mut(), extra.as_object()) {
        a.extend(b.clone());
    }
    item
}

/// The keep-alive tag of a digest, with the default prefix.
pub fn keep(digest: &str) -> String {
    ecr_tag_guard::registry::keep_tag(ecr_tag_guard::registry::DEFAULT_KEEP_PREFIX, digest)
        .expect("digest")
}

/// Scenario helpers: seed a world, change ECR as a caller would (returning the event
/// CloudTrail records for it), deliver it (`World::handle`), expect the end state.
impl World {
    /// Seed: repository `repo` (created if need be) with `tag` pushed from the manifest
    /// named `name`, pinned by an item with `extra` fields. Returns (manifest, digest).
    pub async fn seed(&self, repo: &str, tag: &str, name: &str, extra: Value) -> (String, String) {
        let _ = self
            .ecr
            .create_repository()
            .repository_name(repo)
            .send()
            .await;
        let m = manifest(name);
        let d = self.push(repo, &m, DOCKER, Some(tag)).await;
        self.put_sealed(with(pinned_item(self, repo, tag, &m, DOCKER), extra))
            .await;
        (m, d)
    }

    /// Change: `who` deletes `tag`; the event CloudTrail records for it.
    pub async fn delete_by(&self, who: Value, repo: &str, tag: &str) -> Value {
        let ids = self.delete(repo, &[(Some(tag), None)]).await;
        batch_delete(self, who, repo, json!([{ "imageTag": tag }]), ids)
    }

    /// Change: `who` pushes `manifest` as `tag`; its digest and CloudTrail's record.
    pub async fn push_by(
        &self,
        who: Value,
        repo: &str,
        tag: &str,
        manifest: &str,
    ) -> (String, Value) {
        let d = self.push(repo, manifest, DOCKER, Some(tag)).await;
        (d, put_image(self, who, repo, tag, manifest))
    }

    /// Expect: `tag` sits on `want` (`None`: it is not there).
    pub async fn expect_tag(&self, repo: &str, tag: &str, want: Option<&str>) {
        assert_eq!(
            self.digest_of(repo, tag).await.as_deref(),
            want,
            "{repo}:{tag}"
        );
    }

    /// Expect: the pages sent since the last look, by their `action` attribute, in order.
    pub async fn expect_pages(&self, want: &[&str]) -> Vec<Value> {
        let pages = self.pages().await;
        let got: Vec<&str> = pages
            .iter()
            .map(|p| {
                p["MessageAttributes"]["action"]["Value"]
                    .as_str()
                    .unwrap_or("")
            })
            .collect();
        assert_eq!(got, want, "{pages:?}");
        pages
    }
}

/// What a page (an SNS envelope) says was done to each tag it lists, in its order.
pub fn tag_actions(envelope: &Value) -> Vec<String> {
    let message = envelope["Message"].as_str().unwrap_or("");
    let json: Value = message
        .split("--- JSON ---\n")
        .nth(1)
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_else(|| panic!("no JSON part in {message}"));
    match json["changes"].as_array() {
        Some(changes) => changes
            .iter()
            .map(|c| c["action"].as_str().unwrap_or("").to_string())
            .collect(),
        None => vec![json["action"].as_str().unwrap_or("").to_string()],
    }
}

/// What every once-only ledger must answer, whatever stores it (the DynamoDB table, the
/// embedded world): claims and pending pages are leased, and a lease that ran out is taken
/// over with what it held.
pub async fn ledger_contract(ledger: &impl ecr_tag_guard::ports::Ledger) {
    use ecr_tag_guard::ports::Claim;
    let page = ecr_tag_guard::page::Page {
        subject: "s".into(),
        message: "m".into(),
        attributes: Default::default(),
    };
    // A reconcile page SNS did not take: kept with its problems, listed, replaced, dropped.
    let big = ecr_tag_guard::page::Page {
        message: "x".repeat(200 * 1024),
        ..page.clone()
    };
    let problems = vec!["reconcile/a:prod/pin/refused".to_string()];
    ledger
        .keep_unsent("1/eu-west-1/a", &page, &[])
        .await
        .expect("keep");
    ledger
        .keep_unsent("1/eu-west-1/a", &big, &problems)
        .await
        .expect("keep again");
    let kept = ledger.unsent().await.expect("unsent");
    assert_eq!(
        kept,
        vec![("1/eu-west-1/a".to_string(), big, problems)],
        "the newest, whole"
    );
    ledger.drop_unsent("1/eu-west-1/a").await.expect("drop");
    assert!(ledger.unsent().await.expect("unsent").is_empty());
    // Repositories holding retired guard tags: noted, listed, cleared.
    ledger
        .note_guard_tags("1/eu-west-1/a", true)
        .await
        .expect("note");
    assert_eq!(
        ledger.guard_tag_repositories().await.expect("noted"),
        ["1/eu-west-1/a"]
    );
    ledger
        .note_guard_tags("1/eu-west-1/a", false)
        .await
        .expect("clear");
    assert!(ledger
        .guard_tag_repositories()
        .await
        .expect("noted")
        .is_empty());

    let claim = |at: i64, until: i64| ledger.claim("ev-1", at, until);
    assert_eq!(claim(100, 500).await.expect("claim"), Claim::Fresh);
    assert_eq!(
        claim(200, 600).await.expect("claim"),
        Claim::Busy,
        "held within its lease"
    );
    assert_eq!(
        claim(501, 900).await.expect("claim"),
        Claim::Resumed,
        "taken over once the lease ran out"
    );
    ledger
        .finish("ev-1", 510, std::slice::from_ref(&page), false)
        .await
        .expect("finish");
    assert_eq!(
        claim(511, 900).await.expect("claim"),
        Claim::PagesPending {
            pages: vec![page.clone()],
            redo: false
        },
        "pending pages are free to take at once"
    );
    assert_eq!(
        claim(512, 950).await.expect("claim"),
        Claim::Busy,
        "a second delivery does not send them too"
    );
    assert_eq!(
        claim(901, 1300).await.expect("claim"),
        Claim::PagesPending {
            pages: vec![page.clone()],
            redo: false
        },
        "the sender died: the pages are still there for the next attempt"
    );
    ledger
        .finish("ev-1", 902, &[], false)
        .await
        .expect("finish");
    assert_eq!(claim(5000, 5400).await.expect("claim"), Claim::Done);
    assert_eq!(
        ledger.claim("ev-2", 100, 500).await.expect("claim"),
        Claim::Fresh
    );
    ledger.release("ev-2").await.expect("release");
    assert_eq!(
        ledger.claim("ev-2", 101, 500).await.expect("claim"),
        Claim::Fresh,
        "a released claim starts afresh"
    );
}
