//! `audit`: what happened to the tags, read from CloudTrail history (log files, a trail's S3
//! bucket, `LookupEvents`) and set beside what the guard's history records.
//!
//! The pure parts live here; [`crate::service::audit`] runs them over the sources and the
//! registry:
//!
//! * [`crate::records`]: a stream of JSON into records, holding one record at a time;
//! * [`scan`]: one source into the ECR changes it holds (a byte search first, a full read of
//!   the few records that may be ECR writes);
//! * [`report`]: a change into report lines (one per tag), with what the registry and the
//!   guard's history say about it, and the three output formats;
//! * [`timeline`]: the changes in event-time order, two reports of one change made one, the
//!   guard's own pushes told apart from the changes they repair.

pub mod print;
pub mod report;
pub mod scan;
pub mod timeline;

use serde_json::Value;

/// The time window of an audit (`--since`, `--until`), epoch seconds, both ends included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// Nothing before this.
    pub since: Option<i64>,
    /// Nothing after this.
    pub until: Option<i64>,
}

/// How long CloudTrail may take to deliver a record into a log file, as this reader allows:
/// a file delivered at T is taken to hold records from T minus this to T. CloudTrail
/// delivers within minutes; an hour leaves room.
pub const DELIVERY_LAG_SECS: i64 = 3600;

impl Window {
    /// A window between two optional ends.
    pub fn new(since: Option<i64>, until: Option<i64>) -> Window {
        Window { since, until }
    }

    /// Whether the moment `t` is in the window.
    pub fn holds(&self, t: i64) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
    }

    /// Whether a record of time `time` (as the record writes it) is in the window; a time
    /// that cannot be read is kept (better reported than lost).
    pub fn holds_time(&self, time: &str) -> bool {
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        crate::text::parse_time(&Value::String(time.to_string())).is_none_or(|t| self.holds(t))
    }

    /// Whether records from `first` to `last` (epoch seconds) can be in the window.
    pub fn overlaps(&self, first: i64, last: i64) -> bool {
        self.since.is_none_or(|s| last >= s) && self.until.is_none_or(|u| first <= u)
    }

    /// Whether a trail's log file or object can hold records in the window, by its name:
    /// the delivery minute in a trail's file name (`..._20261130T1935Z_...`), else the day of
    /// a trail's key (`.../CloudTrail/REGION/2026/11/30/...`). A name that says neither can.
    pub fn may_hold(&self, name: &str) -> bool {
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        if let Some(t) = delivery_minute(name) {
            return self.overlaps(t - DELIVERY_LAG_SECS, t + 59);
        }
        if let Some(day) = key_day(name) {
            return self.overlaps(day - DELIVERY_LAG_SECS, day + 86_399);
        }
        true
    }
}

/// The delivery minute a trail's log file name carries (`ACCOUNT_CloudTrail_REGION_
/// YYYYMMDDTHHMMZ_RANDOM.json.gz`), as epoch seconds.
pub fn delivery_minute(name: &str) -> Option<i64> {
    let file = name.rsplit('/').next()?;
    let stamp = file.split('_').find(|p| {
        p.len() == 14
            && p.as_bytes()[8] == b'T'
            && p.ends_with('Z')
            && p[..8].bytes().all(|b| b.is_ascii_digit())
            && p[9..13].bytes().all(|b| b.is_ascii_digit())
    })?;
    let text = format!(
        "{}-{}-{}T{}:{}:00Z",
        &stamp[..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13]
    );
    crate::text::parse_time(&Value::String(text))
}

/// The day of a trail's key (`.../CloudTrail/REGION/YYYY/MM/DD/...`), as epoch seconds of its
/// midnight (UTC).
pub fn key_day(key: &str) -> Option<i64> {
    let parts: Vec<&str> = key.split('/').collect();
    let at = parts.iter().position(|p| *p == "CloudTrail")?;
    let (y, m, d) = (parts.get(at + 2)?, parts.get(at + 3)?, parts.get(at + 4)?);
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(y, 4) && digits(m, 2) && digits(d, 2)) {
        return None;
    }
    crate::text::parse_time(&Value::String(format!("{y}-{m}-{d}T00:00:00Z")))
}

/// For a prefix that names one region of a trail (`.../CloudTrail/REGION/`, where keys sort by
/// day): the key to list after (just before the window's first day, less the delivery lag) and
/// the key past which nothing can be in the window (the end of the day after its last, keys
/// being delivered up to [`DELIVERY_LAG_SECS`] late). `None` where the prefix says no region
/// or the window has no such end.
pub fn day_bounds(prefix: &str, w: &Window) -> (Option<String>, Option<String>) {
    let parts: Vec<&str> = prefix.split('/').collect();
    let region_level = parts
        .iter()
        .position(|p| *p == "CloudTrail")
        .is_some_and(|at| {
            parts.len() == at + 3 && parts[at + 2].is_empty() && !parts[at + 1].is_empty()
        });
    if !region_level {
        return (None, None);
    }
    let day = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t).ok().map(|d| {
            format!(
                "{prefix}{:04}/{:02}/{:02}",
                d.year(),
                u8::from(d.month()),
                d.day()
            )
        })
    };
    // "P2026/11/01" sorts before every key of that day and after every key of the day before.
    let start = w.since.and_then(|s| day(s - 86_400));
    let stop = w
        .until
        .and_then(|u| day(u + DELIVERY_LAG_SECS))
        .map(|d| d + "/~");
    (start, stop)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    /// 2026-11-30T00:00:00Z
    const NOV30: i64 = 1_795_996_800;

    #[test]
    fn names_say_when_a_file_was_delivered() {
        let key = "AWSLogs/o-abc/123456789012/CloudTrail/eu-west-1/2026/11/30/123456789012_CloudTrail_eu-west-1_20261130T1935Z_Ab12.json.gz";
        assert_eq!(delivery_minute(key), Some(NOV30 + 19 * 3600 + 35 * 60));
        assert_eq!(key_day(key), Some(NOV30));
        assert_eq!(key_day("AWSLogs/1/CloudTrail/eu-west-1/2026/11/"), None);
        assert_eq!(delivery_minute("events/01-delete.json"), None);
    }

    #[test]
    fn a_regions_listing_starts_and_stops_at_the_windows_days() {
        let p = "AWSLogs/1/CloudTrail/eu-west-1/";
        let w = Window::new(Some(NOV30 + 3600), Some(NOV30 + 23 * 3600 + 1800));
        let (start, stop) = day_bounds(p, &w);
        assert_eq!(
            start.as_deref(),
            Some("AWSLogs/1/CloudTrail/eu-west-1/2026/11/29")
        );
        // 23:30 and an hour's lag reach into December.
        assert_eq!(
            stop.as_deref(),
            Some("AWSLogs/1/CloudTrail/eu-west-1/2026/12/01/~")
        );
        let key = |d: &str| format!("{p}{d}/1_CloudTrail_eu-west-1_x.json.gz");
        assert!(key("2026/11/29").as_str() > start.as_deref().unwrap());
        assert!(key("2026/12/01").as_str() < stop.as_deref().unwrap());
        assert!(key("2026/12/02").as_str() > stop.as_deref().unwrap());
        assert_eq!(day_bounds("AWSLogs/1/", &w), (None, None));
        assert_eq!(day_bounds("AWSLogs/1/CloudTrail/", &w), (None, None));
        assert_eq!(day_bounds(p, &Window::default()), (None, None));
    }

    #[test]
    fn a_file_is_skipped_only_when_it_cannot_hold_the_window() {
        let file = |t: &str| format!("1_CloudTrail_eu-west-1_{t}_x.json.gz");
        let w = Window::new(Some(NOV30 + 12 * 3600), Some(NOV30 + 13 * 3600));
        assert!(
            !w.may_hold(&file("20261130T1159Z")),
            "delivered before the window"
        );
        assert!(w.may_hold(&file("20261130T1200Z")), "may hold 12:00:30");
        assert!(
            w.may_hold(&file("20261130T1400Z")),
            "delivered within the lag"
        );
        assert!(!w.may_hold(&file("20261130T1401Z")));
        let day = |d: &str| format!("AWSLogs/1/CloudTrail/eu-west-1/2026/11/{d}/");
        assert!(w.may_hold(&day("30")));
        assert!(!w.may_hold(&day("29")));
        assert!(!w.may_hold(&day("01")));
        let late = Window::new(None, Some(NOV30 - DAY + 23 * 3600 + 1800));
        assert!(
            late.may_hold(&day("30")),
            "a late record of the 29th lands in the 30th"
        );
        assert!(w.may_hold("events/anything.json"));
        assert!(w.holds_time("not a time"));
        assert!(!w.holds_time("2026-11-30T11:59:59Z"));
        assert!(w.holds_time("2026-11-30T12:00:00Z"));
    }
}
