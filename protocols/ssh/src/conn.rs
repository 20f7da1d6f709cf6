//! What one client connection shares between its handler, its channel tasks and the task that
//! closes it: the core session, why it ended, the tasks to wait for, the byte counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use gatehouse_core::Session;
use tokio::task::JoinHandle;

/// Shared state of one client connection.
#[derive(Default)]
pub(crate) struct ConnState {
    session: Mutex<Option<Arc<Session>>>,
    end_reason: Mutex<Option<String>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    watcher: Mutex<Option<JoinHandle<()>>>,
    from_client: Arc<AtomicU64>,
    from_server: Arc<AtomicU64>,
}

/// A poisoned lock only means another task panicked while holding it; the data is still good.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ConnState {
    pub(crate) fn set_session(&self, session: Arc<Session>) {
        *lock(&self.session) = Some(session);
    }

    /// Whether the client has authenticated (a session was opened).
    pub(crate) fn authenticated(&self) -> bool {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    pub(crate) fn take_session(&self) -> Option<Arc<Session>> {
        lock(&self.session).take()
    }

    pub(crate) fn set_end_reason(&self, reason: String) {
        lock(&self.end_reason).get_or_insert(reason);
    }

    pub(crate) fn end_reason(&self) -> Option<String> {
        lock(&self.end_reason).clone()
    }

    pub(crate) fn add_task(&self, task: JoinHandle<()>) {
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    pub(crate) fn take_tasks(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut *lock(&self.tasks))
    }

    pub(crate) fn set_watcher(&self, task: JoinHandle<()>) {
        if let Some(old) = lock(&self.watcher).replace(task) {
            old.abort();
        }
    }

    /// Stops the revocation watcher and waits until it has let go of the session.
    pub(crate) async fn stop_watcher(&self) {
        let watcher = lock(&self.watcher).take();
        if let Some(w) = watcher {
            w.abort();
            let _ = w.await;
        }
    }

    pub(crate) fn client_counter(&self) -> Arc<AtomicU64> {
        self.from_client.clone()
    }

    pub(crate) fn server_counter(&self) -> Arc<AtomicU64> {
        self.from_server.clone()
    }

    pub(crate) fn bytes(&self) -> (u64, u64) {
        (
            self.from_client.load(Ordering::Relaxed),
            self.from_server.load(Ordering::Relaxed),
        )
    }
}
