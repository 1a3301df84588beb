//! Events in, facts out.
//!
//! The guard receives EventBridge events of three shapes (the README's "Events read"):
//! CloudTrail API calls, CloudTrail service events (lifecycle expiry) and ECR's own
//! `ECR Image Action` events. This module turns any of them, or a bare CloudTrail record, into
//! an [`Incident`]: which repository, who, and which tags were removed, which images deleted,
//! which tags pushed. Anything the guard does not act on becomes [`Parsed::Ignored`] with a
//! reason. Parsing is lenient (every field AWS omits somewhere is optional); deciding what a
//! record means is strict (a failed call, a dry run or an unknown name changes nothing).

mod cloudtrail;
mod image_action;
pub mod input;
pub mod stream;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::registry::{is_tag, Manifest, RepoKey};
use crate::text::{clean, is_digest};

/// Who made a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// An IAM identity, by its caller ARN and, for an assumed role, the role's ARN.
    Principal {
        /// `userIdentity.arn`, e.g. `arn:aws:sts::1:assumed-role/ci/session`.
        arn: String,
        /// `userIdentity.sessionContext.sessionIssuer.arn`, e.g. `arn:aws:iam::1:role/ci`.
        role_arn: Option<String>,
    },
    /// ECR's lifecycle policy (the rule is on each [`Change::ImageDeleted`]).
    Lifecycle,
    /// The event does not say (ECR Image Action events carry no caller).
    Unknown {
        /// What the event does say, e.g. `AWS Internal`.
        label: String,
    },
}

impl Actor {
    /// Who, in a few words: the caller's ARN, `lifecycle policy rule N` (`rule`: the expiring
    /// rule, when known), or what the event says.
    pub fn describe(&self, rule: Option<u32>) -> String {
        match (self, rule) {
            (Actor::Principal { arn, .. }, _) => arn.clone(),
            (Actor::Lifecycle, Some(n)) => format!("lifecycle policy rule {n}"),
            (Actor::Lifecycle, None) => "lifecycle policy".into(),
            (Actor::Unknown { label }, _) => label.clone(),
        }
    }

    /// The ARNs an `allow` glob or the guard's own role may match.
    pub fn arns(&self) -> Vec<&str> {
        match self {
            Actor::Principal { arn, role_arn } => {
                let mut v = vec![arn.as_str()];
                v.extend(role_arn.as_deref());
                v
            }
            _ => Vec::new(),
        }
    }
}

/// One change to a repository that an event reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A tag was removed; the digest it sat on, when the event says.
    TagRemoved {
        /// The tag.
        tag: String,
        /// The image it was removed from.
        digest: Option<String>,
    },
    /// An image was deleted with all its tags (delete by digest, or lifecycle expiry).
    ImageDeleted {
        /// The image.
        digest: String,
        /// Tags the event names for it (lifecycle lists them; a delete by digest may not).
        tags: Vec<String>,
        /// The lifecycle rule that expired it, for lifecycle events.
        rule: Option<u32>,
    },
    /// A tag now points at `digest` (PutImage, or an Image Action PUSH).
    TagPushed {
        /// The tag.
        tag: String,
        /// The image it now points at.
        digest: String,
        /// The manifest as the event carried it (not yet checked against `digest`).
        #[serde(skip)]
        manifest: Option<Manifest>,
    },
    /// The whole repository was deleted.
    RepositoryDeleted,
}

impl Change {
    /// True for changes that may have removed a tag (everything but a push).
    pub fn is_removal(&self) -> bool {
        !matches!(self, Change::TagPushed { .. })
    }
}

/// Everything the guard needs to know about one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Incident {
    /// The once-only key: CloudTrail `eventID`, else the EventBridge `id`, else a hash of the
    /// record (so the same record always gets the same key).
    pub event_id: String,
    /// What reported it, e.g. `CloudTrail BatchDeleteImage` or `ECR Image Action DELETE`.
    pub source: String,
    /// When it happened, as the event says it.
    pub time: String,
    /// The repository, with the registry's account and the region.
    pub repo: RepoKey,
    /// Who did it.
    pub actor: Actor,
    /// What changed.
    pub changes: Vec<Change>,
    /// Anything a reader should know about how the facts were read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Incident {
    /// Whether ECR's own event (an `ECR Image Action`, which names no caller) reported it,
    /// rather than CloudTrail.
    pub fn is_ecr_event(&self) -> bool {
        self.source.starts_with("ECR Image Action")
    }

    /// An incident the guard found itself, with no event behind it (reconcile, registration):
    /// no change listed, nobody known, `label` saying where it came from.
    pub fn found(
        event_id: String,
        source: &str,
        time: &str,
        repo: &RepoKey,
        label: &str,
    ) -> Incident {
        Incident {
            event_id,
            source: source.into(),
            time: time.into(),
            repo: repo.clone(),
            actor: Actor::Unknown {
                label: label.into(),
            },
            changes: Vec::new(),
            note: None,
        }
    }
}

/// The result of reading one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Parsed {
    /// Facts the guard must look at.
    Incident(Incident),
    /// Nothing for the guard: an unrelated event, a failed call, a dry run.
    Ignored {
        /// The event's id, where it has one.
        event_id: Option<String>,
        /// Why it changes nothing.
        reason: String,
    },
}

/// An event that claims to be one the guard reads but cannot be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ParseError(pub String);

/// The EventBridge envelope; every field optional, `detail` read later by its type.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Envelope {
    id: Option<String>,
    #[serde(rename = "detail-type")]
    detail_type: Option<String>,
    source: Option<String>,
    account: Option<String>,
    time: Option<String>,
    region: Option<String>,
    detail: Option<Value>,
}

/// What the envelope tells about an event whose detail lacks it.
#[derive(Default)]
struct Outer {
    id: Option<String>,
    account: Option<String>,
    region: Option<String>,
    time: Option<String>,
}

/// Reads one event: an EventBridge event or a bare CloudTrail record. Its text is checked
/// before anything uses it: the account, region and repository must follow AWS's grammar,
/// every digest be `sha256:` and 64 lowercase hex digits and every tag a valid ECR tag, else
/// the event is ignored with the reason; its free text (ids, times, callers) is cleaned
/// ([`crate::text::clean`]), so no event can put a line of its own into a page or a log.
pub fn parse(value: &Value) -> Result<Parsed, ParseError> {
    match read(value) {
        Ok(Parsed::Incident(i)) => Ok(checked(i)),
        Ok(Parsed::Ignored { event_id, reason }) => Ok(Parsed::Ignored {
            event_id: event_id.map(|id| clean(&id, ID_MAX)),
            reason: clean(&reason, 500),
        }),
        Err(ParseError(e)) => Err(ParseError(clean(&e, 500))),
    }
}

/// The longest event id kept (CloudTrail's and EventBridge's are 36-character UUIDs).
const ID_MAX: usize = 128;

/// The incident with its text checked and cleaned, or the reason it is ignored.
fn checked(mut i: Incident) -> Parsed {
    i.event_id = clean(&i.event_id, ID_MAX);
    let problem = i
        .repo
        .check()
        .err()
        .or_else(|| i.changes.iter().find_map(change_problem));
    if let Some(problem) = problem {
        return Parsed::Ignored {
            event_id: Some(i.event_id),
            reason: format!("not acted on: the event's text is malformed: {problem}"),
        };
    }
    i.source = clean(&i.source, 100);
    i.time = clean(&i.time, 40);
    i.note = i.note.map(|n| clean(&n, 300));
    i.actor = match i.actor {
        Actor::Principal { arn, role_arn } => Actor::Principal {
            arn: clean(&arn, ARN_MAX),
            role_arn: role_arn.map(|r| clean(&r, ARN_MAX)),
        },
        Actor::Unknown { label } => Actor::Unknown {
            label: clean(&label, 200),
        },
        Actor::Lifecycle => Actor::Lifecycle,
    };
    Parsed::Incident(i)
}

/// IAM's longest ARN.
const ARN_MAX: usize = 2048;

/// What is wrong with a change's digest or tag, if anything.
fn change_problem(c: &Change) -> Option<String> {
    let digest = |d: &str| {
        (!is_digest(d)).then(|| {
            format!(
                "digest `{}` is not sha256: and 64 lowercase hex digits",
                clean(d, 80)
            )
        })
    };
    let tag =
        |t: &str| (!is_tag(t)).then(|| format!("tag `{}` is not a valid ECR tag", clean(t, 130)));
    match c {
        Change::TagRemoved { tag: t, digest: d } => {
            tag(t).or_else(|| d.as_deref().and_then(digest))
        }
        Change::ImageDeleted {
            digest: d, tags, ..
        } => digest(d).or_else(|| tags.iter().find_map(|t| tag(t))),
        Change::TagPushed {
            tag: t, digest: d, ..
        } => tag(t).or_else(|| digest(d)),
        Change::RepositoryDeleted => None,
    }
}

fn read(value: &Value) -> Result<Parsed, ParseError> {
    let Some(obj) = value.as_object() else {
        return Err(ParseError(format!(
            "expected a JSON object (an EventBridge event or a CloudTrail record), found {}",
            kind_of(value)
        )));
    };
    if obj.contains_key("detail-type") || obj.contains_key("detail") {
        let env: Envelope = serde_json::from_value(value.clone())
            .map_err(|e| ParseError(format!("EventBridge envelope: {e}")))?;
        return parse_envelope(env);
    }
    if obj.contains_key("eventName") || obj.contains_key("eventSource") {
        return cloudtrail::parse(value, Outer::default());
    }
    Err(ParseError(
        "neither an EventBridge event (no `detail-type`) nor a CloudTrail record (no `eventName`)"
            .into(),
    ))
}

fn parse_envelope(env: Envelope) -> Result<Parsed, ParseError> {
    let ignored = |reason: String| Parsed::Ignored {
        event_id: env.id.clone(),
        reason,
    };
    if env.source.as_deref() != Some("aws.ecr") {
        return Ok(ignored(format!(
            "source {} is not aws.ecr",
            env.source.as_deref().unwrap_or("(none)")
        )));
    }
    let detail_type = env.detail_type.clone().unwrap_or_default();
    let Some(detail) = env.detail.clone() else {
        return Err(ParseError(format!("{detail_type} event has no `detail`")));
    };
    let outer = Outer {
        id: env.id.clone(),
        account: env.account.clone(),
        region: env.region.clone(),
        time: env.time.clone(),
    };
    match detail_type.as_str() {
        "AWS API Call via CloudTrail" | "AWS Service Event via CloudTrail" => {
            cloudtrail::parse(&detail, outer)
        }
        "ECR Image Action" => image_action::parse(&detail, outer),
        other => Ok(ignored(format!("detail-type `{other}` is not acted on"))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A stable id for a record that carries none: a hash of its JSON text.
fn content_id(value: &Value) -> String {
    let hash = crate::text::sha256_digest(value.to_string().as_bytes());
    format!("content-{}", &hash[7..39])
}

#[cfg(test)]
mod tests;
