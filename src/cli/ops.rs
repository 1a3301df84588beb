//! What the commands work with: AWS (the SDK clients) or the embedded world (`--state FILE`).
//! [`Ops`] is itself a [`Console`] and an [`Images`] that hands each call to the backend, so
//! every command is written once and runs on either.

use anyhow::{anyhow, bail};
use serde_json::Value;

use crate::aws::admin::Admin;
use crate::aws::EcrImages;
use crate::error::CallError;
use crate::guard::{PutStep, Settings};
use crate::memory::Memory;
use crate::ports::{Console, HistoryRecord, Images, PinKey, Put, PutError};
use crate::registry::image::ImageInfo;
use crate::registry::image::Storage;
use crate::registry::{self, ImageRef, Manifest, RepoKey};
use crate::service::trust::{distrust, seal_pin};
use crate::text::clean;

/// Where the commands' calls go.
#[derive(Clone, Debug)]
pub enum Backend {
    /// AWS (or the endpoint `AWS_ENDPOINT_URL` names).
    Aws(Box<Admin>),
    /// The embedded world a scenario file describes.
    Embedded(Memory),
}

/// What the commands work with.
#[derive(Clone, Debug)]
pub struct Ops {
    /// Where the calls go.
    pub backend: Backend,
    /// The caller's region, for plain repository names.
    pub region: String,
    /// The keep-alive prefix and the scope (`TAG_GUARD_ACCOUNTS`, `TAG_GUARD_REGIONS`) the
    /// commands apply when set.
    pub settings: Settings,
}

/// Runs `$body` with `$b` bound to the backend's port of that kind: the AWS adapter built
/// from the admin clients, or the embedded world.
macro_rules! on {
    ($ops:expr, console: $b:ident => $body:expr) => {
        match &$ops.backend {
            Backend::Aws(admin) => {
                let $b: &Admin = admin;
                $body
            }
            Backend::Embedded(world) => {
                let $b = world;
                $body
            }
        }
    };
    ($ops:expr, images: $b:ident => $body:expr) => {
        match &$ops.backend {
            Backend::Aws(admin) => {
                let images = EcrImages {
                    clients: admin.ecr.clone(),
                };
                let $b = &images;
                $body
            }
            Backend::Embedded(world) => {
                let $b = world;
                $body
            }
        }
    };
}

impl Ops {
    /// `pin` of `repo`:`tag` sealed with the pin key (KMS against AWS): only for a digest the
    /// command has just seen under the tag. An error names what is missing when the key
    /// cannot be used.
    pub async fn seal(
        &self,
        repo: &RepoKey,
        tag: &str,
        pin: registry::Pin,
    ) -> anyhow::Result<registry::Pin> {
        let sealed = match &self.backend {
            Backend::Aws(admin) => seal_pin(&admin.kms, repo, tag, pin).await,
            Backend::Embedded(world) => seal_pin(world, repo, tag, pin).await,
        };
        sealed.map_err(|e| anyhow!("cannot seal the pin of {repo}:{tag}: {e}"))
    }

    /// Why the guard would not push from `pin` of `repo`:`tag` (`None`: its seal holds).
    pub async fn distrust(
        &self,
        repo: &RepoKey,
        tag: &str,
        pin: &registry::Pin,
    ) -> Result<Option<String>, CallError> {
        match &self.backend {
            Backend::Aws(admin) => distrust(&admin.kms, repo, tag, pin).await,
            Backend::Embedded(world) => distrust(world, repo, tag, pin).await,
        }
    }

    /// Reads `REPO:TAG`, where REPO is `ACCOUNT/REGION/NAME` or a plain name in the
    /// caller's account and region.
    pub async fn target(&self, target: &str) -> anyhow::Result<(RepoKey, String)> {
        let Some((repo, tag)) = target.rsplit_once(':') else {
            bail!("`{}` is not REPO:TAG", clean(target, 300));
        };
        if !registry::is_tag(tag) {
            bail!("`{}` is not a valid ECR tag", clean(tag, 130));
        }
        Ok((self.repo(repo).await?, tag.to_string()))
    }

    /// Reads `ACCOUNT/REGION/NAME`, or a plain name in the caller's account and region.
    pub async fn repo(&self, repo: &str) -> anyhow::Result<RepoKey> {
        let parts: Vec<&str> = repo.splitn(3, '/').collect();
        let qualified = parts.len() == 3
            && parts[0].len() == 12
            && parts[0].bytes().all(|b| b.is_ascii_digit());
        if qualified {
            return RepoKey::parse(repo).map_err(|e| anyhow!(e));
        }
        if !registry::is_repository_name(repo) {
            bail!("`{}` is not a valid ECR repository name", clean(repo, 300));
        }
        let (account, _) = self.caller().await.ok_or_else(|| {
            anyhow!("cannot tell the caller's account (sts:GetCallerIdentity failed): name the repository as ACCOUNT/REGION/NAME")
        })?;
        Ok(RepoKey {
            account,
            region: self.region.clone(),
            name: repo.to_string(),
        })
    }

    /// True when a registry can be read: on the embedded world always, against AWS when a
    /// table is named.
    pub fn has_registry(&self) -> bool {
        match &self.backend {
            Backend::Aws(admin) => !admin.table.is_empty(),
            Backend::Embedded(_) => true,
        }
    }

    /// The AWS clients, for what only makes sense against AWS (`registry init`, `drill`).
    pub fn aws(&self, what: &str) -> anyhow::Result<&Admin> {
        match &self.backend {
            Backend::Aws(admin) => Ok(admin),
            Backend::Embedded(_) => {
                bail!("{what} works against AWS only: it does not run on the embedded world (--state)")
            }
        }
    }
}

impl Console for Ops {
    async fn put_item(&self, item: &Value, replace: bool) -> Result<bool, CallError> {
        on!(self, console: b => b.put_item(item, replace).await)
    }

    async fn delete_item(&self, partition: &str, tag: &str) -> Result<bool, CallError> {
        on!(self, console: b => b.delete_item(partition, tag).await)
    }

    async fn replace_item(&self, item: &Value, expect: Option<&str>) -> Result<bool, CallError> {
        on!(self, console: b => b.replace_item(item, expect).await)
    }

    async fn delete_pinned(
        &self,
        partition: &str,
        tag: &str,
        expect: Option<&str>,
    ) -> Result<bool, CallError> {
        on!(self, console: b => b.delete_pinned(partition, tag, expect).await)
    }

    async fn add_history(&self, records: &[HistoryRecord]) -> Result<(), CallError> {
        on!(self, console: b => Console::add_history(b, records).await)
    }

    async fn note_guard_tags(&self, repo: &str) -> Result<(), CallError> {
        on!(self, console: b => Console::note_guard_tags(b, repo).await)
    }

    async fn guard_tag_repositories(&self) -> Result<Vec<String>, CallError> {
        on!(self, console: b => Console::guard_tag_repositories(b).await)
    }

    async fn partition(&self, key: &str, newest_first: bool) -> Result<Vec<Value>, CallError> {
        on!(self, console: b => b.partition(key, newest_first).await)
    }

    async fn registry_items(&self) -> Result<Vec<Value>, CallError> {
        on!(self, console: b => b.registry_items().await)
    }

    async fn images(
        &self,
        repo: &RepoKey,
        ids: &[ImageRef],
    ) -> Result<Option<Vec<Result<Manifest, String>>>, CallError> {
        on!(self, console: b => Console::images(b, repo, ids).await)
    }

    async fn describe_images(&self, repo: &RepoKey) -> Result<Vec<ImageInfo>, CallError> {
        on!(self, console: b => b.describe_images(repo).await)
    }

    async fn lifecycle_policy(&self, repo: &RepoKey) -> Result<Option<String>, CallError> {
        on!(self, console: b => b.lifecycle_policy(repo).await)
    }

    async fn put_lifecycle_policy(&self, repo: &RepoKey, text: &str) -> Result<(), CallError> {
        on!(self, console: b => b.put_lifecycle_policy(repo, text).await)
    }

    async fn caller(&self) -> Option<(String, String)> {
        on!(self, console: b => b.caller().await)
    }
}

impl Images for Ops {
    async fn put(&self, repo: &RepoKey, step: &PutStep) -> Result<Put, PutError> {
        on!(self, images: b => b.put(repo, step).await)
    }

    async fn manifest(&self, repo: &RepoKey, digest: &str) -> Result<Option<Manifest>, CallError> {
        on!(self, images: b => b.manifest(repo, digest).await)
    }

    async fn untag(&self, repo: &RepoKey, tag: &str) -> Result<(), CallError> {
        on!(self, images: b => b.untag(repo, tag).await)
    }

    async fn lookup(
        &self,
        repo: &RepoKey,
        tags: &[String],
    ) -> Result<Option<Vec<Result<Manifest, String>>>, CallError> {
        on!(self, images: b => b.lookup(repo, tags).await)
    }

    async fn off_standard(&self, repo: &RepoKey) -> Result<Vec<(String, Storage)>, CallError> {
        on!(self, images: b => b.off_standard(repo).await)
    }

    async fn list(&self, repo: &RepoKey) -> Result<Option<Vec<ImageInfo>>, CallError> {
        on!(self, images: b => b.list(repo).await)
    }

    async fn unarchive(&self, repo: &RepoKey, digest: &str) -> Result<(), CallError> {
        on!(self, images: b => b.unarchive(repo, digest).await)
    }
}

impl PinKey for Ops {
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CallError> {
        match &self.backend {
            Backend::Aws(admin) => admin.kms.sign(message).await,
            Backend::Embedded(world) => world.sign(message).await,
        }
    }

    async fn verify(&self, message: &[u8], mac: &[u8]) -> Result<bool, CallError> {
        match &self.backend {
            Backend::Aws(admin) => admin.kms.verify(message, mac).await,
            Backend::Embedded(world) => world.verify(message, mac).await,
        }
    }
}
