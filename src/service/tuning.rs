//! How the service paces itself: waits, grace periods, how many calls at once, how many pages
//! a run. (What is guarded, and who the guard is, is [`crate::guard::Scope`].)

/// How the service paces itself.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// How long reconcile leaves a drift of an item with `allow` to the event path before it
    /// asks CloudTrail who made it (seconds).
    pub grace_secs: i64,
    /// How long a delivery that finds its event being handled by another invocation waits
    /// for that one to finish (milliseconds) before it fails so Lambda retries it.
    pub busy_wait_ms: u64,
    /// How many repositories reconcile works on at once.
    pub reconcile_concurrency: usize,
    /// How many calls of one kind are in flight at once for one repository's tags: restores,
    /// pins, seals and their checks, keep-alive tags, child manifests, pages.
    pub call_concurrency: usize,
    /// How many repositories one reconcile run pages on their own; what the others found goes
    /// into one summary page.
    pub pages_per_run: usize,
    /// Reconcile checks the seal of every pin ECR confirms and seals again the ones that do
    /// not verify (after the pin key was replaced; `reconcile --check-seals`). Off: only pins
    /// with no seal at all are sealed, and no KMS call is made for a pin that needs nothing.
    pub check_seals: bool,
}

/// The default of [`Tuning::pages_per_run`]: ten repositories, then one summary.
pub const DEFAULT_PAGES_PER_RUN: usize = 10;

/// The default of [`Tuning::reconcile_concurrency`]: 16 repositories at once, each a few
/// reads (ECR's `BatchGetImage` and `DescribeImages` allow hundreds a second) and rare writes
/// (`PutImage`'s lower rate is absorbed by the SDK's retries).
pub const DEFAULT_RECONCILE_CONCURRENCY: usize = 16;

/// The default of [`Tuning::call_concurrency`]: 8 calls in flight per repository, so a mass
/// incident (hundreds of tags) reaches ECR and KMS as a steady stream within their request
/// rates (the SDK's retries absorb a throttled call) rather than as hundreds at once; with 16
/// repositories at once, reconcile stays under 128 calls in flight.
pub const DEFAULT_CALL_CONCURRENCY: usize = 8;

/// The default of [`Tuning::busy_wait_ms`]: 20 seconds, well inside the function's 300 s.
pub const DEFAULT_BUSY_WAIT_MS: u64 = 20_000;

/// The default of [`Tuning::grace_secs`]: 15 minutes.
pub const DEFAULT_GRACE_SECS: i64 = 15 * 60;

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            grace_secs: DEFAULT_GRACE_SECS,
            busy_wait_ms: DEFAULT_BUSY_WAIT_MS,
            reconcile_concurrency: DEFAULT_RECONCILE_CONCURRENCY,
            call_concurrency: DEFAULT_CALL_CONCURRENCY,
            pages_per_run: DEFAULT_PAGES_PER_RUN,
            check_seals: false,
        }
    }
}
