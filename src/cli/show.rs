//! The read-only registry commands: `list`, `history` and `status`.

use std::io::Write;

use anyhow::Context;
use serde_json::{json, Value};

use super::ops::Ops;
use super::registry::name;
use crate::ports::Console;
use crate::registry::{self, Entry};
use crate::service::status::TagStatus;
use crate::text::{clean, short_digest};

/// Every registry item, read and validated.
async fn entries<B: Console>(
    ops: &Ops<B>,
) -> anyhow::Result<(Vec<Entry>, Vec<registry::InvalidEntry>)> {
    crate::service::status::entries(&ops.backend)
        .await
        .context("reading the registry")
}

/// `list`: the protected tags, as a table or (`json`) one JSON object per line.
pub async fn list<B: Console>(
    ops: &Ops<B>,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let (good, bad) = entries(ops).await?;
    if as_json {
        for e in &good {
            writeln!(out, "{}", entry_json(e))?;
        }
        for b in &bad {
            writeln!(out, "{}", json!({"invalid": b.key, "problems": b.problems}))?;
        }
        return Ok(bad.is_empty());
    }
    let rows: Vec<[String; 7]> = good
        .iter()
        .map(|e| {
            [
                e.repo.key(),
                e.tag.clone(),
                match (e.digest(), &e.not_found_at) {
                    (Some(d), _) => short_digest(d).to_string(),
                    (None, Some(at)) => format!("(tag not in ECR at {})", clean(at, 40)),
                    (None, None) => "(not pinned)".to_string(),
                },
                name(&e.on_delete),
                name(&e.on_move),
                e.severity.as_str().to_string(),
                clean(e.owner.as_deref().unwrap_or("-"), 60),
            ]
        })
        .collect();
    table(
        out,
        [
            "REPOSITORY",
            "TAG",
            "PIN",
            "ON_DELETE",
            "ON_MOVE",
            "SEVERITY",
            "OWNER",
        ],
        &rows,
    )?;
    for b in &bad {
        writeln!(out, "INVALID {}: {}", b.key, b.problems.join("; "))?;
    }
    writeln!(
        out,
        "{} protected tag(s), {} invalid item(s)",
        good.len(),
        bad.len()
    )?;
    // The ledger's note, no ECR read: `status` shows the tags themselves.
    let noted = ops.guard_tag_repositories().await?;
    if !noted.is_empty() {
        writeln!(
            out,
            "retired guard tags (kept so that no image is deleted; `status` shows them) in: {}",
            noted.join(", ")
        )?;
    }
    Ok(bad.is_empty())
}

fn entry_json(e: &Entry) -> Value {
    json!({
        "repository": e.repo.key(), "tag": e.tag, "digest": e.digest(),
        "manifest_stored": e.pin.as_ref().is_some_and(|p| p.manifest.is_some()),
        "on_delete": e.on_delete, "on_move": e.on_move, "allow": e.allow,
        "severity": e.severity, "owner": e.owner, "notes": e.notes,
        "pinned_by": e.pin.as_ref().and_then(|p| p.pinned_by.clone()),
        "pinned_at": e.pin.as_ref().and_then(|p| p.pinned_at.clone()),
        "rule": e.rule, "not_found_at": e.not_found_at,
    })
}

fn table<const N: usize>(
    out: &mut impl Write,
    head: [&str; N],
    rows: &[[String; N]],
) -> std::io::Result<()> {
    let mut width = head.map(str::len);
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        cells
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    writeln!(out, "{}", line(head.to_vec()))?;
    for r in rows {
        writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// `history REPO:TAG`: every pin, move, restore, failure and page for the tag, newest first.
pub async fn history<B: Console>(
    ops: &Ops<B>,
    target: &str,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let (repo, tag) = ops.target(target).await?;
    let records = ops
        .partition(&format!("history#{}:{tag}", repo.key()), true)
        .await?;
    if records.is_empty() {
        writeln!(out, "no history for {repo}:{tag}")?;
        return Ok(true);
    }
    let s = |v: &Value, k: &str| clean(v.get(k).and_then(Value::as_str).unwrap_or("-"), 300);
    let d = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map_or("-".to_string(), |x| short_digest(x).to_string())
    };
    for r in &records {
        writeln!(
            out,
            "{}  {} -> {}  {} -> {}  by {}  ({}; event {})",
            s(r, "at"),
            s(r, "action"),
            s(r, "outcome"),
            d(r, "old_digest"),
            d(r, "new_digest"),
            s(r, "who"),
            s(r, "detail"),
            s(r, "event_id"),
        )?;
    }
    Ok(true)
}

/// `status`: how every protected tag stands in ECR now ([`crate::service::status`]), as
/// text or (`json`) one JSON object per line. `Ok(false)` when any is not ok, so the exit
/// code works in cron and CI.
pub async fn status<B: Console>(
    ops: &Ops<B>,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let found = crate::service::status::status(&ops.backend, &ops.scope, &ops.tuning)
        .await
        .context("reading the registry and ECR")?;
    for t in &found.tags {
        if as_json {
            writeln!(out, "{}", status_json(t))?;
        } else {
            status_text(t, out)?;
        }
    }
    let not_ok = found.problems();
    if !as_json {
        writeln!(
            out,
            "{} protected tag(s): {} ok, {not_ok} not ok",
            found.protected,
            found.protected - not_ok
        )?;
    }
    Ok(not_ok == 0)
}

/// One standing as a JSON object.
fn status_json(t: &TagStatus) -> Value {
    let tagged = |status: &str, e: &Entry, why: &str| json!({"status": status, "why": why, "repository": e.repo.key(), "tag": e.tag, "pin": e.digest()});
    match t {
        TagStatus::OutOfScope { entry, why } => tagged("out_of_scope", entry, why),
        TagStatus::NotChecked { entry, why } => tagged("not_checked", entry, why),
        TagStatus::GuardTag { repo, tag } => {
            let status = if TagStatus::is_retired(tag) {
                "retired_guard_tag"
            } else {
                "stray_guard_tag"
            };
            json!({"status": status, "repository": repo.key(), "tag": tag.tag, "digest": tag.digest, "next": tag.next})
        }
        TagStatus::Checked {
            entry,
            standing,
            untrusted,
        } => {
            let mut v = serde_json::to_value(standing).unwrap_or(Value::Null);
            v["repository"] = json!(entry.repo.key());
            v["tag"] = json!(entry.tag);
            v["pin"] = json!(entry.digest());
            if entry.pin.is_some() {
                v["trusted"] = json!(untrusted.is_none());
            }
            if let Some(why) = untrusted {
                v["untrusted"] = json!(why);
            }
            v
        }
        TagStatus::Invalid(b) => {
            json!({"status": "invalid", "item": b.key, "problems": b.problems})
        }
    }
}

/// One standing as the text lines a person reads.
fn status_text(t: &TagStatus, out: &mut impl Write) -> std::io::Result<()> {
    match t {
        TagStatus::OutOfScope { entry, why } => {
            writeln!(
                out,
                "{:<22} {}:{} ({why})",
                "outside scope", entry.repo, entry.tag
            )
        }
        TagStatus::NotChecked { entry, why } => {
            writeln!(
                out,
                "{:<22} {}:{} ({why})",
                "not checked", entry.repo, entry.tag
            )
        }
        TagStatus::GuardTag { repo, tag } => {
            let (label, why) = match &tag.next {
                crate::guard::Leave::Retire { why, .. } => (
                    "retired guard tag",
                    format!("kept, so the guard deletes no image: {why}"),
                ),
                other => (
                    "stray guard tag",
                    format!(
                        "the next reconcile lets go of it: {}",
                        other.describe(&tag.tag)
                    ),
                ),
            };
            writeln!(
                out,
                "{label:<22} {repo}:{} on {}",
                tag.tag,
                short_digest(&tag.digest)
            )?;
            writeln!(out, "{:<22}   ({why})", "")
        }
        TagStatus::Checked {
            entry,
            standing,
            untrusted,
        } => {
            let shown = match (standing.is_ok(), untrusted) {
                (_, None) => standing.describe(),
                (true, Some(_)) => "untrusted pin".to_string(),
                (false, Some(_)) => format!("{}; untrusted pin", standing.describe()),
            };
            writeln!(out, "{shown:<22} {}:{}", entry.repo, entry.tag)?;
            match untrusted {
                Some(why) => writeln!(out, "{:<22}   ({why})", ""),
                None => Ok(()),
            }
        }
        TagStatus::Invalid(b) => writeln!(
            out,
            "{:<22} {}: {}",
            "invalid item",
            b.key,
            b.problems.join("; ")
        ),
    }
}
