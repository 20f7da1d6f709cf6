//! A session: one client connection admitted to one upstream, and the permits that prove each
//! command was judged and recorded before it ran.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::watch;

use crate::admission::{Admission, AdmissionState, Admitted};
use crate::approval::ApprovalDesk;
use crate::classify::{folded_key, mysql, PreparedUse, Reading, StatementClass};
use crate::command::Command;
use crate::connection::{ConnectionSpec, Protocol};
use crate::end_watch::{EndReason, EndWatch};
use crate::events::SessionId;
use crate::events::{
    CommandCompletion, CommandEnd, CommandRecord, Outcome, SessionEnd, SessionInfo,
};
use crate::files::FileCrossed;
use crate::mask::{MaskCounts, Masker};
use crate::policy::Verdict;
use crate::refused::{not_run, RefusalKind, Refused};
use crate::review::Held;
use crate::revocation::RevokedSet;
use crate::rules::{Judgement, Rules, Subject};
use crate::store::{AuditSink, RecordingEvent, RecordingSink};
use crate::telemetry::{CommandMeters, VerdictLabel};
use crate::time;

/// An open session. Both halves of a relay share it by reference.
pub struct Session {
    pub(crate) info: SessionInfo,
    pub(crate) connection: Arc<ConnectionSpec>,
    pub(crate) token_expires: Option<SystemTime>,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) recordings: Arc<dyn RecordingSink>,
    pub(crate) rules: Arc<Rules>,
    pub(crate) masker: Masker,
    /// What the evidence may not hold: every mask, exemptions ignored (an exempt identity
    /// sees clear values; the store and recordings never keep them).
    pub(crate) evidence_masker: Masker,
    pub(crate) approvals: Arc<dyn ApprovalDesk>,
    pub(crate) revoked: watch::Receiver<RevokedSet>,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Held while the session lives, so the gateway can count (and drain) live sessions.
    pub(crate) _live: Arc<()>,
    /// The gateway's count of running commands (its admissions' writes are shared when
    /// others run).
    pub(crate) running: crate::running::Running,
    pub(crate) seq: AtomicU64,
    /// Readings of texts this session ran recently: a prepared statement executed a thousand
    /// times is parsed once. Keyed by the text with its constants folded, or (for readings
    /// that looked at a constant) by the exact text.
    pub(crate) classified: std::sync::Mutex<HashMap<Arc<str>, Reading>>,
    /// How the MySQL server lexes this session's text (its wire keeps it current).
    pub(crate) mysql_modes: std::sync::Mutex<mysql::Modes>,
    /// Its wire's per-command metrics.
    pub(crate) meters: CommandMeters,
    /// The client's address as its entries carry it (formatted once).
    pub(crate) client: Arc<str>,
}

/// Texts remembered per session for classification; the cache starts over when full.
const CLASSIFIED_CAPACITY: usize = 256;

/// Longer texts are classified every time rather than kept.
const CLASSIFIED_MAX_TEXT: usize = 4096;

/// Which prepared statements a name may stand for, as the wire knows them: the texts the
/// server may hold under it (several while a change is unconfirmed; none if the gateway never
/// saw it prepared).
pub type Resolver<'a> = &'a dyn Fn(&str) -> Vec<Arc<str>>;

/// The rule name an entry carries when the gateway refused a statement because it would
/// change how SQL text is read (whatever the configured rules say).
pub const READS_SQL_RULE: &str = "gatehouse:reads-sql-as-the-server";

/// Why an uploaded file's copy is not in the recording when its bytes are not text.
const BINARY_NOT_COPIED: &str = "binary: not copied (it could not be masked)";

/// Whether the rules decide a command or it is only recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Judged {
    /// The rules decide it (every command a wire forwards).
    ByRules,
    /// Recorded as observed, not decided (a line typed into an admitted shell).
    Observed,
}

/// Marks a folded key apart from an exact text in the same cache.
const EXACT: char = '\u{2}';

/// Longest statement text kept whole in an entry; longer text is cut, with its full length
/// noted, so one huge prepared statement executed many times cannot fill the store.
pub const MAX_AUDITED_TEXT: usize = 1 << 20;

/// Longest bind parameter kept whole in an entry.
pub const MAX_AUDITED_PARAM: usize = 8 << 10;

/// Texts longer than this are parsed on a blocking thread (`block_in_place`), so the async
/// workers keep relaying other sessions meanwhile.
const PARSED_ON_WORKER: usize = 16 << 10;

/// Runs a parse that may take a while without stalling the async worker it is called from.
fn off_worker<T>(parse: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(parse)
        }
        _ => parse(),
    }
}

fn cut(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

fn bounded(command: Command) -> Command {
    let oversized = command.text().len() > MAX_AUDITED_TEXT
        || command
            .params()
            .iter()
            .flatten()
            .any(|p| p.len() > MAX_AUDITED_PARAM);
    if !oversized {
        return command;
    }
    let (text, params) = command.into_parts();
    let params = params
        .into_iter()
        .map(|p| p.map(|v| cut(v, MAX_AUDITED_PARAM)))
        .collect();
    Command::with_params(cut(text, MAX_AUDITED_TEXT), params)
}

impl Session {
    /// Reads a text, through the session's cache.
    fn read(&self, text: &str) -> Reading {
        let modes = *self
            .mysql_modes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let read = || match self.info.protocol {
            crate::connection::Protocol::Mysql => mysql::read(text, modes),
            other => crate::classify::read(other, text),
        };
        if self.info.protocol == crate::connection::Protocol::Mysql {
            if let Some(refused) = mysql::unsure_charset(text, modes) {
                return refused;
            }
        }
        if text.len() > crate::classify::MAX_PARSED_TEXT {
            return Reading::unknown();
        }
        if text.len() > CLASSIFIED_MAX_TEXT {
            return if text.len() > PARSED_ON_WORKER {
                off_worker(read)
            } else {
                read()
            };
        }
        let folded = match self.info.protocol {
            crate::connection::Protocol::Mysql => mysql::folded_key(text, modes),
            other => folded_key(other, text),
        };
        let exact = || {
            let mut key = String::with_capacity(text.len() + 1);
            key.push(EXACT);
            key.push_str(text);
            key
        };
        {
            let cache = self
                .classified
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(hit) = folded.as_deref().and_then(|k| cache.get(k)) {
                return hit.clone();
            }
            if let Some(hit) = cache.get(exact().as_str()) {
                return hit.clone();
            }
        }
        let reading = read();
        let key = match folded {
            Some(folded) if !reading.literal_dependent => folded,
            _ => exact(),
        };
        let mut cache = self
            .classified
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.len() >= CLASSIFIED_CAPACITY {
            cache.clear();
        }
        cache.insert(Arc::from(key), reading.clone());
        reading
    }

    /// Tells the session how its MySQL server now lexes text (`NO_BACKSLASH_ESCAPES` from the
    /// server's status flags, its version and flavour from its greeting). Readings cached
    /// under other modes are dropped.
    pub fn set_mysql_modes(&self, modes: mysql::Modes) {
        let mut current = self
            .mysql_modes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *current != modes {
            *current = modes;
            self.classified
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clear();
        }
    }

    /// How the session's MySQL server lexes text, as last told.
    pub fn mysql_modes(&self) -> mysql::Modes {
        *self
            .mysql_modes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The reading of a command with every `EXECUTE name` resolved: the classes of each text
    /// `name` may stand for join the command's (`unknown` if it stands for none), and the
    /// text the audit keeps names what ran.
    fn resolve(&self, text: &str, resolver: Resolver<'_>) -> (Reading, Option<String>) {
        let mut reading = self.read(text);
        let mut shown = None::<String>;
        let executes: Vec<String> = reading
            .uses
            .iter()
            .filter_map(|u| match u {
                PreparedUse::Execute(name) => Some(name.clone()),
                _ => None,
            })
            .collect();
        for name in executes {
            let candidates = resolver(&name);
            if candidates.is_empty() {
                reading
                    .classes
                    .extend(&crate::Classification::of(&[StatementClass::Unknown]));
                let shown = shown.get_or_insert_with(|| text.to_owned());
                shown.push_str(&format!(
                    "\n-- EXECUTE {name}: not prepared through the gateway"
                ));
                continue;
            }
            for candidate in candidates {
                let inner = self.read(&candidate);
                reading.classes.extend(&inner.classes);
                // A prepared statement cannot EXECUTE another; if a text claims to, it is not
                // read with certainty.
                if inner
                    .uses
                    .iter()
                    .any(|u| matches!(u, PreparedUse::Execute(_)))
                {
                    reading
                        .classes
                        .extend(&crate::Classification::of(&[StatementClass::Unknown]));
                }
                let shown = shown.get_or_insert_with(|| text.to_owned());
                shown.push_str(&format!("\n-- EXECUTE {name} runs: {candidate}"));
            }
        }
        (reading, shown)
    }

    /// The session's id.
    pub fn id(&self) -> &SessionId {
        &self.info.id
    }

    /// The session as opened (identity, connection, client).
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// What this session's identity may not see: the wire applies it to results and server
    /// messages (empty for exempt identities, and when no `[[mask]]` is configured).
    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    /// What the evidence may not hold: every detector and column rule, whatever the
    /// identity's exemptions (a wire that records a stream itself — a terminal cast — masks it
    /// with this across chunk boundaries).
    pub fn evidence_masker(&self) -> &Masker {
        &self.evidence_masker
    }

    /// The upstream this session was admitted to, with the gateway-held credentials.
    pub fn connection(&self) -> &ConnectionSpec {
        &self.connection
    }

    /// Judges a command and starts writing its audit entry. Wait on the returned
    /// [`Admission`] before forwarding the command; several can be in flight at once.
    pub fn admit(&self, command: Command) -> Admission {
        self.admit_as(command, Judged::ByRules, &|_| Vec::new())
    }

    /// [`Session::admit`] for a wire that tracks prepared statements: `resolver` says what
    /// each `EXECUTE name` in the text may run.
    pub fn admit_resolving(&self, command: Command, resolver: Resolver<'_>) -> Admission {
        self.admit_as(command, Judged::ByRules, resolver)
    }

    /// Records a command the gateway observed but does not decide — a line typed into an
    /// interactive shell, reconstructed from keystrokes, is evidence, not a boundary (the
    /// shell itself was admitted). No rule judges it; its entry is written like any other, so
    /// waiting on the admission still means the entry is durable.
    pub fn observe(&self, command: Command) -> Admission {
        self.admit_as(command, Judged::Observed, &|_| Vec::new())
    }

    fn admit_as(&self, command: Command, judged: Judged, resolver: Resolver<'_>) -> Admission {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let started = Instant::now();
        let unreadable = command.unreadable_reason().map(str::to_owned);
        let (reading, command) = match command.class() {
            Some(class) => (
                Reading {
                    classes: crate::classify::Classification::of(&[class]),
                    ..Reading::default()
                },
                command,
            ),
            None => {
                let (reading, shown) = self.resolve(command.text(), resolver);
                let command = match shown {
                    Some(text) => {
                        let (_, params) = command.into_parts();
                        Command::with_params(text, params)
                    }
                    None => command,
                };
                (reading, command)
            }
        };
        let Reading {
            classes,
            uses,
            refusal,
            ..
        } = reading;
        let prepares: Vec<PreparedUse> = uses
            .into_iter()
            .filter(|u| !matches!(u, PreparedUse::Execute(_)))
            .collect();
        let judgement = if let Some(reason) = unreadable.or(refusal) {
            Judgement::Deny {
                rule: READS_SQL_RULE.into(),
                reason,
            }
        } else if judged == Judged::ByRules {
            self.rules.judge(&Subject {
                protocol: self.info.protocol,
                connection: &self.info.connection,
                groups: &self.info.groups,
                text: command.text(),
                classes: &classes,
            })
        } else {
            Judgement::Allow { rule: None }
        };
        // A MySQL command the gateway could not read may switch the character set unseen.
        if self.info.protocol == Protocol::Mysql
            && classes.contains(StatementClass::Unknown)
            && !matches!(judgement, Judgement::Deny { .. })
        {
            let modes = self.mysql_modes();
            if !modes.charset_unsure {
                self.set_mysql_modes(mysql::Modes {
                    charset_unsure: true,
                    ..modes
                });
            }
        }
        // A review's grace matches the exact command, so it is fingerprinted before masking
        // and cutting (the fingerprint is a hash; the clear text is never stored). A command
        // too long to be shown whole to an approver is not reviewable.
        let (fingerprint, too_long) = match &judgement {
            Judgement::Review(_) => (
                crate::review::fingerprint(command.text(), command.params()),
                command.text().len() > MAX_AUDITED_TEXT
                    || command
                        .params()
                        .iter()
                        .flatten()
                        .any(|p| p.len() > MAX_AUDITED_PARAM),
            ),
            _ => (String::new(), false),
        };
        let judgement = match judgement {
            Judgement::Review(review) if too_long => Judgement::Deny {
                rule: review.rule.clone(),
                reason: format!(
                    "rule \"{}\" needs an approval for this command, but it is too long to be \
                     shown whole to an approver ({} bytes of text at most, {} per parameter)",
                    review.rule, MAX_AUDITED_TEXT, MAX_AUDITED_PARAM
                ),
            },
            other => other,
        };
        // Judged on what the server would run; stored only as masked (a card number typed in
        // a WHERE clause never reaches the store or the recording in clear).
        let mut masked = MaskCounts::new();
        let command = self.without_passwords(command);
        let command = bounded(mask_command(&self.evidence_masker, command, &mut masked));
        let at = SystemTime::now();
        self.recordings.append(
            &self.info.id,
            RecordingEvent::Command {
                at: time::display(at),
                seq,
                text: command.text().to_owned(),
                params: command.params().to_vec(),
                class: classes.to_string(),
            },
        );
        let (text, params) = command.into_parts();
        let mut record = CommandRecord {
            session: self.info.id.clone(),
            seq,
            at,
            identity: self.info.identity.clone(),
            groups: self.info.groups.clone(),
            connection: self.info.connection.clone(),
            protocol: self.info.protocol,
            client: self.client.clone(),
            text,
            params,
            classes,
            verdict: Verdict::Allow,
            rule: None,
            approval: None,
            masked: masked.to_log(),
        };
        self.meters.command(match &judgement {
            Judgement::Allow { .. } => VerdictLabel::Allow,
            Judgement::Deny { .. } => VerdictLabel::Deny,
            Judgement::Review(_) => VerdictLabel::Review,
        });
        let mut running = None;
        let state = match judgement {
            Judgement::Allow { rule } => {
                record.rule = rule;
                let (command, others) = self.running.start();
                running = Some((command, others));
                AdmissionState::Writing(self.audit.command_admitted(record))
            }
            Judgement::Deny { rule, reason } => {
                record.rule = Some(rule);
                record.verdict = Verdict::Deny {
                    reason: reason.clone(),
                };
                not_run(
                    &*self.audit,
                    &*self.recordings,
                    record,
                    started,
                    reason.clone(),
                );
                AdmissionState::Refused(Refused {
                    message: reason,
                    kind: RefusalKind::Rule,
                })
            }
            Judgement::Review(review) => {
                record.rule = Some(review.rule.clone());
                AdmissionState::Held(Box::new(Held {
                    record,
                    fingerprint,
                    review,
                    audit: self.audit.clone(),
                    recordings: self.recordings.clone(),
                    desk: self.approvals.clone(),
                }))
            }
        };
        // Only a held command waits long enough for the session to end meanwhile.
        let ended = matches!(state, AdmissionState::Held(_)).then(|| self.end_watch());
        Admission {
            seq,
            latency: self.meters.latency(),
            started,
            state,
            prepares,
            ended,
            running,
        }
    }

    /// The command as stored: SQL with its password literals redacted (the server gets it as
    /// sent). Commands a wire classed itself are not SQL.
    fn without_passwords(&self, command: Command) -> Command {
        if command.class().is_some() {
            return command;
        }
        let modes = match self.info.protocol {
            Protocol::Mysql => self.mysql_modes(),
            _ => mysql::Modes::default(),
        };
        match crate::classify::secrets::redact(self.info.protocol, command.text(), modes) {
            Some(text) => {
                let (_, params) = command.into_parts();
                Command::with_params(text, params)
            }
            None => command,
        }
    }

    /// Closes a command with its outcome: the audit entry and the recording get it, with what
    /// was masked in its result.
    pub fn finish(&self, admitted: Admitted, end: impl Into<CommandEnd>) {
        let CommandEnd {
            outcome,
            rows_returned,
            rows_affected,
            masked,
        } = end.into();
        let finished_at = SystemTime::now();
        let duration = admitted.started.elapsed();
        let outcome = match outcome {
            Outcome::Failed { code, message } => Outcome::Failed {
                code,
                message: self
                    .evidence_masker
                    .mask_text(&message, &mut MaskCounts::new(), "error")
                    .into_owned(),
            },
            other => other,
        };
        let detail = match &outcome {
            Outcome::Completed { tag } => tag.clone(),
            Outcome::Failed { code, message } => format!("{code} {message}"),
            Outcome::NotExecuted { reason } => reason.clone(),
        };
        self.recordings.append(
            &self.info.id,
            RecordingEvent::Result {
                at: time::display(finished_at),
                seq: admitted.seq,
                status: outcome.status().to_owned(),
                detail,
                rows: rows_returned,
                duration_us: u64::try_from(duration.as_micros()).unwrap_or(u64::MAX),
            },
        );
        self.audit.command_finished(CommandCompletion {
            session: self.info.id.clone(),
            seq: admitted.seq,
            outcome,
            rows_returned,
            rows_affected,
            duration,
            finished_at,
            masked,
        });
    }

    /// Notes something the server said outside any command (e.g. an error to a Parse that was
    /// never executed) in the recording.
    pub fn note(&self, text: String) {
        let text = self
            .evidence_masker
            .mask_text(&text, &mut MaskCounts::new(), "note")
            .into_owned();
        self.recordings.append(
            &self.info.id,
            RecordingEvent::Notice {
                at: time::display(SystemTime::now()),
                text,
            },
        );
    }

    /// Records a file that crossed the session in its recording, under the entry `seq`; an
    /// uploaded copy's text is masked like everything the recording holds.
    pub fn record_file(&self, seq: u64, file: FileCrossed) {
        let (content, binary) = match file.copy.map(String::from_utf8) {
            Some(Ok(text)) => {
                let masked = self
                    .evidence_masker
                    .mask_text(&text, &mut MaskCounts::new(), "file")
                    .into_owned();
                (Some(masked), false)
            }
            Some(Err(_)) => (None, true),
            None => (None, false),
        };
        let note = match (file.note, binary) {
            (note, false) => note,
            (None, true) => Some(BINARY_NOT_COPIED.to_owned()),
            (Some(note), true) => Some(format!("{note}; {BINARY_NOT_COPIED}")),
        };
        self.recordings.append(
            &self.info.id,
            RecordingEvent::File {
                at: time::display(SystemTime::now()),
                seq,
                direction: file.direction.as_str().to_owned(),
                path: file.path,
                bytes: file.bytes,
                sha256: file.sha256,
                content,
                note,
            },
        );
    }

    /// Resolves when the gateway ends the session: its token was revoked or expired, or the
    /// gateway is shutting down. Cancel-safe: dropping the future loses nothing.
    pub async fn ended(&self) -> EndReason {
        self.end_watch().ended().await
    }

    /// What tells this session's end, for a wait that must stop at it.
    pub(crate) fn end_watch(&self) -> EndWatch {
        let token = self.info.token_id.clone();
        // A JWT's session also ends when its subject is revoked.
        let subject = token
            .0
            .starts_with(crate::revocation::JWT_PREFIX)
            .then(|| crate::revocation::subject_key(&self.info.identity));
        EndWatch {
            revoked: self.revoked.clone(),
            shutdown: self.shutdown.clone(),
            token,
            subject,
            started_at: self.info.started_at,
            expires: self.token_expires,
        }
    }

    /// Closes the session: the store gets its end, the recording its last line.
    pub async fn close(self, reason: &str, bytes_from_client: u64, bytes_from_server: u64) {
        let ended_at = SystemTime::now();
        crate::telemetry::bytes(self.info.protocol, bytes_from_client, bytes_from_server);
        self.recordings.append(
            &self.info.id,
            RecordingEvent::End {
                at: time::display(ended_at),
                reason: reason.to_owned(),
                bytes_from_client,
                bytes_from_server,
            },
        );
        self.recordings.close(&self.info.id);
        // The recording is complete now: its hash goes into the session's (chained) end.
        let recordings = self.recordings.clone();
        let id = self.info.id.clone();
        let recording_sha256 = tokio::task::spawn_blocking(move || recordings.seal(&id))
            .await
            .unwrap_or_default();
        let receipt = self.audit.session_closed(&SessionEnd {
            id: self.info.id.clone(),
            ended_at,
            reason: reason.to_owned(),
            bytes_from_client,
            bytes_from_server,
            recording_sha256,
        });
        if let Err(e) = receipt.await {
            tracing::error!(session = %self.info.id, error = %e, "session end not recorded");
        }
    }
}

/// Terminal recordings (SSH shells and exec channels).
impl Session {
    /// Hands one event of a terminal channel to the session's recording, which writes each
    /// channel as an asciicast file. Never blocks: the store writes it out later.
    ///
    /// The wire hands over output as it forwarded it (masked by [`Session::masker`]). What the
    /// recording keeps is masked by every rule, exemptions ignored, like all evidence: so
    /// output of an exempt identity, the input and an exec's command are masked here.
    pub fn terminal(&self, mut event: crate::events::TerminalEvent) {
        use crate::events::TerminalEventKind as Kind;
        let evidence = &self.evidence_masker;
        if evidence.has_detectors() {
            let mut counts = MaskCounts::new();
            let mask_data = |data: &mut bytes::Bytes, counts: &mut MaskCounts| {
                if let std::borrow::Cow::Owned(masked) =
                    evidence.mask_bytes(data, counts, "terminal")
                {
                    *data = bytes::Bytes::from(masked);
                }
            };
            match &mut event.kind {
                // The wire masked it with the same rules unless the identity is exempt.
                Kind::Output(data) if self.masker.rule_names().ne(evidence.rule_names()) => {
                    mask_data(data, &mut counts)
                }
                Kind::Input(data) => mask_data(data, &mut counts),
                Kind::Start(start) => {
                    if let Some(command) = &mut start.command {
                        if let std::borrow::Cow::Owned(masked) =
                            evidence.mask_text(command, &mut counts, "command")
                        {
                            *command = masked;
                        }
                    }
                }
                _ => {}
            }
        }
        self.recordings.terminal(&self.info.id, event);
    }
}

/// The command with its text and parameters masked by the detector rules.
fn mask_command(masker: &Masker, command: Command, counts: &mut MaskCounts) -> Command {
    use std::borrow::Cow;
    if !masker.has_detectors() {
        return command;
    }
    let rebuilt = {
        let text = masker.mask_text(command.text(), counts, "statement");
        let params: Vec<Option<Cow<'_, str>>> = command
            .params()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.as_deref()
                    .map(|v| masker.mask_text(v, counts, &format!("param ${}", i + 1)))
            })
            .collect();
        let changed = matches!(text, Cow::Owned(_))
            || params.iter().flatten().any(|p| matches!(p, Cow::Owned(_)));
        changed.then(|| {
            Command::with_params(
                text.into_owned(),
                params.into_iter().map(|p| p.map(Cow::into_owned)).collect(),
            )
        })
    };
    rebuilt.unwrap_or(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_keys_fold_only_constants_and_value_readers_are_kept_exact() {
        use crate::classify::{folded_key, read};
        use crate::connection::Protocol::Postgres;
        let a = folded_key(
            Postgres,
            "SELECT abalance FROM pgbench_accounts WHERE aid = 17;",
        );
        let b = folded_key(
            Postgres,
            "SELECT abalance FROM pgbench_accounts WHERE aid = 4242;",
        );
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_ne!(
            folded_key(Postgres, "SELECT 1"),
            folded_key(Postgres, "DELETE FROM t")
        );
        // Identifiers with digits are not constants.
        assert_ne!(
            folded_key(Postgres, "DELETE FROM t1"),
            folded_key(Postgres, "DELETE FROM t2 ")
        );
        // `ANALYZE 0` and `ANALYZE 1` fold alike, so their readings are kept by exact text.
        let off = "EXPLAIN (ANALYZE 0) DELETE FROM t";
        let on = "EXPLAIN (ANALYZE 1) DELETE FROM t";
        assert_eq!(folded_key(Postgres, off), folded_key(Postgres, on));
        assert!(read(Postgres, off).literal_dependent);
        assert_eq!(read(Postgres, off).classes.to_string(), "select");
        assert_eq!(
            read(Postgres, on).classes.to_string(),
            "delete-without-where"
        );
    }

    #[test]
    fn oversized_text_and_parameters_are_cut_with_their_length() {
        let c = bounded(Command::with_params(
            "é".repeat(MAX_AUDITED_TEXT),
            vec![
                Some("x".repeat(MAX_AUDITED_PARAM + 1)),
                None,
                Some("ok".into()),
            ],
        ));
        assert!(c.text().len() < MAX_AUDITED_TEXT + 64);
        assert!(c
            .text()
            .ends_with(&format!("({} bytes in all)", 2 * MAX_AUDITED_TEXT)));
        assert!(c.params()[0]
            .as_deref()
            .is_some_and(|p| p.ends_with("(8193 bytes in all)")));
        assert_eq!(c.params()[1], None);
        assert_eq!(c.params()[2].as_deref(), Some("ok"));
        let small = Command::new("SELECT 1");
        assert_eq!(bounded(small.clone()), small);
    }
}
