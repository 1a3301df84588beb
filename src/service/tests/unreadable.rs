//! Events the guard cannot carry through: unreadable ones paged once and truly, a delivery
//! that finds its event in hand, ECR that cannot be read before a restore.

use super::*;

#[tokio::test]
async fn an_unreadable_event_is_paged_once_and_a_failed_page_is_worth_a_retry() {
    let w = world(vec![]);
    let h = handler(&w);
    let ev = json!({"id": "bad-1", "detail-type": "ECR Image Action", "source": "aws.ecr", "detail": {}});
    let bad = || crate::error::Error::BadEvent(crate::events::ParseError("no image-digest".into()));
    fail_next(&w, "sns:Publish", false, "AuthorizationError");
    let err = h.page_unreadable(&ev, &bad(), &now(100)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(w.state().pages.is_empty());
    h.page_unreadable(&ev, &bad(), &now(101)).await.unwrap();
    h.page_unreadable(&ev, &bad(), &now(102)).await.unwrap();
    let pages = &w.state().pages;
    assert_eq!(pages.len(), 1, "once per event");
    assert_eq!(pages[0].attributes["action"], "unreadable");
    assert!(pages[0].message.contains("no image-digest"));
    assert!(pages[0].message.contains("bad-1"));
}

#[tokio::test]
async fn an_event_read_and_then_stopped_is_never_paged_as_unreadable() {
    let w = world(vec![]);
    let h = handler(&w);
    let ev = delete_event("e-stopped", "prod", "a");
    let refused = crate::error::Error::Call(crate::error::CallError::fatal(
        "ecr:PutImage",
        "AccessDeniedException: not authorized",
    ));
    h.page_unreadable(&ev, &refused, &now(100)).await.unwrap();
    let pages = &w.state().pages;
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].attributes["action"], "not_handled");
    assert_eq!(pages[0].attributes["severity"], "high");
    assert!(
        !pages[0].subject.contains("could not be read"),
        "{}",
        pages[0].subject
    );
    assert!(
        pages[0].message.contains("AccessDeniedException"),
        "{}",
        pages[0].message
    );
    assert!(
        pages[0].message.contains("replay --aws"),
        "{}",
        pages[0].message
    );
}

#[tokio::test]
async fn an_event_is_marked_done_only_after_its_page_went_out() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    fail_next(&w, "sns:Publish", true, "ServiceUnavailable");
    let ev = delete_event("e9", "prod", "a");
    assert!(h.handle(&ev, &now(100)).await.is_err());
    let record = w.state().ledger["e9"].clone();
    assert!(!record.done, "not done: the page is still to go");
    assert_eq!(record.pending.len(), 1);
}

#[tokio::test]
async fn a_delivery_that_finds_its_event_in_hand_waits_and_stays_quiet() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    // Another invocation claimed the event a moment ago...
    claimed_by_another(&w, "e1", 100);
    let ev = delete_event("e1", "prod", "a");
    // ...and finishes it while this delivery waits.
    let other = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        w.state().ledger.get_mut("e1").unwrap().done = true;
    };
    let at = now(101);
    let (r, ()) = tokio::join!(h.handle(&ev, &at), other);
    let r = r.expect("a duplicate is not a failed invocation");
    assert!(r.duplicate);
    assert!(r.pages.is_empty());
    assert!(w.state().pages.is_empty(), "nothing sent twice");
}

#[tokio::test]
async fn when_ecr_cannot_be_read_before_a_restore_the_guard_pages_and_writes_nothing() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    fail_next(&w, "ecr:BatchGetImage", false, "AccessDeniedException: no");
    let r = h
        .handle(&delete_event("e1", "prod", "a"), &now(100))
        .await
        .unwrap();
    assert_eq!(r.decisions[0].decision.action, crate::guard::Action::Alert);
    assert!(
        r.decisions[0]
            .decision
            .why
            .contains("AccessDeniedException"),
        "{}",
        r.decisions[0].decision.why
    );
    assert!(!take_calls(&w).contains(&"ecr:PutImage".to_string()));
    assert_eq!(w.state().pages[0].attributes["action"], "alert");
    assert_eq!(tag_on(&w, "prod"), None);
}

#[tokio::test]
async fn a_throttled_read_before_a_restore_is_retried_with_the_claim_released() {
    let w = world(vec![pinned("prod", "a")]);
    let h = handler(&w);
    fail_next(&w, "ecr:BatchGetImage", true, "ThrottlingException");
    let ev = delete_event("e1", "prod", "a");
    let err = h.handle(&ev, &now(100)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(!w.state().ledger.contains_key("e1"), "claim released");
    assert!(w.state().pages.is_empty());
    let r = h.handle(&ev, &now(101)).await.unwrap();
    assert_eq!(r.pages.len(), 1);
    assert_eq!(tag_on(&w, "prod"), Some(d("a")));
}
