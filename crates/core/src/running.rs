//! How many admitted commands are running across the gateway's sessions. An admission made
//! while others run lets the other tasks ready on its thread go first before its entry is
//! written, so the admissions among them share one journal write (see
//! [`crate::store::Receipt::deferred`]); alone, it writes at once, since waiting would only
//! cost it a reschedule.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// The gateway's count of commands admitted and not yet finished.
#[derive(Debug, Clone, Default)]
pub(crate) struct Running(Arc<AtomicUsize>);

/// One command, counted in [`Running`] until it is dropped: finished, refused by the store,
/// or abandoned with its session.
#[derive(Debug)]
pub(crate) struct RunningCommand(Arc<AtomicUsize>);

impl Running {
    /// Counts a command; returns it, and whether others were running.
    pub(crate) fn start(&self) -> (RunningCommand, bool) {
        let others = self.0.fetch_add(1, Ordering::Relaxed);
        (RunningCommand(self.0.clone()), others > 0)
    }
}

impl Drop for RunningCommand {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Pending once, then ready: its task goes to the back of its thread's queue, so the tasks
/// ready there now run first. A self-wake is a plain reschedule (no trip through the I/O
/// driver, unlike `tokio::task::yield_now`).
pub(crate) struct YieldOnce(bool);

impl YieldOnce {
    /// A yield not yet taken.
    pub(crate) fn new() -> Self {
        Self(false)
    }
}

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_counts_until_dropped_and_knows_whether_others_ran() {
        let running = Running::default();
        let (first, others) = running.start();
        assert!(!others, "alone");
        let (second, others) = running.start();
        assert!(others, "the first still runs");
        drop(first);
        drop(second);
        let (_third, others) = running.start();
        assert!(!others, "both finished");
    }

    #[tokio::test]
    async fn yield_once_is_pending_once_then_ready() {
        let mut polls = 0;
        let mut y = YieldOnce::new();
        std::future::poll_fn(|cx| {
            polls += 1;
            Pin::new(&mut y).poll(cx)
        })
        .await;
        assert_eq!(polls, 2);
    }
}
