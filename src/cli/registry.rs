//! The registry commands, against AWS (or the endpoint `AWS_ENDPOINT_URL` names) or, with
//! `--state FILE`, on the embedded world: `registry init`, `protect`, `unprotect`, `list`,
//! `history` and `status`.

pub use super::ops::{Backend, Ops};

use std::io::Write;

use anyhow::{anyhow, bail};
use serde_json::{json, Map, Value};

use crate::aws::admin::TableState;
use crate::aws::TTL_ATTRIBUTE;
use crate::guard::PutStep;
use crate::ports::{Console, HistoryAction, HistoryOutcome, Images, PutError};
use crate::registry::{self, field, parse_item, Entry, ImageRef, Manifest, RepoKey};
use crate::service::Now;

/// How `protect` sets the item; `None` keeps what an existing item has (with `--force`) or
/// the default.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ProtectOptions {
    /// What a delete does: restore or alert (default restore).
    #[arg(long, value_parser = ["restore", "alert"])]
    pub on_delete: Option<String>,
    /// What a move does: revert, follow or alert (default revert).
    #[arg(long, value_parser = ["revert", "follow", "alert"])]
    pub on_move: Option<String>,
    /// An ARN glob of a caller allowed to move or delete the tag (repeatable; none: keep).
    #[arg(long = "allow", value_name = "ARN_GLOB")]
    pub allow: Vec<String>,
    /// Page severity: critical, high, medium or low (default high).
    #[arg(long, value_parser = ["critical", "high", "medium", "low"])]
    pub severity: Option<String>,
    /// Who owns the tag.
    #[arg(long)]
    pub owner: Option<String>,
    /// Text for the person on call.
    #[arg(long)]
    pub notes: Option<String>,
    /// Replace an existing item's pin (and the fields given).
    #[arg(long)]
    pub force: bool,
    /// protect only: no keep-alive tag on the pinned image (`keep_alive: false`), for
    /// repositories whose cleaner deletes images by an extra tag (README, Keep-alive tags).
    #[arg(long)]
    pub no_keep_alive: bool,
}

impl ProtectOptions {
    /// Writes the item settings given (`on_delete`, `on_move`, `severity`, `owner`, `notes`,
    /// `allow`) on `item`, leaving the others as they are: a tag item and a rule item take the
    /// same ones.
    pub fn write_settings(&self, item: &mut Map<String, Value>) {
        for (f, v) in [
            (field::ON_DELETE, &self.on_delete),
            (field::ON_MOVE, &self.on_move),
            (field::SEVERITY, &self.severity),
            (field::OWNER, &self.owner),
            (field::NOTES, &self.notes),
        ] {
            if let Some(v) = v {
                item.insert(f.into(), json!(v));
            }
        }
        if !self.allow.is_empty() {
            item.insert(field::ALLOW.into(), json!(self.allow));
        }
    }
}

/// `registry init`: creates the table, or says it is there already, or refuses when a table
/// of that name has another key schema.
pub async fn init(ops: &Ops, out: &mut impl Write) -> anyhow::Result<bool> {
    let admin = ops.aws("registry init")?;
    let table = &admin.table;
    match admin.table_state().await? {
        TableState::Matching { stream: true } => {
            writeln!(out, "table {table} exists with the registry's key schema and stream: nothing changed")?;
            Ok(true)
        }
        TableState::Matching { stream: false } => {
            admin.enable_stream().await?;
            writeln!(out, "table {table} exists with the registry's key schema; turned its stream on (new images), so items written by hand are pinned within seconds")?;
            Ok(true)
        }
        TableState::Other(keys) => bail!(
            "table {table} exists with another key schema ({keys}); the registry needs {} (HASH, S) and {} (RANGE, S): nothing changed",
            field::REPOSITORY,
            field::TAG
        ),
        TableState::Missing => {
            admin.create_table().await?;
            writeln!(out, "created table {table}: key {} + {}, on demand, TTL on {TTL_ATTRIBUTE}, stream of new images", field::REPOSITORY, field::TAG)?;
            Ok(true)
        }
    }
}

/// `protect REPO:TAG`: pins the tag's current image (an index with its children) in the
/// registry.
pub async fn protect(
    ops: &Ops,
    target: &str,
    opts: &ProtectOptions,
    now: &Now,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let (repo, tag) = ops.target(target).await?;
    if let Some(why) = ops.settings.outside(&repo) {
        bail!("{repo} is outside the guard's scope ({why}): the guard would never act on it, so it is not protected");
    }
    let manifest = current_manifest(ops, &repo, &tag).await?;
    let children = children(ops, &repo, &manifest).await?;
    let existing = existing_item(ops, &repo, &tag).await?;
    if existing.is_some() && !opts.force {
        bail!("{repo}:{tag} is already protected; --force replaces its pin and the fields given");
    }
    let by = ops
        .caller()
        .await
        .map_or_else(|| "ecr-tag-guard protect".to_string(), |(_, arn)| arn);
    let pin = registry::Pin {
        digest: manifest.digest.clone(),
        manifest: Some(manifest.clone()),
        children,
        pinned_by: Some(by),
        pinned_at: Some(now.rfc3339.clone()),
        mac: None,
    };
    // Seen under the tag just now: the guard's seal says so.
    let pin = ops.seal(&repo, &tag, pin).await?;
    let item = protected_item(existing.as_ref(), &repo, &tag, opts, &pin);
    let entry = parse_item(&item).map_err(|bad| anyhow!("{bad}"))?;
    if !ops.put_item(&item, opts.force).await? {
        bail!("{repo}:{tag} was protected meanwhile; --force replaces it");
    }
    let old = existing
        .as_ref()
        .and_then(|v| v.get(field::DIGEST))
        .and_then(Value::as_str)
        .map(String::from);
    let keep = if entry.keep_alive {
        keep_alive(ops, &repo, &manifest).await?
    } else {
        "none (keep_alive false)".to_string()
    };
    if let Some(old) = old.as_deref().filter(|o| *o != pin.digest) {
        drop_keep_alive(ops, &repo, &tag, old).await?;
    }
    let digests = (old, Some(pin.digest.clone()));
    ops.record(
        &repo,
        &tag,
        (HistoryAction::Protect, HistoryOutcome::Pinned),
        digests,
        now,
    )
    .await?;
    writeln!(
        out,
        "protected {repo}:{tag} at {} ({}{}), keep-alive tag {keep}, on_delete {}, on_move {}, severity {}",
        pin.digest,
        manifest.media_type.as_deref().unwrap_or("media type unknown"),
        if pin.children.is_empty() {
            String::new()
        } else {
            format!(", {} child manifests", pin.children.len())
        },
        name(&entry.on_delete),
        name(&entry.on_move),
        entry.severity.as_str(),
    )?;
    Ok(true)
}

/// The manifest `tag` sits on now, checked to hash to its digest.
async fn current_manifest(ops: &Ops, repo: &RepoKey, tag: &str) -> anyhow::Result<Manifest> {
    let found = ops
        .images(repo, &[ImageRef::Tag(tag.to_string())])
        .await?
        .ok_or_else(|| anyhow!("repository {repo} does not exist"))?;
    let manifest = match found.into_iter().next() {
        Some(Ok(m)) => m,
        Some(Err(code)) => bail!("tag {tag} is not in {repo} (ECR: {code}): nothing to protect"),
        None => bail!("ECR returned nothing for {repo}:{tag}"),
    };
    if !manifest.verify() {
        bail!(
            "ECR returned a manifest for {tag} whose sha256 is not its digest {}: not pinned",
            manifest.digest
        );
    }
    Ok(manifest)
}

/// The item `protect` writes: the existing one's fields (with `--force`), the options given,
/// and the new pin.
fn protected_item(
    existing: Option<&Value>,
    repo: &RepoKey,
    tag: &str,
    opts: &ProtectOptions,
    pin: &registry::Pin,
) -> Value {
    let mut item: Map<String, Value> = existing
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    item.insert(field::REPOSITORY.into(), json!(repo.key()));
    item.insert(field::TAG.into(), json!(tag));
    opts.write_settings(&mut item);
    if opts.no_keep_alive {
        item.insert(field::KEEP_ALIVE.into(), json!(false));
    }
    for f in registry::PIN_FIELDS {
        item.remove(*f);
    }
    item.extend(registry::pin_fields(pin));
    Value::Object(item)
}

/// Tags the pinned image with its keep-alive tag; returns the tag.
async fn keep_alive(ops: &Ops, repo: &RepoKey, m: &Manifest) -> anyhow::Result<String> {
    let tag = registry::keep_tag(&ops.settings.keep_prefix, &m.digest)
        .ok_or_else(|| anyhow!("{} is not a digest", m.digest))?;
    let step = PutStep {
        manifest: m.clone(),
        tag: Some(tag.clone()),
    };
    match ops.put(repo, &step).await {
        Ok(_) => Ok(tag),
        Err(PutError::Refused(_, why)) => bail!("could not add the keep-alive tag {tag}: {why}"),
        Err(PutError::Call(e)) => Err(e.into()),
    }
}

/// Removes the keep-alive tag of `digest` unless another item still pins it.
async fn drop_keep_alive(ops: &Ops, repo: &RepoKey, tag: &str, digest: &str) -> anyhow::Result<()> {
    let items = ops.partition(&repo.key(), false).await?;
    let entries: Vec<Entry> = items.iter().filter_map(|i| parse_item(i).ok()).collect();
    if let Some(keep) =
        crate::guard::keep_alive_to_drop(&entries, tag, digest, &ops.settings.keep_prefix)
    {
        ops.untag(repo, &keep).await?;
    }
    Ok(())
}

pub(super) fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

async fn children(ops: &Ops, repo: &RepoKey, m: &Manifest) -> anyhow::Result<Vec<Manifest>> {
    let digests = m.child_digests();
    if digests.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<ImageRef> = digests.iter().cloned().map(ImageRef::Digest).collect();
    let found = ops
        .images(repo, &ids)
        .await?
        .ok_or_else(|| anyhow!("repository {repo} does not exist"))?;
    digests
        .iter()
        .zip(found)
        .map(|(d, r)| match r {
            Ok(c) if c.verify() => Ok(c),
            Ok(_) => Err(anyhow!(
                "child manifest {d} does not hash to its digest: not pinned"
            )),
            Err(code) => Err(anyhow!(
                "child manifest {d} of the index is not in {repo} (ECR: {code}): not pinned"
            )),
        })
        .collect()
}

async fn existing_item(ops: &Ops, repo: &RepoKey, tag: &str) -> anyhow::Result<Option<Value>> {
    Ok(ops
        .partition(&repo.key(), false)
        .await?
        .into_iter()
        .find(|i| i.get(field::TAG).and_then(Value::as_str) == Some(tag)))
}

/// `unprotect REPO:TAG`: removes the item (its history stays).
pub async fn unprotect(
    ops: &Ops,
    target: &str,
    now: &Now,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let (repo, tag) = ops.target(target).await?;
    let existing = existing_item(ops, &repo, &tag).await?;
    if !ops.delete_item(&repo.key(), &tag).await? {
        bail!("{repo}:{tag} is not protected: nothing changed");
    }
    let old = existing
        .as_ref()
        .and_then(|v| v.get(field::DIGEST))
        .and_then(Value::as_str)
        .map(String::from);
    let outside = ops.settings.outside(&repo);
    if let (Some(d), None) = (old.as_deref(), &outside) {
        drop_keep_alive(ops, &repo, &tag, d).await?;
    }
    ops.record(
        &repo,
        &tag,
        (HistoryAction::Unprotect, HistoryOutcome::Removed),
        (old, None),
        now,
    )
    .await?;
    writeln!(out, "unprotected {repo}:{tag} (its history is kept)")?;
    if let Some(why) = outside {
        writeln!(
            out,
            "its keep-alive tag, if any, is left in ECR: the repository is outside the guard's scope ({why})"
        )?;
    }
    Ok(true)
}

pub use super::show::{history, list, status};
