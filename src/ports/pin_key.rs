//! The key the guard seals its pins with.

use crate::error::CallError;

/// The key the guard seals its pins with (see [`crate::registry::seal`]): a KMS HMAC key
/// against AWS, a key of the embedded world's own in memory.
#[allow(async_fn_in_trait)]
pub trait PinKey {
    /// The MAC of `message` (KMS `GenerateMac`, `HMAC_SHA_256`).
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CallError>;
    /// Whether `mac` is this key's MAC of `message` (KMS `VerifyMac`): `false` for a MAC made
    /// with another key or over other facts.
    async fn verify(&self, message: &[u8], mac: &[u8]) -> Result<bool, CallError>;
}
