//! The registry commands, against AWS (or the endpoint `AWS_ENDPOINT_URL` names) or, with
//! `--state FILE`, on the embedded world: `registry init`, `protect`, `unprotect`, `edit`,
//! `restore`, `list`, `history` and `status`. Each parses, calls its use case in
//! [`crate::service`] and renders the answer.

pub use super::ops::{Backend, Chosen, Ops};

use std::io::Write;

use anyhow::{anyhow, bail};
use serde_json::{Map, Value};

use crate::aws::admin::{Admin, TableState};
use crate::aws::TTL_ATTRIBUTE;
use crate::ports::Console;
use crate::registry::field;
use crate::service::protect::{ItemFields, ProtectHow};
use crate::service::{self, Now};

/// The item settings a command sets; one not given keeps what the item has (or the
/// default, for a new item).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct FieldOptions {
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
}

impl FieldOptions {
    /// The settings as the use cases take them.
    pub fn fields(&self) -> ItemFields {
        ItemFields {
            on_delete: self.on_delete.clone(),
            on_move: self.on_move.clone(),
            allow: self.allow.clone(),
            severity: self.severity.clone(),
            owner: self.owner.clone(),
            notes: self.notes.clone(),
        }
    }
}

/// How `protect` sets the item.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ProtectOptions {
    /// The item's settings (owner, severity, notes, what to do on a delete or a move).
    #[command(flatten)]
    pub fields: FieldOptions,
    /// Re-pin an existing item (and set the fields given), only while its tag is on its pin.
    #[arg(long)]
    pub force: bool,
    /// Re-pin an existing item to the image ECR holds under the tag now, even when the tag
    /// has left its pin (a move the guard would revert).
    #[arg(long)]
    pub accept_current: bool,
    /// protect only: no keep-alive tag on the pinned image (`keep_alive: false`), for
    /// repositories whose cleaner deletes images by an extra tag (README, Keep-alive tags).
    #[arg(long)]
    pub no_keep_alive: bool,
}

impl ProtectOptions {
    /// Writes the item settings given on `item`, leaving the others as they are: a tag item
    /// and a rule item take the same ones.
    pub fn write_settings(&self, item: &mut Map<String, Value>) {
        self.fields.fields().write(item);
    }
}

/// `registry init`: creates the table, or says it is there already, or refuses when a table
/// of that name has another key schema.
pub async fn init(ops: &Ops<Admin>, out: &mut impl Write) -> anyhow::Result<bool> {
    let admin = &ops.backend;
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
/// registry ([`service::protect::protect`]).
pub async fn protect<B: Console>(
    ops: &Ops<B>,
    target: &str,
    opts: &ProtectOptions,
    now: &Now,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let (repo, tag) = ops.target(target).await?;
    let how = ProtectHow {
        force: opts.force,
        accept_current: opts.accept_current,
        no_keep_alive: opts.no_keep_alive,
    };
    let fields = opts.fields.fields();
    let p =
        service::protect::protect(&ops.backend, &ops.scope, &repo, &tag, &fields, how, now).await?;
    let e = &p.entry;
    let digest = e.digest().unwrap_or_default();
    let children = e.pin.as_ref().map_or(0, |p| p.children.len());
    writeln!(
        out,
        "protected {repo}:{tag} at {digest} ({}{}), keep-alive tag {}, on_delete {}, on_move {}, severity {}",
        p.media_type.as_deref().unwrap_or("media type unknown"),
        if children == 0 {
            String::new()
        } else {
            format!(", {children} child manifests")
        },
        match &p.keep {
            Ok(t) => t.clone(),
            Err(why) => why.clone(),
        },
        name(&e.on_delete),
        name(&e.on_move),
        e.severity.as_str(),
    )?;
    if let Some(old) = &p.replaced {
        writeln!(out, "the pin was {old}")?;
    }
    for (t, leave) in &p.released {
        writeln!(out, "{}", leave.describe(t))?;
    }
    Ok(true)
}

pub(super) fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// `unprotect REPO:TAG [--force]`: removes the item (its history stays), lets its keep-alive
/// tag go without deleting the image ([`service::protect::unprotect`]).
pub async fn unprotect<B: Console>(
    ops: &Ops<B>,
    target: &str,
    force: bool,
    now: &Now,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let (repo, tag) = ops.target(target).await?;
    let u = service::protect::unprotect(&ops.backend, &ops.scope, &repo, &tag, force, now).await?;
    writeln!(out, "unprotected {repo}:{tag} (its history is kept)")?;
    if u.was_missing {
        if let Some(pin) = &u.pin {
            writeln!(
                out,
                "the tag was missing from ECR: its image {pin} is left in ECR"
            )?;
        }
    }
    for (t, leave) in &u.released {
        writeln!(out, "{}", leave.describe(t))?;
    }
    if let Some(why) = &u.outside {
        writeln!(
            out,
            "its keep-alive tag, if any, is left in ECR: the repository is outside the guard's scope ({why})"
        )?;
    }
    Ok(true)
}

/// `edit REPO:TAG`: changes the item's settings, not its pin ([`service::protect::edit`]).
pub async fn edit<B: Console>(
    ops: &Ops<B>,
    target: &str,
    fields: &ItemFields,
    now: &Now,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let (repo, tag) = ops.target(target).await?;
    let edited = service::protect::edit(&ops.backend, &repo, &tag, fields, now).await?;
    if edited.changed.is_empty() {
        writeln!(
            out,
            "{repo}:{tag} has these settings already: nothing changed"
        )?;
        return Ok(true);
    }
    let changes: Vec<String> = edited
        .changed
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    writeln!(
        out,
        "edited {repo}:{tag}: {} (pin {} and its seal unchanged)",
        changes.join(", "),
        edited.entry.digest().unwrap_or("none")
    )?;
    Ok(true)
}

/// `restore REPO:TAG [--dry-run]`: puts the tag back on its pin now, with the Lambda's rules
/// ([`crate::service::Handler::restore_by_hand`]).
pub async fn restore(
    chosen: &Chosen,
    g: &super::Global,
    target: &str,
    dry_run: bool,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let now = Now::system();
    let done = match &chosen.backend {
        Backend::Embedded(world) => {
            let ops = chosen_ops(chosen, world.clone());
            let (repo, tag, caller) = restore_target(&ops, target).await?;
            let handler = crate::wiring::embedded(world, ops.settings(), dry_run);
            (
                handler.restore_by_hand(&repo, &tag, &caller, &now).await?,
                repo,
                tag,
            )
        }
        Backend::Aws(admin) => {
            let ops = chosen_ops(chosen, (**admin).clone());
            let (repo, tag, caller) = restore_target(&ops, target).await?;
            let cfg = super::reconcile::config(g)
                .map_err(|e| anyhow!("restore pages on-call and checks the pin's seal: {e} (name it with --topic-arn / --table)"))?;
            if cfg.pin_key.is_none() {
                bail!("restore checks the pin's seal: {}", crate::aws::NO_KEY);
            }
            let sdk = super::sdk_config(g).await;
            let home = super::caller_account(&sdk, &cfg).await?;
            let handler = crate::wiring::from_config(&sdk, &cfg, home, dry_run)?;
            (
                handler.restore_by_hand(&repo, &tag, &caller, &now).await?,
                repo,
                tag,
            )
        }
    };
    let (done, repo, tag) = done;
    let d = &done.decision;
    let pin = d.entry.digest().unwrap_or("none");
    match &done.outcome {
        None if d.action == crate::guard::Action::Nothing => {
            writeln!(
                out,
                "{repo}:{tag} is on its pin {pin} already: nothing to do"
            )?;
            Ok(true)
        }
        None => {
            writeln!(
                out,
                "would {} {repo}:{tag} onto its pin {pin} ({} PutImage call(s); the seal holds) and page low: {} (dry run: nothing changed)",
                d.action.name(),
                done.pushes,
                d.why
            )?;
            Ok(true)
        }
        Some(outcome) => {
            writeln!(
                out,
                "{repo}:{tag}: {} -> {} (pin {pin}){}",
                d.action.name(),
                outcome.name(),
                if done.paged { "; paged" } else { "" }
            )?;
            Ok(!outcome.is_problem())
        }
    }
}

/// The commands' view of `backend`, with the chosen region and settings.
fn chosen_ops<B>(chosen: &Chosen, backend: B) -> Ops<B> {
    Ops {
        backend,
        region: chosen.region.clone(),
        scope: chosen.scope.clone(),
        tuning: chosen.tuning.clone(),
    }
}

/// `REPO:TAG` of a restore, and who asks.
async fn restore_target<B: Console>(
    ops: &Ops<B>,
    target: &str,
) -> anyhow::Result<(crate::registry::RepoKey, String, String)> {
    let (repo, tag) = ops.target(target).await?;
    let caller = ops
        .caller()
        .await
        .map_or_else(|| "an unknown caller".to_string(), |(_, arn)| arn);
    Ok((repo, tag, caller))
}

pub use super::show::{history, list, status};
