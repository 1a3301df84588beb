//! What `drill` does to ECR beyond the guard's own calls: uploads a small image's blobs,
//! deletes a tag or images by digest (the drill's own test tag), as the ECR API answers.

use super::admin::Admin;
use super::call_error;
use crate::error::CallError;
use crate::registry::RepoKey;
use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_sdk_ecr::types::ImageIdentifier;
use serde_json::Value;

impl Admin {
    /// Uploads a blob (a layer or an image config) in one part; a blob ECR already has is fine.
    pub async fn upload_blob(&self, repo: &RepoKey, bytes: &[u8]) -> Result<String, CallError> {
        let digest = crate::text::sha256_digest(bytes);
        let started = self
            .ecr
            .for_repo(repo)
            .initiate_layer_upload()
            .registry_id(&repo.account)
            .repository_name(&repo.name)
            .send()
            .await
            .map_err(|e| call_error("ecr:InitiateLayerUpload", &e))?;
        let upload_id = started.upload_id().unwrap_or_default().to_string();
        self.ecr
            .for_repo(repo)
            .upload_layer_part()
            .registry_id(&repo.account)
            .repository_name(&repo.name)
            .upload_id(&upload_id)
            .part_first_byte(0)
            .part_last_byte(bytes.len().saturating_sub(1) as i64)
            .layer_part_blob(aws_sdk_ecr::primitives::Blob::new(bytes.to_vec()))
            .send()
            .await
            .map_err(|e| call_error("ecr:UploadLayerPart", &e))?;
        let done = self
            .ecr
            .for_repo(repo)
            .complete_layer_upload()
            .registry_id(&repo.account)
            .repository_name(&repo.name)
            .upload_id(&upload_id)
            .layer_digests(&digest)
            .send()
            .await;
        match done {
            Ok(_) => Ok(digest),
            Err(e) if e.code() == Some("LayerAlreadyExistsException") => Ok(digest),
            Err(e) => Err(call_error("ecr:CompleteLayerUpload", &e)),
        }
    }

    /// Deletes images by digest (`BatchDeleteImage`), for cleaning up.
    pub async fn delete_digests(
        &self,
        repo: &RepoKey,
        digests: &[String],
    ) -> Result<(), CallError> {
        let ids: Vec<ImageIdentifier> = digests
            .iter()
            .map(|d| ImageIdentifier::builder().image_digest(d).build())
            .collect();
        self.ecr
            .for_repo(repo)
            .batch_delete_image()
            .registry_id(&repo.account)
            .repository_name(&repo.name)
            .set_image_ids(Some(ids))
            .send()
            .await
            .map_err(|e| call_error("ecr:BatchDeleteImage", &e))?;
        Ok(())
    }

    /// Deletes one tag (`BatchDeleteImage`); returns the image ids ECR deleted, as
    /// CloudTrail records them.
    pub async fn delete_tag(&self, repo: &RepoKey, tag: &str) -> Result<Vec<Value>, CallError> {
        let out = self
            .ecr
            .for_repo(repo)
            .batch_delete_image()
            .registry_id(&repo.account)
            .repository_name(&repo.name)
            .image_ids(ImageIdentifier::builder().image_tag(tag).build())
            .send()
            .await
            .map_err(|e| call_error("ecr:BatchDeleteImage", &e))?;
        Ok(out
            .image_ids()
            .iter()
            .map(
                |i| serde_json::json!({"imageDigest": i.image_digest(), "imageTag": i.image_tag()}),
            )
            .collect())
    }
}
