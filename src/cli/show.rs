//! The read-only registry commands: `list`, `history` and `status`.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use serde_json::{json, Value};

use super::ops::Ops;
use super::registry::name;
use crate::ports::Console;
use crate::registry::{self, parse_item, Entry, RepoKey};
use crate::service::reconcile::read_standings;
use crate::text::{clean, short_digest};

/// Every registry item, read and validated.
async fn entries<B: Console>(
    ops: &Ops<B>,
) -> anyhow::Result<(Vec<Entry>, Vec<registry::InvalidEntry>)> {
    let items = ops.registry_items().await.context("reading the registry")?;
    let (mut good, bad) = registry::split_valid(
        items
            .iter()
            .filter(|i| !registry::is_rule_item(i))
            .map(parse_item)
            .collect(),
    );
    good.sort_by(|a, b| (&a.repo, &a.tag).cmp(&(&b.repo, &b.tag)));
    Ok((good, bad))
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

/// `status`: how every protected tag stands in ECR now. `Ok(false)` when any is not ok, so
/// the exit code works in cron and CI. ECR is read per repository, 100 tags a call, plus the
/// repository's archived images.
pub async fn status<B: Console>(
    ops: &Ops<B>,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let (good, bad) = entries(ops).await?;
    // Repositories holding retired guard tags are shown too, items or not.
    let noted: Vec<RepoKey> = ops
        .guard_tag_repositories()
        .await?
        .iter()
        .filter_map(|r| RepoKey::parse(r).ok())
        .collect();
    let mut by_repo: BTreeMap<&RepoKey, Vec<&Entry>> = BTreeMap::new();
    for r in &noted {
        by_repo.entry(r).or_default();
    }
    for e in &good {
        by_repo.entry(&e.repo).or_default().push(e);
    }
    let mut not_ok = bad.len();
    for (repo, es) in by_repo {
        if let Some(why) = ops.scope.outside(repo) {
            // Never written to by the guard: reported, not read.
            for e in es {
                not_ok += 1;
                if as_json {
                    let v = json!({"status": "out_of_scope", "why": why, "repository": repo.key(), "tag": e.tag, "pin": e.digest()});
                    writeln!(out, "{v}")?;
                } else {
                    writeln!(out, "{:<22} {repo}:{} ({why})", "outside scope", e.tag)?;
                }
            }
            continue;
        }
        // One read of the repository's protected tags and keep-alive tags together.
        let es: Vec<Entry> = es.into_iter().cloned().collect();
        let read = async {
            if es.is_empty() {
                Ok(Vec::new())
            } else {
                read_standings(&ops.backend, repo, &es, &ops.scope.keep_prefix).await
            }
        };
        let standings = match read.await {
            Ok(s) => s,
            Err(e) => {
                // One repository that cannot be read (a member account whose role cannot be
                // assumed, access denied) is reported per tag; the others are still checked.
                for t in &es {
                    not_ok += 1;
                    let why = crate::text::clean(&e.to_string(), 500);
                    if as_json {
                        let v = json!({"status": "not_checked", "why": why, "repository": repo.key(), "tag": t.tag, "pin": t.digest()});
                        writeln!(out, "{v}")?;
                    } else {
                        writeln!(out, "{:<22} {repo}:{} ({why})", "not checked", t.tag)?;
                    }
                }
                continue;
            }
        };
        let n = ops.tuning.call_concurrency;
        let distrusted = crate::service::bounded(
            n,
            es.iter().map(|e| async move {
                match &e.pin {
                    Some(pin) => ops.distrust(&e.repo, &e.tag, pin).await,
                    None => Ok(None),
                }
            }),
        )
        .await;
        // The guard's own tags no pin needs: retired where nothing can carry them (the
        // image stays), else let go of by the next reconcile. Not a problem: reported.
        let strays =
            crate::service::keep::stray_tags(&ops.backend, repo, &es, &ops.scope.keep_prefix)
                .await
                .context("listing the repository's images")?;
        for st in &strays {
            let retired = matches!(st.next, crate::guard::Leave::Retire { .. });
            let status = if retired {
                "retired_guard_tag"
            } else {
                "stray_guard_tag"
            };
            if as_json {
                let v = json!({"status": status, "repository": repo.key(), "tag": st.tag, "digest": st.digest, "next": st.next});
                writeln!(out, "{v}")?;
            } else {
                let label = if retired {
                    "retired guard tag"
                } else {
                    "stray guard tag"
                };
                writeln!(
                    out,
                    "{label:<22} {repo}:{} on {}",
                    st.tag,
                    short_digest(&st.digest)
                )?;
                let why = match &st.next {
                    crate::guard::Leave::Retire { why, .. } => {
                        format!("kept, so the guard deletes no image: {why}")
                    }
                    other => format!(
                        "the next reconcile lets go of it: {}",
                        other.describe(&st.tag)
                    ),
                };
                writeln!(out, "{:<22}   ({why})", "")?;
            }
        }
        for ((e, (s, _)), untrusted) in es.iter().zip(standings).zip(distrusted) {
            // The guard pushes nothing from a pin it cannot vouch for: not ok either.
            let untrusted = untrusted.context("checking the pins' seals")?;
            if !s.is_ok() || untrusted.is_some() {
                not_ok += 1;
            }
            if as_json {
                let mut v = serde_json::to_value(&s).unwrap_or(Value::Null);
                v["repository"] = json!(repo.key());
                v["tag"] = json!(e.tag);
                v["pin"] = json!(e.digest());
                if e.pin.is_some() {
                    v["trusted"] = json!(untrusted.is_none());
                }
                if let Some(why) = &untrusted {
                    v["untrusted"] = json!(why);
                }
                writeln!(out, "{v}")?;
            } else {
                let standing = match (s.is_ok(), &untrusted) {
                    (_, None) => s.describe(),
                    (true, Some(_)) => "untrusted pin".to_string(),
                    (false, Some(_)) => format!("{}; untrusted pin", s.describe()),
                };
                writeln!(out, "{standing:<22} {repo}:{}", e.tag)?;
                if let Some(why) = untrusted {
                    writeln!(out, "{:<22}   ({why})", "")?;
                }
            }
        }
    }
    for b in &bad {
        if as_json {
            writeln!(
                out,
                "{}",
                json!({"status": "invalid", "item": b.key, "problems": b.problems})
            )?;
        } else {
            writeln!(
                out,
                "{:<22} {}: {}",
                "invalid item",
                b.key,
                b.problems.join("; ")
            )?;
        }
    }
    if !as_json {
        writeln!(
            out,
            "{} protected tag(s): {} ok, {not_ok} not ok",
            good.len() + bad.len(),
            good.len() + bad.len() - not_ok
        )?;
    }
    Ok(not_ok == 0)
}
