//! Rule items: "protect the newest N images whose tags match this regex, per group", written
//! by hand like tag items, in the partition [`RULE_PARTITION`] with the rule's name as `tag`.
//! The guard materialises each rule into ordinary tag items that carry `rule` (its name), so a
//! protected image that is deleted or expired is restored like any pin.

use regex::Regex;
use serde_json::{Map, Value};

use super::{field, InvalidEntry, OnDelete, OnMove, Protection, RepoKey, Severity};
use crate::text::{clean, glob_match};

/// The partition (`repository`) that holds every rule item.
pub const RULE_PARTITION: &str = "rule#";

/// The most images a rule may keep per group.
pub const MAX_KEEP: u64 = 1000;

/// Field names of rule items (besides the shared settings and the key).
pub mod rule_field {
    /// A glob over `ACCOUNT/REGION/NAME` (`*` any run of characters, also `/`).
    pub const REPOSITORIES: &str = "repositories";
    /// The tag regex (RE2 syntax, as the Rust `regex` crate reads it).
    pub const PATTERN: &str = "pattern";
    /// A named group of `pattern`: images are grouped by what it captures.
    pub const GROUP_BY: &str = "group_by";
    /// How many of the newest images to protect per group.
    pub const KEEP: &str = "keep";
}

/// One rule, checked.
#[derive(Clone, Debug)]
pub struct TagRule {
    /// Its name (the item's `tag`).
    pub name: String,
    /// The repositories it covers: a glob over `ACCOUNT/REGION/NAME`.
    pub repositories: String,
    /// The tag regex.
    pub pattern: Regex,
    /// The named group to group by.
    pub group_by: Option<String>,
    /// The newest N images per group are protected.
    pub keep: usize,
    /// What a delete, a move and a page of a protected tag do, as on tag items.
    pub settings: Protection,
}

impl PartialEq for TagRule {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.repositories == other.repositories
            && self.pattern.as_str() == other.pattern.as_str()
            && self.group_by == other.group_by
            && self.keep == other.keep
            && self.settings == other.settings
    }
}

impl TagRule {
    /// True when the rule covers the repository.
    pub fn covers(&self, repo: &RepoKey) -> bool {
        glob_match(&self.repositories, &repo.key())
    }

    /// The group of a matching tag (`""` without `group_by`); `None` when the tag does not
    /// match.
    pub fn group_of(&self, tag: &str) -> Option<String> {
        let caps = self.pattern.captures(tag)?;
        Some(match &self.group_by {
            None => String::new(),
            Some(g) => caps
                .name(g)
                .map(|m| m.as_str().to_string())
                .unwrap_or_default(),
        })
    }

    /// The rule as a plain-JSON item.
    pub fn to_item(&self) -> Value {
        let mut m = Map::new();
        m.insert(field::REPOSITORY.into(), RULE_PARTITION.into());
        m.insert(field::TAG.into(), self.name.clone().into());
        m.insert(
            rule_field::REPOSITORIES.into(),
            self.repositories.clone().into(),
        );
        m.insert(rule_field::PATTERN.into(), self.pattern.as_str().into());
        if let Some(g) = &self.group_by {
            m.insert(rule_field::GROUP_BY.into(), g.clone().into());
        }
        m.insert(rule_field::KEEP.into(), (self.keep as u64).into());
        m.extend(self.settings.to_fields());
        Value::Object(m)
    }
}

/// True for the table's partitions that hold no tag items: rules, history, the ledger.
pub fn is_internal_partition(partition: &str) -> bool {
    partition == RULE_PARTITION
        || partition.starts_with("history#")
        || partition.starts_with("ledger#")
}

/// True for a pattern rule's item (in [`RULE_PARTITION`]).
pub fn is_rule_item(item: &Value) -> bool {
    item.get(field::REPOSITORY).and_then(Value::as_str) == Some(RULE_PARTITION)
}

/// A regex no larger than this once compiled: a rule is read on every event.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles a rule's tag regex, naming the problem.
pub fn compile_pattern(pattern: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            // The regex error draws a caret under the pattern; its last line says what.
            let text = e.to_string();
            let what = text
                .lines()
                .last()
                .unwrap_or("")
                .trim_start_matches("error: ");
            format!(
                "pattern `{}` is not a valid regex: {}",
                clean(pattern, 200),
                clean(what, 300)
            )
        })
}

/// Reads and checks a rule item; every problem is named.
pub fn parse_rule(item: &Value) -> Result<TagRule, InvalidEntry> {
    let obj = item.as_object();
    let get = |k: &str| obj.and_then(|o| o.get(k));
    if obj.is_none() {
        return Err(InvalidEntry {
            key: RULE_PARTITION.into(),
            problems: vec!["a rule item must be a JSON object".into()],
        });
    }
    let name = get(field::TAG).and_then(Value::as_str).unwrap_or("?");
    let key = format!("{RULE_PARTITION}:{}", clean(name, 130));
    let mut problems = Vec::new();
    if !super::is_tag(name) {
        problems.push("`tag` (the rule's name) must be 1-128 of A-Z a-z 0-9 _ . -".into());
    }
    let text = |k: &str, problems: &mut Vec<String>| match get(k) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            problems.push(format!("`{k}` must be a string"));
            None
        }
    };
    let repositories = text(rule_field::REPOSITORIES, &mut problems).unwrap_or_default();
    if repositories.matches('/').count() < 2 {
        problems.push(format!(
            "`repositories` must be a glob over ACCOUNT/REGION/NAME, e.g. 123456789012/eu-west-1/team-* (found `{}`)",
            clean(&repositories, 300)
        ));
    }
    let pattern = match text(rule_field::PATTERN, &mut problems) {
        None => {
            problems.push("`pattern` (the tag regex) is missing".into());
            None
        }
        Some(p) => compile_pattern(&p).map_err(|e| problems.push(e)).ok(),
    };
    let group_by = text(rule_field::GROUP_BY, &mut problems);
    if let (Some(g), Some(re)) = (&group_by, &pattern) {
        if !re.capture_names().flatten().any(|n| n == g) {
            problems.push(format!(
                "group_by `{}` is not a named group of the pattern (write it as (?P<{0}>...))",
                clean(g, 60)
            ));
        }
    }
    let keep = match get(rule_field::KEEP).and_then(Value::as_u64) {
        Some(n) if (1..=MAX_KEEP).contains(&n) => n as usize,
        _ => {
            problems.push(format!(
                "`keep` must be a whole number from 1 to {MAX_KEEP}"
            ));
            1
        }
    };
    let known = [
        field::REPOSITORY,
        field::TAG,
        rule_field::REPOSITORIES,
        rule_field::PATTERN,
        rule_field::GROUP_BY,
        rule_field::KEEP,
    ];
    let empty = Map::new();
    let obj = obj.unwrap_or(&empty);
    for k in obj.keys() {
        if !known.contains(&k.as_str()) && !super::PROTECTION_FIELDS.contains(&k.as_str()) {
            problems.push(format!("unknown field `{}`", clean(k, 60)));
        }
    }
    let settings = Protection::parse(obj, &mut problems);
    match (pattern, problems.is_empty()) {
        (Some(pattern), true) => Ok(TagRule {
            name: name.to_string(),
            repositories,
            pattern,
            group_by,
            keep,
            settings,
        }),
        _ => Err(InvalidEntry { key, problems }),
    }
}

/// The stricter of two settings, for a tag that a tag item (`a`) and a rule (`b`) both
/// protect: restore over alert, revert over follow over alert, the higher severity. `allow`
/// is the item's own, as written: a rule never takes a caller off it nor adds one (a deploy
/// role an item allows keeps its moves followed when a broad rule also covers the tag).
pub fn stricter(a: &Protection, b: &Protection) -> Protection {
    let move_rank = |m: OnMove| match m {
        OnMove::Revert => 2,
        OnMove::Follow => 1,
        OnMove::Alert => 0,
    };
    Protection {
        on_delete: if a.on_delete == OnDelete::Restore || b.on_delete == OnDelete::Restore {
            OnDelete::Restore
        } else {
            OnDelete::Alert
        },
        on_move: if move_rank(a.on_move) >= move_rank(b.on_move) {
            a.on_move
        } else {
            b.on_move
        },
        severity: Severity::max(a.severity, b.severity),
        // An item's own `allow` is never narrowed (nor widened) by a rule covering it.
        allow: a.allow.clone(),
        owner: a.owner.clone().or_else(|| b.owner.clone()),
        notes: a.notes.clone().or_else(|| b.notes.clone()),
    }
}
