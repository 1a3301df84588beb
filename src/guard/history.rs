//! The one table from the guard's kinds (a decision's action, an outcome) to the history's
//! ([`crate::registry::history`]), which names them the same way.

use super::{Action, Outcome};
use crate::registry::history::{HistoryAction, HistoryOutcome};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::Failure;

    #[test]
    fn the_history_names_each_kind_as_the_guard_does() {
        let actions = [
            Action::Restore,
            Action::Revert,
            Action::Follow {
                to: "d".into(),
                manifest: None,
            },
            Action::Pin {
                digest: "d".into(),
                manifest: None,
            },
            Action::Release,
            Action::Seal,
            Action::RestoreKeep,
            Action::StoreManifest,
            Action::Unarchive,
            Action::Alert,
            Action::Nothing,
            Action::Superseded,
        ];
        for a in &actions {
            assert_eq!(HistoryAction::from(a).as_str(), a.name());
        }
        let outcomes = [
            Outcome::Restored,
            Outcome::AlreadyInPlace,
            Outcome::Followed,
            Outcome::Pinned,
            Outcome::Released,
            Outcome::Alerted,
            Outcome::Unarchiving,
            Outcome::Skipped,
            Outcome::Refused { why: "w".into() },
            Outcome::Failed {
                failure: Failure::LayersGone,
                detail: "d".into(),
            },
            Outcome::Conflict,
            Outcome::Untrusted { why: "w".into() },
        ];
        for o in &outcomes {
            assert_eq!(HistoryOutcome::from(o).as_str(), o.name());
        }
    }
}
