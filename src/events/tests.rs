//! Tests of reading events: every shipped and published sample, variants, mutations.
//! Compiled only under #[cfg(test)] (declared in the parent module).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::*;

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn incident(v: &Value) -> Incident {
    match parse(v) {
        Ok(Parsed::Incident(i)) => i,
        other => panic!("expected an incident, got {other:?}"),
    }
}

fn ignored(v: &Value) -> String {
    match parse(v) {
        Ok(Parsed::Ignored { reason, .. }) => reason,
        other => panic!("expected ignored, got {other:?}"),
    }
}

fn project_events() -> Vec<PathBuf> {
    crate::files::expand(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("events")]).unwrap()
}

/// Every event the project ships parses, and each says what its name says.
#[test]
fn every_project_event_reads_as_its_name_says() {
    let files = project_events();
    assert!(files.len() >= 18, "events/ holds the story");
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        for ev in crate::files::load(&f).unwrap() {
            let ev = ev.unwrap();
            let parsed = parse(&ev.value).unwrap_or_else(|e| panic!("{name}: {e}"));
            let acted = matches!(parsed, Parsed::Incident(_));
            let expect_ignored = ["failed", "preview", "scan"]
                .iter()
                .any(|w| name.contains(w));
            assert_eq!(acted, !expect_ignored, "{name}: {parsed:?}");
        }
    }
}

#[test]
fn project_events_carry_the_facts_of_the_story() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let i = incident(&load(&dir.join("01-delete-by-tag.json")));
    assert_eq!(i.source, "CloudTrail BatchDeleteImage");
    assert_eq!(
        i.event_id, "c0ffee01-1111-4b2c-8d3e-000000000001",
        "CloudTrail's eventID, not the envelope's"
    );
    assert_eq!(i.repo.key(), "111122223333/eu-west-1/shop/web");
    assert!(
        matches!(&i.changes[..], [Change::TagRemoved { tag, digest: Some(_) }] if tag == "prod.latest")
    );
    assert_eq!(
        i.actor,
        Actor::Principal {
            arn: "arn:aws:iam::111122223333:user/tired-human".into(),
            role_arn: None
        }
    );

    let i = incident(&load(&dir.join("07-move-by-the-deploy-role.json")));
    assert_eq!(
        i.actor.arns(),
        vec![
            "arn:aws:sts::111122223333:assumed-role/deploy/pipeline-4711",
            "arn:aws:iam::111122223333:role/deploy"
        ]
    );
    let Change::TagPushed {
        manifest: Some(m),
        digest,
        ..
    } = &i.changes[0]
    else {
        panic!("{:?}", i.changes)
    };
    assert!(m.verify(), "the manifest in the event is the pushed image");
    assert_eq!(&m.digest, digest);

    let i = incident(&load(
        &dir.join("08-delete-by-digest-two-protected-tags.json"),
    ));
    assert!(
        matches!(&i.changes[..], [Change::ImageDeleted { tags, rule: None, .. }] if tags.is_empty())
    );

    let i = incident(&load(&dir.join("09-lifecycle-expiry-two-images.json")));
    assert_eq!(i.actor, Actor::Lifecycle);
    assert_eq!(i.changes.len(), 2);
    assert!(
        matches!(&i.changes[0], Change::ImageDeleted { tags, rule: Some(1), .. } if tags == &["release-2026.11"])
    );

    // The index delete names three digests; the request named them without tags, so each is
    // a whole image, the index with its tag.
    let i = incident(&load(&dir.join("17-delete-multi-arch-index.json")));
    assert_eq!(i.changes.len(), 3);
    assert!(matches!(&i.changes[0], Change::ImageDeleted { tags, .. } if tags == &["prod"]));

    let i = incident(&load(&dir.join("15-delete-repository.json")));
    assert_eq!(i.changes, vec![Change::RepositoryDeleted]);

    let i = incident(&load(
        &dir.join("02-image-action-delete-same-incident.json"),
    ));
    assert_eq!(i.source, "ECR Image Action DELETE");
    assert!(matches!(i.actor, Actor::Unknown { .. }));
}

fn shared_samples() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples/events");
    if dir.is_dir() {
        Some(dir)
    } else {
        crate::text::say_skipped("../shared/samples/events is not here (it comes with the project's CI, not with a clone)");
        None
    }
}

/// Every real record AWS and others published parses, and is read as what it is.
#[test]
fn every_published_sample_reads_as_what_it_is() {
    let Some(dir) = shared_samples() else { return };
    let expect: &[(&str, &str)] = &[
        ("cloudtrail-putimage__", "incident"),
        ("cloudtrail-policyexecutionevent__", "incident"),
        ("cloudtrail-policyexecutionevent-empty__", "ignored"),
        // AWS's documentation samples of Image Action events carry a digest of 60 hex
        // digits, not 64: malformed, so reported and ignored.
        ("ecr-image-action-delete__", "ignored"),
        ("ecr-image-action-push__", "ignored"),
        ("cloudtrail-batchgetimage__", "ignored"),
        ("cloudtrail-createrepository__", "ignored"),
        ("cloudtrail-ecrpublic-createrepository__", "ignored"),
        ("cloudtrail-ecrpublic-putimage__", "ignored"),
        (
            "cloudtrail-setrepositorypolicy-panther-normalized__",
            "ignored",
        ),
        ("ecr-image-scan", "ignored"),
        ("ecr-scan-resource-change__", "ignored"),
    ];
    let mut seen = 0;
    for f in crate::files::expand(&[dir]).unwrap() {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let (_, want) = expect
            .iter()
            .find(|(p, _)| name.starts_with(p))
            .unwrap_or_else(|| panic!("no expectation for {name}"));
        for ev in crate::files::load(&f).unwrap() {
            let ev = ev.unwrap();
            let got = match parse(&ev.value) {
                Ok(Parsed::Incident(_)) => "incident",
                Ok(Parsed::Ignored { .. }) => "ignored",
                Err(e) => panic!("{name}: {e}"),
            };
            assert_eq!(got, *want, "{name}");
            seen += 1;
        }
    }
    assert!(seen >= 14, "read {seen} samples");
}

#[test]
fn published_lifecycle_and_put_image_records_give_their_facts() {
    let Some(dir) = shared_samples() else { return };
    let i = incident(&load(
        &dir.join("cloudtrail-policyexecutionevent__awsdocs-ecr-userguide.json"),
    ));
    assert_eq!(i.repo.key(), "123456789012/us-west-2/testrepo");
    assert_eq!(i.event_id, "9354dd7f-9aac-4e9d-956d-12561a4923aa");
    let tags: Vec<_> = i
        .changes
        .iter()
        .map(|c| match c {
            Change::ImageDeleted { tags, .. } => tags.join(","),
            _ => String::new(),
        })
        .collect();
    assert_eq!(tags, vec!["alpine", "centos"]);

    let i = incident(&load(
        &dir.join("cloudtrail-putimage__awsdocs-ecr-userguide.json"),
    ));
    let Change::TagPushed {
        tag,
        digest,
        manifest: Some(m),
    } = &i.changes[0]
    else {
        panic!()
    };
    assert_eq!(tag, "latest");
    assert_eq!(
        digest,
        "sha256:98c8b060c21d9adbb6b8c41b916e95e6307102786973ab93a41e8b86d1fc6d3e"
    );
    // AWS's own record: the sha256 of the manifest text is the digest ECR answered with,
    // which is what lets the guard trust a manifest taken from an event.
    assert!(m.verify());
}

fn ct(name: &str) -> Value {
    json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/u", "accountId": "123456789012"},
        "eventTime": "2026-01-01T00:00:00Z", "eventSource": "ecr.amazonaws.com", "eventName": name,
        "awsRegion": "eu-west-1", "eventID": "e-1", "recipientAccountId": "123456789012",
        "requestParameters": {"repositoryName": "web", "registryId": "210987654321"},
        "responseElements": null
    })
}

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

#[test]
fn batch_delete_counts_only_what_was_deleted() {
    let mut v = ct("BatchDeleteImage");
    v["requestParameters"]["imageIds"] =
        json!([{"imageTag": "a"}, {"imageTag": "gone"}, {"imageDigest": D2}]);
    v["responseElements"] = json!({
        "imageIds": [{"imageTag": "a", "imageDigest": D1}, {"imageDigest": D2, "imageTag": "x"}, {"imageDigest": D2, "imageTag": "y"}],
        "failures": [{"imageId": {"imageTag": "gone"}, "failureCode": "ImageNotFound"}]
    });
    let i = incident(&v);
    assert_eq!(
        i.repo.account, "210987654321",
        "registryId names the registry, not the caller's account"
    );
    assert_eq!(
        i.changes,
        vec![
            Change::TagRemoved {
                tag: "a".into(),
                digest: Some(D1.into())
            },
            Change::ImageDeleted {
                digest: D2.into(),
                tags: vec!["x".into(), "y".into()],
                rule: None
            },
        ]
    );
    assert_eq!(i.note, None);
}

#[test]
fn batch_delete_with_only_failures_is_ignored() {
    let mut v = ct("BatchDeleteImage");
    v["requestParameters"]["imageIds"] = json!([{"imageTag": "latest"}]);
    v["responseElements"] = json!({"imageIds": [], "failures": [{"failureCode": "ImageNotFound"}]});
    assert!(ignored(&v).contains("deleted nothing (1 failure(s))"));
}

#[test]
fn batch_delete_without_response_falls_back_to_the_request_and_says_so() {
    let mut v = ct("BatchDeleteImage");
    v["requestParameters"]["imageIds"] = json!([{"imageTag": "a"}, {"imageDigest": D1}]);
    let i = incident(&v);
    assert_eq!(
        i.changes,
        vec![
            Change::TagRemoved {
                tag: "a".into(),
                digest: None
            },
            Change::ImageDeleted {
                digest: D1.into(),
                tags: vec![],
                rule: None
            }
        ]
    );
    assert!(i.note.unwrap().contains("no responseElements"));
}

#[test]
fn failed_calls_dry_runs_and_other_services_change_nothing() {
    let mut v = ct("BatchDeleteImage");
    v["errorCode"] = json!("AccessDenied");
    assert!(ignored(&v).contains("AccessDenied"));
    assert!(ignored(&ct("DryRunEvent")).contains("preview"));
    assert!(ignored(&ct("BatchGetImage")).contains("not acted on"));
    let mut v = ct("PutImage");
    v["eventSource"] = json!("ecr-public.amazonaws.com");
    assert!(ignored(&v).contains("not private ECR"));
    let env =
        json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.s3", "detail": {}});
    assert!(ignored(&env).contains("aws.s3"));
}

#[test]
fn put_image_without_a_digest_takes_the_manifest_hash() {
    let mut v = ct("PutImage");
    v["requestParameters"]["imageTag"] = json!("t");
    v["requestParameters"]["imageManifest"] = json!("{\"a\":1}");
    let i = incident(&v);
    let Change::TagPushed {
        digest,
        manifest: Some(m),
        ..
    } = &i.changes[0]
    else {
        panic!()
    };
    assert_eq!(digest, &crate::text::sha256_digest(b"{\"a\":1}"));
    assert!(m.verify());
    let mut v = ct("PutImage");
    v["requestParameters"]["imageTag"] = json!("t");
    assert!(ignored(&v).contains("names no digest"));
    assert!(ignored(&ct("PutImage")).contains("without a tag"));
}

#[test]
fn lenient_about_identity_and_ids() {
    let mut v = ct("DeleteRepository");
    v["userIdentity"] = json!({});
    v.as_object_mut().unwrap().remove("eventID");
    let i = incident(&v);
    assert_eq!(
        i.actor,
        Actor::Unknown {
            label: "no caller ARN".into()
        }
    );
    assert!(i.event_id.starts_with("content-"));
    assert_eq!(
        i.event_id,
        incident(&v).event_id,
        "the same record always gets the same id"
    );
    let mut w = v.clone();
    w["eventTime"] = json!(1_700_000_000_000_u64);
    assert_eq!(incident(&w).time, "1700000000000");
    v.as_object_mut().unwrap().remove("userIdentity");
    assert!(matches!(incident(&v).actor, Actor::Unknown { .. }));
}

#[test]
fn empty_lifecycle_runs_are_ignored() {
    let mut v = ct("PolicyExecutionEvent");
    v["serviceEventDetails"] = json!({"repositoryName": "web", "lifecycleEventImageActions": []});
    assert!(ignored(&v).contains("expired no image"));
    v["serviceEventDetails"] = json!({"repositoryName": "web"});
    assert!(ignored(&v).contains("expired no image"));
}

#[test]
fn image_actions_other_than_successful_push_and_delete_are_ignored() {
    let ev = |detail: Value| json!({"id": "x", "detail-type": "ECR Image Action", "source": "aws.ecr", "account": "123456789012", "region": "eu-west-1", "detail": detail});
    assert!(
        ignored(&ev(json!({"result": "FAILURE", "action-type": "DELETE"}))).contains("FAILURE")
    );
    assert!(ignored(&ev(json!({"result": "SUCCESS", "action-type": "UPDATE_STORAGE_CLASS", "repository-name": "web", "image-digest": D1}))).contains("UPDATE_STORAGE_CLASS"));
    assert!(ignored(&ev(json!({"result": "SUCCESS", "action-type": "PUSH", "repository-name": "web", "image-digest": D1}))).contains("untagged"));
    let i = incident(&ev(
        json!({"result": "SUCCESS", "action-type": "DELETE", "repository-name": "web", "image-digest": D1}),
    ));
    assert_eq!(
        i.changes,
        vec![Change::ImageDeleted {
            digest: D1.into(),
            tags: vec![],
            rule: None
        }]
    );
}

#[test]
fn malformed_events_are_errors_that_say_what_is_wrong() {
    let e = parse(&json!([1])).unwrap_err().0;
    assert!(e.contains("found an array"), "{e}");
    let e = parse(&json!({"hello": 1})).unwrap_err().0;
    assert!(e.contains("neither"), "{e}");
    let mut v = ct("BatchDeleteImage");
    v["requestParameters"] = json!({"imageIds": [{"imageTag": "a"}]});
    v["responseElements"] = json!({"imageIds": [{"imageTag": "a"}]});
    let e = parse(&v).unwrap_err().0;
    assert!(e.contains("repositoryName"), "{e}");
    let mut v = ct("BatchDeleteImage");
    v["requestParameters"]["imageIds"] = json!("not a list");
    let e = parse(&v).unwrap_err().0;
    assert!(e.starts_with("BatchDeleteImage requestParameters"), "{e}");
    let mut v = ct("PolicyExecutionEvent");
    v["serviceEventDetails"] =
        json!({"repositoryName": "web", "lifecycleEventImageActions": [{"rulePriority": 1}]});
    let e = parse(&v).unwrap_err().0;
    assert!(e.contains("lifecycleEventImageActions[0]"), "{e}");
    let e = parse(&json!({"detail-type": "ECR Image Action", "source": "aws.ecr"}))
        .unwrap_err()
        .0;
    assert!(e.contains("no `detail`"), "{e}");
}

/// Every value in every shipped event replaced, one at a time, by values of other types:
/// the parser answers (incident, ignored or error) and never panics.
#[test]
fn mutated_events_never_panic() {
    fn paths(v: &Value, at: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(at.clone());
        match v {
            Value::Object(m) => m
                .iter()
                .for_each(|(k, x)| paths(x, [at.clone(), vec![k.clone()]].concat(), out)),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| paths(x, [at.clone(), vec![i.to_string()]].concat(), out)),
            _ => {}
        }
    }
    fn set(v: &mut Value, at: &[String], to: Value) {
        let mut cur = v;
        for k in at {
            cur = match cur {
                Value::Object(m) => m.get_mut(k).unwrap(),
                Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
                _ => unreachable!(),
            };
        }
        *cur = to;
    }
    let replacements = [
        Value::Null,
        json!(7),
        json!("x\u{0}\n"),
        json!([]),
        json!({}),
        json!(true),
    ];
    let mut runs = 0;
    for f in project_events() {
        for ev in crate::files::load(&f).unwrap() {
            let ev = ev.unwrap();
            let mut all = Vec::new();
            paths(&ev.value, Vec::new(), &mut all);
            for p in all {
                for r in &replacements {
                    let mut v = ev.value.clone();
                    set(&mut v, &p, r.clone());
                    let _ = parse(&v);
                    runs += 1;
                }
            }
        }
    }
    assert!(runs > 1000, "{runs}");
}
