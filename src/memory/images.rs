//! ECR on the embedded world: digests are the sha256 of the bytes, a moved tag leaves the
//! old image untagged, an immutable tag held elsewhere is refused.

use serde_json::Value;

use super::*;

impl Images for Memory {
    async fn put(&self, repo: &RepoKey, step: &PutStep) -> Result<Put, PutError> {
        let mut s = self.call("ecr:PutImage").await.map_err(PutError::Call)?;
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
        let s = self.call("ecr:BatchGetImage").await?;
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
    async fn read(
        &self,
        repo: &RepoKey,
        ids: &[ImageRef],
    ) -> Result<Option<Vec<Result<Manifest, String>>>, CallError> {
        self.read_images(repo, ids).await
    }

    async fn list_all(&self, repo: &RepoKey) -> Result<Option<Vec<ImageInfo>>, CallError> {
        let s = self.call("ecr:DescribeImages").await?;
        Ok(s.repos.get(repo).map(|r| {
            r.images
                .iter()
                .map(|(d, im)| ImageInfo {
                    digest: d.clone(),
                    tags: im.tags.iter().cloned().collect(),
                    pushed_at: im.pushed_at,
                    last_pulled: None,
                    storage: im.storage,
                    archived_at: (im.storage != Storage::Standard).then_some(im.pushed_at),
                })
                .collect()
        }))
    }

    async fn list(&self, repo: &RepoKey) -> Result<Option<Vec<ImageInfo>>, CallError> {
        let s = self.call("ecr:DescribeImages").await?;
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
        let s = self.call("ecr:DescribeImages").await?;
        Ok(s.repos.get(repo).map_or_else(Vec::new, |r| {
            r.images
                .iter()
                .filter(|(_, im)| im.storage != Storage::Standard)
                .map(|(d, im)| (d.clone(), im.storage))
                .collect()
        }))
    }

    async fn unarchive(&self, repo: &RepoKey, digest: &str) -> Result<(), CallError> {
        let mut s = self.call("ecr:UpdateImageStorageClass").await?;
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
        let mut s = self.call("ecr:BatchDeleteImage").await?;
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
pub(super) fn next_push(repo: &Repo, time: &str) -> i64 {
    let newest = repo.images.values().map(|i| i.pushed_at).max().unwrap_or(0);
    crate::text::parse_time(&Value::String(time.to_string())).unwrap_or(newest + 1)
}

pub(super) fn image_of(m: &Manifest) -> Image {
    Image {
        manifest: Some(m.body.clone()),
        media_type: m.media_type.clone(),
        tags: BTreeSet::new(),
        storage: Storage::Standard,
        pushed_at: 0,
    }
}
