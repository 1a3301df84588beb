//! SNS: one `Publish` per page, to the pager topic; and, when a chat topic is set, the same
//! page as a chat notification ([`crate::page::chat`]) to it.

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
    /// The chat topic (Amazon Q Developer in chat applications), if any.
    pub chat_topic_arn: Option<String>,
}

impl Pager for SnsPager {
    /// The page is sent once SNS has taken it for the pager topic. The chat copy is a
    /// courtesy: a failure to send it is logged, never a reason to send the page again.
    async fn publish(&self, page: &Page) -> Result<(), CallError> {
        self.publish_page(page).await?;
        if let Some(chat) = &self.chat_topic_arn {
            let sent = self
                .client
                .publish()
                .topic_arn(chat)
                .message(crate::page::chat::render(page))
                .send()
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %call_error("sns:Publish", &e), "chat notification not sent");
            }
        }
        Ok(())
    }
}

impl SnsPager {
    async fn publish_page(&self, page: &Page) -> Result<(), CallError> {
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
