//! The outbox mailer: each e-mail becomes an `.eml` file a mail client opens.

use async_trait::async_trait;
use labelport_core::ports::{BoxError, Mail, Mailer};
use std::path::PathBuf;

/// Writes e-mails to a folder instead of sending them.
pub struct OutboxMailer {
    folder: PathBuf,
    sender: String,
}

impl OutboxMailer {
    /// Writes into `folder` as if sent by `sender`.
    pub fn new(folder: impl Into<PathBuf>, sender: impl Into<String>) -> Self {
        OutboxMailer {
            folder: folder.into(),
            sender: sender.into(),
        }
    }
}

/// RFC 5322 text of a multipart/alternative message.
pub fn render(email: &Mail, from: &str, boundary: &str) -> String {
    let date = chrono::Utc::now().to_rfc2822();
    // Subjects are ASCII-safe here, but encode anyway (RFC 2047) so non-ASCII survives.
    let subject = if email.subject.is_ascii() {
        email.subject.clone()
    } else {
        use base64::Engine;
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(&email.subject)
        )
    };
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n\
         --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n\
         --{boundary}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{html}\r\n\
         --{boundary}--\r\n",
        to = email.to.join(", "),
        text = email.text.replace('\n', "\r\n"),
        html = email.html,
    )
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, email: &Mail) -> Result<(), BoxError> {
        tokio::fs::create_dir_all(&self.folder).await?;
        let id = uuid::Uuid::now_v7();
        let path = self.folder.join(format!("{id}.eml"));
        tokio::fs::write(
            &path,
            render(email, &self.sender, &format!("labelport-{id}")),
        )
        .await?;
        tracing::info!(path = %path.display(), "e-mail written to the outbox");
        Ok(())
    }
}
