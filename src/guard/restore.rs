//! Which `PutImage` calls put a tag back, and the check that they push only the pinned image.

use crate::registry::{Manifest, Pin};
use crate::text::{sha256_digest, short_digest};

/// One `PutImage` call: the manifest bytes, by digest, with the tag or (an index's child)
/// without.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutStep {
    /// What to put; `manifest.digest` is sent as `imageDigest`.
    pub manifest: Manifest,
    /// The tag, on the last step only.
    pub tag: Option<String>,
}

/// Plans the restore of `tag` to `pin`, using the stored manifest or, when the pin has none,
/// `fetched` (read from ECR by digest). Children of an index go first, by digest, untagged.
///
/// Refuses (with the reason) when there is no manifest, or when the sha256 of any manifest
/// differs from the digest it is stored under: the guard never pushes anything but the pin.
pub fn plan_restore(
    tag: &str,
    pin: &Pin,
    fetched: Option<&Manifest>,
) -> Result<Vec<PutStep>, String> {
    let Some(top) = pin.manifest.as_ref().or(fetched) else {
        return Err(format!(
            "no manifest is stored for {} and ECR no longer has the image",
            short_digest(&pin.digest)
        ));
    };
    check(top, &pin.digest, "the stored manifest")?;
    let mut steps = Vec::new();
    for child_digest in top.child_digests() {
        // Children that are not stored are expected to still be in the repository; ECR says
        // ReferencedImagesNotFoundException if not.
        if let Some(child) = pin.children.iter().find(|c| c.digest == child_digest) {
            check(child, &child_digest, "a stored child manifest")?;
            steps.push(PutStep {
                manifest: child.clone(),
                tag: None,
            });
        }
    }
    steps.push(PutStep {
        manifest: Manifest {
            digest: pin.digest.clone(),
            ..top.clone()
        },
        tag: Some(tag.to_string()),
    });
    Ok(steps)
}

fn check(m: &Manifest, digest: &str, what: &str) -> Result<(), String> {
    let actual = sha256_digest(m.body.as_bytes());
    if actual == digest {
        Ok(())
    } else {
        Err(format!(
            "the sha256 of {what} is {}, not the pinned {}: it was altered, nothing was pushed",
            short_digest(&actual),
            short_digest(digest)
        ))
    }
}
