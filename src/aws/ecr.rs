//! ECR: `PutImage`, `BatchGetImage`, `BatchDeleteImage`, `DescribeImages` (storage class) and
//! `UpdateImageStorageClass`.

use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_sdk_ecr::types::{
    DescribeImagesFilter, ImageIdentifier, ImageStatus, ImageStatusFilter, TargetStorageClass,
};
use aws_sdk_ecr::Client;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{call_error, MEDIA_TYPES};
use crate::error::CallError;
use crate::guard::{Failure, PutStep};
use crate::ports::{Images, Put, PutError};
use crate::registry::image::ImageInfo;
use crate::registry::image::Storage;
use crate::registry::{ImageRef, Manifest, RepoKey};

/// ECR clients by region, each made on first use from one base client's configuration: the
/// one place that chooses where a repository is reached. Every ECR call the guard and its
/// commands make goes to the repository's own region (an item's `ACCOUNT/REGION/NAME`), never
/// to the region the process happens to run in.
#[derive(Clone, Debug)]
pub struct EcrClients {
    base: Client,
    /// Clients by (account reached by role, or "" for the guard's own, region).
    by_region: Arc<Mutex<HashMap<(String, String), Client>>>,
    /// Member accounts reached by role, if the deployment names one.
    member: Option<super::MemberRoles>,
}

impl EcrClients {
    /// Clients that start from `base` (its credentials, endpoint, retry settings and
    /// interceptors), changing only the region.
    pub fn new(base: Client) -> EcrClients {
        EcrClients {
            base,
            by_region: Arc::default(),
            member: None,
        }
    }

    /// The same clients, reaching every account but the guard's own through `roles`.
    pub fn with_member_roles(mut self, roles: Option<super::MemberRoles>) -> EcrClients {
        self.member = roles;
        self
    }

    /// The client for `repo`'s account and region.
    pub fn for_repo(&self, repo: &RepoKey) -> Client {
        let assumed = self
            .member
            .as_ref()
            .and_then(|m| m.credentials_for(&repo.account));
        let home_region =
            self.base.config().region().map(|r| r.as_ref()) == Some(repo.region.as_str());
        if assumed.is_none() && home_region {
            return self.base.clone();
        }
        let account = if assumed.is_some() {
            repo.account.clone()
        } else {
            String::new()
        };
        let mut map = self.by_region.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((account, repo.region.clone()))
            .or_insert_with(|| {
                let mut conf = self
                    .base
                    .config()
                    .to_builder()
                    .region(aws_sdk_ecr::config::Region::new(repo.region.clone()));
                if let Some(creds) = assumed {
                    conf = conf.credentials_provider(creds);
                }
                Client::from_conf(conf.build())
            })
            .clone()
    }
}

/// ECR through the SDK. Every call names the registry (account) of the repository and goes
/// to its region.
#[derive(Clone, Debug)]
pub struct EcrImages {
    /// The clients, by region.
    pub clients: EcrClients,
}

impl EcrImages {
    /// ECR reached through `client`'s configuration, in each repository's own region.
    pub fn new(client: Client) -> EcrImages {
        EcrImages {
            clients: EcrClients::new(client),
        }
    }
}

impl Images for EcrImages {
    async fn put(&self, repo: &RepoKey, step: &PutStep) -> Result<Put, PutError> {
        let m = &step.manifest;
        let result = self
            .clients
            .for_repo(repo)
            .put_image()
            .registry_id(&repo.account)
            .repository_name(&repo.name)
            .image_manifest(&m.body)
            .set_image_manifest_media_type(m.media_type.clone())
            .image_digest(&m.digest)
            .set_image_tag(step.tag.clone())
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Put::Written),
            Err(e) => e,
        };
        let message = format!(
            "{}: {}",
            err.code().unwrap_or("error"),
            err.message().unwrap_or("")
        );
        let refused = |f: Failure| Err(PutError::Refused(f, message.clone()));
        match err.code() {
            Some("ImageAlreadyExistsException") => Ok(Put::AlreadyThere),
            Some("LayersNotFoundException") => refused(Failure::LayersGone),
            Some("ReferencedImagesNotFoundException") => refused(Failure::ChildrenGone),
            Some("ImageTagAlreadyExistsException") => refused(Failure::TagHeldElsewhere),
            Some("RepositoryNotFoundException") => refused(Failure::RepositoryGone),
            Some("ImageDigestDoesNotMatchException") => refused(Failure::DigestMismatch),
            _ => {
                let c = call_error("ecr:PutImage", &err);
                if c.retryable {
                    Err(PutError::Call(c))
                } else {
                    Err(PutError::Refused(Failure::Other, c.message))
                }
            }
        }
    }

    async fn manifest(&self, repo: &RepoKey, digest: &str) -> Result<Option<Manifest>, CallError> {
        let result = self
            .clients
            .for_repo(repo)
            .batch_get_image()
            .registry_id(&repo.account)
            .repository_name(&repo.name)
            .image_ids(ImageIdentifier::builder().image_digest(digest).build())
            .set_accepted_media_types(Some(MEDIA_TYPES.iter().map(|s| s.to_string()).collect()))
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) if e.code() == Some("RepositoryNotFoundException") => return Ok(None),
            Err(e) => return Err(call_error("ecr:BatchGetImage", &e)),
        };
        Ok(out.images().iter().find_map(|im| {
            let same = im
                .image_id()
                .and_then(|id| id.image_digest())
                .is_none_or(|d| d == digest);
            match (same, im.image_manifest()) {
                (true, Some(body)) => Some(Manifest {
                    digest: digest.to_string(),
                    media_type: im.image_manifest_media_type().map(String::from),
                    body: body.to_string(),
                }),
                _ => None,
            }
        }))
    }

    async fn read(
        &self,
        repo: &RepoKey,
        ids: &[ImageRef],
    ) -> Result<Option<Vec<Result<Manifest, String>>>, CallError> {
        batch_get(&self.clients.for_repo(repo), repo, ids).await
    }

    async fn off_standard(&self, repo: &RepoKey) -> Result<Vec<(String, Storage)>, CallError> {
        let mut out: Vec<(String, Storage)> = Vec::new();
        for filter in [ImageStatusFilter::Archived, ImageStatusFilter::Activating] {
            // Each image's own status decides, not the filter: an endpoint that ignores the
            // filter (moto does) then reports nothing archived.
            for im in describe(&self.clients.for_repo(repo), repo, filter)
                .await?
                .unwrap_or_default()
            {
                if im.storage != Storage::Standard && !out.iter().any(|(d, _)| *d == im.digest) {
                    out.push((im.digest, im.storage));
                }
            }
        }
        Ok(out)
    }

    async fn list(&self, repo: &RepoKey) -> Result<Option<Vec<ImageInfo>>, CallError> {
        describe(
            &self.clients.for_repo(repo),
            repo,
            ImageStatusFilter::Active,
        )
        .await
    }

    async fn list_all(&self, repo: &RepoKey) -> Result<Option<Vec<ImageInfo>>, CallError> {
        describe(&self.clients.for_repo(repo), repo, ImageStatusFilter::Any).await
    }

    async fn unarchive(&self, repo: &RepoKey, digest: &str) -> Result<(), CallError> {
        self.clients
            .for_repo(repo)
            .update_image_storage_class()
            .registry_id(&repo.account)
            .repository_name(&repo.name)
            .image_id(ImageIdentifier::builder().image_digest(digest).build())
            .target_storage_class(TargetStorageClass::Standard)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| call_error("ecr:UpdateImageStorageClass", &e))
    }

    async fn untag(&self, repo: &RepoKey, tag: &str) -> Result<(), CallError> {
        let result = self
            .clients
            .for_repo(repo)
            .batch_delete_image()
            .registry_id(&repo.account)
            .repository_name(&repo.name)
            .image_ids(ImageIdentifier::builder().image_tag(tag).build())
            .send()
            .await;
        match result {
            // A tag that is not there (a failure in the answer) is what was wanted.
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("RepositoryNotFoundException") => Ok(()),
            Err(e) => Err(call_error("ecr:BatchDeleteImage", &e)),
        }
    }
}

/// Every image of the repository with the given status (`DescribeImages`, paginated, 1 000
/// a page): tags, push, pull and archive times, storage. `Ok(None)`: the repository does not
/// exist.
pub async fn describe(
    client: &Client,
    repo: &RepoKey,
    status: ImageStatusFilter,
) -> Result<Option<Vec<ImageInfo>>, CallError> {
    let mut out = Vec::new();
    let mut pages = client
        .describe_images()
        .registry_id(&repo.account)
        .repository_name(&repo.name)
        .filter(DescribeImagesFilter::builder().image_status(status).build())
        .max_results(1000)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) if e.code() == Some("RepositoryNotFoundException") => return Ok(None),
            Err(e) => return Err(call_error("ecr:DescribeImages", &e)),
        };
        for im in page.image_details() {
            let Some(digest) = im.image_digest() else {
                continue;
            };
            out.push(ImageInfo {
                digest: digest.to_string(),
                tags: im.image_tags().to_vec(),
                // ECR always sends it; without it an image counts as the oldest.
                pushed_at: im.image_pushed_at().map_or(0, |t| t.secs()),
                last_pulled: im.last_recorded_pull_time().map(|t| t.secs()),
                storage: match im.image_status() {
                    Some(ImageStatus::Archived) => Storage::Archived,
                    Some(ImageStatus::Activating) => Storage::Activating,
                    _ => Storage::Standard,
                },
                archived_at: im.last_archived_at().map(|t| t.secs()),
            });
        }
    }
    Ok(Some(out))
}

/// Reads images by tag or digest (`BatchGetImage`, 100 ids a call): for each id, the
/// manifest, or ECR's failure code. `Ok(None)`: the repository does not exist.
pub async fn batch_get(
    client: &Client,
    repo: &RepoKey,
    ids: &[ImageRef],
) -> Result<Option<Vec<Result<Manifest, String>>>, CallError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(100) {
        let result = client
            .batch_get_image()
            .registry_id(&repo.account)
            .repository_name(&repo.name)
            .set_image_ids(Some(chunk.iter().map(identifier).collect()))
            .set_accepted_media_types(Some(MEDIA_TYPES.iter().map(|s| s.to_string()).collect()))
            .send()
            .await;
        let got = match result {
            Ok(got) => got,
            Err(e) if e.code() == Some("RepositoryNotFoundException") => return Ok(None),
            Err(e) => return Err(call_error("ecr:BatchGetImage", &e)),
        };
        for id in chunk {
            let found = got.images().iter().find(|im| names(id, im.image_id()));
            let failure = || {
                got.failures()
                    .iter()
                    .find(|f| names(id, f.image_id()))
                    .and_then(|f| f.failure_code().map(|c| c.as_str().to_string()))
                    .unwrap_or_else(|| "ImageNotFound".to_string())
            };
            out.push(match found {
                Some(im) => match (
                    im.image_id().and_then(|i| i.image_digest()),
                    im.image_manifest(),
                ) {
                    (Some(d), Some(body)) => Ok(Manifest {
                        digest: d.to_string(),
                        media_type: im.image_manifest_media_type().map(String::from),
                        body: body.to_string(),
                    }),
                    _ => Err("ImageWithoutManifest".to_string()),
                },
                None => Err(failure()),
            });
        }
    }
    Ok(Some(out))
}

/// True when ECR's `imageId` in an answer is the image `r` names.
fn names(r: &ImageRef, got: Option<&ImageIdentifier>) -> bool {
    got.is_some_and(|i| match r {
        ImageRef::Tag(t) => i.image_tag() == Some(t.as_str()),
        ImageRef::Digest(d) => i.image_digest() == Some(d.as_str()),
    })
}

/// The SDK's identifier of the image `r` names.
fn identifier(r: &ImageRef) -> ImageIdentifier {
    match r {
        ImageRef::Tag(t) => ImageIdentifier::builder().image_tag(t).build(),
        ImageRef::Digest(d) => ImageIdentifier::builder().image_digest(d).build(),
    }
}
