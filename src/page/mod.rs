//! The page: what on-call receives through SNS. [`alarm`] words it from a decision; this
//! formats it.
//!
//! * subject: under 100 ASCII characters, `[SEVERITY] TAG in REPOSITORY: HEADLINE`;
//! * message: a text block a person can act on, then `--- JSON ---` and the same facts as JSON;
//! * attributes: `severity`, `repository`, `tag`, `action` for subscription filter policies.
//!
//! Every value that came from an event is cleaned: no control characters reach the page.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

pub mod alarm;
#[cfg(test)]
mod bounds_tests;
pub mod chat;
pub mod links;

pub use alarm::{report, Alarm};

use crate::events::Incident;
use crate::guard::{self, Decision};
use crate::registry::Severity;
use crate::text::clean;

/// SNS subjects must be shorter than 100 characters.
pub const SUBJECT_MAX: usize = 99;

/// One message to publish.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// SNS `Subject`.
    pub subject: String,
    /// SNS `Message`.
    pub message: String,
    /// SNS message attributes (all `String`).
    pub attributes: BTreeMap<String, String>,
}

/// Renders the page for one decision.
pub fn render(incident: &Incident, d: &Decision, alarm: &Alarm) -> Page {
    let (text, facts) = tag_facts(incident, d, alarm);
    let subject = subject(alarm, &incident.repo.name, &d.tag);
    let message = format!(
        "ecr-tag-guard: {subject}\n\n{text}{}\n--- JSON ---\n{}\n",
        trailer(incident),
        serde_json::to_string_pretty(&facts).unwrap_or_default()
    );
    Page {
        subject,
        message,
        attributes: attributes(
            alarm.severity,
            &incident.repo.key(),
            &[&d.tag],
            alarm.action,
        ),
    }
}

/// Renders one page for everything one incident (an event, or a reconcile run in one
/// repository) did to the tags of its repository: a mass change reaches on-call as one page
/// listing every tag, not one page per tag. `None` when there is nothing to page; one
/// decision gives exactly [`render`]'s page. The severity is the highest among the tags, the
/// `action` attribute that of the first tag with it; the `tag` attribute lists every tag.
pub fn render_all(incident: &Incident, alarms: &[(&Decision, Alarm)]) -> Option<Page> {
    let [(d, alarm)] = alarms else {
        let top = alarms.iter().map(|(_, a)| a).reduce(|best, a| {
            if a.severity > best.severity {
                a
            } else {
                best
            }
        })?;
        return Some(render_group(incident, alarms, top));
    };
    Some(render(incident, d, alarm))
}

/// How many tags a grouped page tells in full (problems first); the others it counts and
/// names, and each tag's history holds the rest.
pub const DETAIL_MAX: usize = 25;

/// The most bytes of tag names one page lists (in its text, its JSON and its `tag` attribute).
pub const NAMES_MAX_BYTES: usize = 16 * 1024;

/// What SNS takes in one message, body and attributes together (256 KiB).
pub const SNS_MESSAGE_MAX: usize = 256 * 1024;

/// The size every page is kept under: SNS's limit, less room for the envelope SNS adds.
pub const PAGE_MAX_BYTES: usize = SNS_MESSAGE_MAX - 8 * 1024;

impl Page {
    /// Its size as SNS counts it: subject, body, and each attribute's name, type and value.
    pub fn size(&self) -> usize {
        let attrs: usize = self
            .attributes
            .iter()
            .map(|(k, v)| k.len() + v.len() + attribute_type(k).len())
            .sum();
        self.subject.len() + self.message.len() + attrs
    }
}

/// An outcome on-call must act on: not put right, or only paged.
fn is_problem(action: &str) -> bool {
    matches!(action, "failed" | "refused" | "untrusted_pin" | "alert")
}

/// One page for many tags, kept under [`PAGE_MAX_BYTES`] whatever their number: the counts by
/// outcome, the problems first, at most [`DETAIL_MAX`] tags in full (fewer when their text is
/// long), the other tags' names within [`NAMES_MAX_BYTES`], and where the rest is.
fn render_group(incident: &Incident, alarms: &[(&Decision, Alarm)], top: &Alarm) -> Page {
    let in_order: Vec<&(&Decision, Alarm)> = alarms.iter().collect();
    let problems_first: Vec<&(&Decision, Alarm)> = alarms
        .iter()
        .filter(|(_, a)| is_problem(a.action))
        .chain(alarms.iter().filter(|(_, a)| !is_problem(a.action)))
        .collect();
    let mut detail = DETAIL_MAX.min(alarms.len());
    loop {
        // Every tag told in full: in the event's order; fewer: the problems first.
        let ordered = if detail < alarms.len() {
            &problems_first
        } else {
            &in_order
        };
        let page = group_page(incident, alarms, ordered, top, detail);
        if page.size() <= PAGE_MAX_BYTES || detail == 0 {
            return page;
        }
        detail /= 2;
    }
}

/// [`render_group`]'s page telling the first `detail` of `ordered` in full.
fn group_page(
    incident: &Incident,
    alarms: &[(&Decision, Alarm)],
    ordered: &[&(&Decision, Alarm)],
    top: &Alarm,
    detail: usize,
) -> Page {
    let total = ordered.len();
    let repo = clean(&incident.repo.key(), 300);
    let subject = group_subject(top.severity, &incident.repo.name, alarms);
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for (_, a) in ordered {
        match counts.iter_mut().find(|(name, _)| *name == a.action) {
            Some((_, n)) => *n += 1,
            None => counts.push((a.action, 1)),
        }
    }
    let counted: Vec<String> = counts.iter().map(|(a, n)| format!("{n} {a}")).collect();
    // Tag names, problems first, as many as the budget holds.
    let mut names: Vec<String> = Vec::new();
    let mut bytes = 0;
    for (d, _) in ordered {
        let name = clean(&d.tag, 128);
        bytes += name.len() + 4;
        if bytes > NAMES_MAX_BYTES {
            break;
        }
        names.push(name);
    }
    let mut text = format!("{:<16}{total} protected tags of {repo}\n", "Tags:");
    text.push_str(&format!("{:<16}{}\n", "Outcome:", counted.join(", ")));
    let more = (detail < total).then(|| {
        format!(
            "the first {detail} tags are told in full (problems first); every tag's own record is in its history: `ecr-tag-guard history {repo}:TAG`, and `ecr-tag-guard status` shows where each stands now"
        )
    });
    if let Some(m) = &more {
        text.push_str(&format!("{:<16}{m}\n", "Shown:"));
    }
    let mut changes = Vec::new();
    for (i, (d, alarm)) in ordered.iter().take(detail).enumerate() {
        let (block, facts) = tag_facts(incident, d, alarm);
        text.push_str(&format!("\n[{}/{total}]\n{block}", i + 1));
        changes.push(facts);
    }
    if detail < total {
        let rest: Vec<&str> = names.iter().skip(detail).map(String::as_str).collect();
        let unnamed = total - detail - rest.len();
        text.push_str(&format!("\n{:<16}{}", "Also:", rest.join(", ")));
        if unnamed > 0 {
            text.push_str(&format!(" and {unnamed} more"));
        }
        text.push('\n');
    }
    let facts = json!({
        "action": top.action,
        "severity": top.severity.as_str(),
        "repository": repo,
        "counts": counts.iter().map(|(a, n)| (a.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "tags_total": total,
        "tags": names,
        "event_id": clean(&incident.event_id, 100),
        "source": clean(&incident.source, 100),
        "changes": changes,
        "more": more,
    });
    let message = format!(
        "ecr-tag-guard: {subject}\n\n{text}\n{}\n--- JSON ---\n{}\n",
        trailer(incident),
        serde_json::to_string_pretty(&facts).unwrap_or_default()
    );
    let listed: Vec<&str> = names.iter().map(String::as_str).collect();
    Page {
        subject,
        message,
        attributes: attributes(top.severity, &incident.repo.key(), &listed, top.action),
    }
}

/// One tag's lines (What … Notes) and the same facts as JSON.
fn tag_facts(incident: &Incident, d: &Decision, alarm: &Alarm) -> (String, serde_json::Value) {
    let repo = clean(&incident.repo.key(), 300);
    let tag = clean(&d.tag, 128);
    let who = clean(&guard::who(incident, &d.cause), 300);
    let when = clean(&incident.time, 40);
    let dash = |v: &Option<String>| v.as_deref().map_or("-".to_string(), |s| clean(s, 80));
    let mut text = String::new();
    let mut line = |k: &str, v: &str| text.push_str(&format!("{k:<16}{v}\n"));
    line("What:", &format!("{}.", clean(&alarm.happened, 300)));
    line("Tag:", &format!("{repo}:{tag}"));
    line("Who:", &who);
    line("When:", &when);
    line("Pinned digest:", &dash(&alarm.old_digest));
    line("New digest:", &dash(&alarm.new_digest));
    let image = alarm
        .old_digest
        .as_deref()
        .and_then(|d| links::image(&incident.repo, d));
    if let Some(link) = &image {
        line("Pinned image:", link);
    }
    let did = clean(&alarm.did, 1000);
    let todo = alarm.todo.as_deref().map(|t| clean(t, 1000));
    line("Guard did:", &did);
    if let Some(todo) = &todo {
        line("To do:", todo);
    }
    line("Severity:", alarm.severity.as_str());
    if let Some(owner) = &d.entry.owner {
        line("Owner:", &clean(owner, 200));
    }
    if let Some(notes) = &d.entry.notes {
        line("Notes:", &clean(notes, 500));
    }
    let facts = json!({
        "action": alarm.action,
        "severity": alarm.severity.as_str(),
        "repository": repo,
        "tag": tag,
        "what": clean(&alarm.happened, 300),
        "who": who,
        "when": when,
        "old_digest": alarm.old_digest.as_deref().map(|s| clean(s, 80)),
        "new_digest": alarm.new_digest.as_deref().map(|s| clean(s, 80)),
        "guard_did": did,
        "todo": todo,
        "event_id": clean(&incident.event_id, 100),
        "source": clean(&incident.source, 100),
        "owner": d.entry.owner.as_deref().map(|s| clean(s, 200)),
        "links": {
            "repository": links::repository(&incident.repo),
            "image": image,
            "event": links::event(incident),
        },
    });
    (text, facts)
}

/// The lines every page of an incident ends with: where it came from, and links to the
/// repository and (for a CloudTrail record) the event in the console.
fn trailer(incident: &Incident) -> String {
    let mut text = format!(
        "{:<16}{}\n{:<16}{}\n",
        "Source:",
        clean(&incident.source, 100),
        "Event id:",
        clean(&incident.event_id, 100),
    );
    if let Some(repo) = links::repository(&incident.repo) {
        text.push_str(&format!("{:<16}{repo}\n", "Repository:"));
    }
    if let Some(event) = links::event(incident) {
        text.push_str(&format!("{:<16}{event}\n", "CloudTrail:"));
    }
    text
}

/// The message attributes subscription filter policies select on (`repository`: the key, or
/// `-` for a page about no one repository). `tag` is a `String.Array` (see
/// [`ARRAY_ATTRIBUTES`]): a policy naming one tag selects every page that lists it.
fn attributes(
    severity: Severity,
    repository: &str,
    tags: &[&str],
    action: &str,
) -> BTreeMap<String, String> {
    let tags: Vec<String> = tags.iter().map(|t| clean(t, 128)).collect();
    BTreeMap::from([
        ("severity".to_string(), severity.as_str().to_string()),
        ("repository".to_string(), clean(repository, 300)),
        (
            "tag".to_string(),
            serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into()),
        ),
        ("action".to_string(), action.to_string()),
    ])
}

/// Attributes whose value is a JSON array of strings, published as SNS `String.Array`; the
/// others are `String`.
pub const ARRAY_ATTRIBUTES: &[&str] = &["tag"];

/// The SNS data type of attribute `name`.
pub fn attribute_type(name: &str) -> &'static str {
    if ARRAY_ATTRIBUTES.contains(&name) {
        "String.Array"
    } else {
        "String"
    }
}

/// `[SEVERITY] N tags in REPO: HEADLINE`: the headline the tags share, or how many of each
/// action (`2 restored, 1 failed`).
fn group_subject(severity: Severity, repo: &str, alarms: &[(&Decision, Alarm)]) -> String {
    let first = &alarms[0].1.headline;
    let head = if alarms.iter().all(|(_, a)| &a.headline == first) {
        first.clone()
    } else {
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for (_, a) in alarms {
            match counts.iter_mut().find(|(name, _)| *name == a.action) {
                Some((_, n)) => *n += 1,
                None => counts.push((a.action, 1)),
            }
        }
        counts
            .iter()
            .map(|(name, n)| format!("{n} {name}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    fit_subject(
        &format!(
            "[{}] {} tags in ",
            severity.as_str().to_uppercase(),
            alarms.len()
        ),
        repo,
        &format!(": {head}"),
    )
}

/// What one repository's page would have said, kept for the summary page of a run whose
/// page budget was spent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryPart {
    /// `ACCOUNT/REGION/NAME`, cleaned.
    pub repository: String,
    /// The highest severity among its lines.
    pub severity: Severity,
    /// One line per tag: `TAG: HEADLINE (ACTION)`.
    pub lines: Vec<String>,
    /// The tags it concerns.
    pub tags: Vec<String>,
}

impl SummaryPart {
    /// The lines of the alarms one repository raised.
    pub fn of(repo: &crate::registry::RepoKey, alarms: &[(&Decision, Alarm)]) -> SummaryPart {
        SummaryPart {
            repository: clean(&repo.key(), 300),
            severity: alarms
                .iter()
                .map(|(_, a)| a.severity)
                .max()
                .unwrap_or(Severity::Low),
            lines: alarms
                .iter()
                .map(|(d, a)| format!("{}: {} ({})", clean(&d.tag, 128), a.headline, a.action))
                .collect(),
            tags: alarms.iter().map(|(d, _)| clean(&d.tag, 128)).collect(),
        }
    }

    /// The line of a repository reconcile could not check.
    pub fn failure(repo: &crate::registry::RepoKey, problem: &str) -> SummaryPart {
        SummaryPart {
            repository: clean(&repo.key(), 300),
            severity: Severity::High,
            lines: vec![format!(
                "reconcile could not check it: {} (reconcile_failed)",
                clean(problem, 300)
            )],
            tags: Vec::new(),
        }
    }
}

/// How much of a summary page's text lists repositories: SNS takes 256 KB a message, and the
/// JSON repeats the lines.
const SUMMARY_TEXT_MAX: usize = 96 * 1024;

/// The summary page of a reconcile run (`run_id`, at `when`) whose first `budget` repository
/// pages were sent on their own: every other repository and what was found there, one line
/// per tag, cut to fit a message ([`SUMMARY_TEXT_MAX`]; `ecr-tag-guard history` and the log
/// keep everything).
pub fn summary(run_id: &str, when: &str, mut parts: Vec<SummaryPart>, budget: usize) -> Page {
    parts.sort_by(|a, b| a.repository.cmp(&b.repository));
    let severity = parts
        .iter()
        .map(|p| p.severity)
        .max()
        .unwrap_or(Severity::Low);
    let lines: usize = parts.iter().map(|p| p.lines.len()).sum();
    let subject = fit_subject(
        &format!("[{}] reconcile: ", severity.as_str().to_uppercase()),
        &format!("{lines} more findings in {} repositories", parts.len()),
        " (summary)",
    );
    let mut text = String::new();
    let mut shown = Vec::new();
    let mut left = 0;
    for p in &parts {
        for l in &p.lines {
            let line = format!("{}:{l}", p.repository);
            if text.len() + line.len() < SUMMARY_TEXT_MAX {
                text.push_str(&line);
                text.push('\n');
                shown.push(line);
            } else {
                left += 1;
            }
        }
    }
    if left > 0 {
        text.push_str(&format!(
            "... and {left} more: see the function's log and `ecr-tag-guard history`.\n"
        ));
    }
    let mut tags: Vec<&str> = parts
        .iter()
        .flat_map(|p| p.tags.iter().map(String::as_str))
        .collect();
    tags.sort_unstable();
    tags.dedup();
    tags.truncate(100);
    let facts = json!({
        "action": "summary",
        "severity": severity.as_str(),
        "event_id": clean(run_id, 100),
        "repositories": parts.len(),
        "findings": lines,
        "lines": shown,
        "not_shown": left,
    });
    let message = format!(
        "ecr-tag-guard: {subject}\n\n{:<16}{}\n{:<16}{}\n{:<16}{budget} repositories were paged on their own this run; these were not:\n\n{text}\n{:<16}{}\n\n--- JSON ---\n{}\n",
        "When:",
        clean(when, 40),
        "To do:",
        "look at each line below; `ecr-tag-guard status` shows a repository's tags now.",
        "Paged:",
        "Event id:",
        clean(run_id, 100),
        serde_json::to_string_pretty(&facts).unwrap_or_default()
    );
    Page {
        subject,
        message,
        attributes: attributes(severity, "-", &tags, "summary"),
    }
}

/// The page for an event that claims to be one the guard reads but cannot be understood:
/// nothing was done, so a person must look at it. It carries the problem and the event
/// itself (cleaned, cut to 64 KiB: SNS takes 256 KB).
pub fn unreadable(event_id: &str, problem: &str, event: &str) -> Page {
    event_page(
        "[MEDIUM] an ECR event could not be read: nothing done",
        (Severity::Medium, "unreadable"),
        (event_id, problem, event),
        "check the event below and the rule that sent it; if a protected tag was touched, check it with `ecr-tag-guard status`.",
    )
}

/// The page for an event the guard read but could not carry through, for a reason no retry
/// mends (`problem`: the error, e.g. access denied, a refused page): what it did before
/// stopping is in the tags' history; the event is attached so that it can be replayed once
/// the cause is fixed.
pub fn not_handled(event_id: &str, problem: &str, event: &str) -> Page {
    event_page(
        "[HIGH] an ECR event was read but not handled to the end",
        (Severity::High, "not_handled"),
        (event_id, problem, event),
        "fix the cause named above, then check the repository's protected tags with `ecr-tag-guard status` and replay the event below with `ecr-tag-guard replay --aws FILE`; what the guard did before it stopped is in each tag's history.",
    )
}

/// A page about one event as a whole (no repository, no tags): the problem, the event's id,
/// what to do, and the event itself, cleaned and cut to 64 KiB.
fn event_page(
    subject: &str,
    (severity, action): (Severity, &str),
    (event_id, problem, event): (&str, &str, &str),
    todo: &str,
) -> Page {
    let subject = subject.to_string();
    let event_id = clean(event_id, 100);
    let problem = clean(problem, 500);
    let body = clean(event, 64 * 1024);
    let message = format!(
        "ecr-tag-guard: {subject}\n\n{:<16}{problem}\n{:<16}{event_id}\n{:<16}{todo}\n\n--- event ---\n{body}\n",
        "Problem:", "Event id:", "To do:",
    );
    Page {
        subject,
        message,
        attributes: attributes(severity, "-", &[], action),
    }
}

/// The page for a repository reconcile could not get through (`problem`: the AWS error): its
/// protected tags were not checked this run.
pub fn repository_failure(repo: &crate::registry::RepoKey, problem: &str) -> Page {
    let name = clean(&repo.key(), 300);
    let subject = fit_subject("[HIGH] ", &repo.name, ": reconcile could not check it");
    let problem = clean(problem, 500);
    let message = format!(
        "ecr-tag-guard: {subject}\n\n{:<16}{name}\n{:<16}{problem}\n{:<16}{}\n",
        "Repository:",
        "Problem:",
        "To do:",
        "its protected tags were not checked or repaired this run. Fix the cause (permissions, the repository, throttling); the next run tries again. `ecr-tag-guard status` shows the tags now.",
    );
    Page {
        subject,
        message,
        attributes: attributes(Severity::High, &repo.key(), &[], "reconcile_failed"),
    }
}

/// `[SEVERITY] TAG in REPO: HEADLINE`, ASCII only, cut to fit [`SUBJECT_MAX`]: the repository
/// name is shortened first, then the whole line.
fn subject(alarm: &Alarm, repo: &str, tag: &str) -> String {
    fit_subject(
        &format!(
            "[{}] {} in ",
            alarm.severity.as_str().to_uppercase(),
            ascii(tag)
        ),
        repo,
        &format!(": {}", alarm.headline),
    )
}

/// `before` + `repo` + `after` as an ASCII subject of at most [`SUBJECT_MAX`] characters: the
/// repository name is shortened first (its end kept), then the whole line.
fn fit_subject(before: &str, repo: &str, after: &str) -> String {
    // Everything below is ASCII, so byte offsets are character offsets.
    let (before, repo, after) = (ascii(before), ascii(repo), ascii(after));
    let room = SUBJECT_MAX
        .saturating_sub(before.len() + after.len())
        .max(8);
    let repo = if repo.len() > room {
        format!("...{}", &repo[repo.len() - (room - 3)..])
    } else {
        repo
    };
    let s = format!("{before}{repo}{after}");
    if s.len() > SUBJECT_MAX {
        format!("{}...", &s[..SUBJECT_MAX - 3])
    } else {
        s
    }
}

/// Printable ASCII: anything else becomes `?`.
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Actor, Incident};
    use crate::guard::{Action, Cause, Decision};
    use crate::page::Alarm;
    use crate::registry::{parse_item, RepoKey, Severity};

    fn setup(repo_name: &str, tag: &str, arn: &str) -> (Incident, Decision, Alarm) {
        let item = serde_json::json!({"repository": "123456789012/eu-west-1/web", "tag": "prod", "owner": "team\u{7}web"});
        let entry = parse_item(&item).unwrap();
        let incident = Incident {
            event_id: "ev\n1".into(),
            source: "CloudTrail BatchDeleteImage".into(),
            time: "2026-01-01T00:00:00Z".into(),
            repo: RepoKey {
                account: "123456789012".into(),
                region: "eu-west-1".into(),
                name: repo_name.into(),
            },
            actor: Actor::Principal {
                arn: arn.into(),
                role_arn: None,
            },
            changes: vec![],
            note: None,
        };
        let d = Decision {
            tag: tag.into(),
            cause: Cause::Deleted { digest: None },
            action: Action::Restore,
            why: "w".into(),
            entry,
        };
        let a = crate::page::report(&d, &crate::guard::Outcome::Restored, false).unwrap();
        (incident, d, a)
    }

    #[test]
    fn a_page_says_what_who_when_and_carries_json_and_attributes() {
        let (i, d, a) = setup("web", "prod", "arn:aws:iam::123456789012:user/bob");
        let p = render(&i, &d, &a);
        assert_eq!(p.subject, "[HIGH] prod in web: deleted; restored");
        for want in [
            "What:",
            "arn:aws:iam::123456789012:user/bob",
            "2026-01-01T00:00:00Z",
            "Guard did:",
            "Event id:       ev?1",
            "Owner:          team?web",
        ] {
            assert!(
                p.message.contains(want),
                "missing {want:?} in\n{}",
                p.message
            );
        }
        let json_part = p.message.split("--- JSON ---\n").nth(1).unwrap();
        let facts: serde_json::Value = serde_json::from_str(json_part).unwrap();
        assert_eq!(facts["action"], "restored");
        assert_eq!(facts["who"], "arn:aws:iam::123456789012:user/bob");
        assert_eq!(p.attributes["severity"], "high");
        assert_eq!(p.attributes["action"], "restored");
        assert_eq!(p.attributes["tag"], r#"["prod"]"#, "a String.Array");
        assert_eq!(p.attributes["repository"], "123456789012/eu-west-1/web");
        assert_eq!(a.severity, Severity::High);
    }

    #[test]
    fn untrusted_text_cannot_break_the_page() {
        let long = format!("{}/é\u{1b}x", "r".repeat(300));
        let (i, d, a) = setup(&long, "prod", "arn:aws:iam::1:user/x\r\nInjected: yes");
        let p = render(&i, &d, &a);
        assert!(p.subject.len() < 100, "{}", p.subject);
        assert!(p.subject.is_ascii());
        assert!(
            p.subject.ends_with("deleted; restored"),
            "the repository is cut, not the news: {}",
            p.subject
        );
        assert!(
            !p.message.chars().any(|c| c.is_control() && c != '\n'),
            "{:?}",
            p.message
        );
        assert!(!p.message.contains("\nInjected"));
        let (i, d, a) = setup("web", &"t".repeat(128), "arn");
        let p = render(&i, &d, &a);
        assert!(
            p.subject.len() < 100 && p.subject.ends_with("..."),
            "{}",
            p.subject
        );
    }

    #[test]
    fn one_page_lists_every_tag_and_names_the_worst() {
        let (i, d1, a1) = setup("web", "prod", "arn");
        let (_, mut d2, mut a2) = setup("web", "stable", "arn");
        d2.tag = "stable".into();
        a2.action = "failed";
        a2.headline = "NOT restored (failed)".into();
        a2.severity = Severity::Critical;
        let p = render_all(&i, &[(&d1, a1.clone()), (&d2, a2)]).unwrap();
        assert_eq!(p.subject, "[CRITICAL] 2 tags in web: 1 restored, 1 failed");
        assert_eq!(p.attributes["severity"], "critical");
        assert_eq!(p.attributes["action"], "failed", "the worst tag's");
        assert_eq!(p.attributes["tag"], r#"["prod","stable"]"#);
        assert!(p.message.contains("[1/2]") && p.message.contains("[2/2]"));
        let single = render_all(&i, &[(&d1, a1.clone())]).unwrap();
        assert_eq!(
            single,
            render(&i, &d1, &a1),
            "one tag: the page of one decision"
        );
        assert!(render_all(&i, &[]).is_none());
    }

    #[test]
    fn a_summary_stays_within_what_sns_takes() {
        let parts: Vec<SummaryPart> = (0..5000)
            .map(|r| SummaryPart {
                repository: format!("123456789012/eu-west-1/team-{r:04}/app"),
                severity: Severity::High,
                lines: vec!["release-1: deleted; restored (restored)".into(); 2],
                tags: vec!["release-1".into()],
            })
            .collect();
        let p = summary("reconcile-1", "2026-01-01T00:00:00Z", parts, 10);
        assert!(p.message.len() < 256 * 1024, "{}", p.message.len());
        assert!(p.message.contains("more: see the function's log"));
        assert_eq!(
            p.subject,
            "[HIGH] reconcile: 10000 more findings in 5000 repositories (summary)"
        );
    }
}
