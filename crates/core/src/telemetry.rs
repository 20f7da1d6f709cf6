//! What the pipeline counts, through the `metrics` facade: sessions opened and refused,
//! commands by verdict, the gateway's own latency per statement, held commands and bytes
//! relayed, each by wire. The binary installs a Prometheus recorder behind `/metrics`;
//! without one, each call is a check of an unset recorder.

use std::time::Duration;

use crate::connection::Protocol;

/// Names of the metrics, as `/metrics` shows them.
pub mod names {
    /// Sessions opened (counter; `protocol`).
    pub const SESSIONS_OPENED: &str = "gatehouse_sessions_opened_total";
    /// Sessions refused at opening (counter; `protocol`, `reason`: `bad_token`, `forbidden`,
    /// `store`).
    pub const SESSIONS_REFUSED: &str = "gatehouse_sessions_refused_total";
    /// Commands judged (counter; `protocol`, `verdict`: `allow`, `deny`, `review`).
    pub const COMMANDS: &str = "gatehouse_commands_total";
    /// From a command read to its entry durable and the command free to go (histogram,
    /// seconds; `protocol`): what the gateway adds before a statement reaches the server.
    /// Held commands are not in it (their wait is a person's).
    pub const ADMISSION_SECONDS: &str = "gatehouse_admission_seconds";
    /// Commands waiting for an approval on this instance (gauge).
    pub const APPROVALS_WAITING: &str = "gatehouse_approvals_waiting";
    /// Bytes relayed by closed sessions (counter; `protocol`, `direction`: `from_client`,
    /// `from_server`).
    pub const BYTES_RELAYED: &str = "gatehouse_bytes_relayed_total";
}

/// A session opened.
pub(crate) fn session_opened(protocol: Protocol) {
    metrics::counter!(names::SESSIONS_OPENED, "protocol" => protocol.as_str()).increment(1);
}

/// A session refused at opening, and why (`bad_token`, `forbidden`, `store`).
pub(crate) fn session_refused(protocol: Protocol, reason: &'static str) {
    metrics::counter!(names::SESSIONS_REFUSED, "protocol" => protocol.as_str(), "reason" => reason)
        .increment(1);
}

/// A session's handles on the per-command metrics, looked up once when it opens: a lookup
/// hashes the name and labels into the recorder's registry, which per statement cost more
/// than the counting itself.
#[derive(Debug, Clone)]
pub(crate) struct CommandMeters {
    allow: metrics::Counter,
    deny: metrics::Counter,
    review: metrics::Counter,
    admission: metrics::Histogram,
}

impl CommandMeters {
    /// The handles of one wire's series.
    pub(crate) fn new(protocol: Protocol) -> Self {
        let p = protocol.as_str();
        let command = |verdict: &'static str| metrics::counter!(names::COMMANDS, "protocol" => p, "verdict" => verdict);
        Self {
            allow: command("allow"),
            deny: command("deny"),
            review: command("review"),
            admission: metrics::histogram!(names::ADMISSION_SECONDS, "protocol" => p),
        }
    }

    /// A command judged.
    pub(crate) fn command(&self, verdict: VerdictLabel) {
        match verdict {
            VerdictLabel::Allow => &self.allow,
            VerdictLabel::Deny => &self.deny,
            VerdictLabel::Review => &self.review,
        }
        .increment(1);
    }

    /// Where an admission's latency is counted.
    pub(crate) fn latency(&self) -> AdmissionLatency {
        AdmissionLatency(self.admission.clone())
    }
}

/// One wire's `gatehouse_admission_seconds`, carried by an admission.
#[derive(Debug, Clone)]
pub(crate) struct AdmissionLatency(metrics::Histogram);

impl AdmissionLatency {
    /// A command admitted `took` after it was read.
    pub(crate) fn record(&self, took: Duration) {
        self.0.record(took.as_secs_f64());
    }
}

/// A command's verdict, as `gatehouse_commands_total` labels it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum VerdictLabel {
    /// `allow`
    Allow,
    /// `deny`
    Deny,
    /// `review`
    Review,
}

/// A closed session's bytes.
pub(crate) fn bytes(protocol: Protocol, from_client: u64, from_server: u64) {
    let p = protocol.as_str();
    metrics::counter!(names::BYTES_RELAYED, "protocol" => p, "direction" => "from_client")
        .increment(from_client);
    metrics::counter!(names::BYTES_RELAYED, "protocol" => p, "direction" => "from_server")
        .increment(from_server);
}

/// Counts a held command as waiting while it lives.
pub(crate) struct Waiting(());

impl Waiting {
    pub(crate) fn start() -> Self {
        metrics::gauge!(names::APPROVALS_WAITING).increment(1.0);
        Self(())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        metrics::gauge!(names::APPROVALS_WAITING).decrement(1.0);
    }
}
