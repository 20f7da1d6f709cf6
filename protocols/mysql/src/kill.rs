//! `KILL [QUERY] id` across gateway sessions. A client learns the gateway's connection id
//! (from the greeting), not the server's, so the mysql CLI's Ctrl-C — a second connection
//! sending `KILL QUERY id` — names a gateway id. The registry maps it to the upstream thread
//! (the statement is rewritten) and ends a command held for approval. Gateway ids start at
//! [`FIRST_ID`], far above the ids servers hand out, so the two cannot be confused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The first gateway connection id.
pub const FIRST_ID: u32 = 0x4000_0000;

/// A live gateway session that a `KILL` may name.
#[derive(Debug, Clone)]
pub struct KillTarget {
    /// Who runs it: only the same identity may kill it.
    pub identity: Arc<str>,
    /// Its upstream server.
    pub address: String,
    /// The server's id of its upstream connection.
    pub thread_id: u32,
    /// Woken to end a command held for approval.
    pub held: Arc<Notify>,
}

/// The live sessions of a listener by gateway connection id.
#[derive(Debug, Clone, Default)]
pub struct KillRegistry {
    targets: Arc<Mutex<HashMap<u32, KillTarget>>>,
}

/// Keeps a session in the registry; dropping it removes the session.
#[derive(Debug)]
pub struct Registration {
    registry: KillRegistry,
    id: u32,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut t) = self.registry.targets.lock() {
            t.remove(&self.id);
        }
    }
}

impl KillRegistry {
    /// Registers a session under its gateway id.
    pub fn register(&self, id: u32, target: KillTarget) -> Registration {
        if let Ok(mut t) = self.targets.lock() {
            t.insert(id, target);
        }
        Registration {
            registry: self.clone(),
            id,
        }
    }

    /// The session a gateway id names, if it is live.
    pub fn lookup(&self, id: u32) -> Option<KillTarget> {
        self.targets.lock().ok()?.get(&id).cloned()
    }
}

/// A `KILL` statement as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kill {
    /// `KILL QUERY` (the statement only) rather than the connection.
    pub query_only: bool,
    /// The id it names.
    pub id: u64,
}

impl Kill {
    /// Reads `KILL [HARD|SOFT] [QUERY|CONNECTION] id` (case-insensitive, optional `;`).
    pub fn parse(text: &str) -> Option<Kill> {
        let mut words = text.trim().trim_end_matches(';').split_ascii_whitespace();
        if !words.next()?.eq_ignore_ascii_case("kill") {
            return None;
        }
        let mut query_only = false;
        for word in words {
            if word.eq_ignore_ascii_case("hard")
                || word.eq_ignore_ascii_case("soft")
                || word.eq_ignore_ascii_case("connection")
            {
                continue;
            }
            if word.eq_ignore_ascii_case("query") {
                query_only = true;
                continue;
            }
            return word.parse().ok().map(|id| Kill { query_only, id });
        }
        None
    }

    /// The statement that kills `thread` upstream.
    pub fn upstream_text(&self, thread: u32) -> String {
        if self.query_only {
            format!("KILL QUERY {thread}")
        } else {
            format!("KILL CONNECTION {thread}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_statements_are_read() {
        assert_eq!(
            Kill::parse("KILL QUERY 1073741825"),
            Some(Kill {
                query_only: true,
                id: 1_073_741_825
            })
        );
        assert_eq!(
            Kill::parse(" kill  connection 7;"),
            Some(Kill {
                query_only: false,
                id: 7
            })
        );
        assert_eq!(Kill::parse("KILL USER bob"), None);
        assert_eq!(Kill::parse("SELECT 1"), None);
        assert_eq!(Kill::parse("KILL"), None);
    }
}
