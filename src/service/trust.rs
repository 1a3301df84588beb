//! The guard's word on a pin: it seals a pin whose digest it has seen under the tag in ECR
//! itself, and checks the seal before anything is pushed from a pin
//! ([`crate::registry::seal`] says what is signed). A pin it cannot vouch for is never
//! pushed: the decision becomes a page (`action: untrusted_pin`). Reconcile seals, here too,
//! the pins without a seal that ECR confirms (the migration of pins written by hand).

use std::collections::HashMap;

use tracing::{info, warn};

use crate::error::{CallError, Error};
use crate::guard::status::TagState;
use crate::guard::{Action, Decision};
use crate::ports::{Images, Ledger, Pager, PinKey, Registry};
use crate::registry::{seal, Entry, Pin, RepoKey};

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
        for (tag, verdict) in super::bounded(self.tuning.call_concurrency, checks).await {
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

impl<R: Registry, I: Images, P: Pager, L: Ledger, K: PinKey> Handler<R, I, P, L, K> {
    /// `entries` with every pin that carries no seal but that ECR confirms — the tag sits on
    /// the pinned digest now — sealed: the migration of pins written before pins were sealed,
    /// or by hand. A sealed pin is checked here only with [`Tuning::check_seals`] (else it
    /// would be a KMS call per pin per run): its seal is checked before anything is pushed
    /// from it, and registration checks every write to the table. A pin ECR does not confirm
    /// stays as it is and is never pushed from. Also answers the pins sealed (`REPO:TAG`; in
    /// a dry run, the ones that would be).
    ///
    /// [`Tuning::check_seals`]: crate::service::Tuning
    pub(super) async fn seal_confirmed(
        &self,
        entries: &[Entry],
        standings: &[(TagState, Option<String>)],
    ) -> Result<(Vec<Entry>, Vec<String>), Error> {
        let confirmed = |e: &Entry, found: &Option<String>| {
            e.digest().is_some() && e.digest() == found.as_deref()
        };
        let checks = entries
            .iter()
            .zip(standings)
            .map(|(e, (_, found))| async move {
                match &e.pin {
                    Some(p) if confirmed(e, found) && p.mac.is_none() => Ok(true),
                    Some(p) if confirmed(e, found) && self.tuning.check_seals => {
                        Ok(self.distrust(&e.repo, &e.tag, p).await?.is_some())
                    }
                    _ => Ok::<_, Error>(false),
                }
            });
        let reseal = super::bounded(self.tuning.call_concurrency, checks).await;
        let mut out = entries.to_vec();
        let mut unsealed = Vec::new();
        for (e, reseal) in out.iter_mut().zip(reseal) {
            if reseal? {
                unsealed.push(e);
            }
        }
        let unsealed = unsealed.into_iter();
        if self.dry_run {
            let would = unsealed.map(|e| format!("{}:{}", e.repo, e.tag)).collect();
            return Ok((out, would));
        }
        let seals = unsealed.filter_map(|e| {
            // A stored manifest that is not the image is dropped: reconcile stores ECR's.
            let pin = e.pin.clone().map(|p| crate::registry::Pin {
                manifest: p.manifest.filter(crate::registry::Manifest::verify),
                ..p
            })?;
            Some(async move {
                let sealed = self.seal(&e.repo, &e.tag, pin).await?;
                let written = sealed.mac.is_some()
                    && self
                        .registry
                        .set_pin(&e.repo, &e.tag, Some(&sealed.digest), Some(&sealed))
                        .await?;
                if written {
                    info!(repository = %e.repo, tag = %e.tag, "reconcile: pin sealed (ECR confirms it)");
                    e.pin = Some(sealed);
                }
                Ok::<_, Error>(written.then(|| format!("{}:{}", e.repo, e.tag)))
            })
        });
        let mut sealed = Vec::new();
        for s in super::bounded(self.tuning.call_concurrency, seals).await {
            sealed.extend(s?);
        }
        Ok((out, sealed))
    }
}
