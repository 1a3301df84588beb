//! What an audit is told (its options) and what it answers (its summary, its errors, each
//! saying whether a retry may help), and how it asks CloudTrail's `LookupEvents`.

use std::time::Duration;

use crate::audit::Window;
use crate::error::CallError;

/// How an audit runs.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// Only changes in this window (and only files and objects that can hold them).
    pub window: Window,
    /// Report unprotected tags too (always so without a registry).
    pub all_tags: bool,
    /// Files read at once (the cores).
    pub workers: usize,
    /// S3 objects read at once.
    pub s3_reads: usize,
    /// The time between two `LookupEvents` calls (CloudTrail allows two a second per account
    /// and region).
    pub lookup_spacing: Duration,
    /// The guard's role: a push it made is its repair, not a change.
    pub guard_role: Option<String>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            window: Window::default(),
            all_tags: false,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            s3_reads: 8,
            lookup_spacing: LOOKUP_SPACING,
            guard_role: None,
        }
    }
}

/// What an audit found, for its closing summary and exit code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditSummary {
    /// Files, objects and regions read.
    pub sources: u64,
    /// Files and objects not read: their names say they cannot hold the window.
    pub skipped: u64,
    /// Records read.
    pub records: u64,
    /// ECR changes (records that changed tags) in the window, each once (two reports of one
    /// change are one), the guard's own pushes aside.
    pub changes: u64,
    /// The guard's own pushes: its repairs, as CloudTrail or ECR reported them.
    pub guard_repairs: u64,
    /// Lines printed.
    pub lines: u64,
    /// Changes of protected tags (one per tag).
    pub protected: u64,
    /// Changes of protected tags the guard did not put right.
    pub not_repaired: u64,
    /// Malformed files and records, unreadable objects.
    pub problems: u64,
}

impl AuditSummary {
    /// The exit code: 3 when some source or record could not be read (the report may lack
    /// what it held), else 1 when a protected change was not repaired, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.problems > 0 {
            3
        } else if self.not_repaired > 0 {
            1
        } else {
            0
        }
    }
}

impl std::fmt::Display for AuditSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |count: u64, one: &str| {
            let s = if count == 1 { "" } else { "s" };
            format!("{count} {one}{s}")
        };
        write!(
            f,
            "{} read ({} skipped by date), {} read, {} ({}), {}, {}, {} not repaired by the guard, {}",
            n(self.sources, "source"),
            self.skipped,
            n(self.records, "record"),
            n(self.changes, "ECR change"),
            n(self.lines, "line"),
            n(self.guard_repairs, "guard repair"),
            n(self.protected, "protected change"),
            self.not_repaired,
            n(self.problems, "problem")
        )
    }
}

/// Why an audit stopped.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// An AWS call failed (listing a bucket, a lookup after the SDK's retries, the registry).
    #[error("{0}")]
    Call(#[from] CallError),
    /// Writing the report failed.
    #[error("writing the report: {0}")]
    Write(#[from] std::io::Error),
}

impl AuditError {
    /// Whether running it again may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            AuditError::Call(e) => e.retryable,
            AuditError::Write(_) => false,
        }
    }
}

/// The time between two `LookupEvents` calls by default: CloudTrail allows two a second per
/// account and region.
pub const LOOKUP_SPACING: Duration = Duration::from_millis(550);

/// The event names `LookupEvents` is asked for: every record that can change a tag.
pub const LOOKUP_NAMES: [&str; 4] = [
    "PutImage",
    "BatchDeleteImage",
    "DeleteRepository",
    "PolicyExecutionEvent",
];
