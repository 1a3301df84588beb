//! Registration from the registry table's stream, and pattern rules on a push.

use super::*;

#[tokio::test]
async fn a_bare_item_written_by_hand_is_pinned_from_its_stream_record() {
    let bare = json!({"repository": REPO, "tag": "keep", "owner": "team"});
    let w = world(vec![bare.clone()]);
    let r = register(&w, &stream_event(&[("100", "INSERT", bare)])).await;
    assert_eq!(r.records[0].outcome, "pinned");
    assert!(r.failures.is_empty());
    let it = item(&w, "keep");
    assert_eq!(it["digest"], json!(d("a")));
    assert_eq!(it["manifest"], json!(body("a")));
    assert_eq!(it["pinned_by"], "ecr-tag-guard (pinned on registration)");
    assert_eq!(it["owner"], "team", "the user's fields stay");
    let keep = crate::registry::keep_tag("etg-keep-", &d("a")).unwrap();
    assert_eq!(tag_on(&w, &keep), Some(d("a")), "keep-alive tag");
    assert_eq!(w.state().history[0].action.as_str(), "pin");
    assert!(w.state().pages.is_empty(), "a pin is not paged");

    // The guard's own write comes back as a record: nothing to do, no call.
    take_calls(&w);
    let r = register(&w, &stream_event(&[("101", "MODIFY", it)])).await;
    assert_eq!(r.records[0].outcome, "skipped: already pinned and sealed");
    assert_eq!(
        take_calls(&w),
        ["dynamodb:GetItem", "kms:VerifyMac"],
        "read back and checked, nothing written: no loop"
    );
}

#[tokio::test]
async fn a_missing_tag_is_marked_and_paged_once() {
    let bare = json!({"repository": REPO, "tag": "nope"});
    let w = world(vec![bare.clone()]);
    let r = register(&w, &stream_event(&[("100", "INSERT", bare.clone())])).await;
    assert_eq!(r.records[0].outcome, "not found");
    let marked = item(&w, "nope");
    assert_eq!(marked["not_found_at"], "2026-01-01T00:00:00Z");
    assert_eq!(w.state().pages.len(), 1);
    let page = w.state().pages[0].clone();
    assert_eq!(page.attributes["severity"], "low");
    assert_eq!(page.attributes["action"], "not_found");
    // The mark's own record, and the same item written again: no second page, no retry.
    let r = register(&w, &stream_event(&[("101", "MODIFY", marked)])).await;
    assert!(r.records[0]
        .outcome
        .starts_with("skipped: marked not found"));
    w.state()
        .items
        .insert((REPO.to_string(), "nope".to_string()), bare.clone());
    let r = register(&w, &stream_event(&[("102", "MODIFY", bare)])).await;
    assert_eq!(r.records[0].outcome, "not found");
    assert_eq!(w.state().pages.len(), 1, "paged once per item");
    // Status reads it as what it is.
    let entry = crate::registry::parse_item(&item(&w, "nope")).unwrap();
    assert_eq!(
        crate::guard::status::standing(
            &entry,
            Some(Err("ImageNotFound")),
            crate::guard::status::Storage::Standard,
            false
        ),
        crate::guard::status::TagState::TagNotFound
    );
}

#[tokio::test]
async fn one_bad_record_neither_blocks_nor_reruns_the_others() {
    let good = json!({"repository": REPO, "tag": "keep"});
    let other = json!({"repository": REPO, "tag": "other"});
    let invalid = json!({"repository": REPO, "tag": "bad", "on_move": "sideways"});
    let history =
        json!({"repository": format!("history#{REPO}:keep"), "tag": "2026#x#0", "action": "pin"});
    let w = world(vec![good.clone(), other.clone(), invalid.clone()]);
    let mut event = stream_event(&[
        ("1", "INSERT", good),
        ("2", "INSERT", invalid),
        ("3", "INSERT", history),
        ("4", "REMOVE", json!({})),
        ("5", "INSERT", other),
    ]);
    event["Records"][3]["dynamodb"]
        .as_object_mut()
        .unwrap()
        .remove("NewImage");
    // ECR throttles the third read: that record, and only it, is named for a retry.
    let r = register(&w, &event).await;
    let outcomes: Vec<&str> = r.records.iter().map(|x| x.outcome.as_str()).collect();
    assert_eq!(outcomes[0], "pinned");
    assert!(
        outcomes[1].starts_with("invalid: on_move `sideways`"),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[2], "skipped: the guard's own record");
    assert_eq!(outcomes[3], "skipped: a removal");
    assert_eq!(outcomes[4], "pinned");
    assert!(r.failures.is_empty());

    let again = json!({"repository": REPO, "tag": "again"});
    w.state()
        .items
        .insert((REPO.to_string(), "again".into()), again.clone());
    fail_next(
        &w,
        "ecr:BatchGetImage",
        true,
        "ThrottlingException: slow down",
    );
    let r = register(
        &w,
        &stream_event(&[("7", "INSERT", again), ("8", "MODIFY", item(&w, "keep"))]),
    )
    .await;
    assert_eq!(r.failures, vec!["7"], "{:?}", r.records);
    assert_eq!(r.records[1].outcome, "skipped: already pinned and sealed");
}

#[test]
fn stream_records_are_read_and_their_problems_named() {
    assert!(crate::service::registration::stream_records(&json!({"detail-type": "x"})).is_none());
    assert!(crate::service::registration::stream_records(
        &json!({"Records": [{"eventSource": "aws:sqs"}]})
    )
    .is_none());
    let got = crate::service::registration::stream_records(&json!({"Records": [
        {"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": {"NewImage": {"a": {"S": "x"}}}},
        {"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": {"SequenceNumber": "9", "NewImage": {"a": {"Q": "x"}}}},
        {"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": {"SequenceNumber": "10", "NewImage": {
            "n": {"N": "3"}, "l": {"L": [{"S": "a"}, {"M": {"k": {"BOOL": true}}}]}, "ss": {"SS": ["x"]}}}}
    ]}))
    .unwrap();
    assert!(got[0]
        .as_ref()
        .unwrap_err()
        .1
        .contains("no dynamodb.SequenceNumber"));
    assert_eq!(
        got[1].as_ref().unwrap_err(),
        &(
            "9".to_string(),
            "Records[1]: attribute a: type Q is not read".to_string()
        )
    );
    assert_eq!(
        got[2].as_ref().unwrap().item,
        Some(json!({"n": 3, "l": ["a", {"k": true}], "ss": ["x"]}))
    );
}

#[tokio::test]
async fn registration_stores_a_missing_manifest_and_pages_a_pin_whose_image_is_gone() {
    let no_manifest = json!({"repository": REPO, "tag": "keep", "digest": d("a")});
    // Sealed: the guard saw it under the tag before ECR lost it.
    let gone =
        crate::memory::seal_item(&json!({"repository": REPO, "tag": "old", "digest": d("z")}));
    let w = world(vec![no_manifest.clone(), gone.clone()]);
    let r = register(
        &w,
        &stream_event(&[("1", "MODIFY", no_manifest), ("2", "INSERT", gone)]),
    )
    .await;
    let outcomes: Vec<&str> = r.records.iter().map(|x| x.outcome.as_str()).collect();
    assert_eq!(outcomes, ["manifest stored", "pinned image not found"]);
    assert_eq!(item(&w, "keep")["manifest"], json!(body("a")));
    assert_eq!(w.state().history[0].action.as_str(), "store_manifest");
    assert_eq!(w.state().pages.len(), 1);
    assert_eq!(w.state().pages[0].attributes["action"], "not_found");
    assert_eq!(item(&w, "old").get("manifest"), None, "nothing invented");
}

#[tokio::test]
async fn a_rule_push_that_cannot_list_the_images_is_retried_and_an_invalid_rule_never_stops_it() {
    let rule = json!({"repository": "rule#", "tag": "rel", "repositories": REPO, "pattern": "^rel-", "keep": 1});
    let broken = json!({"repository": "rule#", "tag": "broken", "repositories": REPO, "pattern": "(", "keep": 1});
    let w = world(vec![rule, broken]);
    let h = handler(&w);
    let ev = push_event("p1", "rel-1", "c", &w, 10);
    fail_next(
        &w,
        "ecr:DescribeImages",
        true,
        "ThrottlingException: slow down",
    );
    let err = h.handle(&ev, &now(1)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        w.state().ledger.is_empty(),
        "nothing claimed for the retry to trip on"
    );
    let r = h.handle(&ev, &now(2)).await.unwrap();
    assert_eq!(
        r.invalid_entries
            .iter()
            .map(|b| b.key.as_str())
            .collect::<Vec<_>>(),
        ["rule#:broken"]
    );
    let changes: Vec<(&str, &str)> = r
        .rule_changes
        .iter()
        .map(|c| (c.tag.as_str(), c.change.as_str()))
        .collect();
    assert_eq!(changes, [("rel-1", "pinned")]);
    assert_eq!(item(&w, "rel-1")["rule"], "rel");
    // The next build releases it: keep 1.
    let r = h
        .handle(&push_event("p2", "rel-2", "d", &w, 20), &now(3))
        .await
        .unwrap();
    let changes: Vec<(&str, &str)> = r
        .rule_changes
        .iter()
        .map(|c| (c.tag.as_str(), c.change.as_str()))
        .collect();
    assert_eq!(changes, [("rel-2", "pinned"), ("rel-1", "released")]);
    assert!(!w
        .state()
        .items
        .contains_key(&(REPO.to_string(), "rel-1".to_string())));
}

#[tokio::test]
async fn registration_completes_a_sealed_pin_once_and_its_own_write_does_not_loop() {
    // The guard's own pin without manifest (a follow whose image ECR had lost meanwhile).
    let own =
        crate::memory::seal_item(&json!({"repository": REPO, "tag": "keep", "digest": d("a"),
        "pinned_by": "ecr-tag-guard (followed the move)"}));
    let w = world(vec![own.clone()]);
    take_calls(&w);
    let r = register(&w, &stream_event(&[("1", "MODIFY", own)])).await;
    assert_eq!(r.records[0].outcome, "manifest stored");
    assert_eq!(item(&w, "keep")["manifest"], json!(body("a")));
    take_calls(&w);
    // The write comes back as a record: read back and checked, nothing written.
    let again = register(&w, &stream_event(&[("2", "MODIFY", item(&w, "keep"))])).await;
    assert_eq!(
        again.records[0].outcome,
        "skipped: already pinned and sealed"
    );
    assert_eq!(
        take_calls(&w),
        ["dynamodb:GetItem", "kms:VerifyMac"],
        "no loop through the stream"
    );
}
