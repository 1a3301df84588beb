//! The global options as the AWS CLI takes them, through the binary against moto: anywhere
//! after the command name, the SDK configuration chosen by `--profile` (shared config and
//! credentials files) and `--region`, the endpoint by `--endpoint-url`.

use std::process::{Command, Output};

use crate::util::*;

/// Runs the binary with no AWS setting from the environment but `AWS_CONFIG_FILE` and
/// `AWS_SHARED_CREDENTIALS_FILE` pointing into `dir`.
fn run(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ecr-tag-guard"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AWS_CONFIG_FILE", dir.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(args)
        .output()
        .expect("run")
}

/// The run succeeded and its output says `want`.
fn expect_ok(o: &Output, want: &str) {
    let text = output_text(o);
    assert!(o.status.success(), "{text}");
    assert!(text.contains(want), "no {want:?} in:\n{text}");
}

#[tokio::test]
async fn options_go_before_or_after_the_command_and_a_profile_picks_region_and_credentials() {
    let Some(w) = World::in_account_named("123456789012", "options").await else {
        return;
    };
    let url = World::url().expect("moto");
    let dir = std::env::temp_dir().join(format!("etg-options-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("config"),
        format!("[profile guard]\nregion = {REGION}\n\n[profile elsewhere]\nregion = ap-south-1\n"),
    )
    .expect("config");
    std::fs::write(
        dir.join("credentials"),
        "[guard]\naws_access_key_id = testing\naws_secret_access_key = testing\n\n[elsewhere]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    )
    .expect("credentials");
    w.create_repo("web", false).await;
    let d = w
        .push("web", &manifest("options"), DOCKER, Some("prod"))
        .await;

    // Options after the command, the table, key and endpoint among them.
    let o = run(
        &dir,
        &[
            "protect",
            "web:prod",
            "--profile",
            "guard",
            "--endpoint-url",
            &url,
            "--table",
            &w.table,
            "--pin-key",
            &w.pin_key,
        ],
    );
    expect_ok(&o, &format!("protected {}:prod at {d}", w.repo("web")));

    // The same options before it.
    let o = run(
        &dir,
        &[
            "--profile",
            "guard",
            "--endpoint-url",
            &url,
            "--table",
            &w.table,
            "--pin-key",
            &w.pin_key,
            "status",
        ],
    );
    expect_ok(
        &o,
        &format!("ok                     {}:prod", w.repo("web")),
    );

    // Another profile's region is another registry: no such table there. `--region` wins.
    let o = run(
        &dir,
        &[
            "--profile",
            "elsewhere",
            "--endpoint-url",
            &url,
            "--table",
            &w.table,
            "list",
        ],
    );
    assert!(!o.status.success(), "{}", output_text(&o));
    assert!(
        output_text(&o).contains("ResourceNotFoundException"),
        "the table is looked for in the profile's region: {}",
        output_text(&o)
    );
    let o = run(
        &dir,
        &[
            "list",
            "--profile",
            "elsewhere",
            "--region",
            REGION,
            "--endpoint-url",
            &url,
            "--table",
            &w.table,
        ],
    );
    expect_ok(&o, "1 protected tag(s)");
    let _ = std::fs::remove_dir_all(&dir);
}
