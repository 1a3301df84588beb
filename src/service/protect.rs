//! The registry commands that change items: `protect`, `unprotect`, `edit`. Each reads what
//! the table and ECR hold now, refuses what would leave a bad state (a known-good pin
//! replaced by a move the guard would revert, the only copy of an image dropped), and lets
//! go of guard tags only through [`super::keep`], so no command deletes an image. `restore`
//! by hand is [`super::restore`]. The CLI parses, calls these and renders their answers.

use serde_json::{json, Map, Value};

use crate::error::CallError;
use crate::guard::{keep_alive_to_drop, Leave, PutStep, Scope};
use crate::ports::{Console, HistoryAction, HistoryOutcome, Images, PinKey, PutError};
use crate::registry::{self, field, parse_item, Entry, Manifest, Pin, RepoKey};
use crate::text::short_digest;

use super::history::record_command as record;
use super::keep::release_guard_tags;
use super::trust::seal_pin;
use super::Now;

/// Why a command did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// What was asked would leave a bad state, or does not fit what is there: nothing changed
    /// (the text says what to do instead). No retry helps.
    #[error("{0}")]
    Refused(String),
    /// A call failed; see [`CallError::retryable`].
    #[error(transparent)]
    Call(#[from] CallError),
}

impl CommandError {
    /// True when running the command again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, CommandError::Call(c) if c.retryable)
    }
}

impl From<crate::error::Error> for CommandError {
    fn from(e: crate::error::Error) -> Self {
        match e {
            crate::error::Error::Call(c) => CommandError::Call(c),
            other => CommandError::Refused(other.to_string()),
        }
    }
}

fn refuse<T>(why: String) -> Result<T, CommandError> {
    Err(CommandError::Refused(why))
}

/// The item settings a command sets; `None` (or an empty `allow`) keeps what the item has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemFields {
    /// `restore` or `alert`.
    pub on_delete: Option<String>,
    /// `revert`, `follow` or `alert`.
    pub on_move: Option<String>,
    /// ARN globs of callers allowed to move or delete the tag.
    pub allow: Vec<String>,
    /// `critical`, `high`, `medium` or `low`.
    pub severity: Option<String>,
    /// Who owns the tag.
    pub owner: Option<String>,
    /// Text for the person on call.
    pub notes: Option<String>,
}

impl ItemFields {
    /// Writes the settings given on `item`, leaving the others as they are (a tag item and a
    /// rule item take the same ones).
    pub fn write(&self, item: &mut Map<String, Value>) {
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

    /// True when no setting is given.
    pub fn is_empty(&self) -> bool {
        *self == ItemFields::default()
    }
}

/// How `protect` treats an item that exists.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProtectHow {
    /// Re-pin an existing item, while its tag is still on its pin.
    pub force: bool,
    /// Re-pin an existing item to what ECR holds now, even when the tag has left its pin.
    pub accept_current: bool,
    /// Write `keep_alive: false`: no keep-alive tag.
    pub no_keep_alive: bool,
}

/// What `protect` did.
#[derive(Clone, Debug)]
pub struct Protected {
    /// The item as written.
    pub entry: Entry,
    /// The pinned image's media type.
    pub media_type: Option<String>,
    /// The keep-alive tag put on the pin: `Ok(tag)`, or why there is none.
    pub keep: Result<String, String>,
    /// The digest the item pinned before, when it pinned another.
    pub replaced: Option<String>,
    /// How the old pin's keep-alive tag left.
    pub released: Vec<(String, Leave)>,
}

/// What `unprotect` did.
#[derive(Clone, Debug)]
pub struct Unprotected {
    /// The digest the item pinned.
    pub pin: Option<String>,
    /// True when the tag was missing from ECR (the item held the only copy, `--force`).
    pub was_missing: bool,
    /// How the pin's keep-alive tag left.
    pub released: Vec<(String, Leave)>,
    /// Why the guard tag was left alone: the repository is outside the guard's scope.
    pub outside: Option<String>,
}

/// What `edit` changed: the fields whose values changed, with their new values.
#[derive(Clone, Debug)]
pub struct Edited {
    /// The item as written.
    pub entry: Entry,
    /// `(field, new value)` of each field that changed; empty: nothing did.
    pub changed: Vec<(String, Value)>,
}

/// `protect REPO:TAG`: pins the tag's current image (an index with its children), sealed, its
/// keep-alive tag put on it. An item that exists is re-pinned only with `force` and only while
/// its tag is on its pin, or with `accept_current` to what ECR holds now.
pub async fn protect<O: Console + Images + PinKey>(
    o: &O,
    scope: &Scope,
    repo: &RepoKey,
    tag: &str,
    fields: &ItemFields,
    how: ProtectHow,
    now: &Now,
) -> Result<Protected, CommandError> {
    if let Some(why) = scope.outside(repo) {
        return refuse(format!("{repo} is outside the guard's scope ({why}): the guard would never act on it, so it is not protected"));
    }
    let existing = item_of(o, repo, tag).await?;
    let old = existing.as_ref().and_then(digest_of);
    let replace = how.force || how.accept_current;
    if existing.is_some() && !replace {
        return refuse(format!("{repo}:{tag} is already protected: `edit` changes its settings; --force re-pins it while the tag is on its pin"));
    }
    let current = image_to_pin(
        tag_now(o, repo, tag).await?,
        old.as_deref(),
        repo,
        tag,
        &how,
    )?;
    let children = children_of(o, repo, &current).await?;
    let by = o
        .caller()
        .await
        .map_or_else(|| "ecr-tag-guard protect".to_string(), |(_, arn)| arn);
    let pin = Pin {
        digest: current.digest.clone(),
        manifest: Some(current.clone()),
        children,
        pinned_by: Some(by.clone()),
        pinned_at: Some(now.rfc3339.clone()),
        mac: None,
    };
    // Seen under the tag just now: the guard's seal says so.
    let pin = seal_pin(o, repo, tag, pin)
        .await
        .map_err(|e| CommandError::Refused(format!("cannot seal the pin of {repo}:{tag}: {e}")))?;
    let item = protected_item(
        existing.as_ref(),
        repo,
        tag,
        fields,
        how.no_keep_alive,
        &pin,
    );
    let entry = parse_item(&item)
        .map_err(|bad| CommandError::Refused(format!("{bad}: nothing written")))?;
    let written = match &existing {
        None => o.put_item(&item, false).await?,
        Some(_) => o.replace_item(&item, old.as_deref()).await?,
    };
    if !written {
        return refuse(format!("{repo}:{tag} changed meanwhile (protected by another, or its pin moved): nothing written; run the command again"));
    }
    let keep = if entry.keep_alive {
        add_keep_alive(o, repo, &current, &scope.keep_prefix).await
    } else {
        Err("none (keep_alive false)".to_string())
    };
    let replaced = old.clone().filter(|o| *o != pin.digest);
    let released = match &replaced {
        Some(old) => release_old(o, scope, repo, tag, old, Some(&pin.digest)).await?,
        None => Vec::new(),
    };
    let detail = match &replaced {
        Some(old) if how.accept_current => format!(
            "ecr-tag-guard protect --accept-current (the pin was {})",
            short_digest(old)
        ),
        _ => "ecr-tag-guard protect".to_string(),
    };
    let digests = (old, Some(pin.digest.clone()));
    let action = (HistoryAction::Protect, HistoryOutcome::Pinned);
    record(o, repo, tag, action, digests, &detail, now).await?;
    Ok(Protected {
        entry,
        media_type: current.media_type.clone(),
        keep,
        replaced,
        released,
    })
}

/// The image `protect` pins: the one ECR has under the tag (`found`), unless that contradicts
/// the pin the item holds (`old`): a missing tag is restored, not re-pinned; a moved one is
/// re-pinned only with `accept_current`.
fn image_to_pin(
    found: Option<Manifest>,
    old: Option<&str>,
    repo: &RepoKey,
    tag: &str,
    how: &ProtectHow,
) -> Result<Manifest, CommandError> {
    match (found, old) {
        (None, Some(old)) => refuse(format!(
            "{repo}:{tag} is missing from ECR; its pin {old} is the image it should be on: `restore {repo}:{tag}` puts it back. Nothing changed"
        )),
        (None, None) => refuse(format!("tag {tag} is not in {repo}: nothing to protect")),
        (Some(m), Some(old)) if m.digest != old && !how.accept_current => refuse(format!(
            "{repo}:{tag} is not on its pin: ECR has it on {}, the pin is {old}. --force re-pins only a tag that is on its pin; `restore {repo}:{tag}` puts it back on the pin, --accept-current re-pins it to {} (what ECR holds now). Nothing changed",
            m.digest, m.digest
        )),
        (Some(m), _) => Ok(m),
    }
}

/// `unprotect REPO:TAG`: removes the item (its history stays) and lets go of its keep-alive
/// tag without deleting the image. A tag missing from ECR, whose item holds the only copy of
/// its image, is refused unless `force`.
pub async fn unprotect<O: Console + Images>(
    o: &O,
    scope: &Scope,
    repo: &RepoKey,
    tag: &str,
    force: bool,
    now: &Now,
) -> Result<Unprotected, CommandError> {
    let Some(existing) = item_of(o, repo, tag).await? else {
        return refuse(format!("{repo}:{tag} is not protected: nothing changed"));
    };
    let old = digest_of(&existing);
    let outside = scope.outside(repo);
    let mut was_missing = false;
    if let (Some(pin), None) = (old.as_deref(), &outside) {
        was_missing = match o.lookup(repo, &[tag.to_string()]).await? {
            None => true,
            Some(found) => !found.iter().any(Result::is_ok),
        };
        if was_missing && !force {
            let keep = registry::keep_tag(&scope.keep_prefix, pin).unwrap_or_default();
            return refuse(format!(
                "{repo}:{tag} is missing from ECR and its item pins {pin}: the item (and the guard tag {keep}, if it is there) hold the only copy of that image. `restore {repo}:{tag}` puts the tag back first; --force removes the item and leaves the image in ECR. Nothing changed"
            ));
        }
    }
    if !o.delete_pinned(&repo.key(), tag, old.as_deref()).await? {
        return refuse(format!("{repo}:{tag} changed meanwhile (its pin moved or the item is gone): nothing removed; run the command again"));
    }
    let keeps = parse_item(&existing).is_ok_and(|e| e.keep_alive);
    let released = match (&old, &outside) {
        (Some(pin), None) if keeps => release_old(o, scope, repo, tag, pin, None).await?,
        _ => Vec::new(),
    };
    let action = (HistoryAction::Unprotect, HistoryOutcome::Removed);
    let detail = if was_missing {
        "ecr-tag-guard unprotect --force (the tag was missing; the image is left in ECR)"
    } else {
        "ecr-tag-guard unprotect"
    };
    record(o, repo, tag, action, (old.clone(), None), detail, now).await?;
    Ok(Unprotected {
        pin: old,
        was_missing,
        released,
        outside,
    })
}

/// `edit REPO:TAG`: changes the item's settings, leaving its pin and seal as they are (the
/// write is refused if the pin changes meanwhile).
pub async fn edit<O: Console>(
    o: &O,
    repo: &RepoKey,
    tag: &str,
    fields: &ItemFields,
    now: &Now,
) -> Result<Edited, CommandError> {
    if fields.is_empty() {
        return refuse("nothing to change: give --owner, --severity, --notes, --on-delete, --on-move or --allow".into());
    }
    let Some(existing) = item_of(o, repo, tag).await? else {
        return refuse(format!(
            "{repo}:{tag} is not protected: nothing changed (`protect` adds it)"
        ));
    };
    let Some(before) = existing.as_object() else {
        return refuse(format!(
            "the item of {repo}:{tag} is not an object: nothing changed"
        ));
    };
    let mut after = before.clone();
    fields.write(&mut after);
    let changed: Vec<(String, Value)> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let item = Value::Object(after);
    let entry = parse_item(&item)
        .map_err(|bad| CommandError::Refused(format!("{bad}: nothing changed")))?;
    if changed.is_empty() {
        return Ok(Edited { entry, changed });
    }
    let pin = digest_of(&existing);
    if !o.replace_item(&item, pin.as_deref()).await? {
        return refuse(format!("{repo}:{tag} changed meanwhile (its pin moved or the item is gone): nothing written; run the command again"));
    }
    let names: Vec<&str> = changed.iter().map(|(k, _)| k.as_str()).collect();
    let detail = format!("ecr-tag-guard edit: {}", names.join(", "));
    let action = (HistoryAction::Edit, HistoryOutcome::Changed);
    record(o, repo, tag, action, (pin.clone(), pin), &detail, now).await?;
    Ok(Edited { entry, changed })
}

/// The item of `repo`:`tag`, as the table holds it.
async fn item_of<O: Console>(o: &O, repo: &RepoKey, tag: &str) -> Result<Option<Value>, CallError> {
    Ok(o.partition(&repo.key(), false)
        .await?
        .into_iter()
        .find(|i| i.get(field::TAG).and_then(Value::as_str) == Some(tag)))
}

fn digest_of(item: &Value) -> Option<String> {
    item.get(field::DIGEST)
        .and_then(Value::as_str)
        .map(String::from)
}

/// The manifest `tag` sits on now, checked to hash to its digest; `None`: the tag is not in
/// the repository.
async fn tag_now<O: Images>(
    o: &O,
    repo: &RepoKey,
    tag: &str,
) -> Result<Option<Manifest>, CommandError> {
    let Some(found) = o.lookup(repo, &[tag.to_string()]).await? else {
        return refuse(format!("repository {repo} does not exist"));
    };
    match found.into_iter().next() {
        Some(Ok(m)) if m.verify() => Ok(Some(m)),
        Some(Ok(m)) => refuse(format!(
            "ECR returned a manifest for {tag} whose sha256 is not its digest {}: not pinned",
            m.digest
        )),
        Some(Err(code)) if code.contains("ImageNotFound") => Ok(None),
        Some(Err(code)) => refuse(format!("ECR could not read {repo}:{tag} ({code})")),
        None => Ok(None),
    }
}

/// An index's child manifests, each checked to hash to its digest.
async fn children_of<O: Images>(
    o: &O,
    repo: &RepoKey,
    m: &Manifest,
) -> Result<Vec<Manifest>, CommandError> {
    let mut out = Vec::new();
    for d in m.child_digests() {
        match o.manifest(repo, &d).await? {
            Some(c) if c.verify() => out.push(c),
            Some(_) => {
                return refuse(format!(
                    "child manifest {d} does not hash to its digest: not pinned"
                ))
            }
            None => {
                return refuse(format!(
                    "child manifest {d} of the index is not in {repo}: not pinned"
                ))
            }
        }
    }
    Ok(out)
}

/// The item `protect` writes: the existing one's fields, the settings given, the new pin.
fn protected_item(
    existing: Option<&Value>,
    repo: &RepoKey,
    tag: &str,
    fields: &ItemFields,
    no_keep_alive: bool,
    pin: &Pin,
) -> Value {
    let mut item: Map<String, Value> = existing
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    item.insert(field::REPOSITORY.into(), json!(repo.key()));
    item.insert(field::TAG.into(), json!(tag));
    fields.write(&mut item);
    if no_keep_alive {
        item.insert(field::KEEP_ALIVE.into(), json!(false));
    }
    for f in registry::PIN_FIELDS {
        item.remove(*f);
    }
    // A re-pin is a pin the guard saw itself: an earlier release or not-found mark is over.
    item.remove(field::RELEASED_AT);
    item.remove(field::NOT_FOUND_AT);
    item.extend(registry::pin_fields(pin));
    Value::Object(item)
}

/// Tags the pinned image with its keep-alive tag: the tag, or why it is not there.
async fn add_keep_alive<O: Images>(
    o: &O,
    repo: &RepoKey,
    m: &Manifest,
    prefix: &str,
) -> Result<String, String> {
    let tag = registry::keep_tag(prefix, &m.digest)
        .ok_or_else(|| format!("{} is not a digest", m.digest))?;
    let step = PutStep {
        manifest: m.clone(),
        tag: Some(tag.clone()),
    };
    match o.put(repo, &step).await {
        Ok(_) => Ok(tag),
        Err(PutError::Refused(_, why)) => Err(format!("not added ({why}); `status` reports it")),
        Err(PutError::Call(e)) => Err(format!("not added ({e}); `status` reports it")),
    }
}

/// Lets go of the keep-alive tag of `old` (the pin `tag` held) unless another item still
/// pins it, without deleting any image.
async fn release_old<O: Console + Images>(
    o: &O,
    scope: &Scope,
    repo: &RepoKey,
    tag: &str,
    old: &str,
    prefer: Option<&str>,
) -> Result<Vec<(String, Leave)>, CallError> {
    let items = o.partition(&repo.key(), false).await?;
    let entries: Vec<Entry> = items.iter().filter_map(|i| parse_item(i).ok()).collect();
    let drop: Vec<String> = keep_alive_to_drop(&entries, tag, old, &scope.keep_prefix)
        .into_iter()
        .collect();
    let released = release_guard_tags(o, repo, &drop, prefer, &scope.keep_prefix).await;
    if super::keep::any_retired(&released) {
        o.note_guard_tags(&repo.key()).await?;
    }
    Ok(released)
}
