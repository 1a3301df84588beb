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

pub use alarm::{report, Alarm};

use crate::events::Incident;
use crate::guard::{self, Decision};
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
    let repo = clean(&incident.repo.key(), 300);
    let tag = clean(&d.tag, 128);
    let who = clean(&guard::who(incident, &d.cause), 300);
    let when = clean(&incident.time, 40);
    let event_id = clean(&incident.event_id, 100);
    let dash = |v: &Option<String>| v.as_deref().map_or("-".to_string(), |s| clean(s, 80));
    let mut text = String::new();
    let mut line = |k: &str, v: &str| text.push_str(&format!("{k:<16}{v}\n"));
    line("What:", &format!("{}.", clean(&alarm.happened, 300)));
    line("Tag:", &format!("{repo}:{tag}"));
    line("Who:", &who);
    line("When:", &when);
    line("Pinned digest:", &dash(&alarm.old_digest));
    line("New digest:", &dash(&alarm.new_digest));
    line("Guard did:", &alarm.did);
    if let Some(todo) = &alarm.todo {
        line("To do:", todo);
    }
    line("Severity:", alarm.severity.as_str());
    if let Some(owner) = &d.entry.owner {
        line("Owner:", &clean(owner, 200));
    }
    if let Some(notes) = &d.entry.notes {
        line("Notes:", &clean(notes, 500));
    }
    line("Source:", &clean(&incident.source, 100));
    line("Event id:", &event_id);
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
        "guard_did": alarm.did,
        "todo": alarm.todo,
        "event_id": event_id,
        "source": clean(&incident.source, 100),
        "owner": d.entry.owner.as_deref().map(|s| clean(s, 200)),
    });
    let subject = subject(alarm, &incident.repo.name, &d.tag);
    let message = format!(
        "ecr-tag-guard: {subject}\n\n{text}\n--- JSON ---\n{}\n",
        serde_json::to_string_pretty(&facts).unwrap_or_default()
    );
    let attributes = BTreeMap::from([
        ("severity".to_string(), alarm.severity.as_str().to_string()),
        ("repository".to_string(), repo.clone()),
        ("tag".to_string(), tag.clone()),
        ("action".to_string(), alarm.action.to_string()),
    ]);
    Page {
        subject,
        message,
        attributes,
    }
}

/// The page for an event that claims to be one the guard reads but cannot be understood:
/// nothing was done, so a person must look at it. It carries the problem and the event
/// itself (cleaned, cut to 64 KiB: SNS takes 256 KB).
pub fn unreadable(event_id: &str, problem: &str, event: &str) -> Page {
    let subject = "[MEDIUM] an ECR event could not be read: nothing done".to_string();
    let event_id = clean(event_id, 100);
    let problem = clean(problem, 500);
    let body = clean(event, 64 * 1024);
    let message = format!(
        "ecr-tag-guard: {subject}\n\n{:<16}{problem}\n{:<16}{event_id}\n{:<16}{}\n\n--- event ---\n{body}\n",
        "Problem:",
        "Event id:",
        "To do:",
        "check the event below and the rule that sent it; if a protected tag was touched, check it with `ecr-tag-guard status`.",
    );
    let attributes = BTreeMap::from([
        ("severity".to_string(), "medium".to_string()),
        ("repository".to_string(), "-".to_string()),
        ("tag".to_string(), "-".to_string()),
        ("action".to_string(), "unreadable".to_string()),
    ]);
    Page {
        subject,
        message,
        attributes,
    }
}

/// The page for a repository reconcile could not get through (`problem`: the AWS error): its
/// protected tags were not checked this run.
pub fn repository_failure(repo: &crate::registry::RepoKey, problem: &str) -> Page {
    let name = clean(&repo.key(), 300);
    let subject: String = format!("[HIGH] {}: reconcile could not check it", repo.name)
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .take(SUBJECT_MAX)
        .collect();
    let problem = clean(problem, 500);
    let message = format!(
        "ecr-tag-guard: {subject}\n\n{:<16}{name}\n{:<16}{problem}\n{:<16}{}\n",
        "Repository:",
        "Problem:",
        "To do:",
        "its protected tags were not checked or repaired this run. Fix the cause (permissions, the repository, throttling); the next run tries again. `ecr-tag-guard status` shows the tags now.",
    );
    let attributes = BTreeMap::from([
        ("severity".to_string(), "high".to_string()),
        ("repository".to_string(), name),
        ("tag".to_string(), "-".to_string()),
        ("action".to_string(), "reconcile_failed".to_string()),
    ]);
    Page {
        subject,
        message,
        attributes,
    }
}

/// `[SEVERITY] TAG in REPO: HEADLINE`, ASCII only, cut to fit [`SUBJECT_MAX`]: the repository
/// name is shortened first, then the whole line.
fn subject(alarm: &Alarm, repo: &str, tag: &str) -> String {
    let ascii = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c
                } else {
                    '?'
                }
            })
            .collect()
    };
    // Everything below is ASCII, so byte offsets are character offsets.
    let (sev, tag, head) = (
        alarm.severity.as_str().to_uppercase(),
        ascii(tag),
        ascii(&alarm.headline),
    );
    let repo = ascii(repo);
    let fixed = format!("[{sev}] {tag} in : {head}").len();
    let room = SUBJECT_MAX.saturating_sub(fixed).max(8);
    let repo = if repo.len() > room {
        format!("...{}", &repo[repo.len() - (room - 3)..])
    } else {
        repo
    };
    let s = format!("[{sev}] {tag} in {repo}: {head}");
    if s.len() > SUBJECT_MAX {
        format!("{}...", &s[..SUBJECT_MAX - 3])
    } else {
        s
    }
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
        assert_eq!(p.attributes["tag"], "prod");
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
}
