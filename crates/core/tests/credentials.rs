//! `Gateway::open` with each kind of credential, over an in-memory registry that keeps tokens
//! and keys apart as the store does: a key opens a session like a token, is refused (and the
//! refusal recorded) when revoked, expired or unknown, and a password is never taken as a key.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use gatehouse_core::store::{AuditSink, Receipt, RecordingEvent, RecordingSink, TokenRegistry};
use gatehouse_core::{
    CommandCompletion, CommandRecord, ConnectionSpec, Credential, EndReason, Gateway, GatewayParts,
    Identity, OpenRequest, Protocol, Refusal, Session, SessionEnd, SessionId, SessionInfo,
    StoreError, TokenHash, TokenId, TokenRecord, UpstreamTls,
};

const KEY: &str = "SHA256:2TGVr39c88cuJae2B/zXeB10cgF90VV3k6vy8ARxqlE";
const REVOKED_KEY: &str = "SHA256:HijGrf++ZgWQ8/ganc1/FYMYHFlJX1f5rvQlejZzScA";
const EXPIRED_KEY: &str = "SHA256:El8AeffyFtKFfn25e1Q+qUPC9BrlbVwyMtk+acNaqUQ";
const SCOPED_KEY: &str = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const UNKNOWN_KEY: &str = "SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
const TOKEN: &str = "gh_secret";

#[derive(Default)]
struct Memory {
    tokens: HashMap<TokenHash, TokenRecord>,
    keys: HashMap<String, TokenRecord>,
    key_lookups: Mutex<Vec<String>>,
    opened: Mutex<Vec<SessionInfo>>,
    closed: Mutex<Vec<SessionEnd>>,
}

fn done() -> Receipt {
    let (tx, rx) = Receipt::channel();
    let _ = tx.send(Ok(()));
    rx
}

impl AuditSink for Memory {
    fn session_opened(&self, info: &SessionInfo) -> Receipt {
        self.opened.lock().unwrap().push(info.clone());
        done()
    }
    fn command_admitted(&self, _: CommandRecord) -> Receipt {
        done()
    }
    fn command_finished(&self, _: CommandCompletion) {}
    fn session_closed(&self, end: &SessionEnd) -> Receipt {
        self.closed.lock().unwrap().push(end.clone());
        done()
    }
}

impl RecordingSink for Memory {
    fn append(&self, _: &SessionId, _: RecordingEvent) {}
    fn close(&self, _: &SessionId) {}
}

#[async_trait]
impl TokenRegistry for Memory {
    async fn find_by_hash(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.tokens.get(hash).cloned())
    }
    async fn find_by_key(&self, fingerprint: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.key_lookups
            .lock()
            .unwrap()
            .push(fingerprint.to_owned());
        Ok(self.keys.get(fingerprint).cloned())
    }
    async fn revoked_since(&self, _: SystemTime) -> Result<Vec<(TokenId, SystemTime)>, StoreError> {
        Ok(vec![])
    }
}

fn record(id: &str, name: &str, edit: impl FnOnce(&mut TokenRecord)) -> TokenRecord {
    let mut r = TokenRecord {
        id: TokenId(id.into()),
        identity: Identity {
            name: name.into(),
            groups: vec!["ops".into()],
        },
        connections: vec![],
        created_at: SystemTime::now(),
        expires_at: None,
        revoked_at: None,
        created_by: "test".into(),
    };
    edit(&mut r);
    r
}

fn gateway() -> (Gateway, Arc<Memory>) {
    let mut memory = Memory::default();
    memory
        .tokens
        .insert(TokenHash::of(TOKEN), record("tok_1", "job", |_| {}));
    memory
        .keys
        .insert(KEY.into(), record("key_1", "alice", |_| {}));
    memory.keys.insert(
        REVOKED_KEY.into(),
        record("key_2", "bob", |r| r.revoked_at = Some(SystemTime::now())),
    );
    memory.keys.insert(
        EXPIRED_KEY.into(),
        record("key_3", "carol", |r| {
            r.expires_at = Some(SystemTime::now() - Duration::from_secs(1))
        }),
    );
    memory.keys.insert(
        SCOPED_KEY.into(),
        record("key_4", "dave", |r| {
            r.connections = vec!["elsewhere".into()]
        }),
    );
    let memory = Arc::new(memory);
    let gateway = Gateway::new(GatewayParts {
        connections: vec![ConnectionSpec {
            name: "box".into(),
            protocol: Protocol::Ssh,
            address: "127.0.0.1:1".into(),
            database: None,
            username: "u".into(),
            password: None,
            groups: vec!["ops".into()],
            tls: UpstreamTls::Disable,
            tls_ca: None,
            local_infile: false,
            startup_options: false,
            private_key: None,
            host_key: None,
            port_forwarding: false,
            upload_copy_max_bytes: 0,
        }],
        tokens: memory.clone(),
        audit: memory.clone(),
        recordings: memory.clone(),
        rules: Default::default(),
        approvals: Arc::new(gatehouse_core::approval::NoApprovals),
        oidc: Default::default(),
        masks: Default::default(),
    })
    .unwrap();
    (gateway, memory)
}

fn request(credential: Credential<'_>) -> OpenRequest<'_> {
    OpenRequest {
        connection: "box",
        credential,
        claimed_user: "whoever",
        settings: &[],
        client_addr: "127.0.0.1:9".parse().unwrap(),
        protocol: Protocol::Ssh,
    }
}

/// The refusal of an attempt that must fail.
fn refusal(opened: Result<Session, Refusal>) -> Refusal {
    match opened {
        Ok(s) => panic!("opened a session as {}", s.info().identity),
        Err(r) => r,
    }
}

/// The reason recorded for the last refused attempt, and the identity it names.
fn last_refusal(memory: &Memory) -> (String, String) {
    let reason = memory.closed.lock().unwrap().last().unwrap().reason.clone();
    let who = memory
        .opened
        .lock()
        .unwrap()
        .last()
        .unwrap()
        .identity
        .to_string();
    (reason, who)
}

#[tokio::test]
async fn a_registered_key_opens_a_session_as_its_identity() {
    let (gw, _) = gateway();
    let session = gw
        .open(request(Credential::PublicKey { fingerprint: KEY }))
        .await
        .unwrap();
    assert_eq!(session.info().token_id, TokenId("key_1".into()));
    assert_eq!(&*session.info().identity, "alice");
    assert_eq!(&*session.info().groups, &["ops".to_owned()]);
    // A token still works beside it.
    let session = gw.open(request(Credential::Token(TOKEN))).await.unwrap();
    assert_eq!(&*session.info().identity, "job");
}

#[tokio::test]
async fn a_password_spelling_a_fingerprint_is_never_the_key() {
    let (gw, memory) = gateway();
    let refused = gw.open(request(Credential::Token(KEY))).await;
    let refused = refusal(refused);
    assert!(matches!(refused, Refusal::BadToken), "{refused:?}");
    assert!(memory.key_lookups.lock().unwrap().is_empty());
    assert_eq!(last_refusal(&memory).0, "refused: unknown token");
    // Nor is a token's secret a key.
    let refused = gw
        .open(request(Credential::PublicKey { fingerprint: TOKEN }))
        .await;
    let refused = refusal(refused);
    assert!(matches!(refused, Refusal::BadToken), "{refused:?}");
}

#[tokio::test]
async fn revoked_expired_unknown_and_malformed_keys_are_refused_and_recorded() {
    let (gw, memory) = gateway();
    for (fingerprint, reason, who) in [
        (REVOKED_KEY, "refused: key key_2 revoked", "bob"),
        (EXPIRED_KEY, "refused: key key_3 expired", "carol"),
        (
            UNKNOWN_KEY,
            "refused: unknown key SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
            "-",
        ),
        ("SHA256:short", "refused: malformed key fingerprint", "-"),
    ] {
        let refused = gw
            .open(request(Credential::PublicKey { fingerprint }))
            .await;
        let refused = refusal(refused);
        assert!(matches!(refused, Refusal::BadToken), "{refused:?}");
        assert_eq!(last_refusal(&memory), (reason.into(), who.into()));
    }
    // The malformed one never reached the store.
    assert!(!memory
        .key_lookups
        .lock()
        .unwrap()
        .contains(&"SHA256:short".to_owned()));
}

#[tokio::test]
async fn a_key_is_held_to_its_connection_scope() {
    let (gw, memory) = gateway();
    let refused = gw
        .open(request(Credential::PublicKey {
            fingerprint: SCOPED_KEY,
        }))
        .await;
    let refused = refusal(refused);
    assert!(matches!(refused, Refusal::Forbidden(_)), "{refused:?}");
    assert_eq!(
        last_refusal(&memory),
        ("refused: connection not allowed".into(), "dave".into())
    );
}

#[tokio::test]
async fn revoking_a_key_ends_its_live_sessions() {
    let (gw, _) = gateway();
    let session = gw
        .open(request(Credential::PublicKey { fingerprint: KEY }))
        .await
        .unwrap();
    let token_session = gw.open(request(Credential::Token(TOKEN))).await.unwrap();
    gw.revoke([TokenId("key_1".into())]);
    let ended = tokio::time::timeout(Duration::from_secs(1), session.ended()).await;
    assert_eq!(ended.ok(), Some(EndReason::TokenRevoked));
    // Only the key's sessions.
    let other = tokio::time::timeout(Duration::from_millis(50), token_session.ended()).await;
    assert!(other.is_err());
}

#[tokio::test]
async fn offered_keys_are_checked_without_a_trace() {
    let (gw, memory) = gateway();
    // Registered keys go on to `open` even when no longer valid, so the refusal names who tried.
    for fingerprint in [KEY, REVOKED_KEY, EXPIRED_KEY] {
        assert!(gw.knows_key(fingerprint).await, "{fingerprint}");
    }
    for fingerprint in [UNKNOWN_KEY, "nonsense", TOKEN] {
        assert!(!gw.knows_key(fingerprint).await, "{fingerprint}");
    }
    assert!(memory.opened.lock().unwrap().is_empty());
    assert!(memory.closed.lock().unwrap().is_empty());
}

#[test]
fn a_token_never_shows_in_debug_output() {
    let shown = format!("{:?}", request(Credential::Token(TOKEN)));
    assert!(!shown.contains(TOKEN), "{shown}");
    let shown = format!("{:?}", Credential::PublicKey { fingerprint: KEY });
    assert!(shown.contains(KEY), "{shown}");
}
