//! Repositories' lifecycle policies, as `lifecycle check|shield|simulate` read and write them.

use crate::error::CallError;
use crate::registry::RepoKey;

/// A repository's lifecycle policy.
#[allow(async_fn_in_trait)]
pub trait Policies {
    /// The repository's lifecycle policy text; `None` when it has none.
    async fn lifecycle_policy(&self, repo: &RepoKey) -> Result<Option<String>, CallError>;
    /// Writes the repository's lifecycle policy.
    async fn put_lifecycle_policy(&self, repo: &RepoKey, text: &str) -> Result<(), CallError>;
}
