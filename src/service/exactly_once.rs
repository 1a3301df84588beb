//! Once-only: what the ledger's answer means for an attempt at an event, marking it handled,
//! sending its pages (kept for the retry when they fail), and paging an unreadable event once.

use serde_json::Value;
use tracing::{info, warn};

use super::event::Report;
use super::{Handler, Now};
use crate::error::{CallError, Error};
use crate::page::{self, Page};
use crate::ports::{Claim, Images, Ledger, Pager, PinKey, Registry};

impl<R: Registry, I: Images, P: Pager, L: Ledger, K: PinKey> Handler<R, I, P, L, K> {
    /// Pages, once per event, why an event could not be handled (`error`, which no retry can
    /// mend), so the invocation need not fail but a person hears of it, and hears the truth:
    /// `unreadable` only for an event that could not be understood; `not_handled` for one
    /// that was read and then stopped (access denied, a page SNS refused, a configuration
    /// error). `Err` (worth a retry) when the page could not be sent.
    pub async fn page_unreadable(
        &self,
        event: &Value,
        error: &Error,
        now: &Now,
    ) -> Result<(), Error> {
        let id = event
            .get("id")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| {
                format!(
                    "content-{}",
                    &crate::text::sha256_digest(event.to_string().as_bytes())[7..39]
                )
            });
        if self.dry_run {
            return Ok(());
        }
        let problem = error.to_string();
        let p = match error {
            Error::BadEvent(_) => page::unreadable(&id, &problem, &event.to_string()),
            _ => page::not_handled(&id, &problem, &event.to_string()),
        };
        self.publish_once(&format!("unreadable/{id}"), &p, now)
            .await?;
        Ok(())
    }

    /// Publishes `page` the first time `key` is seen while its once-only record lasts
    /// ([`LEDGER_TTL_SECS`](crate::ports::LEDGER_TTL_SECS)): claimed, published, and marked
    /// done only after SNS accepted it — a failed publish releases the claim and is worth a
    /// retry, so a problem is paged late rather than never. `Ok(false)`: paged before.
    pub(crate) async fn publish_once(
        &self,
        key: &str,
        page: &Page,
        now: &Now,
    ) -> Result<bool, Error> {
        if !self.claim_problem(key, now).await? {
            return Ok(false);
        }
        self.publish_marking(page, &[key.to_string()], now).await?;
        Ok(true)
    }

    /// Claims the once-only key of a problem: `true` the first time it is seen (or when an
    /// earlier attempt to page it stopped), `false` when it was paged already.
    pub(crate) async fn claim_problem(&self, key: &str, now: &Now) -> Result<bool, Error> {
        Ok(matches!(
            self.ledger.claim(key, now.epoch, now.lease_until).await?,
            Claim::Fresh | Claim::Resumed
        ))
    }

    /// Publishes `page`, then marks `keys` done; when SNS refuses it, releases them (`Err`,
    /// worth a retry).
    pub(crate) async fn publish_marking(
        &self,
        page: &Page,
        keys: &[String],
        now: &Now,
    ) -> Result<(), Error> {
        if let Err(e) = self.pager.publish(page).await {
            warn!(subject = %page.subject, error = %e, "reconcile: page not sent");
            for k in keys {
                self.release(k).await;
            }
            return Err(Error::Call(CallError {
                retryable: true,
                ..e
            }));
        }
        for k in keys {
            self.mark_handled(k, now).await;
        }
        Ok(())
    }
    /// What the ledger's answer means for this attempt: `Some(resumed)` to go on (`resumed`:
    /// an earlier attempt may have acted), `None` when the event was handled already (the
    /// report says so; pages an earlier attempt could not send are sent now).
    pub(super) async fn settle(
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
            Claim::Busy => Box::pin(self.wait_for_other(id, now, report)).await,
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

    /// Another invocation holds the event: wait (polling the ledger, at most
    /// [`Tuning::busy_wait_ms`](crate::service::Tuning)) for it to finish and report what
    /// it did — a duplicate is quiet, not a failed invocation. Takes the event over when the
    /// other's claim is dropped or goes stale; fails (so Lambda retries) only when the wait
    /// runs out.
    async fn wait_for_other(
        &self,
        id: &str,
        now: &Now,
        report: &mut Report,
    ) -> Result<Option<bool>, Error> {
        let started = std::time::Instant::now();
        let limit = std::time::Duration::from_millis(self.tuning.busy_wait_ms);
        let poll = std::time::Duration::from_millis(500).min(limit);
        while started.elapsed() < limit {
            tokio::time::sleep(poll).await;
            let at = now.epoch + started.elapsed().as_secs() as i64;
            match self.ledger.claim(id, at, now.lease_until).await? {
                Claim::Busy => continue,
                claim => return Box::pin(self.settle(id, now, claim, report)).await,
            }
        }
        info!(
            event_id = id,
            "another invocation is still handling the event"
        );
        Err(Error::Busy(id.to_string()))
    }

    /// Marks an event that needed no action handled; if that fails, its claim lapses after
    /// its lease.
    pub(super) async fn mark_handled(&self, id: &str, now: &Now) {
        if let Err(e) = self.ledger.finish(id, now.epoch, &[], false).await {
            warn!(event_id = id, error = %e, "could not mark the event handled");
        }
    }

    /// Publishes pages, then marks the event done (`finish`) — only after SNS accepted them,
    /// so a crash in between can page twice but never zero times. Pages that fail are kept
    /// in the ledger for the retry, which sends them and acts again only if `finish` is
    /// false: that is, when some action failed too and the event will be retried for it
    /// anyway (then the caller releases the claim once the pages went out).
    pub(super) async fn send_pages(
        &self,
        id: &str,
        now: &Now,
        pages: Vec<Page>,
        finish: bool,
        report: &mut Report,
    ) -> Result<(), Error> {
        let n = self.tuning.call_concurrency;
        let results = super::bounded(n, pages.iter().map(|p| self.pager.publish(p))).await;
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
            // Kept for a retry either way; the invocation is retried only when SNS's answer
            // says a retry may help (throttling, 5xx), not for a refusal it would repeat.
            self.ledger.finish(id, now.epoch, &failed, !finish).await?;
            return Err(Error::Call(e));
        }
        if finish {
            self.ledger.finish(id, now.epoch, &[], false).await?;
        }
        Ok(())
    }

    /// Drops this attempt's claim so that a retry starts afresh; if that fails, the claim
    /// lapses after its lease.
    pub(super) async fn release(&self, id: &str) {
        if let Err(e) = self.ledger.release(id).await {
            warn!(event_id = id, error = %e, "could not release the claim; it lapses after its lease");
        }
    }
}
