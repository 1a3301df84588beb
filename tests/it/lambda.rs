//! The binary as Lambda runs it: `AWS_LAMBDA_RUNTIME_API` set, one event served by a small
//! stand-in for the Lambda Runtime API, AWS calls to moto. Also checks that start-up makes no
//! call to the instance metadata service when credentials come from the environment.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use crate::util::*;
use serde_json::{json, Value};

/// Reads one HTTP/1.1 request: (request line, body).
fn read_request(r: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((line.trim().to_string(), body))
}

/// Serves `event` once on /next, sends what the function posts back to `tx`, then keeps
/// the next /next waiting.
fn runtime_api(event: Value, tx: mpsc::Sender<(String, Value)>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut served = false;
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut out = stream;
            while let Some((line, body)) = read_request(&mut reader) {
                if line.starts_with("GET /2018-06-01/runtime/invocation/next") {
                    if served {
                        std::thread::sleep(Duration::from_secs(600));
                        return;
                    }
                    served = true;
                    let body = event.to_string();
                    let deadline = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .expect("time")
                        .as_millis()
                        + 60_000;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-1\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:eu-west-1:123456789012:function:ecr-tag-guard\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    out.write_all(head.as_bytes())
                        .and_then(|_| out.write_all(body.as_bytes()))
                        .expect("write");
                } else {
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    out.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                        .expect("write");
                    let _ = tx.send((line, v));
                }
            }
        }
    });
    port
}

/// Counts connections to a stand-in instance metadata service.
fn metadata_service(count: Arc<AtomicUsize>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for _ in listener.incoming() {
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    port
}

/// Runs the binary as Lambda for one invocation of `event`: the Runtime API's request line
/// for the answer, the answer, the logs, and the number of metadata-service connections.
fn run_lambda(w: &World, url: &str, event: Value) -> (String, Value, String, usize) {
    let (tx, rx) = mpsc::channel();
    let api = runtime_api(event, tx);
    let imds_calls = Arc::new(AtomicUsize::new(0));
    let imds = metadata_service(imds_calls.clone());
    let mut child = Command::new(env!("CARGO_BIN_EXE_ecr-tag-guard"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{api}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "ecr-tag-guard")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/ecr-tag-guard")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "stream")
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_SESSION_TOKEN", "testing")
        .env("AWS_ENDPOINT_URL", url)
        .env(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            format!("http://127.0.0.1:{imds}"),
        )
        .env("TAG_GUARD_TABLE", &w.table)
        .env("TAG_GUARD_TOPIC_ARN", &w.topic_arn)
        .env("TAG_GUARD_PIN_KEY", &w.pin_key)
        .env("TAG_GUARD_ROLE_ARN", w.guard_role_arn())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");

    let got = rx.recv_timeout(Duration::from_secs(60));
    let _ = child.kill();
    let output = child.wait_with_output().expect("output");
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let (line, summary) =
        got.unwrap_or_else(|e| panic!("no response from the function ({e}); logs:\n{logs}"));
    (line, summary, logs, imds_calls.load(Ordering::SeqCst))
}

#[tokio::test]
async fn the_lambda_restores_a_deleted_tag_and_reconciles_on_its_schedule() {
    let Some(w) = World::in_account_named("123456789012", "lambda").await else {
        return;
    };
    let url = World::url().expect("moto");
    w.create_repo("web", false).await;
    let m = manifest("lambda");
    let d = w.push("web", &m, DOCKER, Some("prod")).await;
    w.put_sealed(pinned_item(&w, "web", "prod", &m, DOCKER))
        .await;
    let ids = w.delete("web", &[(Some("prod"), None)]).await;
    let event = batch_delete(
        &w,
        user(&w, "bob"),
        "web",
        json!([{"imageTag": "prod"}]),
        ids,
    );

    let (line, summary, logs, imds_calls) = run_lambda(&w, &url, event);

    assert_eq!(
        line, "POST /2018-06-01/runtime/invocation/req-1/response HTTP/1.1",
        "{summary}\n{logs}"
    );
    assert_eq!(summary["pages"], 1, "{summary}");
    assert_eq!(
        w.digest_of("web", "prod").await.as_deref(),
        Some(d.as_str())
    );
    assert_eq!(w.pages().await.len(), 1);
    assert_eq!(imds_calls, 0, "no metadata-service call:\n{logs}");
    // One JSON log line per decision, with the event, the tag, the action and the outcome.
    let decision = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["fields"]["message"] == "decision")
        .unwrap_or_else(|| panic!("no decision log line in:\n{logs}"));
    assert_eq!(decision["fields"]["tag"], "prod");
    assert_eq!(decision["fields"]["action"], "restore");
    assert_eq!(decision["fields"]["outcome"], "restored");
    assert!(decision["fields"]["event_id"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    // Metrics in embedded metric format: the decision counted by action and outcome, the
    // repair's latency, the page.
    let emf: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "EcrTagGuard")
        .collect();
    let restored = emf
        .iter()
        .find(|v| v["Action"] == "restore" && v["Outcome"] == "restored")
        .unwrap_or_else(|| panic!("no EMF line for the restore in:\n{logs}"));
    assert_eq!(restored["Decisions"], 1.0);
    assert_eq!(
        restored["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Action", "Outcome"], ["Outcome"]])
    );
    assert!(emf
        .iter()
        .any(|v| v["RepairLatency"].as_f64().is_some_and(|ms| ms >= 0.0)));
    assert!(emf
        .iter()
        .any(|v| v["PagesSent"] == 1.0 && v["Source"] == "event"));

    // The schedule's event runs a reconcile: a tag deleted while no event reached the
    // guard is put back.
    w.delete("web", &[(Some("prod"), None)]).await;
    let schedule = json!({
        "version": "0", "id": "5c9e7a4e-0000-4000-8000-000000000001", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-11-26T21:00:00Z",
        "region": REGION, "resources": ["arn:aws:events:eu-west-1:123456789012:rule/reconcile"], "detail": {}
    });
    let (line, summary, logs, _) = run_lambda(&w, &url, schedule);
    assert!(line.ends_with("/response HTTP/1.1"), "{summary}\n{logs}");
    assert_eq!(summary["reconcile"], true, "{summary}");
    assert_eq!(summary["repairs"], 1, "{summary}");
    assert!(
        logs.lines()
            .any(|l| l.contains("\"Decisions\"") && l.contains("\"restored\"")),
        "reconcile's repairs are counted too:\n{logs}"
    );
    assert_eq!(
        w.digest_of("web", "prod").await.as_deref(),
        Some(d.as_str())
    );

    // A batch from the registry table's stream: a hand-written item is pinned, and the
    // answer is a partial-batch response naming no record to retry.
    w.push("web", &manifest("api"), DOCKER, Some("api")).await;
    w.put_item(json!({"repository": w.repo("web").key(), "tag": "api"}))
        .await;
    let records = w.stream_event(0);
    let (line, summary, logs, _) = run_lambda(&w, &url, records);
    assert!(line.ends_with("/response HTTP/1.1"), "{summary}\n{logs}");
    assert_eq!(summary, json!({"batchItemFailures": []}), "{logs}");
    assert_eq!(
        w.item("web", "api").await.unwrap_or_default()["digest"],
        json!(sha256(&manifest("api")))
    );

    // An event no retry can mend (an ECR Image Action DELETE without its digest): the
    // invocation succeeds, so Lambda does not retry it pointlessly, and it is not lost: it is
    // logged with the event and paged once.
    w.pages().await;
    let broken = json!({
        "version": "0", "id": "9d1f0c2a-0000-4000-8000-00000000bad1", "detail-type": "ECR Image Action",
        "source": "aws.ecr", "account": "123456789012", "time": "2026-11-26T21:00:00Z", "region": REGION,
        "resources": [], "detail": {"result": "SUCCESS", "repository-name": "web", "action-type": "DELETE", "image-tag": "prod"}
    });
    let (line, summary, logs, _) = run_lambda(&w, &url, broken);
    assert!(line.ends_with("/response HTTP/1.1"), "{summary}\n{logs}");
    assert!(
        summary["unreadable"]
            .as_str()
            .is_some_and(|s| s.contains("image-digest")),
        "{summary}"
    );
    assert!(logs.contains("event cannot be handled"), "{logs}");
    let pages = w.pages().await;
    assert_eq!(pages.len(), 1, "{pages:?}");
    assert_eq!(
        pages[0]["MessageAttributes"]["action"]["Value"],
        "unreadable"
    );
    assert!(pages[0]["Message"]
        .as_str()
        .unwrap_or("")
        .contains("9d1f0c2a-0000-4000-8000-00000000bad1"));
}

#[test]
fn the_lambda_refuses_to_start_without_its_table() {
    let out = Command::new(env!("CARGO_BIN_EXE_ecr-tag-guard"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .expect("binary runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TAG_GUARD_TABLE is not set"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
