//! One guard for several accounts by role, through the binary against moto (which maps an
//! assumed role's credentials to the role's account): `protect` of a member account's tag,
//! `status` of it, and a delete there restored by `replay --aws`, all with the guard's own
//! credentials assuming `TAG_GUARD_MEMBER_ROLE` in the member account.

use std::process::Output;

use crate::util::*;
use serde_json::json;

const MEMBER: &str = "210987654321";

/// The binary with the guard account's credentials (moto's default account for them) and the
/// member role named.
fn run(guard: &World, url: &str, args: &[&str]) -> Output {
    binary_on_moto(url)
        .env("TAG_GUARD_TABLE", &guard.table)
        .env("TAG_GUARD_TOPIC_ARN", &guard.topic_arn)
        .env("TAG_GUARD_PIN_KEY", &guard.pin_key)
        .env("TAG_GUARD_MEMBER_ROLE", "ecr-tag-guard-member")
        .args(args)
        .output()
        .expect("run")
}

#[tokio::test]
async fn a_member_accounts_tag_is_protected_checked_and_restored_through_its_role() {
    let Some(guard) = World::in_account_named("123456789012", "member").await else {
        return;
    };
    let Some(member) = World::in_account(MEMBER).await else {
        return;
    };
    let url = World::url().expect("moto");
    member.create_repo("web", false).await;
    let d = member
        .push("web", &manifest("member"), DOCKER, Some("prod"))
        .await;
    let target = format!("{MEMBER}/{REGION}/web:prod");

    // Without the role the member's repository cannot be seen with the guard's credentials.
    let o = binary_on_moto(&url)
        .args([
            "protect",
            &target,
            "--table",
            &guard.table,
            "--pin-key",
            &guard.pin_key,
        ])
        .output()
        .expect("run");
    assert!(!o.status.success(), "{}", output_text(&o));
    assert!(
        output_text(&o).contains("does not exist"),
        "{}",
        output_text(&o)
    );

    let o = run(&guard, &url, &["protect", &target]);
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(
        output_text(&o).contains(&format!("protected {target} at {d}")),
        "{}",
        output_text(&o)
    );
    // The item is in the guard's table; the keep-alive tag in the member's repository.
    let item = guard
        .item_at(&member.repo("web"), "prod")
        .await
        .expect("item");
    assert_eq!(item["digest"], d.as_str());
    let keep = format!("etg-keep-{}", &d[7..23]);
    assert_eq!(
        member.digest_of("web", &keep).await.as_deref(),
        Some(d.as_str())
    );

    let o = run(&guard, &url, &["status"]);
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(
        output_text(&o).contains(&format!("ok                     {target}")),
        "{}",
        output_text(&o)
    );

    // A delete in the member account, replayed as its event: put back there.
    let event = member.delete_by(user(&member, "bob"), "web", "prod").await;
    member.expect_tag("web", "prod", None).await;
    let dir = std::env::temp_dir().join(format!("etg-member-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("delete.json");
    std::fs::write(&file, event.to_string()).expect("event");
    let o = run(
        &guard,
        &url,
        &["replay", "--aws", file.to_str().expect("path")],
    );
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(
        output_text(&o).contains("-> restore -> restored"),
        "{}",
        output_text(&o)
    );
    member.expect_tag("web", "prod", Some(&d)).await;
    // Paged in the guard account, naming the member's repository.
    let pages = guard.expect_pages(&["restored"]).await;
    assert_eq!(
        pages[0]["MessageAttributes"]["repository"]["Value"],
        json!(format!("{MEMBER}/{REGION}/web"))
    );
    let _ = std::fs::remove_dir_all(&dir);
}
