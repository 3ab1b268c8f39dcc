//! The in-process queue: messages wait in memory until the embedded loop takes them.

use async_trait::async_trait;
use labelport_core::ports::{BoxError, Queue};
use tokio::sync::mpsc;

/// A [`Queue`] backed by a channel.
#[derive(Clone)]
pub struct InProcessQueue {
    sender: mpsc::UnboundedSender<String>,
}

impl InProcessQueue {
    /// A queue and the receiving end the embedded loop drains.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<String>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (InProcessQueue { sender }, receiver)
    }
}

#[async_trait]
impl Queue for InProcessQueue {
    async fn send(&self, body: String) -> Result<(), BoxError> {
        self.sender
            .send(body)
            .map_err(|_| "the in-process queue is closed".into())
    }
}
