//! Wiring: the SDK clients built from one AWS configuration, handed to the use cases. The
//! entry points (the Lambda, the commands) call this; the adapters never see the service.

use crate::aws::{DynamoLedger, DynamoRegistry, EcrImages, KmsPinKey, SnsPager};
use crate::config::Config;
use crate::guard::Settings;
use crate::service::Handler;

/// The handler wired to AWS.
pub type AwsHandler = Handler<DynamoRegistry, EcrImages, SnsPager, DynamoLedger, KmsPinKey>;

/// Builds the handler from an SDK configuration: clients only, no network call.
pub fn handler(
    sdk: &aws_config::SdkConfig,
    table: &str,
    topic_arn: &str,
    pin_key: Option<&str>,
    settings: Settings,
    dry_run: bool,
) -> AwsHandler {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    Handler {
        registry: DynamoRegistry {
            client: ddb.clone(),
            table: table.to_string(),
        },
        images: EcrImages::new(aws_sdk_ecr::Client::new(sdk)),
        pager: SnsPager {
            client: aws_sdk_sns::Client::new(sdk),
            topic_arn: topic_arn.to_string(),
            chat_topic_arn: None,
        },
        ledger: DynamoLedger {
            client: ddb,
            table: table.to_string(),
        },
        pin_key: KmsPinKey {
            client: aws_sdk_kms::Client::new(sdk),
            key_id: pin_key.map(String::from),
        },
        settings,
        dry_run,
    }
}

/// [`handler`] for a [`Config`] (with its chat topic, when it names one).
pub fn from_config(sdk: &aws_config::SdkConfig, cfg: &Config, dry_run: bool) -> AwsHandler {
    let mut h = handler(
        sdk,
        &cfg.table,
        &cfg.topic_arn,
        cfg.pin_key.as_deref(),
        cfg.settings.clone(),
        dry_run,
    );
    h.pager.chat_topic_arn = cfg.chat_topic_arn.clone();
    h
}
