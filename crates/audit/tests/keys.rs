//! SSH keys in the store: found by fingerprint (valid, revoked, expired, unknown), never
//! confused with tokens either way, one live registration per key, listed and registered with
//! the tokens, and an older store migrated with its tokens intact.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime};

use gatehouse_audit::db::params;
use gatehouse_audit::testing::{fresh_store, on_postgres};
use gatehouse_audit::{AuditError, CredentialKind, NewToken, Store};
use gatehouse_core::store::TokenRegistry;
use gatehouse_core::{TokenHash, TokenId};

const ED25519: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/ssh/ed25519.pub"
));
const ED25519_FP: &str = "SHA256:2TGVr39c88cuJae2B/zXeB10cgF90VV3k6vy8ARxqlE";
const RSA: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/ssh/rsa.pub"
));
const RSA_FP: &str = "SHA256:HijGrf++ZgWQ8/ganc1/FYMYHFlJX1f5rvQlejZzScA";
const ECDSA: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/ssh/ecdsa.pub"
));
const ECDSA_FP: &str = "SHA256:El8AeffyFtKFfn25e1Q+qUPC9BrlbVwyMtk+acNaqUQ";

fn grant(identity: &str, expires_at: Option<SystemTime>) -> NewToken {
    NewToken {
        identity: identity.into(),
        groups: vec!["ops".into()],
        connections: vec!["box".into()],
        expires_at,
        created_by: "test".into(),
    }
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh_store(dir.path()).unwrap();
    (dir, store)
}

#[tokio::test]
async fn keys_are_found_by_fingerprint_valid_revoked_expired_or_not_at_all() {
    let (_dir, store) = store();
    let alice = store.add_key(&grant("alice", None), ED25519).unwrap();
    assert!(alice.token.id.0.starts_with("key_"), "{:?}", alice.token.id);
    assert_eq!(alice.fingerprint, ED25519_FP);
    assert_eq!(alice.key_type(), "ssh-ed25519");
    assert_eq!(alice.public_key, ED25519.trim());

    let found = store.find_by_key(ED25519_FP).await.unwrap().unwrap();
    assert_eq!(found, alice.token);
    assert_eq!(found.identity.name, "alice");
    assert_eq!(found.identity.groups, vec!["ops".to_owned()]);
    assert_eq!(found.connections, vec!["box".to_owned()]);
    assert!(found.is_valid_at(SystemTime::now()));

    let past = SystemTime::now() - Duration::from_secs(60);
    let carol = store.add_key(&grant("carol", Some(past)), ECDSA).unwrap();
    let found = store.find_by_key(ECDSA_FP).await.unwrap().unwrap();
    assert_eq!(found.id, carol.token.id);
    assert!(!found.is_valid_at(SystemTime::now()), "expired");

    let before = SystemTime::now() - Duration::from_secs(1);
    store
        .revoke_credential(CredentialKind::SshKey, &alice.token.id.0, "test")
        .unwrap();
    let found = store.find_by_key(ED25519_FP).await.unwrap().unwrap();
    assert!(found.revoked_at.is_some());
    assert!(!found.is_valid_at(SystemTime::now()));
    // The revocation watch sees keys, so their live sessions end like a token's.
    let revoked = store.revoked_since(before).await.unwrap();
    assert!(revoked.iter().any(|(id, _)| *id == alice.token.id));

    assert!(store.find_by_key(RSA_FP).await.unwrap().is_none());
}

#[tokio::test]
async fn a_token_hash_never_matches_a_key_nor_a_fingerprint_a_token() {
    let (_dir, store) = store();
    let key = store.add_key(&grant("alice", None), ED25519).unwrap();
    let (token_id, secret) = store.create_token(&grant("job", None)).unwrap();

    // A password spelling the fingerprint, and the placeholder a key row keeps as its hash.
    for hash in [
        TokenHash::of(ED25519_FP),
        TokenHash(format!("ssh-key:{}", key.token.id)),
        TokenHash(ED25519_FP.into()),
    ] {
        assert!(
            store.find_by_hash(&hash).await.unwrap().is_none(),
            "{hash:?}"
        );
    }
    // The token's secret, its hash or its id as a fingerprint.
    for fingerprint in [secret.as_str(), &TokenHash::of(&secret).0, &token_id.0] {
        assert!(store.find_by_key(fingerprint).await.unwrap().is_none());
    }
    assert_eq!(
        store
            .find_by_hash(&TokenHash::of(&secret))
            .await
            .unwrap()
            .unwrap()
            .id,
        token_id
    );
}

#[test]
fn listings_and_revocations_keep_the_kinds_apart() {
    let (_dir, store) = store();
    assert_eq!(store.token_count().unwrap(), 0);
    let key = store.add_key(&grant("alice", None), ED25519).unwrap();
    // A store holding only keys still gets its first admin token from `serve`.
    assert_eq!(store.token_count().unwrap(), 0);
    let (token_id, _) = store.create_token(&grant("job", None)).unwrap();
    assert_eq!(store.token_count().unwrap(), 1);

    let tokens: Vec<TokenId> = store
        .list_tokens()
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(tokens, vec![token_id.clone()]);
    let keys = store.list_keys().unwrap();
    assert_eq!(keys, vec![key.clone()]);

    let not_found = |r: Result<(), AuditError>| match r {
        Err(AuditError::NotFound(m)) => m,
        other => panic!("{other:?}"),
    };
    let m = not_found(store.revoke_token(&key.token.id.0, "test"));
    assert!(m.contains("gatehouse token list"), "{m}");
    let m = not_found(store.revoke_credential(CredentialKind::SshKey, &token_id.0, "test"));
    assert!(m.contains("gatehouse key list"), "{m}");
    store
        .revoke_credential(CredentialKind::SshKey, &key.token.id.0, "test")
        .unwrap();
    // Again: already revoked is fine.
    store
        .revoke_credential(CredentialKind::SshKey, &key.token.id.0, "test")
        .unwrap();
    assert!(store.list_keys().unwrap()[0].token.revoked_at.is_some());
    assert!(store.list_tokens().unwrap()[0].revoked_at.is_none());

    let register = store.token_register().unwrap();
    let kinds: Vec<(&str, &str, Option<&str>)> = register
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap(),
                r["state"].as_str().unwrap(),
                r["fingerprint"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("ssh-key", "revoked", Some(ED25519_FP)),
            ("token", "active", None)
        ]
    );
}

#[tokio::test]
async fn a_key_has_one_live_registration_and_may_be_registered_again_once_removed() {
    let (_dir, store) = store();
    let first = store.add_key(&grant("alice", None), ED25519).unwrap();
    // The same key with another comment is the same key.
    let b64 = ED25519.split_whitespace().nth(1).unwrap();
    match store.add_key(&grant("mallory", None), &format!("ssh-ed25519 {b64} other")) {
        Err(AuditError::Conflict(m)) => {
            assert!(m.contains(&first.token.id.0) && m.contains("alice"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    // The database holds to it too, whoever writes (a race between two CLI commands).
    let mut conn = store.connect().unwrap();
    let duplicate = conn.execute(
        "INSERT INTO tokens (id, hash, identity, groups_json, connections_json, created_at,
            created_by, kind, fingerprint, public_key)
         VALUES ('key_x', 'ssh-key:key_x', 'mallory', '[]', '[]', 0, 't', 'ssh-key', ?1, '')",
        params![ED25519_FP],
    );
    assert!(duplicate.is_err());
    store
        .revoke_credential(CredentialKind::SshKey, &first.token.id.0, "test")
        .unwrap();
    let second = store.add_key(&grant("alice2", None), ED25519).unwrap();
    assert_ne!(second.token.id, first.token.id);
    let found = store.find_by_key(ED25519_FP).await.unwrap().unwrap();
    assert_eq!(found.id, second.token.id, "the live registration wins");
    assert_eq!(store.list_keys().unwrap().len(), 2);
}

#[test]
fn what_is_not_a_public_key_is_refused_and_not_stored() {
    let (dir, store) = store();
    let private = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
    for line in [
        private,
        "ssh-ed25519 AAAA",
        "",
        RSA.replace("ssh-rsa", "ssh-ed25519").as_str(),
    ] {
        match store.add_key(&grant("alice", None), line) {
            Err(AuditError::PublicKey(_)) => {}
            other => panic!("{line:?}: {other:?}"),
        }
    }
    assert!(store.list_keys().unwrap().is_empty());
    let rows: i64 = store
        .read(|db| Ok(db.query_row("SELECT count(*) FROM tokens", params![], |r| r.get(0))?))
        .unwrap();
    assert_eq!(rows, 0, "a refused key left a row");
    if !on_postgres() {
        let raw = std::fs::read(dir.path().join("gatehouse.db")).unwrap();
        let wal = std::fs::read(dir.path().join("gatehouse.db-wal")).unwrap_or_default();
        let needle = b"b3BlbnNzaC1rZXktdjEAAAAA";
        let contains = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        assert!(
            !contains(&raw) && !contains(&wal),
            "the private key was stored"
        );
    }
}

/// The `tokens` table as released before keys.
const OLD_TOKENS: &str = "CREATE TABLE tokens (
    id            TEXT PRIMARY KEY,
    hash          TEXT NOT NULL UNIQUE,
    identity      TEXT NOT NULL,
    groups_json   TEXT NOT NULL,
    connections_json TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER,
    revoked_by    TEXT
);
CREATE INDEX tokens_revoked_at ON tokens(revoked_at);
INSERT INTO tokens VALUES ('tok_old', 'HASH', 'legacy', '[\"batch\"]', '[]', 1700000000000000,
    'bootstrap', NULL, NULL, NULL);";

/// A SQLite file made by an older release (PostgreSQL stores start with today's schema).
#[tokio::test]
async fn an_older_store_is_migrated_with_its_tokens_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let hash = TokenHash::of("gh_old");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&OLD_TOKENS.replace("HASH", &hash.0))
            .unwrap();
    }
    let store = Store::open_sqlite(&path).unwrap();
    let old = store.find_by_hash(&hash).await.unwrap().unwrap();
    assert_eq!(
        (old.id.0.as_str(), old.identity.name.as_str()),
        ("tok_old", "legacy")
    );
    assert_eq!(store.list_tokens().unwrap().len(), 1);
    assert_eq!(store.token_count().unwrap(), 1);
    assert_eq!(store.token_register().unwrap()[0]["kind"], "token");

    let key = store.add_key(&grant("alice", None), RSA).unwrap();
    assert_eq!(key.key_type(), "ssh-rsa");
    assert_eq!(
        store.find_by_key(RSA_FP).await.unwrap().unwrap().id,
        key.token.id
    );
    // Opening again (another process, the next start) migrates nothing twice.
    drop(store);
    let store = Store::open_sqlite(&path).unwrap();
    assert_eq!(store.list_keys().unwrap().len(), 1);
}
