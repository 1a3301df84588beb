//! The deployment's settings, from environment variables (the Lambda's, and the CLI's
//! defaults). Names are listed in [`VARS`]; the README's Configuration section explains each.

use crate::error::Error;
use crate::guard::Scope;
use crate::service::Tuning;

/// DynamoDB table holding the registry, history and once-only ledger.
pub const TABLE: &str = "TAG_GUARD_TABLE";
/// SNS topic ARN for pages.
pub const TOPIC_ARN: &str = "TAG_GUARD_TOPIC_ARN";
/// The function's own IAM role ARN: calls it makes are not acted on.
pub const ROLE_ARN: &str = "TAG_GUARD_ROLE_ARN";
/// Comma-separated registry account ids to guard (empty: all).
pub const ACCOUNTS: &str = "TAG_GUARD_ACCOUNTS";
/// Comma-separated regions to guard (empty: all).
pub const REGIONS: &str = "TAG_GUARD_REGIONS";
/// Log filter, e.g. `info` or `ecr_tag_guard=debug` (default `info`).
pub const LOG: &str = "TAG_GUARD_LOG";
/// The prefix of the guard's keep-alive tags (default `etg-keep-`).
pub const KEEP_PREFIX: &str = "TAG_GUARD_KEEP_PREFIX";

/// Minutes reconcile leaves a drift of an item with `allow` to the event path before it
/// asks CloudTrail who made the change (default 15).
pub const GRACE_MINUTES: &str = "TAG_GUARD_GRACE_MINUTES";

/// How many repositories reconcile works on at once (default 16, 1–64).
pub const RECONCILE_CONCURRENCY: &str = "TAG_GUARD_RECONCILE_CONCURRENCY";

/// How many calls of one kind the guard has in flight at once for one repository's tags
/// (restores, pins, seals, keep-alive tags, pages; default 8, 1–64).
pub const CALL_CONCURRENCY: &str = "TAG_GUARD_CALL_CONCURRENCY";

/// How many repositories one reconcile run pages on their own; the others are summed up in
/// one summary page (default 10, 0–1000).
pub const PAGES_PER_RUN: &str = "TAG_GUARD_PAGES_PER_RUN";

/// The KMS HMAC key (key id, key ARN or alias) that seals the pins the guard has seen itself;
/// without it the guard pushes from no pin and pages instead.
pub const PIN_KEY: &str = "TAG_GUARD_PIN_KEY";

/// An SNS topic for chat channels (Amazon Q Developer in chat applications): every page is
/// also sent there as a custom notification. Optional.
pub const CHAT_TOPIC_ARN: &str = "TAG_GUARD_CHAT_TOPIC_ARN";

/// The name of the role the guard assumes in each member account for everything it does
/// there (ECR reads and writes); its own account needs none. Optional.
pub const MEMBER_ROLE: &str = "TAG_GUARD_MEMBER_ROLE";

/// The external ID the member roles' trust policies ask for. Optional.
pub const MEMBER_EXTERNAL_ID: &str = "TAG_GUARD_MEMBER_EXTERNAL_ID";

/// Every variable the binary reads.
pub const VARS: &[&str] = &[
    TABLE,
    TOPIC_ARN,
    ROLE_ARN,
    ACCOUNTS,
    REGIONS,
    LOG,
    KEEP_PREFIX,
    GRACE_MINUTES,
    RECONCILE_CONCURRENCY,
    CALL_CONCURRENCY,
    PAGES_PER_RUN,
    PIN_KEY,
    CHAT_TOPIC_ARN,
    MEMBER_ROLE,
    MEMBER_EXTERNAL_ID,
];

/// Settings for a deployment that talks to AWS.
#[derive(Clone, Debug)]
pub struct Config {
    /// Registry table name.
    pub table: String,
    /// Pager topic ARN.
    pub topic_arn: String,
    /// The pin key (`None`: not set; pins cannot be sealed or checked).
    pub pin_key: Option<String>,
    /// The chat topic, if any.
    pub chat_topic_arn: Option<String>,
    /// The member accounts' role (name, external ID), if any.
    pub member_role: Option<(String, Option<String>)>,
    /// What is guarded and who the guard is, and how the service paces itself.
    pub settings: Settings,
}

/// What the environment says beside the Lambda's resources: what is guarded and who the guard
/// is ([`Scope`]), and how the service paces itself ([`Tuning`]).
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// What is guarded and who the guard is.
    pub scope: Scope,
    /// How the service paces itself.
    pub tuning: Tuning,
}

impl Config {
    /// Reads the environment through `get` (so tests need not touch the process environment).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let required = |name: &str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| Error::Config(format!("{name} is not set")))
        };
        let settings = settings_from_lookup(&get)?;
        Ok(Config {
            table: required(TABLE)?,
            topic_arn: required(TOPIC_ARN)?,
            pin_key: get(PIN_KEY)
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty()),
            chat_topic_arn: get(CHAT_TOPIC_ARN)
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty()),
            member_role: member_role_from(&get)?,
            settings,
        })
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Config, Error> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }
}

/// The member accounts' role (`TAG_GUARD_MEMBER_ROLE`, `TAG_GUARD_MEMBER_EXTERNAL_ID`), read
/// through `get`: `None` when no role is named.
pub fn member_role_from(
    get: impl Fn(&str) -> Option<String>,
) -> Result<Option<(String, Option<String>)>, Error> {
    let Some(name) = get(MEMBER_ROLE)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    let valid = name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if !valid {
        return Err(Error::Config(format!(
            "{MEMBER_ROLE}: `{}` is not an IAM role name (a name, not an ARN)",
            crate::text::clean(&name, 100)
        )));
    }
    let external = get(MEMBER_EXTERNAL_ID)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    Ok(Some((name, external)))
}

/// The settings alone (scope, own role, keep-alive prefix, tuning), for the commands that need no
/// table or topic of the Lambda's: read through `get`.
pub fn settings_from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, Error> {
    Ok(Settings {
        scope: scope_from_lookup(&get)?,
        tuning: tuning_from_lookup(&get)?,
    })
}

/// What is guarded and who the guard is: `TAG_GUARD_ACCOUNTS`, `TAG_GUARD_REGIONS`,
/// `TAG_GUARD_ROLE_ARN`, `TAG_GUARD_KEEP_PREFIX`.
fn scope_from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Scope, Error> {
    let list = |name: &str| -> Vec<String> {
        get(name)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    let accounts = list(ACCOUNTS);
    if let Some(bad) = accounts
        .iter()
        .find(|a| a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(Error::Config(format!(
            "{ACCOUNTS}: `{bad}` is not a 12-digit account id"
        )));
    }
    let own_role_arn = get(ROLE_ARN).filter(|v| !v.trim().is_empty());
    if let Some(arn) = &own_role_arn {
        if !arn.starts_with("arn:") || !arn.contains(":role/") {
            return Err(Error::Config(format!(
                "{ROLE_ARN}: `{arn}` is not an IAM role ARN"
            )));
        }
    }
    let keep_prefix = get(KEEP_PREFIX)
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| crate::registry::DEFAULT_KEEP_PREFIX.to_string());
    if !crate::registry::is_keep_prefix(&keep_prefix) {
        return Err(Error::Config(format!(
            "{KEEP_PREFIX}: `{keep_prefix}` cannot start an ECR tag"
        )));
    }
    Ok(Scope {
        accounts,
        regions: list(REGIONS),
        own_role_arn,
        keep_prefix,
    })
}

/// How the service paces itself: `TAG_GUARD_GRACE_MINUTES`, `TAG_GUARD_RECONCILE_CONCURRENCY`,
/// `TAG_GUARD_CALL_CONCURRENCY`, `TAG_GUARD_PAGES_PER_RUN`.
fn tuning_from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Tuning, Error> {
    let grace_secs = match get(GRACE_MINUTES).filter(|v| !v.trim().is_empty()) {
        None => crate::service::DEFAULT_GRACE_SECS,
        Some(v) => match v.trim().parse::<u32>() {
            Ok(m) if m <= 24 * 60 => i64::from(m) * 60,
            _ => {
                return Err(Error::Config(format!(
                    "{GRACE_MINUTES}: `{v}` is not a number of minutes from 0 to 1440"
                )))
            }
        },
    };
    let number =
        |name: &str, default: usize, range: std::ops::RangeInclusive<usize>| match get(name)
            .filter(|v| !v.trim().is_empty())
        {
            None => Ok(default),
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if range.contains(&n) => Ok(n),
                _ => Err(Error::Config(format!(
                    "{name}: `{v}` is not a number from {} to {}",
                    range.start(),
                    range.end()
                ))),
            },
        };
    let reconcile_concurrency = number(
        RECONCILE_CONCURRENCY,
        crate::service::DEFAULT_RECONCILE_CONCURRENCY,
        1..=64,
    )?;
    let call_concurrency = number(
        CALL_CONCURRENCY,
        crate::service::DEFAULT_CALL_CONCURRENCY,
        1..=64,
    )?;
    let pages_per_run = number(
        PAGES_PER_RUN,
        crate::service::DEFAULT_PAGES_PER_RUN,
        0..=1000,
    )?;
    Ok(Tuning {
        grace_secs,
        busy_wait_ms: crate::service::DEFAULT_BUSY_WAIT_MS,
        reconcile_concurrency,
        call_concurrency,
        pages_per_run,
        check_seals: false,
    })
}

/// [`settings_from_lookup`] on the process environment.
pub fn settings_from_env() -> Result<Settings, Error> {
    settings_from_lookup(|k| std::env::var(k).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, Error> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn a_member_role_is_a_name_and_needs_the_functions_own_account() {
        let base = [(TABLE, "t"), (TOPIC_ARN, "x")];
        let c = cfg(&[
            base[0],
            base[1],
            (MEMBER_ROLE, "guard-member"),
            (MEMBER_EXTERNAL_ID, "ext"),
        ])
        .unwrap();
        assert_eq!(
            c.member_role,
            Some(("guard-member".to_string(), Some("ext".to_string())))
        );
        let e = cfg(&[base[0], base[1], (MEMBER_ROLE, "arn:aws:iam::1:role/x")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an IAM role name"), "{e}");
        let sdk = aws_config::SdkConfig::builder().build();
        // Without TAG_GUARD_ROLE_ARN the function cannot tell its own account: refused.
        let e = crate::wiring::member_roles(&sdk, &c, crate::wiring::own_account(&c))
            .unwrap_err()
            .to_string();
        assert!(e.contains(ROLE_ARN), "{e}");
        let with_role = cfg(&[
            base[0],
            base[1],
            (MEMBER_ROLE, "guard-member"),
            (ROLE_ARN, "arn:aws:iam::123456789012:role/guard"),
        ])
        .unwrap();
        assert_eq!(
            crate::wiring::own_account(&with_role).as_deref(),
            Some("123456789012")
        );
        let roles =
            crate::wiring::member_roles(&sdk, &with_role, crate::wiring::own_account(&with_role))
                .unwrap()
                .unwrap();
        assert_eq!(roles.home_account, "123456789012");
        assert!(cfg(&base).unwrap().member_role.is_none());
    }

    #[test]
    fn reads_lists_and_requires_table_and_topic() {
        let c = cfg(&[
            (TABLE, "t"),
            (TOPIC_ARN, "arn:aws:sns:eu-west-1:123456789012:p"),
            (ACCOUNTS, " 123456789012, ,210987654321"),
            (REGIONS, "eu-west-1"),
        ])
        .unwrap();
        assert_eq!(
            c.settings.scope.accounts,
            vec!["123456789012", "210987654321"]
        );
        assert_eq!(c.settings.scope.regions, vec!["eu-west-1"]);
        assert_eq!(c.settings.scope.own_role_arn, None);
        let e = cfg(&[(TOPIC_ARN, "x")]).unwrap_err().to_string();
        assert!(e.contains(TABLE), "{e}");
        let e = cfg(&[(TABLE, "t"), (TOPIC_ARN, "x"), (ACCOUNTS, "12345")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("12345"), "{e}");
        let e = cfg(&[(TABLE, "t"), (TOPIC_ARN, "x"), (ROLE_ARN, "guard")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an IAM role ARN"), "{e}");
        assert_eq!(c.settings.scope.keep_prefix, "etg-keep-");
        let e = cfg(&[(TABLE, "t"), (TOPIC_ARN, "x"), (KEEP_PREFIX, ".bad")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot start an ECR tag"), "{e}");
        assert_eq!(c.settings.tuning.grace_secs, 900, "15 minutes unless set");
        let five = cfg(&[(TABLE, "t"), (TOPIC_ARN, "x"), (GRACE_MINUTES, "5")]).unwrap();
        assert_eq!(five.settings.tuning.grace_secs, 300);
        let e = cfg(&[(TABLE, "t"), (TOPIC_ARN, "x"), (GRACE_MINUTES, "soon")])
            .unwrap_err()
            .to_string();
        assert!(e.contains(GRACE_MINUTES) && e.contains("soon"), "{e}");
        assert_eq!(c.settings.tuning.reconcile_concurrency, 16);
        let e = cfg(&[(TABLE, "t"), (TOPIC_ARN, "x"), (RECONCILE_CONCURRENCY, "0")])
            .unwrap_err()
            .to_string();
        assert!(e.contains(RECONCILE_CONCURRENCY), "{e}");
        let e = cfg(&[(TABLE, "t"), (TOPIC_ARN, "x"), (PAGES_PER_RUN, "many")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("TAG_GUARD_PAGES_PER_RUN: `many`"), "{e}");
    }
}
