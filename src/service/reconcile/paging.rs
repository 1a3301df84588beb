//! A reconcile run's page budget: each repository with something to say gets one page, up to
//! [`Tuning::pages_per_run`](crate::service::Tuning) of them; past that, what the others
//! would have said is folded into one summary page at the end of the run. A mass incident
//! reaches on-call as a bounded number of pages; history still keeps every repair.
//!
//! Problems are paged once per incident: their once-only keys are claimed before the page is
//! built and marked done only after SNS accepted the page that carries them (a repository's or
//! the summary), released when it was refused — so the next run pages them, late rather than
//! never.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use tracing::{info, warn};

use super::report::Told;
use crate::error::CallError;
use crate::page::{self, Page, SummaryPart};
use crate::ports::{Images, Ledger, Pager, PinKey, Registry};
use crate::service::{Handler, Now};

/// The pages of one run: how many repositories paged on their own, and what the others
/// left for the summary.
#[derive(Debug, Default)]
pub(super) struct PageBudget {
    limit: usize,
    own: AtomicUsize,
    folded: Mutex<Vec<(SummaryPart, Vec<String>)>>,
}

impl PageBudget {
    /// A budget of `limit` repository pages.
    pub(super) fn new(limit: usize) -> PageBudget {
        PageBudget {
            limit,
            ..PageBudget::default()
        }
    }

    /// Whether one more repository may page on its own.
    fn take_slot(&self) -> bool {
        self.own.fetch_add(1, Ordering::Relaxed) < self.limit
    }

    fn fold(&self, part: SummaryPart, keys: Vec<String>) {
        if let Ok(mut f) = self.folded.lock() {
            f.push((part, keys));
        }
    }

    fn take_folded(&self) -> Vec<(SummaryPart, Vec<String>)> {
        self.folded
            .lock()
            .map(|mut f| std::mem::take(&mut *f))
            .unwrap_or_default()
    }
}

impl<R: Registry, I: Images, P: Pager, L: Ledger, K: PinKey> Handler<R, I, P, L, K> {
    /// Pages what one repository's reconcile found (`page`, or folded into the summary when
    /// the run's budget is spent: nothing to tell yet); `keys` are the problems it carries,
    /// marked done once it went out. A page SNS did not take is kept for the next run
    /// ([`Handler::keep_page`]): the repository was checked, so it is no reason to call the
    /// repository failed.
    pub(super) async fn page_repository(
        &self,
        run: &PageBudget,
        page: Page,
        folded: SummaryPart,
        keys: Vec<String>,
        now: &Now,
    ) -> Option<Told> {
        if !run.take_slot() {
            info!(repository = %folded.repository, "reconcile: page budget spent; folded into the summary");
            run.fold(folded, keys);
            return None;
        }
        let key = folded.repository.clone();
        Some(self.publish_or_keep(&key, page, &keys, now).await)
    }

    /// Publishes a page of the run and marks its problems done, or keeps it for the next run.
    async fn publish_or_keep(&self, key: &str, page: Page, keys: &[String], now: &Now) -> Told {
        match self.pager.publish(&page).await {
            Ok(()) => {
                for k in keys {
                    self.mark_handled(k, now).await;
                }
                Told::Page(page)
            }
            Err(e) => self.keep_page(key, &page, keys, &e).await,
        }
    }

    /// A reconcile page SNS did not take (`e`): kept in the ledger with its problems still
    /// claimed, for the next run to send before anything else — so its fixes are told, and
    /// its problems paged once. When even that fails, its problems are released, so the next
    /// run pages them anew (its fixes are then only in the history).
    async fn keep_page(&self, key: &str, page: &Page, keys: &[String], e: &CallError) -> Told {
        warn!(key, subject = %page.subject, error = %e, "reconcile: page not sent; kept for the next run");
        match self.ledger.keep_unsent(key, page, keys).await {
            Ok(()) => Told::Warning(format!(
                "{key}: its page was not sent ({e}); kept, the next run sends it"
            )),
            Err(keep) => {
                for k in keys {
                    self.release(k).await;
                }
                Told::Warning(format!(
                    "{key}: its page was not sent ({e}) nor kept ({keep}): its problems are paged again by the next run"
                ))
            }
        }
    }

    /// Sends the pages earlier runs could not, first thing in a run, and marks their problems
    /// handled; one SNS still refuses stays kept (a warning).
    pub(super) async fn send_unsent(&self, now: &Now) -> Vec<Told> {
        let kept = match self.ledger.unsent().await {
            Ok(kept) => kept,
            Err(e) => {
                return vec![Told::Warning(format!(
                    "pages kept by earlier runs not read: {e}"
                ))]
            }
        };
        let mut told = Vec::new();
        for (key, page, keys) in kept {
            told.push(match self.pager.publish(&page).await {
                Ok(()) => {
                    for k in &keys {
                        self.mark_handled(k, now).await;
                    }
                    if let Err(e) = self.ledger.drop_unsent(&key).await {
                        warn!(key, error = %e, "a kept page went out but stays kept");
                    }
                    info!(key, subject = %page.subject, "reconcile: a page kept by an earlier run sent");
                    Told::Page(page)
                }
                Err(e) => Told::Warning(format!(
                    "{key}: the page kept by an earlier run was not sent either ({e}); still kept"
                )),
            });
        }
        told
    }

    /// Sends the summary of the repositories the budget left out, if any. A summary SNS
    /// refused is a warning: its problems are released for the next run.
    pub(super) async fn send_summary(
        &self,
        run: &PageBudget,
        run_id: &str,
        now: &Now,
    ) -> Option<Told> {
        let folded = run.take_folded();
        if folded.is_empty() {
            return None;
        }
        let (parts, keys): (Vec<SummaryPart>, Vec<Vec<String>>) = folded.into_iter().unzip();
        let keys: Vec<String> = keys.into_iter().flatten().collect();
        let p = page::summary(run_id, &now.rfc3339, parts, run.limit);
        let key = format!("summary/{run_id}");
        Some(self.publish_or_keep(&key, p, &keys, now).await)
    }
}
