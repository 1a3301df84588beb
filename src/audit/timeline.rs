//! The audit's changes in event-time order: two reports of one change made one, the guard's
//! own pushes told apart from the changes they repair, and each tag's previous image known
//! from what happened before it in time, whatever order the files were named or delivered in.

use std::collections::HashMap;

use super::report::{judge, HistoryEntry, Kind, Line, TagChange, Verdict, REPAIR_WINDOW_SECS};

/// How close in time CloudTrail's record and ECR's own event of one change are taken to be
/// (ECR sends its event as the call ends; CloudTrail's `eventTime` is the call's).
pub const SAME_CHANGE_SECS: i64 = 120;

/// The name the `change` column gives a push the guard made itself.
pub const GUARD_REPAIR: &str = "guard_repair";

/// Makes each change one, from `changes` in time order: a record read twice (the same event
/// id) is kept once, and CloudTrail's record and ECR's own event of the same change (same
/// repository, tag, image and direction, within [`SAME_CHANGE_SECS`]) become one change with
/// the facts of both: the caller, kind and event id of CloudTrail's record, the earlier time,
/// and the other report's id (its history records answer the change too).
pub fn merge(changes: impl IntoIterator<Item = TagChange>) -> Vec<TagChange> {
    let mut out: Vec<TagChange> = Vec::new();
    let mut merged: Vec<bool> = Vec::new();
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for c in changes {
        let key = same_change_key(&c);
        let earlier = by_key.entry(key).or_default();
        if earlier.iter().any(|&j| out[j].answers(&c.event_id)) {
            continue;
        }
        let partner = earlier.iter().rev().copied().find(|&j| {
            let o = &out[j];
            !merged[j] && o.from_ecr != c.from_ecr && close(o.epoch, c.epoch)
        });
        match partner {
            Some(j) => {
                merged[j] = true;
                join(&mut out[j], c);
            }
            None => {
                earlier.push(out.len());
                out.push(c);
                merged.push(false);
            }
        }
    }
    out
}

/// What makes two reports the same change: repository, tag, direction (a removal, or a push)
/// and image.
fn same_change_key(c: &TagChange) -> String {
    format!(
        "{}\u{0}{}\u{0}{}\u{0}{}",
        c.repo.key(),
        c.tag.as_deref().unwrap_or(""),
        c.kind.is_push(),
        c.digest.as_deref().unwrap_or("")
    )
}

fn close(a: Option<i64>, b: Option<i64>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if (a - b).abs() <= SAME_CHANGE_SECS)
}

/// Folds `later` (the other channel's report of the same change) into `first`.
fn join(first: &mut TagChange, later: TagChange) {
    if first.from_ecr {
        // CloudTrail's record names the caller and says how the image went (by tag, by
        // digest, by lifecycle); the time stays the first report's.
        first.also.push(std::mem::take(&mut first.event_id));
        first.event_id = later.event_id;
        first.who = later.who;
        first.arns = later.arns;
        first.kind = later.kind;
        first.from_ecr = false;
    } else {
        first.also.push(later.event_id);
    }
    first.also.extend(later.also);
}

/// One change judged: its report line, its verdict, and whether it is the guard's own push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judged {
    /// The line to print.
    pub line: Line,
    /// How the change stands (a guard's own push needs nothing).
    pub verdict: Verdict,
    /// The guard put the tag back with this push: the repair, not a change.
    pub guard_repair: bool,
}

/// What the audit knows of each tag so far, going forward in event time.
#[derive(Debug, Default)]
pub struct Timeline {
    /// The guard's role (`TAG_GUARD_ROLE_ARN`, or the embedded world's): its calls are its own.
    guard_role: Option<String>,
    /// The image each tag was last on (`None`: last removed).
    last: HashMap<String, Option<String>>,
    /// For a tag the guard just put back: the image, and the text naming that repair.
    put_back: HashMap<String, (String, String)>,
}

impl Timeline {
    /// A timeline that knows the guard by `guard_role`.
    pub fn new(guard_role: Option<String>) -> Timeline {
        Timeline {
            guard_role,
            ..Timeline::default()
        }
    }

    /// Judges the next change in time order. `protected`: whether the registry protects its
    /// tag (`None`: no registry); `deeds`: the tag's history; `pin`: the item's pin now.
    pub fn judge(
        &mut self,
        c: TagChange,
        protected: Option<bool>,
        deeds: &[HistoryEntry],
        pin: Option<&str>,
    ) -> Judged {
        let key = c.tag.as_ref().map(|t| format!("{}:{t}", c.repo.key()));
        if let Some(text) = self.guard_push(&c, key.as_deref(), deeds) {
            if let Some(k) = &key {
                self.put_back.remove(k);
                self.last.insert(k.clone(), c.digest.clone());
            }
            return Judged {
                line: line(c, GUARD_REPAIR, None, protected, Some(text)),
                verdict: Verdict::NoNeed,
                guard_repair: true,
            };
        }
        let (guard, verdict, pinned_before) = match (&c.tag, protected) {
            (Some(_), Some(true)) => judge(&c, deeds, pin),
            _ => (None, Verdict::NoNeed, None),
        };
        let mut kind = c.kind;
        let mut previous = None;
        if kind.is_push() {
            previous = key
                .as_ref()
                .and_then(|k| self.last.get(k).cloned().flatten())
                .or(pinned_before.clone());
            if previous.is_some() && previous != c.digest {
                kind = Kind::Moved;
            }
        }
        if let Some(k) = key {
            // Where the tag is after the change: put back by the guard, or as the change left it.
            let repaired = (verdict == Verdict::Repaired)
                .then_some(pinned_before)
                .flatten();
            let now = match &repaired {
                Some(d) => Some(d.clone()),
                None if c.kind.is_push() => c.digest.clone(),
                None => None,
            };
            self.last.insert(k.clone(), now);
            let pushed = deeds
                .iter()
                .any(|d| d.outcome == "restored" && c.answers(&d.event_id));
            match (repaired, &guard) {
                (Some(d), Some(text)) if pushed => {
                    let text = format!("the guard's repair of event {}: {text}", c.event_id);
                    self.put_back.insert(k, (d, text));
                }
                _ => {
                    self.put_back.remove(&k);
                }
            }
        }
        Judged {
            line: line(c, kind.name(), previous, protected, guard),
            verdict,
            guard_repair: false,
        }
    }

    /// Whether the push `c` is the guard's own, and the text that says so: a call by the
    /// guard's role, or a push of the tag onto the very image the guard's history says it put
    /// the tag back on (a change just before it, or a restore within [`REPAIR_WINDOW_SECS`]).
    /// Such a push can be no one else's: onto an image that already holds the tag, ECR
    /// refuses a push as `ImageAlreadyExistsException`, which changes nothing.
    fn guard_push(
        &self,
        c: &TagChange,
        key: Option<&str>,
        deeds: &[HistoryEntry],
    ) -> Option<String> {
        if !c.kind.is_push() {
            return None;
        }
        let digest = c.digest.as_deref()?;
        if let Some((d, text)) = key.and_then(|k| self.put_back.get(k)) {
            if d == digest {
                return Some(text.clone());
            }
        }
        let echo = c.epoch.and_then(|t| {
            deeds.iter().find(|d| {
                d.outcome == "restored"
                    && d.old_digest.as_deref() == Some(digest)
                    && d.at_epoch
                        .is_some_and(|a| (a - t).abs() <= REPAIR_WINDOW_SECS)
            })
        });
        if let Some(d) = echo {
            return Some(format!(
                "the guard's repair of event {}: {}",
                d.event_id,
                d.summary()
            ));
        }
        let role = self.guard_role.as_deref()?;
        c.arns
            .iter()
            .any(|a| crate::guard::is_same_role(role, a))
            .then(|| "the guard's own push (by its role)".to_string())
    }
}

fn line(
    c: TagChange,
    change: &'static str,
    previous_digest: Option<String>,
    protected: Option<bool>,
    guard: Option<String>,
) -> Line {
    Line {
        time: c.time,
        repository: c.repo.key(),
        tag: c.tag,
        change,
        digest: c.digest,
        previous_digest,
        who: c.who,
        event_id: c.event_id,
        protected,
        guard,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RepoKey;
    use serde_json::json;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const GUARD: &str = "arn:aws:iam::123456789012:role/ecr-tag-guard";

    fn change(id: &str, secs: i64, kind: Kind, digest: &str, who: Option<&str>) -> TagChange {
        let epoch = 1_795_996_800 + secs;
        TagChange {
            time: format!("t+{secs}"),
            epoch: Some(epoch),
            repo: RepoKey::parse("123456789012/eu-west-1/shop/api").unwrap(),
            tag: Some("prod".into()),
            kind,
            digest: Some(digest.into()),
            who: who.unwrap_or("not named").into(),
            arns: who.map(String::from).into_iter().collect(),
            event_id: id.into(),
            also: Vec::new(),
            from_ecr: who.is_none(),
        }
    }

    fn deed(event: &str, action: &str, outcome: &str, old: &str) -> HistoryEntry {
        HistoryEntry::read(&json!({"at": "2026-12-07T00:00:00Z", "event_id": event, "action": action,
            "outcome": outcome, "detail": "superseded: the tag has been pushed since", "old_digest": old}))
        .unwrap()
    }

    const BOB: &str = "arn:aws:iam::123456789012:user/bob";
    const DEPLOY: &str = "arn:aws:sts::123456789012:assumed-role/deploy/p-1";

    #[test]
    fn two_reports_of_one_change_keep_the_facts_of_both() {
        // ECR's event first (no caller), CloudTrail's record a second later, the same record
        // again from a second file, then an unrelated delete of the same image by someone else
        // ten minutes on.
        let got = merge([
            change("ecr-1", 0, Kind::Deleted, A, None),
            change("ct-1", 1, Kind::ImageDeleted, A, Some(DEPLOY)),
            change("ct-1", 1, Kind::ImageDeleted, A, Some(DEPLOY)),
            change("ct-2", 600, Kind::Deleted, A, Some(BOB)),
        ]);
        assert_eq!(got.len(), 2);
        let one = &got[0];
        assert_eq!(
            (one.event_id.as_str(), one.who.as_str(), one.kind),
            ("ct-1", DEPLOY, Kind::ImageDeleted)
        );
        assert_eq!(one.time, "t+0", "the time of the first report");
        assert!(one.answers("ecr-1") && !one.from_ecr);
        assert_eq!(got[1].event_id, "ct-2");
        // Two CloudTrail records are two changes, however close; a push is not a removal.
        let got = merge([
            change("ct-3", 0, Kind::Deleted, A, Some(BOB)),
            change("ct-4", 1, Kind::Deleted, A, Some(BOB)),
            change("ecr-5", 1, Kind::Pushed, A, None),
        ]);
        assert_eq!(got.len(), 3);
        // Out of the window: ECR's event stays on its own.
        let got = merge([
            change("ct-6", 0, Kind::Deleted, A, Some(BOB)),
            change("ecr-6", SAME_CHANGE_SECS + 1, Kind::Deleted, A, None),
        ]);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn the_guards_push_after_its_restore_is_the_repair_not_a_change() {
        let mut t = Timeline::new(None);
        let restored = deed("ct-1", "restore", "restored", A);
        let deeds = [restored];
        let del = t.judge(
            change("ct-1", 0, Kind::Deleted, A, Some(BOB)),
            Some(true),
            &deeds,
            Some(A),
        );
        assert_eq!(del.verdict, Verdict::Repaired);
        assert!(!del.guard_repair);
        // ECR's PUSH of the restore: no caller, the image the guard put the tag back on.
        let push = t.judge(
            change("ecr-2", 2, Kind::Pushed, A, None),
            Some(true),
            &deeds,
            Some(A),
        );
        assert!(push.guard_repair);
        assert_eq!(push.line.change, GUARD_REPAIR);
        assert!(push
            .line
            .guard
            .as_deref()
            .unwrap()
            .starts_with("the guard's repair of event ct-1: restored at"));
        // A later push elsewhere by a person is a move from the image the guard put back.
        let moved = t.judge(
            change("ct-3", 60, Kind::Pushed, B, Some(BOB)),
            Some(true),
            &deeds,
            Some(A),
        );
        assert!(!moved.guard_repair);
        assert_eq!(moved.line.change, "moved");
        assert_eq!(moved.line.previous_digest.as_deref(), Some(A));
    }

    #[test]
    fn a_restore_recorded_about_then_names_a_push_the_guards_when_its_change_is_not_read() {
        // Reconcile put the tag back on A two minutes after a delete this audit did not read.
        let deeds = [HistoryEntry::read(
            &json!({"at": "2026-11-30T00:02:00Z", "event_id": "reconcile-1",
            "action": "restore", "outcome": "restored", "old_digest": A}),
        )
        .unwrap()];
        let mut t = Timeline::new(None);
        let push = t.judge(
            change("ecr-1", 121, Kind::Pushed, A, None),
            Some(true),
            &deeds,
            Some(B),
        );
        assert!(push.guard_repair);
        assert!(push
            .line
            .guard
            .unwrap()
            .starts_with("the guard's repair of event reconcile-1"));
        // A push of another image at that time is not.
        let other = t.judge(
            change("ecr-2", 122, Kind::Pushed, B, None),
            Some(true),
            &deeds,
            Some(B),
        );
        assert!(!other.guard_repair);
    }

    #[test]
    fn a_push_by_the_guards_role_is_its_own_and_a_persons_is_not() {
        let mut t = Timeline::new(Some(GUARD.into()));
        let session = "arn:aws:sts::123456789012:assumed-role/ecr-tag-guard/fn";
        let own = t.judge(
            change("ct-1", 0, Kind::Pushed, A, Some(session)),
            Some(true),
            &[],
            Some(A),
        );
        assert!(own.guard_repair);
        let mut t = Timeline::new(Some(GUARD.into()));
        let person = t.judge(
            change("ct-1", 0, Kind::Pushed, A, Some(BOB)),
            Some(true),
            &[],
            Some(A),
        );
        assert!(!person.guard_repair);
        assert_eq!(person.verdict, Verdict::NoNeed, "onto the pin");
        // Without a role and without a restore in the history, a push is a push.
        let mut t = Timeline::new(None);
        let other = t.judge(
            change("ct-1", 0, Kind::Pushed, B, Some(session)),
            Some(true),
            &[],
            Some(A),
        );
        assert!(!other.guard_repair);
        assert_eq!(other.verdict, Verdict::NotRepaired);
    }

    #[test]
    fn an_already_in_place_repair_pushed_nothing_so_the_next_push_is_a_persons() {
        let mut t = Timeline::new(None);
        let deeds = [deed("ct-1", "restore", "already_in_place", A)];
        t.judge(
            change("ct-1", 0, Kind::Deleted, A, Some(BOB)),
            Some(true),
            &deeds,
            Some(A),
        );
        let push = t.judge(
            change("ct-2", 1, Kind::Pushed, A, Some(BOB)),
            Some(true),
            &deeds,
            Some(A),
        );
        assert!(!push.guard_repair);
    }

    #[test]
    fn a_superseded_decision_says_why_and_needs_nothing() {
        let mut t = Timeline::new(None);
        let deeds = [deed("ct-1", "superseded", "skipped", A)];
        let j = t.judge(
            change("ct-1", 0, Kind::Deleted, A, Some(BOB)),
            Some(true),
            &deeds,
            Some(B),
        );
        assert_eq!(j.verdict, Verdict::NoNeed);
        assert_eq!(
            j.line.guard.as_deref(),
            Some(
                "nothing to do (superseded: the tag has been pushed since) at 2026-12-07T00:00:00Z"
            )
        );
    }

    #[test]
    fn the_previous_image_comes_from_what_happened_before_in_time() {
        let mut t = Timeline::new(None);
        let first = t.judge(
            change("ct-1", 0, Kind::Pushed, A, Some(DEPLOY)),
            None,
            &[],
            None,
        );
        assert_eq!(first.line.change, "pushed");
        let second = t.judge(
            change("ct-2", 10, Kind::Pushed, B, Some(DEPLOY)),
            None,
            &[],
            None,
        );
        assert_eq!(
            (second.line.change, second.line.previous_digest.as_deref()),
            ("moved", Some(A))
        );
    }
}
