//! The binary as a user runs it: `replay` of the project's events on the embedded world,
//! JSON output, saved state, and bad input that must be named, never panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

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
        "deleted -> restore -> already_in_place",
        "ignored: made by the guard's own role: not acted on (no loops)",
        "duplicate: already handled, nothing done again",
        "moved -> revert -> restored",
        "page: [CRITICAL] prod.latest in shop/web: moved; reverted",
        "moved -> follow -> followed",
        "page: [CRITICAL] prod in shop/api: deleted; restored",
        "page: [HIGH] stable in shop/api: deleted; restored",
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
        "qa (pin unpinned): pushed -> pin -> pinned",
        "invalid registry item 111122223333/eu-west-1/shop/web:canary",
        "19 event(s) handled, 0 failed",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
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
    assert_eq!(lines.len(), 19);
    assert_eq!(lines[0]["input"], "events/01-delete-by-tag.json");
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
        "tests/data/lines-with-a-bad-line.jsonl\n  ERROR: line 3: not JSON",
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
    assert_eq!(v["required"], serde_json::json!(["repository", "tag"]));
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
    ] {
        assert!(help.contains(cmd), "{cmd} missing from:\n{help}");
    }
}
