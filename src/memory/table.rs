//! The registry table on the embedded world: items as plain JSON, pins written only over
//! the digest read, history appended.

use serde_json::Value;

use super::*;

impl Registry for Memory {
    async fn item(&self, partition: &str, tag: &str) -> Result<Option<Value>, CallError> {
        let s = self.call("dynamodb:GetItem").await?;
        Ok(s.items
            .get(&(partition.to_string(), tag.to_string()))
            .cloned())
    }

    async fn write_pin_fields(
        &self,
        repo: &RepoKey,
        tag: &str,
        expect: Option<&str>,
        fields: serde_json::Map<String, Value>,
    ) -> Result<bool, CallError> {
        let mut s = self.call("dynamodb:UpdateItem").await?;
        let Some(Value::Object(item)) = s.items.get_mut(&(repo.key(), tag.to_string())) else {
            return Ok(false);
        };
        if item.get(field::DIGEST).and_then(Value::as_str) != expect {
            return Ok(false);
        }
        for f in registry::PIN_FIELDS {
            item.remove(*f);
        }
        item.extend(fields);
        Ok(true)
    }

    async fn entries(&self, repo: &RepoKey) -> Result<Vec<Result<Entry, InvalidEntry>>, CallError> {
        let s = self.call("dynamodb:Query").await?;
        let pk = repo.key();
        Ok(s.items
            .range((pk.clone(), String::new())..)
            .take_while(|((p, _), _)| *p == pk)
            .map(|(_, item)| registry::parse_item(item))
            .collect())
    }

    async fn repositories(&self) -> Result<Vec<String>, CallError> {
        let s = self.call("dynamodb:Scan").await?;
        let mut parts: Vec<String> = s
            .items
            .keys()
            .map(|(p, _)| p)
            .filter(|p| !registry::is_internal_partition(p))
            .cloned()
            .collect();
        parts.dedup();
        Ok(parts)
    }

    async fn mark_not_found(&self, repo: &RepoKey, tag: &str, at: &str) -> Result<bool, CallError> {
        let mut s = self.call("dynamodb:UpdateItem").await?;
        let Some(Value::Object(item)) = s.items.get_mut(&(repo.key(), tag.to_string())) else {
            return Ok(false);
        };
        if item.contains_key(field::DIGEST) {
            return Ok(false);
        }
        item.insert(field::NOT_FOUND_AT.into(), at.into());
        Ok(true)
    }

    async fn rules(&self) -> Result<Vec<Result<TagRule, InvalidEntry>>, CallError> {
        let s = self.call("dynamodb:Query").await?;
        Ok(s.items
            .range((RULE_PARTITION.to_string(), String::new())..)
            .take_while(|((p, _), _)| p == RULE_PARTITION)
            .map(|(_, item)| registry::parse_rule(item))
            .collect())
    }

    async fn add_rule_pin(
        &self,
        repo: &RepoKey,
        tag: &str,
        rule: &str,
        pin: &Pin,
    ) -> Result<bool, CallError> {
        let mut s = self.call("dynamodb:PutItem").await?;
        let key = (repo.key(), tag.to_string());
        if s.items.contains_key(&key) {
            return Ok(false);
        }
        let mut item = registry::pin_fields(pin);
        item.insert(field::REPOSITORY.into(), repo.key().into());
        item.insert(field::TAG.into(), tag.into());
        item.insert(field::RULE.into(), rule.into());
        s.items.insert(key, Value::Object(item));
        Ok(true)
    }

    async fn drop_rule_pin(
        &self,
        repo: &RepoKey,
        tag: &str,
        rule: &str,
    ) -> Result<bool, CallError> {
        let mut s = self.call("dynamodb:DeleteItem").await?;
        let key = (repo.key(), tag.to_string());
        let made_by_rule = s
            .items
            .get(&key)
            .and_then(|i| i.get(field::RULE))
            .and_then(Value::as_str)
            == Some(rule);
        if made_by_rule {
            s.items.remove(&key);
        }
        Ok(made_by_rule)
    }

    async fn add_history(&self, records: &[HistoryRecord]) -> Result<(), CallError> {
        let mut s = self.call("dynamodb:BatchWriteItem").await?;
        s.history.extend_from_slice(records);
        Ok(())
    }
}
