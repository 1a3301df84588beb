//! Who made a drift: for a repair that would undo a change an allowed caller may have made,
//! reconcile waits out the grace period, then asks CloudTrail (once per account and region and
//! run) and decides by the caller — or pages when it cannot learn who.

use std::collections::HashMap;

use tracing::{info, warn};

use super::report::Told;
use crate::error::Error;
use crate::events::Incident;
use crate::guard::reconcile::{explaining, with_caller, WhoChanged};
use crate::guard::status::TagState;
use crate::guard::{self};
use crate::ports::{Images, Ledger, Pager, PinKey, Registry, Trail};
use crate::registry::{Entry, RepoKey};
use crate::service::{Handler, Now};

/// How far back reconcile asks CloudTrail who changed a tag (a pin's own `pinned_at` bounds
/// it too): a drift older than this with no record is paged, not undone.
pub const TRAIL_LOOKBACK_SECS: i64 = 24 * 3600;

/// CloudTrail's records per account and region, read once per run when first needed.
pub(super) struct TrailReads<'a, T> {
    pub(super) trail: &'a T,
    pub(super) since: i64,
    pub(super) read: HashMap<(String, String), Result<Vec<Incident>, crate::error::CallError>>,
}

impl<T: Trail> TrailReads<'_, T> {
    async fn records(&mut self, repo: &RepoKey) -> Result<Vec<Incident>, crate::error::CallError> {
        let key = (repo.account.clone(), repo.region.clone());
        if !self.read.contains_key(&key) {
            let got = self
                .trail
                .tag_changes(&repo.account, &repo.region, self.since)
                .await;
            self.read.insert(key.clone(), got);
        }
        self.read[&key].clone()
    }
}

impl<R: Registry, I: Images, P: Pager, L: Ledger, K: PinKey> Handler<R, I, P, L, K> {
    /// A repair that may undo an allowed caller's change, decided once the caller is known
    /// (or cannot be), or why it waits (told to the report). It waits out the grace period
    /// from when reconcile first saw the drift (the change's own event should decide
    /// meanwhile), then asks CloudTrail; a throttled lookup waits for the next run.
    pub(super) async fn with_caller<T: Trail>(
        &self,
        d: guard::Decision,
        standing: &TagState,
        now: &Now,
        callers: &futures::lock::Mutex<TrailReads<'_, T>>,
    ) -> Result<Result<guard::Decision, Told>, Error> {
        let repo = d.entry.repo.clone();
        let tag = d.tag.clone();
        let grace = self.tuning.grace_secs;
        let key = format!(
            "drift/{repo}:{tag}/{}/{}",
            d.entry.digest().unwrap_or("-"),
            match standing {
                TagState::Moved { to } => to.as_str(),
                _ => "missing",
            }
        );
        // A dry run shows what reconcile does once the grace period is over.
        let first_seen = if self.dry_run {
            now.epoch - grace
        } else {
            self.ledger.first_seen(&key, now.epoch).await?
        };
        let decided = if now.epoch - first_seen < grace {
            None
        } else {
            let records = callers.lock().await.records(&repo).await;
            match records {
                // Throttled or down: try again next run, but not forever — once the drift is
                // twice the grace period old, not knowing who made it is paged.
                Err(e) if e.retryable && now.epoch - first_seen < 2 * grace => {
                    warn!(repository = %repo, tag, error = %e, "reconcile: CloudTrail not read; left for the next run");
                    return Ok(Err(Told::Warning(format!(
                        "{repo}:{tag}: who changed it is not known yet: {e}"
                    ))));
                }
                Err(e) => {
                    let problem = e.to_string();
                    let witness = WhoChanged::Unknowable {
                        problem,
                        first_seen,
                    };
                    with_caller(d, witness, now.epoch, grace)
                }
                Ok(records) => {
                    let records = since_pinned(&records, &d.entry);
                    let witness = match explaining(&d, &records) {
                        Some(i) => WhoChanged::Record(i),
                        None => WhoChanged::NotFound { first_seen },
                    };
                    with_caller(d.clone(), witness, now.epoch, grace)
                }
            }
        };
        match decided {
            Some(d) => Ok(Ok(d)),
            None => {
                info!(repository = %repo, tag, "reconcile: a drift of an item with allow is left to its own event for now");
                Ok(Err(Told::Waiting(format!(
                    "{repo}:{tag}: {}; some callers may do that, so its own event or CloudTrail's record decides (grace {} min)",
                    standing.describe(),
                    grace / 60
                ))))
            }
        }
    }
}

/// The records made after `entry` was pinned: an older one cannot explain a drift from the
/// pin.
fn since_pinned(records: &[Incident], entry: &Entry) -> Vec<Incident> {
    let time = |t: &str| crate::text::parse_time(&serde_json::Value::String(t.to_string()));
    let pinned_at = entry
        .pin
        .as_ref()
        .and_then(|p| p.pinned_at.as_deref())
        .and_then(time);
    records
        .iter()
        .filter(|i| pinned_at.is_none_or(|p| time(&i.time).is_none_or(|a| a >= p)))
        .cloned()
        .collect()
}
