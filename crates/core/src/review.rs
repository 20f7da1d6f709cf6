//! A command held by a review rule: its request is stored, the client is told the request id,
//! and it waits for an approver (or the rule's grace lets an identical re-run through).
//!
//! Every step is evidence: the request and its decision in the approvals store, the command's
//! audit entry with verdict `approved` or `rejected` and the request id, and notes in the
//! recording.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::approval::{ApprovalDesk, ApprovalId, ApprovalRequest, Decision};
use crate::events::CommandRecord;
use crate::identity::hex;
use crate::policy::Verdict;
use crate::refused::{not_run, store_refusal, RefusalKind, Refused};
use crate::rules::Review;
use crate::store::{AuditSink, Receipt, RecordingEvent, RecordingSink};
use crate::time;

/// What a wire tells the client at once when its command is held.
#[derive(Debug, Clone)]
pub struct HoldNotice {
    /// The request id to give an approver.
    pub approval: ApprovalId,
    /// The rule that held it.
    pub rule: String,
    /// Who may approve.
    pub approvers: Vec<String>,
    /// How long the command waits.
    pub timeout: Duration,
}

impl HoldNotice {
    /// The sentence a client sees (a PostgreSQL NOTICE, an SSH stderr line).
    pub fn message(&self) -> String {
        format!(
            "gatehouse: rule \"{}\" holds this command for approval; request {} — ask a member \
             of {} to run `gatehouse approve {}`; waiting up to {}",
            self.rule,
            self.approval,
            self.approvers.join(", "),
            self.approval,
            humantime::format_duration(self.timeout)
        )
    }
}

/// A held command and what it needs to finish its admission.
pub(crate) struct Held {
    pub(crate) record: CommandRecord,
    /// The exact command's fingerprint (see [`fingerprint`]).
    pub(crate) fingerprint: String,
    pub(crate) review: Arc<Review>,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) recordings: Arc<dyn RecordingSink>,
    pub(crate) desk: Arc<dyn ApprovalDesk>,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("seq", &self.record.seq)
            .field("rule", &self.review.rule)
            .finish()
    }
}

/// The fingerprint an approval's grace is matched on: the exact text and parameters as the
/// client sent them (before masking and cutting). Keyed with a secret of this process, so the
/// stored fingerprint cannot be used to guess a card number in the text; a grace therefore
/// does not outlive a restart.
pub(crate) fn fingerprint(text: &str, params: &[crate::command::Param]) -> String {
    static KEY: std::sync::OnceLock<aws_lc_rs::hmac::Key> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| {
        let secret = crate::identity::random_hex(32).unwrap_or_default();
        aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes())
    });
    let mut ctx = aws_lc_rs::hmac::Context::with_key(key);
    ctx.update(text.as_bytes());
    for p in params {
        match p {
            Some(v) => {
                ctx.update(&[1]);
                ctx.update(&(v.len() as u64).to_be_bytes());
                ctx.update(v.as_bytes());
            }
            None => ctx.update(&[0]),
        }
    }
    hex(ctx.sign().as_ref())
}

impl Held {
    fn note(&self, text: String) {
        self.recordings.append(
            &self.record.session,
            RecordingEvent::Notice {
                at: time::display(SystemTime::now()),
                text,
            },
        );
    }

    fn reject(mut self, started: Instant, id: Option<&ApprovalId>, reason: String) -> Refused {
        self.note(reason.clone());
        self.record.approval = id.map(|i| i.0.clone());
        self.record.verdict = Verdict::Rejected {
            reason: reason.clone(),
        };
        not_run(
            &*self.audit,
            &*self.recordings,
            self.record,
            started,
            reason.clone(),
        );
        Refused {
            message: reason,
            kind: RefusalKind::Approval,
        }
    }

    fn run(mut self, id: &ApprovalId, by: String) -> Receipt {
        self.note(format!("request {id} approved by {by}; running"));
        self.record.approval = Some(id.0.clone());
        self.record.verdict = Verdict::Approved { by };
        self.audit.command_admitted(self.record)
    }

    /// Stores the request, tells the client, waits for the decision; on approval hands back
    /// the receipt of the command's audit entry.
    pub(crate) async fn decide(
        self,
        started: Instant,
        on_hold: impl FnOnce(&HoldNotice),
    ) -> Result<Receipt, Refused> {
        let print = self.fingerprint.clone();
        let desk = self.desk.clone();
        let review = self.review.clone();
        let now = SystemTime::now();
        if !review.grace.is_zero() {
            let since = now
                .checked_sub(review.grace)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            match desk
                .recent_approval(
                    &self.record.identity,
                    &self.record.connection,
                    &print,
                    since,
                )
                .await
            {
                Ok(Some(earlier)) => {
                    let by = format!("grace of {earlier}");
                    return Ok(self.run(&earlier, by));
                }
                Ok(None) => {}
                Err(e) => return Err(store_refusal(&e)),
            }
        }
        let id = match ApprovalId::generate() {
            Ok(id) => id,
            Err(e) => return Err(store_refusal(&e)),
        };
        let request = ApprovalRequest {
            id: id.clone(),
            session: self.record.session.clone(),
            identity: self.record.identity.to_string(),
            groups: self.record.groups.to_vec(),
            connection: self.record.connection.to_string(),
            protocol: self.record.protocol.as_str().to_owned(),
            text: self.record.text.clone(),
            params: self.record.params.clone(),
            class: self.record.classes.to_string(),
            rule: review.rule.clone(),
            approvers: review.approvers.clone(),
            requested_at: now,
            expires_at: now + review.timeout,
            fingerprint: print,
        };
        if let Err(e) = desk.request(&request).await {
            let reason = format!(
                "rule \"{}\" needs an approval for this command, but the request could not be \
                 stored ({e}), so it was not run; try again later or tell the gateway operator",
                review.rule
            );
            return Err(self.reject(started, None, reason));
        }
        let notice = HoldNotice {
            approval: id.clone(),
            rule: review.rule.clone(),
            approvers: review.approvers.clone(),
            timeout: review.timeout,
        };
        self.note(notice.message());
        on_hold(&notice);
        // From here the wait may be abandoned (the client cancels or goes away, the session is
        // ended): the guard then records the command as not run and withdraws the request.
        let mut guard = Abandoned {
            held: Some(self),
            id: id.clone(),
            started,
        };
        let decision = match desk.wait_decision(&id, review.timeout).await {
            Ok(Some(d)) => Ok(Some(d)),
            Ok(None) => desk.expire(&id).await,
            Err(e) => Err(e),
        };
        let Some(held) = guard.held.take() else {
            return Err(store_refusal(&crate::error::StoreError(
                "held command lost".into(),
            )));
        };
        let decision = match decision {
            Ok(d) => d,
            Err(e) => {
                let refused = store_refusal(&e);
                let _ = held.reject(started, Some(&id), refused.message.clone());
                return Err(refused);
            }
        };
        match decision {
            Some(Decision {
                approved: true, by, ..
            }) => {
                let seq = held.record.seq;
                let session = held.record.session.clone();
                let receipt = held.run(&id, by);
                if let Err(e) = desk.executed(&id, &session, seq).await {
                    tracing::warn!(approval = %id, error = %e, "could not mark approval executed");
                }
                Ok(receipt)
            }
            Some(Decision {
                approved: false,
                by,
                reason,
                ..
            }) => {
                let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
                let reason = format!(
                    "request {id} was denied by {by}{why} (rule \"{}\"); the command was not run",
                    review.rule
                );
                Err(held.reject(started, Some(&id), reason))
            }
            None => {
                let reason = format!(
                    "request {id} got no decision within {} (rule \"{}\"), so the command was \
                     not run; run it again to ask again",
                    humantime::format_duration(review.timeout),
                    review.rule
                );
                Err(held.reject(started, Some(&id), reason))
            }
        }
    }
}

/// A held command whose wait may be abandoned. Dropped while still holding it, it records the
/// command as not run and withdraws the request, so neither the audit trail nor the approvals
/// list is left with a command that seems to wait for nobody.
struct Abandoned {
    held: Option<Held>,
    id: ApprovalId,
    started: Instant,
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else {
            return;
        };
        let why = format!(
            "request {} withdrawn: the client stopped waiting (cancelled, disconnected or its \
             session ended) before a decision; the command was not run",
            self.id
        );
        let desk = held.desk.clone();
        let _ = held.reject(self.started, Some(&self.id), why.clone());
        let id = self.id.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = desk.withdraw(&id, &why).await {
                    tracing::warn!(approval = %id, error = %e, "could not withdraw the request");
                }
            });
        }
    }
}
