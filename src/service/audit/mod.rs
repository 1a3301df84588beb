//! `audit`: the tag changes in CloudTrail history, set beside the registry and the guard's
//! history, printed as they are found.
//!
//! Sources are read a unit at a time (a file, an S3 object, a region's `LookupEvents`): files
//! and objects several at once on the blocking pool (decoding and splitting are CPU work; an
//! object's bytes are fed to its reader as they arrive), reported in the order they were
//! named, each unit's changes in time order. What is held at once is a few units' changes,
//! never their records; the registry is read a repository at a time, a tag's history once.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::rc::Rc;

use futures::{stream, StreamExt};
use serde_json::Value;

use crate::audit::print::Sink;
use crate::audit::report::{tag_changes, HistoryEntry, RepoView, TagChange, Verdict};
use crate::audit::scan::{scan, Scanned, Unit};
use crate::audit::timeline::{self, Timeline};
use crate::audit::Window;
use crate::events::Incident;
use crate::ports::{EventLookup, Items, LogArchive};
use crate::registry::{self, RepoKey, TagRule};

mod terms;

pub use terms::{AuditError, AuditOptions, AuditSummary, LOOKUP_NAMES, LOOKUP_SPACING};

/// An audit in progress: the registry it asks (none: every tag, `protected: null`), where
/// lines and problems go, and what it has learnt so far.
pub struct Audit<'a, C, S: Sink> {
    registry: Option<&'a C>,
    opts: AuditOptions,
    sink: S,
    summary: AuditSummary,
    views: HashMap<String, Rc<RepoView>>,
    rules: Option<Vec<TagRule>>,
    deeds: HashMap<String, Rc<Vec<HistoryEntry>>>,
    /// The changes read so far, judged and printed by [`Audit::finish`].
    found: Vec<Incident>,
}

impl<'a, C: Items, S: Sink> Audit<'a, C, S> {
    /// An audit telling what it finds to `sink`.
    pub fn new(registry: Option<&'a C>, opts: AuditOptions, sink: S) -> Self {
        Audit {
            registry,
            opts,
            sink,
            summary: AuditSummary::default(),
            views: HashMap::new(),
            rules: None,
            deeds: HashMap::new(),
            found: Vec::new(),
        }
    }

    /// Reads the sources the command opens (files, standard input), several at once on the
    /// blocking pool (decoding and splitting are CPU work), reported in the order given; a
    /// file whose name says it cannot hold the window is skipped unopened.
    pub async fn units(&mut self, units: Vec<Unit>) -> Result<(), AuditError> {
        let window = self.opts.window;
        let (keep, skip): (Vec<Unit>, Vec<Unit>) =
            units.into_iter().partition(|u| window.may_hold(&u.label));
        self.summary.skipped += skip.len() as u64;
        let jobs = stream::iter(keep)
            .map(move |u| async move {
                let label = u.label.clone();
                let job = tokio::task::spawn_blocking(move || u.scan(&window));
                joined(job.await, &label)
            })
            .buffered(self.opts.workers.max(1));
        futures::pin_mut!(jobs);
        while let Some(scanned) = jobs.next().await {
            self.unit(scanned)?;
        }
        Ok(())
    }

    /// Reads a trail's objects under `s3://bucket/prefix`: listed a page at a time, objects
    /// whose key's date is outside the window skipped, several read at once.
    pub async fn s3<A: LogArchive>(
        &mut self,
        archive: &A,
        bucket: &str,
        prefix: &str,
    ) -> Result<(), AuditError> {
        let window = self.opts.window;
        // Under one region's prefix keys sort by day: start at the window's first day and
        // stop past its last.
        let (start_after, stop_after) = crate::audit::day_bounds(prefix, &window);
        let mut token = None;
        loop {
            let (keys, next) = archive
                .keys_page(bucket, prefix, start_after.as_deref(), token)
                .await?;
            let past = |k: &String| stop_after.as_ref().is_some_and(|s| k.as_str() > s.as_str());
            let done = keys.last().is_some_and(past);
            let mut keep = Vec::new();
            for key in keys.into_iter().filter(|k| !past(k)) {
                if !is_log_key(&key) {
                    continue;
                }
                if window.may_hold(&key) {
                    keep.push(key);
                } else {
                    self.summary.skipped += 1;
                }
            }
            let jobs = stream::iter(keep)
                .map(|key| read_object(archive, bucket, key, window))
                .buffered(self.opts.s3_reads.max(1));
            futures::pin_mut!(jobs);
            while let Some(scanned) = jobs.next().await {
                self.unit(scanned)?;
            }
            match next {
                Some(t) if !done => token = Some(t),
                _ => return Ok(()),
            }
        }
    }

    /// Asks `LookupEvents` in each region for every record that can change a tag in the
    /// window (90 days at most: CloudTrail keeps no more), calls spaced by the options.
    pub async fn lookup<L: EventLookup>(
        &mut self,
        trail: &L,
        regions: &[String],
    ) -> Result<(), AuditError> {
        let window = self.opts.window;
        let mut first = true;
        for region in regions {
            let mut found = Scanned::new(&format!("cloudtrail:{region}"));
            let mut index = 0;
            for name in LOOKUP_NAMES {
                let mut token = None;
                loop {
                    if !first {
                        tokio::time::sleep(self.opts.lookup_spacing).await;
                    }
                    first = false;
                    let (records, next) = trail
                        .lookup_page(region, name, (window.since, window.until), token)
                        .await?;
                    for r in &records {
                        found.record(index, Ok(r.as_bytes()), &window);
                        index += 1;
                    }
                    match next {
                        Some(t) => token = Some(t),
                        None => break,
                    }
                }
            }
            found.sort();
            self.unit(found)?;
        }
        Ok(())
    }

    /// Judges every change found, in event time, prints the report and hands back the
    /// summary. Changes are held until here (never records): the order of event time, two
    /// reports of one change and the guard's own pushes can only be known across sources.
    pub async fn finish(mut self) -> Result<AuditSummary, AuditError> {
        let mut found = std::mem::take(&mut self.found);
        // Stable: records of one second keep the order they were read in.
        found.sort_by_cached_key(|i| crate::text::parse_time(&Value::String(i.time.clone())));
        let mut changes = Vec::new();
        for i in &found {
            let view = self.view(&i.repo).await?;
            changes.extend(tag_changes(i, view.as_deref()));
        }
        drop(found);
        let mut timeline = Timeline::new(self.opts.guard_role.clone());
        let mut counted = HashSet::new();
        for c in timeline::merge(changes) {
            self.judge(&mut timeline, c, &mut counted).await?;
        }
        self.sink.finish()?;
        Ok(self.summary)
    }

    /// Takes one unit: its problems said at once, its changes held for [`Audit::finish`].
    fn unit(&mut self, scanned: Scanned) -> Result<(), AuditError> {
        self.summary.sources += 1;
        self.summary.records += scanned.records;
        for p in &scanned.problems {
            self.summary.problems += 1;
            self.sink.problem(p)?;
        }
        self.found.extend(scanned.changes);
        Ok(())
    }

    /// Judges one change against the registry and the tag's history, counts it and prints
    /// its line.
    async fn judge(
        &mut self,
        timeline: &mut Timeline,
        c: TagChange,
        counted: &mut HashSet<String>,
    ) -> Result<(), AuditError> {
        let view = self.view(&c.repo).await?;
        // The tag's history is read only for tags the registry may protect.
        let deeds = match (&view, &c.tag) {
            (Some(v), Some(tag)) if v.may_protect(tag) => self.deeds(&c.repo, tag).await?,
            _ => Rc::default(),
        };
        let protected = view
            .as_ref()
            .map(|v| c.tag.as_deref().is_some_and(|t| v.protects(t, &c, &deeds)));
        let pin = match (&view, &c.tag) {
            (Some(v), Some(tag)) => v.pins.get(tag).cloned().flatten(),
            _ => None,
        };
        let event_id = c.event_id.clone();
        let judged = timeline.judge(c, protected, &deeds, pin.as_deref());
        if judged.guard_repair {
            self.summary.guard_repairs += 1;
        } else {
            if counted.insert(event_id) {
                self.summary.changes += 1;
            }
            if protected == Some(true) {
                self.summary.protected += 1;
                if judged.verdict == Verdict::NotRepaired {
                    self.summary.not_repaired += 1;
                }
            }
        }
        if protected != Some(false) || self.opts.all_tags {
            self.summary.lines += 1;
            self.sink.line(&judged.line)?;
        }
        Ok(())
    }

    /// What the registry says about `repo`: its items (read once) and the rules covering it;
    /// `None` without a registry.
    async fn view(&mut self, repo: &RepoKey) -> Result<Option<Rc<RepoView>>, AuditError> {
        let Some(console) = self.registry else {
            return Ok(None);
        };
        if let Some(v) = self.views.get(&repo.key()) {
            return Ok(Some(v.clone()));
        }
        if self.rules.is_none() {
            let items = console.partition(registry::RULE_PARTITION, false).await?;
            let rules = items
                .iter()
                .filter_map(|i| registry::parse_rule(i).ok())
                .collect();
            self.rules = Some(rules);
        }
        let items = console.partition(&repo.key(), false).await?;
        let pins = items
            .iter()
            .filter_map(|i| registry::parse_item(i).ok())
            .map(|e| {
                let digest = e.digest().map(String::from);
                (e.tag, digest)
            })
            .collect();
        let rules = self
            .rules
            .iter()
            .flatten()
            .filter(|r| r.covers(repo))
            .cloned()
            .collect();
        let view = Rc::new(RepoView { pins, rules });
        self.views.insert(repo.key(), view.clone());
        Ok(Some(view))
    }

    /// The guard's history of `repo`:`tag` (read once).
    async fn deeds(
        &mut self,
        repo: &RepoKey,
        tag: &str,
    ) -> Result<Rc<Vec<HistoryEntry>>, AuditError> {
        let key = format!("history#{}:{tag}", repo.key());
        if let Some(d) = self.deeds.get(&key) {
            return Ok(d.clone());
        }
        let Some(console) = self.registry else {
            return Ok(Rc::default());
        };
        let records: Vec<Value> = console.partition(&key, false).await?;
        let deeds: Rc<Vec<HistoryEntry>> =
            Rc::new(records.iter().filter_map(HistoryEntry::read).collect());
        self.deeds.insert(key, deeds.clone());
        Ok(deeds)
    }
}

/// A key the audit reads: a log file, not a folder marker, a digest file or an Insights file.
fn is_log_key(key: &str) -> bool {
    !key.ends_with('/')
        && !key.contains("/CloudTrail-Digest/")
        && !key.contains("/CloudTrail-Insight/")
        && [".json.gz", ".json", ".gz", ".jsonl"]
            .iter()
            .any(|e| key.ends_with(e))
}

/// Reads one S3 object: its bytes go to a reader on the blocking pool as they arrive.
async fn read_object<A: LogArchive>(
    archive: &A,
    bucket: &str,
    key: String,
    window: Window,
) -> Scanned {
    let label = format!("s3://{bucket}/{key}");
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let name = label.clone();
    let job = tokio::task::spawn_blocking(move || scan(&name, ChannelReader::new(rx), &window));
    let read = archive.read(bucket, &key, tx).await;
    let mut scanned = joined(job.await, &label);
    if let Err(e) = read {
        if scanned.records == 0 {
            // Nothing was read: the splitter's "empty" says less than the call's error.
            scanned.problems.clear();
        }
        scanned.problem(format!("cannot be read: {e}"));
    }
    scanned
}

/// A finished scan, or a problem naming the source when its task failed.
fn joined(r: Result<Scanned, tokio::task::JoinError>, label: &str) -> Scanned {
    r.unwrap_or_else(|e| {
        let mut s = Scanned::new(label);
        s.problem(format!("reading it failed: {e}"));
        s
    })
}

/// The bytes an async reader sends, read on a blocking thread.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl ChannelReader {
    fn new(rx: tokio::sync::mpsc::Receiver<Vec<u8>>) -> Self {
        ChannelReader {
            rx,
            chunk: Vec::new(),
            at: 0,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at >= self.chunk.len() {
            match self.rx.blocking_recv() {
                Some(c) => {
                    self.chunk = c;
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.at);
        out[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::print::{Format, Output, Printer};
    use crate::error::CallError;
    use crate::memory::Memory;

    /// A trail bucket of named objects; `None` bodies cannot be read.
    struct Bucket(Vec<(&'static str, Option<&'static [u8]>)>);

    impl LogArchive for Bucket {
        async fn keys_page(
            &self,
            _bucket: &str,
            prefix: &str,
            start_after: Option<&str>,
            _token: Option<String>,
        ) -> Result<(Vec<String>, Option<String>), CallError> {
            let keys = self
                .0
                .iter()
                .map(|(k, _)| k.to_string())
                .filter(|k| k.starts_with(prefix) && start_after.is_none_or(|s| k.as_str() > s))
                .collect();
            Ok((keys, None))
        }

        async fn read(
            &self,
            _bucket: &str,
            key: &str,
            sink: tokio::sync::mpsc::Sender<Vec<u8>>,
        ) -> Result<(), CallError> {
            let body = self.0.iter().find(|(k, _)| *k == key).and_then(|(_, b)| *b);
            let Some(body) = body else {
                return Err(CallError::fatal(
                    "s3:GetObject",
                    "AccessDenied (HTTP 403): denied",
                ));
            };
            // In two chunks, split inside a record.
            let (a, b) = body.split_at(body.len() / 2);
            for part in [a, b] {
                if sink.send(part.to_vec()).await.is_err() {
                    return Ok(());
                }
            }
            Ok(())
        }
    }

    const LOG: &[u8] = br#"{"Records":[{"eventID":"e1","eventTime":"2026-11-02T10:00:00Z","eventSource":"ecr.amazonaws.com","eventName":"BatchDeleteImage","awsRegion":"eu-west-1","recipientAccountId":"123456789012","userIdentity":{"arn":"arn:aws:iam::123456789012:user/bob"},"requestParameters":{"repositoryName":"web","imageIds":[{"imageTag":"prod"}]},"responseElements":{"imageIds":[{"imageTag":"prod","imageDigest":"sha256:1111111111111111111111111111111111111111111111111111111111111111"}],"failures":[]}}]}"#;

    #[tokio::test]
    async fn an_object_that_cannot_be_read_is_named_and_the_others_are_read() {
        let day = "AWSLogs/1/CloudTrail/eu-west-1/2026/11/02/";
        let bucket = Bucket(vec![
            (
                "AWSLogs/1/CloudTrail/eu-west-1/2026/11/02/a.json",
                Some(LOG),
            ),
            ("AWSLogs/1/CloudTrail/eu-west-1/2026/11/02/b.json.gz", None),
            ("AWSLogs/1/CloudTrail/eu-west-1/2026/11/02/", Some(b"")),
        ]);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let sink = Output {
            lines: Printer::new(&mut out, Format::Json),
            problems: &mut err,
        };
        let mut audit = Audit::new(None::<&Memory>, AuditOptions::default(), sink);
        audit.s3(&bucket, "trail", "AWSLogs/").await.expect("audit");
        let summary = audit.finish().await.expect("finish");
        assert_eq!(
            (summary.sources, summary.lines, summary.problems),
            (2, 1, 1)
        );
        let err = String::from_utf8(err).unwrap();
        assert_eq!(
            err.trim(),
            format!("problem: s3://trail/{day}b.json.gz: cannot be read: s3:GetObject: AccessDenied (HTTP 403): denied")
        );
        let line: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["event_id"], "e1");
    }
}
