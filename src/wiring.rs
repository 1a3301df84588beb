//! Wiring: the SDK clients built from one AWS configuration, handed to the use cases. The
//! entry points (the Lambda, the commands) call this; the adapters never see the service.

use crate::aws::{DynamoLedger, DynamoRegistry, EcrImages, KmsPinKey, MemberRoles, SnsPager};
use crate::config::Config;
use crate::config::Settings;
use crate::error::Error;
use crate::memory::Memory;
use crate::service::Handler;

/// The handler wired to AWS.
pub type AwsHandler = Handler<DynamoRegistry, EcrImages, SnsPager, DynamoLedger, KmsPinKey>;

/// The handler on the embedded world.
pub type EmbeddedHandler = Handler<Memory, Memory, Memory, Memory, Memory>;

/// The handler on the embedded world `world`, every port of it; `settings` without a role of
/// the guard's own take the one the world's scenario names.
pub fn embedded(world: &Memory, settings: Settings, dry_run: bool) -> EmbeddedHandler {
    let Settings { mut scope, tuning } = settings;
    if scope.own_role_arn.is_none() {
        scope.own_role_arn = world.state().guard_role_arn.clone();
    }
    Handler {
        registry: world.clone(),
        images: world.clone(),
        pager: world.clone(),
        ledger: world.clone(),
        pin_key: world.clone(),
        scope,
        tuning,
        dry_run,
    }
}

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
        scope: settings.scope,
        tuning: settings.tuning,
        dry_run,
    }
}

/// The member accounts' roles of a [`Config`] that names one, the guard's own account being
/// `home` (a `None` home with a role named: an error saying what is missing).
pub fn member_roles(
    sdk: &aws_config::SdkConfig,
    cfg: &Config,
    home: Option<String>,
) -> Result<Option<MemberRoles>, Error> {
    let Some((name, external_id)) = cfg.member_role.clone() else {
        return Ok(None);
    };
    let home = home.ok_or_else(|| {
        Error::Config(format!(
            "{} needs the guard's own account (it needs no role): set {} to the function's role ARN",
            crate::config::MEMBER_ROLE,
            crate::config::ROLE_ARN
        ))
    })?;
    Ok(Some(MemberRoles::new(name, external_id, home, sdk.clone())))
}

/// The account of the guard's own role (`TAG_GUARD_ROLE_ARN`), when set: `arn:PARTITION:iam::ACCOUNT:role/NAME`.
pub fn own_account(cfg: &Config) -> Option<String> {
    cfg.settings
        .scope
        .own_role_arn
        .as_deref()
        .and_then(|arn| arn.split(':').nth(4))
        .filter(|a| a.len() == 12)
        .map(String::from)
}

/// [`handler`] for a [`Config`] (with its chat topic and member roles, when it names them):
/// `home` is the guard's own account when the configuration does not tell it.
pub fn from_config(
    sdk: &aws_config::SdkConfig,
    cfg: &Config,
    home: Option<String>,
    dry_run: bool,
) -> Result<AwsHandler, Error> {
    let roles = member_roles(sdk, cfg, own_account(cfg).or(home))?;
    let mut h = handler(
        sdk,
        &cfg.table,
        &cfg.topic_arn,
        cfg.pin_key.as_deref(),
        cfg.settings.clone(),
        dry_run,
    );
    h.pager.chat_topic_arn = cfg.chat_topic_arn.clone();
    h.images.clients = h.images.clients.with_member_roles(roles);
    Ok(h)
}
