//! OIDC JWT verification: tokens minted with `jsonwebtoken` from the fixture keys in
//! `fixtures/idp` (and fresh keys), JWKS served from files and from loopback HTTP(S) servers.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gatehouse_core::oidc::{JwtAlgorithm, OidcError, OidcSpec, OidcVerifier, VerifiedJwt};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ISSUER: &str = "https://idp.example.test";
const AUDIENCE: &str = "gatehouse";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> PathBuf {
    repo_root().join("fixtures/idp").join(name)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The fixture issuer, its `jwks_file` relative to the repository root.
fn verifier_with(edit: impl FnOnce(&mut OidcSpec)) -> OidcVerifier {
    let mut spec = OidcSpec::with_jwks_file(ISSUER, AUDIENCE, "fixtures/idp/jwks.json");
    edit(&mut spec);
    OidcVerifier::new(vec![spec], &repo_root()).unwrap()
}

fn verifier() -> OidcVerifier {
    verifier_with(|_| {})
}

fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "groups": ["dba", "batch"],
        "iat": now(),
        "exp": now() + 300,
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

fn fixture_key(alg: Algorithm) -> EncodingKey {
    match alg {
        Algorithm::RS256 => {
            EncodingKey::from_rsa_pem(&std::fs::read(fixture("rs256.pem")).unwrap()).unwrap()
        }
        Algorithm::ES256 => {
            EncodingKey::from_ec_pem(&std::fs::read(fixture("es256.pem")).unwrap()).unwrap()
        }
        Algorithm::EdDSA => {
            EncodingKey::from_ed_pem(&std::fs::read(fixture("ed25519.pem")).unwrap()).unwrap()
        }
        other => panic!("no fixture key for {other:?}"),
    }
}

fn mint_with(key: &EncodingKey, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, key).unwrap()
}

/// A token signed with the fixture key for `alg`.
fn mint(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    mint_with(&fixture_key(alg), alg, kid, claims)
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token assembled by hand: any header, any claims, any signature.
fn handmade(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

/// A fresh Ed25519 key: its signing key and its JWK.
fn fresh_ed25519(kid: &str) -> (EncodingKey, Value) {
    let pair = Ed25519KeyPair::generate().unwrap();
    let key = EncodingKey::from_ed_der(pair.to_pkcs8v1().unwrap().as_ref());
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": kid,
                     "x": b64(pair.public_key().as_ref())});
    (key, jwk)
}

fn jwks(keys: &[&Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// A directory of its own under the system's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gatehouse-oidc-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn refused(verifier: &OidcVerifier, token: &str) -> OidcError {
    match verifier.verify(token).await {
        Ok(ok) => panic!("token accepted: {ok:?}"),
        Err(e) => e,
    }
}

#[test]
fn verifier_and_its_future_are_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}
    let v = verifier();
    send_sync(&v);
    send(v.verify("x"));
    send(v.warm_up());
}

#[tokio::test]
async fn a_valid_token_of_each_algorithm_opens() {
    let v = verifier();
    for (alg, kid) in [
        (Algorithm::RS256, "rs1"),
        (Algorithm::ES256, "es1"),
        (Algorithm::EdDSA, "ed1"),
    ] {
        let exp = now() + 300;
        let token = mint(alg, Some(kid), &with(claims(), "exp", json!(exp)));
        assert!(OidcVerifier::looks_like_jwt(&token));
        let ok: VerifiedJwt = v.verify(&token).await.unwrap();
        assert_eq!(ok.subject, "alice");
        assert_eq!(ok.groups, ["dba", "batch"]);
        assert_eq!(ok.issuer, ISSUER);
        assert_eq!(
            ok.expires_at,
            Some(UNIX_EPOCH + Duration::from_secs(exp as u64))
        );
        assert!(ok.token_id.starts_with("jwt_"), "{}", ok.token_id);
        assert_eq!(ok.token_id.len(), 16);
        assert!(
            !token.contains(&ok.token_id[4..]),
            "the id is not part of the token"
        );
        // Stable for one token, different for another.
        assert_eq!(v.verify(&token).await.unwrap().token_id, ok.token_id);
        let other = mint(alg, Some(kid), &with(claims(), "sub", json!("bob")));
        assert_ne!(v.verify(&other).await.unwrap().token_id, ok.token_id);
    }
}

#[tokio::test]
async fn claim_shapes_that_are_accepted() {
    let v = verifier();
    let ok = |c: Value| mint(Algorithm::EdDSA, Some("ed1"), &c);
    // aud as an array that lists the audience.
    let t = ok(with(claims(), "aud", json!(["other", AUDIENCE])));
    assert_eq!(v.verify(&t).await.unwrap().subject, "alice");
    // One group as a plain string; no groups claim at all.
    let t = ok(with(claims(), "groups", json!("dba")));
    assert_eq!(v.verify(&t).await.unwrap().groups, ["dba"]);
    let t = ok(without(claims(), "groups"));
    assert!(v.verify(&t).await.unwrap().groups.is_empty());
    // nbf a little in the future is within the 30 s leeway; fractional dates are fine.
    let t = ok(with(claims(), "nbf", json!(now() + 10)));
    assert!(v.verify(&t).await.is_ok());
    let t = ok(with(claims(), "exp", json!(now() as f64 + 60.5)));
    assert!(v.verify(&t).await.is_ok());
    // No kid: the one key of the right type is used.
    let t = mint(Algorithm::ES256, None, &claims());
    assert!(v.verify(&t).await.is_ok());
}

#[tokio::test]
async fn groups_from_a_nested_or_renamed_claim() {
    let v = verifier_with(|s| s.groups_claim = "realm_access.roles".to_owned());
    let c = with(claims(), "realm_access", json!({"roles": ["ops", "dba"]}));
    let t = mint(Algorithm::RS256, Some("rs1"), &c);
    assert_eq!(v.verify(&t).await.unwrap().groups, ["ops", "dba"]);
    // A top-level claim with dots in its name wins over the path.
    let v = verifier_with(|s| s.groups_claim = "https://example.test/groups".to_owned());
    let c = with(claims(), "https://example.test/groups", json!(["x"]));
    let t = mint(Algorithm::RS256, Some("rs1"), &c);
    assert_eq!(v.verify(&t).await.unwrap().groups, ["x"]);
    // Anything but strings is refused, not half-read.
    let v = verifier();
    let t = mint(
        Algorithm::RS256,
        Some("rs1"),
        &with(claims(), "groups", json!(["ok", 7])),
    );
    let e = refused(&v, &t).await;
    assert!(
        matches!(e, OidcError::BadClaim { ref claim, .. } if claim == "groups"),
        "{e}"
    );
    let t = mint(
        Algorithm::RS256,
        Some("rs1"),
        &with(claims(), "groups", json!({"a": 1})),
    );
    assert!(matches!(refused(&v, &t).await, OidcError::BadClaim { .. }));
}

#[tokio::test]
async fn wrong_claims_are_refused_precisely() {
    let v = verifier();
    let t = |c: Value| mint(Algorithm::EdDSA, Some("ed1"), &c);

    let e = refused(&v, &t(with(claims(), "iss", json!("https://evil.test")))).await;
    assert!(
        matches!(e, OidcError::UnknownIssuer(ref i) if i == "https://evil.test"),
        "{e}"
    );
    assert!(e.to_string().contains("https://evil.test"), "{e}");
    let e = refused(&v, &t(without(claims(), "iss"))).await;
    assert!(matches!(e, OidcError::MissingIssuer), "{e}");

    let e = refused(&v, &t(with(claims(), "aud", json!("someone-else")))).await;
    assert!(matches!(e, OidcError::WrongAudience { .. }), "{e}");
    assert!(e.to_string().contains("someone-else"), "{e}");
    let e = refused(&v, &t(with(claims(), "aud", json!(["a", "b"])))).await;
    assert!(matches!(e, OidcError::WrongAudience { .. }), "{e}");
    let e = refused(&v, &t(without(claims(), "aud"))).await;
    assert!(matches!(e, OidcError::MissingClaim("aud")), "{e}");

    let e = refused(&v, &t(with(claims(), "exp", json!(now() - 10)))).await;
    assert!(
        matches!(e, OidcError::Expired { ago_secs, .. } if ago_secs >= 10),
        "{e}"
    );
    assert!(e.to_string().contains("expired"), "{e}");
    let e = refused(&v, &t(without(claims(), "exp"))).await;
    assert!(matches!(e, OidcError::MissingClaim("exp")), "{e}");
    let e = refused(&v, &t(with(claims(), "exp", json!("tomorrow")))).await;
    assert!(matches!(e, OidcError::BadClaim { .. }), "{e}");

    let e = refused(&v, &t(with(claims(), "nbf", json!(now() + 120)))).await;
    assert!(matches!(e, OidcError::NotYetValid { .. }), "{e}");

    let e = refused(&v, &t(without(claims(), "sub"))).await;
    assert!(matches!(e, OidcError::MissingClaim("sub")), "{e}");
    let e = refused(&v, &t(with(claims(), "sub", json!("")))).await;
    assert!(matches!(e, OidcError::MissingClaim("sub")), "{e}");
    let e = refused(&v, &t(with(claims(), "sub", json!(42)))).await;
    assert!(matches!(e, OidcError::BadClaim { .. }), "{e}");
}

#[tokio::test]
async fn unknown_key_ids_and_wrong_keys_are_refused() {
    let v = verifier();
    let e = refused(&v, &mint(Algorithm::RS256, Some("nope"), &claims())).await;
    assert!(
        matches!(e, OidcError::UnknownKeyId { ref kid, .. } if kid == "nope"),
        "{e}"
    );
    assert!(e.to_string().contains("\"nope\""), "{e}");

    // The right kid, the wrong key.
    let (stranger, _) = fresh_ed25519("ed1");
    let e = refused(
        &v,
        &mint_with(&stranger, Algorithm::EdDSA, Some("ed1"), &claims()),
    )
    .await;
    assert!(matches!(e, OidcError::BadSignature { .. }), "{e}");

    // An EC signature presented under the RSA key's id.
    let e = refused(&v, &mint(Algorithm::ES256, Some("rs1"), &claims())).await;
    assert!(matches!(e, OidcError::KeyMismatch { .. }), "{e}");
    assert!(e.to_string().contains("RSA"), "{e}");
}

#[tokio::test]
async fn tampered_payloads_are_refused() {
    let v = verifier();
    for (alg, kid) in [
        (Algorithm::RS256, "rs1"),
        (Algorithm::ES256, "es1"),
        (Algorithm::EdDSA, "ed1"),
    ] {
        let token = mint(alg, Some(kid), &claims());
        let (header, rest) = token.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let forged = with(claims(), "groups", json!(["admin"]));
        let tampered = format!(
            "{header}.{}.{signature}",
            b64(forged.to_string().as_bytes())
        );
        let e = refused(&v, &tampered).await;
        assert!(matches!(e, OidcError::BadSignature { .. }), "{alg:?}: {e}");
        // A flipped signature bit fails the same way.
        let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
        sig[0] ^= 1;
        let flipped = format!("{header}.{}.{}", rest.split_once('.').unwrap().0, b64(&sig));
        assert!(matches!(
            refused(&v, &flipped).await,
            OidcError::BadSignature { .. }
        ));
    }
}

#[tokio::test]
async fn unsigned_and_shared_secret_tokens_are_always_refused() {
    let v = verifier();
    for alg in ["none", "None", "NONE"] {
        let token = handmade(&json!({"alg": alg, "typ": "JWT"}), &claims(), b"");
        assert!(OidcVerifier::looks_like_jwt(&token), "{token}");
        let e = refused(&v, &token).await;
        assert!(matches!(e, OidcError::AlgorithmNone), "{e}");
    }
    // "none" with some bytes after the last dot is no better.
    let token = handmade(&json!({"alg": "none"}), &claims(), b"x");
    assert!(matches!(
        refused(&v, &token).await,
        OidcError::AlgorithmNone
    ));

    // The classic confusion: HS256 "signed" with the issuer's public key as the secret.
    let public_pem = std::fs::read(fixture("rs256.pub.pem")).unwrap();
    let jwks: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("jwks.json")).unwrap()).unwrap();
    let n = jwks["keys"][0]["n"].as_str().unwrap().as_bytes().to_vec();
    for secret in [public_pem, n] {
        let key = EncodingKey::from_secret(&secret);
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let token = mint_with(&key, alg, Some("rs1"), &claims());
            let e = refused(&v, &token).await;
            assert!(matches!(e, OidcError::SymmetricAlgorithm(_)), "{e}");
        }
    }

    // Supported by jsonwebtoken, not by the gateway.
    let token = handmade(&json!({"alg": "PS256", "kid": "rs1"}), &claims(), b"sig");
    assert!(matches!(
        refused(&v, &token).await,
        OidcError::UnsupportedAlgorithm(_)
    ));
}

#[tokio::test]
async fn algorithms_outside_the_allow_list_are_refused() {
    let v = verifier_with(|s| s.algorithms = vec![JwtAlgorithm::EdDsa]);
    assert!(v
        .verify(&mint(Algorithm::EdDSA, Some("ed1"), &claims()))
        .await
        .is_ok());
    let e = refused(&v, &mint(Algorithm::RS256, Some("rs1"), &claims())).await;
    assert!(matches!(e, OidcError::AlgorithmNotAllowed { .. }), "{e}");
    assert!(e.to_string().contains("RS256"), "{e}");
}

#[tokio::test]
async fn garbage_is_refused_without_panicking() {
    let v = verifier();
    let good = mint(Algorithm::EdDSA, Some("ed1"), &claims());
    let (header, _) = good.split_once('.').unwrap();
    let long = format!("{header}.{}.sig", "A".repeat(70_000));
    let cases = [
        String::new(),
        "garbage".to_owned(),
        "gh_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG".to_owned(),
        "a.b.c".to_owned(),
        "...".to_owned(),
        "a.b.c.d".to_owned(),
        format!("{header}.!!!.abc"),
        format!("{header}.e30.abc"),
        format!("{header}.{}.abc", b64(b"[1,2,3]")),
        format!("{header}.{}.abc", b64(b"{\"iss\":")),
        format!("{}.e30.abc", b64(b"not json")),
        format!("{}.e30.abc", b64(b"{}")),
        format!("{}.e30.abc", b64(b"{\"alg\":7}")),
        format!("{}.e30.abc", b64(b"{\"alg\":\"ES256\",\"kid\":[1]}")),
        format!("{header}.{}.", b64(claims().to_string().as_bytes())),
        format!("{header}.{}.a=b", b64(claims().to_string().as_bytes())),
        format!("{good}.extra"),
        format!("{good}="),
        long,
    ];
    for token in &cases {
        let e = refused(&v, token).await;
        assert!(!e.to_string().is_empty());
    }
    assert!(matches!(
        refused(&v, &cases[1]).await,
        OidcError::Malformed(_)
    ));
    assert!(matches!(
        refused(&v, cases.last().unwrap()).await,
        OidcError::TooLong(_)
    ));
    let crit = handmade(
        &json!({"alg": "EdDSA", "kid": "ed1", "crit": ["exp"]}),
        &claims(),
        b"sig",
    );
    assert!(matches!(
        refused(&v, &crit).await,
        OidcError::CriticalHeader(_)
    ));
}

#[test]
fn configuration_mistakes_fail_at_startup() {
    let root = repo_root();
    let err = |specs: Vec<OidcSpec>| OidcVerifier::new(specs, &root).unwrap_err();
    let file = || OidcSpec::with_jwks_file(ISSUER, AUDIENCE, "fixtures/idp/jwks.json");

    let mut both = file();
    both.jwks_url = Some("http://127.0.0.1:1/jwks".to_owned());
    assert!(matches!(err(vec![both]), OidcError::Config { .. }));
    let mut neither = file();
    neither.jwks_file = None;
    assert!(matches!(err(vec![neither]), OidcError::Config { .. }));
    let e = err(vec![file(), file()]);
    assert!(e.to_string().contains("defined twice"), "{e}");
    let mut no_algs = file();
    no_algs.algorithms.clear();
    assert!(matches!(err(vec![no_algs]), OidcError::Config { .. }));
    let mut no_aud = file();
    no_aud.audience.clear();
    assert!(matches!(err(vec![no_aud]), OidcError::Config { .. }));
    let e = err(vec![OidcSpec::with_jwks_url(ISSUER, AUDIENCE, "ftp://x/")]);
    assert!(e.to_string().contains("https://"), "{e}");
    let mut ca_for_file = file();
    ca_for_file.jwks_ca = Some("ca.pem".into());
    assert!(matches!(err(vec![ca_for_file]), OidcError::Config { .. }));

    let e = err(vec![OidcSpec::with_jwks_file(
        ISSUER,
        AUDIENCE,
        "fixtures/idp/missing.json",
    )]);
    assert!(matches!(e, OidcError::JwksFile { .. }), "{e}");
    assert!(e.to_string().contains("missing.json"), "{e}");

    let dir = scratch("config");
    std::fs::write(dir.join("bad.json"), "{ not json").unwrap();
    std::fs::write(
        dir.join("empty.json"),
        json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}).to_string(),
    )
    .unwrap();
    for name in ["bad.json", "empty.json"] {
        let e = OidcVerifier::new(vec![OidcSpec::with_jwks_file(ISSUER, AUDIENCE, name)], &dir)
            .unwrap_err();
        assert!(matches!(e, OidcError::JwksFile { .. }), "{e}");
    }

    // An https URL is not fetched at construction, so an unreachable IdP does not fail it.
    let v = OidcVerifier::new(
        vec![OidcSpec::with_jwks_url(
            ISSUER,
            AUDIENCE,
            "http://127.0.0.1:9/jwks",
        )],
        &root,
    )
    .unwrap();
    assert_eq!(v.issuers().collect::<Vec<_>>(), [ISSUER]);
}

#[test]
fn the_config_table_deserialises_strictly() {
    let spec: OidcSpec = serde_json::from_value(json!({
        "issuer": ISSUER, "audience": AUDIENCE, "jwks_file": "fixtures/idp/jwks.json",
    }))
    .unwrap();
    assert_eq!(spec.groups_claim, "groups");
    assert_eq!(spec.algorithms, JwtAlgorithm::ALL);
    let spec: OidcSpec = serde_json::from_value(json!({
        "issuer": ISSUER, "audience": AUDIENCE, "jwks_url": "https://idp.test/jwks",
        "jwks_ca": "ca.pem", "groups_claim": "roles", "algorithms": ["ES256", "EdDSA"],
    }))
    .unwrap();
    assert_eq!(spec.algorithms, [JwtAlgorithm::Es256, JwtAlgorithm::EdDsa]);
    for bad in [
        json!({"issuer": ISSUER, "audience": AUDIENCE, "jwks_file": "x", "algorithms": ["HS256"]}),
        json!({"issuer": ISSUER, "audience": AUDIENCE, "jwks_file": "x", "algorithms": ["none"]}),
        json!({"issuer": ISSUER, "audience": AUDIENCE, "jwks_file": "x", "leeway": 60}),
        json!({"issuer": ISSUER, "jwks_file": "x"}),
    ] {
        assert!(serde_json::from_value::<OidcSpec>(bad).is_err());
    }
}

#[tokio::test]
async fn unusable_jwks_entries_are_skipped() {
    let dir = scratch("skip");
    let (key, ed) = fresh_ed25519("good");
    let doc = json!({"keys": [
        {"kty": "RSA", "use": "enc", "kid": "enc1", "n": "AQAB", "e": "AQAB"},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"},
        {"kty": "RSA", "kid": "tiny", "n": "AQAB", "e": "AQAB"},
        {"kty": "OKP", "crv": "Ed25519", "kid": "short", "x": "AAAA"},
        {"kty": "EC", "crv": "P-256", "kid": "nox"},
        {"kid": "nokty"},
        {"kty": "OKP", "crv": "Ed25519", "kid": "good", "key_ops": ["encrypt"], "x": "AAAA"},
        {"kty": "OKP", "crv": "Ed25519", "kid": "good", "use": 5, "x": "AAAA"},
        {"kty": "OKP", "crv": "X25519", "kid": "good", "x": "AAAA"},
        ed,
    ]});
    std::fs::write(dir.join("jwks.json"), doc.to_string()).unwrap();
    let v = OidcVerifier::new(
        vec![OidcSpec::with_jwks_file(ISSUER, AUDIENCE, "jwks.json")],
        &dir,
    )
    .unwrap();
    let ok = v
        .verify(&mint_with(&key, Algorithm::EdDSA, Some("good"), &claims()))
        .await
        .unwrap();
    assert_eq!(ok.subject, "alice");
    // Without a kid, the single Ed25519 key is used.
    assert!(v
        .verify(&mint_with(&key, Algorithm::EdDSA, None, &claims()))
        .await
        .is_ok());
}

#[tokio::test]
async fn a_jwks_file_is_read_again_for_an_unknown_key_at_most_every_30_s() {
    let dir = scratch("reread");
    let (key_a, jwk_a) = fresh_ed25519("a");
    let (key_b, jwk_b) = fresh_ed25519("b");
    let (key_c, jwk_c) = fresh_ed25519("c");
    std::fs::write(dir.join("jwks.json"), jwks(&[&jwk_a])).unwrap();
    let v = OidcVerifier::new(
        vec![OidcSpec::with_jwks_file(ISSUER, AUDIENCE, "jwks.json")],
        &dir,
    )
    .unwrap();
    let token = |key: &EncodingKey, kid| mint_with(key, Algorithm::EdDSA, Some(kid), &claims());
    assert!(v.verify(&token(&key_a, "a")).await.is_ok());

    // Key b rotated in: the file is read again.
    std::fs::write(dir.join("jwks.json"), jwks(&[&jwk_a, &jwk_b])).unwrap();
    assert!(v.verify(&token(&key_b, "b")).await.is_ok());

    // Key c appears too, but the file was read a moment ago: not again within 30 s.
    std::fs::write(dir.join("jwks.json"), jwks(&[&jwk_a, &jwk_b, &jwk_c])).unwrap();
    let e = refused(&v, &token(&key_c, "c")).await;
    assert!(matches!(e, OidcError::UnknownKeyId { .. }), "{e}");
    assert!(e.to_string().contains("at most every 30 s"), "{e}");
    assert!(v.verify(&token(&key_a, "a")).await.is_ok());
}

/// A loopback HTTP server that serves `doc` at any path and counts requests.
struct JwksServer {
    url: String,
    doc: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(doc: String, chunked: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let doc = Arc::new(Mutex::new(doc));
        let hits = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (Arc::clone(&doc), Arc::clone(&hits));
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request).into_owned();
                assert!(
                    request.starts_with("GET /.well-known/jwks.json HTTP/1.1\r\n"),
                    "{request}"
                );
                assert!(request.contains("\r\nHost: 127.0.0.1:"), "{request}");
                counted.fetch_add(1, Ordering::SeqCst);
                let body = served.lock().unwrap().clone();
                let response = if chunked {
                    let (one, two) = body.split_at(body.len() / 2);
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{one}\r\n{:x};ext=1\r\n{two}\r\n0\r\n\r\n",
                        one.len(),
                        two.len()
                    )
                } else {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                };
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        Self { url, doc, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_jwks_url_is_fetched_at_first_use_and_refetched_once_for_a_new_kid() {
    let (key_a, jwk_a) = fresh_ed25519("a");
    let (key_b, jwk_b) = fresh_ed25519("b");
    let (key_c, _) = fresh_ed25519("c");
    let server = JwksServer::start(jwks(&[&jwk_a]), false).await;
    let v = OidcVerifier::new(
        vec![OidcSpec::with_jwks_url(ISSUER, AUDIENCE, &server.url)],
        Path::new("/"),
    )
    .unwrap();
    assert_eq!(server.hits(), 0, "nothing is fetched at construction");
    let token = |key: &EncodingKey, kid| mint_with(key, Algorithm::EdDSA, Some(kid), &claims());

    assert!(v.verify(&token(&key_a, "a")).await.is_ok());
    assert_eq!(server.hits(), 1);
    assert!(v.verify(&token(&key_a, "a")).await.is_ok());
    assert_eq!(server.hits(), 1, "cached");

    // The IdP rotates in key b: one refetch, and the fetched key works.
    *server.doc.lock().unwrap() = jwks(&[&jwk_a, &jwk_b]);
    assert_eq!(
        v.verify(&token(&key_b, "b")).await.unwrap().subject,
        "alice"
    );
    assert_eq!(server.hits(), 2);

    // Another unknown kid within 30 s: refused without asking the IdP again.
    for _ in 0..3 {
        let e = refused(&v, &token(&key_c, "c")).await;
        assert!(matches!(e, OidcError::UnknownKeyId { .. }), "{e}");
    }
    assert_eq!(server.hits(), 2);
    assert!(v.verify(&token(&key_b, "b")).await.is_ok());
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_chunked_jwks_response_is_read() {
    let (key, jwk) = fresh_ed25519("k");
    let server = JwksServer::start(jwks(&[&jwk]), true).await;
    let v = OidcVerifier::new(
        vec![OidcSpec::with_jwks_url(ISSUER, AUDIENCE, &server.url)],
        Path::new("/"),
    )
    .unwrap();
    v.warm_up().await;
    assert_eq!(server.hits(), 1);
    let t = mint_with(&key, Algorithm::EdDSA, Some("k"), &claims());
    assert!(v.verify(&t).await.is_ok());
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn an_unreachable_idp_is_retried_at_most_every_30_s() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/jwks");
    let v = OidcVerifier::new(
        vec![OidcSpec::with_jwks_url(ISSUER, AUDIENCE, &url)],
        Path::new("/"),
    )
    .unwrap();
    v.warm_up().await; // logs, does not fail
    let t = mint(Algorithm::EdDSA, Some("ed1"), &claims());
    let e = refused(&v, &t).await;
    assert!(matches!(e, OidcError::JwksUnavailable { .. }), "{e}");
    assert!(e.to_string().contains("at most every 30 s"), "{e}");
    assert!(e.to_string().contains("cannot connect"), "{e}");
}

#[tokio::test]
async fn a_jwks_url_that_answers_an_error_status_is_unavailable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf).await;
        let _ = stream
            .write_all(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n")
            .await;
    });
    let v = OidcVerifier::new(
        vec![OidcSpec::with_jwks_url(ISSUER, AUDIENCE, &url)],
        Path::new("/"),
    )
    .unwrap();
    let e = refused(&v, &mint(Algorithm::EdDSA, Some("ed1"), &claims())).await;
    assert!(e.to_string().contains("HTTP status 302"), "{e}");
    assert!(e.to_string().contains("redirects are not followed"), "{e}");
}

#[tokio::test]
async fn a_jwks_url_over_https_with_a_private_ca() {
    let dir = scratch("https");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    std::fs::write(dir.join("ca.pem"), cert.cert.pem()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let (key, jwk) = fresh_ed25519("tls");
    let body = jwks(&[&jwk]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let mut buf = [0u8; 1024];
            let _ = tls.read(&mut buf).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.write_all(response.as_bytes()).await;
            let _ = tls.shutdown().await;
        }
    });
    let t = mint_with(&key, Algorithm::EdDSA, Some("tls"), &claims());
    let mut spec = OidcSpec::with_jwks_url(ISSUER, AUDIENCE, &url);
    spec.jwks_ca = Some("ca.pem".into());
    let v = OidcVerifier::new(vec![spec], &dir).unwrap();
    assert_eq!(v.verify(&t).await.unwrap().subject, "alice");

    // Without jwks_ca the system's roots apply, and they do not know this CA (on a machine
    // without any system roots, construction itself refuses the https URL).
    let spec = OidcSpec::with_jwks_url(ISSUER, AUDIENCE, &url);
    match OidcVerifier::new(vec![spec], &dir) {
        Ok(v) => {
            let e = refused(&v, &t).await;
            assert!(e.to_string().contains("TLS handshake"), "{e}");
        }
        Err(e) => assert!(e.to_string().contains("jwks_ca"), "{e}"),
    }
}

#[tokio::test]
async fn tokens_are_routed_to_their_own_issuer() {
    let dir = scratch("issuers");
    let (key_other, jwk_other) = fresh_ed25519("ed1");
    std::fs::write(dir.join("other.json"), jwks(&[&jwk_other])).unwrap();
    let fixture_jwks = fixture("jwks.json");
    let mut other = OidcSpec::with_jwks_file("https://other.test", "other-aud", "other.json");
    other.groups_claim = "roles".to_owned();
    let v = OidcVerifier::new(
        vec![
            OidcSpec::with_jwks_file(ISSUER, AUDIENCE, fixture_jwks),
            other,
        ],
        &dir,
    )
    .unwrap();
    let other_claims = json!({
        "iss": "https://other.test", "aud": "other-aud", "sub": "svc", "roles": ["r"],
        "exp": now() + 60,
    });
    let ok = v
        .verify(&mint_with(
            &key_other,
            Algorithm::EdDSA,
            Some("ed1"),
            &other_claims,
        ))
        .await
        .unwrap();
    assert_eq!(
        (
            ok.issuer.as_str(),
            ok.subject.as_str(),
            ok.groups.as_slice()
        ),
        ("https://other.test", "svc", &["r".to_owned()][..])
    );
    // The fixture issuer's key (same kid "ed1") does not vouch for the other issuer's tokens,
    // and the other issuer's audience is not ours.
    let e = refused(&v, &mint(Algorithm::EdDSA, Some("ed1"), &other_claims)).await;
    assert!(matches!(e, OidcError::BadSignature { .. }), "{e}");
    let e = refused(
        &v,
        &mint_with(
            &key_other,
            Algorithm::EdDSA,
            Some("ed1"),
            &with(other_claims.clone(), "aud", json!(AUDIENCE)),
        ),
    )
    .await;
    assert!(matches!(e, OidcError::WrongAudience { .. }), "{e}");
}

#[tokio::test]
async fn a_silent_idp_times_out_after_5_s() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(stream);
    });
    let v = OidcVerifier::new(
        vec![OidcSpec::with_jwks_url(ISSUER, AUDIENCE, &url)],
        Path::new("/"),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let e = refused(&v, &mint(Algorithm::EdDSA, Some("ed1"), &claims())).await;
    assert!(e.to_string().contains("within 5 s"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
