//! The Lambda entry point: one EventBridge event per invocation, through the same handler
//! the replay CLI runs. An error worth a retry fails the invocation, so Lambda retries it and,
//! after the retries, sends it to the on-failure destination. An error no retry can mend is
//! not retried: it is logged with the event and paged once, truly — `unreadable` for an event
//! that cannot be read, `not_handled` for one that was read and then stopped (access denied, a
//! page SNS refused) — and only if that page cannot be sent does the invocation fail. Nothing
//! is dropped silently. A batch
//! from the registry table's stream is answered with a partial-batch response naming the
//! records to retry; the schedule's event starts a reconcile.

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};
use tracing::error;

use crate::config::Config;
use crate::ports::{Images, Ledger, Pager, PinKey, Registry, Trail};
use crate::service::{Handler, Now};

/// Runs the Lambda runtime loop. At start it only reads the environment and builds clients:
/// no network call (credentials and region come from the Lambda environment).
pub async fn run() -> Result<(), lambda_runtime::Error> {
    let cfg = Config::from_env()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    // The function's own account comes from TAG_GUARD_ROLE_ARN: no network call at start.
    let handler = crate::wiring::from_config(&sdk, &cfg, None, false)?;
    let trail = crate::aws::CloudTrailLookup {
        client: aws_sdk_cloudtrail::Client::new(&sdk),
    };
    let (handler, trail) = (&handler, &trail);
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| async move {
        let deadline = deadline_of(ev.context.deadline);
        let now = Now::system().until(ev.context.deadline);
        invoke(handler, trail, &ev.payload, &now, deadline).await
    }))
    .await
}

/// How long before the invocation's deadline reconcile stops starting repositories, so the ones
/// under way can finish and the run report its state.
pub const RECONCILE_MARGIN: std::time::Duration = std::time::Duration::from_secs(45);

/// The instant reconcile must stop starting repositories, from the invocation's deadline
/// (milliseconds since the epoch).
fn deadline_of(deadline_ms: u64) -> Option<std::time::Instant> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    let left = std::time::Duration::from_millis(deadline_ms.checked_sub(now_ms)?);
    Some(std::time::Instant::now() + left.saturating_sub(RECONCILE_MARGIN))
}

/// True for the EventBridge schedule's event, which starts a reconcile.
pub fn is_schedule(event: &Value) -> bool {
    event.get("source").and_then(Value::as_str) == Some("aws.events")
        && event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
}

/// Handles one invocation at `now` (its claims last past the invocation's deadline) and
/// returns a short summary: a scheduled event reconciles, any other event goes through the
/// handler.
pub async fn invoke<R: Registry, I: Images, P: Pager, L: Ledger, K: PinKey>(
    handler: &Handler<R, I, P, L, K>,
    trail: &impl Trail,
    event: &Value,
    now: &Now,
    deadline: Option<std::time::Instant>,
) -> Result<Value, lambda_runtime::Error> {
    if let Some(records) = crate::service::registration::stream_records(event) {
        // Boxed: the three handlers' futures are large, and nested they overflow the
        // compiler's layout query depth.
        let report = Box::pin(handler.register(&records, now)).await;
        let failures: Vec<Value> = report
            .failures
            .iter()
            .map(|id| json!({"itemIdentifier": id}))
            .collect();
        return Ok(json!({ "batchItemFailures": failures }));
    }
    if is_schedule(event) {
        let report = Box::pin(handler.reconcile_until(now, trail, deadline, &mut |_, _, _| {}))
            .await
            .map_err(|e| {
                error!(retryable = e.is_retryable(), error = %e, "reconcile stopped");
                Box::new(e) as lambda_runtime::Error
            })?;
        emit(crate::metrics::for_reconcile(&report, now_ms()));
        return Ok(json!({
            "reconcile": true,
            "repositories": report.repositories,
            "checked": report.checked,
            "ok": report.ok,
            "repairs": report.repairs.len(),
            "pages": report.pages.len(),
            "invalid": report.invalid.len(),
            "warnings": report.warnings,
            "waiting": report.waiting.len(),
            "out_of_scope": report.out_of_scope.len(),
            "failures": report.failures,
            "left": report.left,
            "sealed": report.sealed.len(),
            "guard_tags": report.guard_tags,
        }));
    }
    match Box::pin(handler.handle(event, now)).await {
        Ok(report) => {
            emit(crate::metrics::for_event(&report, now_ms()));
            Ok(json!({
                "event_id": report.event_id,
                "ignored": report.ignored,
                "duplicate": report.duplicate,
                "decisions": report.decisions.len(),
                "pages": report.pages.len(),
            }))
        }
        Err(e) if e.is_retryable() => {
            error!(retryable = true, error = %e, "event not handled; failing the invocation so it is retried");
            Err(Box::new(e))
        }
        Err(e) => {
            // No retry can mend it: not retried, but logged with the event and paged once.
            // Only when the page cannot be sent does the invocation fail (and, after the
            // retries, the event lands in the on-failure destination).
            error!(retryable = false, error = %e, event = %crate::text::clean(&event.to_string(), 8192), "event cannot be handled");
            Box::pin(handler.page_unreadable(event, &e, now))
                .await
                .map_err(|p| Box::new(p) as lambda_runtime::Error)?;
            Ok(json!({"unreadable": e.to_string()}))
        }
    }
}

/// Prints metric lines in CloudWatch's embedded metric format on stdout, where Lambda sends
/// them to the function's log group and CloudWatch makes metrics of them (no API call).
fn emit(lines: Vec<Value>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for line in lines {
        // A metric that cannot be written is not worth failing an invocation for.
        let _ = writeln!(out, "{line}");
    }
}

/// The system clock in epoch milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
