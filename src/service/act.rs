//! Carrying out one decision: the writes to ECR and the registry a decision stands for.

use tracing::warn;

use crate::error::Error;
use crate::guard::{self, plan_restore, Action, Decision, Outcome, PutStep};
use crate::ports::{Images, Ledger, Pager, PinKey, Put, PutError, Registry};
use crate::registry::{Entry, Manifest, Pin, RepoKey};

use super::trust::Seals;
use super::{Handler, Now};

impl<R: Registry, I: Images, P: Pager, L: Ledger, K: PinKey> Handler<R, I, P, L, K> {
    /// Carries out one decision. `seals` are the pins' seals checked beforehand (one not
    /// there is checked now). `Err` only for failures a retry may mend.
    pub(crate) async fn act(
        &self,
        repo: &RepoKey,
        d: &Decision,
        entries: &[Entry],
        seals: &Seals,
        now: &Now,
    ) -> Result<Outcome, Error> {
        let e = &d.entry;
        match &d.action {
            Action::Nothing | Action::Superseded => Ok(Outcome::Skipped),
            Action::Alert => Ok(Outcome::Alerted),
            // For a keep-alive tag, `d.tag` is that tag and the entry is the pin it keeps.
            Action::Restore | Action::Revert | Action::RestoreKeep => match &e.pin {
                // The guard pushes only a pin it vouches for: one it saw under the tag itself.
                Some(pin) => {
                    let distrust = match seals.get(&e.tag) {
                        Some(verdict) => verdict.clone(),
                        None => self.distrust(repo, &e.tag, pin).await?,
                    };
                    match distrust {
                        Some(why) => Ok(Outcome::Untrusted { why }),
                        None => self.restore(repo, &e.tag, &d.tag, pin, now).await,
                    }
                }
                None => Ok(Outcome::Refused {
                    why: "the tag is not pinned".into(),
                }),
            },
            Action::Release => self.release_pin(repo, d, entries, now).await,
            Action::Seal => match &d.entry.pin {
                Some(pin) => {
                    let keep = d.entry.keep_alive;
                    self.seal_in_place(repo, &d.tag, pin, None, keep, now).await
                }
                None => Ok(Outcome::Skipped),
            },
            Action::Follow { to, manifest } => {
                self.follow(repo, d, entries, to, manifest.as_ref(), now)
                    .await
            }
            Action::StoreManifest => self.store_manifest(repo, d, now).await,
            Action::Unarchive => self.unarchive(e).await,
            Action::Pin { digest, manifest } => {
                self.pin(repo, d, digest, manifest.as_ref(), now).await
            }
        }
    }

    /// An allowed caller deleted the tag: the pin goes (the item is marked released), and
    /// the keep-alive tag too when no other pin needs it.
    async fn release_pin(
        &self,
        repo: &RepoKey,
        d: &Decision,
        entries: &[Entry],
        now: &Now,
    ) -> Result<Outcome, Error> {
        let Some(old) = d.entry.digest() else {
            return Ok(Outcome::Skipped);
        };
        if !self
            .registry
            .release(repo, &d.tag, old, &now.rfc3339)
            .await?
        {
            return Ok(Outcome::Conflict);
        }
        self.leave(repo, entries, &d.tag, old, None).await;
        Ok(Outcome::Released)
    }

    /// The pin follows the tag to `to` (what ECR holds now): captured, written over the old
    /// pin, keep-alive tags moved along.
    async fn follow(
        &self,
        repo: &RepoKey,
        d: &Decision,
        entries: &[Entry],
        to: &str,
        manifest: Option<&Manifest>,
        now: &Now,
    ) -> Result<Outcome, Error> {
        // Confirmed against ECR now: the tag sits on `to`.
        let pin = self
            .capture(repo, to, manifest, now, "followed the move")
            .await?;
        let pin = self.seal(repo, &d.tag, pin).await?;
        let old = d.entry.digest();
        if !self.registry.set_pin(repo, &d.tag, old, Some(&pin)).await? {
            return Ok(Outcome::Conflict);
        }
        self.add_keep_alive(repo, &pin, d.entry.keep_alive).await;
        if let Some(old) = old.filter(|o| *o != pin.digest) {
            self.leave(repo, entries, &d.tag, old, Some(&pin.digest))
                .await;
        }
        Ok(Outcome::Followed)
    }

    /// A pin the guard could not vouch for, its tag confirmed on it in ECR just now (the
    /// caller's read): sealed — with the manifest ECR has when the stored one is missing or is
    /// not the image (`seen`: what ECR answered for the tag, if at hand) — and written over
    /// itself, its keep-alive tag added (`keep`).
    /// [`Outcome::Pinned`] when sealed, `Skipped` when the key could not seal, `Conflict` when
    /// the item changed meanwhile.
    pub(crate) async fn seal_in_place(
        &self,
        repo: &RepoKey,
        tag: &str,
        pin: &Pin,
        seen: Option<&Manifest>,
        keep: bool,
        now: &Now,
    ) -> Result<Outcome, Error> {
        let kept = pin.manifest.clone().filter(Manifest::verify);
        let captured = self
            .capture(repo, &pin.digest, kept.as_ref().or(seen), now, "sealed")
            .await?;
        // The writer's own `pinned_by` / `pinned_at` stay: the guard adds its seal.
        let pin = Pin {
            pinned_by: pin.pinned_by.clone().or(captured.pinned_by.clone()),
            pinned_at: pin.pinned_at.clone().or(captured.pinned_at.clone()),
            ..captured
        };
        let sealed = self.seal(repo, tag, pin).await?;
        if sealed.mac.is_none() {
            return Ok(Outcome::Skipped);
        }
        if !self
            .registry
            .set_pin(repo, tag, Some(&sealed.digest), Some(&sealed))
            .await?
        {
            return Ok(Outcome::Conflict);
        }
        self.add_keep_alive(repo, &sealed, keep).await;
        Ok(Outcome::Pinned)
    }

    /// `tag`'s pin has left `old`: its keep-alive tag goes unless another pin needs it, the
    /// way [`super::keep`] lets it go (never deleting the image); `prefer` is a carrier to
    /// take first (a follow's new pin).
    async fn leave(
        &self,
        repo: &RepoKey,
        entries: &[Entry],
        tag: &str,
        old: &str,
        prefer: Option<&str>,
    ) -> Vec<(String, guard::Leave)> {
        let prefix = &self.scope.keep_prefix;
        let drop: Vec<String> = guard::keep_alive_to_drop(entries, tag, old, prefix)
            .into_iter()
            .collect();
        let released =
            super::keep::release_guard_tags(&self.images, repo, &drop, prefer, prefix).await;
        self.note_retired(repo, &released).await;
        released
    }

    /// Notes a repository where a guard tag had to stay (retired), so reconcile comes back to
    /// it even when it has no item left; a failure is logged (status still shows the tag).
    pub(crate) async fn note_retired(&self, repo: &RepoKey, released: &[(String, guard::Leave)]) {
        if super::keep::any_retired(released) {
            if let Err(e) = self.ledger.note_guard_tags(&repo.key(), true).await {
                warn!(repository = %repo, error = %e, "retired guard tag not noted for reconcile");
            }
        }
    }

    /// A pin without its manifest gets it from ECR (reconcile).
    async fn store_manifest(
        &self,
        repo: &RepoKey,
        d: &Decision,
        now: &Now,
    ) -> Result<Outcome, Error> {
        let Some(digest) = d.entry.digest() else {
            return Ok(Outcome::Skipped);
        };
        let pin = self
            .capture(repo, digest, None, now, "manifest stored by reconcile")
            .await?;
        if pin.manifest.is_none() {
            return Ok(Outcome::Refused {
                why: "ECR no longer has the pinned image: there is no manifest to keep".into(),
            });
        }
        // Reconcile stores a manifest only for a tag it found on its pin just now.
        let pin = self.seal(repo, &d.tag, pin).await?;
        if !self
            .registry
            .set_pin(repo, &d.tag, Some(digest), Some(&pin))
            .await?
        {
            return Ok(Outcome::Conflict);
        }
        self.add_keep_alive(repo, &pin, d.entry.keep_alive).await;
        Ok(Outcome::Pinned)
    }

    /// An archived pinned image is brought back to standard storage.
    async fn unarchive(&self, e: &Entry) -> Result<Outcome, Error> {
        let Some(digest) = e.digest() else {
            return Ok(Outcome::Skipped);
        };
        match self.images.unarchive(&e.repo, digest).await {
            Ok(()) => Ok(Outcome::Unarchiving),
            Err(c) if c.retryable => Err(Error::Call(c)),
            Err(c) => Ok(Outcome::Failed {
                failure: guard::Failure::Other,
                detail: c.message,
            }),
        }
    }

    /// First sight of a tag pushed: pin `digest` (where ECR holds the tag now).
    async fn pin(
        &self,
        repo: &RepoKey,
        d: &Decision,
        digest: &str,
        manifest: Option<&Manifest>,
        now: &Now,
    ) -> Result<Outcome, Error> {
        // Confirmed against ECR now: the tag sits on `digest`.
        let pin = self
            .capture(repo, digest, manifest, now, "first sight")
            .await?;
        let pin = self.seal(repo, &d.tag, pin).await?;
        if !self
            .registry
            .set_pin(repo, &d.tag, None, Some(&pin))
            .await?
        {
            return Ok(Outcome::Conflict);
        }
        self.add_keep_alive(repo, &pin, d.entry.keep_alive).await;
        Ok(Outcome::Pinned)
    }

    /// Builds a pin for `digest`: the event's manifest when its sha256 is the digest, else
    /// the manifest ECR still has (and an index's children), else a pin without manifest.
    pub(crate) async fn capture(
        &self,
        repo: &RepoKey,
        digest: &str,
        from_event: Option<&Manifest>,
        now: &Now,
        why: &str,
    ) -> Result<Pin, Error> {
        let manifest = match from_event.filter(|m| m.digest == digest && m.verify()) {
            Some(m) => Some(m.clone()),
            None => self.images.manifest(repo, digest).await?,
        };
        let mut children = Vec::new();
        if let Some(m) = &manifest {
            let n = self.tuning.call_concurrency;
            let reads = m
                .child_digests()
                .into_iter()
                .map(|c| async move { self.images.manifest(repo, &c).await });
            for child in super::bounded(n, reads).await {
                children.extend(child?.filter(Manifest::verify));
            }
        }
        Ok(Pin {
            digest: digest.to_string(),
            manifest: manifest.filter(Manifest::verify),
            children,
            pinned_by: Some(format!("ecr-tag-guard ({why})")),
            pinned_at: Some(now.rfc3339.clone()),
            mac: None,
        })
    }

    /// Puts `tag` back on `pin` (the pin of the item for `item_tag`): index children first,
    /// then the tagged manifest.
    async fn restore(
        &self,
        repo: &RepoKey,
        item_tag: &str,
        tag: &str,
        pin: &Pin,
        now: &Now,
    ) -> Result<Outcome, Error> {
        let fetched = match pin.manifest {
            Some(_) => None,
            None => self.images.manifest(repo, &pin.digest).await?,
        };
        let steps = match plan_restore(tag, pin, fetched.as_ref()) {
            Ok(steps) => steps,
            Err(why) => return Ok(Outcome::Refused { why }),
        };
        let Some((last, children)) = steps.split_last() else {
            return Ok(Outcome::Refused {
                why: "nothing to push".into(),
            });
        };
        let n = self.tuning.call_concurrency;
        for r in super::bounded(n, children.iter().map(|s| self.images.put(repo, s))).await {
            if let Err(e) = r {
                return put_failed(e);
            }
        }
        let outcome = match self.images.put(repo, last).await {
            Ok(Put::Written) => Outcome::Restored,
            Ok(Put::AlreadyThere) => Outcome::AlreadyInPlace,
            Err(e) => return put_failed(e),
        };
        if let Some(m) = fetched.filter(Manifest::verify) {
            // Keep the manifest ECR still had, so the next restore does not depend on it.
            // The pin was vouched for before the push: sealed again with its manifest.
            let pin = Pin {
                manifest: Some(m),
                pinned_at: Some(now.rfc3339.clone()),
                ..pin.clone()
            };
            let stored = match self.seal(repo, item_tag, pin).await {
                Ok(pin) => self
                    .registry
                    .set_pin(repo, item_tag, Some(&pin.digest), Some(&pin))
                    .await
                    .map_err(Error::from),
                Err(e) => Err(e),
            };
            if let Err(e) = stored {
                warn!(tag = item_tag, error = %e, "could not store the fetched manifest");
            }
        }
        Ok(outcome)
    }

    /// Tags a newly pinned digest with its keep-alive tag, unless the item has none (`keep`
    /// false). A failure is logged, not fatal: the pin holds without it, and `status` reports
    /// the missing tag.
    pub(crate) async fn add_keep_alive(&self, repo: &RepoKey, pin: &Pin, keep: bool) {
        if !keep {
            return;
        }
        let (Some(manifest), Some(tag)) = (
            &pin.manifest,
            crate::registry::keep_tag(&self.scope.keep_prefix, &pin.digest),
        ) else {
            return;
        };
        let step = PutStep {
            manifest: manifest.clone(),
            tag: Some(tag),
        };
        self.put_keep_alive(repo, std::slice::from_ref(&step)).await;
    }

    /// Puts keep-alive tags; failures are logged.
    pub(crate) async fn put_keep_alive(&self, repo: &RepoKey, steps: &[PutStep]) {
        for (step, r) in steps.iter().zip(
            super::bounded(
                self.tuning.call_concurrency,
                steps.iter().map(|s| self.images.put(repo, s)),
            )
            .await,
        ) {
            if let Err(e) = r {
                warn!(repository = %repo, tag = step.tag.as_deref().unwrap_or("-"), error = ?e, "keep-alive tag not put");
            }
        }
    }
}

fn put_failed(e: PutError) -> Result<Outcome, Error> {
    match e {
        PutError::Refused(failure, detail) => Ok(Outcome::Failed { failure, detail }),
        PutError::Call(c) => Err(Error::Call(c)),
    }
}
