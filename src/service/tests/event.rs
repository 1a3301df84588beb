//! One event through the handler on the embedded world: restores, once-only claims and
//! retries, pages kept and sent, unreadable events, reads before acting.

use super::*;

#[tokio::test]
async fn restore_then_duplicate() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    let ev = delete_event("e1", "prod", "a");
    let r = h.handle(&ev, &now(100)).await.unwrap();
    assert_eq!(r.pages.len(), 1);
    assert_eq!(tag_on(&w, "prod"), Some(d("a")));
    assert_eq!(
        take_calls(&w),
        [
            "dynamodb:BatchWriteItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "ecr:BatchGetImage",
            "ecr:PutImage",
            "ecr:PutImage",
            "kms:VerifyMac",
            "sns:Publish"
        ],
        "ECR is read and the pin's seal checked before the restore; the second PutImage puts the keep-alive tag, beside the page"
    );
    let r = h.handle(&ev, &now(101)).await.unwrap();
    assert!(r.duplicate);
    assert_eq!(
        take_calls(&w),
        ["dynamodb:Query", "dynamodb:Query", "dynamodb:UpdateItem"]
    );
    assert_eq!(w.state().pages.len(), 1);
    assert_eq!(w.state().history.len(), 1);
}

#[tokio::test]
async fn a_throttled_restore_fails_the_event_releases_the_claim_and_the_retry_restores() {
    let w = world(vec![pinned("prod", "a"), pinned("keep", "a")]);
    let h = handler(&w);
    fail_next(&w, "ecr:PutImage", true, "ThrottlingException");
    let ev = delete_event("e1", "prod", "a");
    let err = h.handle(&ev, &now(100)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        w.state().pages.is_empty(),
        "no page for a restore that will be retried"
    );
    assert!(!w.state().ledger.contains_key("e1"), "claim released");
    assert_eq!(tag_on(&w, "prod"), None);
    let r = h.handle(&ev, &now(160)).await.unwrap();
    assert_eq!(r.pages.len(), 1);
    assert_eq!(tag_on(&w, "prod"), Some(d("a")));
}

#[tokio::test]
async fn a_failed_page_is_kept_and_sent_by_the_retry_without_acting() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    fail_next(&w, "sns:Publish", true, "ThrottlingException");
    let ev = delete_event("e1", "prod", "a");
    let err = h.handle(&ev, &now(100)).await.unwrap_err();
    assert!(err.is_retryable(), "throttled: worth a retry: {err}");
    assert_eq!(w.state().ledger["e1"].pending.len(), 1);
    take_calls(&w);
    let r = h.handle(&ev, &now(200)).await.unwrap();
    assert!(r.duplicate);
    assert_eq!(r.pages.len(), 1);
    assert_eq!(
        take_calls(&w),
        [
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "sns:Publish"
        ]
    );
    assert!(w.state().ledger["e1"].done);
    assert_eq!(w.state().pages.len(), 1);
}

#[tokio::test]
async fn a_page_sns_refuses_is_kept_but_not_retried_as_if_it_could_pass() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    fail_next(
        &w,
        "sns:Publish",
        false,
        "InvalidParameter: Message too long",
    );
    let ev = delete_event("e1", "prod", "a");
    let err = h.handle(&ev, &now(100)).await.unwrap_err();
    assert!(!err.is_retryable(), "SNS would refuse it again: {err}");
    assert_eq!(
        tag_on(&w, "prod"),
        Some(d("a")),
        "the restore itself went through"
    );
    assert_eq!(w.state().ledger["e1"].pending.len(), 1, "kept for a replay");
    // Once the cause is fixed, a replay of the event sends it, and acts no more.
    let r = h.handle(&ev, &now(200)).await.unwrap();
    assert!(r.duplicate);
    assert_eq!(w.state().pages.len(), 1);
}

#[tokio::test]
async fn a_mass_incident_keeps_its_calls_in_flight_within_the_setting() {
    // 200 protected tags, each on its own image, all expired by one lifecycle run.
    let names: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    let images: Vec<Value> = names
        .iter()
        .map(|n| json!({"manifest": body(n), "media_type": "m", "tags": []}))
        .collect();
    let items: Vec<Value> = names.iter().map(|n| pinned(&format!("t-{n}"), n)).collect();
    let scenario: Scenario = serde_json::from_value(json!({
        "guard_role_arn": "arn:aws:iam::123456789012:role/guard",
        "repositories": [{"repository": REPO, "images": images}],
        "registry": items
    }))
    .unwrap();
    let w = Memory::new(scenario.into_state("test").unwrap());
    w.state()
        .repos
        .get_mut(&RepoKey::parse(REPO).unwrap())
        .unwrap()
        .images
        .clear();
    w.state().latency = Some(std::time::Duration::from_millis(2));
    let mut h = handler(&w);
    h.tuning.call_concurrency = 8;
    let actions: Vec<Value> = names
        .iter()
        .map(|n| json!({"lifecycleEventImage": {"digest": d(n), "tagStatus": "Tagged", "tagList": [format!("t-{n}")], "pushedAt": 1}, "rulePriority": 1}))
        .collect();
    let ev = json!({
        "eventSource": "ecr.amazonaws.com", "eventName": "PolicyExecutionEvent", "eventID": "run-1",
        "awsRegion": "eu-west-1", "eventTime": "2026-01-01T00:00:00Z", "eventType": "AwsServiceEvent",
        "userIdentity": {"accountId": "123456789012", "invokedBy": "AWS Internal"},
        "serviceEventDetails": {"repositoryName": "web", "lifecycleEventImageActions": actions}
    });
    let r = h.handle(&ev, &now(100)).await.unwrap();
    let restored = r
        .decisions
        .iter()
        .filter(|d| d.outcome == Some(crate::guard::Outcome::Restored))
        .count();
    assert_eq!(restored, 200);
    assert_eq!(r.pages.len(), 1, "one page for the incident");
    let peaks = w.state().in_flight.clone();
    for op in ["ecr:PutImage", "kms:VerifyMac"] {
        let peak = peaks.get(op).map_or(0, |p| p.1);
        assert!(peak <= 8, "{op}: {peak} calls in flight at once");
        assert!(peak > 1, "{op}: the calls do run side by side ({peak})");
    }
}

#[tokio::test]
async fn two_retries_at_once_send_the_pending_page_once() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    fail_next(&w, "sns:Publish", true, "InternalError");
    let ev = delete_event("e1", "prod", "a");
    assert!(h.handle(&ev, &now(100)).await.is_err());
    assert!(w.state().pages.is_empty());
    // Every call takes a while, so the two deliveries overlap.
    w.state().latency = Some(std::time::Duration::from_millis(50));
    let at = now(200);
    let (a, b) = futures::join!(h.handle(&ev, &at), h.handle(&ev, &at));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.duplicate && b.duplicate, "{a:?} {b:?}");
    assert_eq!(
        a.pages.len() + b.pages.len(),
        1,
        "one of them sent it, the other waited and found it done"
    );
    assert_eq!(w.state().pages.len(), 1);
    assert!(w.state().ledger["e1"].done);
}

#[test]
fn an_invocations_claims_outlast_its_deadline() {
    let n = now(1_000).until(1_000_000 + 300_000);
    assert_eq!(n.lease_until, 1_300 + super::LEASE_MARGIN_SECS);
    assert_eq!(
        now(1_000).until(0).lease_until,
        1_000 + super::LEASE_MARGIN_SECS,
        "a deadline already past still leases beyond now"
    );
}

#[tokio::test]
async fn a_failed_page_and_a_failed_restore_in_one_event_are_both_retried() {
    let w = world(vec![pinned("prod", "a"), pinned("keep", "a")]);
    let h = handler(&w);
    // Two protected tags go with the image; one PutImage is throttled, the page of the other
    // cannot be sent.
    let ev = json!({
        "eventSource": "ecr.amazonaws.com", "eventName": "BatchDeleteImage", "eventID": "e2",
        "awsRegion": "eu-west-1", "userIdentity": {"arn": "arn:aws:iam::123456789012:user/bob"},
        "requestParameters": {"registryId": "123456789012", "repositoryName": "web", "imageIds": [{"imageDigest": d("a")}]},
        "responseElements": {"imageIds": [{"imageDigest": d("a")}]}
    });
    let key = RepoKey::parse(REPO).unwrap();
    w.state()
        .repos
        .get_mut(&key)
        .unwrap()
        .images
        .remove(&d("a"));
    fail_next(&w, "ecr:PutImage", true, "ThrottlingException");
    fail_next(&w, "sns:Publish", true, "InternalError");
    assert!(h.handle(&ev, &now(100)).await.unwrap_err().is_retryable());
    let restored: Vec<bool> = ["prod", "keep"]
        .iter()
        .map(|t| tag_on(&w, t).is_some())
        .collect();
    assert_eq!(
        restored.iter().filter(|r| **r).count(),
        1,
        "one restored, one throttled"
    );
    assert!(w.state().ledger["e2"].redo);
    // The retry sends the kept page and restores the other tag, paging it too.
    let r = h.handle(&ev, &now(200)).await.unwrap();
    assert_eq!(r.pages.len(), 2, "{:?}", r.pages);
    assert_eq!(tag_on(&w, "prod"), Some(d("a")));
    assert_eq!(tag_on(&w, "keep"), Some(d("a")));
    assert!(w.state().ledger["e2"].done);
    assert_eq!(w.state().pages.len(), 2);
}

#[tokio::test]
async fn a_failed_registry_read_releases_the_claim_taken_beside_it() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    w.state().faults.insert(
        "dynamodb:Query".into(),
        crate::error::CallError::transient(
            "dynamodb:Query",
            "ProvisionedThroughputExceededException",
        ),
    );
    let ev = delete_event("e3", "prod", "a");
    assert!(h.handle(&ev, &now(100)).await.unwrap_err().is_retryable());
    assert!(
        !w.state().ledger.contains_key("e3"),
        "the retry must not find it busy"
    );
    assert_eq!(h.handle(&ev, &now(101)).await.unwrap().pages.len(), 1);
}

#[tokio::test]
async fn a_claim_held_by_another_invocation_is_retried_later_and_a_stale_one_resumed() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    claimed_by_another(&w, "e1", 100);
    let ev = delete_event("e1", "prod", "a");
    assert!(matches!(
        h.handle(&ev, &now(110)).await,
        Err(crate::error::Error::Busy(_))
    ));
    // The other invocation died after restoring: the tag is in place, yet it was never paged.
    let key = RepoKey::parse(REPO).unwrap();
    w.state()
        .repos
        .get_mut(&key)
        .unwrap()
        .images
        .get_mut(&d("a"))
        .unwrap()
        .tags
        .insert("prod".into());
    let r = h
        .handle(&ev, &now(100 + CLAIM_LEASE_SECS + 1))
        .await
        .unwrap();
    assert_eq!(
        r.pages.len(),
        1,
        "the resumed attempt pages what the first one did"
    );
}

#[tokio::test]
async fn ignored_events_cost_nothing_and_unprotected_pushes_two_reads() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    let mut ev = delete_event("e1", "prod", "a");
    ev["errorCode"] = json!("AccessDenied");
    assert!(h.handle(&ev, &now(1)).await.unwrap().ignored.is_some());
    assert!(take_calls(&w).is_empty());
    let push = json!({"detail-type": "ECR Image Action", "source": "aws.ecr", "id": "p1", "account": "123456789012", "region": "eu-west-1",
        "detail": {"result": "SUCCESS", "action-type": "PUSH", "repository-name": "web", "image-digest": d("b"), "image-tag": "dev"}});
    assert!(h.handle(&push, &now(1)).await.unwrap().decisions.is_empty());
    assert_eq!(
        take_calls(&w),
        ["dynamodb:Query", "dynamodb:Query"],
        "the repository's items and the rules, together"
    );
}

#[tokio::test]
async fn invalid_items_are_reported_and_do_not_hide_the_others() {
    let w = world(vec![
        pinned("prod", "a"),
        json!({"repository": REPO, "tag": "bad", "on_move": "sideways"}),
    ]);
    let r = handler(&w)
        .handle(&delete_event("e1", "prod", "a"), &now(1))
        .await
        .unwrap();
    assert_eq!(r.invalid_entries.len(), 1);
    assert!(r.invalid_entries[0].problems[0].contains("sideways"));
    assert_eq!(r.pages.len(), 1);
    assert_eq!(tag_on(&w, "prod"), Some(d("a")));
}

#[tokio::test]
async fn a_pin_is_only_written_over_the_digest_it_was_read_with() {
    let w = world(vec![
        pinned("prod", "a"),
        json!({"repository": REPO, "tag": "qa"}),
    ]);
    let key = RepoKey::parse(REPO).unwrap();
    let new_pin = Pin {
        digest: d("b"),
        manifest: None,
        children: vec![],
        pinned_by: Some("t".into()),
        pinned_at: None,
        mac: None,
    };
    assert!(
        !w.set_pin(&key, "prod", Some(&d("b")), Some(&new_pin))
            .await
            .unwrap(),
        "changed meanwhile"
    );
    assert!(
        !w.set_pin(&key, "prod", None, Some(&new_pin)).await.unwrap(),
        "already pinned"
    );
    assert!(
        !w.set_pin(&key, "missing", None, Some(&new_pin))
            .await
            .unwrap(),
        "no such item"
    );
    assert_eq!(
        w.state().items[&(REPO.to_string(), "prod".to_string())]["digest"],
        json!(d("a"))
    );
    assert!(w
        .set_pin(&key, "prod", Some(&d("a")), Some(&new_pin))
        .await
        .unwrap());
    let item = w.state().items[&(REPO.to_string(), "prod".to_string())].clone();
    assert_eq!(item["digest"], json!(d("b")));
    assert!(
        item.get("manifest").is_none(),
        "the old manifest does not stay with the new digest"
    );
    assert!(w.set_pin(&key, "qa", None, Some(&new_pin)).await.unwrap());
    assert!(
        w.set_pin(&key, "qa", Some(&d("b")), None).await.unwrap(),
        "released"
    );
    assert!(w.state().items[&(REPO.to_string(), "qa".to_string())]
        .get("digest")
        .is_none());
    assert!(matches!(
        w.claim("fresh", 1, 361).await.unwrap(),
        Claim::Fresh
    ));
}
