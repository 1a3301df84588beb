//! KMS: the HMAC key that seals pins (`GenerateMac` / `VerifyMac`, `HMAC_SHA_256`).

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::MacAlgorithmSpec;
use aws_sdk_kms::Client;

use super::call_error;
use crate::error::CallError;
use crate::ports::PinKey;

/// What a call needing the key says when none is named.
pub const NO_KEY: &str = "no pin key is set: name the KMS HMAC key that seals pins with TAG_GUARD_PIN_KEY or --pin-key (key id, key ARN or alias/NAME); the deployed stack's output PinKey names it";

/// The pin key through the SDK; `key_id` is a key id, key ARN, alias name or alias ARN.
#[derive(Clone, Debug)]
pub struct KmsPinKey {
    /// The client.
    pub client: Client,
    /// The key; `None` when the deployment names none (every call then fails, not
    /// retryable, saying so).
    pub key_id: Option<String>,
}

impl KmsPinKey {
    fn key(&self, op: &str) -> Result<&str, CallError> {
        self.key_id
            .as_deref()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| CallError::fatal(op, NO_KEY))
    }
}

impl PinKey for KmsPinKey {
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CallError> {
        const OP: &str = "kms:GenerateMac";
        let out = self
            .client
            .generate_mac()
            .key_id(self.key(OP)?)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(message))
            .send()
            .await
            .map_err(|e| call_error(OP, &e))?;
        out.mac
            .map(Blob::into_inner)
            .ok_or_else(|| CallError::fatal(OP, "KMS answered without a MAC"))
    }

    async fn verify(&self, message: &[u8], mac: &[u8]) -> Result<bool, CallError> {
        const OP: &str = "kms:VerifyMac";
        let sent = self
            .client
            .verify_mac()
            .key_id(self.key(OP)?)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(message))
            .mac(Blob::new(mac))
            .send()
            .await;
        match sent {
            Ok(out) => Ok(out.mac_valid),
            // KMS answers a MAC that does not verify with this error, not with `false`.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_kms_invalid_mac_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(call_error(OP, &e)),
        }
    }
}
