//! How acting on a decision went, and why a restore could not be done.

use serde::Serialize;

/// Why a restore could not be done; each says what a person should do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// ECR no longer has the image's layers.
    LayersGone,
    /// An index's child manifests are gone.
    ChildrenGone,
    /// Immutable repository: the tag already sits on another image.
    TagHeldElsewhere,
    /// The repository does not exist.
    RepositoryGone,
    /// ECR computed another digest for the bytes sent.
    DigestMismatch,
    /// ECR refused for another reason.
    Other,
}

impl Failure {
    /// What a person on call should do about it.
    pub fn advice(&self) -> &'static str {
        match self {
            Failure::LayersGone => "ECR has cleaned up the image's layers. Push the image again from your build (same digest) or from a backup, then re-run the deploy.",
            Failure::ChildrenGone => "the platform images this index refers to are gone. Push the multi-arch image again from your build.",
            Failure::TagHeldElsewhere => "the repository has immutable tags and the tag now sits on another image. Check that image; if it is wrong, delete that tag (aws ecr batch-delete-image) and the guard's next event or a re-run restores the pin.",
            Failure::RepositoryGone => "the repository no longer exists. Recreate it with its settings and push the pinned image again; the registry item still has the digest and manifest.",
            Failure::DigestMismatch => "ECR computed another digest for the stored manifest: the stored bytes are not the image. Re-pin the tag from a known-good push.",
            Failure::Other => "see the detail and the function's logs; restore by hand with aws ecr put-image using the manifest in the registry item.",
        }
    }
}

/// How acting on a decision went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// The tag was put back on the pin.
    Restored,
    /// The tag already sat on the pin: nothing to put back.
    AlreadyInPlace,
    /// The pin now follows the tag.
    Followed,
    /// The tag was pinned for the first time.
    Pinned,
    /// The pin was released.
    Released,
    /// Only a page.
    Alerted,
    /// ECR is bringing the image back from archive storage.
    Unarchiving,
    /// Nothing was done.
    Skipped,
    /// The guard would not push: the stored image is not the pin, or there is none.
    Refused {
        /// Why.
        why: String,
    },
    /// ECR refused the restore.
    Failed {
        /// The kind of failure.
        failure: Failure,
        /// ECR's words.
        detail: String,
    },
    /// Someone changed the registry item meanwhile; nothing was written.
    Conflict,
    /// The guard cannot vouch for the pin (no seal of its own, or one that does not verify),
    /// so it pushed nothing.
    Untrusted {
        /// Why.
        why: String,
    },
}

impl Outcome {
    /// Its name, as in logs, history, pages' JSON and `--json` output (`restored`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Restored => "restored",
            Outcome::AlreadyInPlace => "already_in_place",
            Outcome::Followed => "followed",
            Outcome::Pinned => "pinned",
            Outcome::Released => "released",
            Outcome::Alerted => "alerted",
            Outcome::Unarchiving => "unarchiving",
            Outcome::Skipped => "skipped",
            Outcome::Refused { .. } => "refused",
            Outcome::Failed { .. } => "failed",
            Outcome::Conflict => "conflict",
            Outcome::Untrusted { .. } => "untrusted_pin",
        }
    }

    /// True for an outcome that leaves a problem a person must look at (paged once per
    /// incident by reconcile; counted as left by the reconcile command).
    pub fn is_problem(&self) -> bool {
        matches!(
            self,
            Outcome::Alerted
                | Outcome::Failed { .. }
                | Outcome::Refused { .. }
                | Outcome::Conflict
                | Outcome::Untrusted { .. }
        )
    }
}
