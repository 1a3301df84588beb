//! DynamoDB: the registry items, their history and the once-only ledger, all in one table
//! keyed by `repository` (partition) and `tag` (sort).
//!
//! | item            | `repository`                      | `tag`                    |
//! |-----------------|-----------------------------------|--------------------------|
//! | protected tag   | `ACCOUNT/REGION/NAME`             | the tag                  |
//! | history line    | `history#ACCOUNT/REGION/NAME:TAG` | `TIME#EVENT_ID#N`        |
//! | ledger record   | `ledger#EVENT_ID`                 | `ledger`                 |
//!
//! Ledger records carry `expires_at` (epoch seconds), the table's TTL attribute.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use serde_json::{Map, Value};

use super::call_error;
use crate::error::CallError;
use crate::ports::{HistoryRecord, Registry};
use crate::registry::{self, field, Entry, InvalidEntry, Pin, RepoKey};
use crate::registry::{TagRule, RULE_PARTITION};

/// The TTL attribute of ledger records.
pub const TTL_ATTRIBUTE: &str = "expires_at";

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A DynamoDB attribute as plain JSON (`S`→string, `N`→number, `L`/`SS`/`NS`→array,
/// `M`→object, `B`→string when UTF-8). The registry parser reads this form.
pub fn attr_to_json(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(x) => Value::String(x.clone()),
        AttributeValue::N(x) => {
            crate::events::stream::number(x).unwrap_or_else(|| Value::String(x.clone()))
        }
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(items) => Value::Array(items.iter().map(attr_to_json).collect()),
        AttributeValue::M(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), attr_to_json(v)))
                .collect(),
        ),
        AttributeValue::Ss(items) => {
            Value::Array(items.iter().cloned().map(Value::String).collect())
        }
        AttributeValue::Ns(items) => Value::Array(
            items
                .iter()
                .map(|x| attr_to_json(&AttributeValue::N(x.clone())))
                .collect(),
        ),
        AttributeValue::B(b) => String::from_utf8(b.as_ref().to_vec())
            .map(Value::String)
            .unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// Plain JSON as a DynamoDB attribute (the inverse of [`attr_to_json`] for what it makes).
pub fn json_to_attr(v: &Value) -> AttributeValue {
    match v {
        Value::String(x) => s(x.clone()),
        Value::Number(x) => AttributeValue::N(x.to_string()),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Null => AttributeValue::Null(true),
        Value::Array(items) => AttributeValue::L(items.iter().map(json_to_attr).collect()),
        Value::Object(m) => AttributeValue::M(
            m.iter()
                .map(|(k, v)| (k.clone(), json_to_attr(v)))
                .collect(),
        ),
    }
}

fn item_to_json(item: &Item) -> Value {
    Value::Object(
        item.iter()
            .map(|(k, v)| (k.clone(), attr_to_json(v)))
            .collect::<Map<_, _>>(),
    )
}

pub(super) fn conditional_failed<E: ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

/// A conditional write's answer: `true` when written, `false` when its condition did not hold.
pub(crate) fn conditional<T, E>(
    op: &str,
    result: Result<T, aws_sdk_dynamodb::error::SdkError<E, aws_smithy_runtime_api::http::Response>>,
) -> Result<bool, CallError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if conditional_failed(&e) => Ok(false),
        Err(e) => Err(call_error(op, &e)),
    }
}

/// Every registry item of the table (not the guard's history and ledger records), as
/// plain JSON (`Scan`, paginated).
pub async fn scan_registry(client: &Client, table: &str) -> Result<Vec<Value>, CallError> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .filter_expression("NOT begins_with(#r, :h) AND NOT begins_with(#r, :l)")
            .expression_attribute_names("#r", field::REPOSITORY)
            .expression_attribute_values(":h", s("history#"))
            .expression_attribute_values(":l", s("ledger#"))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| call_error("dynamodb:Scan", &e))?;
        out.extend(page.items().iter().map(item_to_json));
        match page.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return Ok(out),
        }
    }
}

/// Writes items 25 a call (`BatchWriteItem`); unprocessed ones are sent again a few times,
/// then reported as worth a retry.
pub(super) async fn batch_write(
    client: &Client,
    table: &str,
    writes: Vec<WriteRequest>,
) -> Result<(), CallError> {
    for chunk in writes.chunks(25) {
        let mut pending = HashMap::from([(table.to_string(), chunk.to_vec())]);
        for _ in 0..3 {
            let out = client
                .batch_write_item()
                .set_request_items(Some(pending))
                .send()
                .await
                .map_err(|e| call_error("dynamodb:BatchWriteItem", &e))?;
            pending = out.unprocessed_items().cloned().unwrap_or_default();
            if pending.values().all(Vec::is_empty) {
                break;
            }
        }
        if pending.values().any(|v| !v.is_empty()) {
            return Err(CallError::transient(
                "dynamodb:BatchWriteItem",
                "some items were left unprocessed",
            ));
        }
    }
    Ok(())
}

/// The registry in a DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoRegistry {
    /// The client.
    pub client: Client,
    /// The table.
    pub table: String,
}

impl DynamoRegistry {
    /// Every item of one partition, as plain JSON.
    async fn partition(&self, key: &str) -> Result<Vec<Value>, CallError> {
        query_partition(&self.client, &self.table, key, false).await
    }
}

/// Every item of one partition, as plain JSON, sorted by `tag` (`newest_first`: reversed)
/// (`Query`, consistent, paginated).
pub async fn query_partition(
    client: &Client,
    table: &str,
    key: &str,
    newest_first: bool,
) -> Result<Vec<Value>, CallError> {
    let mut out = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let page = client
            .query()
            .table_name(table)
            .key_condition_expression("#r = :r")
            .expression_attribute_names("#r", field::REPOSITORY)
            .expression_attribute_values(":r", s(key))
            .consistent_read(true)
            .scan_index_forward(!newest_first)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| call_error("dynamodb:Query", &e))?;
        out.extend(page.items().iter().map(item_to_json));
        match page.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return Ok(out),
        }
    }
}

impl Registry for DynamoRegistry {
    async fn item(&self, partition: &str, tag: &str) -> Result<Option<Value>, CallError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(field::REPOSITORY, s(partition))
            .key(field::TAG, s(tag))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| call_error("dynamodb:GetItem", &e))?;
        Ok(out.item().map(item_to_json))
    }

    async fn write_pin_fields(
        &self,
        repo: &RepoKey,
        tag: &str,
        expect: Option<&str>,
        fields: Map<String, Value>,
    ) -> Result<bool, CallError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(field::REPOSITORY, s(repo.key()))
            .key(field::TAG, s(tag))
            .expression_attribute_names("#r", field::REPOSITORY)
            .expression_attribute_names("#d", field::DIGEST);
        let mut sets = Vec::new();
        let mut removes = Vec::new();
        for (i, f) in registry::PIN_FIELDS.iter().enumerate() {
            req = req.expression_attribute_names(format!("#f{i}"), *f);
            match fields.get(*f) {
                Some(v) => {
                    req = req.expression_attribute_values(format!(":f{i}"), json_to_attr(v));
                    sets.push(format!("#f{i} = :f{i}"));
                }
                None => removes.push(format!("#f{i}")),
            }
        }
        let mut update = String::new();
        if !sets.is_empty() {
            update.push_str(&format!("SET {}", sets.join(", ")));
        }
        if !removes.is_empty() {
            update.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        req = req.update_expression(update.trim());
        req = match expect {
            Some(d) => req
                .condition_expression("attribute_exists(#r) AND #d = :expect")
                .expression_attribute_values(":expect", s(d)),
            None => req.condition_expression("attribute_exists(#r) AND attribute_not_exists(#d)"),
        };
        conditional("dynamodb:UpdateItem", req.send().await)
    }

    async fn repositories(&self) -> Result<Vec<String>, CallError> {
        // Only the partition key is read back: a few bytes an item, whatever its manifest.
        let mut parts = std::collections::BTreeSet::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .projection_expression("#r")
                .filter_expression(
                    "NOT begins_with(#r, :h) AND NOT begins_with(#r, :l) AND #r <> :rule",
                )
                .expression_attribute_names("#r", field::REPOSITORY)
                .expression_attribute_values(":h", s("history#"))
                .expression_attribute_values(":l", s("ledger#"))
                .expression_attribute_values(":rule", s(registry::RULE_PARTITION))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| call_error("dynamodb:Scan", &e))?;
            parts.extend(
                page.items()
                    .iter()
                    .filter_map(|i| i.get(field::REPOSITORY)?.as_s().ok().cloned()),
            );
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(parts.into_iter().collect()),
            }
        }
    }

    async fn entries(&self, repo: &RepoKey) -> Result<Vec<Result<Entry, InvalidEntry>>, CallError> {
        let items = self.partition(&repo.key()).await?;
        Ok(items.iter().map(registry::parse_item).collect())
    }

    async fn mark_not_found(&self, repo: &RepoKey, tag: &str, at: &str) -> Result<bool, CallError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(field::REPOSITORY, s(repo.key()))
            .key(field::TAG, s(tag))
            .update_expression("SET #n = :at")
            .condition_expression("attribute_exists(#r) AND attribute_not_exists(#d)")
            .expression_attribute_names("#n", field::NOT_FOUND_AT)
            .expression_attribute_names("#r", field::REPOSITORY)
            .expression_attribute_names("#d", field::DIGEST)
            .expression_attribute_values(":at", s(at))
            .send()
            .await;
        conditional("dynamodb:UpdateItem", result)
    }

    async fn rules(&self) -> Result<Vec<Result<TagRule, InvalidEntry>>, CallError> {
        let items = self.partition(RULE_PARTITION).await?;
        Ok(items.iter().map(registry::parse_rule).collect())
    }

    async fn add_rule_pin(
        &self,
        repo: &RepoKey,
        tag: &str,
        rule: &str,
        pin: &Pin,
    ) -> Result<bool, CallError> {
        let mut item: Item = registry::pin_fields(pin)
            .iter()
            .map(|(k, v)| (k.clone(), json_to_attr(v)))
            .collect();
        item.insert(field::REPOSITORY.into(), s(repo.key()));
        item.insert(field::TAG.into(), s(tag));
        item.insert(field::RULE.into(), s(rule));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#r)")
            .expression_attribute_names("#r", field::REPOSITORY)
            .send()
            .await;
        conditional("dynamodb:PutItem", result)
    }

    async fn drop_rule_pin(
        &self,
        repo: &RepoKey,
        tag: &str,
        rule: &str,
    ) -> Result<bool, CallError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(field::REPOSITORY, s(repo.key()))
            .key(field::TAG, s(tag))
            .condition_expression("#rule = :rule")
            .expression_attribute_names("#rule", field::RULE)
            .expression_attribute_values(":rule", s(rule))
            .send()
            .await;
        conditional("dynamodb:DeleteItem", result)
    }

    async fn add_history(&self, records: &[HistoryRecord]) -> Result<(), CallError> {
        let mut writes = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let mut item: Item = HashMap::new();
            item.insert(
                field::REPOSITORY.into(),
                s(format!("history#{}:{}", r.repo.key(), r.tag)),
            );
            item.insert(field::TAG.into(), s(format!("{}#{}#{i}", r.at, r.event_id)));
            if let Ok(Value::Object(m)) = serde_json::to_value(r) {
                for (k, v) in m {
                    if k != "repo" && k != field::TAG && !v.is_null() {
                        item.insert(k, json_to_attr(&v));
                    }
                }
            }
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| CallError::fatal("dynamodb:BatchWriteItem", e.to_string()))?;
            writes.push(WriteRequest::builder().put_request(put).build());
        }
        batch_write(&self.client, &self.table, writes).await
    }
}
