//! The guard's word on a pin: it seals a pin whose digest it has seen under the tag in ECR
//! itself, and checks the seal before anything is pushed from a pin
//! ([`crate::registry::seal`] says what is signed). A pin it cannot vouch for is never
//! pushed: the decision becomes a page (`action: untrusted_pin`).

use std::collections::HashMap;

use tracing::warn;

use crate::error::{CallError, Error};
use crate::guard::{Action, Decision};
use crate::ports::{Images, Ledger, Pager, PinKey, Registry};
use crate::registry::{seal, Pin, RepoKey};

/// What the seals of the pins some decisions would push from say, by the item's tag: `None`
/// when the seal holds, else why not. Checked beside the read of ECR, so the check costs no
/// round trip of its own.
pub type Seals = HashMap<String, Option<String>>;

use super::Handler;

/// Why a pin without a seal is not pushed.
pub const UNSEALED: &str = "the pin carries no seal of the guard's: it was written by hand or before pins were sealed, and the guard has not seen that digest under the tag";

/// Why a pin whose seal does not verify is not pushed.
pub const FORGED: &str = "the pin's seal does not match it under the guard's key: the item was edited after the guard sealed it, or sealed with another key";

/// `pin` of `repo`:`tag` sealed with `key`. Only for a digest the guard (or the command) has
/// itself seen under the tag in ECR, or a pin vouched for with a manifest added.
pub async fn seal_pin(
    key: &impl PinKey,
    repo: &RepoKey,
    tag: &str,
    pin: Pin,
) -> Result<Pin, CallError> {
    let mac = key.sign(&seal::message(repo, tag, &pin)).await?;
    Ok(Pin {
        mac: Some(seal::to_hex(&mac)),
        ..pin
    })
}

/// Why `key` cannot vouch for `pin` of `repo`:`tag`, or `None` when its seal holds. A key
/// that cannot be used (none set, access denied) is a reason too; only a failure a retry may
/// mend is an error.
pub async fn distrust(
    key: &impl PinKey,
    repo: &RepoKey,
    tag: &str,
    pin: &Pin,
) -> Result<Option<String>, CallError> {
    let Some(mac) = pin.mac.as_deref() else {
        return Ok(Some(UNSEALED.into()));
    };
    let Some(mac) = seal::from_hex(mac) else {
        return Ok(Some(FORGED.into()));
    };
    match key.verify(&seal::message(repo, tag, pin), &mac).await {
        Ok(true) => Ok(None),
        Ok(false) => Ok(Some(FORGED.into())),
        Err(e) if e.retryable => Err(e),
        Err(e) => Ok(Some(format!("the pin's seal could not be checked: {e}"))),
    }
}

impl<R: Registry, I: Images, P: Pager, L: Ledger, K: PinKey> Handler<R, I, P, L, K> {
    /// [`seal_pin`] with the deployment's key. When the key cannot be used (none is set, KMS
    /// refuses) the pin comes back unsealed, with a warning: it is kept, but nothing is pushed
    /// from it until it is sealed.
    pub(crate) async fn seal(&self, repo: &RepoKey, tag: &str, pin: Pin) -> Result<Pin, Error> {
        match seal_pin(&self.pin_key, repo, tag, pin.clone()).await {
            Ok(sealed) => Ok(sealed),
            Err(e) if e.retryable => Err(e.into()),
            Err(e) => {
                warn!(repository = %repo, tag, error = %e, "pin not sealed: nothing will be pushed from it until it is");
                Ok(Pin { mac: None, ..pin })
            }
        }
    }

    /// The seals of the pins `decisions` would push from (restore, revert, keep-alive), all
    /// checked at once.
    pub(crate) async fn check_seals(&self, decisions: &[Decision]) -> Result<Seals, Error> {
        let pushes = decisions.iter().filter(|d| {
            matches!(
                d.action,
                Action::Restore | Action::Revert | Action::RestoreKeep
            )
        });
        let checks = pushes.filter_map(|d| {
            let e = &d.entry;
            let pin = e.pin.as_ref()?;
            Some(async move { (e.tag.clone(), self.distrust(&e.repo, &e.tag, pin).await) })
        });
        let mut seals = Seals::new();
        for (tag, verdict) in super::bounded(self.settings.call_concurrency, checks).await {
            seals.insert(tag, verdict?);
        }
        Ok(seals)
    }

    /// [`distrust`] with the deployment's key.
    pub(crate) async fn distrust(
        &self,
        repo: &RepoKey,
        tag: &str,
        pin: &Pin,
    ) -> Result<Option<String>, Error> {
        Ok(distrust(&self.pin_key, repo, tag, pin).await?)
    }
}
