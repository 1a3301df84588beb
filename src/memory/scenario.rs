//! The scenario file: the starting state of the embedded world for a replay, and the format
//! `--save-state` writes.
//!
//! ```json
//! {
//!   "guard_role_arn": "arn:aws:iam::123456789012:role/ecr-tag-guard",
//!   "repositories": [
//!     { "repository": "123456789012/eu-west-1/web", "immutable": false,
//!       "images": [ { "manifest": "{...}", "media_type": "application/vnd.oci.image.manifest.v1+json",
//!                     "tags": ["prod.latest"] } ],
//!       "layers_gone": [] }
//!   ],
//!   "registry": [ { "repository": "123456789012/eu-west-1/web", "tag": "prod.latest", ... } ]
//! }
//! ```
//!
//! An image's digest is the sha256 of its `manifest` text (an object is written out compactly
//! first). A registry item whose tag sits on its pinned digest in the scenario's images is
//! sealed with the embedded world's pin key as the world is built — as registration seals a
//! pin ECR confirms; any other pin stays as written, and the guard never pushes from it. `layers_gone` lists digests whose layers ECR has cleaned up, so restoring them fails
//! as it would on AWS. An image's `storage` (`archived`, `activating`) stands for ECR's archive
//! storage class.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Image, Repo, State};
use crate::registry::image::Storage;
use crate::registry::{self, field, RepoKey};
use crate::text::sha256_digest;

/// The scenario file, as written.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The guard's own role, so its own calls in the events are recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard_role_arn: Option<String>,
    /// ECR repositories and their images.
    #[serde(default)]
    pub repositories: Vec<ScenarioRepo>,
    /// Registry items, in their plain-JSON form.
    #[serde(default)]
    pub registry: Vec<Value>,
    /// The tags' history, as the guard and the commands recorded it (oldest first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<crate::ports::HistoryRecord>,
}

/// One repository in a scenario.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioRepo {
    /// `ACCOUNT/REGION/NAME`.
    pub repository: String,
    /// Immutable tags.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub immutable: bool,
    /// Its images.
    #[serde(default)]
    pub images: Vec<ScenarioImage>,
    /// Digests whose layers are gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers_gone: Vec<String>,
    /// Its lifecycle policy: the policy JSON, or its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_policy: Option<Value>,
}

/// One image in a scenario.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioImage {
    /// The manifest: its exact text, or a JSON object written out compactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Value>,
    /// Only for an image known by digest alone (no manifest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// When it was pushed: RFC 3339 or epoch seconds (default: the epoch; ties go by digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_at: Option<Value>,
    /// Where ECR keeps it: `standard` (the default), `archived` or `activating`.
    #[serde(default, skip_serializing_if = "is_standard")]
    pub storage: Storage,
}

fn is_standard(s: &Storage) -> bool {
    *s == Storage::Standard
}

/// A scenario that cannot be loaded; it names the file and the problem.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct ScenarioError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

impl Scenario {
    /// Reads a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let err = |problem: String| ScenarioError {
            path: path.display().to_string(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| err(format!("not a scenario: {e}")))
    }

    /// Builds the embedded world's state. Registry items are kept as written (invalid ones
    /// too: the guard reports them as it would in DynamoDB); everything else must be right.
    pub fn into_state(self, path: &str) -> Result<State, ScenarioError> {
        let err = |problem: String| ScenarioError {
            path: path.to_string(),
            problem,
        };
        let mut state = State::default();
        for (i, r) in self.repositories.into_iter().enumerate() {
            let key = RepoKey::parse(&r.repository)
                .map_err(|e| err(format!("repositories[{i}]: {e}")))?;
            let mut repo = Repo {
                immutable: r.immutable,
                lifecycle_policy: r.lifecycle_policy.map(|p| match p {
                    Value::String(text) => text,
                    other => other.to_string(),
                }),
                ..Repo::default()
            };
            repo.layers_gone.extend(r.layers_gone);
            for (j, im) in r.images.into_iter().enumerate() {
                let at = format!("repositories[{i}].images[{j}]");
                let (digest, manifest) = match (im.manifest, im.digest) {
                    (Some(Value::String(s)), _) => (sha256_digest(s.as_bytes()), Some(s)),
                    (Some(v @ Value::Object(_)), _) => {
                        let s = v.to_string();
                        (sha256_digest(s.as_bytes()), Some(s))
                    }
                    (None, Some(d)) if crate::text::is_digest(&d) => (d, None),
                    _ => {
                        return Err(err(format!(
                            "{at}: needs a `manifest` (text or object) or a sha256 `digest`"
                        )))
                    }
                };
                for t in &im.tags {
                    if !registry::is_tag(t) {
                        return Err(err(format!("{at}: `{t}` is not a valid tag")));
                    }
                    if repo.digest_of(t).is_some() {
                        return Err(err(format!("{at}: tag `{t}` is on two images")));
                    }
                }
                let pushed = match &im.pushed_at {
                    None => 0,
                    Some(t) => crate::text::parse_time(t).ok_or_else(|| {
                        err(format!(
                            "{at}: pushed_at {t} is not RFC 3339 or epoch seconds"
                        ))
                    })?,
                };
                repo.images.insert(
                    digest,
                    Image {
                        manifest,
                        media_type: im.media_type,
                        tags: im.tags.into_iter().collect(),
                        storage: im.storage,
                        pushed_at: pushed,
                    },
                );
            }
            state.repos.insert(key, repo);
        }
        for (i, item) in self.registry.into_iter().enumerate() {
            let get = |f: &str| item.get(f).and_then(Value::as_str).map(String::from);
            let (Some(pk), Some(tag)) = (get(field::REPOSITORY), get(field::TAG)) else {
                return Err(err(format!(
                    "registry[{i}]: needs `repository` and `tag` strings"
                )));
            };
            if state
                .items
                .insert((pk.clone(), tag.clone()), item)
                .is_some()
            {
                return Err(err(format!("registry[{i}]: {pk}:{tag} is listed twice")));
            }
        }
        seal_confirmed(&mut state);
        state.history = self.history;
        state.guard_role_arn = self.guard_role_arn;
        Ok(state)
    }

    /// The scenario that describes `state` (for `--save-state`).
    pub fn from_state(state: &State, guard_role_arn: Option<String>) -> Scenario {
        let repositories = state
            .repos
            .iter()
            .map(|(key, r)| ScenarioRepo {
                repository: key.key(),
                immutable: r.immutable,
                images: r
                    .images
                    .iter()
                    .map(|(d, im)| ScenarioImage {
                        digest: im.manifest.is_none().then(|| d.clone()),
                        manifest: im.manifest.clone().map(Value::String),
                        media_type: im.media_type.clone(),
                        tags: im.tags.iter().cloned().collect(),
                        storage: im.storage,
                        pushed_at: (im.pushed_at != 0).then(|| Value::from(im.pushed_at)),
                    })
                    .collect(),
                layers_gone: r.layers_gone.iter().cloned().collect(),
                lifecycle_policy: r
                    .lifecycle_policy
                    .clone()
                    .map(|text| serde_json::from_str(&text).unwrap_or(Value::String(text))),
            })
            .collect();
        Scenario {
            guard_role_arn,
            repositories,
            registry: state.items.values().cloned().collect(),
            history: state.history.clone(),
        }
    }
}

/// Seals every item pin whose tag sits on the pinned digest in `state`'s images (with the
/// embedded key): the world starts as if the guard had registered its items.
fn seal_confirmed(state: &mut State) {
    let key = state.pin_key.clone();
    let mut seals = Vec::new();
    for (k, item) in &state.items {
        let Ok(entry) = registry::parse_item(item) else {
            continue;
        };
        let (Some(pin), Some(repo)) = (&entry.pin, state.repos.get(&entry.repo)) else {
            continue;
        };
        if repo.digest_of(&entry.tag) == Some(pin.digest.as_str()) {
            let message = registry::seal::message(&entry.repo, &entry.tag, pin);
            let mac = super::hmac_sha256(key.as_deref(), &message);
            seals.push((k.clone(), registry::seal::to_hex(&mac)));
        }
    }
    for (k, mac) in seals {
        if let Some(Value::Object(item)) = state.items.get_mut(&k) {
            item.insert(field::PIN_MAC.into(), Value::String(mac));
        }
    }
}
