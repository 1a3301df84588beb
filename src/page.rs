//! The page: what on-call receives through SNS. Pure formatting of a [`guard::Alarm`].
//!
//! * subject: under 100 ASCII characters, `[SEVERITY] TAG in REPOSITORY: HEADLINE`;
//! * message: a text block a person can act on, then `--- JSON ---` and the same facts as JSON;
//! * attributes: `severity`, `repository`, `tag`, `action` for subscription filter policies.
//!
//! Every value that came from an event is cleaned: no control characters reach the page.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::events::Incident;
use crate::guard::{self, Alarm, Decision};
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
    let mut line = |k: &str, v: &str| text.push_str(&format!("{k:<14}{v}\n"));
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
    let message = format!(
        "ecr-tag-guard: {}\n\n{text}\n--- JSON ---\n{}\n",
        clean(&alarm.headline, 100),
        serde_json::to_string_pretty(&facts).unwrap_or_default()
    );
    let attributes = BTreeMap::from([
        ("severity".to_string(), alarm.severity.as_str().to_string()),
        ("repository".to_string(), repo.clone()),
        ("tag".to_string(), tag.clone()),
        ("action".to_string(), alarm.action.to_string()),
    ]);
    Page {
        subject: subject(alarm, &incident.repo.name, &d.tag),
        message,
        attributes,
    }
}

/// `[SEVERITY] TAG in REPO: HEADLINE`, ASCII only, cut to fit [`SUBJECT_MAX`]: the repository
/// name is shortened first, then the whole line.
fn subject(alarm: &Alarm, repo: &str, tag: &str) -> String {
    let ascii = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' })
            .collect()
    };
    // Everything below is ASCII, so byte offsets are character offsets.
    let (sev, tag, head) = (alarm.severity.as_str().to_uppercase(), ascii(tag), ascii(&alarm.headline));
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
