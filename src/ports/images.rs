//! The images in ECR: what the guard reads and pushes.

use crate::error::CallError;
use crate::guard::{Failure, PutStep};
use crate::registry::image::{ImageInfo, Storage};
use crate::registry::{ImageRef, Manifest, RepoKey};

/// What `PutImage` answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    /// The image (and tag) were written.
    Written,
    /// `ImageAlreadyExistsException`: the tag already sits on that digest.
    AlreadyThere,
}

/// Why a `PutImage` did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutError {
    /// ECR refused for a reason a person must look at.
    Refused(Failure, String),
    /// The call failed (possibly retryable).
    Call(CallError),
}

/// The images in ECR.
#[allow(async_fn_in_trait)]
pub trait Images {
    /// `PutImage` of one step: manifest bytes, media type, `imageDigest`, and the tag if any.
    async fn put(&self, repo: &RepoKey, step: &PutStep) -> Result<Put, PutError>;

    /// `BatchGetImage` by digest: the manifest, or `None` when ECR no longer has the image.
    async fn manifest(&self, repo: &RepoKey, digest: &str) -> Result<Option<Manifest>, CallError>;

    /// `BatchDeleteImage` of one tag: untags its image (deleting it when that was its last
    /// tag). A tag that is not there is not an error.
    async fn untag(&self, repo: &RepoKey, tag: &str) -> Result<(), CallError>;

    /// `BatchGetImage` of images by tag or digest (100 a call): for each, its manifest (with
    /// its digest) or ECR's failure code; `None` when the repository does not exist.
    async fn read(
        &self,
        repo: &RepoKey,
        ids: &[ImageRef],
    ) -> Result<Option<Vec<Result<Manifest, String>>>, CallError>;

    /// [`Images::read`] of tags.
    async fn lookup(
        &self,
        repo: &RepoKey,
        tags: &[String],
    ) -> Result<Option<Vec<Result<Manifest, String>>>, CallError> {
        let ids: Vec<ImageRef> = tags.iter().cloned().map(ImageRef::Tag).collect();
        self.read(repo, &ids).await
    }

    /// The repository's images that are not in standard storage (`DescribeImages` filtered
    /// on `ARCHIVED`, then `ACTIVATING`, paginated), by digest; empty when the repository
    /// does not exist.
    async fn off_standard(&self, repo: &RepoKey) -> Result<Vec<(String, Storage)>, CallError>;

    /// Every image of the repository with its tags and push time (`DescribeImages`,
    /// paginated); `None` when the repository does not exist.
    async fn list(&self, repo: &RepoKey) -> Result<Option<Vec<ImageInfo>>, CallError>;

    /// Every image of the repository in any storage class, with push, pull and archive times
    /// (for lifecycle simulation and rule previews); `None` when the repository does not
    /// exist.
    async fn list_all(&self, repo: &RepoKey) -> Result<Option<Vec<ImageInfo>>, CallError>;

    /// `UpdateImageStorageClass` to `STANDARD`: starts bringing an archived image back.
    async fn unarchive(&self, repo: &RepoKey, digest: &str) -> Result<(), CallError>;
}
