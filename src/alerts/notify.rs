//! Sends alert messages to `alerting.webhook_url`, one at a time in the order they happened
//! (a resolved message never overtakes its firing one), each retried with doubling backoff up to
//! `alerting.max_attempts`. `format = "json"` posts the message as JSON; `"slack"` posts
//! `{"text": …}`, which Slack's incoming webhooks (and Mattermost, Teams' Slack-compatible
//! endpoints) take.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{AlertBook, Delivery, Notice, Status};
use crate::config::alerts::{AlertFormat, AlertingConfig};

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Hands messages to the sending task.
pub struct Notifier {
    tx: mpsc::UnboundedSender<Notice>,
}

impl Notifier {
    /// Starts the sending task; `None` when no webhook is configured.
    pub fn start(config: &AlertingConfig, book: Arc<AlertBook>, cancel: CancellationToken) -> Option<Self> {
        let url = config.webhook_url.clone().filter(|u| !u.is_empty())?;
        let (tx, rx) = mpsc::unbounded_channel();
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().ok()?;
        let settings = Settings {
            url,
            format: config.format,
            max_attempts: config.max_attempts.max(1),
            first_backoff: Duration::from_millis(config.retry_base_ms.max(1)),
        };
        tokio::spawn(send_all(settings, client, rx, book, cancel));
        Some(Self { tx })
    }

    pub fn send(&self, n: Notice) {
        let _ = self.tx.send(n);
    }
}

struct Settings {
    url: String,
    format: AlertFormat,
    max_attempts: u32,
    first_backoff: Duration,
}

/// The body for the receiver.
pub fn body(n: &Notice, format: AlertFormat) -> serde_json::Value {
    match format {
        AlertFormat::Json => {
            let mut body = json!({
            "source": "surety",
            "status": n.status,
            "rule": n.rule,
            "when": n.when,
            "destination": n.destination,
            "value": n.value,
            "above": n.above,
            "since": n.since,
            "at": n.at,
            "summary": n.summary(),
            });
            if let Some(below) = n.below {
                body["below"] = json!(below);
            }
            body
        }
        AlertFormat::Slack => {
            let icon = match n.status {
                Status::Firing => ":rotating_light:",
                Status::Resolved => ":white_check_mark:",
            };
            json!({ "text": format!("{icon} Surety {}", n.summary()) })
        }
    }
}

async fn send_all(
    s: Settings,
    client: reqwest::Client,
    mut rx: mpsc::UnboundedReceiver<Notice>,
    book: Arc<AlertBook>,
    cancel: CancellationToken,
) {
    loop {
        let n = tokio::select! {
            _ = cancel.cancelled() => return,
            n = rx.recv() => match n { Some(n) => n, None => return },
        };
        let payload = body(&n, s.format);
        let mut backoff = s.first_backoff;
        let mut attempts = 0u32;
        let outcome = loop {
            attempts = attempts.saturating_add(1);
            book.delivered(n.id, Delivery::Pending { attempts });
            let error = match client.post(&s.url).json(&payload).send().await {
                Ok(r) if r.status().is_success() => break Delivery::Sent { attempts },
                Ok(r) => format!("HTTP {}", r.status().as_u16()),
                Err(e) => format!("{e}"),
            };
            if attempts >= s.max_attempts {
                break Delivery::Failed { attempts, error };
            }
            tracing::warn!(rule = %n.rule, attempts, %error, "alert notification failed; retrying");
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        };
        if let Delivery::Failed { error, .. } = &outcome {
            tracing::error!(rule = %n.rule, attempts, %error, "alert notification given up");
        }
        book.delivered(n.id, outcome);
    }
}
