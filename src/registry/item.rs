//! Reading and writing a tag item: its fields, its validation (every problem named), and the
//! pin fields the guard writes back.

use serde_json::{json, Map, Value};

use super::policy::{string_field, Protection};
use super::{field, is_tag, Entry, InvalidEntry, Manifest, Pin, RepoKey};
use crate::text::is_digest;

/// The fields that make up a pin: written together, removed together.
pub const PIN_FIELDS: &[&str] = &[
    field::DIGEST,
    field::MANIFEST,
    field::MEDIA_TYPE,
    field::CHILDREN,
    field::PINNED_BY,
    field::PINNED_AT,
    field::PIN_MAC,
    field::NOT_FOUND_AT,
    field::RELEASED_AT,
];

pub(super) const KNOWN: &[&str] = &[
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
    field::PIN_MAC,
    field::KEEP_ALIVE,
    field::RULE,
    field::NOT_FOUND_AT,
    field::RELEASED_AT,
];

/// An item's key as a reader sees it (`REPOSITORY:TAG`, `?` for what is missing), its
/// repository and tag when they are valid, and every problem with them and with its fields'
/// names.
fn item_key(
    obj: &serde_json::Map<String, Value>,
    problems: &mut Vec<String>,
) -> (String, Option<RepoKey>, Option<String>) {
    let repo_text = string_field(obj, field::REPOSITORY, problems);
    let tag = string_field(obj, field::TAG, problems);
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
    (key, repo, tag)
}

/// Reads and validates one item. Every problem is listed, not only the first.
pub fn parse_item(item: &Value) -> Result<Entry, InvalidEntry> {
    let Some(obj) = item.as_object() else {
        return Err(InvalidEntry {
            key: "(not an object)".into(),
            problems: vec!["an item must be a JSON object".into()],
        });
    };
    let mut problems = Vec::new();
    let s = |name: &str, problems: &mut Vec<String>| string_field(obj, name, problems);
    let (key, repo, tag) = item_key(obj, &mut problems);
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
    // A seal that is not even text is no seal: the pin is simply not vouched for.
    let mac = obj
        .get(field::PIN_MAC)
        .and_then(Value::as_str)
        .map(String::from);
    let keep_alive = match obj.get(field::KEEP_ALIVE) {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            problems.push("`keep_alive` must be true or false".into());
            true
        }
    };
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
        mac,
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
        keep_alive,
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
    if let Some(mac) = &pin.mac {
        m.insert(field::PIN_MAC.into(), json!(mac));
    }
    m
}

/// The pin fields an allowed caller's delete leaves: none but `released_at` (RFC 3339), which
/// keeps registration from pinning the tag again until it is pushed.
pub fn release_fields(at: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(field::RELEASED_AT.into(), json!(at));
    m
}
