//! The embedded world: ECR, the registry table, the ledger, SNS and CloudTrail's history in
//! memory. Replay, every command's `--state` and the service's tests run on it. It answers
//! like AWS does: digests are the sha256 of the manifest bytes, moving a tag leaves the old
//! image untagged, an immutable tag held elsewhere is refused.

mod console;
mod scenario;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

pub use scenario::{Scenario, ScenarioError};

use crate::error::CallError;
use crate::events::{Change, Incident};
use crate::guard::{Failure, PutStep};
use crate::page::Page;
use crate::ports::{
    Claim, HistoryRecord, Images, Ledger, Pager, Put, PutError, Registry, Trail, CLAIM_LEASE_SECS,
};
use crate::registry::image::ImageInfo;
use crate::registry::image::Storage;
use crate::registry::{
    self, field, Entry, ImageRef, InvalidEntry, Manifest, Pin, RepoKey, TagRule, RULE_PARTITION,
};
use crate::text::sha256_digest;

/// One image: its manifest (when known) and tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Image {
    /// The manifest text; `None` for an image only known by digest.
    pub manifest: Option<String>,
    /// Its media type.
    pub media_type: Option<String>,
    /// Its tags.
    pub tags: BTreeSet<String>,
    /// Its storage class.
    pub storage: Storage,
    /// When it was pushed (epoch seconds; only the order matters here).
    pub pushed_at: i64,
}

/// One repository.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Repo {
    /// `IMMUTABLE` tags: a tag held by another image is not moved.
    pub immutable: bool,
    /// Images by digest.
    pub images: BTreeMap<String, Image>,
    /// Digests whose layers are gone: a PutImage of them fails with `LayersNotFoundException`.
    pub layers_gone: BTreeSet<String>,
    /// Its lifecycle policy text, if any.
    pub lifecycle_policy: Option<String>,
}

impl Repo {
    /// The manifest of the image `id` names, or ECR's failure code.
    pub fn read(&self, id: &ImageRef) -> Result<Manifest, String> {
        let d = match id {
            ImageRef::Tag(t) => self.digest_of(t).ok_or("ImageNotFound")?,
            ImageRef::Digest(d) => d.as_str(),
        };
        let im = self.images.get(d).ok_or("ImageNotFound")?;
        let body = im.manifest.clone().ok_or("ImageWithoutManifest")?;
        Ok(Manifest {
            digest: d.to_string(),
            media_type: im.media_type.clone(),
            body,
        })
    }

    /// The digest the tag sits on.
    pub fn digest_of(&self, tag: &str) -> Option<&str> {
        self.images
            .iter()
            .find(|(_, im)| im.tags.contains(tag))
            .map(|(d, _)| d.as_str())
    }
}

/// A ledger record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerRecord {
    /// When claimed.
    pub claimed_at: i64,
    /// Handled (with no page pending).
    pub done: bool,
    /// Pages still to send.
    pub pending: Vec<Page>,
    /// Some action must be tried again too.
    pub redo: bool,
}

/// Everything in the embedded world.
#[derive(Debug, Default)]
pub struct State {
    /// ECR repositories.
    pub repos: BTreeMap<RepoKey, Repo>,
    /// Registry items as plain JSON, by (`repository`, `tag`).
    pub items: BTreeMap<(String, String), Value>,
    /// Tag history.
    pub history: Vec<HistoryRecord>,
    /// Once-only records by event id.
    pub ledger: BTreeMap<String, LedgerRecord>,
    /// Pages published.
    pub pages: Vec<Page>,
    /// Every call made, as `service:Operation`.
    pub calls: Vec<String>,
    /// Failures to answer the next call of an operation with, for tests.
    pub faults: BTreeMap<String, CallError>,
    /// Ledger notes: when each key was first seen.
    pub first_seen: BTreeMap<String, i64>,
    /// CloudTrail's history: the changes made with a known caller, oldest first.
    pub trail: Vec<Incident>,
    /// The guard's own role, as the scenario names it (kept when the world is saved).
    pub guard_role_arn: Option<String>,
}

/// A handle on the shared embedded world; clones share it.
#[derive(Clone, Debug, Default)]
pub struct Memory(Arc<Mutex<State>>);

impl Memory {
    /// A world holding `state`.
    pub fn new(state: State) -> Memory {
        Memory(Arc::new(Mutex::new(state)))
    }

    /// Locks the world (a poisoned lock is taken over: the state is plain data).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a call, answering with the fault set for it, if any.
    fn call(&self, op: &str) -> Result<MutexGuard<'_, State>, CallError> {
        let mut s = self.state();
        s.calls.push(op.to_string());
        match s.faults.remove(op) {
            Some(e) => Err(e),
            None => Ok(s),
        }
    }

    /// Makes the change an incident reports happen in ECR, as the real call did before the
    /// event was sent. Replay does this before the guard reacts.
    pub fn apply(&self, incident: &Incident) {
        let mut s = self.state();
        if matches!(incident.actor, crate::events::Actor::Principal { .. }) {
            s.trail.push(incident.clone());
        }
        if incident.changes.contains(&Change::RepositoryDeleted) {
            s.repos.remove(&incident.repo);
            return;
        }
        let repo = s.repos.entry(incident.repo.clone()).or_default();
        for change in &incident.changes {
            match change {
                Change::TagRemoved { tag, digest } => {
                    let holder = digest
                        .clone()
                        .or_else(|| repo.digest_of(tag).map(String::from));
                    if let Some(d) = holder {
                        let now_untagged = repo
                            .images
                            .get_mut(&d)
                            .is_some_and(|im| im.tags.remove(tag) && im.tags.is_empty());
                        // Removing an image's last tag deletes the image.
                        if now_untagged {
                            repo.images.remove(&d);
                        }
                    }
                }
                Change::ImageDeleted { digest, .. } => {
                    repo.images.remove(digest);
                }
                Change::TagPushed {
                    tag,
                    digest,
                    manifest,
                } => {
                    for im in repo.images.values_mut() {
                        im.tags.remove(tag);
                    }
                    let pushed = next_push(repo, &incident.time);
                    let im = repo.images.entry(digest.clone()).or_insert_with(|| Image {
                        pushed_at: pushed,
                        ..Image::default()
                    });
                    if let Some(m) = manifest.as_ref().filter(|m| m.verify()) {
                        im.manifest = Some(m.body.clone());
                        im.media_type = m.media_type.clone();
                    }
                    im.tags.insert(tag.clone());
                }
                Change::RepositoryDeleted => {}
            }
        }
    }
}

impl Registry for Memory {
    async fn entries(&self, repo: &RepoKey) -> Result<Vec<Result<Entry, InvalidEntry>>, CallError> {
        let s = self.call("dynamodb:Query")?;
        let pk = repo.key();
        Ok(s.items
            .range((pk.clone(), String::new())..)
            .take_while(|((p, _), _)| *p == pk)
            .map(|(_, item)| registry::parse_item(item))
            .collect())
    }

    async fn all_entries(&self) -> Result<Vec<Result<Entry, InvalidEntry>>, CallError> {
        let s = self.call("dynamodb:Scan")?;
        Ok(s.items
            .values()
            .filter(|i| !registry::is_rule_item(i))
            .map(registry::parse_item)
            .collect())
    }

    async fn mark_not_found(&self, repo: &RepoKey, tag: &str, at: &str) -> Result<bool, CallError> {
        let mut s = self.call("dynamodb:UpdateItem")?;
        let Some(Value::Object(item)) = s.items.get_mut(&(repo.key(), tag.to_string())) else {
            return Ok(false);
        };
        if item.contains_key(field::DIGEST) {
            return Ok(false);
        }
        item.insert(field::NOT_FOUND_AT.into(), at.into());
        Ok(true)
    }

    async fn rules(&self) -> Result<Vec<Result<TagRule, InvalidEntry>>, CallError> {
        let s = self.call("dynamodb:Query")?;
        Ok(s.items
            .range((RULE_PARTITION.to_string(), String::new())..)
            .take_while(|((p, _), _)| p == RULE_PARTITION)
            .map(|(_, item)| registry::parse_rule(item))
            .collect())
    }

    async fn add_rule_pin(
        &self,
        repo: &RepoKey,
        tag: &str,
        rule: &str,
        pin: &Pin,
    ) -> Result<bool, CallError> {
        let mut s = self.call("dynamodb:PutItem")?;
        let key = (repo.key(), tag.to_string());
        if s.items.contains_key(&key) {
            return Ok(false);
        }
        let mut item = registry::pin_fields(pin);
        item.insert(field::REPOSITORY.into(), repo.key().into());
        item.insert(field::TAG.into(), tag.into());
        item.insert(field::RULE.into(), rule.into());
        s.items.insert(key, Value::Object(item));
        Ok(true)
    }

    async fn drop_rule_pin(
        &self,
        repo: &RepoKey,
        tag: &str,
        rule: &str,
    ) -> Result<bool, CallError> {
        let mut s = self.call("dynamodb:DeleteItem")?;
        let key = (repo.key(), tag.to_string());
        let made_by_rule = s
            .items
            .get(&key)
            .and_then(|i| i.get(field::RULE))
            .and_then(Value::as_str)
            == Some(rule);
        if made_by_rule {
            s.items.remove(&key);
        }
        Ok(made_by_rule)
    }

    async fn set_pin(
        &self,
        repo: &RepoKey,
        tag: &str,
        expect: Option<&str>,
        pin: Option<&Pin>,
    ) -> Result<bool, CallError> {
        let mut s = self.call("dynamodb:UpdateItem")?;
        let Some(Value::Object(item)) = s.items.get_mut(&(repo.key(), tag.to_string())) else {
            return Ok(false);
        };
        if item.get(field::DIGEST).and_then(Value::as_str) != expect {
            return Ok(false);
        }
        for f in registry::PIN_FIELDS {
            item.remove(*f);
        }
        if let Some(pin) = pin {
            item.extend(registry::pin_fields(pin));
        }
        Ok(true)
    }

    async fn release(
        &self,
        repo: &RepoKey,
        tag: &str,
        expect: &str,
        at: &str,
    ) -> Result<bool, CallError> {
        let mut s = self.call("dynamodb:UpdateItem")?;
        let Some(Value::Object(item)) = s.items.get_mut(&(repo.key(), tag.to_string())) else {
            return Ok(false);
        };
        if item.get(field::DIGEST).and_then(Value::as_str) != Some(expect) {
            return Ok(false);
        }
        for f in registry::PIN_FIELDS {
            item.remove(*f);
        }
        item.insert(field::RELEASED_AT.into(), at.into());
        Ok(true)
    }

    async fn add_history(&self, records: &[HistoryRecord]) -> Result<(), CallError> {
        let mut s = self.call("dynamodb:BatchWriteItem")?;
        s.history.extend_from_slice(records);
        Ok(())
    }
}

impl Images for Memory {
    async fn put(&self, repo: &RepoKey, step: &PutStep) -> Result<Put, PutError> {
        let mut s = self.call("ecr:PutImage").map_err(PutError::Call)?;
        let Some(r) = s.repos.get_mut(repo) else {
            return Err(PutError::Refused(
                Failure::RepositoryGone,
                format!(
                    "RepositoryNotFoundException: repository {} does not exist",
                    repo.name
                ),
            ));
        };
        let m = &step.manifest;
        let actual = sha256_digest(m.body.as_bytes());
        if actual != m.digest {
            return Err(PutError::Refused(
                Failure::DigestMismatch,
                format!(
                    "ImageDigestDoesNotMatchException: manifest digest {actual} does not match {}",
                    m.digest
                ),
            ));
        }
        let existed = r.images.contains_key(&m.digest);
        if !existed {
            if let Some(missing) = m
                .child_digests()
                .into_iter()
                .find(|c| !r.images.contains_key(c))
            {
                return Err(PutError::Refused(
                    Failure::ChildrenGone,
                    format!("ReferencedImagesNotFoundException: {missing} not found"),
                ));
            }
            if r.layers_gone.contains(&m.digest) {
                return Err(PutError::Refused(
                    Failure::LayersGone,
                    "LayersNotFoundException: layers of the image are not available".into(),
                ));
            }
        }
        let Some(tag) = &step.tag else {
            r.images
                .entry(m.digest.clone())
                .or_insert_with(|| image_of(m));
            return Ok(if existed {
                Put::AlreadyThere
            } else {
                Put::Written
            });
        };
        match r.digest_of(tag).map(String::from) {
            Some(d) if d == m.digest => return Ok(Put::AlreadyThere),
            Some(_) if r.immutable => {
                return Err(PutError::Refused(Failure::TagHeldElsewhere, format!("ImageTagAlreadyExistsException: tag {tag} already exists and cannot be overwritten because the repository is immutable")));
            }
            Some(d) => {
                // A moved tag leaves its old image untagged, not deleted.
                if let Some(im) = r.images.get_mut(&d) {
                    im.tags.remove(tag);
                }
            }
            None => {}
        }
        let pushed = r.images.values().map(|i| i.pushed_at).max().unwrap_or(0) + 1;
        let im = r.images.entry(m.digest.clone()).or_insert_with(|| Image {
            pushed_at: pushed,
            ..image_of(m)
        });
        im.manifest.get_or_insert_with(|| m.body.clone());
        im.tags.insert(tag.clone());
        Ok(Put::Written)
    }

    async fn manifest(&self, repo: &RepoKey, digest: &str) -> Result<Option<Manifest>, CallError> {
        let s = self.call("ecr:BatchGetImage")?;
        Ok(s.repos
            .get(repo)
            .and_then(|r| r.images.get(digest))
            .and_then(|im| {
                im.manifest.as_ref().map(|body| Manifest {
                    digest: digest.to_string(),
                    media_type: im.media_type.clone(),
                    body: body.clone(),
                })
            }))
    }
    async fn lookup(
        &self,
        repo: &RepoKey,
        tags: &[String],
    ) -> Result<Option<Vec<Result<Manifest, String>>>, CallError> {
        let s = self.call("ecr:BatchGetImage")?;
        let Some(r) = s.repos.get(repo) else {
            return Ok(None);
        };
        Ok(Some(
            tags.iter()
                .map(|t| r.read(&ImageRef::Tag(t.clone())))
                .collect(),
        ))
    }

    async fn list(&self, repo: &RepoKey) -> Result<Option<Vec<ImageInfo>>, CallError> {
        let s = self.call("ecr:DescribeImages")?;
        Ok(s.repos.get(repo).map(|r| {
            r.images
                .iter()
                .filter(|(_, im)| im.storage == Storage::Standard)
                .map(|(d, im)| ImageInfo {
                    digest: d.clone(),
                    tags: im.tags.iter().cloned().collect(),
                    pushed_at: im.pushed_at,
                    last_pulled: None,
                    storage: im.storage,
                    archived_at: None,
                })
                .collect()
        }))
    }

    async fn off_standard(&self, repo: &RepoKey) -> Result<Vec<(String, Storage)>, CallError> {
        let s = self.call("ecr:DescribeImages")?;
        Ok(s.repos.get(repo).map_or_else(Vec::new, |r| {
            r.images
                .iter()
                .filter(|(_, im)| im.storage != Storage::Standard)
                .map(|(d, im)| (d.clone(), im.storage))
                .collect()
        }))
    }

    async fn unarchive(&self, repo: &RepoKey, digest: &str) -> Result<(), CallError> {
        let mut s = self.call("ecr:UpdateImageStorageClass")?;
        let im = s
            .repos
            .get_mut(repo)
            .and_then(|r| r.images.get_mut(digest))
            .ok_or_else(|| {
                CallError::fatal(
                    "ecr:UpdateImageStorageClass",
                    format!("ImageNotFoundException: {digest} is not in {}", repo.name),
                )
            })?;
        if im.storage == Storage::Archived {
            // ECR answers ACTIVATING and finishes on its own, up to 20 minutes later.
            im.storage = Storage::Activating;
        }
        Ok(())
    }

    async fn untag(&self, repo: &RepoKey, tag: &str) -> Result<(), CallError> {
        let mut s = self.call("ecr:BatchDeleteImage")?;
        if let Some(r) = s.repos.get_mut(repo) {
            if let Some(d) = r.digest_of(tag).map(String::from) {
                let last = r
                    .images
                    .get_mut(&d)
                    .is_some_and(|im| im.tags.remove(tag) && im.tags.is_empty());
                if last {
                    r.images.remove(&d);
                }
            }
        }
        Ok(())
    }
}

/// The push time of an image pushed now: the event's time, or just after the newest image
/// when the event has none that reads.
fn next_push(repo: &Repo, time: &str) -> i64 {
    let newest = repo.images.values().map(|i| i.pushed_at).max().unwrap_or(0);
    crate::text::parse_time(&Value::String(time.to_string())).unwrap_or(newest + 1)
}

fn image_of(m: &Manifest) -> Image {
    Image {
        manifest: Some(m.body.clone()),
        media_type: m.media_type.clone(),
        tags: BTreeSet::new(),
        storage: Storage::Standard,
        pushed_at: 0,
    }
}

impl Pager for Memory {
    async fn publish(&self, page: &Page) -> Result<(), CallError> {
        let mut s = self.call("sns:Publish")?;
        s.pages.push(page.clone());
        Ok(())
    }
}

impl Ledger for Memory {
    async fn claim(&self, event_id: &str, now: i64) -> Result<Claim, CallError> {
        let mut s = self.call("dynamodb:PutItem")?;
        let fresh = LedgerRecord {
            claimed_at: now,
            done: false,
            pending: Vec::new(),
            redo: false,
        };
        let claim = match s.ledger.get(event_id) {
            None => Claim::Fresh,
            Some(r) if r.done => Claim::Done,
            Some(r) if !r.pending.is_empty() => {
                return Ok(Claim::PagesPending {
                    pages: r.pending.clone(),
                    redo: r.redo,
                })
            }
            Some(r) if now - r.claimed_at < CLAIM_LEASE_SECS => return Ok(Claim::Busy),
            Some(_) => Claim::Resumed,
        };
        if claim != Claim::Done {
            s.ledger.insert(event_id.to_string(), fresh);
        }
        Ok(claim)
    }

    async fn finish(
        &self,
        event_id: &str,
        now: i64,
        pending: &[Page],
        redo: bool,
    ) -> Result<(), CallError> {
        let mut s = self.call("dynamodb:PutItem")?;
        s.ledger.insert(
            event_id.to_string(),
            LedgerRecord {
                claimed_at: now,
                done: pending.is_empty() && !redo,
                pending: pending.to_vec(),
                redo,
            },
        );
        Ok(())
    }

    async fn release(&self, event_id: &str) -> Result<(), CallError> {
        let mut s = self.call("dynamodb:DeleteItem")?;
        s.ledger.remove(event_id);
        Ok(())
    }

    async fn first_seen(&self, key: &str, now: i64) -> Result<i64, CallError> {
        let mut s = self.call("dynamodb:UpdateItem")?;
        Ok(*s.first_seen.entry(key.to_string()).or_insert(now))
    }
}

impl Trail for Memory {
    async fn tag_changes(
        &self,
        account: &str,
        region: &str,
        since: i64,
    ) -> Result<Vec<Incident>, CallError> {
        let s = self.call("cloudtrail:LookupEvents")?;
        let mut found: Vec<Incident> = s
            .trail
            .iter()
            .filter(|i| i.repo.account == account && i.repo.region == region)
            .filter(|i| {
                crate::text::parse_time(&Value::String(i.time.clone())).is_some_and(|t| t >= since)
            })
            .cloned()
            .collect();
        found.reverse();
        Ok(found)
    }
}
