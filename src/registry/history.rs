//! The tag's history as the registry keeps it: what was done (a decision's action, or a
//! command), how it went, and the record of one change. The guard's own kinds map onto these
//! in one table ([`crate::guard::history`]).

use serde::{Deserialize, Serialize};

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
            HistoryAction::Restore => "restore",
            HistoryAction::Revert => "revert",
            HistoryAction::Follow => "follow",
            HistoryAction::Pin => "pin",
            HistoryAction::Release => "release",
            HistoryAction::Seal => "seal",
            HistoryAction::RestoreKeep => "restore_keep",
            HistoryAction::StoreManifest => "store_manifest",
            HistoryAction::Unarchive => "unarchive",
            HistoryAction::Alert => "alert",
            HistoryAction::Nothing => "nothing",
            HistoryAction::Superseded => "superseded",
        }
    }
}

impl HistoryOutcome {
    /// Its name, as written in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryOutcome::Removed => "removed",
            HistoryOutcome::Restored => "restored",
            HistoryOutcome::AlreadyInPlace => "already_in_place",
            HistoryOutcome::Followed => "followed",
            HistoryOutcome::Pinned => "pinned",
            HistoryOutcome::Released => "released",
            HistoryOutcome::Alerted => "alerted",
            HistoryOutcome::Unarchiving => "unarchiving",
            HistoryOutcome::Skipped => "skipped",
            HistoryOutcome::Refused => "refused",
            HistoryOutcome::Failed => "failed",
            HistoryOutcome::Conflict => "conflict",
            HistoryOutcome::UntrustedPin => "untrusted_pin",
            HistoryOutcome::Changed => "changed",
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
