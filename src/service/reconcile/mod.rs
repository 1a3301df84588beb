//! Reconcile: every registry item compared with ECR and put right, without an event. Run on
//! a schedule by the Lambda and by `ecr-tag-guard reconcile`. Reads are batched per
//! repository (one `BatchGetImage` per 100 tags, keep-alive tags included), so the cost grows
//! with repositories, not with calls per tag. Repairs go through the same
//! [`Handler::act`](crate::service::Handler) as events. A fix (a restore, a revert) is paged
//! like one from an event; a problem that persists (a refusal, a failure, an alert) is paged
//! once per incident: its first sighting claims a once-only record, which lapses after
//! [`LEDGER_TTL_SECS`](crate::ports::LEDGER_TTL_SECS).

use std::collections::{BTreeSet, HashMap};

use futures::StreamExt;

use tracing::{info, warn};

use super::history::{log_decision, record};
use super::{Handled, Handler, Now};
use crate::error::Error;
use crate::events::Incident;
use crate::guard::reconcile::{needs_caller, pin_first_seen, repair};
use crate::guard::status::{self, TagState};
use crate::guard::{self, Action, Outcome};
use crate::page;
use crate::ports::{Images, Ledger, Pager, PinKey, Registry, Trail};
use crate::registry::{split_valid, Entry, InvalidEntry, RepoKey, TagRule};
use callers::{TrailReads, TRAIL_LOOKBACK_SECS};
use paging::PageBudget;

mod callers;
mod paging;
mod report;

pub use report::ReconcileReport;

impl<R: Registry, I: Images, P: Pager, L: Ledger, K: PinKey> Handler<R, I, P, L, K> {
    /// Reconciles every item; `progress(done, total, repo)` is told as each repository is
    /// finished. With `dry_run`, decides and reports only.
    pub async fn reconcile(
        &self,
        now: &Now,
        trail: &impl Trail,
        progress: &mut dyn FnMut(usize, usize, &RepoKey),
    ) -> Result<ReconcileReport, Error> {
        self.reconcile_until(now, trail, None, progress).await
    }

    /// [`Self::reconcile`] that starts no repository after `deadline` (the Lambda's time
    /// running out): the ones left are counted in [`ReconcileReport::left`] and go first next
    /// time — repositories are taken least recently reconciled first.
    pub async fn reconcile_until(
        &self,
        now: &Now,
        trail: &impl Trail,
        deadline: Option<std::time::Instant>,
        progress: &mut dyn FnMut(usize, usize, &RepoKey),
    ) -> Result<ReconcileReport, Error> {
        let mut report = ReconcileReport::default();
        if !self.dry_run {
            // What an earlier run found but could not page goes out first.
            report.tell(self.send_unsent(now).await);
        }
        let callers = TrailReads {
            trail,
            since: now.epoch - TRAIL_LOOKBACK_SECS,
            read: HashMap::new(),
        };
        let (repos, rule_list, noted) = self.plan_run(&mut report).await?;
        let total = repos.len();
        let run = Run {
            id: run_id(now),
            now,
            rules: &rule_list,
            callers: futures::lock::Mutex::new(callers),
            pages: PageBudget::new(self.tuning.pages_per_run),
            noted,
        };
        let run = &run;
        let mut started = 0;
        let runs = repos
            .into_iter()
            .take_while(|_| deadline.is_none_or(|d| std::time::Instant::now() < d))
            .inspect(|_| started += 1)
            .map(|repo| async move {
                let mut part = ReconcileReport::default();
                self.reconcile_one(run, &repo, &mut part).await;
                (repo, part)
            });
        // Repositories side by side, at most `reconcile_concurrency` at a time.
        let mut runs =
            futures::stream::iter(runs).buffer_unordered(self.tuning.reconcile_concurrency.max(1));
        let (mut done, mut finished) = (0, Vec::new());
        while let Some((repo, part)) = runs.next().await {
            done += 1;
            if part.failures.is_empty() {
                finished.push(repo.key());
            }
            report.merge(part);
            progress(done, total, &repo);
            if finished.len() >= 25 {
                self.note_reconciled(&mut finished, now, &mut report).await;
            }
        }
        drop(runs);
        self.note_reconciled(&mut finished, now, &mut report).await;
        report.tell(self.send_summary(&run.pages, &run.id, now).await);
        report.sort();
        report.repositories = total;
        report.left = total - started;
        Ok(report)
    }

    /// What a run reads first: the repositories to visit, least recently reconciled first
    /// (those with items, and those noted as holding retired guard tags), the pattern rules,
    /// and the noted repositories. What cannot be read but the items is a warning of the run.
    async fn plan_run(
        &self,
        report: &mut ReconcileReport,
    ) -> Result<(Vec<RepoKey>, Vec<TagRule>, BTreeSet<String>), Error> {
        let (partitions, rules, last, noted) = futures::join!(
            self.registry.repositories(),
            self.registry.rules(),
            self.ledger.reconciled(),
            self.ledger.guard_tag_repositories()
        );
        // Not read: a warning of the run; a later one visits them.
        let noted: BTreeSet<String> = match noted {
            Ok(noted) => noted.into_iter().collect(),
            Err(e) => {
                report.warnings.push(format!(
                    "repositories with retired guard tags not read: {e}"
                ));
                BTreeSet::new()
            }
        };
        // Repositories holding retired guard tags are visited too, items or not.
        let partitions: Vec<String> = partitions?
            .into_iter()
            .chain(noted.iter().cloned())
            .collect::<BTreeSet<String>>()
            .into_iter()
            .collect();
        let (rule_list, bad_rules) = split_valid(rules?);
        report.invalid.extend(bad_rules);
        let last: HashMap<String, i64> = last
            .unwrap_or_else(|e| {
                report
                    .warnings
                    .push(format!("reconcile order not read: {e}"));
                Vec::new()
            })
            .into_iter()
            .collect();
        let repos = repositories(partitions, &rule_list, &last, &mut report.invalid);
        Ok((repos, rule_list, noted))
    }

    /// Notes the repositories reconciled (not in a dry run); a failed note is a warning.
    async fn note_reconciled(
        &self,
        finished: &mut Vec<String>,
        now: &Now,
        report: &mut ReconcileReport,
    ) {
        if self.dry_run || finished.is_empty() {
            return;
        }
        if let Err(e) = self.ledger.mark_reconciled(finished, now.epoch).await {
            report
                .warnings
                .push(format!("reconcile progress not noted: {e}"));
        }
        finished.clear();
    }

    /// One repository on its own: its items read (only its own: the run never holds the
    /// whole registry); outside the scope they are only reported; otherwise repaired, then its
    /// rules brought in line. A failure is named, paged once, and the run goes on.
    async fn reconcile_one<T: Trail>(
        &self,
        run: &Run<'_, T>,
        repo: &RepoKey,
        report: &mut ReconcileReport,
    ) {
        let result = async {
            let (entries, invalid) = split_valid(self.registry.entries(repo).await?);
            report.invalid.extend(invalid);
            if let Some(why) = self.scope.outside(repo) {
                info!(repository = %repo, why, "reconcile: outside the guard's scope");
                report
                    .out_of_scope
                    .extend(entries.iter().map(|e| format!("{repo}:{}: {why}", e.tag)));
                return Ok(Vec::new());
            }
            let entries = guard::rules::effective(entries, run.rules);
            self.reconcile_repo(run, repo, &entries, report).await?;
            // After the repairs, so a protected image just put back counts as there.
            let changes = self
                .materialise(repo, run.rules, &entries, None, &run.id, run.now)
                .await?;
            let noted = run.noted.contains(&repo.key());
            let swept = self
                .sweep_guard_tags(repo, &entries, &changes, noted, run.now)
                .await?;
            report.guard_tags.extend(swept);
            Ok(changes)
        }
        .await;
        match result {
            Ok(changes) => report.rule_changes.extend(changes),
            Err(e) => self.repository_failed(run, repo, &e, report).await,
        }
    }

    /// A repository reconcile could not get through: named in the report and the log, paged
    /// once per repository and kind of error (a page that cannot be sent is a warning: the
    /// next run tries again).
    async fn repository_failed<T: Trail>(
        &self,
        run: &Run<'_, T>,
        repo: &RepoKey,
        e: &Error,
        report: &mut ReconcileReport,
    ) {
        warn!(repository = %repo, retryable = e.is_retryable(), error = %e, "reconcile: repository not reconciled");
        report.failures.push(format!("{repo}: {e}"));
        if self.dry_run {
            return;
        }
        let op = match e {
            Error::Call(c) => c.op.clone(),
            other => other.to_string(),
        };
        let key = format!("reconcile-failure/{repo}/{op}");
        match self.claim_problem(&key, run.now).await {
            Ok(false) => {}
            Ok(true) => {
                let p = page::repository_failure(repo, &e.to_string());
                let folded = page::SummaryPart::failure(repo, &e.to_string());
                let told = self
                    .page_repository(&run.pages, p, folded, vec![key], run.now)
                    .await;
                report.tell(told);
            }
            Err(pe) => report
                .warnings
                .push(format!("{repo}: the page about it was not sent: {pe}")),
        }
    }

    async fn reconcile_repo<T: Trail>(
        &self,
        run: &Run<'_, T>,
        repo: &RepoKey,
        entries: &[Entry],
        report: &mut ReconcileReport,
    ) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        let now = run.now;
        let decisions = self
            .repairs(repo, entries, now, &run.callers, report)
            .await?;
        if decisions.is_empty() {
            return Ok(());
        }
        let incident = Incident::found(
            run_id(now),
            "reconcile",
            &now.rfc3339,
            repo,
            "reconcile (no event named the change)",
        );
        if self.dry_run {
            for d in decisions {
                log_decision(&incident, &d, None);
                report.repairs.push(Handled {
                    decision: d,
                    outcome: None,
                });
            }
            return Ok(());
        }
        self.carry_out_repairs(&run.pages, &incident, decisions, entries, now, report)
            .await
    }

    /// What to do about each entry of one repository, from how it stands in ECR now (one
    /// batched read); ok entries are counted.
    async fn repairs<T: Trail>(
        &self,
        repo: &RepoKey,
        entries: &[Entry],
        now: &Now,
        callers: &futures::lock::Mutex<TrailReads<'_, T>>,
        report: &mut ReconcileReport,
    ) -> Result<Vec<guard::Decision>, Error> {
        let prefix = &self.scope.keep_prefix;
        let standings = read_standings(&self.images, repo, entries, prefix).await?;
        let (entries, sealed) = self.seal_confirmed(entries, &standings).await?;
        report.sealed.extend(sealed);
        let mut decisions = Vec::new();
        for (e, (s, found)) in entries.iter().zip(standings) {
            report.checked += 1;
            let decision = match (&s, found) {
                (TagState::NotPinned, Some(digest)) => Some(pin_first_seen(e, &digest)),
                _ => repair(e, &s, prefix),
            };
            match decision {
                Some(d) if needs_caller(&d) => match self.with_caller(d, &s, now, callers).await? {
                    Ok(d) => decisions.push(d),
                    Err(told) => report.tell([told]),
                },
                Some(d) => decisions.push(d),
                None if s.is_ok() => report.ok += 1,
                None => {}
            }
        }
        Ok(decisions)
    }

    /// Carries out the repairs of one repository and pages them as one: the fixes, and the
    /// problems not paged before (once per incident); keep-alive tags go back and history is
    /// written.
    async fn carry_out_repairs(
        &self,
        pages: &PageBudget,
        incident: &Incident,
        decisions: Vec<guard::Decision>,
        entries: &[Entry],
        now: &Now,
        report: &mut ReconcileReport,
    ) -> Result<(), Error> {
        let repo = &incident.repo;
        let seals = self.check_seals(&decisions).await?;
        let results = super::bounded(
            self.tuning.call_concurrency,
            decisions
                .iter()
                .map(|d| self.act(repo, d, entries, &seals, now)),
        )
        .await;
        let mut history = Vec::new();
        let (mut alarms, mut keys) = (Vec::new(), Vec::new());
        let first = report.repairs.len();
        for (d, result) in decisions.into_iter().zip(results) {
            let outcome = match result {
                Ok(o) => o,
                Err(e) if e.is_retryable() => {
                    warn!(repository = %repo, tag = %d.tag, error = %e, "reconcile: left for the next run");
                    report.warnings.push(format!("{repo}:{}: {e}", d.tag));
                    continue;
                }
                Err(e) => return Err(e),
            };
            log_decision(incident, &d, Some(&outcome));
            if let Some(alarm) = page::report(&d, &outcome, false) {
                let key = problem_key(&d, &outcome);
                if !outcome.is_problem() {
                    alarms.push((report.repairs.len(), alarm));
                } else if self.claim_problem(&key, now).await? {
                    alarms.push((report.repairs.len(), alarm));
                    keys.push(key);
                } else {
                    info!(repository = %repo, tag = %d.tag, "reconcile: problem already paged");
                }
            }
            if d.action != Action::Nothing {
                history.push(record(incident, &d, &outcome, now));
            }
            report.repairs.push(Handled {
                decision: d,
                outcome: Some(outcome),
            });
        }
        let mine = &report.repairs[first..];
        // Restored tags get their keep-alive tag back now, not at the next run.
        let done: Vec<(&guard::Decision, &Outcome)> = mine
            .iter()
            .filter_map(|h| h.outcome.as_ref().map(|o| (&h.decision, o)))
            .collect();
        let keep = guard::keep_alive_steps(&done, &self.scope.keep_prefix);
        let alarms: Vec<(&guard::Decision, page::Alarm)> = alarms
            .into_iter()
            .map(|(i, a)| (&report.repairs[i].decision, a))
            .collect();
        let paged =
            page::render_all(incident, &alarms).map(|p| (p, page::SummaryPart::of(repo, &alarms)));
        self.put_keep_alive(repo, &keep).await;
        if !history.is_empty() {
            if let Err(e) = self.registry.add_history(&history).await {
                report.warnings.push(format!("history not written: {e}"));
            }
        }
        if let Some((p, folded)) = paged {
            let told = self.page_repository(pages, p, folded, keys, now).await;
            report.tell(told);
        }
        Ok(())
    }
}

/// Each entry's standing (and the digest its tag sits on now) in one repository, from one
/// batched `BatchGetImage` of its tags and keep-alive tags plus the images ECR keeps out of
/// standard storage. `status` and reconcile both read ECR through this.
pub async fn read_standings<I: Images>(
    images: &I,
    repo: &RepoKey,
    entries: &[Entry],
    keep_prefix: &str,
) -> Result<Vec<(TagState, Option<String>)>, Error> {
    let tags = status::tags_to_read(entries, keep_prefix);
    let seen = images.lookup(repo, &tags).await?;
    let stored = match seen {
        Some(_) => images.off_standard(repo).await?,
        None => Vec::new(),
    };
    Ok(status::standings(
        entries,
        keep_prefix,
        &tags,
        seen.as_deref(),
        &stored,
    ))
}

/// Every repository with items (`partitions`; one that is not `ACCOUNT/REGION/NAME` is
/// reported in `invalid`) or named by a rule exactly, the least recently reconciled first
/// (never: first of all), ties by name.
fn repositories(
    partitions: Vec<String>,
    rules: &[TagRule],
    last: &HashMap<String, i64>,
    invalid: &mut Vec<InvalidEntry>,
) -> Vec<RepoKey> {
    let mut repos = BTreeSet::new();
    for p in partitions {
        match RepoKey::parse(&p) {
            Ok(repo) => {
                repos.insert(repo);
            }
            Err(e) => invalid.push(InvalidEntry {
                key: p,
                problems: vec![e.to_string()],
            }),
        }
    }
    // A rule naming one repository exactly covers it before it has any item.
    for r in rules {
        if let Ok(repo) = RepoKey::parse(&r.repositories) {
            repos.insert(repo);
        }
    }
    let mut repos: Vec<RepoKey> = repos.into_iter().collect();
    repos.sort_by_key(|r| last.get(&r.key()).copied().unwrap_or(i64::MIN));
    repos
}

/// What one reconcile run shares among its repositories.
struct Run<'a, T> {
    /// The run's id, in logs, pages and history.
    id: String,
    now: &'a Now,
    rules: &'a [TagRule],
    /// Who changed what, asked of CloudTrail at most once per account and region.
    callers: futures::lock::Mutex<TrailReads<'a, T>>,
    /// The run's page budget.
    pages: PageBudget,
    /// Repositories noted as holding retired guard tags.
    noted: BTreeSet<String>,
}

/// The once-only key of a problem reconcile pages: the tag, its pin and the kind of outcome.
fn problem_key(d: &guard::Decision, outcome: &Outcome) -> String {
    format!(
        "reconcile/{}:{}/{}/{}",
        d.entry.repo,
        d.tag,
        d.entry.digest().unwrap_or("-"),
        outcome.name()
    )
}

/// The id of one reconcile run, in logs, pages and history.
fn run_id(now: &Now) -> String {
    format!("reconcile-{}", now.epoch)
}
