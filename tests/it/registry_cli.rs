//! The registry commands (`registry init`, `protect`, `unprotect`, `list`, `history`,
//! `status`) with the real SDK clients against moto_server, one moto account per test.

use crate::util::*;
use ecr_tag_guard::cli::lifecycle;
use ecr_tag_guard::cli::registry::{self, FieldOptions, ProtectOptions};
use ecr_tag_guard::cli::rules;
use ecr_tag_guard::service::Now;
use serde_json::{json, Value};

fn now() -> Now {
    Now {
        epoch: 1_790_000_000,
        rfc3339: "2026-09-21T12:00:00Z".into(),
        lease_until: 1_790_000_360,
    }
}

fn text(buf: Vec<u8>) -> String {
    String::from_utf8(buf).expect("utf-8")
}

/// `protect` that must fail; its message.
async fn protect_err(w: &World, target: &str) -> String {
    let opts = ProtectOptions::default();
    match registry::protect(&w.ops(), target, &opts, &now(), &mut Vec::new()).await {
        Ok(_) => panic!("protect {target} should have been refused"),
        Err(e) => e.to_string(),
    }
}

/// `protect` with default options that must succeed; its output.
async fn protect_ok(w: &World, target: &str) -> String {
    let mut out = Vec::new();
    registry::protect(
        &w.ops(),
        target,
        &ProtectOptions::default(),
        &now(),
        &mut out,
    )
    .await
    .expect("protect");
    text(out)
}

#[tokio::test]
async fn init_creates_the_table_once_and_refuses_another_schema() {
    let Some(w) = World::new().await else { return };
    let mut ops = w.ops();
    on_table(&mut ops, "fresh-registry");
    let mut out = Vec::new();
    assert!(registry::init(&ops, &mut out).await.expect("init"));
    assert!(text(out).contains("created table fresh-registry"));
    let ttl = w
        .ddb
        .describe_time_to_live()
        .table_name("fresh-registry")
        .send()
        .await
        .expect("ttl");
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|t| t.attribute_name()),
        Some("expires_at")
    );
    let table = w
        .ddb
        .describe_table()
        .table_name("fresh-registry")
        .send()
        .await
        .expect("describe");
    let spec = table.table().and_then(|t| t.stream_specification());
    assert_eq!(
        spec.map(|s| (
            s.stream_enabled(),
            s.stream_view_type().map(|v| v.as_str().to_string())
        )),
        Some((true, Some("NEW_IMAGE".to_string()))),
        "the stream for registration"
    );
    let mut out = Vec::new();
    assert!(registry::init(&ops, &mut out).await.expect("again"));
    assert!(text(out).contains("nothing changed"));
    // A registry table made without its stream gets it, and says so.
    let attr = |n: &str| {
        aws_sdk_dynamodb::types::AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
            .build()
            .expect("attr")
    };
    let key = |n: &str, t| {
        aws_sdk_dynamodb::types::KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .expect("key")
    };
    w.ddb
        .create_table()
        .table_name("plain-registry")
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(attr("repository"))
        .attribute_definitions(attr("tag"))
        .key_schema(key("repository", aws_sdk_dynamodb::types::KeyType::Hash))
        .key_schema(key("tag", aws_sdk_dynamodb::types::KeyType::Range))
        .send()
        .await
        .expect("plain table");
    let mut plain = ops.clone();
    on_table(&mut plain, "plain-registry");
    let mut out = Vec::new();
    assert!(registry::init(&plain, &mut out).await.expect("stream"));
    assert!(text(out).contains("turned its stream on"));
    // A table of that name with another key is left alone.
    w.ddb
        .create_table()
        .table_name("other")
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .expect("attr"),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .expect("key"),
        )
        .send()
        .await
        .expect("other table");
    on_table(&mut ops, "other");
    let err = registry::init(&ops, &mut Vec::new())
        .await
        .expect_err("refused")
        .to_string();
    assert!(err.contains("another key schema (pk HASH S)"), "{err}");
}

#[tokio::test]
async fn protect_pins_the_tag_and_the_guard_restores_from_it() {
    let Some(w) = World::new().await else { return };
    w.create_repo("web", false).await;
    let m = manifest("protect-me");
    let d = w.push("web", &m, DOCKER, Some("prod")).await;
    let opts = ProtectOptions {
        fields: FieldOptions {
            severity: Some("critical".into()),
            owner: Some("team-web".into()),
            allow: vec!["arn:aws:iam::*:role/deploy".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    let mut out = Vec::new();
    // A plain name is the caller's account (moto's STS answers with the account of the request).
    assert!(
        registry::protect(&w.ops(), "web:prod", &opts, &now(), &mut out)
            .await
            .expect("protect")
    );
    assert!(text(out).contains(&format!("protected {}:prod at {d}", w.repo("web").key())));
    let item = w.item("web", "prod").await.expect("item");
    assert_eq!(item["digest"], d);
    assert_eq!(item["manifest"], m);
    assert_eq!(item["severity"], "critical");
    assert_eq!(item["allow"], json!(["arn:aws:iam::*:role/deploy"]));
    assert_eq!(item["pinned_at"], "2026-09-21T12:00:00Z");
    // Protecting again needs --force, and keeps what it is not told to change.
    let err = protect_err(&w, "web:prod").await;
    assert!(err.contains("--force"), "{err}");
    let m2 = manifest("protect-me-2");
    let d2 = w.push("web", &m2, DOCKER, Some("prod")).await;
    let force = ProtectOptions {
        force: true,
        ..Default::default()
    };
    let later = Now {
        epoch: 1_790_000_060,
        rfc3339: "2026-09-21T12:01:00Z".into(),
        lease_until: 1_790_000_420,
    };
    // --force re-pins only a tag that is on its pin; the move is accepted by name.
    let refused = registry::protect(
        &w.ops(),
        &format!("{}:prod", w.repo("web").key()),
        &force,
        &later,
        &mut Vec::new(),
    )
    .await
    .expect_err("the tag has left its pin")
    .to_string();
    assert!(refused.contains("--accept-current"), "{refused}");
    let accept = ProtectOptions {
        accept_current: true,
        ..force.clone()
    };
    registry::protect(
        &w.ops(),
        &format!("{}:prod", w.repo("web").key()),
        &accept,
        &later,
        &mut Vec::new(),
    )
    .await
    .expect("accepted");
    let item = w.item("web", "prod").await.expect("item");
    assert_eq!(item["digest"], d2);
    assert_eq!(item["owner"], "team-web", "kept");
    // The pin is real: delete the tag's image and the guard puts it back.
    w.push("web", &m2, DOCKER, Some("keep")).await;
    let ids = w.delete("web", &[(Some("prod"), None)]).await;
    let (report, _) = w
        .handle(&batch_delete(
            &w,
            user(&w, "bob"),
            "web",
            json!([{"imageTag": "prod"}]),
            ids,
        ))
        .await;
    assert_eq!(report.pages.len(), 1);
    assert_eq!(
        w.digest_of("web", "prod").await.as_deref(),
        Some(d2.as_str())
    );
    // History, newest first: the restore, the forced re-pin, the first pin.
    let mut out = Vec::new();
    registry::history(&w.ops(), "web:prod", &mut out)
        .await
        .expect("history");
    let lines: Vec<String> = text(out).lines().map(String::from).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].contains("restore -> restored"), "{lines:?}");
    assert!(lines[1].contains("protect -> pinned"), "{lines:?}");
    assert!(
        lines[2].contains("protect -> pinned") && lines[2].contains("- -> sha256:"),
        "{lines:?}"
    );
}

#[tokio::test]
async fn protect_refuses_what_it_cannot_pin_and_keeps_the_index_children() {
    let Some(w) = World::new().await else { return };
    w.create_repo("edge", false).await;
    let err = protect_err(&w, "edge:nope").await;
    assert!(
        err.contains("tag nope is not in") && err.contains("/edge: nothing to protect"),
        "{err}"
    );
    let err = protect_err(&w, "ghost:prod").await;
    assert!(err.contains("does not exist"), "{err}");
    let err = protect_err(&w, "edge").await;
    assert!(err.contains("not REPO:TAG"), "{err}");
    assert!(w.item("edge", "nope").await.is_none());
    let (amd, arm) = (oci_manifest("p-amd"), oci_manifest("p-arm"));
    w.push("edge", &amd, OCI, None).await;
    w.push("edge", &arm, OCI, None).await;
    let idx = index(&[(&amd, "amd64"), (&arm, "arm64")]);
    w.push("edge", &idx, OCI_INDEX, Some("prod")).await;
    let mut out = Vec::new();
    registry::protect(
        &w.ops(),
        "edge:prod",
        &ProtectOptions::default(),
        &now(),
        &mut out,
    )
    .await
    .expect("index");
    assert!(text(out).contains("2 child manifests"));
    let item = w.item("edge", "prod").await.expect("item");
    assert_eq!(item["children"].as_array().map(Vec::len), Some(2));
    assert_eq!(item["children"][0]["manifest"], amd);
}

#[tokio::test]
async fn list_status_and_unprotect() {
    let Some(w) = World::new().await else { return };
    w.create_repo("web", false).await;
    let (a, b) = (manifest("s-a"), manifest("s-b"));
    w.push("web", &a, DOCKER, Some("ok")).await;
    w.push("web", &a, DOCKER, Some("moved")).await;
    w.push("web", &a, DOCKER, Some("gone")).await;
    for tag in ["ok", "moved", "gone"] {
        protect_ok(&w, &format!("web:{tag}")).await;
    }
    let d_b = w.push("web", &b, DOCKER, Some("moved")).await;
    w.delete("web", &[(Some("gone"), None)]).await;
    w.put_item(json!({"repository": w.repo("web").key(), "tag": "later"}))
        .await;
    w.put_item(with_bare(&w, "nothere", "sha256:abc")).await;
    w.put_item(json!({"repository": w.repo("vanished").key(), "tag": "prod", "digest": sha256(&a), "manifest": a})).await;

    let mut out = Vec::new();
    assert!(
        !registry::list(&w.ops(), false, &mut out)
            .await
            .expect("list"),
        "an invalid item makes list fail"
    );
    let listed = text(out);
    assert!(listed.starts_with("REPOSITORY"), "{listed}");
    assert!(listed.contains("(not pinned)"), "{listed}");
    assert!(
        listed.contains("INVALID") && listed.contains("sha256:abc"),
        "{listed}"
    );
    assert!(
        listed.contains("5 protected tag(s), 1 invalid item(s)"),
        "{listed}"
    );

    let mut out = Vec::new();
    assert!(!registry::status(&w.ops(), true, &mut out)
        .await
        .expect("status"));
    let rows: Vec<Value> = text(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let of = |tag: &str| {
        rows.iter()
            .find(|r| r["tag"] == tag)
            .map(|r| r["status"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(of("ok"), "ok");
    assert_eq!(of("moved"), "moved");
    assert_eq!(
        rows.iter()
            .find(|r| r["tag"] == "moved")
            .map(|r| r["to"].clone()),
        Some(json!(d_b))
    );
    assert_eq!(of("gone"), "missing");
    assert_eq!(
        of("later"),
        "tag_not_found",
        "unpinned, and ECR has no such tag"
    );
    assert_eq!(
        rows.iter()
            .find(|r| r["repository"] == w.repo("vanished").key())
            .map(|r| r["status"].clone()),
        Some(json!("repository_gone"))
    );
    assert!(rows.iter().any(|r| r["status"] == "invalid"));

    // Everything right again: status exits 0.
    for tag in ["moved", "gone", "later", "nothere"] {
        registry::unprotect(
            &w.ops(),
            &format!("web:{tag}"),
            true,
            &now(),
            &mut Vec::new(),
        )
        .await
        .expect("unprotect");
    }
    registry::unprotect(
        &w.ops(),
        &format!("{}:prod", w.repo("vanished").key()),
        true,
        &now(),
        &mut Vec::new(),
    )
    .await
    .expect("unprotect");
    let mut out = Vec::new();
    assert!(
        registry::status(&w.ops(), false, &mut out)
            .await
            .expect("status"),
        "{}",
        text(out.clone())
    );
    assert!(text(out).contains("1 protected tag(s): 1 ok, 0 not ok"));
    let err = registry::unprotect(&w.ops(), "web:moved", false, &now(), &mut Vec::new())
        .await
        .expect_err("gone")
        .to_string();
    assert!(err.contains("is not protected"), "{err}");
    assert!(
        !w.history("web", "moved").await.is_empty(),
        "history outlives the item"
    );
}

fn with_bare(w: &World, tag: &str, digest: &str) -> Value {
    json!({"repository": w.repo("web").key(), "tag": tag, "digest": digest})
}

#[tokio::test]
async fn protect_adds_the_keep_alive_tag_status_misses_it_and_unprotect_removes_it() {
    let Some(w) = World::new().await else { return };
    w.create_repo("api", false).await;
    let m = manifest("keep-cli");
    let d = w.push("api", &m, DOCKER, Some("prod")).await;
    let keep = ecr_tag_guard::registry::keep_tag(ecr_tag_guard::registry::DEFAULT_KEEP_PREFIX, &d)
        .expect("keep tag");
    let mut out = Vec::new();
    registry::protect(
        &w.ops(),
        "api:prod",
        &ProtectOptions::default(),
        &now(),
        &mut out,
    )
    .await
    .expect("protect");
    assert!(text(out).contains(&format!("keep-alive tag {keep}")));
    assert_eq!(w.digest_of("api", &keep).await.as_deref(), Some(d.as_str()));
    assert!(registry::status(&w.ops(), false, &mut Vec::new())
        .await
        .expect("status"));
    w.delete("api", &[(Some(&keep), None)]).await;
    let mut out = Vec::new();
    assert!(!registry::status(&w.ops(), false, &mut out)
        .await
        .expect("status"));
    assert!(text(out).contains("keep-alive tag missing"));
    let force = ProtectOptions {
        force: true,
        ..Default::default()
    };
    registry::protect(&w.ops(), "api:prod", &force, &now(), &mut Vec::new())
        .await
        .expect("re-protect");
    assert!(registry::status(&w.ops(), false, &mut Vec::new())
        .await
        .expect("status"));
    registry::unprotect(&w.ops(), "api:prod", false, &now(), &mut Vec::new())
        .await
        .expect("unprotect");
    assert_eq!(
        w.digest_of("api", &keep).await,
        None,
        "no pin needs it any more"
    );
    assert_eq!(
        w.digest_of("api", "prod").await.as_deref(),
        Some(d.as_str()),
        "the tag itself is untouched"
    );
}

#[tokio::test]
async fn lifecycle_check_finds_protected_images_at_risk_and_the_shield_keeps_them() {
    let Some(w) = World::new().await else { return };
    w.create_repo("worker", false).await;
    let (m1, m2) = (manifest("lc-1"), manifest("lc-2"));
    let d1 = w.push("worker", &m1, DOCKER, Some("release-1")).await;
    w.push("worker", &m1, DOCKER, Some("build-41")).await;
    w.push("worker", &m2, DOCKER, Some("build-42")).await;
    let policy = json!({"rules": [
        {"rulePriority": 1, "description": "keep 10 builds", "selection": {"tagStatus": "tagged", "tagPrefixList": ["build-"], "countType": "imageCountMoreThan", "countNumber": 10}, "action": {"type": "expire"}},
        {"rulePriority": 2, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 50}, "action": {"type": "expire"}}
    ]});
    w.ecr
        .put_lifecycle_policy()
        .repository_name("worker")
        .lifecycle_policy_text(policy.to_string())
        .send()
        .await
        .expect("policy");
    protect_ok(&w, "worker:release-1").await;

    let mut out = Vec::new();
    assert!(
        !lifecycle::check(&w.ops(), "worker", Now::system().epoch, &mut out)
            .await
            .expect("check")
    );
    let report = text(out);
    assert!(
        report.contains(&format!(
            "AT RISK {} (protected: release-1) by rule 1 (expire: keep 10 builds)",
            &d1[..19]
        )),
        "{report}"
    );
    assert!(report.contains("1 protected image(s)"), "{report}");
    assert!(!report.contains("NOW"), "ten builds are kept: {report}");

    // The same evaluator on the repository's images as ECR lists them, two days on.
    let file = std::env::temp_dir().join(format!("etg-policy-{}.json", std::process::id()));
    let aged = json!({"rules": [
        {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPatternList": ["build-*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1}, "action": {"type": "expire"}}
    ]});
    std::fs::write(&file, aged.to_string()).expect("policy file");
    let mut out = Vec::new();
    let clean = lifecycle::simulate_policy(
        &file,
        lifecycle::Source::Repo(&w.ops(), "worker"),
        Now::system().epoch + 2 * 86_400,
        "etg-keep-",
        true,
        &mut out,
    )
    .await
    .expect("simulate");
    let lines: Vec<Value> = text(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert!(!clean, "a protected image would expire");
    assert_eq!(lines.len(), 2, "{lines:?}");
    let of = |d: &str| {
        lines
            .iter()
            .find(|l| l["digest"] == d)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(of(&d1)["action"], "expire");
    assert_eq!(of(&d1)["protected"], true);
    assert_eq!(of(&d1)["rule"], 1);

    let mut out = Vec::new();
    lifecycle::shield(&w.ops(), "worker", false, &mut out)
        .await
        .expect("preview");
    assert!(text(out).contains("(not written: add --apply)"));
    let stored = w
        .ecr
        .get_lifecycle_policy()
        .repository_name("worker")
        .send()
        .await
        .expect("get");
    assert_eq!(
        serde_json::from_str::<Value>(stored.lifecycle_policy_text().unwrap_or("")).expect("json"),
        policy,
        "a preview writes nothing"
    );

    lifecycle::shield(&w.ops(), "worker", true, &mut Vec::new())
        .await
        .expect("apply");
    let stored = w
        .ecr
        .get_lifecycle_policy()
        .repository_name("worker")
        .send()
        .await
        .expect("get");
    let new: Value =
        serde_json::from_str(stored.lifecycle_policy_text().unwrap_or("")).expect("json");
    let prios: Vec<u64> = new["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["rulePriority"].as_u64())
        .collect();
    assert_eq!(prios, vec![1, 2, 3]);
    assert_eq!(
        new["rules"][0]["selection"]["tagPrefixList"],
        json!(["etg-keep-"])
    );
    let mut out = Vec::new();
    assert!(
        lifecycle::check(&w.ops(), "worker", Now::system().epoch, &mut out)
            .await
            .expect("check"),
        "{}",
        text(out.clone())
    );
    let mut out = Vec::new();
    lifecycle::shield(&w.ops(), "worker", true, &mut out)
        .await
        .expect("again");
    assert!(text(out).contains("already starts with the keep-alive shield"));
}

#[tokio::test]
async fn the_drill_proves_the_chain_and_cleans_up() {
    let Some(w) = World::new().await else { return };
    w.create_repo("drill", false).await;
    let mut out = Vec::new();
    let ok = ecr_tag_guard::cli::drill::drill(
        &w.ops(),
        "drill",
        std::time::Duration::from_secs(20),
        std::time::Duration::from_millis(50),
        &mut out,
        // The deployed guard, in-process: the event CloudTrail would send for the delete.
        |deleted| {
            let event = batch_delete(
                &w,
                user(&w, "drill"),
                "drill",
                json!([{"imageTag": deleted.tag}]),
                deleted.image_ids,
            );
            let h = w.handler();
            async move {
                h.handle(&event, &Now::system()).await?;
                Ok(())
            }
        },
    )
    .await
    .expect("drill");
    assert!(ok);
    let report = text(out);
    for step in [
        "pushed canary",
        "protected it",
        "deleted the tag",
        "the guard put the tag back",
        "the guard recorded the restore",
        "cleaned up",
    ] {
        assert!(report.contains(step), "missing {step:?} in:\n{report}");
    }
    assert!(
        report.lines().all(|l| l
            .trim_start()
            .split(' ')
            .next()
            .is_some_and(|t| t.parse::<f64>().is_ok())),
        "each step has its time:\n{report}"
    );
    assert!(
        w.digests("drill").await.is_empty(),
        "canary and keep-alive tag gone"
    );
    let items = ecr_tag_guard::ports::Items::registry_items(&w.ops().backend)
        .await
        .expect("items");
    assert!(items.is_empty(), "{items:?}");
    assert_eq!(w.pages().await.len(), 1, "the restore was paged");
}

#[tokio::test]
async fn a_drill_without_a_guard_times_out_clearly_and_still_cleans_up() {
    let Some(w) = World::new().await else { return };
    w.create_repo("drill", false).await;
    let mut out = Vec::new();
    let err = ecr_tag_guard::cli::drill::drill(
        &w.ops(),
        "drill",
        std::time::Duration::from_millis(300),
        std::time::Duration::from_millis(50),
        &mut out,
        |_| async { Ok(()) },
    )
    .await
    .expect_err("no guard")
    .to_string();
    assert!(
        err.contains("did not put") && err.contains("check the function's rules"),
        "{err}"
    );
    assert!(text(out).contains("cleaned up"));
    assert!(w.digests("drill").await.is_empty());
}

fn spec(
    name: &str,
    repositories: &str,
    pattern: &str,
    group_by: Option<&str>,
    keep: u64,
) -> rules::RuleSpec {
    rules::RuleSpec {
        rule: name.into(),
        repositories: repositories.into(),
        pattern: pattern.into(),
        group_by: group_by.map(String::from),
        keep,
    }
}

#[tokio::test]
async fn rule_add_refuses_bad_specs_and_writes_the_settings_it_is_given() {
    let Some(w) = World::new().await else { return };
    w.create_repo("svc", false).await;
    let opts = ProtectOptions::default();
    let mut out = Vec::new();
    let bad = rules::add(
        &w.ops(),
        &spec("main", "svc", "^[0-9a-f{40}$", None, 2),
        &opts,
        &mut out,
    )
    .await
    .expect_err("bad regex");
    assert!(
        bad.to_string()
            .contains("rule main: pattern `^[0-9a-f{40}$` is not a valid regex"),
        "{bad}"
    );
    let bad = rules::add(
        &w.ops(),
        &spec("pr", "svc", "^pr-(?P<b>.+)$", Some("branch"), 1),
        &opts,
        &mut out,
    )
    .await
    .expect_err("unknown group");
    assert!(
        bad.to_string()
            .contains("group_by `branch` is not a named group"),
        "{bad}"
    );
    rules::add(
        &w.ops(),
        &spec("main", "svc", "^[0-9a-f]{8}$", None, 2),
        &opts,
        &mut out,
    )
    .await
    .expect("add");
    assert!(text(out).contains(&format!(
        "rule main written: keep the newest 2 of tags matching ^[0-9a-f]{{8}}$ in {}",
        w.repo("svc").key()
    )));
    let again = rules::add(
        &w.ops(),
        &spec("main", "svc", "^x$", None, 1),
        &opts,
        &mut Vec::new(),
    )
    .await
    .expect_err("exists");
    assert!(again.to_string().contains("add --force"), "{again}");
    // A rule takes the same item settings as `protect`, written on its item.
    let settings = ProtectOptions {
        fields: FieldOptions {
            severity: Some("low".into()),
            on_move: Some("follow".into()),
            owner: Some("team-svc".into()),
            allow: vec!["arn:aws:iam::*:role/ci".into()],
            ..Default::default()
        },
        ..ProtectOptions::default()
    };
    rules::add(
        &w.ops(),
        &spec("ci", "svc", "^ci-[0-9]+$", None, 1),
        &settings,
        &mut Vec::new(),
    )
    .await
    .expect("add with settings");
    let ci = ecr_tag_guard::ports::Items::partition(
        &w.ops().backend,
        ecr_tag_guard::registry::RULE_PARTITION,
        false,
    )
    .await
    .expect("read")
    .into_iter()
    .find(|i| i["tag"] == "ci")
    .expect("the rule item");
    assert_eq!(
        (&ci["severity"], &ci["on_move"], &ci["owner"], &ci["allow"]),
        (
            &json!("low"),
            &json!("follow"),
            &json!("team-svc"),
            &json!(["arn:aws:iam::*:role/ci"])
        )
    );
    assert!(ci.get("on_delete").is_none(), "only the settings given");
}

#[tokio::test]
async fn reconcile_materialises_a_rule_and_releases_what_it_made_once_it_is_removed() {
    let Some(w) = World::new().await else { return };
    w.create_repo("svc", false).await;
    rules::add(
        &w.ops(),
        &spec("main", "svc", "^[0-9a-f]{8}$", None, 2),
        &ProtectOptions::default(),
        &mut Vec::new(),
    )
    .await
    .expect("add");
    // Three builds from main, pushed one after another (moto keeps whole seconds).
    let mut d = Vec::new();
    for tag in ["aaaa0001", "bbbb0002", "cccc0003"] {
        d.push(w.push("svc", &manifest(tag), DOCKER, Some(tag)).await);
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let mut out = Vec::new();
    rules::preview(&w.ops(), Some("svc"), &mut out)
        .await
        .expect("preview");
    let shown = text(out);
    assert!(
        shown.contains(&format!(
            "all: protects cccc0003 ({}), bbbb0002 ({}); the next push releases {}",
            &d[2][..19],
            &d[1][..19],
            &d[1][..19]
        )),
        "{shown}"
    );

    // Reconcile materialises the rule without any event.
    let h = w.handler();
    let report = h
        .reconcile(
            &Now::system(),
            &ecr_tag_guard::ports::NoTrail,
            &mut |_, _, _| {},
        )
        .await
        .expect("reconcile");
    let pinned: Vec<&str> = report
        .rule_changes
        .iter()
        .filter(|c| c.change.as_str() == "pinned")
        .map(|c| c.tag.as_str())
        .collect();
    assert_eq!(pinned, vec!["cccc0003", "bbbb0002"]);
    assert_eq!(
        w.item("svc", "bbbb0002").await.unwrap_or_default()["rule"],
        "main"
    );
    let mut out = Vec::new();
    assert!(
        registry::status(&w.ops(), false, &mut out)
            .await
            .expect("status"),
        "{}",
        text(out.clone())
    );
    let mut out = Vec::new();
    rules::list(&w.ops(), false, &mut out).await.expect("list");
    assert!(text(out).contains("main                     keep the newest 2"));

    // Removed: the next reconcile releases what it made.
    rules::remove(&w.ops(), "main", &mut Vec::new())
        .await
        .expect("remove");
    assert!(
        rules::remove(&w.ops(), "main", &mut Vec::new())
            .await
            .is_err(),
        "gone already"
    );
    let report = h
        .reconcile(
            &Now::system(),
            &ecr_tag_guard::ports::NoTrail,
            &mut |_, _, _| {},
        )
        .await
        .expect("reconcile");
    let released: Vec<&str> = report
        .rule_changes
        .iter()
        .filter(|c| c.change.as_str() == "released")
        .map(|c| c.tag.as_str())
        .collect();
    assert_eq!(released.len(), 2, "{:?}", report.rule_changes);
    assert_eq!(w.item("svc", "cccc0003").await, None);
}

/// The same commands on another table.
fn on_table(ops: &mut registry::Ops<ecr_tag_guard::aws::admin::Admin>, table: &str) {
    ops.backend.table = table.into();
}

/// The binary on moto as an operator runs it, with the guard's table, topic and pin key (moto's
/// default account: the binary sends no account header).
fn guard_cli(w: &World, args: &[&str]) -> std::process::Output {
    let url = World::url().expect("moto");
    binary_on_moto(&url)
        .env("TAG_GUARD_TABLE", &w.table)
        .env("TAG_GUARD_TOPIC_ARN", &w.topic_arn)
        .env("TAG_GUARD_PIN_KEY", &w.pin_key)
        .args(args)
        .output()
        .expect("run the binary")
}

fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", output_text(o));
    output_text(o)
}

fn refused_with(o: &std::process::Output, code: i32) -> String {
    assert_eq!(o.status.code(), Some(code), "{}", output_text(o));
    output_text(o)
}

#[tokio::test]
async fn a_followed_move_keeps_the_previous_image_by_reconcile_and_by_an_allowed_deploy() {
    let Some(w) = World::in_account_named("123456789012", "nw-follow").await else {
        return;
    };
    w.create_repo("nw-follow", false).await;
    let d1 = w
        .push("nw-follow", &manifest("nw-f1"), DOCKER, Some("v1"))
        .await;
    ok(&guard_cli(
        &w,
        &["protect", "nw-follow:v1", "--on-move", "follow"],
    ));
    let d2 = w
        .push("nw-follow", &manifest("nw-f2"), DOCKER, Some("v1"))
        .await;
    let out = ok(&guard_cli(&w, &["reconcile"]));
    assert!(out.contains("follow -> followed"), "{out}");
    assert!(
        w.digests("nw-follow").await.contains(&d1),
        "the previous image is still in ECR: {out}"
    );
    assert!(
        w.tags_on("nw-follow", &d1).await.is_empty(),
        "untagged, as ECR leaves it"
    );
    assert_eq!(
        w.tags_on("nw-follow", &d2).await,
        vec![keep(&d2), "v1".to_string()]
    );

    // An allowed deploy through the event path (replay --aws of its CloudTrail record).
    w.create_repo("nw-deploy", false).await;
    let d1 = w
        .push("nw-deploy", &manifest("nw-d1"), DOCKER, Some("prod"))
        .await;
    let allow = "arn:aws:iam::*:role/deploy";
    ok(&guard_cli(
        &w,
        &["protect", "nw-deploy:prod", "--allow", allow],
    ));
    let m2 = manifest("nw-d2");
    let d2 = w.push("nw-deploy", &m2, DOCKER, Some("prod")).await;
    let event = put_image(
        &w,
        role(&w, "deploy", "pipeline-1"),
        "nw-deploy",
        "prod",
        &m2,
    );
    let file = std::env::temp_dir().join(format!("nw-deploy-{}.json", std::process::id()));
    std::fs::write(&file, event.to_string()).expect("event file");
    let out = ok(&guard_cli(
        &w,
        &["replay", "--aws", file.to_str().expect("path")],
    ));
    assert!(out.contains("followed"), "{out}");
    assert_eq!(
        w.item("nw-deploy", "prod").await.expect("item")["digest"],
        d2
    );
    assert!(
        w.digests("nw-deploy").await.contains(&d1),
        "the previous deployment's image stays"
    );
    assert!(w.tags_on("nw-deploy", &d1).await.is_empty());
}

#[tokio::test]
async fn unprotect_of_a_missing_tag_refuses_and_force_leaves_the_image_in_ecr() {
    let Some(w) = World::in_account_named("123456789012", "nw-unprotect").await else {
        return;
    };
    w.create_repo("nw-unprotect", false).await;
    let d = w
        .push("nw-unprotect", &manifest("nw-u1"), DOCKER, Some("prod"))
        .await;
    ok(&guard_cli(&w, &["protect", "nw-unprotect:prod"]));
    w.delete("nw-unprotect", &[(Some("prod"), None)]).await;
    let out = refused_with(&guard_cli(&w, &["unprotect", "nw-unprotect:prod"]), 2);
    assert!(
        out.contains("missing from ECR") && out.contains(&d) && out.contains("restore"),
        "{out}"
    );
    assert!(
        w.item("nw-unprotect", "prod").await.is_some(),
        "the item is kept"
    );
    assert!(w.digests("nw-unprotect").await.contains(&d));
    let out = ok(&guard_cli(
        &w,
        &["unprotect", "nw-unprotect:prod", "--force"],
    ));
    assert!(
        out.contains(&format!("its image {d} is left in ECR")),
        "{out}"
    );
    assert!(w.item("nw-unprotect", "prod").await.is_none());
    assert!(
        w.digests("nw-unprotect").await.contains(&d),
        "the only copy stays: {out}"
    );
    // Nothing could carry its guard tag (the repository has no other image): retired, and
    // status says so.
    assert_eq!(
        w.digest_of("nw-unprotect", &keep(&d)).await.as_deref(),
        Some(d.as_str())
    );
    let out = guard_cli(&w, &["status"]);
    assert!(
        output_text(&out).contains("retired guard tag"),
        "{}",
        output_text(&out)
    );
}

#[tokio::test]
async fn protect_force_refuses_a_moved_tag_accept_current_repins_and_no_image_is_lost() {
    let Some(w) = World::in_account_named("123456789012", "nw-force").await else {
        return;
    };
    w.create_repo("nw-force", false).await;
    let d1 = w
        .push("nw-force", &manifest("nw-p1"), DOCKER, Some("prod.latest"))
        .await;
    ok(&guard_cli(&w, &["protect", "nw-force:prod.latest"]));
    let d2 = w
        .push("nw-force", &manifest("nw-p2"), DOCKER, Some("prod.latest"))
        .await;
    let args = [
        "protect",
        "nw-force:prod.latest",
        "--force",
        "--owner",
        "team-web-2",
    ];
    let out = refused_with(&guard_cli(&w, &args), 2);
    assert!(
        out.contains("is not on its pin") && out.contains("--accept-current"),
        "{out}"
    );
    assert_eq!(
        w.item("nw-force", "prod.latest").await.expect("item")["digest"],
        d1
    );
    assert_eq!(
        w.digest_of("nw-force", &keep(&d1)).await.as_deref(),
        Some(d1.as_str())
    );
    let args = [
        "protect",
        "nw-force:prod.latest",
        "--accept-current",
        "--owner",
        "team-web-2",
    ];
    let out = ok(&guard_cli(&w, &args));
    assert!(out.contains(&format!("the pin was {d1}")), "{out}");
    let item = w.item("nw-force", "prod.latest").await.expect("item");
    assert_eq!(item["digest"], d2);
    assert_eq!(item["owner"], "team-web-2");
    let digests = w.digests("nw-force").await;
    assert!(
        digests.contains(&d1) && digests.contains(&d2),
        "no image is deleted: {out}"
    );
}

#[tokio::test]
async fn edit_leaves_the_pin_and_seal_and_restore_puts_a_tag_back_by_hand() {
    let Some(w) = World::in_account_named("123456789012", "nw-restore").await else {
        return;
    };
    w.create_repo("nw-restore", false).await;
    let d = w
        .push("nw-restore", &manifest("nw-r1"), DOCKER, Some("prod"))
        .await;
    ok(&guard_cli(&w, &["protect", "nw-restore:prod"]));
    let before = w.item("nw-restore", "prod").await.expect("item");
    let out = ok(&guard_cli(
        &w,
        &[
            "edit",
            "nw-restore:prod",
            "--owner",
            "team-pay",
            "--severity",
            "critical",
        ],
    ));
    assert!(out.contains("pin ") && out.contains("unchanged"), "{out}");
    let after = w.item("nw-restore", "prod").await.expect("item");
    assert_eq!(after["owner"], "team-pay");
    assert_eq!(after["severity"], "critical");
    for f in ["digest", "manifest", "pin_mac", "pinned_at"] {
        assert_eq!(after[f], before[f], "{f}");
    }

    w.delete("nw-restore", &[(Some("prod"), None)]).await;
    w.pages().await;
    let out = ok(&guard_cli(&w, &["restore", "nw-restore:prod", "--dry-run"]));
    assert!(
        out.contains("would restore") && out.contains("dry run"),
        "{out}"
    );
    assert_eq!(
        w.digest_of("nw-restore", "prod").await,
        None,
        "a dry run changes nothing"
    );
    let out = ok(&guard_cli(&w, &["restore", "nw-restore:prod"]));
    assert!(out.contains("restore -> restored"), "{out}");
    assert_eq!(
        w.digest_of("nw-restore", "prod").await.as_deref(),
        Some(d.as_str())
    );
    let pages = w.pages().await;
    assert_eq!(pages.len(), 1, "{pages:?}");
    assert_eq!(pages[0]["MessageAttributes"]["severity"]["Value"], "low");
    assert!(pages[0]["Message"]
        .as_str()
        .unwrap_or("")
        .contains("restored by hand by"));
    assert!(w
        .history("nw-restore", "prod")
        .await
        .iter()
        .any(|r| r["outcome"] == "restored"));

    // A pin written into the table by hand (no seal) is never pushed from.
    let hand = json!({"repository": w.repo("nw-restore").key(), "tag": "beta", "digest": d, "manifest": manifest("nw-r1"), "media_type": DOCKER});
    w.put_item(hand).await;
    let out = refused_with(&guard_cli(&w, &["restore", "nw-restore:beta"]), 2);
    assert!(out.contains("cannot vouch"), "{out}");
    assert_eq!(w.digest_of("nw-restore", "beta").await, None);
}

#[tokio::test]
async fn replay_restores_from_what_operators_hold_and_past_a_bad_record() {
    let Some(w) = World::in_account_named("123456789012", "nw-carriers").await else {
        return;
    };
    w.create_repo("nw-carriers", false).await;
    let mut events = Vec::new();
    for i in 1..=4 {
        let tag = format!("prod{i}");
        let d = w
            .push(
                "nw-carriers",
                &manifest(&format!("nw-c{i}")),
                DOCKER,
                Some(&tag),
            )
            .await;
        ok(&guard_cli(&w, &["protect", &format!("nw-carriers:{tag}")]));
        let ids = w.delete("nw-carriers", &[(Some(&tag), None)]).await;
        let ev = batch_delete(
            &w,
            user(&w, "bob"),
            "nw-carriers",
            json!([{"imageTag": tag}]),
            ids,
        );
        events.push((tag, d, ev));
    }
    let dir = std::env::temp_dir().join(format!("nw-carriers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p.to_str().expect("path").to_string()
    };
    // A Lambda on-failure destination record.
    let destination = file("destination.json", json!({"version": "1.0", "timestamp": "2026-11-21T03:00:00Z",
        "requestContext": {"requestId": "r-1", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": events[0].2, "responseContext": {"statusCode": 200, "functionError": "Unhandled"}}).to_string());
    // An `aws sqs receive-message` answer from the failure queue.
    let received = file(
        "received.json",
        json!({"Messages": [{"MessageId": "m-1", "ReceiptHandle": "h-1",
        "MD5OfBody": "x", "Body": events[1].2.to_string()}]})
        .to_string(),
    );
    // JSON lines: a real delete, then a line cut off.
    let lines = file(
        "lines.jsonl",
        format!("{}\n{{\"detail-type\": \"ECR Ima", events[3].2),
    );
    for path in [&destination, &received] {
        let out = ok(&guard_cli(&w, &["replay", "--aws", path]));
        assert!(out.contains("restored"), "{out}");
    }
    // An SNS notification of the event, on standard input.
    let url = World::url().expect("moto");
    let mut child = binary_on_moto(&url)
        .env("TAG_GUARD_TABLE", &w.table)
        .env("TAG_GUARD_TOPIC_ARN", &w.topic_arn)
        .env("TAG_GUARD_PIN_KEY", &w.pin_key)
        .args(["replay", "--aws", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let note = json!({"Type": "Notification", "MessageId": "n-1", "TopicArn": "arn:aws:sns:eu-west-1:123456789012:dlq",
        "Message": events[2].2.to_string()});
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(note.to_string().as_bytes())
            .expect("write stdin");
    }
    let out = ok(&child.wait_with_output().expect("wait"));
    assert!(out.contains("restored"), "{out}");
    let o = guard_cli(&w, &["replay", "--aws", &lines]);
    let out = refused_with(&o, 1);
    assert!(
        out.contains("lines.jsonl#1") && out.contains("line 2: not JSON"),
        "{out}"
    );
    assert!(out.contains("1 event(s) handled, 1 failed"), "{out}");
    for (tag, d, _) in &events {
        assert_eq!(
            w.digest_of("nw-carriers", tag).await.as_deref(),
            Some(d.as_str()),
            "{tag}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn dynamodb_writes_of_whole_items_refuse_a_pin_that_changed() {
    use ecr_tag_guard::ports::Items;
    let Some(w) = World::new().await else { return };
    w.create_repo("cond", false).await;
    let d = w
        .push("cond", &manifest("cond-1"), DOCKER, Some("prod"))
        .await;
    registry::protect(
        &w.ops(),
        "cond:prod",
        &ProtectOptions::default(),
        &now(),
        &mut Vec::new(),
    )
    .await
    .expect("protect");
    let item = w.item("cond", "prod").await.expect("item");
    let mut edited = item.clone();
    edited["owner"] = json!("someone");
    let ops = w.ops();
    let other = format!("sha256:{}", "0".repeat(64));
    assert!(
        !ops.replace_item(&edited, Some(&other)).await.expect("put"),
        "another pin"
    );
    assert!(
        !ops.replace_item(&edited, None).await.expect("put"),
        "it is pinned"
    );
    let key = w.repo("cond").key();
    assert!(!ops
        .delete_pinned(&key, "prod", Some(&other))
        .await
        .expect("delete"));
    assert_eq!(
        w.item("cond", "prod").await.expect("item"),
        item,
        "nothing written"
    );
    assert!(ops.replace_item(&edited, Some(&d)).await.expect("put"));
    assert_eq!(
        w.item("cond", "prod").await.expect("item")["owner"],
        "someone"
    );
    assert!(ops
        .delete_pinned(&key, "prod", Some(&d))
        .await
        .expect("delete"));
    assert!(w.item("cond", "prod").await.is_none());
}
