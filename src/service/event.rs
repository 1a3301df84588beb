//! One event through the guard: parse → screen → read the registry (and claim) → decide →
//! read ECR now (and claim) → confirm → act → page, record and mark done.
//!
//! Round trips for a deleted protected tag: (1) the registry read and the once-only claim,
//! together; (2) where the tag is now (`BatchGetImage`) and the pin's seal (`VerifyMac`),
//! together; (3) `PutImage`; (4) the page, the
//! history and the ledger's "done", together. A push is read first and claimed only when it
//! touches a protected tag; an event dismissed by its own content costs nothing.

use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use crate::error::{CallError, Error};
use crate::events::{self, Change, Incident, Parsed};
use crate::guard::present::{self, Present};
use crate::guard::{self, Action, Decision, Outcome};
use crate::page::{self, Page};
use crate::ports::{Claim, HistoryRecord, Images, Ledger, Pager, PinKey, Registry};
use crate::registry::{split_valid, Entry, InvalidEntry, TagRule};

use super::history::{log_decision, record};
use super::trust::Seals;
use super::{Handled, Handler, Now};

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
    pub rule_changes: Vec<crate::service::rules::RuleChange>,
    /// The event had been handled before: nothing was done again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// Things that went wrong without failing the event (a lost history write).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl<R: Registry, I: Images, P: Pager, L: Ledger, K: PinKey> Handler<R, I, P, L, K> {
    /// Handles one event. An `Err` that [`Error::is_retryable`] should fail the invocation.
    pub async fn handle(&self, event: &Value, now: &Now) -> Result<Report, Error> {
        let incident = match self.read_event(event)? {
            Reading::Act(incident) => incident,
            Reading::Ignore(report) => return Ok(report),
        };
        let mut report = Report {
            event_id: Some(incident.event_id.clone()),
            ..Report::default()
        };
        let event_id = incident.event_id.clone();
        let id = event_id.as_str();
        let (entries, rules, claim) = self.read_registry(&incident, now, &mut report).await?;
        let ours = matches!(claim, Some(Claim::Fresh | Claim::Resumed));
        if let Err(e) = self
            .follow_rules(&incident, &rules, &entries, now, &mut report)
            .await
        {
            if ours {
                self.release(id).await;
            }
            return Err(e);
        }
        let decisions = guard::decide(&incident, &entries, &self.scope.keep_prefix);
        if !has_work(&decisions) {
            if ours {
                // Claimed beside the read: mark it handled, so a duplicate is quiet too.
                self.mark_handled(id, now).await;
            }
            return Ok(self.nothing_to_do(report, incident, decisions));
        }
        // The pins' seals are checked beside the read of ECR: no round trip of their own
        // (none for a delivery already known to be a duplicate).
        let check = !self.dry_run
            && !matches!(
                claim,
                Some(Claim::Done | Claim::Busy | Claim::PagesPending { redo: false, .. })
            );
        let (present, seals) = futures::join!(
            self.read_present(&incident, &decisions, claim, now, &mut report),
            async {
                if check {
                    self.check_seals(&decisions).await
                } else {
                    Ok(Seals::new())
                }
            }
        );
        let Some((present, resumed)) = present? else {
            report.incident = Some(incident);
            return Ok(report);
        };
        let decisions: Vec<Decision> = decisions
            .into_iter()
            .map(|d| present::confirm(d, &present, resumed))
            .collect();
        if self.dry_run || !has_work(&decisions) {
            if !self.dry_run {
                // Overtaken by ECR's present state: said in the tags' history (an audit tells
                // it), and handled, so a duplicate is quiet too.
                let history = superseded(&incident, &decisions, now);
                if !history.is_empty() {
                    if let Err(e) = self.registry.add_history(&history).await {
                        warn!(event_id = id, error = %e, "history not written");
                        report.warnings.push(format!("history not written: {e}"));
                    }
                }
                self.mark_handled(id, now).await;
            }
            return Ok(self.nothing_to_do(report, incident, decisions));
        }
        let seals = match seals {
            Ok(seals) => seals,
            Err(e) => {
                self.release(id).await;
                return Err(e);
            }
        };
        let read = Read {
            entries: &entries,
            seals: &seals,
            resumed,
        };
        self.carry_out(incident, decisions, read, now, report).await
    }

    /// What an event is for the guard: an incident to act on, or the report of an event that
    /// is none of its business. An event that cannot be read is an error.
    fn read_event(&self, event: &Value) -> Result<Reading, Error> {
        let incident = match events::parse(event)? {
            Parsed::Ignored { event_id, reason } => {
                return Ok(Reading::Ignore(ignored(event_id, reason, None)))
            }
            Parsed::Incident(i) => i,
        };
        Ok(match guard::screen(&incident, &self.scope) {
            Some(reason) => Reading::Ignore(ignored(
                Some(incident.event_id.clone()),
                reason,
                Some(incident),
            )),
            None => Reading::Act(incident),
        })
    }

    /// The repository's valid items (with the settings rules give them) and the rules, read
    /// together; a removal is claimed beside them, to save a round trip when it matters.
    /// Invalid items and rules go to the report.
    async fn read_registry(
        &self,
        incident: &Incident,
        now: &Now,
        report: &mut Report,
    ) -> Result<(Vec<Entry>, Vec<TagRule>, Option<Claim>), Error> {
        let id = incident.event_id.as_str();
        let claim_early = !self.dry_run && incident.changes.iter().any(Change::is_removal);
        let read = async {
            let (entries, rules) =
                futures::join!(self.registry.entries(&incident.repo), self.registry.rules());
            Ok::<_, CallError>((entries?, rules?))
        };
        let ((entries, rules), claim) = if claim_early {
            let (read, claim) =
                futures::join!(read, self.ledger.claim(id, now.epoch, now.lease_until));
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
        let (entries, bad_items) = split_valid(entries);
        let (rules, bad_rules) = split_valid(rules);
        for bad in bad_items.iter().chain(&bad_rules) {
            warn!(event_id = id, item = %bad.key, problems = ?bad.problems, "invalid registry item skipped");
        }
        report
            .invalid_entries
            .extend(bad_items.into_iter().chain(bad_rules));
        Ok((guard::rules::effective(entries, &rules), rules, claim))
    }

    /// A push of a tag some rule matches may change the rule's protected set: its pins are
    /// brought in line (the changes go to the report).
    async fn follow_rules(
        &self,
        incident: &Incident,
        rules: &[TagRule],
        entries: &[Entry],
        now: &Now,
        report: &mut Report,
    ) -> Result<(), Error> {
        let pushed = incident.changes.iter().find_map(|c| match c {
            Change::TagPushed { tag, manifest, .. }
                if !tag.starts_with(&self.scope.keep_prefix)
                    && rules
                        .iter()
                        .any(|r| r.covers(&incident.repo) && r.group_of(tag).is_some()) =>
            {
                Some(manifest.clone())
            }
            _ => None,
        });
        if let Some(hint) = pushed {
            let id = &incident.event_id;
            report.rule_changes = self
                .materialise(&incident.repo, rules, entries, hint.as_ref(), id, now)
                .await?;
        }
        Ok(())
    }

    /// Read before you write: where the tags the decisions would write to are now, beside
    /// the claim when it is not taken yet. `None` when the event was handled before (the
    /// report says so); else what ECR holds and whether an earlier attempt may have acted.
    async fn read_present(
        &self,
        incident: &Incident,
        decisions: &[Decision],
        claim: Option<Claim>,
        now: &Now,
        report: &mut Report,
    ) -> Result<Option<(Present, bool)>, Error> {
        let id = incident.event_id.as_str();
        let tags = present::tags_to_read(decisions);
        let read_now = async {
            if tags.is_empty() {
                return Ok(Present::default());
            }
            match self.images.lookup(&incident.repo, &tags).await {
                Ok(answer) => Ok(Present::from_lookup(&tags, answer.as_deref())),
                Err(e) if e.retryable => Err(e),
                Err(e) => Ok(Present::unreadable(&e.to_string())),
            }
        };
        let (present, resumed) = match claim {
            // Claimed beside the registry read: a duplicate stops before reading ECR.
            Some(c) => match self.settle(id, now, c, report).await? {
                Some(resumed) => (read_now.await, resumed),
                None => return Ok(None),
            },
            None if self.dry_run => (read_now.await, false),
            None => {
                let (present, c) =
                    futures::join!(read_now, self.ledger.claim(id, now.epoch, now.lease_until));
                match self.settle(id, now, c?, report).await? {
                    Some(resumed) => (present, resumed),
                    None => return Ok(None),
                }
            }
        };
        match present {
            Ok(p) => Ok(Some((p, resumed))),
            Err(e) => {
                if !self.dry_run {
                    self.release(id).await;
                }
                Err(e.into())
            }
        }
    }

    /// Acts on every decision, then pages, records history and puts keep-alive tags back,
    /// together. A failure worth a retry releases the claim after the pages of what did work
    /// went out (restores are idempotent, and a tag found in place is not paged again).
    async fn carry_out(
        &self,
        incident: Incident,
        decisions: Vec<Decision>,
        read: Read<'_>,
        now: &Now,
        mut report: Report,
    ) -> Result<Report, Error> {
        let Read {
            entries,
            seals,
            resumed,
        } = read;
        let id = incident.event_id.clone();
        let id = id.as_str();
        let repo = incident.repo.clone();
        let results = super::bounded(
            self.tuning.call_concurrency,
            decisions
                .iter()
                .map(|d| self.act(&repo, d, entries, seals, now)),
        )
        .await;
        let mut alarms = Vec::new();
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
            if let Some(alarm) = page::report(&d, &outcome, resumed) {
                alarms.push((report.decisions.len(), alarm));
            }
            if d.action != Action::Nothing {
                history.push(record(&incident, &d, &outcome, now));
            }
            report.decisions.push(Handled {
                decision: d,
                outcome: Some(outcome),
            });
        }
        // One page for everything the event did to its repository.
        let alarms: Vec<(&Decision, page::Alarm)> = alarms
            .into_iter()
            .map(|(i, a)| (&report.decisions[i].decision, a))
            .collect();
        let pages: Vec<page::Page> = page::render_all(&incident, &alarms).into_iter().collect();
        let done: Vec<(&Decision, &Outcome)> = report
            .decisions
            .iter()
            .filter_map(|h| h.outcome.as_ref().map(|o| (&h.decision, o)))
            .collect();
        let keep = guard::keep_alive_steps(&done, &self.scope.keep_prefix);
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
            self.release(id).await;
            return Err(e);
        }
        Ok(report)
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
}

/// What an event is for the guard.
enum Reading {
    /// An incident to act on.
    Act(Incident),
    /// None of its business: the report says why.
    Ignore(Report),
}

/// What was read before acting on an event's decisions.
struct Read<'a> {
    /// The repository's entries.
    entries: &'a [Entry],
    /// The seals of the pins the decisions push from.
    seals: &'a Seals,
    /// An earlier attempt may have acted already.
    resumed: bool,
}

/// The history records of the decisions ECR's present state overtook.
fn superseded(incident: &Incident, decisions: &[Decision], now: &Now) -> Vec<HistoryRecord> {
    decisions
        .iter()
        .filter(|d| d.action == Action::Superseded)
        .map(|d| record(incident, d, &Outcome::Skipped, now))
        .collect()
}

/// True when some decision is to be carried out.
fn has_work(decisions: &[Decision]) -> bool {
    decisions
        .iter()
        .any(|d| !matches!(d.action, Action::Nothing | Action::Superseded))
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
