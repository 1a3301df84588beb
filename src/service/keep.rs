//! The one way the guard takes its own tags off images: no write of the guard removes an
//! image that would exist without the guard.
//!
//! ECR deletes an image when its last tag is removed (`BatchDeleteImage`), and leaves it
//! untagged when its tag is pushed onto another image (`PutImage`). So a guard tag that is not
//! its image's last tag is simply removed; one that is the last is first pushed onto another
//! image that keeps tags of its own (the carrier), which leaves the released image untagged,
//! exactly as the team's own move of a tag would, and is then removed from the carrier. Where
//! no image can carry it (none keeps a tag, the repository's tags are immutable, ECR cannot be
//! read), the tag stays, retired: `status` lists it and reconcile tries again. The plan is
//! [`crate::guard::plan_leave`]; this carries it out.

use tracing::{info, warn};

use super::{Handler, Now};
use crate::error::Error;
use crate::guard::{self, after_leave, plan_leave, Leave, PutStep};
use crate::ports::{Images, Ledger, Pager, PinKey, PutError, Registry};
use crate::registry::image::ImageInfo;
use crate::registry::{Entry, RepoKey};

/// Takes each guard tag in `tags` off its image in `repo`, one after the other, reading the
/// repository's images once. `prefer`: the carrier to take first (a follow's new pin).
/// Returns, per tag, how it left. Never fails: what could not be done stays, retired.
pub async fn release_guard_tags<I: Images>(
    images: &I,
    repo: &RepoKey,
    tags: &[String],
    prefer: Option<&str>,
    keep_prefix: &str,
) -> Vec<(String, Leave)> {
    if tags.is_empty() {
        return Vec::new();
    }
    let listing: Vec<ImageInfo> = match images.list(repo).await {
        Ok(Some(listing)) => listing,
        Ok(None) => return tags.iter().map(|t| (t.clone(), Leave::Gone)).collect(),
        Err(e) => {
            let why = format!("the repository's images could not be read ({e})");
            return tags
                .iter()
                .map(|t| {
                    warn!(repository = %repo, tag = %t, error = %e, "guard tag kept: ECR could not be read");
                    (t.clone(), Leave::Retire { digest: None, why: why.clone() })
                })
                .collect();
        }
    };
    release_in(images, repo, listing, tags, prefer, keep_prefix).await
}

/// [`release_guard_tags`] from `listing`, the repository's images as just read.
pub async fn release_in<I: Images>(
    images: &I,
    repo: &RepoKey,
    mut listing: Vec<ImageInfo>,
    tags: &[String],
    prefer: Option<&str>,
    keep_prefix: &str,
) -> Vec<(String, Leave)> {
    let mut out = Vec::with_capacity(tags.len());
    for tag in tags {
        let planned = plan_leave(&listing, tag, prefer, keep_prefix);
        let done = carry_out(images, repo, tag, planned).await;
        after_leave(&mut listing, tag, &done);
        info!(repository = %repo, tag = %tag, leave = ?done, "guard tag released");
        out.push((tag.clone(), done));
    }
    out
}

/// Carries out one planned leave; what fails becomes a retired tag, never a delete.
async fn carry_out<I: Images>(images: &I, repo: &RepoKey, tag: &str, planned: Leave) -> Leave {
    match planned {
        Leave::Untag { digest } => match images.untag(repo, tag).await {
            Ok(()) => Leave::Untag { digest },
            Err(e) => Leave::Retire {
                digest: Some(digest),
                why: format!("removing it failed ({e})"),
            },
        },
        Leave::Carry { digest, carrier } => carry(images, repo, tag, digest, carrier).await,
        other => other,
    }
}

/// Pushes `tag` onto `carrier` (leaving `digest` untagged), then removes it there.
async fn carry<I: Images>(
    images: &I,
    repo: &RepoKey,
    tag: &str,
    digest: String,
    carrier: String,
) -> Leave {
    let retire = |digest: String, why: String| Leave::Retire {
        digest: Some(digest),
        why,
    };
    let manifest = match images.manifest(repo, &carrier).await {
        // Only bytes that hash to the carrier's digest are pushed.
        Ok(Some(m)) if m.verify() => m,
        Ok(_) => {
            return retire(
                digest,
                format!("the carrier image {carrier} could not be read whole"),
            )
        }
        Err(e) => return retire(digest, format!("the carrier image could not be read ({e})")),
    };
    let step = PutStep {
        manifest,
        tag: Some(tag.to_string()),
    };
    match images.put(repo, &step).await {
        Ok(_) => {}
        Err(PutError::Refused(crate::guard::Failure::TagHeldElsewhere, _)) => {
            return retire(
                digest,
                "the repository's tags are immutable, so the tag cannot move off its last image"
                    .into(),
            )
        }
        Err(PutError::Refused(_, why)) => {
            return retire(digest, format!("ECR refused to move it ({why})"))
        }
        Err(PutError::Call(e)) => return retire(digest, format!("moving it failed ({e})")),
    }
    // Now on the carrier, which keeps its other tags: removing it there deletes nothing.
    match images.untag(repo, tag).await {
        Ok(()) => Leave::Carry { digest, carrier },
        Err(e) => retire(
            carrier,
            format!("it moved off {digest} but could not be removed from the carrier ({e})"),
        ),
    }
}

/// True when one of `released` stayed where it was (retired): its repository must be noted
/// for reconcile ([`crate::ports::Ledger::note_guard_tags`]).
pub fn any_retired(released: &[(String, Leave)]) -> bool {
    released
        .iter()
        .any(|(_, l)| matches!(l, Leave::Retire { .. }))
}

/// A guard tag in ECR that no pin needs, as `status` reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StrayTag {
    /// The tag.
    pub tag: String,
    /// The image it is on.
    pub digest: String,
    /// What letting go of it would do now: a retired tag (`Leave::Retire`) stays, anything
    /// else is done by the next reconcile.
    pub next: Leave,
}

/// The guard's tags in `repo` that no pin of `entries` needs, each with what letting go of
/// it would do now (read only: nothing is written).
pub async fn stray_tags<I: Images>(
    images: &I,
    repo: &RepoKey,
    entries: &[crate::registry::Entry],
    keep_prefix: &str,
) -> Result<Vec<StrayTag>, crate::error::CallError> {
    let Some(mut listing) = images.list(repo).await? else {
        return Ok(Vec::new());
    };
    let needed = crate::guard::needed_keep_tags(entries, keep_prefix);
    let mut out = Vec::new();
    for (tag, digest) in crate::guard::stray_guard_tags(&listing, &needed, keep_prefix) {
        let next = plan_leave(&listing, &tag, None, keep_prefix);
        after_leave(&mut listing, &tag, &next);
        out.push(StrayTag { tag, digest, next });
    }
    Ok(out)
}

/// How many stray guard tags one run lets go of in one repository: the rest wait for the
/// next run (a mass release stays within the run's time and ECR's request rates).
pub const SWEEP_PER_RUN: usize = 50;

impl<R: Registry, I: Images, P: Pager, L: Ledger, K: PinKey> Handler<R, I, P, L, K> {
    /// The guard's own tags in `repo` that no pin needs (not `entries`' keep-alive tags, nor
    /// those of the pins this run's `rule_changes` just added): a release that could not
    /// finish, or a tag retired where nothing could carry it. Each is let go of the one way
    /// the guard lets go of its tags (this module), once it has been seen for the grace period
    /// (so a pin being written now keeps its new tag), at most [`SWEEP_PER_RUN`] a repository;
    /// `noted`: the ledger notes the repository (the note is written or cleared as it changes).
    /// Answers a line per tag let go of (or that would be, in a dry run).
    pub(super) async fn sweep_guard_tags(
        &self,
        repo: &RepoKey,
        entries: &[Entry],
        rule_changes: &[crate::service::rules::RuleChange],
        noted: bool,
        now: &Now,
    ) -> Result<Vec<String>, Error> {
        let prefix = &self.scope.keep_prefix;
        let Some(listing) = self.images.list(repo).await? else {
            if noted && !self.dry_run {
                self.ledger.note_guard_tags(&repo.key(), false).await?;
            }
            return Ok(Vec::new());
        };
        let mut needed = guard::needed_keep_tags(entries, prefix);
        needed.extend(
            rule_changes
                .iter()
                .filter(|c| c.change == crate::service::rules::RuleChangeKind::Pinned)
                .filter_map(|c| crate::registry::keep_tag(prefix, &c.digest)),
        );
        let strays = guard::stray_guard_tags(&listing, &needed, prefix);
        let stray_count = strays.len();
        let mut due = Vec::new();
        for (tag, digest) in strays.into_iter().take(SWEEP_PER_RUN) {
            let first_seen = if self.dry_run {
                now.epoch - self.tuning.grace_secs
            } else {
                let key = format!("guard-tag/{repo}:{tag}@{digest}");
                self.ledger.first_seen(&key, now.epoch).await?
            };
            if now.epoch - first_seen >= self.tuning.grace_secs {
                due.push(tag);
            }
        }
        if due.is_empty() {
            self.keep_noted(repo, noted, stray_count > 0).await?;
            return Ok(Vec::new());
        }
        if self.dry_run {
            let mut listing = listing;
            let mut would = Vec::new();
            for tag in &due {
                let leave = guard::plan_leave(&listing, tag, None, prefix);
                guard::after_leave(&mut listing, tag, &leave);
                would.push(format!("{repo}: would let go: {}", leave.describe(tag)));
            }
            return Ok(would);
        }
        let released = release_in(&self.images, repo, listing, &due, None, prefix).await;
        let left = stray_count - due.len()
            + released
                .iter()
                .filter(|(_, l)| matches!(l, guard::Leave::Retire { .. }))
                .count();
        let lines = released
            .into_iter()
            .map(|(tag, leave)| format!("{repo}: {}", leave.describe(&tag)))
            .collect();
        self.keep_noted(repo, noted, left > 0).await?;
        Ok(lines)
    }

    /// Notes, or clears the note, that `repo` holds guard tags no pin needs (`held`), writing
    /// only when that changes.
    async fn keep_noted(&self, repo: &RepoKey, noted: bool, held: bool) -> Result<(), Error> {
        if noted != held && !self.dry_run {
            self.ledger.note_guard_tags(&repo.key(), held).await?;
        }
        Ok(())
    }
}
