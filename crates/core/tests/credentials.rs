//! `Gateway::open` with each kind of credential, over an in-memory registry that keeps tokens
//! and keys apart as the store does: a key opens a session like a token, is refused (and the
//! refusal recorded) when revoked, expired or unknown, and a password is never taken as a key.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gatehouse_core::testing::{connection, token_record, MemoryStore};
use gatehouse_core::{
    Credential, EndReason, Gateway, OpenRequest, Protocol, Refusal, Session, TokenHash, TokenId,
    TokenRecord,
};

const KEY: &str = "SHA256:2TGVr39c88cuJae2B/zXeB10cgF90VV3k6vy8ARxqlE";
const REVOKED_KEY: &str = "SHA256:HijGrf++ZgWQ8/ganc1/FYMYHFlJX1f5rvQlejZzScA";
const EXPIRED_KEY: &str = "SHA256:El8AeffyFtKFfn25e1Q+qUPC9BrlbVwyMtk+acNaqUQ";
const SCOPED_KEY: &str = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const UNKNOWN_KEY: &str = "SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
const TOKEN: &str = "gh_secret";

fn record(id: &str, name: &str, edit: impl FnOnce(&mut TokenRecord)) -> TokenRecord {
    let mut r = token_record(id, name, &["ops"]);
    edit(&mut r);
    r
}

fn gateway() -> (Gateway, Arc<MemoryStore>) {
    let memory = MemoryStore::default();
    memory
        .tokens
        .lock()
        .unwrap()
        .insert(TokenHash::of(TOKEN), record("tok_1", "job", |_| {}));
    let keys = [
        (KEY, record("key_1", "alice", |_| {})),
        (
            REVOKED_KEY,
            record("key_2", "bob", |r| r.revoked_at = Some(SystemTime::now())),
        ),
        (
            EXPIRED_KEY,
            record("key_3", "carol", |r| {
                r.expires_at = Some(SystemTime::now() - Duration::from_secs(1))
            }),
        ),
        (
            SCOPED_KEY,
            record("key_4", "dave", |r| {
                r.connections = vec!["elsewhere".into()]
            }),
        ),
    ];
    memory
        .keys
        .lock()
        .unwrap()
        .extend(keys.map(|(k, r)| (k.to_owned(), r)));
    let memory = Arc::new(memory);
    let gateway = Gateway::new(memory.parts(connection("box", Protocol::Ssh, &["ops"]))).unwrap();
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
fn last_refusal(memory: &MemoryStore) -> (String, String) {
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
