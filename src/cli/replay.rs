//! `replay`: events through the same handler the Lambda runs, on the embedded world (after
//! making the recorded change happen in it) or against AWS.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::json;

use crate::config::Config;
use crate::events::input::{Loaded, Step};
use crate::events::{self, Change, Parsed};
use crate::guard::{Outcome, Scope};
use crate::memory::{Memory, Scenario};
use crate::ports::{Images, Ledger, Pager, PinKey, Registry};
use crate::service::{Handler, Now, Report};
use crate::text::short_digest;

/// What `replay` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Files and directories of events.
    pub paths: Vec<PathBuf>,
    /// Scenario file (embedded world only).
    pub state: Option<PathBuf>,
    /// Where to write the final state (embedded world only).
    pub save_state: Option<PathBuf>,
    /// JSON lines output.
    pub json: bool,
    /// Full page text.
    pub verbose: bool,
    /// Problems and the summary only: an event's story is printed only when it failed, or
    /// the guard could not put a tag back, or it warns.
    pub quiet: bool,
    /// Real AWS clients.
    pub aws: bool,
    /// No writes (with `aws`).
    pub dry_run: bool,
    /// With `aws`: the table, topic, pin key and AWS configuration (the global options).
    pub aws_options: super::Global,
}

/// Runs the replay, writing to `out`. `Ok(false)` when some input could not be handled.
pub async fn replay(opts: &ReplayOptions, out: &mut impl Write) -> anyhow::Result<bool> {
    let files = crate::files::expand(&opts.paths)?;
    if files.is_empty() {
        bail!("no event files in {}", show(&opts.paths));
    }
    if opts.aws {
        if opts.state.is_some() || opts.save_state.is_some() {
            bail!(
                "--state and --save-state describe the embedded world; they do not go with --aws"
            );
        }
        let lookup = |k: &str| match k {
            crate::config::TABLE => opts.aws_options.table.clone(),
            crate::config::TOPIC_ARN => opts.aws_options.topic_arn.clone(),
            crate::config::PIN_KEY => opts.aws_options.pin_key.clone(),
            _ => std::env::var(k).ok(),
        };
        let cfg = Config::from_lookup(lookup)?;
        let sdk = super::sdk_config(&opts.aws_options).await;
        let home = super::caller_account(&sdk, &cfg).await?;
        let handler = crate::wiring::from_config(&sdk, &cfg, home, opts.dry_run)?;
        return run(&handler, None, &files, opts, out).await;
    }
    let (scenario, name) = match &opts.state {
        Some(p) => (Scenario::load(p)?, p.display().to_string()),
        None => {
            let default = Path::new("events").join(crate::files::SCENARIO_FILE);
            if default.exists() {
                (Scenario::load(&default)?, default.display().to_string())
            } else {
                (Scenario::default(), "(empty world)".to_string())
            }
        }
    };
    let role = scenario.guard_role_arn.clone();
    let world = Memory::new(scenario.into_state(&name)?);
    let settings = crate::config::Settings {
        scope: Scope {
            own_role_arn: role.clone(),
            ..Scope::default()
        },
        ..Default::default()
    };
    let handler = crate::wiring::embedded(&world, settings, false);
    if !opts.json {
        writeln!(
            out,
            "replaying {} file(s) on the embedded world from {name}\n",
            files.len()
        )?;
    }
    let ok = run(&handler, Some(&world), &files, opts, out).await?;
    if let Some(path) = &opts.save_state {
        let saved = Scenario::from_state(&world.state(), role);
        let text = serde_json::to_string_pretty(&saved)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ok)
}

/// What a replay has counted and told so far.
#[derive(Default)]
struct Tally {
    handled: usize,
    failed: usize,
    /// The changes made on the embedded world (each once).
    applied: HashSet<String>,
    /// Invalid registry items, each told once per run (the first event that reads it).
    invalid: Vec<String>,
}

async fn run<R: Registry, I: Images, P: Pager, L: Ledger, K: PinKey>(
    handler: &Handler<R, I, P, L, K>,
    world: Option<&Memory>,
    files: &[PathBuf],
    opts: &ReplayOptions,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let mut tally = Tally::default();
    // Over many files, a bar on a terminal's stderr while the story goes to a file.
    let bar = super::progress::bar("files", true);
    bar.set_prefix("replay");
    bar.set_length(files.len() as u64);
    for file in files {
        bar.set_message(file.display().to_string());
        bar.inc(1);
        let loaded = match crate::files::load(file) {
            Ok(l) => l,
            Err(e) => {
                tally.failed += 1;
                error_line(out, opts.json, &e.path, &e.problem)?;
                continue;
            }
        };
        for ev in loaded {
            // A record that cannot be read is named; the file's other records go on.
            match ev {
                Ok(ev) => one(handler, world, &ev, opts, &mut tally, out).await?,
                Err(e) => {
                    tally.failed += 1;
                    error_line(out, opts.json, &e.path, &e.problem)?;
                }
            }
        }
    }
    bar.finish_and_clear();
    if !opts.json {
        if !tally.invalid.is_empty() {
            writeln!(
                out,
                "{} invalid registry item(s), skipped: {}",
                tally.invalid.len(),
                tally.invalid.join(", ")
            )?;
        }
        writeln!(
            out,
            "{} event(s) handled, {} failed",
            tally.handled, tally.failed
        )?;
    }
    Ok(tally.failed == 0)
}

/// Replays one event: its change made on the embedded world (unless only delivered), then,
/// unless only applied, handled and told.
async fn one<R: Registry, I: Images, P: Pager, L: Ledger, K: PinKey>(
    handler: &Handler<R, I, P, L, K>,
    world: Option<&Memory>,
    ev: &Loaded,
    opts: &ReplayOptions,
    tally: &mut Tally,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if ev.step != Step::Deliver {
        if let (Some(world), Ok(Parsed::Incident(i))) = (world, events::parse(&ev.value)) {
            apply_once(world, i, &mut tally.applied);
        }
    }
    if ev.step == Step::Apply {
        // The change happened; its event is delivered later (or never).
        if opts.json && !opts.quiet {
            writeln!(out, "{}", json!({"input": ev.label, "applied": true}))?;
        } else if !opts.quiet {
            let what = events::parse(&ev.value)
                .ok()
                .and_then(|p| match p {
                    Parsed::Incident(i) => Some(format!("{} on {}", i.source, i.repo)),
                    Parsed::Ignored { .. } => None,
                })
                .unwrap_or_else(|| "an event".into());
            writeln!(out, "{}\n  happened, not delivered yet: {what}\n", ev.label)?;
        }
        return Ok(());
    }
    match handler.handle(&ev.value, &Now::system()).await {
        Ok(report) => {
            tally.handled += 1;
            if opts.json && (!opts.quiet || troubled(&report)) {
                let ms = Now::system().epoch * 1000;
                let metrics = crate::metrics::for_event(&report, ms);
                let line = json!({"input": ev.label, "report": report, "metrics": metrics});
                writeln!(out, "{line}")?;
            } else if !opts.quiet || troubled(&report) {
                human(out, &ev.label, &report, opts.verbose, &mut tally.invalid)?;
            } else {
                note_invalid(out, "", &report, &mut tally.invalid)?;
            }
        }
        Err(e) => {
            tally.failed += 1;
            let retry = if e.is_retryable() {
                " (a retry may help)"
            } else {
                ""
            };
            error_line(out, opts.json, &ev.label, &format!("{e}{retry}"))?;
        }
    }
    Ok(())
}

/// Makes the change an event reports happen in the embedded world, once: a change reported
/// again (the same event delivered twice, or CloudTrail and ECR's own event reporting one
/// delete with the same time) happened only once.
fn apply_once(world: &Memory, mut i: events::Incident, applied: &mut HashSet<String>) {
    if !applied.insert(format!("id|{}", i.event_id)) {
        return;
    }
    let key = |c: &Change| {
        let what = match c {
            Change::TagRemoved { tag, .. } => format!("removed {tag}"),
            Change::ImageDeleted { digest, .. } => format!("deleted {digest}"),
            Change::TagPushed { tag, digest, .. } => format!("pushed {tag} {digest}"),
            Change::RepositoryDeleted => "repository deleted".to_string(),
        };
        format!("{}|{}|{what}", i.repo, i.time)
    };
    let fresh: Vec<Change> = i
        .changes
        .iter()
        .filter(|c| applied.insert(key(c)))
        .cloned()
        .collect();
    if !fresh.is_empty() {
        i.changes = fresh;
        world.apply(&i);
    }
}

/// Whether an event's story holds a problem `--quiet` still shows: a decision the guard
/// could not carry out (failed, refused, untrusted pin) or a warning.
fn troubled(r: &Report) -> bool {
    !r.warnings.is_empty()
        || r.decisions.iter().any(|d| {
            matches!(
                d.outcome,
                Some(Outcome::Failed { .. } | Outcome::Refused { .. } | Outcome::Untrusted { .. })
            )
        })
}

/// Tells the invalid registry items an event met that were not told before (each once per
/// run), each line after `indent`.
fn note_invalid(
    out: &mut impl Write,
    indent: &str,
    r: &Report,
    invalid: &mut Vec<String>,
) -> std::io::Result<()> {
    for bad in &r.invalid_entries {
        if !invalid.contains(&bad.key) {
            invalid.push(bad.key.clone());
            writeln!(
                out,
                "{indent}invalid registry item {}: {}",
                bad.key,
                bad.problems.join("; ")
            )?;
        }
    }
    Ok(())
}

fn error_line(out: &mut impl Write, json: bool, input: &str, problem: &str) -> std::io::Result<()> {
    if json {
        writeln!(out, "{}", json!({"input": input, "error": problem}))
    } else {
        writeln!(out, "{input}\n  ERROR: {problem}\n")
    }
}

/// One event's story for a person; an invalid registry item is told the first time only
/// (`invalid` keeps the ones told).
fn human(
    out: &mut impl Write,
    label: &str,
    r: &Report,
    verbose: bool,
    invalid: &mut Vec<String>,
) -> std::io::Result<()> {
    match &r.incident {
        Some(i) => writeln!(
            out,
            "{label}\n  {} on {} by {}",
            i.source,
            i.repo,
            i.actor.describe(None)
        )?,
        None => writeln!(out, "{label}")?,
    }
    if let Some(reason) = &r.ignored {
        writeln!(out, "  ignored: {reason}")?;
    }
    if let Some(note) = r.incident.as_ref().and_then(|i| i.note.as_ref()) {
        writeln!(out, "  note: {note}")?;
    }
    note_invalid(out, "  ", r, invalid)?;
    if r.duplicate {
        writeln!(out, "  duplicate: already handled, nothing done again")?;
    }
    for c in &r.rule_changes {
        writeln!(
            out,
            "  rule {}: {} {} ({})",
            c.rule,
            c.change.as_str(),
            c.tag,
            short_digest(&c.digest)
        )?;
    }
    if r.ignored.is_none() && r.decisions.is_empty() && !r.duplicate && r.rule_changes.is_empty() {
        writeln!(out, "  no protected tag touched")?;
    }
    for d in &r.decisions {
        let pin = d.decision.entry.digest().map_or("unpinned", short_digest);
        writeln!(
            out,
            "  {} (pin {pin}): {} -> {} -> {}  [{}]",
            d.decision.tag,
            d.decision.cause.name(),
            d.decision.action.name(),
            d.outcome.as_ref().map_or("planned", Outcome::name),
            d.decision.why
        )?;
        let said = match &d.outcome {
            Some(Outcome::Refused { why }) => Some(why.as_str()),
            Some(Outcome::Failed { detail, .. }) => Some(detail.as_str()),
            _ => None,
        };
        if let Some(said) = said {
            writeln!(out, "      {said}")?;
        }
    }
    for p in &r.pages {
        writeln!(out, "  page: {}", p.subject)?;
        if verbose {
            for line in p.message.lines() {
                writeln!(out, "      | {line}")?;
            }
        }
    }
    for w in &r.warnings {
        writeln!(out, "  warning: {w}")?;
    }
    writeln!(out)
}

fn show(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
