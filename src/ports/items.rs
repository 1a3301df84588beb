//! Item administration: what the registry commands write and read in the table.

use super::HistoryRecord;
use crate::error::CallError;

/// The registry table as the commands administer it: whole items as plain JSON, the tags'
/// history, and the notes the commands leave for reconcile. [`crate::aws::admin::Admin`]
/// against AWS, [`crate::memory::Memory`] on the embedded world.
#[allow(async_fn_in_trait)]
pub trait Items {
    /// Writes an item; unless `replace`, only where none exists. `false`: one exists.
    async fn put_item(&self, item: &serde_json::Value, replace: bool) -> Result<bool, CallError>;
    /// Deletes the item (`partition`, `tag`). `false`: there was none.
    async fn delete_item(&self, partition: &str, tag: &str) -> Result<bool, CallError>;
    /// Replaces an existing tag item, only while its pinned digest is still `expect` (`None`:
    /// not pinned): a command never writes back a pin the guard changed meanwhile. `false`:
    /// the item is gone or its pin changed.
    async fn replace_item(
        &self,
        item: &serde_json::Value,
        expect: Option<&str>,
    ) -> Result<bool, CallError>;
    /// Deletes the tag item (`partition`, `tag`) only while its pinned digest is still
    /// `expect` (`None`: not pinned). `false`: the item is gone or its pin changed.
    async fn delete_pinned(
        &self,
        partition: &str,
        tag: &str,
        expect: Option<&str>,
    ) -> Result<bool, CallError>;
    /// Appends records to the tags' history.
    async fn add_history(&self, records: &[HistoryRecord]) -> Result<(), CallError>;
    /// Notes that the repository holds a retired guard tag, for reconcile to come back to
    /// ([`crate::ports::Ledger::note_guard_tags`]).
    async fn note_guard_tags(&self, repo: &str) -> Result<(), CallError>;
    /// The repositories noted as holding retired guard tags
    /// ([`crate::ports::Ledger::guard_tag_repositories`]).
    async fn guard_tag_repositories(&self) -> Result<Vec<String>, CallError>;
    /// Every item of a partition, sorted by `tag` (`newest_first`: reversed).
    async fn partition(
        &self,
        key: &str,
        newest_first: bool,
    ) -> Result<Vec<serde_json::Value>, CallError>;
    /// Every registry item (tag and rule items; not the guard's history and ledger records).
    async fn registry_items(&self) -> Result<Vec<serde_json::Value>, CallError>;

    /// Whether a registry can be read here: on the embedded world always, against AWS when
    /// a table is named.
    fn has_registry(&self) -> bool {
        true
    }
}
