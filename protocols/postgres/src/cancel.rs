//! Query cancellation. The client is given the server's own process id (so `pg_backend_pid()`,
//! BackendKeyData and the pid in a NotificationResponse agree, and `pg_terminate_backend` of
//! that pid ends this session's backend) with a secret the gateway makes. A CancelRequest
//! carrying both is mapped to the server's key and forwarded; the server's secret never leaves
//! the gateway, and the pid alone cancels nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::messages::{request_code, MessageBuilder};

/// Where a cancel for one session goes.
#[derive(Debug, Clone)]
struct UpstreamKey {
    address: String,
    pid: i32,
    secret: i32,
    /// Wakes a command of the session held for approval: a cancel ends its wait.
    held: Arc<Notify>,
}

/// The gateway's cancel keys, shared by all PostgreSQL sessions of a listener.
#[derive(Debug, Clone, Default)]
pub struct CancelRegistry {
    keys: Arc<Mutex<HashMap<(i32, i32), UpstreamKey>>>,
}

/// Removes a session's key when the session ends.
#[derive(Debug)]
pub struct CancelKeyGuard {
    registry: CancelRegistry,
    key: (i32, i32),
    held: Arc<Notify>,
}

impl CancelKeyGuard {
    /// The key as given to the client: (the server's process id, the gateway's secret).
    pub fn key(&self) -> (i32, i32) {
        self.key
    }

    /// Notified when the client cancels: a command held for approval stops waiting.
    pub fn held_cancel(&self) -> Arc<Notify> {
        self.held.clone()
    }
}

impl Drop for CancelKeyGuard {
    fn drop(&mut self) {
        if let Ok(mut keys) = self.registry.keys.lock() {
            keys.remove(&self.key);
        }
    }
}

impl CancelRegistry {
    /// Issues the client's key for a session whose upstream key is `(pid, secret)`: the same
    /// pid, a fresh secret. Two upstream servers may hand out the same pid; the secrets tell
    /// their sessions apart, and a pair already in use is never issued twice.
    pub fn register(&self, address: &str, pid: i32, secret: i32) -> Option<CancelKeyGuard> {
        let rng = SystemRandom::new();
        let mut keys = self.keys.lock().ok()?;
        for _ in 0..8 {
            let mut raw = [0u8; 4];
            rng.fill(&mut raw).ok()?;
            let key = (pid, i32::from_be_bytes(raw));
            if let std::collections::hash_map::Entry::Vacant(slot) = keys.entry(key) {
                let held = Arc::new(Notify::new());
                slot.insert(UpstreamKey {
                    address: address.to_owned(),
                    pid,
                    secret,
                    held: held.clone(),
                });
                return Some(CancelKeyGuard {
                    registry: self.clone(),
                    key,
                    held,
                });
            }
        }
        None
    }

    /// Forwards a client's CancelRequest upstream if the key is one of ours; unknown keys are
    /// ignored, as PostgreSQL does, so a cancel reveals nothing.
    pub async fn cancel(&self, pid: i32, secret: i32) {
        let target = self
            .keys
            .lock()
            .ok()
            .and_then(|keys| keys.get(&(pid, secret)).cloned());
        let Some(target) = target else {
            tracing::debug!("cancel request with an unknown key ignored");
            return;
        };
        // A command held for approval is not on the server yet: its wait ends here.
        target.held.notify_waiters();
        let request = MessageBuilder::untagged()
            .i32(request_code::CANCEL)
            .i32(target.pid)
            .i32(target.secret)
            .finish();
        let send = async {
            let mut stream = TcpStream::connect(&target.address).await?;
            stream.write_all(&request).await?;
            stream.shutdown().await
        };
        match tokio::time::timeout(Duration::from_secs(5), send).await {
            Ok(Ok(())) => tracing::info!(upstream = %target.address, "cancel request forwarded"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cancel request could not be forwarded"),
            Err(_) => tracing::warn!("cancel request timed out"),
        }
    }
}
