//! The narrow traits the handler needs. [`crate::aws`] implements them with the AWS SDK,
//! [`crate::memory`] with an embedded in-memory world. Adapters translate; they never decide.

mod history;

pub use history::{HistoryAction, HistoryOutcome, HistoryRecord};

use crate::error::CallError;
use crate::guard::{Failure, PutStep};
use crate::page::Page;
use crate::registry::image::ImageInfo;
use crate::registry::image::Storage;
use crate::registry::{Entry, InvalidEntry, Manifest, Pin, RepoKey, TagRule};

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

/// The key the guard seals its pins with (see [`crate::registry::seal`]): a KMS HMAC key
/// against AWS, a key of the embedded world's own in memory.
#[allow(async_fn_in_trait)]
pub trait PinKey {
    /// The MAC of `message` (KMS `GenerateMac`, `HMAC_SHA_256`).
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CallError>;
    /// Whether `mac` is this key's MAC of `message` (KMS `VerifyMac`): `false` for a MAC made
    /// with another key or over other facts.
    async fn verify(&self, message: &[u8], mac: &[u8]) -> Result<bool, CallError>;
}

/// What `PutImage` answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    /// The image (and tag) were written.
    Written,
    /// `ImageAlreadyExistsException`: the tag already sits on that digest.
    AlreadyThere,
}

/// Why a `PutImage` did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutError {
    /// ECR refused for a reason a person must look at.
    Refused(Failure, String),
    /// The call failed (possibly retryable).
    Call(CallError),
}

/// The images in ECR.
#[allow(async_fn_in_trait)]
pub trait Images {
    /// `PutImage` of one step: manifest bytes, media type, `imageDigest`, and the tag if any.
    async fn put(&self, repo: &RepoKey, step: &PutStep) -> Result<Put, PutError>;

    /// `BatchGetImage` by digest: the manifest, or `None` when ECR no longer has the image.
    async fn manifest(&self, repo: &RepoKey, digest: &str) -> Result<Option<Manifest>, CallError>;

    /// `BatchDeleteImage` of one tag: untags its image (deleting it when that was its last
    /// tag). A tag that is not there is not an error.
    async fn untag(&self, repo: &RepoKey, tag: &str) -> Result<(), CallError>;

    /// `BatchGetImage` of many tags (100 a call): for each, its manifest (with its digest) or
    /// ECR's failure code; `None` when the repository does not exist.
    async fn lookup(
        &self,
        repo: &RepoKey,
        tags: &[String],
    ) -> Result<Option<Vec<Result<Manifest, String>>>, CallError>;

    /// The repository's images that are not in standard storage (`DescribeImages` filtered
    /// on `ARCHIVED`, then `ACTIVATING`, paginated), by digest; empty when the repository
    /// does not exist.
    async fn off_standard(&self, repo: &RepoKey) -> Result<Vec<(String, Storage)>, CallError>;

    /// Every image of the repository with its tags and push time (`DescribeImages`,
    /// paginated); `None` when the repository does not exist.
    async fn list(&self, repo: &RepoKey) -> Result<Option<Vec<ImageInfo>>, CallError>;

    /// `UpdateImageStorageClass` to `STANDARD`: starts bringing an archived image back.
    async fn unarchive(&self, repo: &RepoKey, digest: &str) -> Result<(), CallError>;
}

/// The on-call channel.
#[allow(async_fn_in_trait)]
pub trait Pager {
    /// Publishes one page.
    async fn publish(&self, page: &Page) -> Result<(), CallError>;
}

/// What the ledger knew of an event when it was claimed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Never seen: go ahead.
    Fresh,
    /// Handled and paged: a duplicate, do nothing.
    Done,
    /// An earlier attempt acted, but these pages did not go out: send them; act again only
    /// when `redo` says some action of that attempt failed too.
    PagesPending {
        /// The pages to send.
        pages: Vec<Page>,
        /// Whether to act again after sending them.
        redo: bool,
    },
    /// Another invocation holds the claim (or is sending the pending pages) and is still
    /// within its lease.
    Busy,
    /// An earlier attempt claimed it and stopped without finishing: go ahead, knowing that
    /// it may have acted already.
    Resumed,
}

/// Once-only records, keyed by event id, that expire after a while.
#[allow(async_fn_in_trait)]
pub trait Ledger {
    /// Claims the event at `now` (epoch seconds) until `lease_until`: a claim, or pages
    /// pending from an earlier attempt, are taken only when no other attempt holds them within
    /// its lease — so two deliveries never both act, nor both send the pending pages.
    async fn claim(&self, event_id: &str, now: i64, lease_until: i64) -> Result<Claim, CallError>;
    /// Marks the event handled; `pending` are pages still to send (empty: done), `redo` that
    /// some action must be tried again too.
    async fn finish(
        &self,
        event_id: &str,
        now: i64,
        pending: &[Page],
        redo: bool,
    ) -> Result<(), CallError>;
    /// Drops the claim so that a retry starts afresh.
    async fn release(&self, event_id: &str) -> Result<(), CallError>;
    /// When `key` was first noted (epoch seconds): `now` the first time, the first time's
    /// value after that, while the record lasts ([`LEDGER_TTL_SECS`]). Reconcile times its
    /// grace period with it.
    async fn first_seen(&self, key: &str, now: i64) -> Result<i64, CallError>;
    /// When each repository (`ACCOUNT/REGION/NAME`) was last reconciled (epoch seconds).
    async fn reconciled(&self) -> Result<Vec<(String, i64)>, CallError>;
    /// Notes that `repos` were reconciled at `at`.
    async fn mark_reconciled(&self, repos: &[String], at: i64) -> Result<(), CallError>;
    /// Notes (`held`) or clears that the repository (`ACCOUNT/REGION/NAME`) holds guard tags
    /// no pin needs (retired where nothing could carry them): reconcile visits every noted
    /// repository, items or not, until it has let go of them. Kept without expiry.
    async fn note_guard_tags(&self, repo: &str, held: bool) -> Result<(), CallError>;
    /// The repositories [`Ledger::note_guard_tags`] noted.
    async fn guard_tag_repositories(&self) -> Result<Vec<String>, CallError>;
    /// Keeps a reconcile page SNS did not take, under `key` (its repository, or the run's
    /// summary), with the once-only keys of the problems it carries, for the next run to send
    /// first. Kept without expiry; a page kept under the same key replaces the older one.
    async fn keep_unsent(
        &self,
        key: &str,
        page: &Page,
        problems: &[String],
    ) -> Result<(), CallError>;
    /// The pages [`Ledger::keep_unsent`] kept: key, page, problems.
    async fn unsent(&self) -> Result<Vec<(String, Page, Vec<String>)>, CallError>;
    /// Drops a kept page once it went out.
    async fn drop_unsent(&self, key: &str) -> Result<(), CallError>;
}

/// CloudTrail's own history of API calls (`LookupEvents`, 90 days of management events, no
/// trail needed): who changed a tag, when no event said so.
#[allow(async_fn_in_trait)]
pub trait Trail {
    /// The tag changes (`PutImage`, `BatchDeleteImage`) recorded in `account` and `region`
    /// since `since` (epoch seconds), read as incidents (in no particular order).
    async fn tag_changes(
        &self,
        account: &str,
        region: &str,
        since: i64,
    ) -> Result<Vec<crate::events::Incident>, CallError>;
}

/// CloudTrail's `LookupEvents` read a page at a time, for `audit`: management events of the
/// last 90 days in one region, no trail needed.
#[allow(async_fn_in_trait)]
pub trait EventLookup {
    /// One page (at most 50) of the records named `name` in `region` between `start` and `end`
    /// (epoch seconds; `None`: CloudTrail's own limits), each the record's JSON text, and the
    /// token of the next page.
    async fn lookup_page(
        &self,
        region: &str,
        name: &str,
        window: (Option<i64>, Option<i64>),
        token: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), CallError>;
}

/// A trail's log files in S3, for `audit`: listed a page at a time, read as they arrive.
#[allow(async_fn_in_trait)]
pub trait LogArchive {
    /// One page (at most 1000) of the keys under `prefix`, in key order, after the key
    /// `start_after` (on the first page) or `token`; and the token of the next page.
    async fn keys_page(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), CallError>;
    /// Sends the object's bytes into `sink` as they arrive (stopping when the receiver is
    /// gone); an error when the object cannot be read to its end.
    async fn read(
        &self,
        bucket: &str,
        key: &str,
        sink: tokio::sync::mpsc::Sender<Vec<u8>>,
    ) -> Result<(), CallError>;
}

/// What the registry commands read and write beyond the guard's own ports: whole items as
/// plain JSON, images by tag or digest, every image of a repository, lifecycle policies, and
/// who is calling. [`crate::aws::admin::Admin`] is it against AWS, [`crate::memory::Memory`]
/// on the embedded world.
#[allow(async_fn_in_trait)]
pub trait Console {
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
    /// ([`Ledger::note_guard_tags`]).
    async fn note_guard_tags(&self, repo: &str) -> Result<(), CallError>;
    /// The repositories noted as holding retired guard tags
    /// ([`Ledger::guard_tag_repositories`]).
    async fn guard_tag_repositories(&self) -> Result<Vec<String>, CallError>;
    /// Every item of a partition, sorted by `tag` (`newest_first`: reversed).
    async fn partition(
        &self,
        key: &str,
        newest_first: bool,
    ) -> Result<Vec<serde_json::Value>, CallError>;
    /// Every registry item (tag and rule items; not the guard's history and ledger records).
    async fn registry_items(&self) -> Result<Vec<serde_json::Value>, CallError>;
    /// Images by tag or digest: each one's manifest or ECR's failure code; `None` when the
    /// repository does not exist.
    async fn images(
        &self,
        repo: &RepoKey,
        ids: &[crate::registry::ImageRef],
    ) -> Result<Option<Vec<Result<Manifest, String>>>, CallError>;
    /// Every image of the repository in any storage class; an error when it does not exist.
    async fn describe_images(&self, repo: &RepoKey) -> Result<Vec<ImageInfo>, CallError>;
    /// The repository's lifecycle policy text; `None` when it has none.
    async fn lifecycle_policy(&self, repo: &RepoKey) -> Result<Option<String>, CallError>;
    /// Writes the repository's lifecycle policy.
    async fn put_lifecycle_policy(&self, repo: &RepoKey, text: &str) -> Result<(), CallError>;
    /// The caller's account and ARN, when they can be learnt.
    async fn caller(&self) -> Option<(String, String)>;
}

/// A [`Trail`] for where CloudTrail cannot be asked: every lookup fails (not retryable), so
/// a drift whose caller matters is paged, never undone.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTrail;

impl Trail for NoTrail {
    async fn tag_changes(
        &self,
        _account: &str,
        _region: &str,
        _since: i64,
    ) -> Result<Vec<crate::events::Incident>, CallError> {
        Err(CallError::fatal(
            "cloudtrail:LookupEvents",
            "no CloudTrail lookup here",
        ))
    }
}

/// How long a claim protects an event being handled when the attempt has no deadline of its
/// own (a command): the Lambda derives its lease from the invocation's deadline instead
/// ([`crate::service::Now::until`]).
pub const CLAIM_LEASE_SECS: i64 = 360;

/// How long ledger records are kept (DynamoDB TTL): longer than EventBridge retries (24 h).
pub const LEDGER_TTL_SECS: i64 = 3 * 24 * 3600;
