//! The SES mailer.

use async_trait::async_trait;
use aws_sdk_ses::types::{Body, Content, Destination, Message};
use labelport_core::ports::{BoxError, Mail, Mailer};

/// Sends through SES (v1 `SendEmail`) from one verified sender.
#[derive(Clone)]
pub struct SesMailer {
    client: aws_sdk_ses::Client,
    sender: String,
}

impl SesMailer {
    /// Sends as `sender`, which SES must have verified.
    pub fn new(client: aws_sdk_ses::Client, sender: impl Into<String>) -> Self {
        SesMailer {
            client,
            sender: sender.into(),
        }
    }
}

fn utf8(text: &str) -> Result<Content, BoxError> {
    Ok(Content::builder().data(text).charset("UTF-8").build()?)
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &Mail) -> Result<(), BoxError> {
        let message = Message::builder()
            .subject(utf8(&email.subject)?)
            .body(
                Body::builder()
                    .text(utf8(&email.text)?)
                    .html(utf8(&email.html)?)
                    .build(),
            )
            .build();
        self.client
            .send_email()
            .source(&self.sender)
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(email.to.clone()))
                    .build(),
            )
            .message(message)
            .send()
            .await
            .map_err(|e| aws_sdk_ses::error::DisplayErrorContext(e).to_string())?;
        Ok(())
    }
}
