//! A command between its judgement and its forwarding: [`Admission`] (its entry being written,
//! held for an approver, or refused) and the permit [`Admitted`] a wire needs to forward it.

use std::future::Future;
use std::time::Instant;

use crate::classify::PreparedUse;
use crate::end_watch::EndWatch;
use crate::refused::{store_refusal, Refused};
use crate::review::{Held, HoldNotice};
use crate::running::{RunningCommand, YieldOnce};
use crate::store::Receipt;

/// A command on its way through admission: its entry is being written, or it is held for an
/// approver, or it was refused by a rule.
#[derive(Debug)]
#[must_use = "an admission must be waited for before the command is forwarded"]
pub struct Admission {
    pub(crate) seq: u64,
    /// Where its latency is counted (its session's wire's series).
    pub(crate) latency: crate::telemetry::AdmissionLatency,
    pub(crate) started: Instant,
    pub(crate) state: AdmissionState,
    pub(crate) prepares: Vec<PreparedUse>,
    /// A held command's watch on its session's end.
    pub(crate) ended: Option<EndWatch>,
    /// An allowed command, counted as running, and whether others were running when it
    /// was admitted.
    pub(crate) running: Option<(RunningCommand, bool)>,
}

/// How a wait for admission ended (see [`Admission::wait_or`]).
#[derive(Debug)]
pub enum Waited<I> {
    /// The command may be forwarded.
    Admitted(Admitted),
    /// It may not: a rule, an approver, the store, or its session's end said no.
    Refused(Refused),
    /// The wire stopped waiting first (the client cancelled or went away): the request is
    /// withdrawn and the command recorded as not run.
    Interrupted(I),
}

/// Where an admission stands.
#[derive(Debug)]
pub(crate) enum AdmissionState {
    Writing(Receipt),
    Refused(Refused),
    Held(Box<Held>),
}

/// The permit to forward one command: its entry is durable and its verdict allowed it.
/// Consumed by [`crate::Session::finish`].
#[derive(Debug)]
#[must_use = "finish the command with its outcome"]
pub struct Admitted {
    pub(crate) seq: u64,
    pub(crate) started: Instant,
    pub(crate) prepares: Vec<PreparedUse>,
    /// Counted as running until finished.
    pub(crate) _running: Option<RunningCommand>,
}

impl Admitted {
    /// The command's number within the session.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The prepared statements it makes or drops (`PREPARE`, `DEALLOCATE`, `DISCARD ALL`),
    /// in statement order: the wire applies each once the server confirms it.
    pub fn prepared_uses(&self) -> &[PreparedUse] {
        &self.prepares
    }
}

impl Admission {
    /// Waits until the entry is durable. Fails closed: if the store cannot write it, the
    /// command is refused. A held command waits for its decision without telling the client;
    /// wires that can tell it use [`Admission::wait_with`].
    pub async fn wait(self) -> Result<Admitted, Refused> {
        self.wait_with(|_| {}).await
    }

    /// Like [`Admission::wait`]; if the command is held for approval, `on_hold` is called once
    /// the request is stored, with what the client should be told at once.
    pub async fn wait_with(self, on_hold: impl FnOnce(&HoldNotice)) -> Result<Admitted, Refused> {
        let (receipt, held) = match self.state {
            AdmissionState::Writing(receipt) => (receipt, false),
            AdmissionState::Refused(refused) => return Err(refused),
            AdmissionState::Held(held) => {
                let _waiting = crate::telemetry::Waiting::start();
                (held.decide(self.started, on_hold).await?, true)
            }
        };
        let (running, others) = self.running.map_or((None, false), |(c, o)| (Some(c), o));
        if others && receipt.is_deferred() {
            // Other sessions' commands run: the tasks ready on this thread go first, and
            // their admissions share this one's journal write.
            YieldOnce::new().await;
        }
        match receipt.await {
            Ok(()) => Ok(Admitted {
                seq: self.seq,
                started: self.started,
                prepares: self.prepares,
                _running: running,
            }),
            Err(e) => Err(store_refusal(&e)),
        }
        .inspect(|_| {
            if !held {
                self.latency.record(self.started.elapsed());
            }
        })
    }

    /// The one wait every wire uses: like [`Admission::wait_with`], and while a command is
    /// held, also until `interrupt` resolves (the wire's reason to stop: a cancel, a hang-up)
    /// or the session is ended — then the request is withdrawn, the command recorded as not
    /// run, and the client told the same thing on every wire.
    pub async fn wait_or<I>(
        self,
        on_hold: impl FnOnce(&HoldNotice),
        interrupt: impl Future<Output = I>,
    ) -> Waited<I> {
        let verdict = |v: Result<Admitted, Refused>| match v {
            Ok(admitted) => Waited::Admitted(admitted),
            Err(refused) => Waited::Refused(refused),
        };
        let Some(ended) = self.ended.clone() else {
            return verdict(self.wait_with(on_hold).await);
        };
        let wait = self.wait_with(on_hold);
        tokio::pin!(wait, interrupt);
        // Dropping the wait (either of the other arms) withdraws the request.
        tokio::select! {
            v = &mut wait => verdict(v),
            i = &mut interrupt => Waited::Interrupted(i),
            reason = ended.ended() => Waited::Refused(Refused::session_ended(reason)),
        }
    }
}
