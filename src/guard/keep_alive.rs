//! Keep-alive planning: which guard-owned tags to put back after restores, and which one to
//! drop when a pin leaves a digest.

use super::{Action, Decision, Outcome, PutStep};
use crate::registry::Entry;

/// The keep-alive tags to put (back) after restores: one `PutStep` per pinned digest whose
/// tag was put back or found in place, with its stored manifest. Run beside the page, so a
/// restore still takes three round trips; a restore of a fully deleted image needs it.
pub fn keep_alive_steps(done: &[(&Decision, &Outcome)], keep_prefix: &str) -> Vec<PutStep> {
    let mut steps: Vec<PutStep> = Vec::new();
    for (d, outcome) in done {
        let restored = matches!(outcome, Outcome::Restored | Outcome::AlreadyInPlace);
        if !restored || !d.entry.keep_alive || !matches!(d.action, Action::Restore | Action::Revert)
        {
            continue;
        }
        let Some(pin) = &d.entry.pin else { continue };
        let (Some(manifest), Some(tag)) = (
            &pin.manifest,
            crate::registry::keep_tag(keep_prefix, &pin.digest),
        ) else {
            continue;
        };
        if !steps.iter().any(|s| s.tag.as_deref() == Some(tag.as_str())) {
            steps.push(PutStep {
                manifest: manifest.clone(),
                tag: Some(tag),
            });
        }
    }
    steps
}

/// The keep-alive tag to remove when `tag`'s pin leaves `old_digest`, unless another entry
/// with a keep-alive tag still pins that digest.
pub fn keep_alive_to_drop(
    entries: &[Entry],
    tag: &str,
    old_digest: &str,
    keep_prefix: &str,
) -> Option<String> {
    let shared = entries
        .iter()
        .any(|e| e.tag != tag && e.keep_alive && e.digest() == Some(old_digest));
    if shared {
        None
    } else {
        crate::registry::keep_tag(keep_prefix, old_digest)
    }
}
