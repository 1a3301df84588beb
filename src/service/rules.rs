//! Pattern rules at work: each rule materialised into ordinary tag items (with `rule` set)
//! in the repositories it covers, on every push of a tag it matches and on every reconcile.
//! The plan is pure ([`crate::guard::rules`]); here the handler carries it out: a newly
//! protected tag is pinned (manifest captured, keep-alive tag added), a tag that fell out of
//! the newest N loses its item and, when no other pin needs it, its keep-alive tag. Each
//! change goes to the tag's history; none is paged (nothing broke).

use serde::Serialize;
use tracing::info;

use crate::error::Error;
use crate::guard;
use crate::ports::{
    HistoryAction, HistoryOutcome, HistoryRecord, Images, Ledger, Pager, PinKey, Registry,
};
use crate::registry::{Entry, Manifest, RepoKey, TagRule};
use crate::service::{Handler, Now};

/// One change a rule made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleChange {
    /// The rule.
    pub rule: String,
    /// The tag.
    pub tag: String,
    /// The image.
    pub digest: String,
    /// What changed.
    pub change: RuleChangeKind,
}

/// What a rule did to a tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleChangeKind {
    /// Newly protected: among the newest N of its group.
    Pinned,
    /// No longer protected: fell out of the newest N, or its rule is gone.
    Released,
}

impl RuleChangeKind {
    /// Its name (`pinned`, `released`), as printed and serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleChangeKind::Pinned => "pinned",
            RuleChangeKind::Released => "released",
        }
    }

    /// The history record's action, outcome and detail for it.
    fn history(self) -> (HistoryAction, HistoryOutcome, &'static str) {
        match self {
            RuleChangeKind::Pinned => (
                HistoryAction::Pin,
                HistoryOutcome::Pinned,
                "among the newest images the rule protects",
            ),
            RuleChangeKind::Released => (
                HistoryAction::Release,
                HistoryOutcome::Released,
                "no longer among the newest images the rule protects (or the rule is gone)",
            ),
        }
    }
}

impl<R: Registry, I: Images, P: Pager, L: Ledger, K: PinKey> Handler<R, I, P, L, K> {
    /// Brings the pins of `rules` in `repo` in line with its images now. `entries` are the
    /// repository's items; `hint` a manifest the event carried (used when its digest is
    /// pinned). Orphans (items whose rule is gone) are released too. In a dry run nothing is
    /// written; the changes are reported all the same.
    pub async fn materialise(
        &self,
        repo: &RepoKey,
        rules: &[TagRule],
        entries: &[Entry],
        hint: Option<&Manifest>,
        event_id: &str,
        now: &Now,
    ) -> Result<Vec<RuleChange>, Error> {
        let covering: Vec<&TagRule> = rules.iter().filter(|r| r.covers(repo)).collect();
        let orphans = guard::rules::orphans(entries, rules);
        if covering.is_empty() && orphans.is_empty() {
            return Ok(Vec::new());
        }
        let Some(images) = self.images.list(repo).await? else {
            return Ok(Vec::new());
        };
        let (pins, releases) = plan(
            &covering,
            &orphans,
            &images,
            entries,
            &self.scope.keep_prefix,
        );
        let mut changes = self.pin_rule_tags(repo, pins, hint, now).await?;
        self.release_rule_tags(repo, releases, entries, &mut changes)
            .await?;
        if !self.dry_run && !changes.is_empty() {
            self.record_rule_changes(repo, &changes, event_id, now)
                .await;
        }
        Ok(changes)
    }

    /// Pins each (rule, tag, digest): captured, its item created, its keep-alive tag added.
    async fn pin_rule_tags(
        &self,
        repo: &RepoKey,
        pins: Vec<(String, String, String)>,
        hint: Option<&Manifest>,
        now: &Now,
    ) -> Result<Vec<RuleChange>, Error> {
        let mut changes = Vec::new();
        for (rule, tag, digest) in pins {
            if !self.dry_run {
                let why = format!("pinned by rule {rule}");
                let pin = self.capture(repo, &digest, hint, now, &why).await?;
                // ECR listed the tag on this digest just now.
                let pin = self.seal(repo, &tag, pin).await?;
                if !self.registry.add_rule_pin(repo, &tag, &rule, &pin).await? {
                    continue;
                }
                self.add_keep_alive(repo, &pin, true).await;
            }
            info!(repository = %repo, tag, rule, digest, "rule: pinned");
            changes.push(RuleChange {
                rule,
                tag,
                digest,
                change: RuleChangeKind::Pinned,
            });
        }
        Ok(changes)
    }

    /// Releases each (rule, item): the item goes, and its keep-alive tag when no other pin
    /// (nor one released before it) needs it.
    async fn release_rule_tags(
        &self,
        repo: &RepoKey,
        releases: Vec<(String, Entry)>,
        entries: &[Entry],
        changes: &mut Vec<RuleChange>,
    ) -> Result<(), Error> {
        let prefix = &self.scope.keep_prefix;
        for (rule, e) in releases {
            let digest = e.digest().unwrap_or_default().to_string();
            if !self.dry_run {
                if !self.registry.drop_rule_pin(repo, &e.tag, &rule).await? {
                    continue;
                }
                let released = |o: &&Entry| {
                    changes
                        .iter()
                        .any(|c| c.change == RuleChangeKind::Released && c.tag == o.tag)
                };
                let others: Vec<Entry> = entries.iter().filter(|o| !released(o)).cloned().collect();
                let keep: Vec<String> = guard::keep_alive_to_drop(&others, &e.tag, &digest, prefix)
                    .into_iter()
                    .collect();
                let released =
                    super::keep::release_guard_tags(&self.images, repo, &keep, None, prefix).await;
                self.note_retired(repo, &released).await;
            }
            info!(repository = %repo, tag = %e.tag, rule, digest, "rule: released");
            changes.push(RuleChange {
                rule,
                tag: e.tag.clone(),
                digest,
                change: RuleChangeKind::Released,
            });
        }
        Ok(())
    }

    /// The rule changes in the tags' history; a failure is logged, not fatal.
    async fn record_rule_changes(
        &self,
        repo: &RepoKey,
        changes: &[RuleChange],
        event_id: &str,
        now: &Now,
    ) {
        let records: Vec<HistoryRecord> = changes
            .iter()
            .map(|c| {
                let (action, outcome, detail) = c.change.history();
                let pinned = c.change == RuleChangeKind::Pinned;
                HistoryRecord {
                    repo: repo.clone(),
                    tag: c.tag.clone(),
                    at: now.rfc3339.clone(),
                    event_id: event_id.to_string(),
                    action,
                    outcome,
                    old_digest: (!pinned).then(|| c.digest.clone()),
                    new_digest: pinned.then(|| c.digest.clone()),
                    who: format!("rule {}", c.rule),
                    detail: detail.into(),
                }
            })
            .collect();
        if let Err(e) = self.registry.add_history(&records).await {
            tracing::warn!(repository = %repo, error = %e, "history of rule changes not written");
        }
    }
}

/// Each covering rule's plan over the repository's images: the (rule, tag, digest) to pin —
/// two rules wanting one tag, the first by name makes the item — and the (rule, item) to
/// release, orphans of removed rules included.
#[allow(clippy::type_complexity)]
fn plan(
    covering: &[&TagRule],
    orphans: &[&Entry],
    images: &[crate::guard::lifecycle::ImageInfo],
    entries: &[Entry],
    keep_prefix: &str,
) -> (Vec<(String, String, String)>, Vec<(String, Entry)>) {
    let mut releases: Vec<(String, Entry)> = orphans
        .iter()
        .filter_map(|e| e.rule.clone().map(|r| (r, (*e).clone())))
        .collect();
    let mut pins: Vec<(String, String, String)> = Vec::new();
    for rule in covering {
        let plan = guard::rules::plan(rule, images, entries, keep_prefix);
        releases.extend(plan.release.into_iter().map(|e| (rule.name.clone(), e)));
        for (tag, digest) in plan.pin {
            if !pins.iter().any(|(_, t, _)| *t == tag) {
                pins.push((rule.name.clone(), tag, digest));
            }
        }
    }
    (pins, releases)
}
