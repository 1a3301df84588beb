//! Report lines: a change read from CloudTrail, one line per tag, with whether the registry
//! protects the tag and what the guard's history records for the change. The three ways to
//! print them (aligned table, JSON lines, CSV) are [`super::print`].

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::events::{Actor, Change, Incident};
use crate::registry::{RepoKey, TagRule};
use crate::text::{clean, short_digest};

pub use super::print::{Format, Printer};

/// What the registry says about one repository, as far as an audit needs it.
#[derive(Clone, Debug, Default)]
pub struct RepoView {
    /// Every tag with an item (a tag item or a rule's pin), with its pin's digest.
    pub pins: BTreeMap<String, Option<String>>,
    /// The pattern rules that cover the repository.
    pub rules: Vec<TagRule>,
}

impl RepoView {
    /// Whether the registry may protect `tag`: it has an item, or a rule's pattern matches it
    /// (a rule protects only the newest images it matches: see [`RepoView::protects`]).
    pub fn may_protect(&self, tag: &str) -> bool {
        self.pins.contains_key(tag) || self.rules.iter().any(|r| r.group_of(tag).is_some())
    }

    /// Whether the registry protects `tag` for `change`, by `deeds`, the tag's
    /// history: it has an item for it now, or a rule matches it and the guard recorded acting
    /// on that very change (a rule protects only the newest images it matches, so a match
    /// alone does not say the tag was protected then).
    pub fn protects(&self, tag: &str, change: &TagChange, deeds: &[HistoryEntry]) -> bool {
        self.pins.contains_key(tag)
            || (self.may_protect(tag) && deeds.iter().any(|d| change.answers(&d.event_id)))
    }

    /// The tags whose pin is `digest` (for a delete that names the image, not its tags).
    pub fn tags_on(&self, digest: &str) -> Vec<String> {
        self.pins
            .iter()
            .filter(|(_, d)| d.as_deref() == Some(digest))
            .map(|(t, _)| t.clone())
            .collect()
    }
}

/// One record of a tag's history, as an audit reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// When the guard acted (RFC 3339).
    pub at: String,
    /// The same, as epoch seconds.
    pub at_epoch: Option<i64>,
    /// The event it acted on.
    pub event_id: String,
    /// What it did (`restore`, `revert`, `follow`, ...).
    pub action: String,
    /// How it went (`restored`, `failed`, ...).
    pub outcome: String,
    /// The reason or ECR's words.
    pub detail: String,
    /// The pin before.
    pub old_digest: Option<String>,
}

impl HistoryEntry {
    /// A history record as the table or the embedded world holds it; `None` when it lacks
    /// the fields every record has.
    pub fn read(v: &Value) -> Option<HistoryEntry> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(|s| clean(s, 300));
        let at = s("at")?;
        Some(HistoryEntry {
            at_epoch: crate::text::parse_time(&Value::String(at.clone())),
            at,
            event_id: s("event_id")?,
            action: s("action")?,
            outcome: s("outcome")?,
            detail: s("detail").unwrap_or_default(),
            old_digest: s("old_digest"),
        })
    }

    /// What it did, in a few words: `restored at T`, `failed at T: why`, ...
    pub fn summary(&self) -> String {
        let at = &self.at;
        let why = || clean(&self.detail, 200);
        match (self.action.as_str(), self.outcome.as_str()) {
            ("revert", "restored") => format!("reverted at {at}"),
            (_, "restored") => format!("restored at {at}"),
            (_, "already_in_place") => format!("already in place at {at}"),
            (_, "followed") => format!("followed at {at}"),
            (_, "released") => format!("released at {at}"),
            (_, "pinned") => format!("pinned at {at}"),
            (_, "alerted") => format!("paged at {at}, not put back: {}", why()),
            (_, "failed") => format!("failed at {at}: {}", why()),
            (_, "refused") => format!("refused at {at}: {}", why()),
            (_, "untrusted_pin") => format!("untrusted pin at {at}, not put back: {}", why()),
            (_, "unarchiving") => format!("unarchiving at {at}"),
            (_, "conflict") => format!("item changed meanwhile at {at}, not put back"),
            ("superseded", "skipped") => {
                let why = why();
                let why = why.strip_prefix("superseded: ").unwrap_or(&why);
                format!("nothing to do (superseded: {why}) at {at}")
            }
            (action, "skipped") => format!("nothing to do ({action}) at {at}"),
            (action, outcome) => format!("{action} {outcome} at {at}"),
        }
    }

    /// What this record means for the change it answers.
    pub fn verdict(&self) -> Verdict {
        match self.outcome.as_str() {
            "restored" | "already_in_place" | "unarchiving" => Verdict::Repaired,
            "followed" | "released" | "pinned" => Verdict::Accepted,
            "skipped" => Verdict::NoNeed,
            _ => Verdict::NotRepaired,
        }
    }
}

/// How a protected change stands, by the guard's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The guard put the tag back.
    Repaired,
    /// The guard took the change as allowed (followed a move, released a pin).
    Accepted,
    /// Nothing needed doing (the tag was already where the pin says).
    NoNeed,
    /// Nothing put it back: the guard failed, refused, only paged, or has no record.
    NotRepaired,
}

/// How long after a change the history is searched for a repair made under another event's
/// id (ECR's own event of the same delete, a reconcile run).
pub const REPAIR_WINDOW_SECS: i64 = 24 * 3600;

/// What the guard's history says about one change of a protected tag: its record for the
/// event (for any report of the change), or else the first repair of the tag within
/// [`REPAIR_WINDOW_SECS`] after it (a record under another id: reconcile, a later event).
/// `pin` is the item's pin now: a push onto it needs nothing. Returns the text for the
/// `guard` column, the verdict and the pin before the change as the record says (for a
/// repair: the image the tag was put back on). The guard's own pushes are told apart before
/// this is asked ([`super::timeline`]).
pub fn judge(
    c: &TagChange,
    deeds: &[HistoryEntry],
    pin: Option<&str>,
) -> (Option<String>, Verdict, Option<String>) {
    let own = deeds
        .iter()
        .filter(|d| c.answers(&d.event_id))
        .min_by_key(|d| (rank(d.verdict()), d.at.clone()));
    if let Some(d) = own {
        if d.verdict() != Verdict::NoNeed {
            return (Some(d.summary()), d.verdict(), d.old_digest.clone());
        }
    }
    let later = c.epoch.and_then(|t| {
        deeds
            .iter()
            .filter(|d| d.verdict() == Verdict::Repaired)
            .filter(|d| {
                d.at_epoch
                    .is_some_and(|a| a >= t && a <= t + REPAIR_WINDOW_SECS)
            })
            .min_by_key(|d| d.at_epoch)
    });
    if let Some(d) = later {
        let text = format!("{} (event {})", d.summary(), d.event_id);
        return (Some(text), Verdict::Repaired, d.old_digest.clone());
    }
    if let Some(d) = own {
        return (Some(d.summary()), Verdict::NoNeed, d.old_digest.clone());
    }
    let onto_pin = c.kind.is_push() && pin.is_some() && c.digest.as_deref() == pin;
    if onto_pin {
        return (
            Some("onto the pin: nothing to do".into()),
            Verdict::NoNeed,
            None,
        );
    }
    (None, Verdict::NotRepaired, None)
}

/// Which of an event's records speaks for it: a failure before a success of the same event
/// would hide that it was put back in the end, so successes first.
fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::Repaired => 0,
        Verdict::Accepted => 1,
        Verdict::NotRepaired => 2,
        Verdict::NoNeed => 3,
    }
}

/// The kind of change, as the report names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The tag was removed (`BatchDeleteImage` by tag).
    Deleted,
    /// The image was deleted by digest, with its tags.
    ImageDeleted,
    /// A lifecycle rule expired the image.
    Expired,
    /// The tag was pushed (no earlier image known).
    Pushed,
    /// The tag moved from a known image to another.
    Moved,
    /// The repository was deleted.
    RepositoryDeleted,
}

impl Kind {
    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Deleted => "deleted",
            Kind::ImageDeleted => "image_deleted",
            Kind::Expired => "expired",
            Kind::Pushed => "pushed",
            Kind::Moved => "moved",
            Kind::RepositoryDeleted => "repository_deleted",
        }
    }

    /// A push (the tag now points at `digest`).
    pub fn is_push(self) -> bool {
        matches!(self, Kind::Pushed | Kind::Moved)
    }
}

/// One tag's change, before the registry and history are asked about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagChange {
    /// When (as the record says).
    pub time: String,
    /// The same as epoch seconds.
    pub epoch: Option<i64>,
    /// The repository.
    pub repo: RepoKey,
    /// The tag; `None` when the record does not name one (an image or repository deleted
    /// whose tags are not known).
    pub tag: Option<String>,
    /// What happened.
    pub kind: Kind,
    /// The image concerned: the deleted one, or the one a push points the tag at.
    pub digest: Option<String>,
    /// Who did it.
    pub who: String,
    /// The caller's ARNs (none when the report names nobody).
    pub arns: Vec<String>,
    /// The record's event id (CloudTrail's, where CloudTrail reported the change).
    pub event_id: String,
    /// The ids of the other reports of this same change (ECR's own event of it).
    pub also: Vec<String>,
    /// Reported by ECR's own event (which names no caller), not by CloudTrail.
    pub from_ecr: bool,
}

impl TagChange {
    /// Whether the event `id` reported this change.
    pub fn answers(&self, id: &str) -> bool {
        self.event_id == id || self.also.iter().any(|a| a == id)
    }
}

/// The changes of one incident, one per tag. Tags a record does not name (a delete by
/// digest, a repository deleted) are the registry's tags on that image or in that
/// repository when `view` is given, else one change with no tag.
pub fn tag_changes(i: &Incident, view: Option<&RepoView>) -> Vec<TagChange> {
    let epoch = crate::text::parse_time(&Value::String(i.time.clone()));
    let arns: Vec<String> = i.actor.arns().into_iter().map(String::from).collect();
    let one = |tag: Option<String>, kind: Kind, digest: Option<String>, who: String| TagChange {
        time: i.time.clone(),
        epoch,
        repo: i.repo.clone(),
        tag,
        kind,
        digest,
        who,
        arns: arns.clone(),
        event_id: i.event_id.clone(),
        also: Vec::new(),
        from_ecr: i.is_ecr_event(),
    };
    let mut out = Vec::new();
    for c in &i.changes {
        match c {
            Change::TagRemoved { tag, digest } => out.push(one(
                Some(tag.clone()),
                Kind::Deleted,
                digest.clone(),
                i.actor.describe(None),
            )),
            Change::ImageDeleted { digest, tags, rule } => {
                let kind = if rule.is_some() || i.actor == Actor::Lifecycle {
                    Kind::Expired
                } else {
                    Kind::ImageDeleted
                };
                let mut tags = tags.clone();
                if tags.is_empty() {
                    tags = view.map(|v| v.tags_on(digest)).unwrap_or_default();
                }
                let tags: Vec<Option<String>> = if tags.is_empty() {
                    vec![None]
                } else {
                    tags.into_iter().map(Some).collect()
                };
                for tag in tags {
                    out.push(one(
                        tag,
                        kind,
                        Some(digest.clone()),
                        i.actor.describe(*rule),
                    ));
                }
            }
            Change::TagPushed { tag, digest, .. } => out.push(one(
                Some(tag.clone()),
                Kind::Pushed,
                Some(digest.clone()),
                i.actor.describe(None),
            )),
            Change::RepositoryDeleted => {
                let tags: Vec<Option<String>> = match view {
                    Some(v) if !v.pins.is_empty() => v.pins.keys().cloned().map(Some).collect(),
                    _ => vec![None],
                };
                for tag in tags {
                    out.push(one(
                        tag,
                        Kind::RepositoryDeleted,
                        None,
                        i.actor.describe(None),
                    ));
                }
            }
        }
    }
    out
}

/// One line of the report, with exactly the fields `--json` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Line {
    /// When (as the record says).
    pub time: String,
    /// `ACCOUNT/REGION/NAME`.
    pub repository: String,
    /// The tag (`null` when the record names none and the registry knows none).
    pub tag: Option<String>,
    /// `deleted`, `image_deleted`, `expired`, `pushed`, `moved`, `repository_deleted`.
    pub change: &'static str,
    /// The image concerned: the deleted one, or the new one for a push.
    pub digest: Option<String>,
    /// The image the tag was on before a push, when known.
    pub previous_digest: Option<String>,
    /// The caller's ARN, or `lifecycle policy rule N`.
    pub who: String,
    /// The CloudTrail event id (or the event's own id).
    pub event_id: String,
    /// Whether the registry protects the tag (`null` without a registry).
    pub protected: Option<bool>,
    /// What the guard's history records for the change (`null`: nothing).
    pub guard: Option<String>,
}

/// The columns, in order, as `--csv` and the table name them.
pub const COLUMNS: [&str; 10] = [
    "time",
    "repository",
    "tag",
    "change",
    "digest",
    "previous_digest",
    "who",
    "event_id",
    "protected",
    "guard",
];

impl Line {
    /// The fields as text, in [`COLUMNS`] order (`""` for none); `short` shortens digests.
    pub(super) fn cells(&self, short: bool) -> [String; 10] {
        let digest = |d: &Option<String>| match d {
            Some(d) if short => short_digest(d).to_string(),
            Some(d) => d.clone(),
            None => String::new(),
        };
        [
            self.time.clone(),
            self.repository.clone(),
            self.tag.clone().unwrap_or_default(),
            self.change.to_string(),
            digest(&self.digest),
            digest(&self.previous_digest),
            self.who.clone(),
            self.event_id.clone(),
            self.protected.map_or(String::new(), |p| p.to_string()),
            self.guard.clone().unwrap_or_default(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn repo() -> RepoKey {
        RepoKey::parse("123456789012/eu-west-1/shop/api").unwrap()
    }

    fn incident(actor: Actor, changes: Vec<Change>) -> Incident {
        Incident {
            event_id: "e1".into(),
            source: "CloudTrail".into(),
            time: "2026-11-30T10:00:00Z".into(),
            repo: repo(),
            actor,
            changes,
            note: None,
        }
    }

    fn bob() -> Actor {
        Actor::Principal {
            arn: "arn:aws:iam::123456789012:user/bob".into(),
            role_arn: None,
        }
    }

    fn deed(event: &str, at: &str, action: &str, outcome: &str) -> HistoryEntry {
        HistoryEntry::read(&json!({"at": at, "event_id": event, "action": action, "outcome": outcome, "detail": "why", "old_digest": A})).unwrap()
    }

    #[test]
    fn one_line_per_tag_and_the_registry_names_tags_a_record_does_not() {
        let view = RepoView {
            pins: [
                ("prod".to_string(), Some(A.to_string())),
                ("beta".into(), Some(B.into())),
            ]
            .into(),
            rules: Vec::new(),
        };
        let by_digest = incident(
            bob(),
            vec![Change::ImageDeleted {
                digest: A.into(),
                tags: vec![],
                rule: None,
            }],
        );
        let got = tag_changes(&by_digest, Some(&view));
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].tag.as_deref(), got[0].kind),
            (Some("prod"), Kind::ImageDeleted)
        );
        assert_eq!(tag_changes(&by_digest, None)[0].tag, None);
        let expired = incident(
            Actor::Lifecycle,
            vec![Change::ImageDeleted {
                digest: B.into(),
                tags: vec!["x".into(), "y".into()],
                rule: Some(3),
            }],
        );
        let got = tag_changes(&expired, Some(&view));
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].who, "lifecycle policy rule 3");
        assert_eq!(got[1].kind, Kind::Expired);
        let gone = incident(bob(), vec![Change::RepositoryDeleted]);
        assert_eq!(tag_changes(&gone, Some(&view)).len(), 2);
        assert_eq!(tag_changes(&gone, None)[0].tag, None);
        let e1 = &got[0];
        assert!(view.protects("prod", e1, &[]) && !view.protects("dev", e1, &[]));
    }

    #[test]
    fn a_rule_match_is_protection_only_where_the_guard_acted_on_the_change() {
        let rule = crate::registry::parse_rule(&json!({
            "repository": crate::registry::RULE_PARTITION, "tag": "builds",
            "repositories": "123456789012/eu-west-1/*", "pattern": "^build-[0-9]+$", "keep": 3
        }))
        .unwrap();
        let view = RepoView {
            pins: BTreeMap::new(),
            rules: vec![rule],
        };
        assert!(view.may_protect("build-7") && !view.may_protect("dev"));
        let expired = |id: &str| {
            let mut i = incident(
                Actor::Lifecycle,
                vec![Change::ImageDeleted {
                    digest: A.into(),
                    tags: vec!["build-7".into()],
                    rule: Some(1),
                }],
            );
            i.event_id = id.into();
            tag_changes(&i, Some(&view)).remove(0)
        };
        // An old build expired by lifecycle: beyond the newest three, the guard did nothing.
        assert!(!view.protects("build-7", &expired("e1"), &[]));
        let restored = deed("e1", "2026-11-30T10:00:02Z", "restore", "restored");
        assert!(view.protects("build-7", &expired("e1"), std::slice::from_ref(&restored)));
        assert!(!view.protects("build-7", &expired("e2"), std::slice::from_ref(&restored)));
        // ECR's own event of the same change, merged with CloudTrail's record, answers too.
        let mut merged = expired("e2");
        merged.also.push("e1".into());
        assert!(view.protects("build-7", &merged, &[restored]));
    }

    #[test]
    fn the_guard_column_reads_the_events_own_record_first() {
        let c = &tag_changes(
            &incident(
                bob(),
                vec![Change::TagRemoved {
                    tag: "prod".into(),
                    digest: Some(A.into()),
                }],
            ),
            None,
        )[0];
        let restored = deed("e1", "2026-11-30T10:00:02Z", "restore", "restored");
        let (text, v, old) = judge(c, &[restored], Some(A));
        assert_eq!(text.as_deref(), Some("restored at 2026-11-30T10:00:02Z"));
        assert_eq!((v, old.as_deref()), (Verdict::Repaired, Some(A)));
        let failed = deed("e1", "2026-11-30T10:00:02Z", "restore", "failed");
        let (text, v, _) = judge(c, &[failed], Some(A));
        assert_eq!(text.as_deref(), Some("failed at 2026-11-30T10:00:02Z: why"));
        assert_eq!(v, Verdict::NotRepaired);
        // Superseded by ECR's own event of the same delete, put back under its id.
        let skipped = deed("e1", "2026-11-30T10:00:09Z", "superseded", "skipped");
        let other = deed("ecr-1", "2026-11-30T10:00:01Z", "restore", "restored");
        let (text, v, _) = judge(c, &[skipped, other], Some(A));
        assert_eq!(v, Verdict::Repaired);
        assert!(text.unwrap().ends_with("(event ecr-1)"));
        // A repair before the change, or a day later, is not this change's.
        let early = deed("r", "2026-11-30T09:59:59Z", "restore", "restored");
        let late = deed("r", "2026-12-01T10:00:01Z", "restore", "restored");
        assert_eq!(
            judge(c, &[early, late], Some(A)),
            (None, Verdict::NotRepaired, None)
        );
        assert_eq!(judge(c, &[], Some(A)).1, Verdict::NotRepaired);
    }

    #[test]
    fn a_push_onto_the_pin_needs_nothing_and_a_move_does() {
        let push = |d: &str| {
            tag_changes(
                &incident(
                    bob(),
                    vec![Change::TagPushed {
                        tag: "prod".into(),
                        digest: d.into(),
                        manifest: None,
                    }],
                ),
                None,
            )
            .remove(0)
        };
        assert_eq!(judge(&push(A), &[], Some(A)).1, Verdict::NoNeed);
        assert_eq!(judge(&push(B), &[], Some(A)).1, Verdict::NotRepaired);
        let followed = deed("e1", "2026-11-30T10:00:02Z", "follow", "followed");
        assert_eq!(judge(&push(B), &[followed], Some(B)).1, Verdict::Accepted);
        // A restore of another change onto A is not this push's repair.
        let restored = deed("d1", "2026-11-30T09:59:59Z", "restore", "restored");
        assert_eq!(
            judge(&push(B), &[restored], Some(A)).1,
            Verdict::NotRepaired
        );
    }

    fn line() -> Line {
        Line {
            time: "2026-11-30T10:00:00Z".into(),
            repository: repo().key(),
            tag: Some("prod".into()),
            change: "deleted",
            digest: Some(A.into()),
            previous_digest: None,
            who: "arn:aws:iam::123456789012:user/bob".into(),
            event_id: "e1".into(),
            protected: Some(true),
            guard: Some("failed at T: ECR said \"no\", twice".into()),
        }
    }

    #[test]
    fn json_has_exactly_the_fields_and_csv_quotes_what_it_must() {
        let mut out = Vec::new();
        let mut p = Printer::new(&mut out, Format::Json);
        p.line(&line()).unwrap();
        p.finish().unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = COLUMNS.to_vec();
        want.sort();
        let mut keys = keys.clone();
        keys.sort();
        assert_eq!(keys, want);
        assert_eq!(v["previous_digest"], Value::Null);
        let mut out = Vec::new();
        let mut p = Printer::new(&mut out, Format::Csv);
        p.line(&line()).unwrap();
        p.finish().unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows[0], COLUMNS.join(","));
        assert!(
            rows[1].ends_with(",true,\"failed at T: ECR said \"\"no\"\", twice\""),
            "{}",
            rows[1]
        );
    }

    #[test]
    fn the_table_aligns_its_columns() {
        let mut out = Vec::new();
        let mut p = Printer::new(&mut out, Format::Table);
        let mut second = line();
        second.tag = Some("a-much-longer-tag".into());
        p.line(&line()).unwrap();
        p.line(&second).unwrap();
        p.finish().unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<&str> = text.lines().collect();
        assert!(rows[0].starts_with("TIME"));
        let col = |r: &str| r.find("deleted").unwrap();
        assert_eq!(col(rows[1]), col(rows[2]));
        assert!(rows[1].contains("sha256:aaaaaaaaaaaa ") && !rows[1].contains(A));
    }
}
