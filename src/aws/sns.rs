//! SNS: one `Publish` per page.

use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;

use super::call_error;
use crate::error::CallError;
use crate::page::Page;
use crate::ports::Pager;

/// The pager topic through the SDK.
#[derive(Clone, Debug)]
pub struct SnsPager {
    /// The client.
    pub client: Client,
    /// The topic.
    pub topic_arn: String,
}

impl Pager for SnsPager {
    async fn publish(&self, page: &Page) -> Result<(), CallError> {
        let mut req = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&page.subject)
            .message(&page.message);
        for (k, v) in &page.attributes {
            let value = MessageAttributeValue::builder()
                .data_type(crate::page::attribute_type(k))
                .string_value(v)
                .build()
                .map_err(|e| CallError::fatal("sns:Publish", e.to_string()))?;
            req = req.message_attributes(k, value);
        }
        req.send()
            .await
            .map_err(|e| call_error("sns:Publish", &e))?;
        Ok(())
    }
}
