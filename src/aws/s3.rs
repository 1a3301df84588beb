//! S3: a trail's log files, listed (`ListObjectsV2`) and read (`GetObject`) for `audit`.

use aws_sdk_s3::Client;

use super::call_error;
use crate::error::CallError;
use crate::ports::LogArchive;

/// A trail bucket through the SDK.
#[derive(Clone, Debug)]
pub struct S3Archive {
    /// The S3 client (path-style addressing when an endpoint is set: see `cli::audit`).
    pub client: Client,
}

impl LogArchive for S3Archive {
    async fn keys_page(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), CallError> {
        let page = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_start_after(start_after.map(String::from))
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| call_error("s3:ListObjectsV2", &e))?;
        let keys = page
            .contents()
            .iter()
            .filter_map(|o| o.key().map(String::from))
            .collect();
        let next = page
            .next_continuation_token()
            .filter(|t| !t.is_empty())
            .map(String::from);
        Ok((keys, next))
    }

    async fn read(
        &self,
        bucket: &str,
        key: &str,
        sink: tokio::sync::mpsc::Sender<Vec<u8>>,
    ) -> Result<(), CallError> {
        let object = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| call_error("s3:GetObject", &e))?;
        let mut body = object.body;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                CallError::transient("s3:GetObject", format!("reading the body: {e}"))
            })?;
            if sink.send(chunk.to_vec()).await.is_err() {
                // The reader stopped (the object is not JSON past some point): nothing more to do.
                return Ok(());
            }
        }
        Ok(())
    }
}
