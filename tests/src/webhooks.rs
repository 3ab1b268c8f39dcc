//! The customer's end of a webhook: a receiver process that answers as told and
//! checks each signature the way the README tells customers to.

use crate::Stack;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A webhook receiver (infra/webhook_receiver.py) on `port`, answering `statuses` in turn
/// and checking each signature with the README's recipe; killed when dropped.
pub struct Receiver {
    child: Child,
    log: PathBuf,
}

impl Receiver {
    /// Starts the receiver and waits until it listens. `port` must be one of
    /// [`crate::RECEIVER_PORTS`], the only addresses the tests' outbound policy allows.
    pub fn start(stack: &Stack, port: u16, secret: &str, statuses: &str) -> Receiver {
        let python = std::env::var("LABELPORT_PYTHON").unwrap_or_else(|_| "python3".into());
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf();
        let log = stack
            .scratch
            .join(format!("webhook-{port}-{}.ndjson", uuid::Uuid::new_v4()));
        let mut child = Command::new(python)
            .arg(root.join("infra/webhook_receiver.py"))
            .args([&port.to_string(), log.to_str().unwrap(), secret, statuses])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready");
        Receiver { child, log }
    }

    /// The requests received so far, each with the status answered and whether its
    /// signature verified.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CSV export delivered by webhook to the test receiver on `port`.
pub fn webhook_csv(port: u16, secret: &str) -> String {
    format!(
        r#"{{"format":"CSV","delivery":{{"method":"CUSTOM_WEBHOOK","url":"http://127.0.0.1:{port}/h","secret":"{secret}"}}}}"#
    )
}
