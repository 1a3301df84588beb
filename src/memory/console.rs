//! The registry commands' port on the embedded world: items as plain JSON, images by tag or
//! digest, lifecycle policies, a caller. History reads come from the world's history records,
//! laid out as the DynamoDB adapter writes them (`history#ACCOUNT/REGION/NAME:TAG`).

use serde_json::{json, Value};

use super::Memory;
use crate::error::CallError;
use crate::ports::{HistoryRecord, Identity, Items, Policies};
use crate::registry::{field, RepoKey};

/// The prefix of a tag's history partition.
const HISTORY: &str = "history#";

/// An item's key (`repository`, `tag`), as DynamoDB requires it on a write.
fn item_key(item: &Value) -> Result<(String, String), CallError> {
    let text = |f: &str| item.get(f).and_then(Value::as_str).map(String::from);
    match (text(field::REPOSITORY), text(field::TAG)) {
        (Some(partition), Some(tag)) => Ok((partition, tag)),
        _ => Err(CallError::fatal(
            "dynamodb:PutItem",
            "ValidationException: the item has no repository or tag",
        )),
    }
}

impl Items for Memory {
    async fn put_item(&self, item: &Value, replace: bool) -> Result<bool, CallError> {
        let mut s = self.call("dynamodb:PutItem").await?;
        let key = item_key(item)?;
        if !replace && s.items.contains_key(&key) {
            return Ok(false);
        }
        s.items.insert(key, item.clone());
        Ok(true)
    }

    async fn replace_item(&self, item: &Value, expect: Option<&str>) -> Result<bool, CallError> {
        let mut s = self.call("dynamodb:PutItem").await?;
        let key = item_key(item)?;
        let holds = s
            .items
            .get(&key)
            .is_some_and(|i| i.get(field::DIGEST).and_then(Value::as_str) == expect);
        if holds {
            s.items.insert(key, item.clone());
        }
        Ok(holds)
    }

    async fn delete_pinned(
        &self,
        partition: &str,
        tag: &str,
        expect: Option<&str>,
    ) -> Result<bool, CallError> {
        let mut s = self.call("dynamodb:DeleteItem").await?;
        let key = (partition.to_string(), tag.to_string());
        let holds = s
            .items
            .get(&key)
            .is_some_and(|i| i.get(field::DIGEST).and_then(Value::as_str) == expect);
        if holds {
            s.items.remove(&key);
        }
        Ok(holds)
    }

    async fn add_history(&self, records: &[HistoryRecord]) -> Result<(), CallError> {
        crate::ports::Registry::add_history(self, records).await
    }

    async fn note_guard_tags(&self, repo: &str) -> Result<(), CallError> {
        crate::ports::Ledger::note_guard_tags(self, repo, true).await
    }

    async fn guard_tag_repositories(&self) -> Result<Vec<String>, CallError> {
        crate::ports::Ledger::guard_tag_repositories(self).await
    }

    async fn delete_item(&self, partition: &str, tag: &str) -> Result<bool, CallError> {
        let mut s = self.call("dynamodb:DeleteItem").await?;
        Ok(s.items
            .remove(&(partition.to_string(), tag.to_string()))
            .is_some())
    }

    async fn partition(&self, key: &str, newest_first: bool) -> Result<Vec<Value>, CallError> {
        let s = self.call("dynamodb:Query").await?;
        let mut out: Vec<Value> = match key.strip_prefix(HISTORY) {
            Some(tag_key) => s
                .history
                .iter()
                .enumerate()
                .filter(|(_, r)| format!("{}:{}", r.repo.key(), r.tag) == tag_key)
                .map(|(i, r)| {
                    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
                    if let Some(o) = v.as_object_mut() {
                        o.remove("repo");
                        o.retain(|_, x| !x.is_null());
                    }
                    v[field::REPOSITORY] = json!(key);
                    v[field::TAG] = json!(format!("{}#{}#{i:06}", r.at, r.event_id));
                    v
                })
                .collect(),
            None => s
                .items
                .range((key.to_string(), String::new())..)
                .take_while(|((p, _), _)| p == key)
                .map(|(_, item)| item.clone())
                .collect(),
        };
        out.sort_by(|a, b| {
            let tag = |v: &Value| v[field::TAG].as_str().unwrap_or_default().to_string();
            tag(a).cmp(&tag(b))
        });
        if newest_first {
            out.reverse();
        }
        Ok(out)
    }

    async fn registry_items(&self) -> Result<Vec<Value>, CallError> {
        let s = self.call("dynamodb:Scan").await?;
        Ok(s.items.values().cloned().collect())
    }
}

impl Policies for Memory {
    async fn lifecycle_policy(&self, repo: &RepoKey) -> Result<Option<String>, CallError> {
        let s = self.call("ecr:GetLifecyclePolicy").await?;
        Ok(s.repos.get(repo).and_then(|r| r.lifecycle_policy.clone()))
    }

    async fn put_lifecycle_policy(&self, repo: &RepoKey, text: &str) -> Result<(), CallError> {
        let mut s = self.call("ecr:PutLifecyclePolicy").await?;
        let r = s.repos.get_mut(repo).ok_or_else(|| {
            CallError::fatal(
                "ecr:PutLifecyclePolicy",
                format!(
                    "RepositoryNotFoundException: repository {} does not exist",
                    repo.name
                ),
            )
        })?;
        r.lifecycle_policy = Some(text.to_string());
        Ok(())
    }
}

impl Identity for Memory {
    async fn caller(&self) -> Option<(String, String)> {
        let account = self.home()?.account;
        Some((
            account.clone(),
            format!("arn:aws:iam::{account}:user/embedded"),
        ))
    }
}

impl Memory {
    /// The account and region plain repository names resolve to on the embedded world: those
    /// of its first repository (by key), else of its first registry item.
    pub fn home(&self) -> Option<RepoKey> {
        let s = self.state();
        s.repos.keys().next().cloned().or_else(|| {
            s.items
                .keys()
                .find_map(|(partition, _)| RepoKey::parse(partition).ok())
        })
    }
}
