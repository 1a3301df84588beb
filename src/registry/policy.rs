//! How a protected tag is guarded: `on_delete`, `on_move`, `severity`, `allow`, `owner` and
//! `notes`, read with every bad value named, and written back with defaults shown.

use serde_json::{Map, Value};

use super::{field, OnDelete, OnMove, Severity};

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

/// An optional string field of an item; a value of another type adds a problem.
pub(super) fn string_field(
    obj: &Map<String, Value>,
    name: &str,
    problems: &mut Vec<String>,
) -> Option<String> {
    match obj.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(v)) => Some(v.clone()),
        Some(_) => {
            problems.push(format!("`{name}` must be a string"));
            None
        }
    }
}

impl Protection {
    /// Reads the settings fields of an item (defaults where absent), adding a problem for
    /// each bad value.
    pub fn parse(obj: &Map<String, Value>, problems: &mut Vec<String>) -> Protection {
        let s = |name: &str, problems: &mut Vec<String>| string_field(obj, name, problems);
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
