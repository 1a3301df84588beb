//! `status` as data: how every protected tag stands in ECR now, the guard's own tags no pin
//! needs, and the items that are not valid. ECR is read per repository (100 tags a call, plus
//! the repository's archived images); nothing is written. The command renders it.

use std::collections::BTreeMap;

use crate::error::CallError;
use crate::guard::status::TagState;
use crate::guard::{Leave, Scope};
use crate::ports::{Images, Items, PinKey};
use crate::registry::{self, Entry, InvalidEntry, RepoKey};
use crate::service::keep::{stray_tags, StrayTag};
use crate::service::reconcile::read_standings;
use crate::service::trust::distrust;
use crate::service::Tuning;

/// How one registry entry, or one of the guard's own tags, stands now.
#[derive(Debug)]
pub enum TagStatus {
    /// The tag's standing in ECR, and whether its pin can be vouched for (`untrusted`: why
    /// not; the guard pushes nothing from such a pin).
    Checked {
        /// The item.
        entry: Entry,
        /// Where the tag stands.
        standing: TagState,
        /// Why the pin cannot be vouched for, if it cannot.
        untrusted: Option<String>,
    },
    /// Outside what the deployment guards: reported, never read.
    OutOfScope {
        /// The item.
        entry: Entry,
        /// Why.
        why: String,
    },
    /// Its repository could not be read (a member role that cannot be assumed, access
    /// denied); the other repositories are still checked.
    NotChecked {
        /// The item.
        entry: Entry,
        /// ECR's words.
        why: String,
    },
    /// A guard tag no pin needs: retired where nothing can carry it (its image stays), else
    /// let go of by the next reconcile. Not a problem.
    GuardTag {
        /// The repository.
        repo: RepoKey,
        /// The tag, its image and what letting go of it would do now.
        tag: StrayTag,
    },
    /// An item that is not valid.
    Invalid(InvalidEntry),
}

impl TagStatus {
    /// True for what a person should look at: a tag not where its pin says, an untrusted
    /// pin, an item outside the scope or unreadable, an invalid item.
    pub fn is_problem(&self) -> bool {
        match self {
            TagStatus::Checked {
                standing,
                untrusted,
                ..
            } => !standing.is_ok() || untrusted.is_some(),
            TagStatus::GuardTag { .. } => false,
            _ => true,
        }
    }

    /// Whether a guard tag is retired (kept because nothing can carry it).
    pub fn is_retired(tag: &StrayTag) -> bool {
        matches!(tag.next, Leave::Retire { .. })
    }
}

/// Every tag's standing, in repository and tag order, then the invalid items.
#[derive(Debug, Default)]
pub struct Status {
    /// One line each.
    pub tags: Vec<TagStatus>,
    /// Protected tags (valid items and invalid ones).
    pub protected: usize,
}

impl Status {
    /// How many need a person's look.
    pub fn problems(&self) -> usize {
        self.tags.iter().filter(|t| t.is_problem()).count()
    }
}

/// Every registry item, read and validated, sorted by repository and tag.
pub async fn entries<O: Items>(o: &O) -> Result<(Vec<Entry>, Vec<InvalidEntry>), CallError> {
    let items = o.registry_items().await?;
    let (mut good, bad) = registry::split_valid(
        items
            .iter()
            .filter(|i| !registry::is_rule_item(i))
            .map(registry::parse_item)
            .collect(),
    );
    good.sort_by(|a, b| (&a.repo, &a.tag).cmp(&(&b.repo, &b.tag)));
    Ok((good, bad))
}

/// How every protected tag stands now (and the repositories noted as holding retired guard
/// tags, items or not).
pub async fn status<O: Items + Images + PinKey>(
    o: &O,
    scope: &Scope,
    tuning: &Tuning,
) -> Result<Status, CallError> {
    let (good, bad) = entries(o).await?;
    let noted: Vec<RepoKey> = o
        .guard_tag_repositories()
        .await?
        .iter()
        .filter_map(|r| RepoKey::parse(r).ok())
        .collect();
    let mut by_repo: BTreeMap<&RepoKey, Vec<&Entry>> = BTreeMap::new();
    for r in &noted {
        by_repo.entry(r).or_default();
    }
    for e in &good {
        by_repo.entry(&e.repo).or_default().push(e);
    }
    let mut out = Status {
        tags: Vec::new(),
        protected: good.len() + bad.len(),
    };
    for (repo, es) in by_repo {
        let es: Vec<Entry> = es.into_iter().cloned().collect();
        out.tags
            .extend(repository(o, scope, tuning, repo, es).await?);
    }
    out.tags.extend(bad.into_iter().map(TagStatus::Invalid));
    Ok(out)
}

/// The standings of one repository's entries, its guard tags first.
async fn repository<O: Items + Images + PinKey>(
    o: &O,
    scope: &Scope,
    tuning: &Tuning,
    repo: &RepoKey,
    es: Vec<Entry>,
) -> Result<Vec<TagStatus>, CallError> {
    if let Some(why) = scope.outside(repo) {
        return Ok(es
            .into_iter()
            .map(|entry| TagStatus::OutOfScope {
                entry,
                why: why.clone(),
            })
            .collect());
    }
    // One read of the repository's protected tags and keep-alive tags together.
    let standings = if es.is_empty() {
        Vec::new()
    } else {
        match read_standings(o, repo, &es, &scope.keep_prefix).await {
            Ok(s) => s,
            Err(e) => {
                let why = crate::text::clean(&e.to_string(), 500);
                return Ok(es
                    .into_iter()
                    .map(|entry| TagStatus::NotChecked {
                        entry,
                        why: why.clone(),
                    })
                    .collect());
            }
        }
    };
    let checks = es.iter().map(|e| async move {
        match &e.pin {
            Some(pin) => distrust(o, &e.repo, &e.tag, pin).await,
            None => Ok(None),
        }
    });
    let distrusted = crate::service::bounded(tuning.call_concurrency, checks).await;
    let strays = stray_tags(o, repo, &es, &scope.keep_prefix).await?;
    let mut out: Vec<TagStatus> = strays
        .into_iter()
        .map(|tag| TagStatus::GuardTag {
            repo: repo.clone(),
            tag,
        })
        .collect();
    for ((entry, (standing, _)), untrusted) in es.into_iter().zip(standings).zip(distrusted) {
        out.push(TagStatus::Checked {
            entry,
            standing,
            untrusted: untrusted?,
        });
    }
    Ok(out)
}
