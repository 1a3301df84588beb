//! One source (a file, an S3 object, a page of `LookupEvents`) read into the tag changes it
//! holds: records split without parsing ([`super::split`]), a cheap byte search deciding which
//! records can concern an ECR write, and only those parsed in full by the event reader the
//! guard itself uses ([`crate::events::parse`]).

use std::io::{BufRead, BufReader, Read};
use std::sync::LazyLock;

use memchr::memmem::Finder;
use serde_json::Value;

use super::Window;
use crate::events::{self, Change, Incident, Parsed};
use crate::records::split;

/// Something wrong with one source or one of its records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file, `s3://bucket/key` or `cloudtrail:REGION`.
    pub source: String,
    /// The record's index in it (from 0), when one record is at fault.
    pub record: Option<u64>,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.record {
            Some(i) => write!(f, "{} record {i}: {}", self.source, self.problem),
            None => write!(f, "{}: {}", self.source, self.problem),
        }
    }
}

/// One source an audit is handed to read: its name (a file's path, `(stdin)`) and how to
/// open it. The command opens; the audit reads.
pub struct Unit {
    /// The name it is reported by (and, for a trail's file, the minute it was delivered).
    pub label: String,
    /// Opens it for reading.
    pub open: Box<dyn FnOnce() -> std::io::Result<Box<dyn Read + Send>> + Send>,
}

impl Unit {
    /// A source named `label`, opened by `open`.
    pub fn new<R: Read + Send + 'static>(
        label: impl Into<String>,
        open: impl FnOnce() -> std::io::Result<R> + Send + 'static,
    ) -> Unit {
        Unit {
            label: label.into(),
            open: Box::new(move || open().map(|r| Box::new(r) as Box<dyn Read + Send>)),
        }
    }

    /// Reads it through [`scan`]; a source that cannot be opened is one problem.
    pub fn scan(self, window: &Window) -> Scanned {
        match (self.open)() {
            Ok(r) => scan(&self.label, r, window),
            Err(e) => {
                let mut out = Scanned::new(&self.label);
                out.problem(format!("cannot be opened: {e}"));
                out
            }
        }
    }
}

/// What one source held.
#[derive(Debug, Default)]
pub struct Scanned {
    /// Where it came from.
    pub source: String,
    /// Records read.
    pub records: u64,
    /// The ECR changes in the window, oldest first.
    pub changes: Vec<Incident>,
    /// Problems met (the source went on where it could).
    pub problems: Vec<Problem>,
}

impl Scanned {
    /// An empty result for `source`.
    pub fn new(source: &str) -> Scanned {
        Scanned {
            source: source.to_string(),
            ..Scanned::default()
        }
    }

    /// Takes one record: counted, and read in full when it may be an ECR write in the window.
    pub fn record(&mut self, index: u64, record: Result<&[u8], String>, window: &Window) {
        self.records += 1;
        let problem = match record {
            Err(problem) => problem,
            Ok(bytes) if !may_be_ecr_write(bytes) => return,
            Ok(bytes) => match incident(bytes) {
                Ok(Some(i)) if window.holds_time(&i.time) => {
                    self.changes.push(without_manifests(i));
                    return;
                }
                Ok(_) => return,
                Err(problem) => problem,
            },
        };
        self.problems.push(Problem {
            source: self.source.clone(),
            record: Some(index),
            problem,
        });
    }

    /// A problem with the whole source.
    pub fn problem(&mut self, problem: String) {
        self.problems.push(Problem {
            source: self.source.clone(),
            record: None,
            problem,
        });
    }

    /// Orders the changes by time (stable: records of one second keep their order).
    pub fn sort(&mut self) {
        self.changes
            .sort_by_cached_key(|i| crate::text::parse_time(&Value::String(i.time.clone())));
    }
}

/// Reads `reader` (plain or gzip, told by its first bytes) as the source `label`.
pub fn scan(label: &str, reader: impl Read, window: &Window) -> Scanned {
    let mut out = Scanned::new(label);
    let mut reader = BufReader::with_capacity(64 << 10, reader);
    let gzip = match reader.fill_buf() {
        Ok(head) => head.starts_with(&[0x1f, 0x8b]),
        Err(e) => {
            out.problem(format!("cannot be read: {e}"));
            return out;
        }
    };
    let split = if gzip {
        let inflated = flate2::bufread::MultiGzDecoder::new(reader);
        split(inflated, |i, r| out.record(i, r, window))
    } else {
        split(reader, |i, r| out.record(i, r, window))
    };
    if let Some(stopped) = split.stopped {
        let what = if gzip { "gzip of JSON" } else { "JSON" };
        out.problem(format!("{stopped} (read as {what}; later records skipped)"));
    }
    out.sort();
    out
}

/// The byte strings every ECR write record holds: the service (`eventSource` of a CloudTrail
/// record, `source` of an EventBridge event), then one of the event names the guard reads.
/// The service is found in one pass: each `ecr` in the record, checked in place.
static ECR: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("ecr"));
static NAMES: LazyLock<[Finder<'static>; 5]> = LazyLock::new(|| {
    [
        Finder::new("PutImage"),
        Finder::new("BatchDeleteImage"),
        Finder::new("PolicyExecutionEvent"),
        Finder::new("DeleteRepository"),
        Finder::new("ECR Image Action"),
    ]
});

/// Whether a record may be an ECR write: a byte search, no parsing. Never false for one
/// (AWS writes these names unescaped); true for some others, which the full read then drops.
pub fn may_be_ecr_write(record: &[u8]) -> bool {
    names_ecr(record) && NAMES.iter().any(|f| f.find(record).is_some())
}

/// Whether `record` holds `ecr.amazonaws.com` or `"aws.ecr"`.
fn names_ecr(record: &[u8]) -> bool {
    let mut at = 0;
    while let Some(i) = ECR.find(&record[at..]) {
        let p = at + i;
        if record[p..].starts_with(b"ecr.amazonaws.com")
            || (p >= 5 && record[p - 5..].starts_with(b"\"aws.ecr\""))
        {
            return true;
        }
        at = p + 1;
    }
    false
}

/// The change a record reports: `None` when it changes no tag (a read, a failed call, another
/// service); an error when it claims to be an ECR event but cannot be read. A story file's
/// `{"replay": STEP, "event": EVENT}` wrapper is seen through.
pub fn incident(record: &[u8]) -> Result<Option<Incident>, String> {
    let value: Value = serde_json::from_slice(record).map_err(|e| format!("not JSON: {e}"))?;
    let (_, value) = events::input::unwrap_step(value)?;
    match events::parse(&value) {
        Ok(Parsed::Incident(i)) => Ok(Some(i)),
        Ok(Parsed::Ignored { .. }) => Ok(None),
        Err(e) => Err(e.0),
    }
}

/// The incident without the manifests a push carried (an audit reports digests only).
fn without_manifests(mut i: Incident) -> Incident {
    for c in &mut i.changes {
        if let Change::TagPushed { manifest, .. } = c {
            *manifest = None;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn delete(id: &str, time: &str, tag: &str) -> String {
        format!(
            r#"{{"eventID":"{id}","eventTime":"{time}","eventSource":"ecr.amazonaws.com","eventName":"BatchDeleteImage","awsRegion":"eu-west-1","recipientAccountId":"123456789012","userIdentity":{{"arn":"arn:aws:iam::123456789012:user/bob"}},"requestParameters":{{"repositoryName":"shop/api","imageIds":[{{"imageTag":"{tag}"}}]}},"responseElements":{{"imageIds":[{{"imageTag":"{tag}","imageDigest":"{DIGEST}"}}],"failures":[]}}}}"#
        )
    }

    fn other(id: &str) -> String {
        format!(
            r#"{{"eventID":"{id}","eventTime":"2026-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","requestParameters":{{"note":"PutImage"}}}}"#
        )
    }

    fn log(records: &[String]) -> String {
        format!("{{\"Records\":[{}]}}", records.join(","))
    }

    #[test]
    fn only_ecr_writes_are_read_in_full() {
        assert!(may_be_ecr_write(delete("a", "t", "prod").as_bytes()));
        assert!(!may_be_ecr_write(other("b").as_bytes()));
        let get = r#"{"eventSource":"ecr.amazonaws.com","eventName":"BatchGetImage"}"#;
        assert!(!may_be_ecr_write(get.as_bytes()));
        // `ecr` inside another service's name is not ECR; EventBridge's `aws.ecr` is.
        let secrets = r#"{"eventSource":"secretsmanager.amazonaws.com","eventName":"PutImage"}"#;
        assert!(!may_be_ecr_write(secrets.as_bytes()));
        let bridge = r#"{"source":"aws.ecr","detail-type":"ECR Image Action"}"#;
        assert!(may_be_ecr_write(bridge.as_bytes()));
        assert!(!may_be_ecr_write(b"ecr"));
    }

    #[test]
    fn a_log_file_plain_or_gzip_gives_its_changes_in_time_order() {
        let text = log(&[
            delete("e2", "2026-01-02T00:00:00Z", "b"),
            other("x"),
            delete("e1", "2026-01-01T00:00:00Z", "a"),
        ]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        for bytes in [text.as_bytes(), gz.as_slice()] {
            let s = scan("f", bytes, &Window::default());
            assert_eq!(s.records, 3);
            let ids: Vec<&str> = s.changes.iter().map(|i| i.event_id.as_str()).collect();
            assert_eq!(ids, ["e1", "e2"]);
            assert!(s.problems.is_empty(), "{:?}", s.problems);
        }
    }

    #[test]
    fn the_window_keeps_records_by_their_time() {
        let text = log(&[
            delete("e1", "2026-01-01T00:00:00Z", "a"),
            delete("e2", "2026-01-02T00:00:00Z", "b"),
            delete("e3", "2026-01-03T00:00:00Z", "c"),
        ]);
        let w = Window::new(Some(1_767_312_000), Some(1_767_312_000)); // 2026-01-02T00:00:00Z
        let s = scan("f", text.as_bytes(), &w);
        let ids: Vec<&str> = s.changes.iter().map(|i| i.event_id.as_str()).collect();
        assert_eq!(ids, ["e2"]);
        assert_eq!(s.records, 3);
    }

    #[test]
    fn bad_records_are_named_and_the_rest_read() {
        let broken = r#"{"eventSource":"ecr.amazonaws.com","eventName":"PutImage","x":tru}"#;
        let no_repo = r#"{"eventID":"n","eventSource":"ecr.amazonaws.com","eventName":"PutImage","awsRegion":"eu-west-1","recipientAccountId":"123456789012","requestParameters":{"imageTag":"a","imageDigest":"sha256:1111111111111111111111111111111111111111111111111111111111111111"}}"#;
        let text = format!(
            "{{\"Records\":[{broken},{no_repo},{},{}]}}",
            delete("ok", "2026-01-01T00:00:00Z", "a"),
            "{\"truncated\": \""
        );
        let s = scan("f.json", text.as_bytes(), &Window::default());
        assert_eq!(s.changes.len(), 1);
        let said: Vec<String> = s.problems.iter().map(|p| p.to_string()).collect();
        assert!(said[0].starts_with("f.json record 0: not JSON"), "{said:?}");
        assert!(said[1].starts_with("f.json record 1:") && said[1].contains("repositoryName"));
        assert!(
            said[2].starts_with("f.json: the file ends inside record 3"),
            "{said:?}"
        );
        let s = scan("g.gz", &[0x1f, 0x8b, 0, 1][..], &Window::default());
        assert!(s.problems[0].problem.contains("gzip"), "{:?}", s.problems);
    }
}
