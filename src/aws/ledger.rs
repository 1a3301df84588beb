//! The once-only ledger in the registry table: claims, "done" marks, pages kept for a retry,
//! first-sighting notes, all under `ledger#` keys with a TTL.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;

use super::call_error;
use super::dynamodb::{conditional_failed, n, s, Item, TTL_ATTRIBUTE};
use crate::error::CallError;
use crate::page::Page;
use crate::ports::{Claim, Ledger, CLAIM_LEASE_SECS, LEDGER_TTL_SECS};
use crate::registry::field;

/// The partition where reconcile notes when it last got through each repository (under the
/// ledger's prefix, so the registry scan and the stream filter leave it alone).
const PROGRESS: &str = "ledger#reconciled";

/// The partition of repositories that hold retired guard tags (no TTL: reconcile clears
/// each once it has let go of them).
const GUARD_TAGS: &str = "ledger#guard-tags";

/// The partition of reconcile pages SNS did not take (no TTL: the next run sends and drops
/// each). A page is under 248 KiB (`crate::page::PAGE_MAX_BYTES`), so the item fits.
const UNSENT: &str = "ledger#unsent";

/// The once-only ledger in the same table.
#[derive(Clone, Debug)]
pub struct DynamoLedger {
    /// The client.
    pub client: Client,
    /// The table.
    pub table: String,
}

impl DynamoLedger {
    /// Writes the ledger record (`partition`, `key`) with `fields`, without expiry.
    async fn put_record(
        &self,
        partition: &str,
        key: &str,
        fields: Vec<(&str, AttributeValue)>,
    ) -> Result<(), CallError> {
        let item: Item = [
            (field::REPOSITORY.to_string(), s(partition)),
            (field::TAG.to_string(), s(key)),
        ]
        .into_iter()
        .chain(fields.into_iter().map(|(k, v)| (k.to_string(), v)))
        .collect();
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| call_error("dynamodb:PutItem", &e))
    }

    /// Deletes the ledger record (`partition`, `key`); one that is not there is no error.
    async fn delete_record(&self, partition: &str, key: &str) -> Result<(), CallError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(field::REPOSITORY, s(partition))
            .key(field::TAG, s(key))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| call_error("dynamodb:DeleteItem", &e))
    }

    fn key(event_id: &str) -> [(String, AttributeValue); 2] {
        [
            (field::REPOSITORY.into(), s(format!("ledger#{event_id}"))),
            (field::TAG.into(), s("ledger")),
        ]
    }

    fn record(event_id: &str, now: i64, state: &str) -> Item {
        let mut item: Item = Self::key(event_id).into_iter().collect();
        item.insert("state".into(), s(state));
        item.insert("claimed_at".into(), n(now));
        item.insert(TTL_ATTRIBUTE.into(), n(now + LEDGER_TTL_SECS));
        item
    }

    fn read_claim(old: &Item) -> Claim {
        match old
            .get("state")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
        {
            Some("done") => Claim::Done,
            Some("pending") => {
                let pages: Vec<Page> = old
                    .get("pages")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|t| serde_json::from_str(t).ok())
                    .unwrap_or_default();
                let redo = old
                    .get("redo")
                    .and_then(|v| v.as_bool().ok())
                    .copied()
                    .unwrap_or(false);
                Claim::PagesPending { pages, redo }
            }
            _ => Claim::Busy,
        }
    }
}

impl Ledger for DynamoLedger {
    async fn claim(&self, event_id: &str, now: i64, lease_until: i64) -> Result<Claim, CallError> {
        // One call: create the record, take over a claim whose lease ran out, or lease the
        // pages an earlier attempt left pending (they stay on the record until sent).
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(event_id).into_iter().collect()))
            .update_expression(
                "SET #s = if_not_exists(#s, :claimed), claimed_at = :now, lease_until = :lease, #ttl = :ttl",
            )
            .condition_expression(
                "attribute_not_exists(#r) OR (#s IN (:claimed, :pending) AND \
                 (lease_until < :now OR (attribute_not_exists(lease_until) AND claimed_at < :stale)))",
            )
            .expression_attribute_names("#r", field::REPOSITORY)
            .expression_attribute_names("#s", "state")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":claimed", s("claimed"))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":lease", n(lease_until))
            .expression_attribute_values(":ttl", n(now + LEDGER_TTL_SECS))
            // Records written before leases were kept: the fixed lease of that time.
            .expression_attribute_values(":stale", n(now - CLAIM_LEASE_SECS))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(match out.attributes().filter(|a| !a.is_empty()) {
                None => Claim::Fresh,
                Some(old) => match Self::read_claim(old) {
                    Claim::Busy => Claim::Resumed,
                    pending => pending,
                },
            }),
            Err(e) => {
                let Some(old) = e.as_service_error().filter(|se| conditional_failed(*se)).map(|se| match se {
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => c.item().cloned(),
                    _ => None,
                }) else {
                    return Err(call_error("dynamodb:UpdateItem", &e));
                };
                let old = match old {
                    Some(item) => item,
                    None => self
                        .client
                        .get_item()
                        .table_name(&self.table)
                        .set_key(Some(Self::key(event_id).into_iter().collect()))
                        .consistent_read(true)
                        .send()
                        .await
                        .map_err(|e| call_error("dynamodb:GetItem", &e))?
                        .item()
                        .cloned()
                        .unwrap_or_default(),
                };
                // Held within its lease (claimed, or its pending pages being sent) or done.
                Ok(match Self::read_claim(&old) {
                    Claim::Done => Claim::Done,
                    _ => Claim::Busy,
                })
            }
        }
    }

    async fn finish(
        &self,
        event_id: &str,
        now: i64,
        pending: &[Page],
        redo: bool,
    ) -> Result<(), CallError> {
        let mut item = Self::record(
            event_id,
            now,
            if pending.is_empty() && !redo {
                "done"
            } else {
                "pending"
            },
        );
        if !pending.is_empty() {
            let text = serde_json::to_string(pending)
                .map_err(|e| CallError::fatal("dynamodb:PutItem", e.to_string()))?;
            item.insert("pages".into(), s(text));
        }
        if redo {
            item.insert("redo".into(), AttributeValue::Bool(true));
        }
        // Nobody holds what is left pending: the next attempt may lease it at once.
        item.insert("lease_until".into(), n(0));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| call_error("dynamodb:PutItem", &e))?;
        Ok(())
    }

    async fn release(&self, event_id: &str) -> Result<(), CallError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(event_id).into_iter().collect()))
            .send()
            .await
            .map_err(|e| call_error("dynamodb:DeleteItem", &e))?;
        Ok(())
    }

    async fn first_seen(&self, key: &str, now: i64) -> Result<i64, CallError> {
        // One call: note the time unless a note exists, and read back the one that stands.
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(key).into_iter().collect()))
            .update_expression("SET first_seen = if_not_exists(first_seen, :now), #ttl = if_not_exists(#ttl, :ttl)")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":ttl", n(now + LEDGER_TTL_SECS))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| call_error("dynamodb:UpdateItem", &e))?;
        Ok(out
            .attributes()
            .and_then(|a| a.get("first_seen"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(now))
    }

    async fn reconciled(&self) -> Result<Vec<(String, i64)>, CallError> {
        let items =
            super::dynamodb::query_partition(&self.client, &self.table, PROGRESS, false).await?;
        Ok(items
            .iter()
            .filter_map(|i| {
                let repo = i.get(field::TAG)?.as_str()?.to_string();
                Some((repo, i.get("at")?.as_i64()?))
            })
            .collect())
    }

    async fn mark_reconciled(&self, repos: &[String], at: i64) -> Result<(), CallError> {
        let mut writes = Vec::new();
        for r in repos {
            let item: Item = [
                (field::REPOSITORY.to_string(), s(PROGRESS)),
                (field::TAG.to_string(), s(r.as_str())),
                ("at".to_string(), n(at)),
            ]
            .into_iter()
            .collect();
            let put = aws_sdk_dynamodb::types::PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| CallError::fatal("dynamodb:BatchWriteItem", e.to_string()))?;
            writes.push(
                aws_sdk_dynamodb::types::WriteRequest::builder()
                    .put_request(put)
                    .build(),
            );
        }
        super::dynamodb::batch_write(&self.client, &self.table, writes).await
    }

    async fn note_guard_tags(&self, repo: &str, held: bool) -> Result<(), CallError> {
        if held {
            self.put_record(GUARD_TAGS, repo, Vec::new()).await
        } else {
            self.delete_record(GUARD_TAGS, repo).await
        }
    }

    async fn keep_unsent(
        &self,
        key: &str,
        page: &Page,
        problems: &[String],
    ) -> Result<(), CallError> {
        let fields = vec![
            ("page", s(serde_json::to_string(page).unwrap_or_default())),
            (
                "problems",
                s(serde_json::to_string(problems).unwrap_or_default()),
            ),
        ];
        self.put_record(UNSENT, key, fields).await
    }

    async fn unsent(&self) -> Result<Vec<(String, Page, Vec<String>)>, CallError> {
        let items =
            super::dynamodb::query_partition(&self.client, &self.table, UNSENT, false).await?;
        Ok(items
            .iter()
            .filter_map(|i| {
                let key = i.get(field::TAG)?.as_str()?.to_string();
                let page: Page = serde_json::from_str(i.get("page")?.as_str()?).ok()?;
                let problems: Vec<String> = i
                    .get("problems")
                    .and_then(serde_json::Value::as_str)
                    .and_then(|p| serde_json::from_str(p).ok())
                    .unwrap_or_default();
                Some((key, page, problems))
            })
            .collect())
    }

    async fn drop_unsent(&self, key: &str) -> Result<(), CallError> {
        self.delete_record(UNSENT, key).await
    }

    async fn guard_tag_repositories(&self) -> Result<Vec<String>, CallError> {
        let items =
            super::dynamodb::query_partition(&self.client, &self.table, GUARD_TAGS, false).await?;
        Ok(items
            .iter()
            .filter_map(|i| Some(i.get(field::TAG)?.as_str()?.to_string()))
            .collect())
    }
}
