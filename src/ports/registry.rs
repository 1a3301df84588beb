//! The registry of protected tags, as the guard reads and writes it.

use super::HistoryRecord;
use crate::error::CallError;
use crate::registry::{Entry, InvalidEntry, Pin, RepoKey, TagRule};

/// The registry of protected tags.
#[allow(async_fn_in_trait)]
pub trait Registry {
    /// Every item of one repository, each read and validated on its own (an invalid item
    /// never hides the others).
    async fn entries(&self, repo: &RepoKey) -> Result<Vec<Result<Entry, InvalidEntry>>, CallError>;

    /// One item (`partition`, `tag`) as plain JSON, read consistently: what the table holds
    /// now, not what a stream record or an invocation says it holds. `None`: no such item.
    async fn item(
        &self,
        partition: &str,
        tag: &str,
    ) -> Result<Option<serde_json::Value>, CallError>;

    /// The partition key (`ACCOUNT/REGION/NAME` as written) of every repository with items,
    /// each once, unchecked: reconcile lists them, then reads each repository's items on its
    /// own, so it never holds every item (and manifest) of the registry at once.
    async fn repositories(&self) -> Result<Vec<String>, CallError>;

    /// Sets the pin fields named in `fields` on the item and removes the other pin fields
    /// ([`crate::registry::item::PIN_FIELDS`]), only if its digest is still `expect` (`None`:
    /// not pinned). `false` when the item changed meanwhile. Which fields a pin or a release
    /// writes is the registry's to say: see [`Registry::set_pin`], [`Registry::release`].
    async fn write_pin_fields(
        &self,
        repo: &RepoKey,
        tag: &str,
        expect: Option<&str>,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<bool, CallError>;

    /// Writes `pin` (or, with `None`, removes the pin fields) on the item, only if its digest is
    /// still `expect` (`None`: not pinned). Returns `false` when the item changed meanwhile.
    async fn set_pin(
        &self,
        repo: &RepoKey,
        tag: &str,
        expect: Option<&str>,
        pin: Option<&Pin>,
    ) -> Result<bool, CallError> {
        let fields = pin.map(crate::registry::pin_fields).unwrap_or_default();
        self.write_pin_fields(repo, tag, expect, fields).await
    }

    /// Removes the pin (an allowed caller deleted the tag) and marks the item released at
    /// `at` (RFC 3339), only if its digest is still `expect`; the mark keeps registration from
    /// pinning it again. `false` when the item changed meanwhile.
    async fn release(
        &self,
        repo: &RepoKey,
        tag: &str,
        expect: &str,
        at: &str,
    ) -> Result<bool, CallError> {
        let fields = crate::registry::release_fields(at);
        self.write_pin_fields(repo, tag, Some(expect), fields).await
    }

    /// Appends records to the tags' history.
    async fn add_history(&self, records: &[HistoryRecord]) -> Result<(), CallError>;

    /// Marks an unpinned item: ECR had no such tag when the guard registered it (`at`, RFC
    /// 3339). `false` when the item is gone or pinned meanwhile.
    async fn mark_not_found(&self, repo: &RepoKey, tag: &str, at: &str) -> Result<bool, CallError>;

    /// Every rule item, each read and validated on its own.
    async fn rules(&self) -> Result<Vec<Result<TagRule, InvalidEntry>>, CallError>;

    /// Creates the item of a tag `rule` protects, pinned to `pin`; `false` (nothing written)
    /// when the tag already has an item.
    async fn add_rule_pin(
        &self,
        repo: &RepoKey,
        tag: &str,
        rule: &str,
        pin: &Pin,
    ) -> Result<bool, CallError>;

    /// Deletes the item of a tag `rule` made; `false` when there is none, or another made it.
    async fn drop_rule_pin(&self, repo: &RepoKey, tag: &str, rule: &str)
        -> Result<bool, CallError>;
}
