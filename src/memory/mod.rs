//! The embedded world: ECR, the registry table, the ledger, SNS and CloudTrail's history in
//! memory. Replay, every command's `--state` and the service's tests run on it. It answers
//! like AWS does: digests are the sha256 of the manifest bytes, moving a tag leaves the old
//! image untagged, an immutable tag held elsewhere is refused.

mod console;
mod images;
use images::next_push;
mod scenario;
mod table;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

pub use scenario::{Scenario, ScenarioError};

use crate::error::CallError;
use crate::events::{Change, Incident};
use crate::guard::{Failure, PutStep};
use crate::page::Page;
use crate::ports::{
    Claim, HistoryRecord, Images, Ledger, Pager, PinKey, Put, PutError, Registry, Trail,
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerRecord {
    /// When claimed.
    pub claimed_at: i64,
    /// Until when the claim (or the lease of the pending pages) holds.
    pub lease_until: i64,
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
    /// When each repository was last reconciled.
    pub reconciled: BTreeMap<String, i64>,
    /// Repositories noted as holding retired guard tags.
    pub guard_tag_repos: BTreeSet<String>,
    /// Reconcile pages SNS did not take, with their problems' keys, by key.
    pub unsent: BTreeMap<String, (Page, Vec<String>)>,
    /// CloudTrail's history: the changes made with a known caller, oldest first.
    pub trail: Vec<Incident>,
    /// The guard's own role, as the scenario names it (kept when the world is saved).
    pub guard_role_arn: Option<String>,
    /// How long each call takes, to model AWS's round trips in benchmarks.
    pub latency: Option<std::time::Duration>,
    /// With a latency set: how many calls of each operation are in flight now, and the most
    /// there ever were at once (tests hold the guard's concurrency bounds to it).
    pub in_flight: BTreeMap<String, (usize, usize)>,
    /// The secret of the world's pin key; `None`: [`EMBEDDED_PIN_KEY`]. Tests set another to
    /// stand for a pin sealed by another deployment.
    pub pin_key: Option<Vec<u8>>,
}

/// The embedded world's own pin key. It is no secret (it is in every copy of the binary):
/// it seals pins only in the embedded world, which guards nothing real.
pub const EMBEDDED_PIN_KEY: &[u8; 32] = b"ecr-tag-guard embedded pin key!!";

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

    /// Records a call, answering with the fault set for it, if any, after the world's
    /// modelled latency (none unless a benchmark sets one).
    async fn call(&self, op: &str) -> Result<MutexGuard<'_, State>, CallError> {
        let latency = self.state().latency;
        if let Some(d) = latency {
            {
                let mut s = self.state();
                let (now, peak) = s.in_flight.entry(op.to_string()).or_default();
                *now += 1;
                *peak = (*peak).max(*now);
            }
            tokio::time::sleep(d).await;
            if let Some((now, _)) = self.state().in_flight.get_mut(op) {
                *now -= 1;
            }
        }
        let mut s = self.state();
        s.calls.push(op.to_string());
        match s.faults.remove(op) {
            Some(e) => Err(e),
            None => Ok(s),
        }
    }

    /// `BatchGetImage` of `ids` in `repo`: each image's manifest or failure code; `None` when
    /// the repository does not exist.
    async fn read_images(
        &self,
        repo: &RepoKey,
        ids: &[ImageRef],
    ) -> Result<Option<Vec<Result<Manifest, String>>>, CallError> {
        let s = self.call("ecr:BatchGetImage").await?;
        Ok(s.repos.get(repo).map(|r| {
            // One pass over the images for every tag asked (as ECR answers a batch at once).
            let tags: HashMap<&str, &str> = r
                .images
                .iter()
                .flat_map(|(d, im)| im.tags.iter().map(move |t| (t.as_str(), d.as_str())))
                .collect();
            ids.iter()
                .map(|id| match id {
                    ImageRef::Tag(t) => match tags.get(t.as_str()) {
                        Some(d) => r.read(&ImageRef::Digest((*d).to_string())),
                        None => Err("ImageNotFound".to_string()),
                    },
                    ImageRef::Digest(_) => r.read(id),
                })
                .collect()
        }))
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

/// HMAC-SHA-256 of `message` under `key` (`None`: [`EMBEDDED_PIN_KEY`]).
fn hmac_sha256(key: Option<&[u8]>, message: &[u8]) -> Vec<u8> {
    use hmac::Mac as _;
    let key = key.unwrap_or(EMBEDDED_PIN_KEY);
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// `item` with its pin sealed by [`EMBEDDED_PIN_KEY`], as if the guard had pinned it: for
/// tests, benchmarks and hand-made scenarios of the embedded world (whose key is no secret).
/// An item that is not a valid pinned item comes back as it was.
pub fn seal_item(item: &Value) -> Value {
    let Ok(entry) = registry::parse_item(item) else {
        return item.clone();
    };
    let (Some(pin), Value::Object(mut out)) = (entry.pin, item.clone()) else {
        return item.clone();
    };
    let mac = hmac_sha256(
        None,
        &registry::seal::message(&entry.repo, &entry.tag, &pin),
    );
    out.insert(
        field::PIN_MAC.into(),
        Value::String(registry::seal::to_hex(&mac)),
    );
    Value::Object(out)
}

impl Memory {
    /// HMAC-SHA-256 of `message` under the world's pin key.
    fn mac(&self, message: &[u8]) -> Vec<u8> {
        let key = self.state().pin_key.clone();
        hmac_sha256(key.as_deref(), message)
    }
}

impl PinKey for Memory {
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CallError> {
        drop(self.call("kms:GenerateMac").await?);
        Ok(self.mac(message))
    }

    async fn verify(&self, message: &[u8], mac: &[u8]) -> Result<bool, CallError> {
        drop(self.call("kms:VerifyMac").await?);
        // Constant-time, as KMS compares.
        let want = self.mac(message);
        Ok(want.len() == mac.len() && want.iter().zip(mac).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0)
    }
}

impl Pager for Memory {
    async fn publish(&self, page: &Page) -> Result<(), CallError> {
        let mut s = self.call("sns:Publish").await?;
        s.pages.push(page.clone());
        Ok(())
    }
}

impl Ledger for Memory {
    async fn claim(&self, event_id: &str, now: i64, lease_until: i64) -> Result<Claim, CallError> {
        let mut s = self.call("dynamodb:UpdateItem").await?;
        let claim = match s.ledger.get_mut(event_id) {
            None => Claim::Fresh,
            Some(r) if r.done => return Ok(Claim::Done),
            Some(r) if r.lease_until >= now => return Ok(Claim::Busy),
            // Pending pages stay on the record, leased to this attempt until sent.
            Some(r) if !r.pending.is_empty() || r.redo => {
                r.claimed_at = now;
                r.lease_until = lease_until;
                return Ok(Claim::PagesPending {
                    pages: r.pending.clone(),
                    redo: r.redo,
                });
            }
            Some(_) => Claim::Resumed,
        };
        s.ledger.insert(
            event_id.to_string(),
            LedgerRecord {
                claimed_at: now,
                lease_until,
                ..LedgerRecord::default()
            },
        );
        Ok(claim)
    }

    async fn finish(
        &self,
        event_id: &str,
        now: i64,
        pending: &[Page],
        redo: bool,
    ) -> Result<(), CallError> {
        let mut s = self.call("dynamodb:PutItem").await?;
        s.ledger.insert(
            event_id.to_string(),
            LedgerRecord {
                claimed_at: now,
                lease_until: 0,
                done: pending.is_empty() && !redo,
                pending: pending.to_vec(),
                redo,
            },
        );
        Ok(())
    }

    async fn release(&self, event_id: &str) -> Result<(), CallError> {
        let mut s = self.call("dynamodb:DeleteItem").await?;
        s.ledger.remove(event_id);
        Ok(())
    }

    async fn first_seen(&self, key: &str, now: i64) -> Result<i64, CallError> {
        let mut s = self.call("dynamodb:UpdateItem").await?;
        Ok(*s.first_seen.entry(key.to_string()).or_insert(now))
    }

    async fn reconciled(&self) -> Result<Vec<(String, i64)>, CallError> {
        let s = self.call("dynamodb:Query").await?;
        Ok(s.reconciled.iter().map(|(k, v)| (k.clone(), *v)).collect())
    }

    async fn mark_reconciled(&self, repos: &[String], at: i64) -> Result<(), CallError> {
        let mut s = self.call("dynamodb:BatchWriteItem").await?;
        for r in repos {
            s.reconciled.insert(r.clone(), at);
        }
        Ok(())
    }

    async fn note_guard_tags(&self, repo: &str, held: bool) -> Result<(), CallError> {
        let op = if held {
            "dynamodb:PutItem"
        } else {
            "dynamodb:DeleteItem"
        };
        let mut s = self.call(op).await?;
        if held {
            s.guard_tag_repos.insert(repo.to_string());
        } else {
            s.guard_tag_repos.remove(repo);
        }
        Ok(())
    }

    async fn guard_tag_repositories(&self) -> Result<Vec<String>, CallError> {
        let s = self.call("dynamodb:Query").await?;
        Ok(s.guard_tag_repos.iter().cloned().collect())
    }

    async fn keep_unsent(
        &self,
        key: &str,
        page: &Page,
        problems: &[String],
    ) -> Result<(), CallError> {
        let mut s = self.call("dynamodb:PutItem").await?;
        s.unsent
            .insert(key.to_string(), (page.clone(), problems.to_vec()));
        Ok(())
    }

    async fn unsent(&self) -> Result<Vec<(String, Page, Vec<String>)>, CallError> {
        let s = self.call("dynamodb:Query").await?;
        Ok(s.unsent
            .iter()
            .map(|(k, (p, keys))| (k.clone(), p.clone(), keys.clone()))
            .collect())
    }

    async fn drop_unsent(&self, key: &str) -> Result<(), CallError> {
        let mut s = self.call("dynamodb:DeleteItem").await?;
        s.unsent.remove(key);
        Ok(())
    }
}

impl Trail for Memory {
    async fn tag_changes(
        &self,
        account: &str,
        region: &str,
        since: i64,
    ) -> Result<Vec<Incident>, CallError> {
        let s = self.call("cloudtrail:LookupEvents").await?;
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
