//! The tag's history as the registry keeps it: what was done (a decision's action, or a
//! command), how it went, and the record of one change.

use serde::{Deserialize, Serialize};

use crate::guard::{Action, Outcome};
use crate::registry::RepoKey;

/// What was done to a tag, as its history names it: a decision's action, or a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryAction {
    /// Put back after a delete.
    Restore,
    /// Put back after a move.
    Revert,
    /// The pin followed a move.
    Follow,
    /// Pinned (first sight, registration, a rule).
    Pin,
    /// The pin was released (an allowed delete, a rule's release).
    Release,
    /// A pin written by hand was sealed (ECR showed the tag on it).
    Seal,
    /// The keep-alive tag was put back.
    RestoreKeep,
    /// The pin's manifest was stored.
    StoreManifest,
    /// An archived pin was brought back.
    Unarchive,
    /// Paged only.
    Alert,
    /// Nothing was done.
    Nothing,
    /// Overtaken by ECR's present state.
    Superseded,
    /// `ecr-tag-guard protect`.
    Protect,
    /// `ecr-tag-guard unprotect`.
    Unprotect,
    /// `ecr-tag-guard edit`: settings changed, the pin untouched.
    Edit,
}

/// How it went, as the tag's history names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryOutcome {
    /// Put back.
    Restored,
    /// Already in place.
    AlreadyInPlace,
    /// The pin follows the tag.
    Followed,
    /// Pinned.
    Pinned,
    /// Released.
    Released,
    /// Paged.
    Alerted,
    /// Coming back from archive.
    Unarchiving,
    /// Nothing done.
    Skipped,
    /// The guard would not push.
    Refused,
    /// ECR refused.
    Failed,
    /// The item changed meanwhile.
    Conflict,
    /// The item was removed (`unprotect`).
    Removed,
    /// The guard could not vouch for the pin and pushed nothing.
    UntrustedPin,
    /// The item's settings changed (`edit`).
    Changed,
}

impl HistoryAction {
    /// Its name, as written in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryAction::Protect => "protect",
            HistoryAction::Unprotect => "unprotect",
            HistoryAction::Edit => "edit",
            HistoryAction::Restore => Action::Restore.name(),
            HistoryAction::Revert => Action::Revert.name(),
            HistoryAction::Follow => "follow",
            HistoryAction::Pin => "pin",
            HistoryAction::Release => Action::Release.name(),
            HistoryAction::Seal => Action::Seal.name(),
            HistoryAction::RestoreKeep => Action::RestoreKeep.name(),
            HistoryAction::StoreManifest => Action::StoreManifest.name(),
            HistoryAction::Unarchive => Action::Unarchive.name(),
            HistoryAction::Alert => Action::Alert.name(),
            HistoryAction::Nothing => Action::Nothing.name(),
            HistoryAction::Superseded => Action::Superseded.name(),
        }
    }
}

impl From<&Action> for HistoryAction {
    fn from(a: &Action) -> Self {
        match a {
            Action::Restore => HistoryAction::Restore,
            Action::Revert => HistoryAction::Revert,
            Action::Follow { .. } => HistoryAction::Follow,
            Action::Pin { .. } => HistoryAction::Pin,
            Action::Release => HistoryAction::Release,
            Action::Seal => HistoryAction::Seal,
            Action::RestoreKeep => HistoryAction::RestoreKeep,
            Action::StoreManifest => HistoryAction::StoreManifest,
            Action::Unarchive => HistoryAction::Unarchive,
            Action::Alert => HistoryAction::Alert,
            Action::Nothing => HistoryAction::Nothing,
            Action::Superseded => HistoryAction::Superseded,
        }
    }
}

impl HistoryOutcome {
    /// Its name, as written in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryOutcome::Removed => "removed",
            HistoryOutcome::Restored => Outcome::Restored.name(),
            HistoryOutcome::AlreadyInPlace => Outcome::AlreadyInPlace.name(),
            HistoryOutcome::Followed => Outcome::Followed.name(),
            HistoryOutcome::Pinned => Outcome::Pinned.name(),
            HistoryOutcome::Released => Outcome::Released.name(),
            HistoryOutcome::Alerted => Outcome::Alerted.name(),
            HistoryOutcome::Unarchiving => Outcome::Unarchiving.name(),
            HistoryOutcome::Skipped => Outcome::Skipped.name(),
            HistoryOutcome::Refused => "refused",
            HistoryOutcome::Failed => "failed",
            HistoryOutcome::Conflict => Outcome::Conflict.name(),
            HistoryOutcome::UntrustedPin => "untrusted_pin",
            HistoryOutcome::Changed => "changed",
        }
    }
}

impl From<&Outcome> for HistoryOutcome {
    fn from(o: &Outcome) -> Self {
        match o {
            Outcome::Restored => HistoryOutcome::Restored,
            Outcome::AlreadyInPlace => HistoryOutcome::AlreadyInPlace,
            Outcome::Followed => HistoryOutcome::Followed,
            Outcome::Pinned => HistoryOutcome::Pinned,
            Outcome::Released => HistoryOutcome::Released,
            Outcome::Alerted => HistoryOutcome::Alerted,
            Outcome::Unarchiving => HistoryOutcome::Unarchiving,
            Outcome::Skipped => HistoryOutcome::Skipped,
            Outcome::Refused { .. } => HistoryOutcome::Refused,
            Outcome::Failed { .. } => HistoryOutcome::Failed,
            Outcome::Conflict => HistoryOutcome::Conflict,
            Outcome::Untrusted { .. } => HistoryOutcome::UntrustedPin,
        }
    }
}

/// One line of a tag's history: what happened and what the guard did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// The repository.
    pub repo: RepoKey,
    /// The tag.
    pub tag: String,
    /// When the guard handled it (RFC 3339).
    pub at: String,
    /// The event that caused it.
    pub event_id: String,
    /// What was done.
    pub action: HistoryAction,
    /// How it went.
    pub outcome: HistoryOutcome,
    /// The pin before.
    pub old_digest: Option<String>,
    /// The pin after, or the digest the tag moved to.
    pub new_digest: Option<String>,
    /// Who made the change.
    pub who: String,
    /// Anything else: the reason, ECR's words.
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_kinds_are_written_by_their_names() {
        let actions = [
            HistoryAction::Restore,
            HistoryAction::Revert,
            HistoryAction::Follow,
            HistoryAction::Pin,
            HistoryAction::Release,
            HistoryAction::Seal,
            HistoryAction::RestoreKeep,
            HistoryAction::StoreManifest,
            HistoryAction::Unarchive,
            HistoryAction::Alert,
            HistoryAction::Nothing,
            HistoryAction::Superseded,
            HistoryAction::Protect,
            HistoryAction::Unprotect,
            HistoryAction::Edit,
        ];
        for a in actions {
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        let outcomes = [
            HistoryOutcome::Restored,
            HistoryOutcome::AlreadyInPlace,
            HistoryOutcome::Followed,
            HistoryOutcome::Pinned,
            HistoryOutcome::Released,
            HistoryOutcome::Alerted,
            HistoryOutcome::Unarchiving,
            HistoryOutcome::Skipped,
            HistoryOutcome::Refused,
            HistoryOutcome::Failed,
            HistoryOutcome::Conflict,
            HistoryOutcome::Removed,
            HistoryOutcome::UntrustedPin,
            HistoryOutcome::Changed,
        ];
        for o in outcomes {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
    }
}
