//! What the deployment guards (accounts, regions) and who the guard is: the one scope check
//! every path asks, and the screen that keeps the guard off its own calls.

use crate::events::Incident;
use crate::registry::RepoKey;

/// What the deployment guards and who it is.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Registry accounts guarded; empty = every account.
    pub accounts: Vec<String>,
    /// Regions guarded; empty = every region.
    pub regions: Vec<String>,
    /// The IAM role the guard acts as: calls made by it are never acted on.
    pub own_role_arn: Option<String>,
    /// The prefix of the guard's keep-alive tags (see [`crate::registry::keep_tag`]).
    pub keep_prefix: String,
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

/// The default of [`Settings::pages_per_run`]: ten repositories, then one summary.
pub const DEFAULT_PAGES_PER_RUN: usize = 10;

/// The default of [`Settings::reconcile_concurrency`]: 16 repositories at once, each a few
/// reads (ECR's `BatchGetImage` and `DescribeImages` allow hundreds a second) and rare writes
/// (`PutImage`'s lower rate is absorbed by the SDK's retries).
pub const DEFAULT_RECONCILE_CONCURRENCY: usize = 16;

/// The default of [`Settings::call_concurrency`]: 8 calls in flight per repository, so a mass
/// incident (hundreds of tags) reaches ECR and KMS as a steady stream within their request
/// rates (the SDK's retries absorb a throttled call) rather than as hundreds at once; with 16
/// repositories at once, reconcile stays under 128 calls in flight.
pub const DEFAULT_CALL_CONCURRENCY: usize = 8;

/// The default of [`Settings::busy_wait_ms`]: 20 seconds, well inside the function's 300 s.
pub const DEFAULT_BUSY_WAIT_MS: u64 = 20_000;

/// The default of [`Settings::grace_secs`]: 15 minutes.
pub const DEFAULT_GRACE_SECS: i64 = 15 * 60;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            accounts: Vec::new(),
            regions: Vec::new(),
            own_role_arn: None,
            keep_prefix: crate::registry::DEFAULT_KEEP_PREFIX.to_string(),
            grace_secs: DEFAULT_GRACE_SECS,
            busy_wait_ms: DEFAULT_BUSY_WAIT_MS,
            reconcile_concurrency: DEFAULT_RECONCILE_CONCURRENCY,
            call_concurrency: DEFAULT_CALL_CONCURRENCY,
            pages_per_run: DEFAULT_PAGES_PER_RUN,
            check_seals: false,
        }
    }
}

impl Settings {
    /// Why `repo` lies outside what the deployment guards (`TAG_GUARD_ACCOUNTS`,
    /// `TAG_GUARD_REGIONS`), or `None` when it is inside. Events, reconcile, registration and
    /// the commands all ask this one question before writing to ECR.
    pub fn outside(&self, repo: &RepoKey) -> Option<String> {
        if !self.accounts.is_empty() && !self.accounts.contains(&repo.account) {
            return Some(format!(
                "account {} is not guarded (TAG_GUARD_ACCOUNTS)",
                repo.account
            ));
        }
        if !self.regions.is_empty() && !self.regions.contains(&repo.region) {
            return Some(format!(
                "region {} is not guarded (TAG_GUARD_REGIONS)",
                repo.region
            ));
        }
        None
    }
}

/// Why an incident is none of the guard's business, or `None` when it is.
pub fn screen(incident: &Incident, settings: &Settings) -> Option<String> {
    if let Some(why) = settings.outside(&incident.repo) {
        return Some(why);
    }
    if let Some(own) = &settings.own_role_arn {
        if incident.actor.arns().iter().any(|a| is_same_role(own, a)) {
            return Some("made by the guard's own role: not acted on (no loops)".into());
        }
    }
    None
}

/// True when `arn` is the role `role_arn` itself or a session of it
/// (`arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`).
pub fn is_same_role(role_arn: &str, arn: &str) -> bool {
    if role_arn == arn {
        return true;
    }
    // arn:aws:iam::ACCOUNT:role/path/NAME → ACCOUNT and NAME
    let parts: Vec<&str> = role_arn.splitn(6, ':').collect();
    let (Some(account), Some(resource)) = (parts.get(4), parts.get(5)) else {
        return false;
    };
    let Some(name) = resource
        .strip_prefix("role/")
        .map(|p| p.rsplit('/').next().unwrap_or(p))
    else {
        return false;
    };
    let partition = parts.get(1).copied().unwrap_or("aws");
    let session_prefix = format!("arn:{partition}:sts::{account}:assumed-role/{name}/");
    arn.starts_with(&session_prefix)
}
