//! The guard pushes only what it saw itself: pins written or edited behind its back, pins
//! sealed with another key, forged stream records and hostile event text, on the embedded
//! world. Compiled only under #[cfg(test)].

use serde_json::{json, Value};

use super::tests::*;
use crate::registry::RepoKey;

/// Moves `tag` onto image `name` in the world (as a push does), leaving other images.
fn move_tag(w: &crate::memory::Memory, tag: &str, name: &str) {
    let repo = RepoKey::parse(REPO).unwrap();
    let mut s = w.state();
    let r = s.repos.get_mut(&repo).unwrap();
    for im in r.images.values_mut() {
        im.tags.remove(tag);
    }
    r.images.get_mut(&d(name)).unwrap().tags.insert(tag.into());
}

fn page_actions(w: &crate::memory::Memory) -> Vec<String> {
    w.state()
        .pages
        .iter()
        .map(|p| p.attributes["action"].clone())
        .collect()
}

#[tokio::test]
async fn a_hand_written_pin_elsewhere_steers_no_push_on_a_delete_a_move_or_reconcile() {
    // `keep` sits on image a; the item, written by hand, pins it to image b.
    let w = world(vec![hand_pinned("keep", "b")]);
    let h = handler(&w);
    assert!(
        item(&w, "keep").get("pin_mac").is_none(),
        "nothing seals it"
    );
    // An ordinary re-push of `keep` (onto c) is not "reverted" onto b.
    let ev = push_event("p1", "keep", "c", &w, 10);
    move_tag(&w, "keep", "c");
    let r = h.handle(&ev, &now(100)).await.unwrap();
    assert_eq!(
        r.decisions[0].outcome.as_ref().unwrap().name(),
        "untrusted_pin"
    );
    assert_eq!(tag_on(&w, "keep"), Some(d("c")), "not moved");
    // Reconcile finds the drift and does not act on it either; the problem is paged once.
    let rec = h
        .reconcile(&now(200), &w.clone(), &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(
        rec.repairs[0].outcome.as_ref().unwrap().name(),
        "untrusted_pin"
    );
    assert_eq!(tag_on(&w, "keep"), Some(d("c")), "not moved by reconcile");
    assert!(rec.sealed.is_empty());
    // A delete is not restored onto b.
    let del = delete_event("d1", "keep", "c");
    move_tag(&w, "keep", "a");
    w.state().repos.values_mut().for_each(|r| {
        r.images.values_mut().for_each(|im| {
            im.tags.remove("keep");
        })
    });
    let r = h.handle(&del, &now(300)).await.unwrap();
    assert_eq!(
        tag_on(&w, "keep"),
        None,
        "not restored onto the hand-written pin"
    );
    // `d1` names image c, not the pin b: the guard pages without pushing.
    assert!(r.decisions[0].outcome.as_ref().unwrap().is_problem());
    assert_eq!(
        page_actions(&w),
        ["untrusted_pin", "untrusted_pin", "alert"]
    );
    let page = &w.state().pages[0];
    assert!(page.subject.contains("untrusted pin"), "{}", page.subject);
    assert!(page.message.contains("no seal"), "{}", page.message);
}

#[tokio::test]
async fn an_edited_pin_or_one_sealed_with_another_key_is_not_pushed() {
    // Sealed on image a, then the digest and manifest overwritten with image b's.
    let mut edited = pinned("keep", "a");
    edited["digest"] = json!(d("b"));
    edited["manifest"] = json!(body("b"));
    let w = world(vec![edited]);
    move_tag(&w, "keep", "a");
    let h = handler(&w);
    let rec = h
        .reconcile(&now(100), &w.clone(), &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(
        rec.repairs[0].outcome.as_ref().unwrap().name(),
        "untrusted_pin"
    );
    assert_eq!(tag_on(&w, "keep"), Some(d("a")), "reconcile moved nothing");

    // Sealed by another deployment's key: the seal is well-formed, and not ours.
    let w = world(vec![pinned("prod", "a")]);
    w.state().pin_key = Some(b"another deployment's key".to_vec());
    let r = handler(&w)
        .handle(&delete_event("e1", "prod", "a"), &now(100))
        .await
        .unwrap();
    match r.decisions[0].outcome.as_ref().unwrap() {
        crate::guard::Outcome::Untrusted { why } => assert!(why.contains("another key"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(tag_on(&w, "prod"), None);
}

#[tokio::test]
async fn a_hand_written_pin_ecr_confirms_is_sealed_by_reconcile_and_then_restored() {
    let w = world(vec![hand_pinned("prod", "a")]);
    move_tag(&w, "prod", "a");
    // Written after the world was built, so not sealed yet.
    w.state()
        .items
        .insert((REPO.into(), "prod".into()), hand_pinned("prod", "a"));
    let h = handler(&w);
    let rec = h
        .reconcile(&now(100), &w.clone(), &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(rec.sealed, [format!("{REPO}:prod")]);
    assert!(item(&w, "prod")["pin_mac"].is_string());
    // A dry run would have said so, and written nothing.
    move_tag(&w, "keep", "a");
    w.state().repos.values_mut().for_each(|r| {
        r.images.values_mut().for_each(|im| {
            im.tags.remove("prod");
        })
    });
    let r = h
        .handle(&delete_event("e1", "prod", "a"), &now(200))
        .await
        .unwrap();
    assert_eq!(r.decisions[0].outcome.as_ref().unwrap().name(), "restored");
    assert_eq!(tag_on(&w, "prod"), Some(d("a")));
}

#[tokio::test]
async fn a_dry_run_reconcile_names_the_pins_it_would_seal_and_writes_nothing() {
    let w = world(vec![]);
    move_tag(&w, "prod", "a");
    w.state()
        .items
        .insert((REPO.into(), "prod".into()), hand_pinned("prod", "a"));
    let mut h = handler(&w);
    h.dry_run = true;
    let rec = h
        .reconcile(&now(100), &w.clone(), &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(rec.sealed, [format!("{REPO}:prod")]);
    assert!(item(&w, "prod").get("pin_mac").is_none());
}

#[tokio::test]
async fn registration_seals_a_pin_ecr_confirms_and_pages_one_it_does_not() {
    let w = world(vec![]);
    let confirmed = hand_pinned("keep", "a");
    let elsewhere = hand_pinned("other", "a");
    for it in [&confirmed, &elsewhere] {
        let tag = it["tag"].as_str().unwrap().to_string();
        w.state().items.insert((REPO.into(), tag), it.clone());
    }
    let r = register(
        &w,
        &stream_event(&[("1", "INSERT", confirmed), ("2", "INSERT", elsewhere)]),
    )
    .await;
    let outcomes: Vec<&str> = r.records.iter().map(|x| x.outcome.as_str()).collect();
    assert_eq!(outcomes[0], "sealed: ECR has the tag on the pinned digest");
    assert!(
        outcomes[1].starts_with("untrusted pin: "),
        "{}",
        outcomes[1]
    );
    assert!(item(&w, "keep")["pin_mac"].is_string());
    assert!(
        item(&w, "other").get("pin_mac").is_none(),
        "left as written"
    );
    assert_eq!(page_actions(&w), ["untrusted_pin"]);
    // The same record again pages nothing more.
    let again = hand_pinned("other", "a");
    register(&w, &stream_event(&[("3", "MODIFY", again)])).await;
    assert_eq!(page_actions(&w).len(), 1, "paged once");
}

#[tokio::test]
async fn a_forged_stream_record_is_only_a_hint_the_table_decides() {
    let w = world(vec![pinned("keep", "a")]);
    let before = item(&w, "keep");
    take_calls(&w);
    // The record claims another pin and a release; the table says otherwise.
    let forged = json!({"repository": REPO, "tag": "keep", "digest": d("b"), "released_at": "2026-01-01T00:00:00Z"});
    let r = register(&w, &stream_event(&[("1", "MODIFY", forged)])).await;
    assert_eq!(r.records[0].outcome, "skipped: already pinned and sealed");
    assert_eq!(item(&w, "keep"), before, "nothing written");
    // A record of an item the table does not hold changes nothing.
    let ghost = json!({"repository": REPO, "tag": "ghost"});
    let r = register(&w, &stream_event(&[("2", "INSERT", ghost)])).await;
    assert_eq!(
        r.records[0].outcome,
        "skipped: the item is no longer in the table"
    );
    let writes: Vec<String> = take_calls(&w)
        .into_iter()
        .filter(|c| !c.ends_with("GetItem") && !c.ends_with("VerifyMac"))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(w.state().pages.is_empty());
}

/// A BatchDeleteImage record without `responseElements` whose digest is hostile text.
fn hostile_delete(digest: &str, region: &str, name: &str) -> Value {
    json!({
        "eventSource": "ecr.amazonaws.com", "eventName": "BatchDeleteImage", "eventID": "h1",
        "awsRegion": region, "eventTime": "2026-01-01T00:00:00Z",
        "userIdentity": {"arn": "arn:aws:iam::123456789012:user/mallory"},
        "requestParameters": {"registryId": "123456789012", "repositoryName": name,
            "imageIds": [{"imageTag": "keep", "imageDigest": digest}]}
    })
}

#[tokio::test]
async fn hostile_event_text_is_ignored_with_its_reason_and_never_reaches_a_page() {
    let w = world(vec![pinned("keep", "a")]);
    let h = handler(&w);
    let evil = "sha256:0123456789aé\nInjected-Header: evil";
    let r = h
        .handle(&hostile_delete(evil, "eu-west-1", "web"), &now(100))
        .await
        .unwrap();
    let why = r.ignored.expect("ignored");
    assert!(why.contains("not sha256: and 64 lowercase hex"), "{why}");
    assert!(!why.contains('\n'), "{why}");
    // A region that smuggles a path: `eu-west-1/shop` + `web` is not `shop/web`.
    let d = d("a");
    let r = h
        .handle(&hostile_delete(&d, "eu-west-1/shop", "web"), &now(100))
        .await
        .unwrap();
    assert!(r.ignored.expect("ignored").contains("region"));
    assert!(w.state().pages.is_empty());
    assert_eq!(tag_on(&w, "keep"), Some(d), "nothing touched");
}

#[tokio::test]
async fn a_hand_written_pin_is_sealed_by_a_push_of_its_own_digest_then_restored() {
    let w = world(vec![]);
    w.state()
        .items
        .insert((REPO.into(), "keep".into()), hand_pinned("keep", "a"));
    let h = handler(&w);
    // `keep` is pushed again to the image the item names: the guard sees it there.
    let ev = push_event("p1", "keep", "a", &w, 10);
    let r = h.handle(&ev, &now(100)).await.unwrap();
    assert_eq!(r.decisions[0].decision.action, crate::guard::Action::Seal);
    assert_eq!(r.decisions[0].outcome.as_ref().unwrap().name(), "pinned");
    assert!(item(&w, "keep")["pin_mac"].is_string());
    assert!(r.pages.is_empty(), "a seal is not paged");
    assert_eq!(w.state().history.last().unwrap().action.as_str(), "seal");
    // From then on it is the guard's own pin.
    w.state().repos.values_mut().for_each(|r| {
        r.images.values_mut().for_each(|im| {
            im.tags.remove("keep");
        })
    });
    let r = h
        .handle(&delete_event("d1", "keep", "a"), &now(200))
        .await
        .unwrap();
    assert_eq!(r.decisions[0].outcome.as_ref().unwrap().name(), "restored");
    assert_eq!(tag_on(&w, "keep"), Some(d("a")));
}

#[tokio::test]
async fn a_push_event_of_the_pinned_digest_seals_nothing_when_ecr_says_otherwise() {
    let w = world(vec![]);
    w.state()
        .items
        .insert((REPO.into(), "other".into()), hand_pinned("other", "a"));
    // The event claims `other` was pushed onto image a; ECR has it on image b.
    let ev = push_event("p1", "other", "a", &w, 10);
    move_tag(&w, "other", "b");
    let r = handler(&w).handle(&ev, &now(100)).await.unwrap();
    assert_eq!(
        r.decisions[0].decision.action,
        crate::guard::Action::Superseded
    );
    assert!(item(&w, "other").get("pin_mac").is_none());
}

#[tokio::test]
async fn after_the_key_is_replaced_reconcile_with_check_seals_seals_the_confirmed_pins_again() {
    let w = world(vec![pinned("keep", "a")]);
    w.state().pin_key = Some(b"the new key".to_vec());
    let mut h = handler(&w);
    let r = h
        .reconcile(&now(100), &w.clone(), &mut |_, _, _| {})
        .await
        .unwrap();
    assert!(
        r.sealed.is_empty(),
        "a sealed pin is not checked by default"
    );
    assert!(w.state().calls.iter().all(|c| c != "kms:GenerateMac"));
    h.tuning.check_seals = true;
    let r = h
        .reconcile(&now(200), &w.clone(), &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(r.sealed, [format!("{REPO}:keep")]);
    // Sealed with the new key: a restore goes through.
    w.state().repos.values_mut().for_each(|r| {
        r.images.values_mut().for_each(|im| {
            im.tags.remove("keep");
        })
    });
    let r = handler(&w)
        .handle(&delete_event("d1", "keep", "a"), &now(300))
        .await
        .unwrap();
    assert_eq!(r.decisions[0].outcome.as_ref().unwrap().name(), "restored");
}

#[tokio::test]
async fn a_pin_kms_would_not_seal_is_kept_unsealed_and_its_restore_is_paged_not_pushed() {
    let w = world(vec![json!({"repository": REPO, "tag": "fresh"})]);
    let h = handler(&w);
    // First sight of a push, with KMS refusing GenerateMac (not worth a retry).
    let ev = push_event("p1", "fresh", "a", &w, 10);
    move_tag(&w, "fresh", "a");
    fail_next(&w, "kms:GenerateMac", false, "AccessDeniedException: no");
    let r = h.handle(&ev, &now(100)).await.unwrap();
    assert_eq!(r.decisions[0].outcome.as_ref().unwrap().name(), "pinned");
    assert_eq!(
        item(&w, "fresh")["digest"],
        json!(d("a")),
        "the pin is kept"
    );
    assert!(item(&w, "fresh").get("pin_mac").is_none(), "but not sealed");
    // Its delete is not restored from an unsealed pin, and not silent either.
    w.state().repos.values_mut().for_each(|r| {
        r.images.values_mut().for_each(|im| {
            im.tags.remove("fresh");
        })
    });
    let r = h
        .handle(&delete_event("d1", "fresh", "a"), &now(200))
        .await
        .unwrap();
    assert_eq!(
        r.decisions[0].outcome.as_ref().unwrap().name(),
        "untrusted_pin"
    );
    assert_eq!(page_actions(&w), ["untrusted_pin"]);
}

#[tokio::test]
async fn a_throttled_seal_check_fails_the_event_releases_its_claim_and_the_retry_restores() {
    let w = world(vec![pinned("keep", "a")]);
    let h = handler(&w);
    w.state().repos.values_mut().for_each(|r| {
        r.images.values_mut().for_each(|im| {
            im.tags.remove("keep");
        })
    });
    let ev = delete_event("d1", "keep", "a");
    fail_next(&w, "kms:VerifyMac", true, "ThrottlingException: slow down");
    let err = h.handle(&ev, &now(100)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(tag_on(&w, "keep"), None, "nothing pushed unchecked");
    assert!(w.state().pages.is_empty());
    assert!(
        w.state().ledger.is_empty(),
        "the claim is released for the retry"
    );
    let r = h.handle(&ev, &now(101)).await.unwrap();
    assert_eq!(r.decisions[0].outcome.as_ref().unwrap().name(), "restored");
    assert_eq!(tag_on(&w, "keep"), Some(d("a")));
}

#[tokio::test]
async fn a_seal_that_is_not_even_hex_is_no_seal() {
    let mut odd = pinned("keep", "a");
    odd["pin_mac"] = json!("not hex at all\u{202e}");
    let w = world(vec![]);
    w.state().items.insert((REPO.into(), "keep".into()), odd);
    w.state().repos.values_mut().for_each(|r| {
        r.images.values_mut().for_each(|im| {
            im.tags.remove("keep");
        })
    });
    let r = handler(&w)
        .handle(&delete_event("d1", "keep", "a"), &now(100))
        .await
        .unwrap();
    match r.decisions[0].outcome.as_ref().unwrap() {
        crate::guard::Outcome::Untrusted { why } => assert_eq!(why, super::trust::FORGED),
        other => panic!("{other:?}"),
    }
    assert_eq!(tag_on(&w, "keep"), None);
}
