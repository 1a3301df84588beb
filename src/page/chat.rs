//! A page as a chat notification: the custom-notification JSON that Amazon Q Developer in
//! chat applications (formerly AWS Chatbot) renders in a Slack or Microsoft Teams channel
//! (`version` 1.0, `source` custom, `content` with a markdown title, description, next steps
//! and keywords, `metadata` with a thread per repository). It is built from the page's own
//! JSON part, so every kind of page has one and says the same as the e-mail.

use serde_json::{json, Value};

use super::Page;

/// The longest description a chat message gets (Slack cuts longer ones anyway).
const DESCRIPTION_MAX: usize = 3500;

/// The chat notification for `page`.
pub fn render(page: &Page) -> String {
    let facts: Value = page
        .message
        .split("--- JSON ---\n")
        .nth(1)
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or(Value::Null);
    let attribute = |k: &str| page.attributes.get(k).cloned().unwrap_or_default();
    let (action, repository) = (attribute("action"), attribute("repository"));
    let (description, next) = describe(page, &facts);
    let tags: Vec<String> =
        serde_json::from_str(page.attributes.get("tag").map_or("[]", String::as_str))
            .unwrap_or_default();
    let mut keywords = vec![attribute("severity"), action.clone()];
    keywords.extend(tags.iter().take(5).cloned());
    keywords.retain(|k| !k.is_empty());
    let event_id = text(&facts, "event_id");
    let resources: Vec<String> = crate::registry::RepoKey::parse(&repository)
        .map(|r| {
            vec![format!(
                "arn:aws:ecr:{}:{}:repository/{}",
                r.region, r.account, r.name
            )]
        })
        .unwrap_or_default();
    json!({
        "version": "1.0",
        "source": "custom",
        "id": event_id,
        "content": {
            "textType": "client-markdown",
            "title": page.subject,
            "description": description,
            "nextSteps": next,
            "keywords": keywords,
        },
        "metadata": {
            "threadId": format!("ecr-tag-guard/{repository}"),
            "summary": page.subject,
            "eventType": format!("ecr-tag-guard {action}"),
            "relatedResources": resources,
            "additionalContext": {
                "repository": repository,
                "tags": tags.join(", "),
                "event_id": event_id,
            },
        },
    })
    .to_string()
}

fn text(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

/// The message's markdown (a line per tag, then the links; or the page's text when it lists
/// no tag), cut at [`DESCRIPTION_MAX`], and the distinct next steps.
fn describe(page: &Page, facts: &Value) -> (String, Vec<String>) {
    let mut lines: Vec<String> = Vec::new();
    let mut next: Vec<String> = Vec::new();
    let mut links: Vec<String> = Vec::new();
    let changes: Vec<Value> = match facts.get("changes").and_then(Value::as_array) {
        Some(changes) => changes.clone(),
        None if facts.get("tag").is_some() => vec![facts.clone()],
        None => Vec::new(),
    };
    for c in &changes {
        lines.push(format!(
            "*{}* — {}: {} _(by {})_",
            text(c, "tag"),
            text(c, "what"),
            text(c, "guard_did"),
            text(c, "who")
        ));
        let todo = text(c, "todo");
        if !todo.is_empty() && !next.contains(&todo) {
            next.push(todo);
        }
        for k in ["image", "event", "repository"] {
            if let Some(l) = c["links"][k].as_str() {
                if !links.iter().any(|x| x == l) {
                    links.push(l.to_string());
                }
            }
        }
    }
    if changes.is_empty() {
        // A summary, an unreadable event, a repository reconcile could not get through: the
        // page's text says it.
        let body = page.message.split("--- JSON ---\n").next().unwrap_or("");
        lines.extend(body.lines().skip(2).map(String::from));
    }
    lines.extend(links);
    let mut description = lines.join("\n");
    if description.chars().count() > DESCRIPTION_MAX {
        description = description
            .chars()
            .take(DESCRIPTION_MAX)
            .collect::<String>()
            + "…";
    }
    (description, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Actor, Incident};
    use crate::guard::{Action, Cause, Decision, Outcome};
    use crate::registry::{parse_item, RepoKey};

    fn decision(tag: &str) -> Decision {
        let d = format!("sha256:{}", "a".repeat(64));
        let item = json!({"repository": "123456789012/eu-west-1/web", "tag": tag, "digest": d});
        Decision {
            tag: tag.into(),
            cause: Cause::Deleted { digest: Some(d) },
            action: Action::Restore,
            why: "a protected tag was deleted".into(),
            entry: parse_item(&item).unwrap(),
        }
    }

    #[test]
    fn a_page_becomes_a_custom_notification_with_every_tag_and_what_to_do() {
        let incident = Incident {
            event_id: "c0ffee01-1111-4b2c-8d3e-000000000001".into(),
            source: "CloudTrail BatchDeleteImage".into(),
            time: "2026-01-01T00:00:00Z".into(),
            repo: RepoKey::parse("123456789012/eu-west-1/web").unwrap(),
            actor: Actor::Principal {
                arn: "arn:aws:iam::123456789012:user/bob".into(),
                role_arn: None,
            },
            changes: Vec::new(),
            note: None,
        };
        let (prod, stable) = (decision("prod"), decision("stable"));
        let restored = crate::page::report(&prod, &Outcome::Restored, false).unwrap();
        let failed = crate::page::report(
            &stable,
            &Outcome::Failed {
                failure: crate::guard::Failure::LayersGone,
                detail: "LayersNotFoundException".into(),
            },
            false,
        )
        .unwrap();
        let page =
            crate::page::render_all(&incident, &[(&prod, restored), (&stable, failed)]).unwrap();
        let chat: Value = serde_json::from_str(&render(&page)).unwrap();
        assert_eq!(
            (chat["version"].as_str(), chat["source"].as_str()),
            (Some("1.0"), Some("custom"))
        );
        assert_eq!(chat["content"]["textType"], "client-markdown");
        assert_eq!(chat["content"]["title"], page.subject.as_str());
        let text = chat["content"]["description"].as_str().unwrap();
        assert!(
            text.contains("*prod*") && text.contains("*stable*"),
            "{text}"
        );
        assert!(
            text.contains("https://eu-west-1.console.aws.amazon.com/cloudtrail/"),
            "{text}"
        );
        assert_eq!(
            chat["content"]["nextSteps"].as_array().unwrap().len(),
            1,
            "the failure's advice"
        );
        assert_eq!(
            chat["metadata"]["threadId"],
            "ecr-tag-guard/123456789012/eu-west-1/web"
        );
        assert_eq!(
            chat["metadata"]["relatedResources"],
            json!(["arn:aws:ecr:eu-west-1:123456789012:repository/web"])
        );
        assert_eq!(
            chat["metadata"]["additionalContext"]["tags"],
            "prod, stable"
        );
        assert_eq!(chat["id"], "c0ffee01-1111-4b2c-8d3e-000000000001");
    }

    #[test]
    fn a_reconcile_summary_lists_its_findings() {
        let repo = RepoKey::parse("123456789012/eu-west-1/web").unwrap();
        let parts = vec![crate::page::SummaryPart::failure(&repo, "AccessDenied")];
        let page = crate::page::summary("reconcile-1", "2026-01-01T00:00:00Z", parts, 1);
        let chat: Value = serde_json::from_str(&render(&page)).unwrap();
        let text = chat["content"]["description"].as_str().unwrap();
        assert!(text.contains("123456789012/eu-west-1/web"), "{text}");
        assert!(text.contains("AccessDenied"), "{text}");
        assert_eq!(chat["content"]["title"], page.subject.as_str());
    }

    #[test]
    fn a_page_without_tags_is_told_by_its_text() {
        let page = crate::page::unreadable("e-1", "not JSON", "{oops");
        let chat: Value = serde_json::from_str(&render(&page)).unwrap();
        let text = chat["content"]["description"].as_str().unwrap();
        assert!(text.contains("not JSON"), "{text}");
        assert_eq!(chat["metadata"]["relatedResources"], json!([]));
    }
}
