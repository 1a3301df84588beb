//! The calls the registry commands make (`registry init`, `protect`, `list`, `history`,
//! `status`): table set-up, item reads and writes, and reading tags from ECR. They
//! translate; the commands in [`crate::cli`] decide.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use serde_json::Value;

use super::call_error;
use super::dynamodb::{json_to_attr, TTL_ATTRIBUTE};
pub use super::ecr::batch_get;
use super::EcrImages;
use crate::error::CallError;
use crate::guard::PutStep;
use crate::ports::{Identity, Images, Items, PinKey, Policies, Put, PutError};
use crate::registry::image::ImageInfo;
use crate::registry::image::Storage;
pub use crate::registry::ImageRef;
use crate::registry::{field, Manifest, RepoKey};

/// What the registry table looks like, as far as the guard cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableState {
    /// There is no such table.
    Missing,
    /// It has the documented key schema (`repository` hash, `tag` range, both strings);
    /// `stream`: its DynamoDB Stream is on.
    Matching {
        /// The table's stream is enabled.
        stream: bool,
    },
    /// It has another key schema, described.
    Other(String),
}

/// The registry table and ECR, for the commands.
#[derive(Clone, Debug)]
pub struct Admin {
    /// DynamoDB.
    pub ddb: aws_sdk_dynamodb::Client,
    /// ECR, in each repository's region.
    pub ecr: super::EcrClients,
    /// The registry table.
    pub table: String,
    /// STS, for the caller's account and ARN.
    pub sts: aws_sdk_sts::Client,
    /// The key that seals pins.
    pub kms: super::KmsPinKey,
}

fn json_to_item(v: &Value) -> HashMap<String, AttributeValue> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), json_to_attr(v)))
                .collect()
        })
        .unwrap_or_default()
}

/// The registry's stream: new images, for registration.
fn stream_spec(op: &str) -> Result<aws_sdk_dynamodb::types::StreamSpecification, CallError> {
    aws_sdk_dynamodb::types::StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::NewImage)
        .build()
        .map_err(|e| CallError::fatal(op, e.to_string()))
}

impl Admin {
    /// Turns the table's stream on (new images).
    pub async fn enable_stream(&self) -> Result<(), CallError> {
        self.ddb
            .update_table()
            .table_name(&self.table)
            .stream_specification(stream_spec("dynamodb:UpdateTable")?)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| call_error("dynamodb:UpdateTable", &e))
    }

    /// Describes the table's key schema.
    pub async fn table_state(&self) -> Result<TableState, CallError> {
        let out = match self
            .ddb
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                return Ok(TableState::Missing)
            }
            Err(e) => return Err(call_error("dynamodb:DescribeTable", &e)),
        };
        let Some(t) = out.table() else {
            return Ok(TableState::Missing);
        };
        let types: BTreeMap<&str, &str> = t
            .attribute_definitions()
            .iter()
            .map(|a| (a.attribute_name(), a.attribute_type().as_str()))
            .collect();
        let keys: Vec<String> = t
            .key_schema()
            .iter()
            .map(|k| {
                let name = k.attribute_name();
                format!(
                    "{name} {} {}",
                    k.key_type().as_str(),
                    types.get(name).unwrap_or(&"?")
                )
            })
            .collect();
        let wanted = [
            format!("{} HASH S", field::REPOSITORY),
            format!("{} RANGE S", field::TAG),
        ];
        let stream = t.stream_specification().is_some_and(|s| s.stream_enabled());
        Ok(if keys == wanted {
            TableState::Matching { stream }
        } else {
            TableState::Other(keys.join(", "))
        })
    }

    /// Creates the table (on demand) and turns on TTL for the ledger's records.
    pub async fn create_table(&self) -> Result<(), CallError> {
        let attr = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| CallError::fatal("dynamodb:CreateTable", e.to_string()))
        };
        let key = |n: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(t)
                .build()
                .map_err(|e| CallError::fatal("dynamodb:CreateTable", e.to_string()))
        };
        self.ddb
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(field::REPOSITORY)?)
            .attribute_definitions(attr(field::TAG)?)
            .key_schema(key(field::REPOSITORY, KeyType::Hash)?)
            .key_schema(key(field::TAG, KeyType::Range)?)
            .stream_specification(stream_spec("dynamodb:CreateTable")?)
            .send()
            .await
            .map_err(|e| call_error("dynamodb:CreateTable", &e))?;
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(TTL_ATTRIBUTE)
            .enabled(true)
            .build()
            .map_err(|e| CallError::fatal("dynamodb:UpdateTimeToLive", e.to_string()))?;
        self.ddb
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(|e| call_error("dynamodb:UpdateTimeToLive", &e))?;
        Ok(())
    }
}

/// A condition on a write of an item: that it exists, or also that its pin is still `expect`
/// (`None`: not pinned), for writes that must not go over a pin changed meanwhile.
struct PinCondition {
    expression: &'static str,
    names: HashMap<String, String>,
    values: Option<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
}

impl PinCondition {
    /// Only that the item exists.
    fn exists() -> PinCondition {
        PinCondition {
            expression: "attribute_exists(#r)",
            names: HashMap::from([("#r".to_string(), field::REPOSITORY.to_string())]),
            values: None,
        }
    }

    fn new(expect: Option<&str>) -> PinCondition {
        let names = HashMap::from([
            ("#r".to_string(), field::REPOSITORY.to_string()),
            ("#d".to_string(), field::DIGEST.to_string()),
        ]);
        match expect {
            Some(d) => PinCondition {
                expression: "attribute_exists(#r) AND #d = :d",
                names,
                values: Some(HashMap::from([(
                    ":d".to_string(),
                    json_to_attr(&Value::String(d.into())),
                )])),
            },
            None => PinCondition {
                expression: "attribute_exists(#r) AND attribute_not_exists(#d)",
                names,
                values: None,
            },
        }
    }
}

impl Admin {
    /// Deletes the item (`partition`, `tag`) under condition `c`; `false` when `c` fails.
    async fn delete_if(
        &self,
        partition: &str,
        tag: &str,
        c: PinCondition,
    ) -> Result<bool, CallError> {
        let result = self
            .ddb
            .delete_item()
            .table_name(&self.table)
            .key(
                field::REPOSITORY,
                json_to_attr(&Value::String(partition.to_string())),
            )
            .key(field::TAG, json_to_attr(&Value::String(tag.to_string())))
            .condition_expression(c.expression)
            .set_expression_attribute_names(Some(c.names))
            .set_expression_attribute_values(c.values)
            .send()
            .await;
        super::dynamodb::conditional("dynamodb:DeleteItem", result)
    }
}

impl Items for Admin {
    /// Writes an item; unless `replace`, only where none exists. `false`: one exists.
    async fn put_item(&self, item: &Value, replace: bool) -> Result<bool, CallError> {
        let mut req = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(json_to_item(item)));
        if !replace {
            req = req
                .condition_expression("attribute_not_exists(#r)")
                .expression_attribute_names("#r", field::REPOSITORY);
        }
        super::dynamodb::conditional("dynamodb:PutItem", req.send().await)
    }
    /// Replaces the tag item while its `digest` is still `expect` (a condition on the write).
    async fn replace_item(&self, item: &Value, expect: Option<&str>) -> Result<bool, CallError> {
        let c = PinCondition::new(expect);
        let req = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(json_to_item(item)))
            .condition_expression(c.expression)
            .set_expression_attribute_names(Some(c.names))
            .set_expression_attribute_values(c.values);
        super::dynamodb::conditional("dynamodb:PutItem", req.send().await)
    }
    /// Deletes the tag item while its `digest` is still `expect` (a condition on the delete).
    async fn delete_pinned(
        &self,
        partition: &str,
        tag: &str,
        expect: Option<&str>,
    ) -> Result<bool, CallError> {
        self.delete_if(partition, tag, PinCondition::new(expect))
            .await
    }
    /// Appends to the tags' history (through the guard's own registry adapter).
    async fn add_history(&self, records: &[crate::ports::HistoryRecord]) -> Result<(), CallError> {
        let registry = super::DynamoRegistry {
            client: self.ddb.clone(),
            table: self.table.clone(),
        };
        crate::ports::Registry::add_history(&registry, records).await
    }
    /// Notes the repository for reconcile, in the ledger's partition of the same table.
    async fn note_guard_tags(&self, repo: &str) -> Result<(), CallError> {
        let ledger = super::DynamoLedger {
            client: self.ddb.clone(),
            table: self.table.clone(),
        };
        crate::ports::Ledger::note_guard_tags(&ledger, repo, true).await
    }
    /// The repositories noted as holding retired guard tags (the ledger's partition).
    async fn guard_tag_repositories(&self) -> Result<Vec<String>, CallError> {
        let ledger = super::DynamoLedger {
            client: self.ddb.clone(),
            table: self.table.clone(),
        };
        crate::ports::Ledger::guard_tag_repositories(&ledger).await
    }
    /// Deletes the item with key (`partition`, `tag`): a tag's (`ACCOUNT/REGION/NAME`) or a
    /// rule's (`rule#`). `false`: there was none.
    async fn delete_item(&self, partition: &str, tag: &str) -> Result<bool, CallError> {
        self.delete_if(partition, tag, PinCondition::exists()).await
    }
    /// Every item of a partition, as plain JSON, sorted by `tag` (`newest_first`: reversed).
    async fn partition(&self, key: &str, newest_first: bool) -> Result<Vec<Value>, CallError> {
        super::dynamodb::query_partition(&self.ddb, &self.table, key, newest_first).await
    }
    /// Every registry item (not the guard's own history and ledger records), as plain JSON.
    async fn registry_items(&self) -> Result<Vec<Value>, CallError> {
        super::dynamodb::scan_registry(&self.ddb, &self.table).await
    }
    /// Reads images by tag or digest: see [`batch_get`].
    fn has_registry(&self) -> bool {
        !self.table.is_empty()
    }
}

impl Policies for Admin {
    /// The repository's lifecycle policy text; `None` when it has none.
    async fn lifecycle_policy(&self, repo: &RepoKey) -> Result<Option<String>, CallError> {
        let result = self
            .ecr
            .for_repo(repo)
            .get_lifecycle_policy()
            .registry_id(&repo.account)
            .repository_name(&repo.name)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.lifecycle_policy_text().map(String::from)),
            Err(e) if e.code() == Some("LifecyclePolicyNotFoundException") => Ok(None),
            Err(e) => Err(call_error("ecr:GetLifecyclePolicy", &e)),
        }
    }
    /// Writes the repository's lifecycle policy.
    async fn put_lifecycle_policy(&self, repo: &RepoKey, text: &str) -> Result<(), CallError> {
        self.ecr
            .for_repo(repo)
            .put_lifecycle_policy()
            .registry_id(&repo.account)
            .repository_name(&repo.name)
            .lifecycle_policy_text(text)
            .send()
            .await
            .map_err(|e| call_error("ecr:PutLifecyclePolicy", &e))?;
        Ok(())
    }
}

impl Identity for Admin {
    async fn caller(&self) -> Option<(String, String)> {
        let id = self.sts.get_caller_identity().send().await.ok()?;
        Some((id.account()?.to_string(), id.arn()?.to_string()))
    }
}

impl Admin {
    /// ECR's images through the admin's clients.
    fn images(&self) -> EcrImages {
        EcrImages {
            clients: self.ecr.clone(),
        }
    }
}

/// The commands reach ECR's images and the pin key through the same adapters the guard uses.
impl Images for Admin {
    async fn put(&self, repo: &RepoKey, step: &PutStep) -> Result<Put, PutError> {
        self.images().put(repo, step).await
    }
    async fn manifest(&self, repo: &RepoKey, digest: &str) -> Result<Option<Manifest>, CallError> {
        self.images().manifest(repo, digest).await
    }
    async fn untag(&self, repo: &RepoKey, tag: &str) -> Result<(), CallError> {
        self.images().untag(repo, tag).await
    }
    async fn read(
        &self,
        repo: &RepoKey,
        ids: &[ImageRef],
    ) -> Result<Option<Vec<Result<Manifest, String>>>, CallError> {
        self.images().read(repo, ids).await
    }
    async fn off_standard(&self, repo: &RepoKey) -> Result<Vec<(String, Storage)>, CallError> {
        self.images().off_standard(repo).await
    }
    async fn list(&self, repo: &RepoKey) -> Result<Option<Vec<ImageInfo>>, CallError> {
        self.images().list(repo).await
    }
    async fn list_all(&self, repo: &RepoKey) -> Result<Option<Vec<ImageInfo>>, CallError> {
        self.images().list_all(repo).await
    }
    async fn unarchive(&self, repo: &RepoKey, digest: &str) -> Result<(), CallError> {
        self.images().unarchive(repo, digest).await
    }
}

impl PinKey for Admin {
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CallError> {
        self.kms.sign(message).await
    }
    async fn verify(&self, message: &[u8], mac: &[u8]) -> Result<bool, CallError> {
        self.kms.verify(message, mac).await
    }
}
