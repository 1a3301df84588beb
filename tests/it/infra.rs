//! The deployment template and the binary agree: the environment variables the template
//! sets are exactly those the binary reads. (The template's lint, security scan and
//! EventBridge patterns are checked by scripts/check-infra.sh, which needs Python tools.)

use std::collections::BTreeSet;

/// The keys of the `Variables:` mapping of the function's `Environment` in
/// infra/template.yaml, read by indentation (the template is the project's own).
fn template_variables() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/infra/template.yaml"))
        .expect("template");
    let mut lines = text.lines().skip_while(|l| l.trim() != "Variables:");
    let header = lines
        .next()
        .expect("the template sets Environment Variables");
    let depth = |l: &str| l.len() - l.trim_start().len();
    let base = depth(header);
    lines
        .take_while(|l| l.trim().is_empty() || depth(l) > base)
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| l.trim().split_once(':').map(|(k, _)| k.to_string()))
        .collect()
}

#[test]
fn the_template_sets_exactly_the_variables_the_binary_reads() {
    let template = template_variables();
    let binary: BTreeSet<String> = ecr_tag_guard::config::VARS
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(template, binary);
}

#[test]
fn the_template_names_the_ttl_attribute_the_ledger_writes() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/infra/template.yaml"))
        .expect("template");
    let ttl = format!("AttributeName: {}", ecr_tag_guard::aws::TTL_ATTRIBUTE);
    assert!(
        text.contains(&ttl),
        "the table's TTL attribute must be {}",
        ecr_tag_guard::aws::TTL_ATTRIBUTE
    );
}

#[test]
fn waits_and_margins_fit_inside_an_invocation() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/infra/template.yaml"))
        .expect("template");
    let timeout: i64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Timeout: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the function's Timeout");
    // The Lambda's claims last past its own deadline (`Now::until`); what must fit inside
    // the timeout is the wait for a duplicate's other invocation and reconcile's last stretch.
    let busy_wait = ecr_tag_guard::service::Tuning::default().busy_wait_ms as i64 / 1000;
    let margin = ecr_tag_guard::lambda::RECONCILE_MARGIN.as_secs() as i64;
    assert!(
        busy_wait * 4 <= timeout && margin * 2 <= timeout,
        "a duplicate waits {busy_wait} s and reconcile stops {margin} s early: the {timeout} s timeout leaves too little room"
    );
}

#[test]
fn the_dashboard_and_alarms_read_the_metrics_the_binary_writes() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/infra/template.yaml"))
        .expect("template");
    assert!(text.contains(&format!("Namespace: {}", ecr_tag_guard::metrics::NAMESPACE)));
    for name in ecr_tag_guard::metrics::METRICS {
        assert!(
            text.contains(&format!("MetricName=\\\"{name}\\\"")),
            "the dashboard graphs {name}"
        );
    }
    assert!(
        text.contains("MetricName: Decisions, Dimensions: [{Name: Outcome, Value: untrusted_pin}]")
    );
}
