//! `audit SOURCE...`: reads each source in turn through [`crate::service::audit`], lines on
//! stdout, problems and the summary on stderr; exit 1 when a protected change was not
//! repaired.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, bail};
use serde_json::Value;

use super::args::AuditArgs;
use super::Global;
use crate::audit::print::{Format, Output, Printer, Sink};
use crate::audit::scan::Unit;
use crate::audit::Window;
use crate::aws::CloudTrailLookup;
use crate::memory::Memory;
use crate::ports::Items;
use crate::service::audit::{Audit, AuditError, AuditOptions};

/// Where an audit reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Files and folders.
    Files(Vec<PathBuf>),
    /// `s3://BUCKET/PREFIX`.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix (may be empty).
        prefix: String,
    },
    /// `cloudtrail:` (empty: the configured region) or `cloudtrail:REGION,REGION`.
    Lookup(Vec<String>),
    /// `-`: standard input.
    Stdin,
}

/// Reads one SOURCE argument.
pub fn source(arg: &str) -> anyhow::Result<Source> {
    if arg == "-" {
        return Ok(Source::Stdin);
    }
    if let Some(rest) = arg.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            bail!("`{arg}`: no bucket (s3://BUCKET/PREFIX)");
        }
        return Ok(Source::S3 {
            bucket: bucket.into(),
            prefix: prefix.into(),
        });
    }
    if let Some(rest) = arg.strip_prefix("cloudtrail:") {
        let regions: Vec<String> = rest
            .split(',')
            .filter(|r| !r.is_empty())
            .map(String::from)
            .collect();
        for r in &regions {
            let ok = r.len() <= 30
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                bail!("`{arg}`: `{r}` is not a region name (cloudtrail:REGION,REGION)");
            }
        }
        return Ok(Source::Lookup(regions));
    }
    Ok(Source::Files(vec![PathBuf::from(arg)]))
}

/// A time option: RFC 3339, a date (its first second, or with `end` its last), epoch
/// seconds, or an age before `now` (`90m`, `36h`, `14d`).
pub fn when(option: &str, text: &str, now: i64, end: bool) -> anyhow::Result<i64> {
    let t = text.trim();
    let age = t.len() > 1 && t[..t.len() - 1].bytes().all(|b| b.is_ascii_digit());
    if age {
        let n: i64 = t[..t.len() - 1].parse().unwrap_or(i64::MAX);
        let unit = match t.as_bytes()[t.len() - 1] {
            b'm' => 60,
            b'h' => 3600,
            b'd' => 86_400,
            _ => 0,
        };
        if unit > 0 {
            return n
                .checked_mul(unit)
                .map(|s| now - s)
                .ok_or_else(|| anyhow!("{option} {text:?}: too far back"));
        }
    }
    let date = t.len() == 10 && t.as_bytes()[4] == b'-' && t.as_bytes()[7] == b'-';
    if date {
        if let Some(day) = crate::text::parse_time(&Value::String(format!("{t}T00:00:00Z"))) {
            return Ok(if end { day + 86_399 } else { day });
        }
    }
    crate::text::parse_time(&Value::String(t.to_string())).ok_or_else(|| {
        anyhow!("{option} {text:?}: not a time (RFC 3339, YYYY-MM-DD, epoch seconds, or an age such as 90m, 36h, 14d)")
    })
}

/// Runs `audit`; answers the exit code ([`crate::service::audit::AuditSummary::exit_code`]).
pub(crate) async fn run(g: &Global, a: AuditArgs, out: &mut impl Write) -> anyhow::Result<u8> {
    let now = crate::service::Now::system().epoch;
    let since = a
        .since
        .as_deref()
        .map(|t| when("--since", t, now, false))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|t| when("--until", t, now, true))
        .transpose()?;
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            bail!("--since is after --until: nothing can be in between");
        }
    }
    let sources = a
        .sources
        .iter()
        .map(|s| source(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let format = if a.json {
        Format::Json
    } else if a.csv {
        Format::Csv
    } else {
        Format::Table
    };
    let registry = if a.table.state.is_some() || g.table.as_deref().is_some_and(|t| !t.is_empty()) {
        Some(super::ops(g, &a.table).await?)
    } else {
        None
    };
    let guard_role = match &registry {
        Some(chosen) => chosen.scope.own_role_arn.clone(),
        None => crate::config::settings_from_env()?.scope.own_role_arn,
    };
    let opts = AuditOptions {
        window: Window::new(since, until),
        all_tags: a.all_tags,
        guard_role,
        ..AuditOptions::default()
    };
    let summary = match registry {
        None => audit(g, &sources, None::<&Memory>, opts, format, out).await?,
        Some(chosen) => with_ops!(chosen, |ops| {
            audit(g, &sources, Some(&ops.backend), opts, format, out).await?
        }),
    };
    eprintln!("audit: {summary}");
    Ok(summary.exit_code())
}

async fn audit<C: Items>(
    g: &Global,
    sources: &[Source],
    registry: Option<&C>,
    opts: AuditOptions,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<crate::service::audit::AuditSummary> {
    let sink = Output {
        lines: Printer::new(out, format),
        problems: std::io::stderr(),
    };
    let mut audit = Audit::new(registry, opts, sink);
    let mut sdk = None;
    for s in sources {
        match s {
            Source::Files(paths) => {
                if let Some(missing) = paths.iter().find(|p| !p.exists()) {
                    bail!("{}: no such file or directory", missing.display());
                }
                let files = crate::files::expand_all(paths).map_err(|e| anyhow!("{e}"))?;
                let units = files
                    .into_iter()
                    .map(|p| Unit::new(p.display().to_string(), move || std::fs::File::open(p)))
                    .collect();
                audit.units(units).await.map_err(told)?;
            }
            Source::Stdin => {
                let stdin = Unit::new("(stdin)", || Ok(std::io::stdin()));
                audit.units(vec![stdin]).await.map_err(told)?
            }
            Source::S3 { bucket, prefix } => {
                let sdk = aws(g, &mut sdk).await;
                s3(&mut audit, &sdk, bucket, prefix).await?;
            }
            Source::Lookup(regions) => {
                let sdk = aws(g, &mut sdk).await;
                let regions = if regions.is_empty() {
                    let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| {
                        anyhow!(
                            "cloudtrail: no region configured: give --region or cloudtrail:REGION"
                        )
                    })?;
                    vec![region]
                } else {
                    regions.clone()
                };
                let trail = CloudTrailLookup {
                    client: aws_sdk_cloudtrail::Client::new(&sdk),
                };
                audit.lookup(&trail, &regions).await.map_err(told)?;
            }
        }
    }
    audit.finish().await.map_err(told)
}

/// Reads `s3://bucket/prefix` into the audit.
#[cfg(feature = "s3")]
async fn s3<C: Items, S: Sink>(
    audit: &mut Audit<'_, C, S>,
    sdk: &aws_config::SdkConfig,
    bucket: &str,
    prefix: &str,
) -> anyhow::Result<()> {
    // moto and other local endpoints serve buckets by path, not by host name.
    let local = sdk.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(local)
        .build();
    let archive = crate::aws::S3Archive {
        client: aws_sdk_s3::Client::from_conf(conf),
    };
    audit.s3(&archive, bucket, prefix).await.map_err(|e| {
        let text = told(e).to_string();
        // S3 answers a request sent to another region than the bucket's with these.
        let elsewhere = [
            "PermanentRedirect",
            "AuthorizationHeaderMalformed",
            "IllegalLocationConstraint",
        ]
        .iter()
        .any(|c| text.contains(c));
        let hint = if elsewhere {
            format!(
                " (is the bucket in another region than {}? give --region)",
                sdk.region()
                    .map_or("the configured one".to_string(), |r| r.to_string())
            )
        } else {
            String::new()
        };
        anyhow!("s3://{bucket}/{prefix}: {text}{hint}")
    })
}

/// Without the `s3` feature (the Lambda's build) there is no S3 client.
#[cfg(not(feature = "s3"))]
async fn s3<C: Items, S: Sink>(
    _audit: &mut Audit<'_, C, S>,
    _sdk: &aws_config::SdkConfig,
    bucket: &str,
    prefix: &str,
) -> anyhow::Result<()> {
    bail!("s3://{bucket}/{prefix}: this build has no S3 client (built without the `s3` feature, as the Lambda is): use a default build, or copy the files down with `aws s3 sync`")
}

/// An audit's error for the command line, saying when running it again may help.
fn told(e: AuditError) -> anyhow::Error {
    if e.is_retryable() {
        anyhow!("{e} (a retry may help)")
    } else {
        anyhow!("{e}")
    }
}

/// The AWS configuration, loaded the first time a source needs it.
async fn aws(g: &Global, sdk: &mut Option<aws_config::SdkConfig>) -> aws_config::SdkConfig {
    match sdk {
        Some(conf) => conf.clone(),
        None => {
            let conf = super::sdk_config(g).await;
            *sdk = Some(conf.clone());
            conf
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_told_apart() {
        assert_eq!(
            source("s3://trail/AWSLogs/1/").unwrap(),
            Source::S3 {
                bucket: "trail".into(),
                prefix: "AWSLogs/1/".into()
            }
        );
        assert_eq!(
            source("s3://trail").unwrap(),
            Source::S3 {
                bucket: "trail".into(),
                prefix: String::new()
            }
        );
        assert!(source("s3:///x").is_err());
        assert_eq!(source("cloudtrail:").unwrap(), Source::Lookup(vec![]));
        assert_eq!(
            source("cloudtrail:eu-west-1,us-east-1").unwrap(),
            Source::Lookup(vec!["eu-west-1".into(), "us-east-1".into()])
        );
        assert!(source("cloudtrail:EU WEST").is_err());
        assert_eq!(source("logs").unwrap(), Source::Files(vec!["logs".into()]));
        assert_eq!(source("-").unwrap(), Source::Stdin);
    }

    #[test]
    fn an_error_says_once_what_failed_and_whether_a_retry_may_help() {
        use crate::error::CallError;
        let throttled = CallError::transient("cloudtrail:LookupEvents", "ThrottlingException");
        assert_eq!(
            told(AuditError::Call(throttled)).to_string(),
            "cloudtrail:LookupEvents: ThrottlingException (a retry may help)"
        );
        let denied = CallError::fatal("s3:ListObjectsV2", "AccessDenied");
        assert_eq!(
            told(AuditError::Call(denied)).to_string(),
            "s3:ListObjectsV2: AccessDenied"
        );
    }

    #[test]
    fn times_are_read_every_way_an_operator_writes_them() {
        let now = 1_795_996_800; // 2026-11-30T00:00:00Z
        assert_eq!(
            when("--since", "14d", now, false).unwrap(),
            now - 14 * 86_400
        );
        assert_eq!(when("--since", "36h", now, false).unwrap(), now - 36 * 3600);
        assert_eq!(when("--since", "90m", now, false).unwrap(), now - 5400);
        assert_eq!(when("--since", "2026-11-30", now, false).unwrap(), now);
        assert_eq!(
            when("--until", "2026-11-30", now, true).unwrap(),
            now + 86_399
        );
        assert_eq!(
            when("--since", "2026-11-30T01:00:00Z", now, false).unwrap(),
            now + 3600
        );
        assert_eq!(when("--since", "1795996800", now, false).unwrap(), now);
        let e = when("--since", "yesterday", now, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--since \"yesterday\""), "{e}");
    }
}
