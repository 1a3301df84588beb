//! CloudTrail records: `BatchDeleteImage`, `PutImage`, `DeleteRepository` and the lifecycle
//! `PolicyExecutionEvent`, bare or inside an EventBridge envelope.

use std::collections::HashSet;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::{content_id, Actor, Change, Incident, Outer, ParseError, Parsed};
use crate::registry::{Manifest, RepoKey};

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Record {
    #[serde(rename = "eventID")]
    event_id: Option<String>,
    event_name: Option<String>,
    event_source: Option<String>,
    event_time: Option<Value>,
    aws_region: Option<String>,
    recipient_account_id: Option<String>,
    error_code: Option<String>,
    user_identity: Option<UserIdentity>,
    request_parameters: Option<Value>,
    response_elements: Option<Value>,
    service_event_details: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct UserIdentity {
    arn: Option<String>,
    account_id: Option<String>,
    invoked_by: Option<String>,
    session_context: Option<SessionContext>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SessionContext {
    session_issuer: Option<SessionIssuer>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SessionIssuer {
    arn: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ImageId {
    image_digest: Option<String>,
    image_tag: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RepoParams {
    registry_id: Option<String>,
    repository_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct BatchDeleteRequest {
    image_ids: Vec<ImageId>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct BatchDeleteResponse {
    image_ids: Vec<ImageId>,
    failures: Vec<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct PutImageRequest {
    image_tag: Option<String>,
    image_digest: Option<String>,
    image_manifest: Option<String>,
    image_manifest_media_type: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct PutImageResponse {
    image: Option<PutImageResult>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct PutImageResult {
    image_id: Option<ImageId>,
    image_manifest: Option<String>,
    image_manifest_media_type: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LifecycleDetails {
    repository_name: Option<String>,
    lifecycle_event_image_actions: Vec<LifecycleAction>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LifecycleAction {
    lifecycle_event_image: Option<LifecycleImage>,
    rule_priority: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LifecycleImage {
    digest: Option<String>,
    tag_list: Vec<String>,
}

/// Reads a CloudTrail record; `outer` is what an EventBridge envelope said around it.
pub(super) fn parse(value: &Value, outer: Outer) -> Result<Parsed, ParseError> {
    let rec: Record = serde_json::from_value(value.clone())
        .map_err(|e| ParseError(format!("CloudTrail record: {e}")))?;
    let name = rec.event_name.clone().unwrap_or_default();
    let event_id = rec
        .event_id
        .clone()
        .or(outer.id.clone())
        .unwrap_or_else(|| content_id(value));
    let ignored = |reason: String| {
        Ok(Parsed::Ignored {
            event_id: Some(event_id.clone()),
            reason,
        })
    };
    let source = rec.event_source.as_deref().unwrap_or("");
    if source != "ecr.amazonaws.com" {
        return ignored(format!("eventSource `{source}` is not private ECR"));
    }
    if let Some(code) = &rec.error_code {
        return ignored(format!("{name} failed with {code}: it changed nothing"));
    }
    let what = match name.as_str() {
        "BatchDeleteImage" => batch_delete(&rec)?,
        "PutImage" => put_image(&rec)?,
        "DeleteRepository" => What::Changes(vec![Change::RepositoryDeleted], None),
        "PolicyExecutionEvent" => return lifecycle(&rec, event_id, &outer),
        "DryRunEvent" => {
            return ignored("a lifecycle preview (DryRunEvent) changes nothing".into())
        }
        other => return ignored(format!("eventName `{other}` is not acted on")),
    };
    let (changes, note) = match what {
        What::Changes(c, note) => (c, note),
        What::Nothing(reason) => return ignored(reason),
    };
    let params: RepoParams = part(&rec.request_parameters, "requestParameters", &name)?;
    let Some(repo_name) = params.repository_name else {
        return Err(ParseError(format!(
            "{name} record has no requestParameters.repositoryName"
        )));
    };
    let ident = rec.user_identity.as_ref();
    let account = params
        .registry_id
        .or(rec.recipient_account_id.clone())
        .or(outer.account.clone())
        .or(ident.and_then(|i| i.account_id.clone()));
    let repo = repo_key(
        account,
        rec.aws_region.clone().or(outer.region.clone()),
        repo_name,
        &name,
    )?;
    Ok(Parsed::Incident(Incident {
        event_id,
        source: format!("CloudTrail {name}"),
        time: time_of(&rec, &outer),
        repo,
        actor: actor_of(ident),
        changes,
        note,
    }))
}

enum What {
    Changes(Vec<Change>, Option<String>),
    Nothing(String),
}

/// Deserialises an optional part of the record; absent or null gives the default.
fn part<T: DeserializeOwned + Default>(
    v: &Option<Value>,
    field: &str,
    name: &str,
) -> Result<T, ParseError> {
    match v {
        None | Some(Value::Null) => Ok(T::default()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| ParseError(format!("{name} {field}: {e}"))),
    }
}

fn batch_delete(rec: &Record) -> Result<What, ParseError> {
    let name = "BatchDeleteImage";
    let req: BatchDeleteRequest = part(&rec.request_parameters, "requestParameters", name)?;
    let confirmed = !matches!(rec.response_elements, None | Some(Value::Null));
    let resp: BatchDeleteResponse = part(&rec.response_elements, "responseElements", name)?;
    // Digests the request named without a tag: those images were deleted whole, whatever
    // the response lists beside them.
    let whole: HashSet<&str> = req
        .image_ids
        .iter()
        .filter(|id| id.image_tag.is_none())
        .filter_map(|id| id.image_digest.as_deref())
        .collect();
    // Without a response we cannot know what was deleted; restoring is a no-op where nothing
    // was, so the request's ids are taken as possibly removed.
    let ids = if confirmed {
        &resp.image_ids
    } else {
        &req.image_ids
    };
    let mut changes: Vec<Change> = Vec::new();
    for id in ids {
        match (&id.image_tag, &id.image_digest) {
            (Some(tag), Some(d)) if whole.contains(d.as_str()) => {
                add_deleted(&mut changes, d, Some(tag))
            }
            (Some(tag), digest) => changes.push(Change::TagRemoved {
                tag: tag.clone(),
                digest: digest.clone(),
            }),
            (None, Some(d)) => add_deleted(&mut changes, d, None),
            (None, None) => {}
        }
    }
    if changes.is_empty() {
        return Ok(What::Nothing(format!(
            "BatchDeleteImage deleted nothing ({} failure(s))",
            resp.failures.len()
        )));
    }
    let note = (!confirmed).then(|| {
        "no responseElements: the requested image ids are taken as possibly deleted".to_string()
    });
    Ok(What::Changes(changes, note))
}

fn add_deleted(changes: &mut Vec<Change>, digest: &str, tag: Option<&String>) {
    for c in changes.iter_mut() {
        if let Change::ImageDeleted {
            digest: d, tags, ..
        } = c
        {
            if d == digest {
                tags.extend(tag.cloned());
                return;
            }
        }
    }
    changes.push(Change::ImageDeleted {
        digest: digest.to_string(),
        tags: tag.cloned().into_iter().collect(),
        rule: None,
    });
}

fn put_image(rec: &Record) -> Result<What, ParseError> {
    let name = "PutImage";
    let req: PutImageRequest = part(&rec.request_parameters, "requestParameters", name)?;
    let resp: PutImageResponse = part(&rec.response_elements, "responseElements", name)?;
    let image = resp.image.unwrap_or_default();
    let id = image.image_id.unwrap_or_default();
    let Some(tag) = id.image_tag.or(req.image_tag) else {
        return Ok(What::Nothing("PutImage without a tag moves no tag".into()));
    };
    let body = req.image_manifest.or(image.image_manifest);
    // ECR names an image by the sha256 of its manifest bytes, so the manifest gives the
    // digest when the record leaves it out.
    let digest = id.image_digest.or(req.image_digest).or_else(|| {
        body.as_deref()
            .map(|b| crate::text::sha256_digest(b.as_bytes()))
    });
    let Some(digest) = digest else {
        return Ok(What::Nothing(format!(
            "PutImage of tag `{}` names no digest and carries no manifest",
            crate::text::clean(&tag, 128)
        )));
    };
    let manifest = body.map(|body| Manifest {
        digest: digest.clone(),
        media_type: req
            .image_manifest_media_type
            .or(image.image_manifest_media_type),
        body,
    });
    Ok(What::Changes(
        vec![Change::TagPushed {
            tag,
            digest,
            manifest,
        }],
        None,
    ))
}

fn lifecycle(rec: &Record, event_id: String, outer: &Outer) -> Result<Parsed, ParseError> {
    let name = "PolicyExecutionEvent";
    let details: LifecycleDetails = part(&rec.service_event_details, "serviceEventDetails", name)?;
    let mut changes = Vec::new();
    for (i, action) in details.lifecycle_event_image_actions.iter().enumerate() {
        let image = action.lifecycle_event_image.as_ref();
        let Some(digest) = image.and_then(|im| im.digest.clone()) else {
            return Err(ParseError(format!(
                "{name} lifecycleEventImageActions[{i}] has no lifecycleEventImage.digest"
            )));
        };
        changes.push(Change::ImageDeleted {
            digest,
            tags: image.map(|im| im.tag_list.clone()).unwrap_or_default(),
            rule: action.rule_priority,
        });
    }
    if changes.is_empty() {
        return Ok(Parsed::Ignored {
            event_id: Some(event_id),
            reason: "lifecycle run expired no image".into(),
        });
    }
    let Some(repo_name) = details.repository_name else {
        return Err(ParseError(format!(
            "{name} record has no serviceEventDetails.repositoryName"
        )));
    };
    let account = rec
        .recipient_account_id
        .clone()
        .or(outer.account.clone())
        .or(rec
            .user_identity
            .as_ref()
            .and_then(|i| i.account_id.clone()));
    let repo = repo_key(
        account,
        rec.aws_region.clone().or(outer.region.clone()),
        repo_name,
        name,
    )?;
    Ok(Parsed::Incident(Incident {
        event_id,
        source: "lifecycle policy (PolicyExecutionEvent)".into(),
        time: time_of(rec, outer),
        repo,
        actor: Actor::Lifecycle,
        changes,
        note: None,
    }))
}

fn repo_key(
    account: Option<String>,
    region: Option<String>,
    name: String,
    event: &str,
) -> Result<RepoKey, ParseError> {
    let account = account.ok_or_else(|| {
        ParseError(format!(
            "{event} record names no account (registryId, recipientAccountId)"
        ))
    })?;
    let region = region.ok_or_else(|| ParseError(format!("{event} record names no awsRegion")))?;
    Ok(RepoKey {
        account,
        region,
        name,
    })
}

fn time_of(rec: &Record, outer: &Outer) -> String {
    match &rec.event_time {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => outer.time.clone().unwrap_or_else(|| "unknown".into()),
    }
}

fn actor_of(ident: Option<&UserIdentity>) -> Actor {
    let Some(ident) = ident else {
        return Actor::Unknown {
            label: "no userIdentity".into(),
        };
    };
    let role_arn = ident
        .session_context
        .as_ref()
        .and_then(|c| c.session_issuer.as_ref())
        .and_then(|s| s.arn.clone());
    match (&ident.arn, role_arn) {
        (Some(arn), role_arn) => Actor::Principal {
            arn: arn.clone(),
            role_arn,
        },
        (None, Some(role)) => Actor::Principal {
            arn: role.clone(),
            role_arn: Some(role),
        },
        (None, None) => Actor::Unknown {
            label: ident
                .invoked_by
                .clone()
                .unwrap_or_else(|| "no caller ARN".into()),
        },
    }
}
