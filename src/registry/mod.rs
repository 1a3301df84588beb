//! The registry of critical tags: the item a user writes into DynamoDB by hand, its
//! validation, and its plain-JSON form (the JSON Schema is `registry/item.schema.json`).
//!
//! Items are read as plain JSON (the DynamoDB adapter maps `S`/`N`/`L`/`SS`/`M` to JSON) so
//! the embedded store, the scenario file and DynamoDB all share this one parser.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::text::{is_digest, sha256_digest};

pub mod field;
pub mod history;
pub mod image;
mod item;
mod policy;
pub mod rule;
pub mod seal;

pub use item::{parse_item, pin_fields, release_fields, PIN_FIELDS};
pub use policy::{Protection, PROTECTION_FIELDS};
pub use rule::{is_internal_partition, is_rule_item, parse_rule, TagRule, RULE_PARTITION};

/// The JSON Schema of a registry item, shipped with the binary.
pub const SCHEMA: &str = include_str!("item.schema.json");

/// One ECR repository: registry account, region and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RepoKey {
    /// The registry's 12-digit account id.
    pub account: String,
    /// The region, e.g. `eu-west-1`.
    pub region: String,
    /// The repository name, e.g. `team/web`.
    pub name: String,
}

impl RepoKey {
    /// The registry partition key: `ACCOUNT/REGION/NAME`.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.account, self.region, self.name)
    }

    /// Reads `ACCOUNT/REGION/NAME`, checking each part.
    pub fn parse(s: &str) -> Result<RepoKey, String> {
        let mut parts = s.splitn(3, '/');
        let (Some(account), Some(region), Some(name)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "`{}` is not ACCOUNT/REGION/REPOSITORY",
                crate::text::clean(s, 300)
            ));
        };
        let key = RepoKey {
            account: account.into(),
            region: region.into(),
            name: name.into(),
        };
        key.check()?;
        Ok(key)
    }

    /// Checks each part against AWS's grammar: a 12-digit account, a region name
    /// (`eu-west-1`), a valid repository name.
    pub fn check(&self) -> Result<(), String> {
        if self.account.len() != 12 || !self.account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "account `{}` is not 12 digits",
                crate::text::clean(&self.account, 40)
            ));
        }
        if !is_region(&self.region) {
            return Err(format!(
                "region `{}` is not a region name",
                crate::text::clean(&self.region, 40)
            ));
        }
        if !is_repository_name(&self.name) {
            return Err(format!(
                "repository `{}` is not a valid ECR repository name",
                crate::text::clean(&self.name, 300)
            ));
        }
        Ok(())
    }
}

impl std::fmt::Display for RepoKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key())
    }
}

/// A manifest exactly as ECR stores it: the bytes are the image, their sha256 its digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The digest this manifest is said to have (checked with [`Manifest::verify`]).
    pub digest: String,
    /// `imageManifestMediaType`, where known.
    pub media_type: Option<String>,
    /// The manifest text, byte for byte.
    pub body: String,
}

impl Manifest {
    /// True when the sha256 of the bytes is the digest: only then may it be pushed.
    pub fn verify(&self) -> bool {
        sha256_digest(self.body.as_bytes()) == self.digest
    }

    /// The digests of the manifests an image index (or manifest list) refers to; empty for
    /// a single-platform manifest or text that is not JSON.
    pub fn child_digests(&self) -> Vec<String> {
        let Ok(v) = serde_json::from_str::<Value>(&self.body) else {
            return Vec::new();
        };
        v.get("manifests")
            .and_then(Value::as_array)
            .map(|ms| {
                ms.iter()
                    .filter_map(|m| m.get("digest").and_then(Value::as_str).map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// An image named by tag or by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// By tag.
    Tag(String),
    /// By digest.
    Digest(String),
}

/// What the guard pins a tag to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    /// The pinned digest.
    pub digest: String,
    /// The manifest captured when pinned, if any.
    pub manifest: Option<Manifest>,
    /// For an image index: every child manifest, to be put back before the index.
    pub children: Vec<Manifest>,
    /// Who pinned it (an ARN, or `ecr-tag-guard (...)`).
    pub pinned_by: Option<String>,
    /// When, RFC 3339.
    pub pinned_at: Option<String>,
    /// The guard's seal ([`seal`]): present on a pin the guard saw itself under the tag;
    /// checked with the deployment's key before anything is pushed from the pin.
    pub mac: Option<String>,
}

/// What to do when a protected tag is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDelete {
    /// Put it back on the pinned digest and page (the default).
    Restore,
    /// Page only.
    Alert,
}

/// What to do when a protected tag is moved to another digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMove {
    /// Move it back to the pin and page (the default).
    Revert,
    /// Keep the move and pin the new digest when the caller is allowed; revert otherwise.
    Follow,
    /// Page only.
    Alert,
}

/// How loudly to page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational.
    Low,
    /// Needs a look during working hours.
    Medium,
    /// Needs a look now (the default).
    High,
    /// Production is at risk.
    Critical,
}

impl Severity {
    /// The lowercase name used in items, pages and message attributes.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// A valid registry item: one protected tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Where the tag lives.
    pub repo: RepoKey,
    /// The protected tag.
    pub tag: String,
    /// The pin; `None` until the guard first sees the tag.
    pub pin: Option<Pin>,
    /// What a delete does.
    pub on_delete: OnDelete,
    /// What a move does.
    pub on_move: OnMove,
    /// ARN globs of principals that may move or delete the tag without a revert.
    pub allow: Vec<String>,
    /// Page severity.
    pub severity: Severity,
    /// Who to ask.
    pub owner: Option<String>,
    /// Free text for the person on call.
    pub notes: Option<String>,
    /// The rule that made this item, if a rule did.
    pub rule: Option<String>,
    /// When the guard, registering the item, found no such tag in ECR (it is pinned when the
    /// tag is pushed).
    pub not_found_at: Option<String>,
    /// When the guard released the pin after an allowed caller deleted the tag (it is pinned
    /// again when the tag is pushed).
    pub released_at: Option<String>,
    /// Whether the guard keeps its keep-alive tag on the pinned image (`keep_alive`, default
    /// true). Without it a delete by digest removes the whole image, and a restore depends on
    /// ECR still having its layers; some per-tag cleaners treat the extra tag as a reason to
    /// delete (README, "Keep-alive tags").
    pub keep_alive: bool,
}

impl Entry {
    /// Its settings.
    pub fn protection(&self) -> Protection {
        Protection {
            on_delete: self.on_delete,
            on_move: self.on_move,
            severity: self.severity,
            allow: self.allow.clone(),
            owner: self.owner.clone(),
            notes: self.notes.clone(),
        }
    }

    /// The same entry under other settings.
    pub fn with_protection(&self, p: Protection) -> Entry {
        Entry {
            on_delete: p.on_delete,
            on_move: p.on_move,
            severity: p.severity,
            allow: p.allow,
            owner: p.owner,
            notes: p.notes,
            ..self.clone()
        }
    }

    /// The pinned digest, if pinned.
    pub fn digest(&self) -> Option<&str> {
        self.pin.as_ref().map(|p| p.digest.as_str())
    }

    /// True when one of `arns` matches an `allow` glob.
    pub fn allows(&self, arns: &[&str]) -> bool {
        self.allow
            .iter()
            .any(|g| arns.iter().any(|a| crate::text::glob_match(g, a)))
    }
}

/// An item that is not a valid registry entry, with every problem found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvalidEntry {
    /// `repository` and `tag` as far as they could be read.
    pub key: String,
    /// What is wrong, one line each.
    pub problems: Vec<String>,
}

impl std::fmt::Display for InvalidEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "registry item {}: {}",
            self.key,
            self.problems.join("; ")
        )
    }
}

/// Splits items read and validated one by one into the valid ones and the problems of the
/// others: an invalid item never hides the rest, and is never dropped unreported.
pub fn split_valid<T>(items: Vec<Result<T, InvalidEntry>>) -> (Vec<T>, Vec<InvalidEntry>) {
    let mut valid = Vec::new();
    let mut invalid = Vec::new();
    for item in items {
        match item {
            Ok(v) => valid.push(v),
            Err(bad) => invalid.push(bad),
        }
    }
    (valid, invalid)
}

/// The keep-alive prefix used when none is configured.
pub const DEFAULT_KEEP_PREFIX: &str = "etg-keep-";

/// The guard-owned tag that keeps a pinned digest alive: `PREFIX` + the first 16 hex digits
/// of the digest. While it exists, deleting the protected tag only untags the image, so a
/// restore never depends on ECR keeping unreferenced layers. `None` for a malformed digest.
pub fn keep_tag(prefix: &str, digest: &str) -> Option<String> {
    is_digest(digest).then(|| format!("{prefix}{}", &digest[7..23]))
}

/// True when `prefix` makes valid keep-alive tags (a tag prefix of at most 100 characters).
pub fn is_keep_prefix(prefix: &str) -> bool {
    prefix.len() <= 100 && is_tag(&format!("{prefix}0"))
}

/// True for a valid ECR tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// True for a valid ECR repository name: 2–256 characters, lowercase components of
/// `[a-z0-9]` joined by `.`, `_`, `__`, `-` runs, separated by `/`.
pub fn is_repository_name(s: &str) -> bool {
    (2..=256).contains(&s.len())
        && s.split('/').all(|comp| {
            let b = comp.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_lowercase() | b[0].is_ascii_digit()
                && b[b.len() - 1].is_ascii_lowercase() | b[b.len() - 1].is_ascii_digit()
                && b.iter().all(|&c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
                })
        })
}

fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests;
