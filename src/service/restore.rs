//! `restore REPO:TAG` by hand: the operator's way to put a protected tag back on its pin at
//! 3 a.m. without waiting for an event or reconcile. It runs the Lambda's own steps on one
//! decision: what ECR holds now, the pin's seal checked, children first, the keep-alive tag,
//! a page (low: "restored by hand by CALLER"; a failure at the item's own severity) and the
//! tag's history.

use crate::events::{Actor, Incident};
use crate::guard::{self, Action, Cause, Decision, Outcome};
use crate::page;
use crate::ports::{Images, Ledger, Pager, PinKey, Registry};
use crate::registry::{Entry, InvalidEntry, RepoKey, Severity};
use crate::text::short_digest;

use super::protect::CommandError;
use super::trust::Seals;
use super::{Handler, Now};

/// What `restore` found and did.
#[derive(Clone, Debug)]
pub struct ByHand {
    /// The decision: restore (the tag is missing), revert (it is on another image) or
    /// nothing (it is on its pin).
    pub decision: Decision,
    /// How it went; `None` in a dry run or when nothing was needed.
    pub outcome: Option<Outcome>,
    /// The pushes it takes (children first, then the tag): in a dry run, what it would push.
    pub pushes: usize,
    /// Whether a page went out (or, in a dry run, would).
    pub paged: bool,
}

impl<R: Registry, I: Images, P: Pager, L: Ledger, K: PinKey> Handler<R, I, P, L, K> {
    /// Puts `tag` back on its pin, by hand, for `caller` (an ARN, or who ran the command).
    /// With [`Handler::dry_run`] it decides and checks the seal, and writes nothing.
    pub async fn restore_by_hand(
        &self,
        repo: &RepoKey,
        tag: &str,
        caller: &str,
        now: &Now,
    ) -> Result<ByHand, CommandError> {
        if let Some(why) = self.scope.outside(repo) {
            return Err(CommandError::Refused(format!(
                "{repo} is outside the guard's scope ({why}): nothing done"
            )));
        }
        let entries: Vec<_> = self.registry.entries(repo).await?;
        let entry = protected_entry(&entries, repo, tag)?;
        let Some(pin) = entry.pin.clone() else {
            return Err(CommandError::Refused(format!("{repo}:{tag} has never been pinned: the guard puts back only an image it has seen under the tag")));
        };
        let found = self.images.lookup(repo, &[tag.to_string()]).await?;
        let now_on = found
            .and_then(|f| f.into_iter().next())
            .and_then(Result::ok)
            .map(|m| m.digest);
        let decision = by_hand(&entry, &pin.digest, now_on, caller);
        let pushes = guard::plan_restore(tag, &pin, None).map_or(0, |steps| steps.len());
        let mut done = ByHand {
            decision,
            outcome: None,
            pushes,
            paged: false,
        };
        if done.decision.action == Action::Nothing {
            done.pushes = 0;
            return Ok(done);
        }
        // The Lambda's trust rule: only a pin the guard vouches for is pushed.
        if let Some(why) = self.distrust(repo, tag, &pin).await? {
            return Err(CommandError::Refused(format!(
                "{repo}:{tag} was not put back: the guard cannot vouch for its pin {} ({why}). Check the image, then `protect --accept-current` from a known-good push",
                short_digest(&pin.digest)
            )));
        }
        if self.dry_run {
            done.paged = true;
            return Ok(done);
        }
        let ok_entries: Vec<_> = entries.into_iter().filter_map(Result::ok).collect();
        let seals: Seals = [(tag.to_string(), None)].into_iter().collect();
        let outcome = self
            .act(repo, &done.decision, &ok_entries, &seals, now)
            .await?;
        done.paged = self
            .tell_by_hand(repo, &done.decision, &outcome, caller, now)
            .await?;
        done.outcome = Some(outcome);
        Ok(done)
    }

    /// After a restore by hand: the keep-alive tag, the page (low when the tag is back, at
    /// the item's severity when not) and the tag's history. `true` when a page went out.
    async fn tell_by_hand(
        &self,
        repo: &RepoKey,
        decision: &Decision,
        outcome: &Outcome,
        caller: &str,
        now: &Now,
    ) -> Result<bool, CommandError> {
        let incident = Incident {
            event_id: format!("cli-restore-{}-{}", now.epoch, decision.tag),
            source: "ecr-tag-guard restore".into(),
            time: now.rfc3339.clone(),
            repo: repo.clone(),
            actor: Actor::Principal {
                arn: caller.to_string(),
                role_arn: None,
            },
            changes: Vec::new(),
            note: None,
        };
        let done = [(decision, outcome)];
        let keep = guard::keep_alive_steps(&done, &self.scope.keep_prefix);
        self.put_keep_alive(repo, &keep).await;
        let alarm = page::report(decision, outcome, false).map(|mut a| {
            if matches!(outcome, Outcome::Restored | Outcome::AlreadyInPlace) {
                a.severity = Severity::Low;
                a.headline = match decision.action {
                    Action::Revert => "moved; reverted by hand".into(),
                    _ => "missing; restored by hand".into(),
                };
                a.did = format!(
                    "restored by hand by {caller}: put the tag back on the pinned digest with PutImage."
                );
            }
            a
        });
        let paged = match alarm {
            Some(alarm) => {
                let rendered = page::render(&incident, decision, &alarm);
                self.pager.publish(&rendered).await?;
                true
            }
            None => false,
        };
        let record = super::history::record(&incident, decision, outcome, now);
        self.registry.add_history(&[record]).await?;
        Ok(paged)
    }
}

/// The valid item of `repo`:`tag` among `entries`, or why a restore is refused (none, or one
/// that is not valid).
fn protected_entry(
    entries: &[Result<Entry, InvalidEntry>],
    repo: &RepoKey,
    tag: &str,
) -> Result<Entry, CommandError> {
    let found = entries.iter().find(|r| match r {
        Ok(e) => e.tag == tag,
        Err(bad) => bad.key.ends_with(&format!(":{tag}")) || bad.key.ends_with(&format!("/{tag}")),
    });
    match found {
        None => Err(CommandError::Refused(format!(
            "{repo}:{tag} is not protected: nothing to restore"
        ))),
        Some(Err(bad)) => Err(CommandError::Refused(format!(
            "the item of {repo}:{tag} is not valid ({}): nothing done",
            bad.problems.join("; ")
        ))),
        Some(Ok(e)) => Ok(e.clone()),
    }
}

/// What a restore by hand does, from where the tag is now (`now_on`): nothing when it is on
/// its pin, a revert when it is elsewhere, a restore when it is missing.
fn by_hand(entry: &Entry, pin: &str, now_on: Option<String>, caller: &str) -> Decision {
    let by = format!("restored by hand by {caller}");
    let (cause, action, why) = match now_on {
        Some(d) if d == pin => (
            Cause::Pushed { digest: d },
            Action::Nothing,
            "the tag is on its pin already".to_string(),
        ),
        Some(d) => (
            Cause::Moved { to: d.clone() },
            Action::Revert,
            format!("{by}: the tag was on {}", short_digest(&d)),
        ),
        None => (Cause::Deleted { digest: None }, Action::Restore, by),
    };
    guard::decision(entry, cause, action, &why)
}
