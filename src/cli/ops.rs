//! What the commands work with: AWS (the SDK clients) or the embedded world (`--state FILE`).
//! The backend is chosen once, at the top ([`Backend`]); each command is generic over it
//! ([`Ops`]), so it is written once and runs on either.

use std::ops::Deref;

use anyhow::{anyhow, bail};

use crate::aws::admin::Admin;
use crate::error::CallError;
use crate::guard::Scope;
use crate::memory::Memory;
use crate::ports::{Identity, Images, PinKey};
use crate::registry::image::ImageInfo;
use crate::registry::{self, RepoKey};
use crate::service::trust::{distrust, seal_pin};
use crate::service::Tuning;
use crate::text::clean;

/// Where the commands' calls go, as chosen from the command line.
#[derive(Clone, Debug)]
pub enum Backend {
    /// AWS (or the endpoint `AWS_ENDPOINT_URL` names).
    Aws(Box<Admin>),
    /// The embedded world a scenario file describes.
    Embedded(Memory),
}

/// The chosen backend with what every command needs beside it.
#[derive(Clone, Debug)]
pub struct Chosen {
    /// Where the calls go.
    pub backend: Backend,
    /// The caller's region, for plain repository names.
    pub region: String,
    /// The keep-alive prefix, the guard's role and the scope (`TAG_GUARD_ACCOUNTS`,
    /// `TAG_GUARD_REGIONS`) the commands apply when set.
    pub scope: Scope,
    /// How calls are paced (`TAG_GUARD_CALL_CONCURRENCY`, ...).
    pub tuning: Tuning,
}

impl Chosen {
    /// The commands' view of an AWS backend; for what only makes sense against AWS
    /// (`registry init`, `drill`), an error on the embedded world.
    pub fn aws(self, what: &str) -> anyhow::Result<Ops<Admin>> {
        match self.backend {
            Backend::Aws(admin) => Ok(Ops {
                backend: *admin,
                region: self.region,
                scope: self.scope,
                tuning: self.tuning,
            }),
            Backend::Embedded(_) => {
                bail!("{what} works against AWS only: it does not run on the embedded world (--state)")
            }
        }
    }
}

/// What the commands work with: one backend `B` (AWS or the embedded world), the caller's
/// region and the settings. It dereferences to the backend, so a command calls the ports on
/// it directly.
#[derive(Clone, Debug)]
pub struct Ops<B> {
    /// Where the calls go.
    pub backend: B,
    /// The caller's region, for plain repository names.
    pub region: String,
    /// The keep-alive prefix, the guard's role and the scope the commands apply when set.
    pub scope: Scope,
    /// How calls are paced.
    pub tuning: Tuning,
}

impl<B> Ops<B> {
    /// The settings the commands were started with, for a handler built on this backend.
    pub fn settings(&self) -> crate::config::Settings {
        crate::config::Settings {
            scope: self.scope.clone(),
            tuning: self.tuning.clone(),
        }
    }
}

impl<B> Deref for Ops<B> {
    type Target = B;

    fn deref(&self) -> &B {
        &self.backend
    }
}

impl<B: PinKey> Ops<B> {
    /// `pin` of `repo`:`tag` sealed with the pin key (KMS against AWS): only for a digest the
    /// command has just seen under the tag. An error names what is missing when the key
    /// cannot be used.
    pub async fn seal(
        &self,
        repo: &RepoKey,
        tag: &str,
        pin: registry::Pin,
    ) -> anyhow::Result<registry::Pin> {
        seal_pin(&self.backend, repo, tag, pin)
            .await
            .map_err(|e| anyhow!("cannot seal the pin of {repo}:{tag}: {e}"))
    }

    /// Why the guard would not push from `pin` of `repo`:`tag` (`None`: its seal holds).
    pub async fn distrust(
        &self,
        repo: &RepoKey,
        tag: &str,
        pin: &registry::Pin,
    ) -> Result<Option<String>, CallError> {
        distrust(&self.backend, repo, tag, pin).await
    }
}

impl<B: Images> Ops<B> {
    /// Every image of `repo` in any storage class; an error when the repository does not
    /// exist.
    pub async fn all_images(&self, repo: &RepoKey) -> Result<Vec<ImageInfo>, CallError> {
        self.backend.list_all(repo).await?.ok_or_else(|| {
            CallError::fatal(
                "ecr:DescribeImages",
                format!(
                    "RepositoryNotFoundException: repository {} does not exist",
                    repo.name
                ),
            )
        })
    }
}

impl<B: Identity> Ops<B> {
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
        let (account, _) = self.backend.caller().await.ok_or_else(|| {
            anyhow!("cannot tell the caller's account (sts:GetCallerIdentity failed): name the repository as ACCOUNT/REGION/NAME")
        })?;
        Ok(RepoKey {
            account,
            region: self.region.clone(),
            name: repo.to_string(),
        })
    }
}
