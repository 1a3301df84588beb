//! `audit` through the binary: a generated trail corpus with known contents (plain and
//! gzip, files and records outside the window), malformed input, the guard's history written
//! by the handler, a trail bucket on moto; `LookupEvents` through the SDK's mock utilities.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::*;
use aws_sdk_cloudtrail::config::retry::RetryConfig;
use aws_sdk_cloudtrail::error::ErrorMetadata;
use aws_sdk_cloudtrail::operation::lookup_events::{LookupEventsError, LookupEventsOutput};
use aws_sdk_cloudtrail::types::Event;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use ecr_tag_guard::audit::print::{Format, Output, Printer};
use ecr_tag_guard::aws::CloudTrailLookup;
use ecr_tag_guard::memory::Memory;
use ecr_tag_guard::service::audit::{Audit, AuditOptions};
use serde_json::{json, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("etg-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Runs the corpus generator into `out`; what it says the corpus holds.
fn corpus(out: &Path, args: &[&str]) -> Value {
    let py = root().join(".venv/bin/python");
    let py = if py.exists() {
        py
    } else {
        PathBuf::from("python3")
    };
    let o = Command::new(py)
        .arg(root().join("scripts/trail_corpus.py"))
        .arg(out)
        .args(args)
        .output()
        .expect("the corpus generator runs");
    assert!(o.status.success(), "{}", output_text(&o));
    let text = std::fs::read_to_string(out.join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json is JSON")
}

/// The binary with no AWS setting and no registry from the environment.
fn binary() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ecr-tag-guard"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    c
}

/// The report's JSON lines.
fn lines(o: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// How many lines each event id has.
fn per_event(lines: &[Value]) -> HashMap<String, u64> {
    let mut m = HashMap::new();
    for l in lines {
        *m.entry(l["event_id"].as_str().unwrap_or("").to_string())
            .or_insert(0) += 1;
    }
    m
}

/// The changes the corpus holds (by event id, lines each) whose time passes `keep`.
fn expected_events(expected: &Value, keep: impl Fn(&str) -> bool) -> HashMap<String, u64> {
    expected["events"]
        .as_object()
        .expect("events")
        .iter()
        .filter(|(_, e)| keep(e["time"].as_str().unwrap_or("")))
        .map(|(id, e)| (id.clone(), e["lines"].as_u64().unwrap_or(0)))
        .collect()
}

#[test]
fn every_change_in_the_corpus_is_reported_once_and_nothing_else_plain_or_gzip() {
    for gz in [false, true] {
        let dir = temp(if gz { "gz" } else { "plain" });
        let mut args = vec!["--files", "4", "--records", "600", "--ecr-rate", "0.05"];
        if gz {
            args.push("--gzip");
        }
        let expected = corpus(&dir, &args);
        let o = binary()
            .args(["audit", "--all-tags", "--json"])
            .arg(dir.join("AWSLogs"))
            .output()
            .expect("runs");
        assert!(o.status.success(), "{}", output_text(&o));
        let got = lines(&o);
        assert_eq!(got.len() as u64, expected["lines"].as_u64().unwrap());
        assert_eq!(per_event(&got), expected_events(&expected, |_| true));
        // Without a registry nothing is known to be protected.
        assert!(got
            .iter()
            .all(|l| l["protected"].is_null() && l["guard"].is_null()));
        let keys: Vec<&String> = got[0].as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "time",
                "repository",
                "tag",
                "change",
                "digest",
                "previous_digest",
                "who",
                "event_id",
                "protected",
                "guard"
            ]
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!(
                "4 sources read (0 skipped by date), {} records read, {} ECR changes",
                expected["records"], expected["changes"]
            )),
            "{err}"
        );
        // One file through standard input: the same lines as that file read by name.
        let one =
            std::fs::read_dir(dir.join("AWSLogs/123456789012/CloudTrail/eu-west-1/2026/11/01"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .min()
                .unwrap();
        let by_name = binary()
            .args(["audit", "--all-tags", "--json"])
            .arg(&one)
            .output()
            .unwrap();
        let piped = binary()
            .args(["audit", "--all-tags", "--json", "-"])
            .stdin(std::fs::File::open(&one).unwrap())
            .output()
            .unwrap();
        assert!(piped.status.success(), "{}", output_text(&piped));
        assert_eq!(lines(&piped), lines(&by_name));
        assert!(!lines(&piped).is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn since_and_until_skip_files_by_name_and_records_by_time() {
    let dir = temp("window");
    // Files delivered at 00:05, 00:10, ... 00:30, each with the five minutes before it.
    let expected = corpus(
        &dir,
        &["--files", "6", "--records", "300", "--ecr-rate", "0.08"],
    );
    let (since, until) = ("2026-11-01T00:12:00Z", "2026-11-01T00:22:30Z");
    let o = binary()
        .args(["audit", "--json", "--since", since, "--until", until])
        .arg(dir.join("AWSLogs"))
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", output_text(&o));
    let got = lines(&o);
    let want = expected_events(&expected, |t| t >= since && t <= until);
    assert!(!want.is_empty());
    assert_eq!(per_event(&got), want);
    assert!(got.iter().all(|l| {
        let t = l["time"].as_str().unwrap_or("");
        t >= since && t <= until
    }));
    // The files delivered at 00:05 and 00:10 cannot hold 00:12 on: not read.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("4 sources read (2 skipped by date), 1200 records read"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn malformed_files_and_records_are_named_and_skipped() {
    let dir = temp("bad");
    let good = r#"{"eventID":"ok-1","eventTime":"2026-11-01T00:00:00Z","eventSource":"ecr.amazonaws.com","eventName":"BatchDeleteImage","awsRegion":"eu-west-1","recipientAccountId":"123456789012","userIdentity":{"arn":"arn:aws:iam::123456789012:user/bob"},"requestParameters":{"repositoryName":"web","imageIds":[{"imageTag":"prod"}]},"responseElements":{"imageIds":[{"imageTag":"prod","imageDigest":"sha256:1111111111111111111111111111111111111111111111111111111111111111"}],"failures":[]}}"#;
    let broken = r#"{"eventSource":"ecr.amazonaws.com","eventName":"PutImage","requestParameters":{"x": tru}}"#;
    std::fs::write(dir.join("a-good.json"), format!("{{\"Records\":[{good}]}}")).unwrap();
    std::fs::write(
        dir.join("b-record.json"),
        format!(
            "{{\"Records\":[{broken},{}]}}",
            good.replace("ok-1", "ok-2")
                .replace("00:00:00Z", "00:00:02Z")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("c-truncated.json"),
        format!(
            "{{\"Records\":[{},{{\"eventName\":",
            good.replace("ok-1", "ok-3")
                .replace("00:00:00Z", "00:00:03Z")
        ),
    )
    .unwrap();
    // The same record in a second file (an organization trail beside the account's): once.
    std::fs::write(
        dir.join("a-same-again.json"),
        format!("{{\"Records\":[{good}]}}"),
    )
    .unwrap();
    std::fs::write(dir.join("d-text.json"), "this is not JSON").unwrap();
    std::fs::write(
        dir.join("e-gzip.json.gz"),
        [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3],
    )
    .unwrap();
    std::fs::write(dir.join("f-empty.json"), "").unwrap();
    let o = binary()
        .args(["audit", "--json"])
        .arg(&dir)
        .output()
        .expect("runs");
    let text = output_text(&o);
    // What it could read is reported; that it read less than it was given is exit 3.
    assert_eq!(o.status.code(), Some(3), "{text}");
    let ids: Vec<String> = lines(&o)
        .iter()
        .map(|l| l["event_id"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(ids, ["ok-1", "ok-2", "ok-3"], "{text}");
    let err = String::from_utf8_lossy(&o.stderr);
    let name = |f: &str| dir.join(f).display().to_string();
    for (file, what) in [
        (
            format!("{} record 0: not JSON", name("b-record.json")),
            "a bad record",
        ),
        (
            format!(
                "{}: the file ends inside record 1",
                name("c-truncated.json")
            ),
            "a truncated file",
        ),
        (
            format!("{}: not JSON at byte 0", name("d-text.json")),
            "text",
        ),
        (
            format!("{}: read failed", name("e-gzip.json.gz")),
            "broken gzip",
        ),
        (format!("{}: empty", name("f-empty.json")), "an empty file"),
    ] {
        assert!(err.contains(&format!("problem: {file}")), "{what}: {err}");
    }
    assert!(err.contains(", 5 problems"), "{err}");
    // A source that is not there, or a window that ends before it starts: the command line
    // is refused, naming what is wrong.
    let o = binary()
        .args(["audit"])
        .arg(dir.join("nowhere"))
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        output_text(&o).contains("nowhere: no such file or directory"),
        "{}",
        output_text(&o)
    );
    let o = binary()
        .args(["audit", "--since", "2026-11-02", "--until", "2026-11-01"])
        .arg(&dir)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        output_text(&o).contains("--since is after --until"),
        "{}",
        output_text(&o)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn the_guard_column_is_what_the_handlers_history_says() {
    let Some(w) = World::in_account_named("123456789012", "audit").await else {
        return;
    };
    let url = World::url().expect("moto");
    w.seed("web", "prod", "m1", json!({})).await;
    w.seed("web", "beta", "m2", json!({"on_delete": "alert"}))
        .await;
    let gone = w.delete_by(user(&w, "bob"), "web", "prod").await;
    let (_, pages) = w.handle(&gone).await;
    assert!(!pages.is_empty());
    w.expect_tag("web", "prod", Some(&sha256(&manifest("m1"))))
        .await;
    let paged = w.delete_by(user(&w, "bob"), "web", "beta").await;
    w.handle(&paged).await;
    w.expect_tag("web", "beta", None).await;
    // A tag nobody protects, pushed and deleted; the guard is not asked.
    let (_, pushed) = w
        .push_by(user(&w, "ci"), "web", "dev", &manifest("m3"))
        .await;
    let dropped = w.delete_by(user(&w, "ci"), "web", "dev").await;
    let dir = temp("guard");
    let file = dir.join("events.json");
    std::fs::write(&file, json!([gone, paged, pushed, dropped]).to_string()).unwrap();
    let audit = |all: bool| {
        let mut c = binary_on_moto(&url);
        c.args(["audit", "--json", "--table", &w.table]).arg(&file);
        if all {
            c.arg("--all-tags");
        }
        c.output().expect("runs")
    };
    let o = audit(false);
    let got = lines(&o);
    assert_eq!(got.len(), 2, "{}", output_text(&o));
    assert_eq!(
        (got[0]["tag"].as_str(), got[0]["protected"].as_bool()),
        (Some("prod"), Some(true))
    );
    assert!(
        got[0]["guard"]
            .as_str()
            .unwrap_or("")
            .starts_with("restored at "),
        "{got:?}"
    );
    assert_eq!(got[0]["change"], "deleted");
    assert_eq!(
        got[0]["who"],
        format!("arn:aws:iam::{}:user/bob", w.account)
    );
    assert_eq!(got[1]["tag"], "beta");
    assert!(
        got[1]["guard"]
            .as_str()
            .unwrap_or("")
            .starts_with("paged at "),
        "{got:?}"
    );
    // beta was only paged: a protected change the guard did not repair.
    assert_eq!(o.status.code(), Some(1), "{}", output_text(&o));
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("2 protected changes, 1 not repaired by the guard"));
    let o = audit(true);
    let got = lines(&o);
    let dev: Vec<&Value> = got.iter().filter(|l| l["tag"] == "dev").collect();
    assert_eq!(dev.len(), 2, "{got:?}");
    assert!(dev
        .iter()
        .all(|l| l["protected"] == false && l["guard"].is_null()));
    assert_eq!(dev[0]["change"], "pushed");
    assert_eq!(dev[1]["change"], "deleted");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_trail_bucket_on_moto_is_listed_read_and_skipped_by_date() {
    let Some(url) = World::url() else {
        return;
    };
    let dir = temp("s3");
    // Files delivered every 12 hours from 2026-11-01T12:00Z: 11-01 12:00, 11-02 00:00, 11-02
    // 12:00, 11-03 00:00.
    let expected = corpus(
        &dir,
        &[
            "--files",
            "4",
            "--records",
            "300",
            "--ecr-rate",
            "0.08",
            "--gzip",
            "--every",
            "720",
        ],
    );
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(&url)
        .credentials_provider(aws_sdk_ecr::config::Credentials::new(
            "testing", "testing", None, None, "t",
        ))
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let bucket = format!("trail-{}", std::process::id());
    s3.create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("bucket");
    let mut files = vec![dir.join("AWSLogs")];
    let mut keys = Vec::new();
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            keys.push(p);
        }
    }
    assert_eq!(keys.len(), 4);
    for p in &keys {
        let key = p.strip_prefix(&dir).unwrap().display().to_string();
        let body = std::fs::read(p).unwrap();
        s3.put_object()
            .bucket(&bucket)
            .key(&key)
            .body(body.into())
            .send()
            .await
            .expect("put");
    }
    let put = |key: &str, body: &'static [u8]| {
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(body))
            .send()
    };
    // A digest file (not a log), and a broken object on a day in the window.
    put(
        "AWSLogs/123456789012/CloudTrail-Digest/eu-west-1/2026/11/02/d.json.gz",
        b"{}",
    )
    .await
    .expect("put");
    put(
        "AWSLogs/123456789012/CloudTrail/eu-west-1/2026/11/02/broken.json.gz",
        b"\x1f\x8b not gzip",
    )
    .await
    .expect("put");
    let since = "2026-11-02T00:00:00Z";
    let o = binary_on_moto(&url)
        .args(["audit", "--all-tags", "--json", "--since", "2026-11-02"])
        .arg(format!("s3://{bucket}/AWSLogs/"))
        .output()
        .expect("runs");
    let text = output_text(&o);
    // The broken object is named and makes the exit 3.
    assert_eq!(o.status.code(), Some(3), "{text}");
    assert_eq!(
        per_event(&lines(&o)),
        expected_events(&expected, |t| t >= since),
        "{text}"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    // The file of 11-01 12:00 is skipped by its name; three files and the broken object read.
    assert!(
        err.contains("4 sources read (1 skipped by date), 900 records read"),
        "{err}"
    );
    assert!(err.contains(&format!("problem: s3://{bucket}/AWSLogs/123456789012/CloudTrail/eu-west-1/2026/11/02/broken.json.gz")), "{err}");
    assert!(err.contains(", 1 problem"), "{err}");
    // Under one region's prefix the listing starts at the window's days and stops past them:
    // the file of 11-03 is never listed; 11-01 12:00 and 11-02 12:00 are listed, skipped by name.
    let (since, until) = ("2026-11-02T00:00:00Z", "2026-11-02T06:00:00Z");
    let o = binary_on_moto(&url)
        .args([
            "audit",
            "--all-tags",
            "--json",
            "--since",
            since,
            "--until",
            until,
        ])
        .arg(format!(
            "s3://{bucket}/AWSLogs/123456789012/CloudTrail/eu-west-1/"
        ))
        .output()
        .expect("runs");
    // The broken object of 11-02 is in the window too.
    assert_eq!(o.status.code(), Some(3), "{}", output_text(&o));
    let want = expected_events(&expected, |t| t >= since && t <= until);
    assert_eq!(per_event(&lines(&o)), want);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("2 sources read (2 skipped by date), 300 records read"),
        "{err}"
    );
    // A bucket that does not exist is an error naming it.
    let o = binary_on_moto(&url)
        .args(["audit", "s3://no-such-bucket-here/AWSLogs/"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    assert!(
        output_text(&o).contains("s3://no-such-bucket-here/AWSLogs/"),
        "{}",
        output_text(&o)
    );
    assert!(
        output_text(&o).contains("NoSuchBucket"),
        "{}",
        output_text(&o)
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A CloudTrail record of a delete of `tag` at `time`, as `LookupEvents` returns it.
fn delete_record(id: &str, time: &str, tag: &str) -> String {
    json!({
        "eventVersion": "1.08", "eventID": id, "eventTime": time, "eventSource": "ecr.amazonaws.com",
        "eventName": "BatchDeleteImage", "awsRegion": REGION, "recipientAccountId": "123456789012",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/bob"},
        "requestParameters": {"repositoryName": "web", "imageIds": [{"imageTag": tag}]},
        "responseElements": {"imageIds": [{"imageTag": tag, "imageDigest": format!("sha256:{}", "2".repeat(64))}], "failures": []}
    })
    .to_string()
}

fn name_of(r: &aws_sdk_cloudtrail::operation::lookup_events::LookupEventsInput) -> String {
    r.lookup_attributes()
        .first()
        .map(|a| a.attribute_value().to_string())
        .unwrap_or_default()
}

/// Runs an audit of `cloudtrail:eu-west-1` with the client; the lines and the summary.
async fn lookup_audit(
    client: aws_sdk_cloudtrail::Client,
    spacing: Duration,
) -> Result<(Vec<Value>, ecr_tag_guard::service::audit::AuditSummary), String> {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let opts = AuditOptions {
        lookup_spacing: spacing,
        ..AuditOptions::default()
    };
    let sink = Output {
        lines: Printer::new(&mut out, Format::Json),
        problems: &mut err,
    };
    let mut audit = Audit::new(None::<&Memory>, opts, sink);
    audit
        .lookup(&CloudTrailLookup { client }, &[REGION.to_string()])
        .await
        .map_err(|e| e.to_string())?;
    let summary = audit.finish().await.map_err(|e| e.to_string())?;
    let lines = String::from_utf8_lossy(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    Ok((lines, summary))
}

/// One `LookupEvents` call: the event name, the page token, when.
type Call = (String, Option<String>, Instant);

#[tokio::test]
async fn lookup_events_is_read_page_by_page_within_its_rate() {
    let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
    let seen = calls.clone();
    let answer = mock!(aws_sdk_cloudtrail::Client::lookup_events).then_compute_output(move |r| {
        let (name, token) = (name_of(r), r.next_token().map(String::from));
        seen.lock()
            .unwrap()
            .push((name.clone(), token.clone(), Instant::now()));
        let page = |id: &str, time: &str, tag: &str| {
            Event::builder()
                .cloud_trail_event(delete_record(id, time, tag))
                .build()
        };
        match (name.as_str(), token.as_deref()) {
            ("BatchDeleteImage", None) => LookupEventsOutput::builder()
                .events(page("e-2", "2026-11-20T10:00:00Z", "prod"))
                .next_token("page-2")
                .build(),
            ("BatchDeleteImage", Some("page-2")) => LookupEventsOutput::builder()
                .events(page("e-1", "2026-11-19T10:00:00Z", "stable"))
                .build(),
            _ => LookupEventsOutput::builder().build(),
        }
    });
    let client = mock_client!(aws_sdk_cloudtrail, RuleMode::MatchAny, &[&answer], |c| c
        .retry_config(RetryConfig::disabled()));
    let spacing = Duration::from_millis(40);
    let (got, summary) = lookup_audit(client, spacing).await.expect("audit");
    // Both pages read; oldest first.
    let ids: Vec<&str> = got
        .iter()
        .map(|l| l["event_id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids, ["e-1", "e-2"]);
    assert_eq!(
        (summary.records, summary.changes, summary.sources),
        (2, 2, 1)
    );
    let calls = calls.lock().unwrap().clone();
    let asked: Vec<(&str, Option<&str>)> = calls
        .iter()
        .map(|(n, t, _)| (n.as_str(), t.as_deref()))
        .collect();
    assert_eq!(
        asked,
        [
            ("PutImage", None),
            ("BatchDeleteImage", None),
            ("BatchDeleteImage", Some("page-2")),
            ("DeleteRepository", None),
            ("PolicyExecutionEvent", None)
        ]
    );
    for pair in calls.windows(2) {
        assert!(
            pair[1].2 - pair[0].2 >= spacing,
            "calls closer than the spacing: {calls:?}"
        );
    }
}

#[tokio::test]
async fn a_throttled_lookup_is_retried_and_a_lasting_one_is_an_error() {
    let throttle = || {
        LookupEventsError::generic(
            ErrorMetadata::builder()
                .code("ThrottlingException")
                .message("Rate exceeded")
                .build(),
        )
    };
    let retry = || {
        RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(1))
    };
    let once = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .match_requests(|r| name_of(r) == "PutImage")
        .sequence()
        .error(throttle)
        .times(2)
        .output(|| {
            let put = delete_record("e-9", "2026-11-20T10:00:00Z", "prod");
            LookupEventsOutput::builder()
                .events(Event::builder().cloud_trail_event(put).build())
                .build()
        })
        .build();
    let rest = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .then_output(|| LookupEventsOutput::builder().build());
    let client = mock_client!(
        aws_sdk_cloudtrail,
        RuleMode::MatchAny,
        &[&once, &rest],
        |c| c.retry_config(retry())
    );
    let (got, _) = lookup_audit(client, Duration::ZERO).await.expect("retried");
    assert_eq!(got.len(), 1);
    assert_eq!(once.num_calls(), 3, "two throttled calls, then the answer");
    let always = mock!(aws_sdk_cloudtrail::Client::lookup_events).then_error(throttle);
    let client = mock_client!(aws_sdk_cloudtrail, RuleMode::MatchAny, &[&always], |c| c
        .retry_config(retry()));
    let e = lookup_audit(client, Duration::ZERO)
        .await
        .expect_err("throttled throughout");
    assert!(
        e.contains("cloudtrail:LookupEvents") && e.contains("ThrottlingException"),
        "{e}"
    );
}

/// The project's own story, replayed with its state saved, then audited: "not repaired" is
/// exactly what the guard did not put right (a refused tampered pin, layers gone, a deleted
/// repository, an untrusted pin); the guard's own push is its repair; superseded decisions
/// say so; ECR's event and CloudTrail's record of one change are one line naming the caller.
#[test]
fn audit_of_the_projects_events_lists_exactly_what_the_guard_did_not_repair() {
    let dir = temp("story");
    let state = dir.join("after.json");
    let o = binary()
        .current_dir(root())
        .args(["replay", "--quiet", "--save-state"])
        .arg(&state)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", output_text(&o));
    let o = binary()
        .current_dir(root())
        .args(["audit", "--json", "--state"])
        .arg(&state)
        .arg("events/")
        .output()
        .expect("runs");
    let text = output_text(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    let lines = lines(&o);
    let guard = |l: &Value| l["guard"].as_str().unwrap_or("").to_string();
    let not_repaired: Vec<String> = lines
        .iter()
        .filter(|l| {
            let g = guard(l);
            l["change"] != "guard_repair"
                && (g.is_empty()
                    || ["failed", "refused", "untrusted", "paged"]
                        .iter()
                        .any(|w| g.starts_with(w)))
        })
        .map(|l| {
            format!(
                "{}:{}",
                l["repository"].as_str().unwrap(),
                l["tag"].as_str().unwrap()
            )
        })
        .collect();
    let mut want = [
        "111122223333/eu-west-1/shop/billing:prod",
        "111122223333/eu-west-1/shop/legacy:prod",
        "111122223333/eu-west-1/shop/sandbox:demo",
        "111122223333/eu-west-1/shop/api:beta",
    ];
    let mut got = not_repaired.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{text}");
    assert!(
        text.contains("4 not repaired by the guard") && text.contains("1 guard repair,"),
        "{text}"
    );
    let by_id =
        |id: &str| -> Vec<&Value> { lines.iter().filter(|l| l["event_id"] == id).collect() };
    // 03 (ECR's PUSH) and 04 (CloudTrail's PutImage by the guard's role): one repair line.
    let repair = by_id("c0ffee04-1111-4b2c-8d3e-000000000004");
    assert_eq!(repair.len(), 1, "{text}");
    assert_eq!(repair[0]["change"], "guard_repair");
    assert!(
        guard(repair[0]).starts_with("the guard's repair of event c0ffee01"),
        "{text}"
    );
    assert!(
        by_id("0d5e8a77-0003-4c1b-a1d2-111122220003").is_empty(),
        "{text}"
    );
    // 01 and 02 (its ECR event): one line, the caller from CloudTrail.
    let delete = by_id("c0ffee01-1111-4b2c-8d3e-000000000001");
    assert_eq!(delete.len(), 1);
    assert_eq!(
        delete[0]["who"],
        "arn:aws:iam::111122223333:user/tired-human"
    );
    // 24: ECR's caller-less DELETE merged into CloudTrail's record of the deploy role.
    let allowed = by_id("c0ffee24b-2222-4b2c-8d3e-000000000000");
    assert_eq!(allowed.len(), 1, "{text}");
    assert_eq!(
        allowed[0]["who"],
        "arn:aws:sts::111122223333:assumed-role/deploy/pipeline-5004"
    );
    assert!(guard(allowed[0]).starts_with("released at"), "{text}");
    // 21 and 22: decisions the present overtook say so.
    for id in [
        "c0ffee21a-2222-4b2c-8d3e-000000000000",
        "c0ffee22a-2222-4b2c-8d3e-000000000000",
    ] {
        let l = by_id(id);
        assert!(
            guard(l[0]).starts_with("nothing to do (superseded: "),
            "{id}: {text}"
        );
    }
}

fn put_record(id: &str, time: &str, tag: &str, digest: &str, who: &str) -> String {
    format!(
        r#"{{"eventID":"{id}","eventTime":"{time}","eventSource":"ecr.amazonaws.com","eventName":"PutImage","awsRegion":"eu-west-1","recipientAccountId":"123456789012","userIdentity":{{"type":"AssumedRole","arn":"{who}"}},"requestParameters":{{"repositoryName":"shop/api","imageTag":"{tag}","imageManifest":"{{}}"}},"responseElements":{{"image":{{"repositoryName":"shop/api","imageId":{{"imageTag":"{tag}","imageDigest":"{digest}"}}}}}}}}"#
    )
}

/// A trail whose files arrive out of order (a later-named file holds an earlier push), with
/// the guard's own `PutImage` in it and one truncated file: the order is the records' time,
/// the guard's push is its repair, and the truncated file is named and makes the exit 3.
#[test]
fn audit_orders_by_event_time_knows_the_guards_push_and_exits_3_on_a_truncated_file() {
    let dir = temp("order");
    let (a, b) = (
        "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    );
    let deploy = "arn:aws:sts::123456789012:assumed-role/deploy/p-1";
    let guard = "arn:aws:sts::123456789012:assumed-role/ecr-tag-guard/fn";
    // 1.json holds the later push (onto B); 2.json the earlier one (onto A) and the guard's.
    let log = |records: &[String]| format!("{{\"Records\":[{}]}}", records.join(","));
    std::fs::write(
        dir.join("1.json"),
        log(&[put_record(
            "late",
            "2026-11-02T12:00:00Z",
            "prod",
            b,
            deploy,
        )]),
    )
    .unwrap();
    std::fs::write(
        dir.join("2.json"),
        log(&[
            put_record("early", "2026-11-02T10:00:00Z", "prod", a, deploy),
            put_record("own", "2026-11-02T11:00:00Z", "canary", a, guard),
        ]),
    )
    .unwrap();
    let run = |extra: Option<&str>| {
        let mut c = binary();
        c.env(
            "TAG_GUARD_ROLE_ARN",
            "arn:aws:iam::123456789012:role/ecr-tag-guard",
        )
        .args(["audit", "--all-tags", "--json"])
        .arg(dir.join("1.json"))
        .arg(dir.join("2.json"));
        if let Some(e) = extra {
            c.arg(dir.join(e));
        }
        c.output().expect("runs")
    };
    let o = run(None);
    let text = output_text(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    let got: Vec<(String, String, String)> = lines(&o)
        .iter()
        .map(|l| {
            (
                l["event_id"].as_str().unwrap().to_string(),
                l["change"].as_str().unwrap().to_string(),
                l["previous_digest"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let want = [
        ("early", "pushed", ""),
        ("own", "guard_repair", ""),
        ("late", "moved", a),
    ]
    .map(|(i, c, p)| (i.to_string(), c.to_string(), p.to_string()));
    assert_eq!(got, want, "{text}");
    assert!(
        text.contains("2 ECR changes") && text.contains("1 guard repair,"),
        "{text}"
    );
    // The same with a file cut off inside a record: named, the rest reported, exit 3.
    std::fs::write(dir.join("3.json"), "{\"Records\":[{\"eventID\":\"cut").unwrap();
    let o = run(Some("3.json"));
    let text = output_text(&o);
    assert_eq!(o.status.code(), Some(3), "{text}");
    assert_eq!(lines(&o).len(), 3, "{text}");
    assert!(
        text.contains("3.json: the file ends inside record") && text.contains("1 problem"),
        "{text}"
    );
}
