//! ECR's own `ECR Image Action` events (PUSH and DELETE).

use serde::Deserialize;
use serde_json::Value;

use super::{content_id, Actor, Change, Incident, Outer, ParseError, Parsed};
use crate::registry::RepoKey;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Detail {
    result: Option<String>,
    #[serde(rename = "repository-name")]
    repository_name: Option<String>,
    #[serde(rename = "image-digest")]
    image_digest: Option<String>,
    #[serde(rename = "action-type")]
    action_type: Option<String>,
    #[serde(rename = "image-tag")]
    image_tag: Option<String>,
}

pub(super) fn parse(detail: &Value, outer: Outer) -> Result<Parsed, ParseError> {
    let d: Detail = serde_json::from_value(detail.clone())
        .map_err(|e| ParseError(format!("ECR Image Action detail: {e}")))?;
    let event_id = outer.id.clone().unwrap_or_else(|| content_id(detail));
    let action = d.action_type.clone().unwrap_or_default();
    let ignored = |reason: String| {
        Ok(Parsed::Ignored {
            event_id: Some(event_id.clone()),
            reason,
        })
    };
    if d.result.as_deref() != Some("SUCCESS") {
        return ignored(format!(
            "ECR Image Action {action} with result {}: nothing changed",
            d.result.as_deref().unwrap_or("(none)")
        ));
    }
    let field = |v: Option<String>, name: &str| {
        v.ok_or_else(|| ParseError(format!("ECR Image Action {action} has no `{name}`")))
    };
    let change = match action.as_str() {
        "DELETE" => {
            let digest = field(d.image_digest, "image-digest")?;
            match d.image_tag {
                Some(tag) => Change::TagRemoved {
                    tag,
                    digest: Some(digest),
                },
                None => Change::ImageDeleted {
                    digest,
                    tags: Vec::new(),
                    rule: None,
                },
            }
        }
        "PUSH" => {
            let Some(tag) = d.image_tag else {
                return ignored("untagged push moves no tag".into());
            };
            Change::TagPushed {
                tag,
                digest: field(d.image_digest, "image-digest")?,
                manifest: None,
            }
        }
        other => return ignored(format!("ECR Image Action `{other}` is not acted on")),
    };
    let repo = RepoKey {
        account: field(outer.account.clone(), "account (envelope)")?,
        region: field(outer.region.clone(), "region (envelope)")?,
        name: field(d.repository_name, "repository-name")?,
    };
    Ok(Parsed::Incident(Incident {
        event_id,
        source: format!("ECR Image Action {action}"),
        time: outer.time.unwrap_or_else(|| "unknown".into()),
        repo,
        actor: Actor::Unknown {
            label: "not named (ECR Image Action events carry no caller)".into(),
        },
        changes: vec![change],
        note: None,
    }))
}
