//! CloudTrail, as the guard and `audit` ask it: who changed a tag, the history of calls,
//! a trail's log files.

use crate::error::CallError;

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
