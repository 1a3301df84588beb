//! CloudTrail `LookupEvents`: who changed a tag, for reconcile when no event said so.
//!
//! One lookup per event name (`PutImage`, then `BatchDeleteImage`) per account and region
//! serves every repository there; pages (50 events each) are read newest first, at most
//! [`MAX_PAGES`] per name. CloudTrail allows 2 `LookupEvents` calls a second per account and
//! region, so calls are spaced [`SPACING`] apart.

use std::time::Duration;

use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use aws_sdk_cloudtrail::Client;
use serde_json::Value;

use super::call_error;
use crate::error::CallError;
use crate::events::{self, Incident, Parsed};
use crate::ports::{EventLookup, Trail};

/// The event names that change a tag.
const NAMES: &[&str] = &["PutImage", "BatchDeleteImage"];
/// At most this many pages of one event name are read (newest first).
pub const MAX_PAGES: usize = 20;
/// The time between two calls: CloudTrail allows two a second per account and region.
pub const SPACING: Duration = Duration::from_millis(550);

/// CloudTrail through the SDK, in each region asked about.
#[derive(Clone, Debug)]
pub struct CloudTrailLookup {
    /// The client whose configuration (credentials, endpoint) every region's client starts
    /// from.
    pub client: Client,
}

impl CloudTrailLookup {
    fn client_for(&self, region: &str) -> Client {
        if self.client.config().region().map(|r| r.as_ref()) == Some(region) {
            return self.client.clone();
        }
        let conf = self
            .client
            .config()
            .to_builder()
            .region(aws_sdk_cloudtrail::config::Region::new(region.to_string()))
            .build();
        Client::from_conf(conf)
    }
}

impl Trail for CloudTrailLookup {
    async fn tag_changes(
        &self,
        account: &str,
        region: &str,
        since: i64,
    ) -> Result<Vec<Incident>, CallError> {
        let client = self.client_for(region);
        let mut out = Vec::new();
        let mut first = true;
        for name in NAMES {
            let mut token: Option<String> = None;
            for _ in 0..MAX_PAGES {
                if !first {
                    tokio::time::sleep(SPACING).await;
                }
                first = false;
                let attribute = LookupAttribute::builder()
                    .attribute_key(LookupAttributeKey::EventName)
                    .attribute_value(*name)
                    .build()
                    .map_err(|e| CallError::fatal("cloudtrail:LookupEvents", e.to_string()))?;
                let page = client
                    .lookup_events()
                    .lookup_attributes(attribute)
                    .start_time(aws_sdk_cloudtrail::primitives::DateTime::from_secs(since))
                    .max_results(50)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| call_error("cloudtrail:LookupEvents", &e))?;
                for ev in page.events() {
                    let Some(record) = ev
                        .cloud_trail_event()
                        .and_then(|t| serde_json::from_str::<Value>(t).ok())
                    else {
                        continue;
                    };
                    if let Ok(Parsed::Incident(i)) = events::parse(&record) {
                        if i.repo.account == account && i.repo.region == region {
                            out.push(i);
                        }
                    }
                }
                match page.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break,
                }
            }
        }
        Ok(out)
    }
}

impl EventLookup for CloudTrailLookup {
    async fn lookup_page(
        &self,
        region: &str,
        name: &str,
        window: (Option<i64>, Option<i64>),
        token: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), CallError> {
        use aws_sdk_cloudtrail::primitives::DateTime;
        let attribute = LookupAttribute::builder()
            .attribute_key(LookupAttributeKey::EventName)
            .attribute_value(name)
            .build()
            .map_err(|e| CallError::fatal("cloudtrail:LookupEvents", e.to_string()))?;
        let page = self
            .client_for(region)
            .lookup_events()
            .lookup_attributes(attribute)
            .set_start_time(window.0.map(DateTime::from_secs))
            .set_end_time(window.1.map(DateTime::from_secs))
            .max_results(50)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| call_error("cloudtrail:LookupEvents", &e))?;
        let records = page
            .events()
            .iter()
            .filter_map(|e| e.cloud_trail_event().map(String::from))
            .collect();
        let next = page
            .next_token()
            .filter(|t| !t.is_empty())
            .map(String::from);
        Ok((records, next))
    }
}
