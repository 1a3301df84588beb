//! What the deployment guards (accounts, regions) and who the guard is ([`Scope`]): the one
//! scope check every path asks, and the screen that keeps the guard off its own calls.

use crate::events::Incident;
use crate::registry::RepoKey;

/// What the deployment guards and who the guard is: the scope every decision is made in.
/// (How the service paces its calls is [`crate::service::Tuning`].)
#[derive(Clone, Debug)]
pub struct Scope {
    /// Registry accounts guarded; empty = every account.
    pub accounts: Vec<String>,
    /// Regions guarded; empty = every region.
    pub regions: Vec<String>,
    /// The IAM role the guard acts as: calls made by it are never acted on.
    pub own_role_arn: Option<String>,
    /// The prefix of the guard's keep-alive tags (see [`crate::registry::keep_tag`]).
    pub keep_prefix: String,
}

impl Default for Scope {
    fn default() -> Self {
        Scope {
            accounts: Vec::new(),
            regions: Vec::new(),
            own_role_arn: None,
            keep_prefix: crate::registry::DEFAULT_KEEP_PREFIX.to_string(),
        }
    }
}

impl Scope {
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
pub fn screen(incident: &Incident, scope: &Scope) -> Option<String> {
    if let Some(why) = scope.outside(&incident.repo) {
        return Some(why);
    }
    if let Some(own) = &scope.own_role_arn {
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
