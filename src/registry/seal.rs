//! The guard's seal on a pin: what it signs, and how the signature is written.
//!
//! The guard pushes under a protected tag only a digest it has itself seen under that tag in
//! ECR. It records that by signing the pin with the deployment's KMS HMAC key
//! (`GenerateMac`, `HMAC_SHA_256`; the key never leaves KMS) and storing the MAC on the item
//! as `pin_mac`. Whoever can write the table cannot make a MAC the key verifies, so a pin
//! written or edited by hand is not vouched for until the guard has seen its digest under the
//! tag itself. The message names every fact the pin stands for: the registry account, region,
//! repository, tag, digest and the sha256 of the stored manifest (`-` without one), one per
//! line after a versioned header, so no two pins share a message.

use super::{Pin, RepoKey};
use crate::text::sha256_digest;

/// The first line of every signed message: the format's name and version.
pub const HEADER: &str = "ecr-tag-guard pin v1";

/// The bytes the guard signs for `pin` of `repo`:`tag`.
pub fn message(repo: &RepoKey, tag: &str, pin: &Pin) -> Vec<u8> {
    let manifest_hash = pin
        .manifest
        .as_ref()
        .map_or_else(|| "-".to_string(), |m| sha256_digest(m.body.as_bytes()));
    [
        HEADER,
        &repo.account,
        &repo.region,
        &repo.name,
        tag,
        &pin.digest,
        &manifest_hash,
    ]
    .join("\n")
    .into_bytes()
}

/// Lowercase hex, as the MAC is stored.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of lowercase or uppercase hex text; `None` for anything else.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 1024 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Manifest;

    fn pin(digest: &str, body: Option<&str>) -> Pin {
        Pin {
            digest: digest.into(),
            manifest: body.map(|b| Manifest {
                digest: digest.into(),
                media_type: None,
                body: b.into(),
            }),
            children: Vec::new(),
            pinned_by: None,
            pinned_at: None,
            mac: None,
        }
    }

    #[test]
    fn every_fact_of_the_pin_is_in_the_message() {
        let repo = RepoKey::parse("123456789012/eu-west-1/web").unwrap();
        let d = sha256_digest(b"m");
        let base = message(&repo, "prod", &pin(&d, Some("m")));
        let text = String::from_utf8(base.clone()).unwrap();
        assert_eq!(
            text,
            format!("{HEADER}\n123456789012\neu-west-1\nweb\nprod\n{d}\n{d}")
        );
        let other_repo = RepoKey::parse("123456789012/eu-west-2/web").unwrap();
        assert_ne!(message(&other_repo, "prod", &pin(&d, Some("m"))), base);
        assert_ne!(message(&repo, "prod2", &pin(&d, Some("m"))), base);
        assert_ne!(message(&repo, "prod", &pin(&d, None)), base);
        let e = sha256_digest(b"n");
        assert_ne!(message(&repo, "prod", &pin(&e, Some("m"))), base);
    }

    #[test]
    fn hex_round_trips_and_rejects_non_hex() {
        assert_eq!(to_hex(&[0, 15, 255]), "000fff");
        assert_eq!(from_hex("000fff"), Some(vec![0, 15, 255]));
        assert_eq!(from_hex("000FFF"), Some(vec![0, 15, 255]));
        assert_eq!(from_hex("0g"), None);
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("é0"), None);
    }
}
