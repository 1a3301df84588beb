//! The registry of critical tags: the item a user writes into DynamoDB by hand, its
//! validation, and its plain-JSON form (the JSON Schema is `registry/item.schema.json`).
//!
//! Items are read as plain JSON (the DynamoDB adapter maps `S`/`N`/`L`/`SS`/`M` to JSON) so
//! the embedded store, the scenario file and DynamoDB all share this one parser.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::text::{is_digest, sha256_digest};

pub mod image;
pub mod rule;
pub use rule::{is_rule_item, parse_rule, TagRule, RULE_PARTITION};

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

    fn check(&self) -> Result<(), String> {
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

/// The written values of `on_delete`.
const ON_DELETE_VALUES: &[(&str, OnDelete)] =
    &[("restore", OnDelete::Restore), ("alert", OnDelete::Alert)];
/// The written values of `on_move`.
const ON_MOVE_VALUES: &[(&str, OnMove)] = &[
    ("revert", OnMove::Revert),
    ("follow", OnMove::Follow),
    ("alert", OnMove::Alert),
];
/// The written values of `severity`, most urgent first.
const SEVERITY_VALUES: &[(&str, Severity)] = &[
    ("critical", Severity::Critical),
    ("high", Severity::High),
    ("medium", Severity::Medium),
    ("low", Severity::Low),
];

/// The value `given` names among `values` (absent: `default`), or `default` with a problem
/// naming the field and what it may be.
fn one_of<T: Copy>(
    name: &str,
    given: Option<String>,
    values: &[(&str, T)],
    default: T,
    problems: &mut Vec<String>,
) -> T {
    let Some(given) = given else { return default };
    if let Some((_, v)) = values.iter().find(|(n, _)| *n == given) {
        return *v;
    }
    let names: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
    let (last, rest) = names.split_last().unwrap_or((&"", &[]));
    problems.push(format!(
        "{name} `{}` is not {} or {last}",
        crate::text::clean(&given, 40),
        rest.join(", ")
    ));
    default
}

/// How `v` is written.
fn name_of<T: PartialEq>(values: &[(&'static str, T)], v: T) -> &'static str {
    values
        .iter()
        .find(|(_, x)| *x == v)
        .map_or("?", |(n, _)| *n)
}

/// How a protected tag is guarded: the settings tag items and rule items share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protection {
    /// What a delete does.
    pub on_delete: OnDelete,
    /// What a move does.
    pub on_move: OnMove,
    /// Page severity.
    pub severity: Severity,
    /// ARN globs of principals allowed to move or delete.
    pub allow: Vec<String>,
    /// Who owns it.
    pub owner: Option<String>,
    /// Text for the person on call.
    pub notes: Option<String>,
}

/// The fields [`Protection`] reads.
pub const PROTECTION_FIELDS: &[&str] = &[
    field::ON_DELETE,
    field::ON_MOVE,
    field::ALLOW,
    field::SEVERITY,
    field::OWNER,
    field::NOTES,
];

impl Protection {
    /// Reads the settings fields of an item (defaults where absent), adding a problem for
    /// each bad value.
    pub fn parse(obj: &Map<String, Value>, problems: &mut Vec<String>) -> Protection {
        let s = |name: &str, problems: &mut Vec<String>| -> Option<String> {
            match obj.get(name) {
                None | Some(Value::Null) => None,
                Some(Value::String(v)) => Some(v.clone()),
                Some(_) => {
                    problems.push(format!("`{name}` must be a string"));
                    None
                }
            }
        };
        let on_delete = one_of(
            field::ON_DELETE,
            s(field::ON_DELETE, problems),
            ON_DELETE_VALUES,
            OnDelete::Restore,
            problems,
        );
        let on_move = one_of(
            field::ON_MOVE,
            s(field::ON_MOVE, problems),
            ON_MOVE_VALUES,
            OnMove::Revert,
            problems,
        );
        let severity = one_of(
            field::SEVERITY,
            s(field::SEVERITY, problems),
            SEVERITY_VALUES,
            Severity::High,
            problems,
        );
        let allow = match obj.get(field::ALLOW) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| match v.as_str() {
                    Some(g) if !g.is_empty() => Some(g.to_string()),
                    _ => {
                        problems.push("`allow` must list non-empty ARN glob strings".into());
                        None
                    }
                })
                .collect(),
            Some(_) => {
                problems.push("`allow` must be a list of ARN globs".into());
                Vec::new()
            }
        };
        Protection {
            on_delete,
            on_move,
            severity,
            allow,
            owner: s(field::OWNER, problems),
            notes: s(field::NOTES, problems),
        }
    }

    /// The settings as item fields (defaults included, so a reader sees them).
    pub fn to_fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(
            field::ON_DELETE.into(),
            name_of(ON_DELETE_VALUES, self.on_delete).into(),
        );
        m.insert(
            field::ON_MOVE.into(),
            name_of(ON_MOVE_VALUES, self.on_move).into(),
        );
        m.insert(field::SEVERITY.into(), self.severity.as_str().into());
        if !self.allow.is_empty() {
            m.insert(field::ALLOW.into(), self.allow.clone().into());
        }
        if let Some(o) = &self.owner {
            m.insert(field::OWNER.into(), o.clone().into());
        }
        if let Some(n) = &self.notes {
            m.insert(field::NOTES.into(), n.clone().into());
        }
        m
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

/// Field names, as written in DynamoDB and in the scenario file.
pub mod field {
    /// Partition key: `ACCOUNT/REGION/REPOSITORY`.
    pub const REPOSITORY: &str = "repository";
    /// Sort key: the tag.
    pub const TAG: &str = "tag";
    /// Pinned digest.
    pub const DIGEST: &str = "digest";
    /// Manifest text.
    pub const MANIFEST: &str = "manifest";
    /// Manifest media type.
    pub const MEDIA_TYPE: &str = "media_type";
    /// Child manifests of an index.
    pub const CHILDREN: &str = "children";
    /// Delete mode.
    pub const ON_DELETE: &str = "on_delete";
    /// Move mode.
    pub const ON_MOVE: &str = "on_move";
    /// Allowed principals.
    pub const ALLOW: &str = "allow";
    /// Severity.
    pub const SEVERITY: &str = "severity";
    /// Owner.
    pub const OWNER: &str = "owner";
    /// Notes.
    pub const NOTES: &str = "notes";
    /// Who pinned.
    pub const PINNED_BY: &str = "pinned_by";
    /// When pinned.
    pub const PINNED_AT: &str = "pinned_at";
    /// On a tag item a rule made: the rule's name.
    pub const RULE: &str = "rule";
    /// Written by the guard when a registered tag was not in ECR: when it looked (RFC 3339).
    pub const NOT_FOUND_AT: &str = "not_found_at";
    /// Written by the guard when an allowed caller deleted the tag and the pin was released
    /// (RFC 3339); the tag is pinned again when it is pushed.
    pub const RELEASED_AT: &str = "released_at";
}

/// The fields that make up a pin: written together, removed together.
pub const PIN_FIELDS: &[&str] = &[
    field::DIGEST,
    field::MANIFEST,
    field::MEDIA_TYPE,
    field::CHILDREN,
    field::PINNED_BY,
    field::PINNED_AT,
    field::NOT_FOUND_AT,
    field::RELEASED_AT,
];

const KNOWN: &[&str] = &[
    field::REPOSITORY,
    field::TAG,
    field::DIGEST,
    field::MANIFEST,
    field::MEDIA_TYPE,
    field::CHILDREN,
    field::ON_DELETE,
    field::ON_MOVE,
    field::ALLOW,
    field::SEVERITY,
    field::OWNER,
    field::NOTES,
    field::PINNED_BY,
    field::PINNED_AT,
    field::RULE,
    field::NOT_FOUND_AT,
    field::RELEASED_AT,
];

/// Reads and validates one item. Every problem is listed, not only the first.
pub fn parse_item(item: &Value) -> Result<Entry, InvalidEntry> {
    let Some(obj) = item.as_object() else {
        return Err(InvalidEntry {
            key: "(not an object)".into(),
            problems: vec!["an item must be a JSON object".into()],
        });
    };
    let mut problems = Vec::new();
    let s = |name: &str, problems: &mut Vec<String>| -> Option<String> {
        match obj.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(v)) => Some(v.clone()),
            Some(_) => {
                problems.push(format!("`{name}` must be a string"));
                None
            }
        }
    };
    let repo_text = s(field::REPOSITORY, &mut problems);
    let tag = s(field::TAG, &mut problems);
    let key = format!(
        "{}:{}",
        crate::text::clean(repo_text.as_deref().unwrap_or("?"), 300),
        crate::text::clean(tag.as_deref().unwrap_or("?"), 130)
    );
    let repo = match &repo_text {
        None => {
            problems.push("`repository` (ACCOUNT/REGION/REPOSITORY) is missing".into());
            None
        }
        Some(r) => RepoKey::parse(r).map_err(|e| problems.push(e)).ok(),
    };
    match &tag {
        None => problems.push("`tag` is missing".into()),
        Some(t) if !is_tag(t) => problems.push(format!(
            "tag `{}` is not a valid ECR tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})",
            crate::text::clean(t, 130)
        )),
        Some(_) => {}
    }
    for k in obj.keys() {
        if !KNOWN.contains(&k.as_str()) {
            problems.push(format!("unknown field `{}`", crate::text::clean(k, 60)));
        }
    }
    let digest = s(field::DIGEST, &mut problems);
    if let Some(d) = &digest {
        if !is_digest(d) {
            problems.push(format!(
                "digest `{}` is not sha256: and 64 lowercase hex digits",
                crate::text::clean(d, 80)
            ));
        }
    }
    let manifest_body = s(field::MANIFEST, &mut problems);
    let media_type = s(field::MEDIA_TYPE, &mut problems);
    if manifest_body.is_some() && digest.is_none() {
        problems.push("`manifest` is set but `digest` is not".into());
    }
    let children = parse_children(obj.get(field::CHILDREN), &mut problems);
    let settings = Protection::parse(obj, &mut problems);
    let rule = s(field::RULE, &mut problems);
    let not_found_at = s(field::NOT_FOUND_AT, &mut problems);
    let released_at = s(field::RELEASED_AT, &mut problems);
    let pinned_by = s(field::PINNED_BY, &mut problems);
    let pinned_at = s(field::PINNED_AT, &mut problems);
    let (Some(repo), Some(tag), true) = (repo, tag, problems.is_empty()) else {
        problems.dedup();
        return Err(InvalidEntry { key, problems });
    };
    let pin = digest.map(|digest| Pin {
        manifest: manifest_body.map(|body| Manifest {
            digest: digest.clone(),
            media_type,
            body,
        }),
        digest,
        children,
        pinned_by,
        pinned_at,
    });
    Ok(Entry {
        repo,
        tag,
        pin,
        on_delete: settings.on_delete,
        on_move: settings.on_move,
        allow: settings.allow,
        severity: settings.severity,
        owner: settings.owner,
        notes: settings.notes,
        rule,
        not_found_at,
        released_at,
    })
}

fn parse_children(v: Option<&Value>, problems: &mut Vec<String>) -> Vec<Manifest> {
    let items = match v {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => {
            problems.push("`children` must be a list".into());
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, c) in items.iter().enumerate() {
        let get = |k: &str| c.get(k).and_then(Value::as_str).map(String::from);
        match (get("digest"), get("manifest")) {
            (Some(digest), Some(body)) if is_digest(&digest) => out.push(Manifest {
                digest,
                media_type: get("media_type"),
                body,
            }),
            _ => problems.push(format!(
                "children[{i}] needs `digest` (sha256:…) and `manifest` strings"
            )),
        }
    }
    out
}

/// The pin fields of an item, as written back by the guard when it pins or follows.
pub fn pin_fields(pin: &Pin) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(field::DIGEST.into(), json!(pin.digest));
    if let Some(man) = &pin.manifest {
        m.insert(field::MANIFEST.into(), json!(man.body));
        if let Some(mt) = &man.media_type {
            m.insert(field::MEDIA_TYPE.into(), json!(mt));
        }
    }
    if !pin.children.is_empty() {
        let children: Vec<Value> = pin
            .children
            .iter()
            .map(|c| {
                let mut o = json!({"digest": c.digest, "manifest": c.body});
                if let Some(mt) = &c.media_type {
                    o["media_type"] = json!(mt);
                }
                o
            })
            .collect();
        m.insert(field::CHILDREN.into(), Value::Array(children));
    }
    if let Some(by) = &pin.pinned_by {
        m.insert(field::PINNED_BY.into(), json!(by));
    }
    if let Some(at) = &pin.pinned_at {
        m.insert(field::PINNED_AT.into(), json!(at));
    }
    m
}

#[cfg(test)]
mod tests;
