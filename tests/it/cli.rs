//! The binary as a user runs it: `replay` of the project's events on the embedded world,
//! JSON output, saved state, and bad input that must be named, never panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ecr-tag-guard"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("TAG_GUARD_LOG");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("etg-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    dir.join(name)
}

#[test]
fn replay_of_events_tells_the_story() {
    let o = run(&["replay", "events"]);
    let out = stdout(&o);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for want in [
        "prod.latest (pin sha256:b1a69d037f07): deleted -> restore -> restored",
        "page: [CRITICAL] prod.latest in shop/web: deleted; restored",
        "deleted -> nothing -> skipped  [this event does not name the caller and some callers are allowed: the CloudTrail record of the same delete decides]",
        "ignored: made by the guard's own role: not acted on (no loops)",
        "duplicate: already handled, nothing done again",
        "moved -> revert -> restored",
        "page: [CRITICAL] prod.latest in shop/web: moved; reverted",
        "moved -> follow -> followed",
        // One delete took two protected tags: one page lists both.
        "page: [CRITICAL] 2 tags in shop/api: deleted; restored",
        "expired -> restore -> restored",
        "page: [HIGH] release-2026.11 in shop/worker: expired by lifecycle; restored",
        "ignored: BatchDeleteImage failed with AccessDenied: it changed nothing",
        "ignored: a lifecycle preview (DryRunEvent) changes nothing",
        "no protected tag touched",
        "page: [CRITICAL] prod in shop/billing: NOT restored (refused)",
        "page: [HIGH] prod in shop/legacy: NOT restored (failed)",
        "page: [HIGH] demo in shop/sandbox: NOT restored (failed)",
        "ignored: detail-type `ECR Image Scan` is not acted on",
        "page: [HIGH] prod in shop/edge: deleted; restored",
        "rule branches: pinned pr-login-3 (sha256:ddd00022d072)",
        "rule branches: released pr-login-1 (sha256:beccb1f68579)",
        "page: [LOW] pr-login-3 in shop/app: deleted; restored",
        "qa (pin unpinned): pushed -> pin -> pinned",
        "invalid registry item 111122223333/eu-west-1/shop/web:canary",
        // The stories of late and out-of-order delivery (21-24).
        "happened, not delivered yet: CloudTrail BatchDeleteImage on 111122223333/eu-west-1/shop/pay",
        "prod (pin sha256:5d8303cc4f40): deleted -> superseded -> skipped  [superseded: the tag has been pushed since, to sha256:46f01603fb80: that push decides]",
        "prod (pin sha256:5d8303cc4f40): moved -> follow -> followed",
        "prod (pin sha256:9a8007a57c10): moved -> superseded -> skipped  [superseded: the tag is on its pin sha256:9a8007a57c10 now: nothing to revert or follow]",
        "page: [LOW] etg-keep-9a8007a57c10c535 in shop/pay: keep-alive tag moved; restored",
        "prod (pin sha256:9a8007a57c10): deleted -> release -> released",
        "page: [LOW] prod in shop/pay: deleted by an allowed principal",
        // A pin written into the table by hand steers no revert (25).
        "beta (pin sha256:a4b224ff0f64): moved -> revert -> untrusted_pin",
        "page: [HIGH] beta in shop/api: NOT restored (untrusted pin)",
        // An allowed deploy: the pin follows, the previous image stays (26).
        "prod (pin sha256:c9bfed7ab744): moved -> follow -> followed  [moved by an allowed principal]",
        "page: [LOW] prod in shop/cart: moved; pin followed",
        "30 event(s) handled, 0 failed",
        "1 invalid registry item(s), skipped: 111122223333/eu-west-1/shop/web:canary",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert_eq!(
        out.matches("  invalid registry item 111122223333/eu-west-1/shop/web:canary")
            .count(),
        1,
        "an invalid item is told once per run:\n{out}"
    );
}

#[test]
fn replay_json_prints_one_object_per_event_and_saves_the_final_state() {
    let state = tmp("final.json");
    let o = run(&[
        "replay",
        "events",
        "--json",
        "--save-state",
        state.to_str().expect("path"),
    ]);
    assert!(o.status.success());
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(
        lines.len(),
        34,
        "30 events delivered, 4 changes applied before delivery"
    );
    assert_eq!(lines[0]["input"], "events/01-delete-by-tag.json");
    assert_eq!(
        lines[19]["report"]["rule_changes"][1]["change"], "released",
        "{}",
        lines[19]
    );
    assert_eq!(
        lines[0]["report"]["decisions"][0]["outcome"]["kind"],
        "restored"
    );
    assert_eq!(
        lines[0]["report"]["incident"]["changes"][0]["kind"],
        "tag_removed"
    );
    assert_eq!(
        lines[0]["report"]["pages"][0]["attributes"]["action"],
        "restored"
    );
    // The saved state shows the follow: prod.latest pinned to the digest the deploy role pushed.
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("saved")).expect("JSON");
    let item = saved["registry"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["tag"] == "prod.latest")
        .expect("item");
    let pushed = &lines[6]["report"]["incident"]["changes"][0]["digest"];
    assert_eq!(&item["digest"], pushed);
    // The late delete and the out-of-order deploys end on the newest deploy, then its
    // allowed delete released the pin (and marked the item so registration leaves it).
    let pay = saved["registry"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["repository"] == "111122223333/eu-west-1/shop/pay")
        .expect("pay item");
    assert!(pay.get("digest").is_none(), "{pay}");
    assert!(pay["released_at"].is_string(), "{pay}");
    // The rule's released item is gone from the saved state, its newest pin there.
    let app: Vec<&str> = saved["registry"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["rule"] == "branches")
        .filter_map(|i| i["tag"].as_str())
        .collect();
    assert_eq!(app, vec!["pr-login-2", "pr-login-3"]);
    // ...and replaying from it again starts where the story ended.
    let o = run(&[
        "replay",
        "events/06-move-by-a-human.json",
        "--state",
        state.to_str().expect("path"),
    ]);
    assert!(
        stdout(&o).contains("pushed -> nothing -> skipped"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn bad_input_is_named_and_never_panics() {
    let o = run(&["replay", "tests/data"]);
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for want in [
        "tests/data/corrupt.json.gz\n  ERROR: not a readable gzip file",
        "tests/data/lines-with-a-bad-line.jsonl#2\n  ERROR: line 3: not JSON",
        "tests/data/mixed-array.json#0\n  ERROR: unreadable event: ECR Image Action DELETE has no `image-digest`",
        "tests/data/mixed-array.json#1\n  ERROR: unreadable event: BatchDeleteImage requestParameters",
        "tests/data/mixed-array.json#2\n  ERROR: unreadable event: expected a JSON object",
        "tests/data/truncated.json\n  ERROR: not JSON",
        "tests/data/cloudtrail-log.json.gz\n  CloudTrail BatchDeleteImage on 111122223333/eu-west-1/shop/web",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    // The good record after the bad ones is still handled.
    assert!(
        out.contains("tests/data/mixed-array.json#3\n  CloudTrail BatchDeleteImage"),
        "{out}"
    );
    assert!(out.contains("note: no responseElements"), "{out}");
}

#[test]
fn every_file_under_events_and_tests_replays_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["events", "tests", "tests/data"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("dir") {
            let path = entry.expect("entry").path();
            let o = run(&["replay", path.to_str().expect("path")]);
            assert!(
                matches!(o.status.code(), Some(0) | Some(1) | Some(2)),
                "{}: {:?}\n{}",
                path.display(),
                o.status,
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

#[test]
fn usage_errors_say_what_is_wrong() {
    let o = run(&["replay", "no/such/file.json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("no/such/file.json\n  ERROR:"),
        "{}",
        stdout(&o)
    );
    let bad_state = tmp("bad-state.json");
    std::fs::write(&bad_state, "{\"repositories\": 3}").expect("write");
    let o = run(&[
        "replay",
        "events",
        "--state",
        bad_state.to_str().expect("path"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad-state.json: not a scenario"), "{err}");
    let o = run(&["replay", "--dry-run"]);
    assert_ne!(o.status.code(), Some(0), "--dry-run needs --aws");
    let o = run(&["replay", "src"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no event files in src"));
}

#[test]
fn schema_prints_the_registry_item_schema() {
    let o = run(&["schema"]);
    let v: Value = serde_json::from_slice(&o.stdout).expect("schema is JSON");
    assert_eq!(
        v["$defs"]["tag"]["required"],
        serde_json::json!(["repository", "tag"])
    );
    assert_eq!(
        v["$defs"]["rule"]["properties"]["repository"]["const"],
        "rule#"
    );
}

#[test]
fn registry_commands_check_their_arguments_before_calling_aws() {
    let o = bin()
        .args(["status"])
        .env_remove("TAG_GUARD_TABLE")
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--table"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run(&[
        "protect",
        "web:prod",
        "--table",
        "t",
        "--on-move",
        "sideways",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("[possible values: revert, follow, alert]"));
    let o = run(&["--help"]);
    let help = stdout(&o);
    for cmd in [
        "replay",
        "schema",
        "registry",
        "protect",
        "unprotect",
        "list",
        "history",
        "status",
        "lifecycle",
        "reconcile",
        "rule",
    ] {
        assert!(help.contains(cmd), "{cmd} missing from:\n{help}");
    }
    let o = bin()
        .args([
            "rule",
            "add",
            "main",
            "--table",
            "t",
            "--repositories",
            "123456789012/eu-west-1/web",
            "--pattern",
            "^[0-9a-f{40}$",
            "--keep",
            "5",
        ])
        .env("AWS_REGION", "eu-west-1")
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "rule main: pattern `^[0-9a-f{40}$` is not a valid regex: unclosed character class"
        ),
        "{err}"
    );
}

const POLICY: &str = "tests/data/lifecycle/policy.json";
const IMAGES: &str = "tests/data/lifecycle/images.json";

/// `lifecycle simulate --policy POLICY --images IMAGES --now NOW` and `extra`.
fn simulate(policy: &str, now: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "lifecycle",
        "simulate",
        "--policy",
        policy,
        "--images",
        IMAGES,
        "--now",
        now,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn lifecycle_simulate_offline_marks_the_protected_image_it_would_take() {
    let o = simulate(POLICY, "2026-11-26T12:00:00Z", &[]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "a protected image is hit: {out}");
    for want in [
        "rule 1 (pull-request builds: keep the newest 2): expire 1 image(s)",
        "EXPIRE      rule 1    sha256:111111111111  pr-42-1f3a",
        "keep        rule 1    sha256:222222222222  pr-42-9c0d",
        "EXPIRE      rule 2    sha256:444444444444  <untagged>",
        "TRANSITION  rule 3    sha256:555555555555  prod.latest, etg-keep-5555555555555555  [PROTECTED]",
        "keep        rule 3    sha256:666666666666  staging",
        "6 image(s): 2 expire, 1 transition, 3 keep; 1 protected image(s) hit",
    ] {
        assert!(out.contains(want), "{want:?} not in:\n{out}");
    }
    // Four weeks earlier prod.latest had been pulled within 30 days: nothing protected is hit.
    let o = simulate(POLICY, "2026-10-30T00:00:00Z", &["--json"]);
    assert!(o.status.success(), "{}", stdout(&o));
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len(), 6);
    let prod = lines
        .iter()
        .find(|l| l["tags"][0] == "prod.latest")
        .expect("prod");
    assert_eq!(
        (
            prod["action"].as_str(),
            prod["rule"].as_u64(),
            prod["protected"].as_bool()
        ),
        (Some("keep"), Some(3), Some(true))
    );
    // The policy as `aws ecr get-lifecycle-policy` prints it reads the same.
    let wrapped = tmp("get-lifecycle-policy.json");
    let text = std::fs::read_to_string(POLICY).expect("policy");
    std::fs::write(
        &wrapped,
        serde_json::json!({"registryId": "111122223333", "repositoryName": "web", "lifecyclePolicyText": text}).to_string(),
    )
    .expect("write");
    let o = simulate(
        wrapped.to_str().unwrap_or(""),
        "2026-10-30T00:00:00Z",
        &["--json"],
    );
    assert_eq!(
        stdout(&o).lines().count(),
        6,
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        stdout(&o),
        stdout(&simulate(POLICY, "2026-10-30T00:00:00Z", &["--json"]))
    );
}

#[test]
fn lifecycle_simulate_names_what_is_wrong_with_its_input() {
    let bad_policy = tmp("bad-policy.json");
    std::fs::write(&bad_policy, r#"{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["a"], "tagPatternList": ["b"], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}"#).expect("write");
    let o = run(&[
        "lifecycle",
        "simulate",
        "--policy",
        bad_policy.to_str().unwrap_or(""),
        "--images",
        IMAGES,
    ]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad-policy.json: not a valid lifecycle policy"),
        "{err}"
    );
    assert!(
        err.contains("rules[0]: tagPrefixList and tagPatternList cannot be used together"),
        "{err}"
    );
    let o = run(&[
        "lifecycle",
        "simulate",
        "--policy",
        POLICY,
        "--images",
        POLICY,
    ]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        err.contains("policy.json: expected the output of `aws ecr describe-images`"),
        "{err}"
    );
    let o = run(&[
        "lifecycle",
        "simulate",
        "--policy",
        POLICY,
        "--images",
        IMAGES,
        "--now",
        "soon",
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--now \"soon\": not an RFC 3339 time"));
    let o = run(&["lifecycle", "simulate", "--policy", POLICY]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--images"));
}

/// Runs a command on the embedded world: `--state FROM --save-state TO`.
fn embedded(args: &[&str], from: &Path, to: &Path) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    let (from, to) = (from.to_str().expect("path"), to.to_str().expect("path"));
    all.extend(["--state", from, "--save-state", to]);
    bin()
        .args(&all)
        .env_remove("TAG_GUARD_TABLE")
        .env_remove("TAG_GUARD_ACCOUNTS")
        .env_remove("TAG_GUARD_REGIONS")
        .output()
        .expect("binary runs")
}

#[test]
fn every_registry_command_runs_on_the_embedded_world() {
    let scenario = Path::new("events/scenario.json");
    let (a, b) = (tmp("cmd-a.json"), tmp("cmd-b.json"));
    let repo = "111122223333/eu-west-1/shop/web";

    let o = embedded(&["protect", &format!("{repo}:v1.5.0")], scenario, &a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout(&o)
            .contains("protected 111122223333/eu-west-1/shop/web:v1.5.0 at sha256:d2332297afd8"),
        "{}",
        stdout(&o)
    );
    // A plain name resolves to the world's own account and region.
    let o = embedded(&["history", "shop/web:v1.5.0"], &a, &b);
    assert!(stdout(&o).contains("protect -> pinned"), "{}", stdout(&o));
    let o = embedded(&["list", "--json"], &a, &b);
    let listed: Vec<Value> = stdout(&o)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        listed.iter().any(|v| v["tag"] == "v1.5.0"),
        "{}",
        stdout(&o)
    );
    let o = embedded(&["status"], &a, &b);
    assert_eq!(
        o.status.code(),
        Some(1),
        "some tags are not ok in the story's start"
    );
    assert!(
        stdout(&o).contains("ok                     111122223333/eu-west-1/shop/web:v1.5.0"),
        "{}",
        stdout(&o)
    );

    // Reconcile puts the missing keep-alive tags back; status then says so.
    let o = embedded(&["reconcile"], &a, &b);
    assert!(
        stdout(&o).contains("restore_keep -> restored"),
        "{}",
        stdout(&o)
    );
    // Progress is drawn only on a terminal: nothing of it reaches a pipe.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("repositories"), "{err}");
    let o = embedded(&["status"], &b, &a);
    assert!(
        !stdout(&o).contains("keep-alive tag missing 111122223333/eu-west-1/shop/web:prod.latest"),
        "{}",
        stdout(&o)
    );

    let o = embedded(&["unprotect", &format!("{repo}:v1.5.0")], &a, &b);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = embedded(&["history", &format!("{repo}:v1.5.0")], &b, &a);
    assert!(
        stdout(&o).contains("unprotect -> removed"),
        "{}",
        stdout(&o)
    );

    let o = embedded(&["rule", "list"], scenario, &a);
    assert!(stdout(&o).contains("branches"), "{}", stdout(&o));
    let o = embedded(&["lifecycle", "shield", repo, "--apply"], scenario, &a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = embedded(&["lifecycle", "check", repo], &a, &b);
    assert!(
        o.status.success(),
        "the shield keeps every pinned image: {}",
        stdout(&o)
    );

    let o = run(&[
        "lifecycle",
        "simulate",
        "--policy",
        POLICY,
        "--repo",
        repo,
        "--state",
        "events/scenario.json",
    ]);
    assert_eq!(o.status.code(), Some(1), "it would take a protected image");
    assert!(
        stdout(&o).contains("prod.latest, v1.4.2  [PROTECTED]"),
        "{}",
        stdout(&o)
    );

    // What needs AWS says so.
    let o = run(&["registry", "--state", "events/scenario.json", "init"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("works against AWS only"));
}

#[test]
fn reconcile_against_aws_without_a_pin_key_says_what_is_missing() {
    let o = bin()
        .args([
            "reconcile",
            "--table",
            "t",
            "--topic-arn",
            "arn:aws:sns:eu-west-1:123456789012:pages",
        ])
        .env_remove("TAG_GUARD_PIN_KEY")
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("TAG_GUARD_PIN_KEY or --pin-key"), "{err}");
}

#[test]
fn completions_for_each_shell_name_the_commands_and_the_global_options() {
    for shell in ["bash", "zsh", "fish"] {
        let o = run(&["completions", shell]);
        assert!(o.status.success(), "{shell}");
        let script = stdout(&o);
        // fish spells a long option `-l pin-key`.
        for word in ["reconcile", "protect", "pin-key", "profile", "endpoint-url"] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
    // The bash script is valid bash.
    let script = stdout(&run(&["completions", "bash"]));
    let path = tmp("completions.bash");
    std::fs::write(&path, script).expect("write");
    let check = Command::new("bash").arg("-n").arg(&path).output();
    if let Ok(check) = check {
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let o = run(&["completions", "tcsh"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn an_allowed_deploy_in_the_story_leaves_the_previous_image_untagged_in_ecr() {
    let state = tmp("after-26.json");
    let o = run(&[
        "replay",
        "events/26-allowed-deploy-keeps-the-previous-image.json",
        "--state",
        "events/scenario.json",
        "--save-state",
        state.to_str().expect("path"),
    ]);
    assert!(o.status.success(), "{}", stdout(&o));
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("saved")).expect("json");
    let cart = saved["repositories"]
        .as_array()
        .expect("repositories")
        .iter()
        .find(|r| r["repository"] == "111122223333/eu-west-1/shop/cart")
        .expect("shop/cart");
    let tags: Vec<Value> = cart["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| i["tags"].clone())
        .collect();
    // The new pin with prod and its guard tag; the previous image still there, untagged
    // (the guard's tag was carried off it, not deleted from it).
    assert_eq!(tags.len(), 2, "{tags:?}");
    assert!(
        tags.contains(&json!(["etg-keep-5bd2d473424c85b0", "prod"])),
        "{tags:?}"
    );
    assert!(
        tags.iter().any(|t| t.as_array().is_none_or(Vec::is_empty)),
        "{tags:?}"
    );
}
