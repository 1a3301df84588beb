//! The integration-test harness: one `moto_server` for the run (started through
//! `tests/moto_launcher.py`, which makes its ECR answer like AWS), one moto account per
//! test, the real SDK clients, and a log of every AWS call the handler makes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_sdk_ecr::types::{ImageIdentifier, ImageTagMutability};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use ecr_tag_guard::aws::{json_to_attr, DynamoLedger, DynamoRegistry, EcrImages, SnsPager};
use ecr_tag_guard::guard::Scope;
use ecr_tag_guard::registry::RepoKey;
use ecr_tag_guard::service::{Handler, Now, Report};
use ecr_tag_guard::wiring::AwsHandler;
use serde_json::{json, Value};

pub const REGION: &str = "eu-west-1";
pub const GUARD_ROLE: &str = "ecr-tag-guard-role";

struct Server {
    url: String,
    _child: Child,
}

static SERVER: OnceLock<Option<Server>> = OnceLock::new();
static NEXT_ACCOUNT: AtomicU64 = AtomicU64::new(1);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python that has moto: `MOTO_PYTHON`, else the project's `.venv`.
fn python() -> Option<PathBuf> {
    std::env::var_os("MOTO_PYTHON")
        .map(PathBuf::from)
        .or_else(|| Some(root().join(".venv/bin/python")))
        .filter(|p| p.exists())
}

fn start() -> Option<Server> {
    let Some(py) = python() else {
        let msg = "moto is not installed (.venv/bin/python missing): run ./scripts/test.sh, which installs it";
        if std::env::var_os("REQUIRE_MOTO").is_some() {
            panic!("{msg}");
        }
        // Written to the process's stderr itself, past the test harness's capture: a skip is
        // seen once per run, not only when a test fails.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: every test that needs moto_server: {msg}"
        );
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut child = Command::new(py)
        .arg(root().join("tests/moto_launcher.py"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("moto_launcher.py starts");
    // Its stdin stays open as long as this process lives; the launcher exits when it closes.
    std::mem::forget(child.stdin.take());
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(mut l) = sink.lock() {
                l.push_str(&line);
                l.push('\n');
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "moto_server exited ({status}):\n{}",
                log.lock().map(|l| l.clone()).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "moto_server did not start within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Server {
        url: format!("http://127.0.0.1:{port}"),
        _child: child,
    })
}

/// Sends every request to one moto account, logs each operation as `service:Operation` and
/// counts the calls of each operation in flight (now, and the most at once).
#[derive(Debug, Clone)]
struct MotoAccount {
    account: String,
    calls: Arc<Mutex<Vec<String>>>,
    flight: Arc<Mutex<HashMap<String, (usize, usize)>>>,
}

fn operation(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>()
        .map(|m| format!("{}:{}", service_name(m.service()), m.name()))
        .unwrap_or_else(|| "unknown".into())
}

impl Intercept for MotoAccount {
    fn name(&self) -> &'static str {
        "MotoAccount"
    }

    fn modify_before_transmit(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        ctx.request_mut()
            .headers_mut()
            .insert("x-moto-account-id", self.account.clone());
        // Retries are off in these tests, so one transmit is one call.
        let op = operation(cfg);
        {
            let mut flight = self.flight.lock().expect("flight");
            let (now, peak) = flight.entry(op.clone()).or_default();
            *now += 1;
            *peak = (*peak).max(*now);
        }
        self.calls.lock().expect("calls").push(op);
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _ctx: &BeforeDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some((now, _)) = self.flight.lock().expect("flight").get_mut(&operation(cfg)) {
            *now = now.saturating_sub(1);
        }
        Ok(())
    }
}

fn service_name(s: &str) -> String {
    match s.to_lowercase().replace(' ', "").as_str() {
        "ecr" | "amazonec2containerregistry" => "ecr".into(),
        other => other.into(),
    }
}

/// One test's world: its own moto account with a registry table, a topic and a queue
/// subscribed to it.
pub struct World {
    pub account: String,
    pub calls: Arc<Mutex<Vec<String>>>,
    /// Per operation: calls in flight now and the most at once.
    pub flight: Arc<Mutex<HashMap<String, (usize, usize)>>>,
    pub ecr: aws_sdk_ecr::Client,
    pub ddb: aws_sdk_dynamodb::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sts: aws_sdk_sts::Client,
    pub kms: aws_sdk_kms::Client,
    /// The ARN of the world's pin key (KMS HMAC_256).
    pub pin_key: String,
    pub table: String,
    pub topic_arn: String,
    pub queue_url: String,
    /// Held by a world in moto's default account (the one the binary reaches without an
    /// account header): tests there run one at a time, as their names would collide.
    _default_account: Option<tokio::sync::OwnedMutexGuard<()>>,
}

/// The account moto gives requests without an account header (the binary's).
pub const DEFAULT_ACCOUNT: &str = "123456789012";

/// Deletes every repository of the account `ecr` reaches: a test in moto's default account
/// starts with no repository an earlier one left.
async fn clear_repositories(ecr: &aws_sdk_ecr::Client) {
    let repos = ecr
        .describe_repositories()
        .send()
        .await
        .expect("describe repositories");
    for r in repos.repositories() {
        if let Some(name) = r.repository_name() {
            ecr.delete_repository()
                .repository_name(name)
                .force(true)
                .send()
                .await
                .expect("delete repository");
        }
    }
}

/// The lock on moto's default account (see [`World::_default_account`]).
fn default_account_lock() -> Arc<tokio::sync::Mutex<()>> {
    static LOCK: OnceLock<Arc<tokio::sync::Mutex<()>>> = OnceLock::new();
    LOCK.get_or_init(|| Arc::new(tokio::sync::Mutex::new(())))
        .clone()
}

impl World {
    /// A fresh world, or `None` (after saying so) when moto is not installed.
    pub async fn new() -> Option<World> {
        let n = NEXT_ACCOUNT.fetch_add(1, Ordering::SeqCst);
        let account = 100_000_000_000 + u64::from(std::process::id() % 100_000) * 1000 + n;
        World::in_account(&format!("{account:012}")).await
    }

    /// moto's URL, once started.
    pub fn url() -> Option<String> {
        SERVER.get_or_init(start).as_ref().map(|s| s.url.clone())
    }

    /// A world in a given moto account (moto's default, 123456789012, is what a process
    /// without the header sees).
    pub async fn in_account(account: &str) -> Option<World> {
        World::in_account_named(account, "").await
    }

    /// [`World::in_account`] with its own table, topic and on-call queue (names ending in
    /// `-SUFFIX`): for tests that share moto's default account, as the binary does.
    pub async fn in_account_named(account: &str, suffix: &str) -> Option<World> {
        let named = |base: &str| {
            if suffix.is_empty() {
                base.to_string()
            } else {
                format!("{base}-{suffix}")
            }
        };
        let server = SERVER.get_or_init(start).as_ref()?;
        let default_account = match account == DEFAULT_ACCOUNT {
            true => Some(default_account_lock().lock_owned().await),
            false => None,
        };
        let account = account.to_string();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let flight = Arc::new(Mutex::new(HashMap::new()));
        let icpt = MotoAccount {
            account: account.clone(),
            calls: calls.clone(),
            flight: flight.clone(),
        };
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(&server.url)
            .credentials_provider(aws_sdk_ecr::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await;
        let ecr = aws_sdk_ecr::Client::from_conf(
            aws_sdk_ecr::config::Builder::from(&sdk)
                .interceptor(icpt.clone())
                .build(),
        );
        if default_account.is_some() {
            clear_repositories(&ecr).await;
        }
        let ddb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .interceptor(icpt.clone())
                .build(),
        );
        let sns = aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::config::Builder::from(&sdk)
                .interceptor(icpt.clone())
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&sdk)
                .interceptor(icpt.clone())
                .build(),
        );
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&sdk)
                .interceptor(icpt.clone())
                .build(),
        );
        let kms = aws_sdk_kms::Client::from_conf(
            aws_sdk_kms::config::Builder::from(&sdk)
                .interceptor(icpt)
                .build(),
        );
        let pin_key = create_pin_key(&kms).await;
        let table = named("tag-guard");
        // The table as `registry init` creates it (key, TTL, stream of new images).
        ecr_tag_guard::aws::admin::Admin {
            ddb: ddb.clone(),
            ecr: ecr_tag_guard::aws::EcrClients::new(ecr.clone()),
            table: table.clone(),
            sts: sts.clone(),
            kms: ecr_tag_guard::aws::KmsPinKey {
                client: kms.clone(),
                key_id: Some(pin_key.clone()),
            },
        }
        .create_table()
        .await
        .expect("table");
        let topic_arn = sns
            .create_topic()
            .name(named("pages"))
            .send()
            .await
            .expect("topic")
            .topic_arn()
            .expect("arn")
            .to_string();
        let mut w = World {
            account,
            calls,
            flight,
            ecr,
            ddb,
            sns,
            sqs,
            sts,
            kms,
            pin_key,
            table,
            topic_arn,
            queue_url: String::new(),
            _default_account: default_account,
        };
        // On-call: a queue subscribed to the pager topic.
        w.queue_url = w
            .subscribe_queue(&w.topic_arn, &named("on-call"), None)
            .await;
        w.take_calls();
        Some(w)
    }

    pub fn guard_role_arn(&self) -> String {
        format!("arn:aws:iam::{}:role/{GUARD_ROLE}", self.account)
    }

    /// The handler as the Lambda builds it, on this world's clients.
    pub fn handler(&self) -> AwsHandler {
        Handler {
            registry: DynamoRegistry {
                client: self.ddb.clone(),
                table: self.table.clone(),
            },
            images: EcrImages::new(self.ecr.clone()),
            pager: SnsPager {
                client: self.sns.clone(),
                topic_arn: self.topic_arn.clone(),
                chat_topic_arn: None,
            },
            ledger: DynamoLedger {
                client: self.ddb.clone(),
                table: self.table.clone(),
            },
            pin_key: self.kms_key(),
            scope: Scope {
                accounts: vec![self.account.clone()],
                regions: vec![REGION.into()],
                own_role_arn: Some(self.guard_role_arn()),
                ..Scope::default()
            },
            tuning: Default::default(),
            dry_run: false,
        }
    }

    /// The world's pin key through the SDK, as the Lambda wires it.
    pub fn kms_key(&self) -> ecr_tag_guard::aws::KmsPinKey {
        ecr_tag_guard::aws::KmsPinKey {
            client: self.kms.clone(),
            key_id: Some(self.pin_key.clone()),
        }
    }

    /// The registry commands on this world's clients.
    pub fn ops(&self) -> ecr_tag_guard::cli::registry::Ops<ecr_tag_guard::aws::admin::Admin> {
        ecr_tag_guard::cli::registry::Ops {
            backend: ecr_tag_guard::aws::admin::Admin {
                ddb: self.ddb.clone(),
                ecr: ecr_tag_guard::aws::EcrClients::new(self.ecr.clone()),
                table: self.table.clone(),
                sts: self.sts.clone(),
                kms: self.kms_key(),
            },
            region: REGION.into(),
            scope: Scope::default(),
            tuning: Default::default(),
        }
    }

    /// Runs the handler on `event`, returning its report and the AWS calls it made.
    pub async fn handle(&self, event: &Value) -> (Report, Vec<String>) {
        self.take_calls();
        let report = self
            .handler()
            .handle(event, &Now::system())
            .await
            .expect("handled");
        (report, self.take_calls())
    }

    /// The most calls of `op` (`service:Operation`) in flight at once so far.
    pub fn peak_in_flight(&self, op: &str) -> usize {
        self.flight
            .lock()
            .expect("flight")
            .get(op)
            .map_or(0, |(_, peak)| *peak)
    }

    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().expect("calls"))
    }

    pub fn repo(&self, name: &str) -> RepoKey {
        RepoKey {
            account: self.account.clone(),
            region: REGION.into(),
            name: name.into(),
        }
    }

    pub async fn create_repo(&self, name: &str, immutable: bool) {
        let m = if immutable {
            ImageTagMutability::Immutable
        } else {
            ImageTagMutability::Mutable
        };
        self.ecr
            .create_repository()
            .repository_name(name)
            .image_tag_mutability(m)
            .send()
            .await
            .expect("repository");
    }

    /// Pushes a manifest (with a tag, or untagged) and returns its digest.
    pub async fn push(
        &self,
        repo: &str,
        manifest: &str,
        media_type: &str,
        tag: Option<&str>,
    ) -> String {
        let out = self
            .ecr
            .put_image()
            .repository_name(repo)
            .image_manifest(manifest)
            .image_manifest_media_type(media_type)
            .set_image_tag(tag.map(String::from))
            .send()
            .await
            .expect("push");
        let digest = out
            .image()
            .and_then(|i| i.image_id())
            .and_then(|i| i.image_digest())
            .expect("digest")
            .to_string();
        assert_eq!(
            digest,
            sha256(manifest),
            "the launcher makes moto's digests AWS's"
        );
        digest
    }

    /// Deletes image ids as `BatchDeleteImage` does; returns the response's image ids.
    pub async fn delete(&self, repo: &str, ids: &[(Option<&str>, Option<&str>)]) -> Vec<Value> {
        let ids: Vec<ImageIdentifier> = ids
            .iter()
            .map(|(tag, digest)| {
                ImageIdentifier::builder()
                    .set_image_tag(tag.map(String::from))
                    .set_image_digest(digest.map(String::from))
                    .build()
            })
            .collect();
        let out = self
            .ecr
            .batch_delete_image()
            .repository_name(repo)
            .set_image_ids(Some(ids))
            .send()
            .await
            .expect("delete");
        assert!(
            out.failures().is_empty(),
            "delete failures: {:?}",
            out.failures()
        );
        out.image_ids()
            .iter()
            .map(|i| {
                let mut v = json!({"imageDigest": i.image_digest()});
                if let Some(t) = i.image_tag() {
                    v["imageTag"] = json!(t);
                }
                v
            })
            .collect()
    }

    /// The digest a tag sits on now.
    pub async fn digest_of(&self, repo: &str, tag: &str) -> Option<String> {
        digest_in(&self.ecr, repo, tag).await
    }

    /// The tags on one image (sorted; empty for an untagged image).
    pub async fn tags_on(&self, repo: &str, digest: &str) -> Vec<String> {
        let out = self
            .ecr
            .describe_images()
            .repository_name(repo)
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_digest(digest)
                    .build(),
            )
            .send()
            .await
            .expect("describe");
        let mut tags: Vec<String> = out
            .image_details()
            .iter()
            .flat_map(|d| d.image_tags().iter().cloned())
            .collect();
        tags.sort();
        tags
    }

    /// The digests in a repository.
    pub async fn digests(&self, repo: &str) -> Vec<String> {
        let out = self
            .ecr
            .list_images()
            .repository_name(repo)
            .send()
            .await
            .expect("list");
        let mut v: Vec<String> = out
            .image_ids()
            .iter()
            .filter_map(|i| i.image_digest().map(String::from))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Writes a registry item given in its plain-JSON form, as a user would by hand.
    /// Writes `item` with its pin sealed by the world's key, as if the guard had pinned it.
    pub async fn put_sealed(&self, item: Value) {
        let item = self.sealed(item).await;
        self.put_item(item).await;
    }

    /// `item` with its pin sealed by the world's key (KMS `GenerateMac` on moto).
    pub async fn sealed(&self, mut item: Value) -> Value {
        let entry = ecr_tag_guard::registry::parse_item(&item).expect("a valid item");
        let pin = entry.pin.expect("a pinned item");
        let sealed =
            ecr_tag_guard::service::trust::seal_pin(&self.kms_key(), &entry.repo, &entry.tag, pin)
                .await
                .expect("sealed");
        item["pin_mac"] = json!(sealed.mac);
        item
    }

    /// A new SQS queue `name` subscribed to `topic` (with a filter policy, if given): its URL.
    pub async fn subscribe_queue(&self, topic: &str, name: &str, filter: Option<&str>) -> String {
        let url = self
            .sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .expect("queue")
            .queue_url()
            .expect("url")
            .to_string();
        self.sns
            .subscribe()
            .topic_arn(topic)
            .protocol("sqs")
            .endpoint(format!("arn:aws:sqs:{REGION}:{}:{name}", self.account))
            .set_attributes(filter.map(|f| [("FilterPolicy".to_string(), f.to_string())].into()))
            .send()
            .await
            .expect("subscribe");
        url
    }

    /// The SNS envelopes waiting in the queue at `url` (at most 10).
    pub async fn received(&self, url: &str) -> Vec<Value> {
        let got = self
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        got.messages()
            .iter()
            .map(|m| serde_json::from_str(m.body().unwrap_or("{}")).expect("SNS envelope"))
            .collect()
    }

    pub async fn put_item(&self, item: Value) {
        let Value::Object(m) = item else {
            panic!("item must be an object")
        };
        let attrs = m
            .iter()
            .map(|(k, v)| (k.clone(), json_to_attr(v)))
            .collect();
        self.ddb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attrs))
            .send()
            .await
            .expect("put item");
    }

    /// The registry table's stream records after the first `skip`, as one Lambda event,
    /// read from moto's DynamoDB Streams API by `tests/stream_records.py`.
    pub fn stream_event(&self, skip: usize) -> Value {
        let (Some(py), Some(url)) = (python(), World::url()) else {
            panic!("moto is running, so its python is there")
        };
        let out = Command::new(py)
            .arg(root().join("tests/stream_records.py"))
            .args([&url, &self.account, &self.table, &skip.to_string()])
            .output()
            .expect("stream_records.py runs");
        assert!(
            out.status.success(),
            "stream_records.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("stream records are JSON")
    }

    /// A registry item, in plain JSON (attribute values decoded).
    pub async fn item(&self, repo: &str, tag: &str) -> Option<Value> {
        self.item_at(&self.repo(repo), tag).await
    }

    /// The registry item of a tag of any repository.
    pub async fn item_at(&self, repo: &RepoKey, tag: &str) -> Option<Value> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("repository", json_to_attr(&json!(repo.key())))
            .key("tag", json_to_attr(&json!(tag)))
            .send()
            .await
            .expect("get item");
        out.item().map(|i| {
            Value::Object(
                i.iter()
                    .map(|(k, v)| (k.clone(), ecr_tag_guard::aws::attr_to_json(v)))
                    .collect(),
            )
        })
    }

    /// History items of a tag.
    pub async fn history(&self, repo: &str, tag: &str) -> Vec<Value> {
        let out = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("#r = :r")
            .expression_attribute_names("#r", "repository")
            .expression_attribute_values(
                ":r",
                json_to_attr(&json!(format!("history#{}:{tag}", self.repo(repo).key()))),
            )
            .send()
            .await
            .expect("history");
        out.items()
            .iter()
            .map(|i| {
                Value::Object(
                    i.iter()
                        .map(|(k, v)| (k.clone(), ecr_tag_guard::aws::attr_to_json(v)))
                        .collect(),
                )
            })
            .collect()
    }

    /// Every page waiting in the on-call queue: the SNS envelope with `Subject`, `Message`
    /// and `MessageAttributes`.
    pub async fn pages(&self) -> Vec<Value> {
        let mut pages = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive");
            if out.messages().is_empty() {
                return pages;
            }
            for m in out.messages() {
                pages.push(serde_json::from_str(m.body().unwrap_or("{}")).expect("SNS envelope"));
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .set_receipt_handle(m.receipt_handle().map(String::from))
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
}

mod fixtures;
pub use fixtures::*;

/// A process's stdout and stderr, one after the other, for assertions and their messages.
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The binary with no setting from the environment but moto's: the test credentials (moto's
/// default account), the region and the endpoint.
pub fn binary_on_moto(url: &str) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_ecr-tag-guard"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .env("AWS_ENDPOINT_URL", url)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    c
}

/// A KMS HMAC key as the template creates it (`HMAC_256`, `GENERATE_VERIFY_MAC`): its ARN.
pub async fn create_pin_key(kms: &aws_sdk_kms::Client) -> String {
    kms.create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::Hmac256)
        .key_usage(aws_sdk_kms::types::KeyUsageType::GenerateVerifyMac)
        .description("ecr-tag-guard pin key")
        .send()
        .await
        .expect("pin key")
        .key_metadata()
        .map(|m| m.arn().unwrap_or(m.key_id()).to_string())
        .expect("key metadata")
}
