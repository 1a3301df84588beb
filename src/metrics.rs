//! Metrics in CloudWatch embedded metric format (EMF): JSON lines the Lambda prints, which
//! CloudWatch Logs turns into metrics with no API call. Pure: a report in, lines out.
//!
//! Namespace `EcrTagGuard`:
//!
//! * `Decisions` (Count), by `Action` and `Outcome` and by `Outcome` alone: one per decision
//!   carried out (`restore`/`restored`, `revert`/`restored`, `follow`/`followed`,
//!   `release`/`released`, `restore`/`refused`, `restore`/`untrusted_pin`, `alert`/`alerted`,
//!   `superseded`/`skipped`, …), and per event the guard did not act on
//!   (`none`/`ignored`, `none`/`duplicate`);
//! * `PagesSent` (Count), by `Source` (`event` or `reconcile`);
//! * `RepairLatency` (Milliseconds), by `Action`: from the event's `eventTime` to the moment
//!   the tag was put back (restored, reverted, followed).
//!
//! Dimensions are few on purpose: tags and repositories are in the pages and the logs.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::guard::Outcome;
use crate::service::event::Report;
use crate::service::reconcile::ReconcileReport;
use crate::service::Handled;

/// The namespace every metric is in.
pub const NAMESPACE: &str = "EcrTagGuard";

/// Decisions, by `Action` and `Outcome`, and by `Outcome`.
pub const DECISIONS: &str = "Decisions";
/// Pages sent, by `Source`.
pub const PAGES_SENT: &str = "PagesSent";
/// From the event's time to the repair, by `Action`.
pub const REPAIR_LATENCY: &str = "RepairLatency";

/// Every metric the guard writes (the template's dashboard and alarms use these names).
pub const METRICS: &[&str] = &[DECISIONS, PAGES_SENT, REPAIR_LATENCY];

/// One EMF document: `metrics` (name, unit, value) under `dimensions` (name, value), at `ts`
/// (epoch milliseconds).
fn document(ts: i64, dimensions: &[(&str, &str)], metrics: &[(&str, &str, f64)]) -> Value {
    let names: Vec<&str> = dimensions.iter().map(|(n, _)| *n).collect();
    // By every dimension given, and by `Outcome` alone when there are several.
    let mut sets = vec![names.clone()];
    if names.len() > 1 && names.contains(&"Outcome") {
        sets.push(vec!["Outcome"]);
    }
    let mut doc = json!({
        "_aws": {
            "Timestamp": ts,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": sets,
                "Metrics": metrics.iter().map(|(n, u, _)| json!({"Name": n, "Unit": u})).collect::<Vec<_>>(),
            }]
        }
    });
    for (n, v) in dimensions {
        doc[*n] = json!(v);
    }
    for (n, _, v) in metrics {
        doc[*n] = json!(v);
    }
    doc
}

/// Decision counts by (action, outcome), in a stable order.
fn counts<'a>(handled: impl Iterator<Item = &'a Handled>) -> BTreeMap<(&'a str, &'a str), u32> {
    let mut counts = BTreeMap::new();
    for h in handled {
        let outcome = h.outcome.as_ref().map_or("planned", Outcome::name);
        *counts
            .entry((h.decision.action.name(), outcome))
            .or_insert(0) += 1;
    }
    counts
}

fn decisions(ts: i64, counts: BTreeMap<(&str, &str), u32>) -> Vec<Value> {
    counts
        .into_iter()
        .map(|((action, outcome), n)| {
            document(
                ts,
                &[("Action", action), ("Outcome", outcome)],
                &[(DECISIONS, "Count", f64::from(n))],
            )
        })
        .collect()
}

fn pages(ts: i64, source: &str, n: usize) -> Vec<Value> {
    match n {
        0 => Vec::new(),
        n => vec![document(
            ts,
            &[("Source", source)],
            &[(PAGES_SENT, "Count", n as f64)],
        )],
    }
}

/// The EMF lines for one event's report, at `now_ms` (epoch milliseconds).
pub fn for_event(report: &Report, now_ms: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let nothing = if report.duplicate {
        Some("duplicate")
    } else if report.ignored.is_some() {
        Some("ignored")
    } else {
        None
    };
    if let Some(outcome) = nothing {
        out.push(document(
            now_ms,
            &[("Action", "none"), ("Outcome", outcome)],
            &[(DECISIONS, "Count", 1.0)],
        ));
    }
    out.extend(decisions(now_ms, counts(report.decisions.iter())));
    let happened = report
        .incident
        .as_ref()
        .and_then(|i| crate::text::parse_time(&Value::String(i.time.clone())));
    if let Some(at) = happened {
        for h in &report.decisions {
            let repaired = matches!(h.outcome, Some(Outcome::Restored | Outcome::Followed));
            if repaired {
                let ms = (now_ms - at * 1000).max(0) as f64;
                out.push(document(
                    now_ms,
                    &[("Action", h.decision.action.name())],
                    &[(REPAIR_LATENCY, "Milliseconds", ms)],
                ));
            }
        }
    }
    out.extend(pages(now_ms, "event", report.pages.len()));
    out
}

/// The EMF lines for one reconcile run.
pub fn for_reconcile(report: &ReconcileReport, now_ms: i64) -> Vec<Value> {
    let mut out = decisions(now_ms, counts(report.repairs.iter()));
    out.extend(pages(now_ms, "reconcile", report.pages.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_what_cloudwatch_reads() {
        let d = document(
            1000,
            &[("Action", "restore"), ("Outcome", "restored")],
            &[("Decisions", "Count", 2.0)],
        );
        assert_eq!(d["_aws"]["Timestamp"], 1000);
        let m = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], "EcrTagGuard");
        assert_eq!(m["Dimensions"], json!([["Action", "Outcome"], ["Outcome"]]));
        assert_eq!(
            m["Metrics"],
            json!([{"Name": "Decisions", "Unit": "Count"}])
        );
        // Every dimension and metric named is a top-level member with its value.
        assert_eq!(
            (d["Action"].clone(), d["Outcome"].clone()),
            (json!("restore"), json!("restored"))
        );
        assert_eq!(d["Decisions"], 2.0);
        let p = pages(5, "event", 2);
        assert_eq!(
            p[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Source"]])
        );
        assert_eq!(
            (p[0]["Source"].clone(), p[0]["PagesSent"].clone()),
            (json!("event"), json!(2.0))
        );
        assert!(pages(5, "event", 0).is_empty(), "no line for nothing");
    }

    #[test]
    fn an_ignored_or_duplicate_event_counts_once_and_pages_nothing() {
        let ignored = Report {
            ignored: Some("not ECR".into()),
            ..Report::default()
        };
        let lines = for_event(&ignored, 1);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["Outcome"], "ignored");
        let dup = Report {
            duplicate: true,
            ..Report::default()
        };
        assert_eq!(for_event(&dup, 1)[0]["Outcome"], "duplicate");
    }
}
