//! OIDC identities end to end: a JWT from a test issuer (keys under fixtures/idp) is taken as
//! the password by psql and as the bearer token by the admin API; each kind of bad JWT is
//! refused with PostgreSQL's 28P01 while the gateway keeps serving.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::support::*;

const ISSUER: &str = "https://idp.gatehouse.test";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/idp")
        .join(name)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims(sub: &str, groups: &[&str]) -> Value {
    json!({
        "iss": ISSUER, "aud": "gatehouse", "sub": sub, "groups": groups,
        "iat": now(), "exp": now() + 300,
    })
}

fn mint(alg: Algorithm, kid: &str, claims: &Value) -> String {
    let key = match alg {
        Algorithm::RS256 => {
            EncodingKey::from_rsa_pem(&std::fs::read(fixture("rs256.pem")).unwrap())
        }
        Algorithm::ES256 => EncodingKey::from_ec_pem(&std::fs::read(fixture("es256.pem")).unwrap()),
        _ => EncodingKey::from_ed_pem(&std::fs::read(fixture("ed25519.pem")).unwrap()),
    }
    .unwrap();
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    encode(&header, claims, &key).unwrap()
}

fn policy() -> String {
    format!(
        "[[oidc]]\nissuer = {ISSUER:?}\naudience = \"gatehouse\"\njwks_file = {:?}\n\
         groups_claim = \"groups\"\n\n\
         [[rule]]\nname = \"wipes\"\nwhen = {{ class = [\"delete-without-where\"] }}\n\
         action = \"review\"\napprovers = [\"dba\"]\ntimeout = \"1s\"\n",
        fixture("jwks.json").to_str().unwrap()
    )
}

#[test]
fn jwts_open_sessions_with_their_groups_and_bad_ones_are_refused() {
    scratch_db("gh_oidc");
    let gw = Gateway::start_with_policy(&[Conn::local("app", "gh_oidc")], &policy(), &[]);

    for (alg, kid, who) in [
        (Algorithm::RS256, "rs1", "svc-rsa"),
        (Algorithm::ES256, "es1", "svc-ec"),
        (Algorithm::EdDSA, "ed1", "svc-ed"),
    ] {
        let jwt = mint(alg, kid, &claims(who, &["batch"]));
        let (ok, out, err) = psql(&gw.dsn("app", &jwt), &["-Atc", "SELECT 40 + 2"], None);
        assert!(ok && out.trim() == "42", "{alg:?}: {err}");
    }
    let sessions =
        gw.sessions_until(|s| s.iter().filter(|r| r["identity"] == "svc-ed").count() == 1);
    let ed = sessions.iter().find(|s| s["identity"] == "svc-ed").unwrap();
    assert_eq!(ed["groups"], json!(["batch"]));
    assert!(ed["token_id"].as_str().unwrap().starts_with("jwt_"));

    // A JWT whose groups do not include the connection's is refused like any token.
    let outsider = mint(Algorithm::RS256, "rs1", &claims("web", &["web"]));
    let (ok, _, err) = psql(&gw.dsn("app", &outsider), &["-c", "SELECT 1"], None);
    assert!(
        !ok && err.contains("does not exist or you are not allowed"),
        "{err}"
    );

    let good = claims("mallory", &["batch"]);
    let with = |key: &str, value: Value| {
        let mut c = good.clone();
        c[key] = value;
        c
    };
    let tampered = {
        let jwt = mint(Algorithm::ES256, "es1", &good);
        let parts: Vec<&str> = jwt.split('.').collect();
        let forged = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&with("groups", json!(["batch", "dba"]))).unwrap());
        format!("{}.{forged}.{}", parts[0], parts[2])
    };
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&good).unwrap())
    );
    let bad = [
        (
            "wrong issuer",
            mint(
                Algorithm::RS256,
                "rs1",
                &with("iss", json!("https://evil.test")),
            ),
        ),
        (
            "wrong audience",
            mint(Algorithm::RS256, "rs1", &with("aud", json!("other"))),
        ),
        (
            "expired",
            mint(Algorithm::RS256, "rs1", &with("exp", json!(now() - 120))),
        ),
        (
            "not yet valid",
            mint(Algorithm::RS256, "rs1", &with("nbf", json!(now() + 600))),
        ),
        ("unknown key", mint(Algorithm::RS256, "rs9", &good)),
        ("alg none", alg_none),
        ("tampered", tampered),
    ];
    for (what, jwt) in &bad {
        let (ok, _, err) = psql(&gw.dsn("app", jwt), &["-c", "SELECT 1"], None);
        assert!(!ok, "{what} was accepted");
        assert!(
            err.contains("authentication failed: the token is not valid"),
            "{what}: {err}"
        );
    }
    // Still serving, and the refusals are evidence.
    let jwt = mint(Algorithm::EdDSA, "ed1", &claims("svc-ed", &["batch"]));
    let (ok, _, err) = psql(&gw.dsn("app", &jwt), &["-c", "SELECT 1"], None);
    assert!(ok, "{err}");
    let jwt_refused = |sessions: &[serde_json::Value]| {
        sessions
            .iter()
            .filter(|s| {
                s["end_reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("JWT refused"))
            })
            .count()
    };
    let sessions = gw.sessions_until(|s| jwt_refused(s) >= bad.len());
    assert_eq!(jwt_refused(&sessions), bad.len(), "{sessions:#?}");
}

#[test]
fn a_jwt_approver_decides_through_the_admin_api() {
    scratch_db("gh_oidc_api");
    admin_sql(
        "gh_oidc_api",
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1)",
    );
    let gw = Gateway::start_with_policy(&[Conn::local("app", "gh_oidc_api")], &policy(), &[]);
    let job = mint(Algorithm::RS256, "rs1", &claims("nightly", &["batch"]));
    let approver = mint(Algorithm::ES256, "es1", &claims("dana", &["dba"]));
    let dsn = gw.dsn("app", &job);
    let held = std::thread::spawn(move || psql(&dsn, &["-c", "DELETE FROM t"], None));
    let id = gw.wait_for_request(&approver);
    let out = gw.cli_as(&approver, &["deny", &id, "--reason", "use a WHERE"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, _, err) = held.join().unwrap();
    assert!(!ok && err.contains("denied by dana: use a WHERE"), "{err}");
}
