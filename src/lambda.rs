//! The Lambda entry point: one invocation at a time, told once what it is ([`Invocation`]),
//! through the same use cases the commands run. An error worth a retry fails the invocation
//! as [`InvocationError::Retryable`], so Lambda retries it and, after the retries, sends it to
//! the on-failure destination. An error no retry can mend is not retried: it is logged with
//! the event and paged once, truly — `unreadable` for an event that cannot be read,
//! `not_handled` for one that was read and then stopped (access denied, a page SNS refused) —
//! and only if that page cannot be sent does the invocation fail. Nothing is dropped silently.
//! A batch from the registry table's stream is answered with a partial-batch response naming
//! the records to retry; the schedule's event starts a reconcile.

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::Value;
use tracing::error;

use crate::config::Config;
use crate::error::Error;
use crate::events::stream::StreamRecord;
use crate::ports::{Images, Ledger, Pager, PinKey, Registry, Trail};
use crate::service::reconcile::ReconcileReport;
use crate::service::{Handler, Now, Report};

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

/// What one invocation is, told once from its payload's shape.
#[derive(Debug)]
pub enum Invocation {
    /// A batch from the registry table's stream: register what was written.
    Stream(Vec<Result<StreamRecord, (String, String)>>),
    /// The EventBridge schedule's event: reconcile.
    Schedule,
    /// Anything else: an event for the guard (read, or paged as unreadable).
    Event,
}

impl Invocation {
    /// Classifies a payload.
    pub fn of(payload: &Value) -> Invocation {
        if let Some(records) = crate::events::stream::stream_records(payload) {
            return Invocation::Stream(records);
        }
        let field = |f: &str| payload.get(f).and_then(Value::as_str);
        if field("source") == Some("aws.events") && field("detail-type") == Some("Scheduled Event")
        {
            return Invocation::Schedule;
        }
        Invocation::Event
    }
}

/// What an invocation answers.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Summary {
    /// A stream batch: the records Lambda should send again (its partial-batch response).
    Batch {
        /// `{"itemIdentifier": SEQUENCE_NUMBER}` per record that failed.
        #[serde(rename = "batchItemFailures")]
        batch_item_failures: Vec<ItemFailure>,
    },
    /// A reconcile run, in counts.
    Reconcile(ReconcileSummary),
    /// An event handled.
    Event(EventSummary),
    /// An event no retry can handle, paged.
    Unreadable {
        /// Why.
        unreadable: String,
    },
}

/// One record of a stream batch to send again.
#[derive(Debug, Serialize)]
pub struct ItemFailure {
    /// The record's sequence number.
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// A reconcile run, in counts (the details are in the logs, the history and the pages).
#[derive(Debug, Serialize)]
pub struct ReconcileSummary {
    /// Always `true`: tells this summary apart.
    pub reconcile: bool,
    /// Repositories in the registry.
    pub repositories: usize,
    /// Tags checked.
    pub checked: usize,
    /// Tags found where they belong.
    pub ok: usize,
    /// Repairs decided.
    pub repairs: usize,
    /// Pages sent.
    pub pages: usize,
    /// Invalid items.
    pub invalid: usize,
    /// What went wrong without stopping the run.
    pub warnings: Vec<String>,
    /// Drifts left to their own event for now.
    pub waiting: usize,
    /// Items outside the guard's scope.
    pub out_of_scope: usize,
    /// Repositories the run could not get through.
    pub failures: Vec<String>,
    /// Repositories left for the next run.
    pub left: usize,
    /// Pins sealed.
    pub sealed: usize,
    /// The guard's own tags let go of or retired.
    pub guard_tags: Vec<String>,
}

impl From<&ReconcileReport> for ReconcileSummary {
    fn from(r: &ReconcileReport) -> Self {
        ReconcileSummary {
            reconcile: true,
            repositories: r.repositories,
            checked: r.checked,
            ok: r.ok,
            repairs: r.repairs.len(),
            pages: r.pages.len(),
            invalid: r.invalid.len(),
            warnings: r.warnings.clone(),
            waiting: r.waiting.len(),
            out_of_scope: r.out_of_scope.len(),
            failures: r.failures.clone(),
            left: r.left,
            sealed: r.sealed.len(),
            guard_tags: r.guard_tags.clone(),
        }
    }
}

/// An event handled, in counts.
#[derive(Debug, Serialize)]
pub struct EventSummary {
    /// Its id.
    pub event_id: Option<String>,
    /// Why it was none of the guard's business, if it was not.
    pub ignored: Option<String>,
    /// A delivery of an event handled before.
    pub duplicate: bool,
    /// Decisions made.
    pub decisions: usize,
    /// Pages sent.
    pub pages: usize,
}

impl From<&Report> for EventSummary {
    fn from(r: &Report) -> Self {
        EventSummary {
            event_id: r.event_id.clone(),
            ignored: r.ignored.clone(),
            duplicate: r.duplicate,
            decisions: r.decisions.len(),
            pages: r.pages.len(),
        }
    }
}

/// Why an invocation failed, as the runtime reports it (`errorType`): whether Lambda's retry
/// can help.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// Throttling, a 5xx, a lease still held: worth Lambda's retry.
    #[error("{0}")]
    Retryable(Error),
    /// Not worth a retry (the page saying so could not be sent either).
    #[error("{0}")]
    Final(Error),
}

impl From<Error> for InvocationError {
    fn from(e: Error) -> Self {
        if e.is_retryable() {
            InvocationError::Retryable(e)
        } else {
            InvocationError::Final(e)
        }
    }
}

impl From<InvocationError> for Diagnostic {
    fn from(e: InvocationError) -> Diagnostic {
        let error_type = match e {
            InvocationError::Retryable(_) => "Retryable",
            InvocationError::Final(_) => "NotRetryable",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// Handles one invocation at `now` (its claims last past the invocation's deadline) and
/// returns its summary.
pub async fn invoke<R: Registry, I: Images, P: Pager, L: Ledger, K: PinKey>(
    handler: &Handler<R, I, P, L, K>,
    trail: &impl Trail,
    event: &Value,
    now: &Now,
    deadline: Option<std::time::Instant>,
) -> Result<Summary, InvocationError> {
    // Boxed: the use cases' futures are large, and nested they overflow the compiler's layout
    // query depth.
    match Invocation::of(event) {
        Invocation::Stream(records) => {
            let report = Box::pin(handler.register(&records, now)).await;
            let failures = report.failures.into_iter();
            Ok(Summary::Batch {
                batch_item_failures: failures
                    .map(|item_identifier| ItemFailure { item_identifier })
                    .collect(),
            })
        }
        Invocation::Schedule => {
            let mut progress = |_: usize, _: usize, _: &crate::registry::RepoKey| {};
            let run = handler.reconcile_until(now, trail, deadline, &mut progress);
            let report = Box::pin(run).await.inspect_err(|e| {
                error!(retryable = e.is_retryable(), error = %e, "reconcile stopped");
            })?;
            emit(crate::metrics::for_reconcile(&report, now_ms()));
            Ok(Summary::Reconcile(ReconcileSummary::from(&report)))
        }
        Invocation::Event => match Box::pin(handler.handle(event, now)).await {
            Ok(report) => {
                emit(crate::metrics::for_event(&report, now_ms()));
                Ok(Summary::Event(EventSummary::from(&report)))
            }
            Err(e) if e.is_retryable() => {
                error!(retryable = true, error = %e, "event not handled; failing the invocation so it is retried");
                Err(InvocationError::Retryable(e))
            }
            Err(e) => {
                // No retry can mend it: not retried, but logged with the event and paged once.
                // Only when the page cannot be sent does the invocation fail (and, after the
                // retries, the event lands in the on-failure destination).
                error!(retryable = false, error = %e, event = %crate::text::clean(&event.to_string(), 8192), "event cannot be handled");
                Box::pin(handler.page_unreadable(event, &e, now)).await?;
                Ok(Summary::Unreadable {
                    unreadable: e.to_string(),
                })
            }
        },
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_invocation_is_told_by_its_shape() {
        let stream = json!({"Records": [{"eventSource": "aws:dynamodb", "eventName": "INSERT",
            "dynamodb": {"SequenceNumber": "1", "NewImage": {}}}]});
        assert!(matches!(Invocation::of(&stream), Invocation::Stream(r) if r.len() == 1));
        let schedule = json!({"source": "aws.events", "detail-type": "Scheduled Event"});
        assert!(matches!(Invocation::of(&schedule), Invocation::Schedule));
        let sqs = json!({"Records": [{"eventSource": "aws:sqs"}]});
        assert!(matches!(Invocation::of(&sqs), Invocation::Event));
        assert!(matches!(
            Invocation::of(&json!({"detail-type": "ECR Image Action"})),
            Invocation::Event
        ));
    }

    #[test]
    fn the_runtime_learns_whether_a_retry_can_help() {
        let retry = Error::Call(crate::error::CallError {
            op: "ecr:PutImage".into(),
            message: "ThrottlingException".into(),
            retryable: true,
        });
        let d: Diagnostic = InvocationError::from(retry).into();
        assert_eq!(d.error_type, "Retryable");
        let fatal = Error::Call(crate::error::CallError::fatal(
            "sns:Publish",
            "AuthorizationError",
        ));
        let d: Diagnostic = InvocationError::from(fatal).into();
        assert_eq!(d.error_type, "NotRetryable");
        assert!(
            d.error_message.contains("AuthorizationError"),
            "{}",
            d.error_message
        );
    }

    #[test]
    fn summaries_keep_the_fields_the_lambda_answered_with() {
        let batch = Summary::Batch {
            batch_item_failures: vec![ItemFailure {
                item_identifier: "7".into(),
            }],
        };
        assert_eq!(
            serde_json::to_value(batch).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "7"}]})
        );
        let r = ReconcileReport::default();
        let v = serde_json::to_value(Summary::Reconcile(ReconcileSummary::from(&r))).unwrap();
        assert_eq!(v["reconcile"], true);
        assert_eq!(v["failures"], json!([]));
        let u = Summary::Unreadable {
            unreadable: "x".into(),
        };
        assert_eq!(serde_json::to_value(u).unwrap(), json!({"unreadable": "x"}));
    }
}
