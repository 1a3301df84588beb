//! The item commands (`protect`, `unprotect`, `edit`, `restore` by hand) and the one way guard
//! tags leave images, on the embedded world. Compiled only under #[cfg(test)].

use serde_json::{json, Value};

use super::protect::{edit, protect, unprotect, CommandError, ItemFields, ProtectHow};
use super::tests::{body, d, hand_pinned, handler, now, pinned, tag_on, world, REPO};
use crate::guard::{Leave, Outcome};
use crate::memory::{Image, Memory};
use crate::ports::Images;
use crate::registry::{keep_tag, RepoKey, DEFAULT_KEEP_PREFIX};

fn repo() -> RepoKey {
    RepoKey::parse(REPO).unwrap()
}

fn keep(name: &str) -> String {
    keep_tag(DEFAULT_KEEP_PREFIX, &d(name)).unwrap()
}

fn settings() -> crate::guard::Scope {
    handler(&world(vec![])).scope
}

/// Adds image `name` with `tags` (moving them off other images, as a push does).
fn put(w: &Memory, name: &str, tags: &[&str]) {
    let mut s = w.state();
    let r = s.repos.get_mut(&repo()).unwrap();
    for im in r.images.values_mut() {
        for t in tags {
            im.tags.remove(*t);
        }
    }
    let im = r.images.entry(d(name)).or_insert_with(|| Image {
        manifest: Some(body(name)),
        media_type: Some("m".into()),
        ..Image::default()
    });
    im.tags.extend(tags.iter().map(|t| t.to_string()));
}

fn remove_tag(w: &Memory, tag: &str) {
    let mut s = w.state();
    let r = s.repos.get_mut(&repo()).unwrap();
    for im in r.images.values_mut() {
        im.tags.remove(tag);
    }
}

fn exists(w: &Memory, name: &str) -> bool {
    w.state().repos[&repo()].images.contains_key(&d(name))
}

fn tags_of(w: &Memory, name: &str) -> Vec<String> {
    w.state().repos[&repo()].images[&d(name)]
        .tags
        .iter()
        .cloned()
        .collect()
}

fn item(w: &Memory, tag: &str) -> Option<Value> {
    w.state()
        .items
        .get(&(REPO.to_string(), tag.to_string()))
        .cloned()
}

fn refused(r: Result<impl std::fmt::Debug, CommandError>) -> String {
    match r {
        Err(CommandError::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// `prod` protected on image `a` (its keep-alive tag on it), `b` tagged `other`.
async fn protected_prod() -> Memory {
    let w = world(vec![]);
    remove_tag(&w, "keep");
    put(&w, "a", &["prod"]);
    let how = ProtectHow::default();
    protect(
        &w,
        &settings(),
        &repo(),
        "prod",
        &ItemFields::default(),
        how,
        &now(1),
    )
    .await
    .unwrap();
    assert_eq!(tag_on(&w, &keep("a")), Some(d("a")));
    w
}

#[tokio::test]
async fn protect_force_refuses_a_tag_off_its_pin_and_accept_current_keeps_the_old_image() {
    let w = protected_prod().await;
    put(&w, "c", &["prod"]);
    let force = ProtectHow {
        force: true,
        ..ProtectHow::default()
    };
    let owner = ItemFields {
        owner: Some("team-web-2".into()),
        ..ItemFields::default()
    };
    let why = refused(protect(&w, &settings(), &repo(), "prod", &owner, force, &now(2)).await);
    assert!(
        why.contains("is not on its pin") && why.contains(&d("c")) && why.contains(&d("a")),
        "{why}"
    );
    assert!(
        why.contains("--accept-current") && why.contains("restore"),
        "{why}"
    );
    assert_eq!(
        item(&w, "prod").unwrap()["digest"],
        json!(d("a")),
        "nothing written"
    );
    assert_eq!(
        tag_on(&w, &keep("a")),
        Some(d("a")),
        "the known-good image keeps its guard tag"
    );

    let accept = ProtectHow {
        accept_current: true,
        ..ProtectHow::default()
    };
    let p = protect(&w, &settings(), &repo(), "prod", &owner, accept, &now(3))
        .await
        .unwrap();
    assert_eq!(p.entry.digest(), Some(d("c").as_str()));
    assert_eq!(p.replaced, Some(d("a")));
    assert_eq!(item(&w, "prod").unwrap()["owner"], "team-web-2");
    assert!(exists(&w, "a"), "the previous image stays in ECR");
    assert!(
        tags_of(&w, "a").is_empty(),
        "untagged, as ECR leaves an image whose tag moved"
    );
    assert!(
        matches!(&p.released[..], [(t, Leave::Carry { .. })] if *t == keep("a")),
        "{:?}",
        p.released
    );
    assert_eq!(tag_on(&w, &keep("c")), Some(d("c")));
}

#[tokio::test]
async fn unprotect_of_a_missing_tag_refuses_and_force_leaves_the_image() {
    let w = protected_prod().await;
    remove_tag(&w, "prod");
    let why = refused(unprotect(&w, &settings(), &repo(), "prod", false, &now(2)).await);
    assert!(
        why.contains("missing from ECR") && why.contains(&d("a")),
        "{why}"
    );
    assert!(why.contains("restore") && why.contains("--force"), "{why}");
    assert!(item(&w, "prod").is_some(), "the item is kept");

    let u = unprotect(&w, &settings(), &repo(), "prod", true, &now(3))
        .await
        .unwrap();
    assert!(u.was_missing);
    assert!(item(&w, "prod").is_none());
    assert!(exists(&w, "a"), "the image the item held stays in ECR");
    assert!(
        tags_of(&w, "a").is_empty(),
        "carried off onto `other`'s image, untagged"
    );
    assert_eq!(
        tags_of(&w, "b"),
        vec!["other".to_string()],
        "the carrier keeps only its own tag"
    );
}

#[tokio::test]
async fn with_nothing_to_carry_it_a_guard_tag_is_retired_noted_and_let_go_of_later() {
    let w = protected_prod().await;
    remove_tag(&w, "other");
    remove_tag(&w, "prod");
    // The only tagged image left is the pin, held by its guard tag alone.
    let u = unprotect(&w, &settings(), &repo(), "prod", true, &now(2))
        .await
        .unwrap();
    assert!(
        matches!(&u.released[..], [(_, Leave::Retire { .. })]),
        "{:?}",
        u.released
    );
    assert_eq!(
        tag_on(&w, &keep("a")),
        Some(d("a")),
        "kept: removing it would delete the image"
    );
    assert!(
        w.state().guard_tag_repos.contains(REPO),
        "noted for reconcile"
    );
    // An image with a tag of its own arrives: reconcile lets go of the retired tag once it
    // has seen it for the grace period.
    put(&w, "c", &["new"]);
    let h = handler(&w);
    let grace = h.tuning.grace_secs;
    let first = h.reconcile(&now(100), &w, &mut |_, _, _| {}).await.unwrap();
    assert!(first.guard_tags.is_empty(), "{:?}", first.guard_tags);
    let later = h
        .reconcile(&now(100 + grace), &w, &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(later.guard_tags.len(), 1, "{:?}", later.guard_tags);
    assert!(exists(&w, "a") && tags_of(&w, "a").is_empty());
    assert_eq!(tags_of(&w, "c"), vec!["new".to_string()]);
    assert!(
        !w.state().guard_tag_repos.contains(REPO),
        "nothing left to come back for"
    );
}

#[tokio::test]
async fn in_an_immutable_repository_a_released_guard_tag_is_retired_not_deleted() {
    let w = protected_prod().await;
    w.state().repos.get_mut(&repo()).unwrap().immutable = true;
    remove_tag(&w, "prod");
    let released =
        super::keep::release_guard_tags(&w, &repo(), &[keep("a")], None, DEFAULT_KEEP_PREFIX).await;
    assert!(
        matches!(&released[..], [(_, Leave::Retire { why, .. })] if why.contains("immutable")),
        "{released:?}"
    );
    assert!(exists(&w, "a"));
}

#[tokio::test]
async fn edit_changes_settings_and_never_the_pin_or_its_seal() {
    let w = protected_prod().await;
    let before = item(&w, "prod").unwrap();
    let fields = ItemFields {
        owner: Some("team-web-2".into()),
        severity: Some("critical".into()),
        ..ItemFields::default()
    };
    let e = edit(&w, &repo(), "prod", &fields, &now(2)).await.unwrap();
    let mut names: Vec<&str> = e.changed.iter().map(|(k, _)| k.as_str()).collect();
    names.sort();
    assert_eq!(names, ["owner", "severity"]);
    let after = item(&w, "prod").unwrap();
    for f in ["digest", "manifest", "pin_mac", "pinned_at", "pinned_by"] {
        assert_eq!(after[f], before[f], "{f}");
    }
    assert_eq!(after["owner"], "team-web-2");
    let again = edit(&w, &repo(), "prod", &fields, &now(3)).await.unwrap();
    assert!(
        again.changed.is_empty(),
        "the same settings again change nothing"
    );
    let why = refused(edit(&w, &repo(), "prod", &ItemFields::default(), &now(4)).await);
    assert!(why.contains("nothing to change"), "{why}");
    let bad = ItemFields {
        severity: Some("urgent".into()),
        ..ItemFields::default()
    };
    let why = refused(edit(&w, &repo(), "prod", &bad, &now(5)).await);
    assert!(why.contains("nothing changed"), "{why}");
    assert_eq!(
        item(&w, "prod").unwrap(),
        after,
        "a bad value is not written"
    );
    let why = refused(edit(&w, &repo(), "nope", &fields, &now(6)).await);
    assert!(why.contains("is not protected"), "{why}");
}

#[tokio::test]
async fn restore_by_hand_puts_the_tag_back_pages_low_and_records_it() {
    let w = world(vec![pinned("prod", "a")]);
    remove_tag(&w, "keep");
    let mut h = handler(&w);
    h.dry_run = true;
    let plan = h
        .restore_by_hand(
            &repo(),
            "prod",
            "arn:aws:iam::123456789012:user/oncall",
            &now(1),
        )
        .await
        .unwrap();
    assert_eq!(plan.decision.action.name(), "restore");
    assert!(plan.outcome.is_none());
    assert_eq!(tag_on(&w, "prod"), None, "a dry run writes nothing");
    assert!(w.state().pages.is_empty());

    h.dry_run = false;
    let done = h
        .restore_by_hand(
            &repo(),
            "prod",
            "arn:aws:iam::123456789012:user/oncall",
            &now(2),
        )
        .await
        .unwrap();
    assert_eq!(done.outcome, Some(Outcome::Restored));
    assert_eq!(tag_on(&w, "prod"), Some(d("a")));
    assert_eq!(
        tag_on(&w, &keep("a")),
        Some(d("a")),
        "with its keep-alive tag"
    );
    let pages = w.state().pages.clone();
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].attributes["severity"], "low");
    assert!(
        pages[0]
            .message
            .contains("restored by hand by arn:aws:iam::123456789012:user/oncall"),
        "{}",
        pages[0].message
    );
    let history = w.state().history.clone();
    assert!(history
        .iter()
        .any(|r| r.tag == "prod" && r.outcome.as_str() == "restored"));
    // On its pin already: nothing to do.
    let again = h
        .restore_by_hand(&repo(), "prod", "x", &now(3))
        .await
        .unwrap();
    assert_eq!(again.decision.action.name(), "nothing");
}

#[tokio::test]
async fn restore_by_hand_refuses_a_pin_the_guard_cannot_vouch_for() {
    let w = world(vec![hand_pinned("prod", "a")]);
    remove_tag(&w, "keep");
    let h = handler(&w);
    let why = refused(h.restore_by_hand(&repo(), "prod", "x", &now(1)).await);
    assert!(why.contains("cannot vouch"), "{why}");
    assert_eq!(tag_on(&w, "prod"), None, "nothing pushed");
    let why = refused(h.restore_by_hand(&repo(), "gone", "x", &now(1)).await);
    assert!(why.contains("is not protected"), "{why}");
}

#[tokio::test]
async fn a_followed_deploy_leaves_the_previous_image_untagged() {
    let w = world(vec![pinned("prod", "a")]);
    remove_tag(&w, "keep");
    put(&w, "a", &[&keep("a")]);
    let mut e = crate::memory::seal_item(&hand_pinned("prod", "a"));
    e["on_move"] = json!("follow");
    w.state().items.insert((REPO.into(), "prod".into()), e);
    // The deploy moves prod to c; a's only tag left is the guard's.
    put(&w, "c", &["prod"]);
    let ev = json!({
        "eventSource": "ecr.amazonaws.com", "eventName": "PutImage", "eventID": "deploy-1",
        "awsRegion": "eu-west-1", "eventTime": "2026-01-01T00:00:00Z",
        "userIdentity": {"arn": "arn:aws:iam::123456789012:user/ci"},
        "requestParameters": {"registryId": "123456789012", "repositoryName": "web", "imageTag": "prod", "imageManifest": body("c")},
        "responseElements": {"image": {"imageId": {"imageDigest": d("c"), "imageTag": "prod"}, "imageManifest": body("c")}}
    });
    let report = handler(&w).handle(&ev, &now(5)).await.unwrap();
    assert_eq!(report.decisions[0].outcome, Some(Outcome::Followed));
    assert!(
        exists(&w, "a"),
        "the previous deployment's image is still there"
    );
    assert!(tags_of(&w, "a").is_empty());
    assert_eq!(tags_of(&w, "c"), vec![keep("c"), "prod".to_string()]);
    // What is left in ECR matches the listing the guard planned on.
    let listing = w.list(&repo()).await.unwrap().unwrap();
    assert!(listing.iter().all(|i| !i.tags.contains(&keep("a"))));
}

#[tokio::test]
async fn restore_by_hand_moves_a_moved_tag_back_and_leaves_the_other_image() {
    let w = protected_prod().await;
    put(&w, "c", &["prod"]);
    let h = handler(&w);
    let done = h
        .restore_by_hand(
            &repo(),
            "prod",
            "arn:aws:iam::123456789012:user/oncall",
            &now(2),
        )
        .await
        .unwrap();
    assert_eq!(done.decision.action.name(), "revert");
    assert_eq!(done.outcome, Some(Outcome::Restored));
    assert_eq!(tag_on(&w, "prod"), Some(d("a")));
    assert!(
        exists(&w, "c") && tags_of(&w, "c").is_empty(),
        "the other image stays, untagged"
    );
    let pages = w.state().pages.clone();
    assert_eq!(pages.len(), 1);
    assert!(
        pages[0].subject.contains("reverted by hand"),
        "{}",
        pages[0].subject
    );
}

#[tokio::test]
async fn the_conditional_writes_refuse_a_pin_that_changed() {
    use crate::ports::Items;
    let w = protected_prod().await;
    let before = item(&w, "prod").unwrap();
    let mut edited = before.clone();
    edited["owner"] = json!("someone");
    assert!(
        !w.replace_item(&edited, Some(&d("c"))).await.unwrap(),
        "another pin"
    );
    assert!(
        !w.replace_item(&edited, None).await.unwrap(),
        "not pinned: it is"
    );
    assert!(!w.delete_pinned(REPO, "prod", Some(&d("c"))).await.unwrap());
    assert_eq!(item(&w, "prod").unwrap(), before, "nothing written");
    assert!(w.replace_item(&edited, Some(&d("a"))).await.unwrap());
    assert!(w.delete_pinned(REPO, "prod", Some(&d("a"))).await.unwrap());
    assert!(item(&w, "prod").is_none());
}
