//! The in-memory store double the crates' tests share (feature `testing`): the core's store
//! traits over vectors and maps, keeping what was written so a test can look at it. The store
//! itself is exercised end to end elsewhere; these tests are about what is handed to it.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;

use crate::connection::{ConnectionSpec, Protocol, UpstreamTls};
use crate::error::StoreError;
use crate::events::{
    CommandCompletion, CommandRecord, SessionEnd, SessionId, SessionInfo, TerminalEvent,
};
use crate::gateway::{Credential, Gateway, GatewayParts, OpenRequest};
use crate::identity::{Identity, TokenHash, TokenId, TokenRecord};
use crate::store::{AuditSink, Receipt, RecordingEvent, RecordingSink, TokenRegistry};

/// What the double holds and what it was given.
#[derive(Default)]
pub struct MemoryStore {
    /// Tokens by hash.
    pub tokens: Mutex<HashMap<TokenHash, TokenRecord>>,
    /// Registered SSH keys by fingerprint.
    pub keys: Mutex<HashMap<String, TokenRecord>>,
    /// If set, any token unknown to [`Self::tokens`] is taken as this identity's.
    pub any_token: Mutex<Option<Identity>>,
    /// Fingerprints looked up, in order.
    pub key_lookups: Mutex<Vec<String>>,
    /// Sessions opened (refused attempts included).
    pub opened: Mutex<Vec<SessionInfo>>,
    /// Sessions closed.
    pub closed: Mutex<Vec<SessionEnd>>,
    /// Commands admitted.
    pub admitted: Mutex<Vec<CommandRecord>>,
    /// Commands finished.
    pub finished: Mutex<Vec<CommandCompletion>>,
    /// Recording events.
    pub recorded: Mutex<Vec<RecordingEvent>>,
    /// Terminal events.
    pub terminal: Mutex<Vec<TerminalEvent>>,
}

/// A receipt already resolved: the write is "durable".
pub fn done() -> Receipt {
    let (tx, rx) = Receipt::channel();
    let _ = tx.send(Ok(()));
    rx
}

/// A live token record of `name` in `groups`.
pub fn token_record(id: &str, name: &str, groups: &[&str]) -> TokenRecord {
    TokenRecord {
        id: TokenId(id.into()),
        identity: Identity {
            name: name.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        },
        connections: vec![],
        created_at: SystemTime::now(),
        expires_at: None,
        revoked_at: None,
        created_by: "test".into(),
    }
}

/// A connection `name` of `protocol` open to `groups`, with every option off.
pub fn connection(name: &str, protocol: Protocol, groups: &[&str]) -> ConnectionSpec {
    ConnectionSpec {
        name: name.into(),
        protocol,
        address: "127.0.0.1:1".into(),
        database: None,
        username: "u".into(),
        password: None,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        tls: UpstreamTls::Disable,
        tls_ca: None,
        local_infile: false,
        startup_options: false,
        private_key: None,
        host_key: None,
        port_forwarding: false,
        upload_copy_max_bytes: 0,
    }
}

impl MemoryStore {
    /// A store that takes any token as `name`'s, in `groups`.
    pub fn accepting_any_token(name: &str, groups: &[&str]) -> Self {
        let store = Self::default();
        *store.any_token.lock().unwrap() = Some(token_record("tok_test", name, groups).identity);
        store
    }

    /// The parts of a gateway over this store fronting `connection`, with no rules, masks or
    /// approvals (a test changes what it needs).
    pub fn parts(self: &Arc<Self>, connection: ConnectionSpec) -> GatewayParts {
        GatewayParts {
            connections: vec![connection],
            tokens: self.clone(),
            audit: self.clone(),
            recordings: self.clone(),
            rules: Default::default(),
            approvals: Arc::new(crate::approval::NoApprovals),
            oidc: Default::default(),
            masks: Default::default(),
        }
    }

    /// The notes recorded (`RecordingEvent::Notice`), in order.
    pub fn notes(&self) -> Vec<String> {
        self.recorded
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                RecordingEvent::Notice { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Opens a session of `protocol` on `gateway`'s connection `connection` with any token.
pub async fn open(gateway: &Gateway, connection: &str, protocol: Protocol) -> crate::Session {
    gateway
        .open(OpenRequest {
            connection,
            credential: Credential::Token("gh_x"),
            claimed_user: "u",
            settings: &[],
            client_addr: "127.0.0.1:9".parse().unwrap(),
            protocol,
        })
        .await
        .unwrap()
}

impl AuditSink for MemoryStore {
    fn session_opened(&self, info: &SessionInfo) -> Receipt {
        self.opened.lock().unwrap().push(info.clone());
        done()
    }
    fn command_admitted(&self, record: CommandRecord) -> Receipt {
        self.admitted.lock().unwrap().push(record);
        done()
    }
    fn command_finished(&self, completion: CommandCompletion) {
        self.finished.lock().unwrap().push(completion);
    }
    fn session_closed(&self, end: &SessionEnd) -> Receipt {
        self.closed.lock().unwrap().push(end.clone());
        done()
    }
}

impl RecordingSink for MemoryStore {
    fn append(&self, _: &SessionId, event: RecordingEvent) {
        self.recorded.lock().unwrap().push(event);
    }
    fn close(&self, _: &SessionId) {}
    fn terminal(&self, _: &SessionId, event: TerminalEvent) {
        self.terminal.lock().unwrap().push(event);
    }
}

#[async_trait]
impl TokenRegistry for MemoryStore {
    async fn find_by_hash(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        if let Some(record) = self.tokens.lock().unwrap().get(hash) {
            return Ok(Some(record.clone()));
        }
        Ok(self.any_token.lock().unwrap().clone().map(|identity| {
            let mut record = token_record("tok_test", &identity.name, &[]);
            record.identity = identity;
            record
        }))
    }
    async fn find_by_key(&self, fingerprint: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.key_lookups
            .lock()
            .unwrap()
            .push(fingerprint.to_owned());
        Ok(self.keys.lock().unwrap().get(fingerprint).cloned())
    }
    async fn revoked_since(&self, _: SystemTime) -> Result<Vec<(TokenId, SystemTime)>, StoreError> {
        Ok(vec![])
    }
}
