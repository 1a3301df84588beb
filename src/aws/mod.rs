//! The AWS adapters: the SDK clients behind the ports. They translate requests and errors
//! (every `match` on an AWS error code lives here) and decide nothing.

pub mod admin;
mod cloudtrail;
mod drill;
mod dynamodb;
mod ecr;
mod kms;
mod ledger;
mod member;
#[cfg(feature = "s3")]
mod s3;
mod sns;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;

pub use cloudtrail::CloudTrailLookup;
pub use dynamodb::{attr_to_json, json_to_attr, DynamoRegistry, TTL_ATTRIBUTE};
pub use ecr::{EcrClients, EcrImages};
pub use kms::{KmsPinKey, NO_KEY};
pub use ledger::DynamoLedger;
pub use member::MemberRoles;
#[cfg(feature = "s3")]
pub use s3::S3Archive;
pub use sns::SnsPager;

use crate::error::CallError;

/// Every manifest type ECR stores; `BatchGetImage` otherwise may convert or refuse.
pub(crate) const MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
];

/// Error codes that mean "slow down" or "try again": a retry can help.
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "InternalServerError",
    "InternalServerException",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "ServerException",
    "KMSThrottlingException",
    "TransactionConflictException",
];

/// Turns any SDK error into a [`CallError`], deciding whether a retry can help:
/// throttling codes, HTTP 5xx and transport failures can; everything else cannot.
pub fn call_error<E>(
    op: &str,
    err: &SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (retryable, message) = match err {
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("Unknown");
            let status = s.raw().status().as_u16();
            let msg = s.err().message().unwrap_or("");
            (
                RETRYABLE_CODES.contains(&code) || status >= 500 || status == 429,
                format!("{code} (HTTP {status}): {msg}"),
            )
        }
        SdkError::TimeoutError(_) => (true, "timed out".to_string()),
        SdkError::DispatchFailure(d) => (!d.is_user(), format!("request not sent: {}", chain(err))),
        SdkError::ResponseError(_) => (true, format!("unreadable response: {}", chain(err))),
        _ => (false, chain(err)),
    };
    CallError {
        op: op.to_string(),
        message,
        retryable,
    }
}

/// An error and its sources on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
