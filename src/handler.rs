//! The one handler the Lambda and the replay CLI both run:
//! parse → look up → decide → act → page → record.
//!
//! Round trips for a deleted protected tag: (1) the registry read and the once-only claim,
//! together; (2) `PutImage`; (3) the page, the history and the ledger's "done", together.
//! A push is read first and claimed only when it touches a protected tag, so an unprotected
//! push costs one read; an event dismissed by its own content costs nothing.

use futures::future::join_all;
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use crate::error::{CallError, Error};
use crate::events::{self, Change, Incident, Parsed};
use crate::guard::present::{self, Present};
use crate::guard::{self, plan_restore, Action, Decision, Outcome, PutStep, Settings};
use crate::page::{self, Page};
use crate::ports::{Claim, HistoryRecord, Images, Ledger, Pager, Put, PutError, Registry};
use crate::registry::{Entry, InvalidEntry, Manifest, Pin, RepoKey};

/// The moment the handler runs, read once by the caller (the core never reads a clock).
#[derive(Clone, Debug)]
pub struct Now {
    /// Seconds since the epoch.
    pub epoch: i64,
    /// The same, RFC 3339.
    pub rfc3339: String,
}

impl Now {
    /// The system clock.
    pub fn system() -> Now {
        let t = time::OffsetDateTime::now_utc();
        Now {
            epoch: t.unix_timestamp(),
            rfc3339: t
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| t.unix_timestamp().to_string()),
        }
    }
}

/// The adapters and settings one handler works with.
pub struct Handler<R, I, P, L> {
    /// The registry of protected tags.
    pub registry: R,
    /// ECR.
    pub images: I,
    /// SNS.
    pub pager: P,
    /// The once-only ledger.
    pub ledger: L,
    /// What is guarded and who the guard is.
    pub settings: Settings,
    /// Decide only: make no write call and no page.
    pub dry_run: bool,
}

/// One decision and how it went.
#[derive(Clone, Debug, Serialize)]
pub struct Handled {
    /// The decision.
    #[serde(flatten)]
    pub decision: Decision,
    /// How acting on it went (`None` in a dry run).
    pub outcome: Option<Outcome>,
}

/// What the handler did with one event.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// The event's id, where known.
    pub event_id: Option<String>,
    /// Why nothing was done, when the event is none of the guard's business.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    /// The facts read from the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<Incident>,
    /// Registry items of the repository that are not valid.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub invalid_entries: Vec<InvalidEntry>,
    /// One per protected tag the event touches.
    pub decisions: Vec<Handled>,
    /// The pages published.
    pub pages: Vec<Page>,
    /// Pins that pattern rules added or released because of this event.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rule_changes: Vec<crate::rules::RuleChange>,
    /// The event had been handled before: nothing was done again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// Things that went wrong without failing the event (a lost history write).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl<R: Registry, I: Images, P: Pager, L: Ledger> Handler<R, I, P, L> {
    /// Handles one event. An `Err` that [`Error::is_retryable`] should fail the invocation.
    pub async fn handle(&self, event: &Value, now: &Now) -> Result<Report, Error> {
        let incident = match events::parse(event)? {
            Parsed::Ignored { event_id, reason } => return Ok(ignored(event_id, reason, None)),
            Parsed::Incident(i) => i,
        };
        if let Some(reason) = guard::screen(&incident, &self.settings) {
            return Ok(ignored(
                Some(incident.event_id.clone()),
                reason,
                Some(incident),
            ));
        }
        let mut report = Report {
            event_id: Some(incident.event_id.clone()),
            ..Report::default()
        };
        let event_id = incident.event_id.clone();
        let id = event_id.as_str();
        let claim_early = !self.dry_run && incident.changes.iter().any(Change::is_removal);
        // The repository's items and the rules, read together (and the claim beside them
        // when the event removes something).
        let read = async {
            let (entries, rules) =
                futures::join!(self.registry.entries(&incident.repo), self.registry.rules());
            Ok::<_, CallError>((entries?, rules?))
        };
        let ((entries, rules), claim) = if claim_early {
            let (read, claim) = futures::join!(read, self.ledger.claim(id, now.epoch));
            let claim = claim?;
            match read {
                Ok(read) => (read, Some(claim)),
                Err(e) => {
                    if matches!(claim, Claim::Fresh | Claim::Resumed) {
                        self.release(id).await;
                    }
                    return Err(e.into());
                }
            }
        } else {
            (read.await?, None)
        };
        let mut valid = Vec::new();
        for e in entries {
            match e {
                Ok(e) => valid.push(e),
                Err(bad) => {
                    warn!(event_id = id, item = %bad.key, problems = ?bad.problems, "invalid registry item skipped");
                    report.invalid_entries.push(bad);
                }
            }
        }
        let mut rule_list = Vec::new();
        for r in rules {
            match r {
                Ok(r) => rule_list.push(r),
                Err(bad) => {
                    warn!(event_id = id, item = %bad.key, problems = ?bad.problems, "invalid rule skipped");
                    report.invalid_entries.push(bad);
                }
            }
        }
        let valid = guard::rules::effective(valid, &rule_list);
        // A push of a tag some rule matches: the rule's protected set may have changed.
        let pushed = incident.changes.iter().find_map(|c| match c {
            Change::TagPushed { tag, manifest, .. }
                if !tag.starts_with(&self.settings.keep_prefix)
                    && rule_list
                        .iter()
                        .any(|r| r.covers(&incident.repo) && r.group_of(tag).is_some()) =>
            {
                Some(manifest.clone())
            }
            _ => None,
        });
        if let Some(hint) = pushed {
            match self
                .materialise(&incident.repo, &rule_list, &valid, hint.as_ref(), id, now)
                .await
            {
                Ok(changes) => report.rule_changes = changes,
                Err(e) => {
                    if matches!(claim, Some(Claim::Fresh | Claim::Resumed)) {
                        self.release(id).await;
                    }
                    return Err(e);
                }
            }
        }
        let decisions = guard::decide(&incident, &valid, &self.settings.keep_prefix);
        let work = |ds: &[Decision]| {
            ds.iter()
                .any(|d| !matches!(d.action, Action::Nothing | Action::Superseded))
        };
        if !work(&decisions) {
            if matches!(claim, Some(Claim::Fresh | Claim::Resumed)) {
                // Claimed beside the read: mark it handled, so a duplicate is quiet too.
                self.mark_handled(id, now).await;
            }
            return Ok(self.nothing_to_do(report, incident, decisions));
        }
        // Read before you write: where the tags the decisions would write to are now, beside
        // the claim when it is not taken yet.
        let tags = present::tags_to_read(&decisions);
        let repo = incident.repo.clone();
        let read_now = async {
            if tags.is_empty() {
                return Ok(Present::default());
            }
            match self.images.lookup(&repo, &tags).await {
                Ok(answer) => Ok(Present::from_lookup(&tags, answer.as_deref())),
                Err(e) if e.retryable => Err(e),
                Err(e) => Ok(Present::unreadable(&e.to_string())),
            }
        };
        let (present, claim) = match claim {
            // Claimed beside the registry read: a duplicate stops before reading ECR.
            Some(c) => match self.settle(id, now, c, &mut report).await? {
                Some(resumed) => (read_now.await, resumed),
                None => {
                    report.incident = Some(incident);
                    return Ok(report);
                }
            },
            None if self.dry_run => (read_now.await, false),
            None => {
                let (present, c) = futures::join!(read_now, self.ledger.claim(id, now.epoch));
                match self.settle(id, now, c?, &mut report).await? {
                    Some(resumed) => (present, resumed),
                    None => {
                        report.incident = Some(incident);
                        return Ok(report);
                    }
                }
            }
        };
        let resumed = claim;
        let present = match present {
            Ok(p) => p,
            Err(e) => {
                if !self.dry_run {
                    self.release(id).await;
                }
                return Err(e.into());
            }
        };
        let decisions: Vec<Decision> = decisions
            .into_iter()
            .map(|d| present::confirm(d, &present, resumed))
            .collect();
        if self.dry_run || !work(&decisions) {
            if !self.dry_run {
                // Overtaken by ECR's present state: handled, so a duplicate is quiet too.
                self.mark_handled(id, now).await;
            }
            return Ok(self.nothing_to_do(report, incident, decisions));
        }

        let results = join_all(
            decisions
                .iter()
                .map(|d| self.act(&incident.repo, d, &valid, now)),
        )
        .await;
        let mut pages = Vec::new();
        let mut history = Vec::new();
        let mut retry: Option<Error> = None;
        for (d, result) in decisions.into_iter().zip(results) {
            let outcome = match result {
                Ok(o) => o,
                Err(e) => {
                    warn!(event_id = id, tag = %d.tag, error = %e, "acting failed; the event will be retried");
                    retry.get_or_insert(e);
                    continue;
                }
            };
            log_decision(&incident, &d, Some(&outcome));
            if let Some(alarm) = guard::report(&d, &outcome, resumed) {
                pages.push(page::render(&incident, &d, &alarm));
            }
            if !matches!(d.action, Action::Nothing | Action::Superseded) {
                history.push(record(&incident, &d, &outcome, now));
            }
            report.decisions.push(Handled {
                decision: d,
                outcome: Some(outcome),
            });
        }
        let done: Vec<(&Decision, &Outcome)> = report
            .decisions
            .iter()
            .filter_map(|h| h.outcome.as_ref().map(|o| (&h.decision, o)))
            .collect();
        let keep = guard::keep_alive_steps(&done, &self.settings.keep_prefix);
        report.incident = Some(incident);
        let (sent, hist, ()) = futures::join!(
            self.send_pages(id, now, pages, retry.is_none(), &mut report),
            async {
                if history.is_empty() {
                    Ok(())
                } else {
                    self.registry.add_history(&history).await
                }
            },
            self.put_keep_alive(&repo, &keep),
        );
        if let Err(e) = hist {
            warn!(event_id = id, error = %e, "history not written");
            report.warnings.push(format!("history not written: {e}"));
        }
        sent?;
        if let Some(e) = retry {
            // Pages for what did work went out; a retry redoes the rest (restores are
            // idempotent, and a tag found in place is not paged again).
            self.release(id).await;
            return Err(e);
        }
        Ok(report)
    }

    /// What the ledger's answer means for this attempt: `Some(resumed)` to go on (`resumed`:
    /// an earlier attempt may have acted), `None` when the event was handled already (the
    /// report says so; pages an earlier attempt could not send are sent now).
    async fn settle(
        &self,
        id: &str,
        now: &Now,
        claim: Claim,
        report: &mut Report,
    ) -> Result<Option<bool>, Error> {
        match claim {
            Claim::Fresh => Ok(Some(false)),
            Claim::Resumed => Ok(Some(true)),
            Claim::Done => {
                info!(event_id = id, "duplicate event: already handled");
                report.duplicate = true;
                Ok(None)
            }
            Claim::Busy => Err(Error::Busy(id.to_string())),
            Claim::PagesPending { pages, redo } => {
                info!(
                    event_id = id,
                    pages = pages.len(),
                    redo,
                    "retry: sending the pages an earlier attempt could not"
                );
                self.send_pages(id, now, pages, !redo, report).await?;
                if !redo {
                    report.duplicate = true;
                    return Ok(None);
                }
                // Some action of the earlier attempt failed too: act again (what was done
                // is found in place and not paged twice).
                Ok(Some(false))
            }
        }
    }

    /// Marks an event that needed no action handled; if that fails, its claim lapses after
    /// its lease.
    async fn mark_handled(&self, id: &str, now: &Now) {
        if let Err(e) = self.ledger.finish(id, now.epoch, &[], false).await {
            warn!(event_id = id, error = %e, "could not mark the event handled");
        }
    }

    /// The report of an event with nothing to carry out: each decision's outcome is
    /// "skipped" (left open in a dry run).
    fn nothing_to_do(
        &self,
        mut report: Report,
        incident: Incident,
        decisions: Vec<Decision>,
    ) -> Report {
        let outcome = (!self.dry_run).then_some(Outcome::Skipped);
        for d in &decisions {
            log_decision(&incident, d, outcome.as_ref());
        }
        report.decisions = decisions
            .into_iter()
            .map(|decision| Handled {
                decision,
                outcome: outcome.clone(),
            })
            .collect();
        report.incident = Some(incident);
        report
    }

    /// Publishes pages while marking the event done; pages that fail are kept in the ledger
    /// for the retry, which sends them and acts again only if `finish` is false: that is,
    /// when some action failed too and the event will be retried for it anyway (then the
    /// caller releases the claim once the pages went out).
    async fn send_pages(
        &self,
        id: &str,
        now: &Now,
        pages: Vec<Page>,
        finish: bool,
        report: &mut Report,
    ) -> Result<(), Error> {
        let (results, done) = futures::join!(
            join_all(pages.iter().map(|p| self.pager.publish(p))),
            async {
                if finish {
                    self.ledger.finish(id, now.epoch, &[], false).await
                } else {
                    Ok(())
                }
            }
        );
        let mut failed = Vec::new();
        let mut first_err: Option<CallError> = None;
        for (p, r) in pages.into_iter().zip(results) {
            match r {
                Ok(()) => report.pages.push(p),
                Err(e) => {
                    warn!(event_id = id, subject = %p.subject, error = %e, "page not sent");
                    first_err.get_or_insert(e);
                    failed.push(p);
                }
            }
        }
        if let Some(e) = first_err {
            self.ledger.finish(id, now.epoch, &failed, !finish).await?;
            return Err(Error::Call(CallError {
                retryable: true,
                ..e
            }));
        }
        done?;
        Ok(())
    }

    /// Drops this attempt's claim so that a retry starts afresh; if that fails, the claim
    /// lapses after its lease.
    async fn release(&self, id: &str) {
        if let Err(e) = self.ledger.release(id).await {
            warn!(event_id = id, error = %e, "could not release the claim; it lapses after its lease");
        }
    }

    /// Carries out one decision. `Err` only for failures a retry may mend.
    pub(crate) async fn act(
        &self,
        repo: &RepoKey,
        d: &Decision,
        entries: &[Entry],
        now: &Now,
    ) -> Result<Outcome, Error> {
        let e = &d.entry;
        let prefix = &self.settings.keep_prefix;
        match &d.action {
            Action::Nothing | Action::Superseded => Ok(Outcome::Skipped),
            Action::Alert => Ok(Outcome::Alerted),
            // For a keep-alive tag, `d.tag` is that tag and the entry is the pin it keeps.
            Action::Restore | Action::Revert | Action::RestoreKeep => match &e.pin {
                Some(pin) => self.restore(repo, &e.tag, &d.tag, pin, now).await,
                None => Ok(Outcome::Refused {
                    why: "the tag is not pinned".into(),
                }),
            },
            Action::Release => {
                let Some(old) = e.digest() else {
                    return Ok(Outcome::Skipped);
                };
                if !self
                    .registry
                    .release(repo, &d.tag, old, &now.rfc3339)
                    .await?
                {
                    return Ok(Outcome::Conflict);
                }
                self.drop_keep_alive(
                    repo,
                    guard::keep_alive_to_drop(entries, &d.tag, old, prefix),
                )
                .await;
                Ok(Outcome::Released)
            }
            Action::Follow { to, manifest } => {
                let pin = self
                    .capture(repo, to, manifest.as_ref(), now, "followed the move")
                    .await?;
                let written = self
                    .registry
                    .set_pin(repo, &d.tag, e.digest(), Some(&pin))
                    .await?;
                if !written {
                    return Ok(Outcome::Conflict);
                }
                self.add_keep_alive(repo, &pin).await;
                if let Some(old) = e.digest() {
                    self.drop_keep_alive(
                        repo,
                        guard::keep_alive_to_drop(entries, &d.tag, old, prefix),
                    )
                    .await;
                }
                Ok(Outcome::Followed)
            }
            Action::StoreManifest => {
                let Some(digest) = e.digest() else {
                    return Ok(Outcome::Skipped);
                };
                let pin = self
                    .capture(repo, digest, None, now, "manifest stored by reconcile")
                    .await?;
                if pin.manifest.is_none() {
                    return Ok(Outcome::Refused {
                        why: "ECR no longer has the pinned image: there is no manifest to keep"
                            .into(),
                    });
                }
                if !self
                    .registry
                    .set_pin(repo, &d.tag, Some(digest), Some(&pin))
                    .await?
                {
                    return Ok(Outcome::Conflict);
                }
                self.add_keep_alive(repo, &pin).await;
                Ok(Outcome::Pinned)
            }
            Action::Unarchive => {
                let Some(digest) = e.digest() else {
                    return Ok(Outcome::Skipped);
                };
                match self.images.unarchive(repo, digest).await {
                    Ok(()) => Ok(Outcome::Unarchiving),
                    Err(c) if c.retryable => Err(Error::Call(c)),
                    Err(c) => Ok(Outcome::Failed {
                        failure: guard::Failure::Other,
                        detail: c.message,
                    }),
                }
            }
            Action::Pin {
                digest,
                manifest,
                restore,
            } => {
                let pin = self
                    .capture(repo, digest, manifest.as_ref(), now, "first sight")
                    .await?;
                if !self
                    .registry
                    .set_pin(repo, &d.tag, None, Some(&pin))
                    .await?
                {
                    return Ok(Outcome::Conflict);
                }
                if *restore {
                    // The restore's keep-alive tag is put beside the page.
                    self.restore(repo, &d.tag, &d.tag, &pin, now).await
                } else {
                    self.add_keep_alive(repo, &pin).await;
                    Ok(Outcome::Pinned)
                }
            }
        }
    }

    /// Builds a pin for `digest`: the event's manifest when its sha256 is the digest, else
    /// the manifest ECR still has (and an index's children), else a pin without manifest.
    pub(crate) async fn capture(
        &self,
        repo: &RepoKey,
        digest: &str,
        from_event: Option<&Manifest>,
        now: &Now,
        why: &str,
    ) -> Result<Pin, Error> {
        let manifest = match from_event.filter(|m| m.digest == digest && m.verify()) {
            Some(m) => Some(m.clone()),
            None => self.images.manifest(repo, digest).await?,
        };
        let mut children = Vec::new();
        if let Some(m) = &manifest {
            for child in join_all(
                m.child_digests()
                    .iter()
                    .map(|c| self.images.manifest(repo, c)),
            )
            .await
            {
                children.extend(child?.filter(Manifest::verify));
            }
        }
        Ok(Pin {
            digest: digest.to_string(),
            manifest: manifest.filter(Manifest::verify),
            children,
            pinned_by: Some(format!("ecr-tag-guard ({why})")),
            pinned_at: Some(now.rfc3339.clone()),
        })
    }

    /// Puts `tag` back on `pin` (the pin of the item for `item_tag`): index children first,
    /// then the tagged manifest.
    async fn restore(
        &self,
        repo: &RepoKey,
        item_tag: &str,
        tag: &str,
        pin: &Pin,
        now: &Now,
    ) -> Result<Outcome, Error> {
        let fetched = match pin.manifest {
            Some(_) => None,
            None => self.images.manifest(repo, &pin.digest).await?,
        };
        let steps = match plan_restore(tag, pin, fetched.as_ref()) {
            Ok(steps) => steps,
            Err(why) => return Ok(Outcome::Refused { why }),
        };
        let Some((last, children)) = steps.split_last() else {
            return Ok(Outcome::Refused {
                why: "nothing to push".into(),
            });
        };
        for r in join_all(children.iter().map(|s| self.images.put(repo, s))).await {
            if let Err(e) = r {
                return put_failed(e);
            }
        }
        let outcome = match self.images.put(repo, last).await {
            Ok(Put::Written) => Outcome::Restored,
            Ok(Put::AlreadyThere) => Outcome::AlreadyInPlace,
            Err(e) => return put_failed(e),
        };
        if let Some(m) = fetched.filter(Manifest::verify) {
            // Keep the manifest ECR still had, so the next restore does not depend on it.
            let pin = Pin {
                manifest: Some(m),
                pinned_at: Some(now.rfc3339.clone()),
                ..pin.clone()
            };
            if let Err(e) = self
                .registry
                .set_pin(repo, item_tag, Some(&pin.digest), Some(&pin))
                .await
            {
                warn!(tag = item_tag, error = %e, "could not store the fetched manifest");
            }
        }
        Ok(outcome)
    }

    /// Tags a newly pinned digest with its keep-alive tag. A failure is logged, not fatal:
    /// the pin holds without it, and `status` reports the missing tag.
    pub(crate) async fn add_keep_alive(&self, repo: &RepoKey, pin: &Pin) {
        let (Some(manifest), Some(tag)) = (
            &pin.manifest,
            crate::registry::keep_tag(&self.settings.keep_prefix, &pin.digest),
        ) else {
            return;
        };
        let step = PutStep {
            manifest: manifest.clone(),
            tag: Some(tag),
        };
        self.put_keep_alive(repo, std::slice::from_ref(&step)).await;
    }

    /// Puts keep-alive tags; failures are logged.
    pub(crate) async fn put_keep_alive(&self, repo: &RepoKey, steps: &[PutStep]) {
        for (step, r) in steps
            .iter()
            .zip(join_all(steps.iter().map(|s| self.images.put(repo, s))).await)
        {
            if let Err(e) = r {
                warn!(repository = %repo, tag = step.tag.as_deref().unwrap_or("-"), error = ?e, "keep-alive tag not put");
            }
        }
    }

    /// Removes a keep-alive tag no pin needs any more; failures are logged.
    pub(crate) async fn drop_keep_alive(&self, repo: &RepoKey, tag: Option<String>) {
        let Some(tag) = tag else { return };
        if let Err(e) = self.images.untag(repo, &tag).await {
            warn!(repository = %repo, tag, error = %e, "keep-alive tag not removed");
        }
    }
}

fn put_failed(e: PutError) -> Result<Outcome, Error> {
    match e {
        PutError::Refused(failure, detail) => Ok(Outcome::Failed { failure, detail }),
        PutError::Call(c) => Err(Error::Call(c)),
    }
}

fn ignored(event_id: Option<String>, reason: String, incident: Option<Incident>) -> Report {
    info!(event_id = event_id.as_deref().unwrap_or("-"), reason = %reason, "event ignored");
    Report {
        event_id,
        ignored: Some(reason),
        incident,
        ..Report::default()
    }
}

/// The outcome's kind, as in logs, history and JSON output (`restored`, `failed`, ...).
pub fn outcome_name(o: &Outcome) -> String {
    serde_json::to_value(o)
        .ok()
        .and_then(|v| v.get("kind").and_then(Value::as_str).map(String::from))
        .unwrap_or_else(|| "?".into())
}

/// The action's kind, as in logs, history and JSON output (`restore`, `follow`, ...).
pub fn action_name(a: &Action) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.get("kind").and_then(Value::as_str).map(String::from))
        .unwrap_or_else(|| "?".into())
}

pub(crate) fn log_decision(i: &Incident, d: &Decision, outcome: Option<&Outcome>) {
    info!(
        event_id = %i.event_id,
        repository = %i.repo,
        tag = %crate::text::clean(&d.tag, 128),
        action = %action_name(&d.action),
        outcome = %outcome.map_or("planned".to_string(), outcome_name),
        why = %d.why,
        "decision"
    );
}

pub(crate) fn record(i: &Incident, d: &Decision, o: &Outcome, now: &Now) -> HistoryRecord {
    let new_digest = match &d.action {
        Action::Follow { to, .. } => Some(to.clone()),
        Action::Pin { digest, .. } => Some(digest.clone()),
        _ => match &d.cause {
            guard::Cause::Moved { to } => Some(to.clone()),
            _ => None,
        },
    };
    let detail = match o {
        Outcome::Refused { why } => why.clone(),
        Outcome::Failed { detail, .. } => crate::text::clean(detail, 500),
        _ => d.why.clone(),
    };
    HistoryRecord {
        repo: i.repo.clone(),
        tag: d.tag.clone(),
        at: now.rfc3339.clone(),
        event_id: i.event_id.clone(),
        action: action_name(&d.action),
        outcome: outcome_name(o),
        old_digest: d.entry.digest().map(String::from),
        new_digest,
        who: crate::text::clean(&guard::who(i, &d.cause), 300),
        detail,
    }
}
