//! `reconcile [--dry-run]`: the scheduled repair, run by hand against AWS.

use std::io::Write;

use crate::config::Config;
use crate::guard::Outcome;
use crate::memory::{Memory, Scenario};
use crate::service::reconcile::ReconcileReport;
use crate::service::Now;
use crate::text::short_digest;

/// How a reconcile command runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct How {
    /// Decide and report only.
    pub dry_run: bool,
    /// Check every confirmed pin's seal (`--check-seals`).
    pub check_seals: bool,
}

/// Runs reconcile with the Lambda's configuration (table and topic from the flags or the
/// environment), showing progress on stderr. `Ok(false)` when a problem is left.
pub async fn run(how: How, g: &super::Global, out: &mut impl Write) -> anyhow::Result<bool> {
    let cfg = config(g)?;
    if cfg.pin_key.is_none() {
        // Without it every seal is unknown: each repair would be paged, none made.
        anyhow::bail!("reconcile checks and seals pins: {}", crate::aws::NO_KEY);
    }
    let sdk = super::sdk_config(g).await;
    let home = super::caller_account(&sdk, &cfg).await?;
    let mut handler = crate::wiring::from_config(&sdk, &cfg, home, how.dry_run)?;
    handler.tuning.check_seals = how.check_seals;
    let trail = crate::aws::CloudTrailLookup {
        client: aws_sdk_cloudtrail::Client::new(&sdk),
    };
    let report = handler
        .reconcile(&Now::system(), &trail, &mut progress())
        .await?;
    print(&report, how.dry_run, out)
}

/// `reconcile --state FILE`: the same run on the embedded world (its CloudTrail is the
/// changes the scenario's replays made); `--save-state` keeps the result.
pub async fn run_embedded(
    how: How,
    path: &std::path::Path,
    save: Option<&std::path::Path>,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let world = Memory::new(Scenario::load(path)?.into_state(&path.display().to_string())?);
    let mut settings = crate::config::settings_from_env()?;
    settings.tuning.check_seals = how.check_seals;
    let handler = crate::wiring::embedded(&world, settings, how.dry_run);
    let report = handler
        .reconcile(&Now::system(), &world, &mut progress())
        .await?;
    let ok = print(&report, how.dry_run, out)?;
    if let Some(path) = save {
        super::save_world(&world, path)?;
    }
    Ok(ok)
}

/// The Lambda's configuration, with the table, topic and pin key the flags name (else the
/// environment's).
pub(super) fn config(g: &super::Global) -> Result<Config, crate::error::Error> {
    Config::from_lookup(|k: &str| match k {
        crate::config::TABLE => g.table.clone(),
        crate::config::TOPIC_ARN => g.topic_arn.clone(),
        crate::config::PIN_KEY => g.pin_key.clone(),
        _ => std::env::var(k).ok(),
    })
}

/// Progress on stderr, one line rewritten per repository.
/// Progress on stderr when it is a terminal: a bar over the repositories, the last one named.
fn progress() -> impl FnMut(usize, usize, &crate::registry::RepoKey) {
    let bar = super::progress::bar("repositories", false);
    bar.set_prefix("reconcile");
    move |done, total, repo| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(repo.to_string());
        if done == total {
            bar.finish_and_clear();
        }
    }
}

/// Prints what a run did; `Ok(false)` when a problem is left.
fn print(report: &ReconcileReport, dry_run: bool, out: &mut impl Write) -> anyhow::Result<bool> {
    let mut left = report.invalid.len() + report.warnings.len() + report.failures.len();
    for r in &report.repairs {
        let d = &r.decision;
        let outcome = r.outcome.as_ref().map_or("planned", Outcome::name);
        if r.outcome.as_ref().is_some_and(Outcome::is_problem) {
            left += 1;
        }
        let action = d.action.name();
        writeln!(
            out,
            "{}:{} (pin {}): {action} -> {outcome}  [{}]",
            d.entry.repo,
            d.tag,
            d.entry.digest().map_or("none", short_digest),
            d.why
        )?;
    }
    for b in &report.invalid {
        writeln!(
            out,
            "invalid registry item {}: {}",
            b.key,
            b.problems.join("; ")
        )?;
    }
    for w in &report.warnings {
        writeln!(out, "warning: {w}")?;
    }
    for f in &report.failures {
        writeln!(out, "not reconciled: {f}")?;
    }
    for w in &report.waiting {
        writeln!(out, "waiting: {w}")?;
    }
    for o in &report.out_of_scope {
        writeln!(out, "outside scope: {o}")?;
    }
    let verb = if dry_run { "would seal" } else { "sealed" };
    for s in &report.sealed {
        writeln!(out, "{verb}: {s} (ECR has the tag on the pinned digest)")?;
    }
    for t in &report.guard_tags {
        writeln!(out, "guard tag: {t}")?;
    }
    writeln!(
        out,
        "{} repositories, {} protected tags: {} ok, {} repaired or reported, {} page(s){}",
        report.repositories,
        report.checked,
        report.ok,
        report.repairs.len(),
        report.pages.len(),
        if dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    )?;
    Ok(left == 0)
}
