//! Webhooks for approvers: when a held command asks for a decision, and when it is decided (or
//! stops waiting), each `[[webhook]]` whose rules match is sent a POST: a generic JSON body,
//! or a Slack-compatible incoming-webhook body, with a link to the request in the console.
//!
//! Delivery never holds a command: the desk announces its events on a channel
//! ([`gatehouse_audit::Approvals::subscribe`]) and this task queues them. Each webhook has
//! its own bounded queue and one sender, so its notices arrive in order (a request before its
//! decision), a slow receiver delays only its own, and a receiver that stays down costs a
//! bounded amount of memory: each notice is tried with backoff, and what no longer fits the
//! queue is dropped. Both are logged and counted in
//! `gatehouse_webhook_deliveries_total{outcome="failed"}`; the command never waits on them.
//!
//! ```toml
//! [[webhook]]
//! url = "https://hooks.slack.com/services/T000/B000/XXXX"
//! format = "slack"                 # json (default) | slack
//! rules = ["unbounded-writes"]     # default: every review rule
//! ```

mod body;

use std::sync::Arc;
use std::time::Duration;

use gatehouse_audit::Approvals;
use gatehouse_core::oidc::fetch::FetchTarget;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::error::CliError;

pub use body::Notice;

/// Notices a webhook's queue holds while its receiver is slow or down.
const QUEUED: usize = 256;

/// Pauses between a failed delivery and the next try: six tries over about half a minute.
const BACKOFF: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
];

/// A `[[webhook]]` as written in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// Where to POST: `https://`, or `http://` to a loopback address.
    pub url: String,
    /// `json` (the default) or `slack`.
    #[serde(default)]
    pub format: Format,
    /// The review rules whose requests it is told of (default: all).
    #[serde(default)]
    pub rules: Vec<String>,
}

/// The body a webhook is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The request's fields as JSON (see [`Notice`]).
    #[default]
    Json,
    /// `{"text": ...}`, as Slack's (and Mattermost's, Rocket.Chat's) incoming webhooks take.
    Slack,
}

#[derive(Clone)]
struct Hook {
    target: FetchTarget,
    format: Format,
    rules: Vec<String>,
}

/// A webhook and the queue its sender reads.
struct Queue {
    hook: Hook,
    notices: mpsc::Sender<Vec<u8>>,
}

/// The configured webhooks and where the console is.
#[derive(Clone)]
pub struct Webhooks {
    hooks: Arc<[Hook]>,
    console_url: Arc<str>,
}

impl Webhooks {
    /// Checks the `[[webhook]]`s: a URL the client can reach, rules that exist and hold
    /// commands for review.
    pub fn new(
        specs: &[WebhookSpec],
        review_rules: &[String],
        console_url: &str,
    ) -> Result<Self, CliError> {
        let mut hooks = Vec::with_capacity(specs.len());
        for spec in specs {
            let target = FetchTarget::named("url", &spec.url, None)
                .map_err(|e| CliError::Config(format!("[[webhook]] {e}")))?;
            if let Some(unknown) = spec.rules.iter().find(|r| !review_rules.contains(r)) {
                return Err(CliError::Config(format!(
                    "[[webhook]] {}: rules names {unknown:?}, which is not a review rule \
                     (review rules: {})",
                    spec.url,
                    review_rules.join(", ")
                )));
            }
            hooks.push(Hook {
                target,
                format: spec.format,
                rules: spec.rules.clone(),
            });
        }
        Ok(Self {
            hooks: hooks.into(),
            console_url: console_url.trim_end_matches('/').into(),
        })
    }

    /// Whether any webhook is configured.
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// Follows the desk until it closes, queueing each event for the webhooks that want it.
    pub async fn run(self, approvals: Approvals) {
        let mut events = approvals.subscribe();
        let queues: Vec<Queue> = self
            .hooks
            .iter()
            .map(|hook| {
                let (notices, queue) = mpsc::channel(QUEUED);
                tokio::spawn(send_in_order(hook.target.clone(), queue));
                Queue {
                    hook: hook.clone(),
                    notices,
                }
            })
            .collect();
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "webhooks fell behind; some notifications not sent");
                    metrics::counter!("gatehouse_webhook_deliveries_total", "outcome" => "failed")
                        .increment(missed);
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let Some(id) = event.id().map(str::to_owned) else {
                continue;
            };
            let desk = approvals.clone();
            let row = match tokio::task::spawn_blocking(move || desk.get(&id)).await {
                Ok(Ok(Some(row))) => row,
                Ok(Ok(None)) => continue,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "webhook: reading the approval request failed");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "webhook: reading the approval request failed");
                    continue;
                }
            };
            let notice = Notice::new(&event, &row, &self.console_url);
            for queue in &queues {
                let hook = &queue.hook;
                if !hook.rules.is_empty() && !hook.rules.contains(&row.rule) {
                    continue;
                }
                let body = match hook.format {
                    Format::Json => notice.json(),
                    Format::Slack => notice.slack(),
                };
                if queue.notices.try_send(body).is_err() {
                    tracing::warn!(
                        url = hook.target.url(),
                        "webhook queue full; notice dropped"
                    );
                    metrics::counter!("gatehouse_webhook_deliveries_total", "outcome" => "failed")
                        .increment(1);
                }
            }
        }
    }
}

/// Sends a webhook's notices one after another, in the order they were queued.
async fn send_in_order(target: FetchTarget, mut queue: mpsc::Receiver<Vec<u8>>) {
    while let Some(body) = queue.recv().await {
        deliver(&target, body).await;
    }
}

/// Posts one notification, retrying with backoff.
async fn deliver(target: &FetchTarget, body: Vec<u8>) {
    let mut pauses = BACKOFF.iter();
    loop {
        match target.post("application/json", &body).await {
            Ok(()) => {
                metrics::counter!("gatehouse_webhook_deliveries_total", "outcome" => "ok")
                    .increment(1);
                return;
            }
            Err(why) => match pauses.next() {
                Some(pause) => {
                    tracing::info!(%why, retry_in = ?pause, "webhook delivery failed; retrying");
                    tokio::time::sleep(*pause).await;
                }
                None => {
                    tracing::warn!(%why, "webhook delivery failed; giving up");
                    metrics::counter!("gatehouse_webhook_deliveries_total", "outcome" => "failed")
                        .increment(1);
                    return;
                }
            },
        }
    }
}
