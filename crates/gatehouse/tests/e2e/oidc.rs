//! OIDC identities end to end: a JWT from a test issuer (keys under fixtures/idp) is taken as
//! the password by psql, the mysql CLI, OpenSSH and paramiko, and as the bearer token by the
//! admin API; each kind of bad JWT is refused with the wire's own error (PostgreSQL's 28P01,
//! MySQL's 1045, SSH's "Permission denied") while the gateway keeps serving.

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
    let sessions = gw.sessions_until(|s| {
        s.iter()
            .filter(|r| r["identity"] == "idp.gatehouse.test:svc-ed")
            .count()
            == 1
    });
    let ed = sessions
        .iter()
        .find(|s| s["identity"] == "idp.gatehouse.test:svc-ed")
        .unwrap();
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
    assert!(
        !ok && err.contains("denied by idp.gatehouse.test:dana: use a WHERE"),
        "{err}"
    );
}

/// Logs in with a password and runs one command: prints its exit status and its output.
const PARAMIKO_EXEC: &str = r#"
import sys, paramiko
port, user, password, command = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
client = paramiko.SSHClient()
client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
client.connect("127.0.0.1", port=port, username=user, password=password, allow_agent=False,
               look_for_keys=False, timeout=10)
_, out, _ = client.exec_command(command, timeout=20)
text = out.read().decode()
print(out.channel.recv_exit_status(), text, end="")
client.close()
"#;

#[test]
fn a_jwt_is_an_ssh_password_and_bad_ones_are_refused() {
    let sshd = crate::ssh_support::Sshd::start();
    let policy = format!("{}{}", sshd.connection("box", ""), policy());
    let gw = Gateway::start_with_policy(&[], &policy, &[]);
    let ssh = |jwt: &str, command: &str| crate::ssh_support::ssh(&gw, "box", jwt, &[command], None);

    // Each signature algorithm, as OpenSSH's password (an RS256 JWT is the longest here).
    for (alg, kid) in [
        (Algorithm::RS256, "rs1"),
        (Algorithm::ES256, "es1"),
        (Algorithm::EdDSA, "ed1"),
    ] {
        let jwt = mint(alg, kid, &claims("deploy-bot", &["batch"]));
        let out = ssh(&jwt, "echo via-jwt; exit 4");
        assert_eq!(out.status.code(), Some(4), "{alg:?}: {out:?}");
        assert_eq!(crate::ssh_support::text(&out.stdout), "via-jwt\n");
    }

    // An identity provider's token can be long (many claims): 4 KB here. OpenSSH keeps only
    // the first 1023 bytes of a password (the README says so); a client that sends it whole,
    // like paramiko, logs in with it.
    let mut long = claims("deploy-bot", &["batch"]);
    long["roles"] = json!(vec!["role-with-a-long-descriptive-name"; 80]);
    let jwt = mint(Algorithm::RS256, "rs1", &long);
    assert!(jwt.len() > 3000, "{}", jwt.len());
    let port = gw.ssh_port.to_string();
    let out = crate::support::run(
        "python3",
        &[
            "-c",
            PARAMIKO_EXEC,
            &port,
            "box",
            &jwt,
            "echo via-jwt; exit 4",
        ],
        None,
        &[],
    );
    assert_eq!(
        crate::ssh_support::text(&out.stdout),
        "4 via-jwt\n",
        "a {}-byte JWT through paramiko: {out:?}",
        jwt.len()
    );
    let out = ssh(&jwt, "echo cut-short");
    assert!(!out.status.success(), "{out:?}");
    let hinted = || {
        gw.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("1023 bytes long") && l.contains("gatehouse key add"))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !hinted() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(hinted(), "the gateway's log says why a cut JWT is refused");

    // Expired, or for groups the connection does not admit: the client is refused like a bad
    // token, runs nothing, and the gateway goes on serving.
    let mut expired = claims("deploy-bot", &["batch"]);
    expired["exp"] = json!(now() - 600);
    let outsider = claims("web", &["web"]);
    for (what, c) in [("expired", &expired), ("outsider", &outsider)] {
        let out = ssh(&mint(Algorithm::EdDSA, "ed1", c), "echo should-not-run-jwt");
        // sshpass exits 5 when the server takes no password.
        assert_eq!(out.status.code(), Some(5), "{what}: {out:?}");
        assert!(
            crate::ssh_support::text(&out.stderr).contains("Permission denied"),
            "{what}: {out:?}"
        );
    }
    let jwt = mint(Algorithm::EdDSA, "ed1", &claims("deploy-bot", &["batch"]));
    assert!(ssh(&jwt, "true").status.success());

    let rows = gw.audit_until(|rows| with_statement(rows, "true").len() == 1);
    let ran = with_statement(&rows, "echo via-jwt; exit 4");
    assert_eq!(ran.len(), 4, "{rows:#?}");
    for row in &ran {
        assert_eq!(row["identity"], "idp.gatehouse.test:deploy-bot");
        assert_eq!(row["class"], "exec");
    }
    assert!(with_statement(&rows, "echo should-not-run-jwt").is_empty());
    let sessions = gw.sessions_until(|s| {
        s.iter()
            .filter(|r| {
                r["identity"] == "idp.gatehouse.test:deploy-bot" && !r["end_reason"].is_null()
            })
            .count()
            >= 5
    });
    let bot: Vec<_> = sessions
        .iter()
        .filter(|s| s["identity"] == "idp.gatehouse.test:deploy-bot" && s["connection"] == "box")
        .collect();
    assert!(
        bot.iter().any(|s| s["token_id"]
            .as_str()
            .is_some_and(|t| t.starts_with("jwt_"))),
        "{sessions:#?}"
    );
    let refused = gw.cli(&["sessions", "list", "--refused", "--json"]);
    let refused: Vec<Value> = serde_json::from_str(&refused).unwrap();
    assert!(
        refused.iter().any(|s| s["end_reason"]
            .as_str()
            .is_some_and(|r| r.contains("JWT refused"))),
        "the expired JWT's attempt is evidence: {refused:#?}"
    );
}

#[test]
fn a_jwt_is_a_mysql_password_and_bad_ones_are_refused() {
    use crate::mysql_support::{mysql, mysql_connection, scratch_mysql_db, shown};
    scratch_mysql_db("gh_oidc_my");
    let policy = format!("{}{}", mysql_connection("my", "gh_oidc_my", ""), policy());
    let gw = Gateway::start_with_policy(&[], &policy, &[]);
    let query = |jwt: &str, sql: &str| mysql(&gw, "my", jwt, &["-N", "-e", sql], None);

    // Each algorithm, and a 4 KB token: the mysql CLI sends the password whole.
    let mut long = claims("report-job", &["batch"]);
    long["roles"] = json!(vec!["role-with-a-long-descriptive-name"; 80]);
    for (alg, kid, c) in [
        (Algorithm::RS256, "rs1", claims("report-job", &["batch"])),
        (Algorithm::ES256, "es1", claims("report-job", &["batch"])),
        (Algorithm::EdDSA, "ed1", claims("report-job", &["batch"])),
        (Algorithm::RS256, "rs1", long),
    ] {
        let jwt = mint(alg, kid, &c);
        let out = query(&jwt, "SELECT 40 + 2 AS via_jwt");
        assert!(
            out.status.success(),
            "{alg:?}, {} bytes: {}",
            jwt.len(),
            shown(&out)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    }

    // An expired JWT is a wrong password (1045); one whose groups the connection does not
    // admit gets the same answer as a connection that does not exist (1044). Nothing runs.
    let mut expired = claims("report-job", &["batch"]);
    expired["exp"] = json!(now() - 600);
    for (c, error) in [
        (&expired, "ERROR 1045 (28000)"),
        (&claims("web", &["web"]), "ERROR 1044 (42000)"),
    ] {
        let out = query(
            &mint(Algorithm::EdDSA, "ed1", c),
            "SELECT 'should-not-run-my'",
        );
        assert!(!out.status.success(), "{}", shown(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(error),
            "{error}: {}",
            shown(&out)
        );
    }
    let jwt = mint(Algorithm::EdDSA, "ed1", &claims("report-job", &["batch"]));
    assert!(query(&jwt, "SELECT 1").status.success(), "still serving");

    let rows = gw.audit_until(|rows| with_statement(rows, "via_jwt").len() == 4);
    let ran = with_statement(&rows, "via_jwt");
    assert_eq!(ran.len(), 4, "{rows:#?}");
    assert!(ran
        .iter()
        .all(|r| r["identity"] == "idp.gatehouse.test:report-job"));
    assert!(with_statement(&rows, "should-not-run-my").is_empty());
}

#[test]
fn a_jwt_subject_is_namespaced_by_its_issuer_and_revoking_it_cuts_its_sessions() {
    use std::io::Read;
    use std::time::{Duration, Instant};
    scratch_db("gh_oidc_revoke");
    let gw = Gateway::start_with_policy(&[Conn::local("app", "gh_oidc_revoke")], &policy(), &[]);
    let identity = "idp.gatehouse.test:etl-bot";
    let jwt = mint(Algorithm::EdDSA, "ed1", &claims("etl-bot", &["batch"]));
    let mut child = std::process::Command::new("psql")
        .args([
            "-X",
            "-d",
            &gw.dsn("app", &jwt),
            "-c",
            "SELECT pg_sleep(20)",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("psql");
    gw.sessions_until(|s| s.iter().any(|r| r["identity"] == identity));
    std::thread::sleep(Duration::from_millis(300));

    // A gateway credential can never take an identity provider's name.
    let out = gw.cli_output(&["token", "create", "--identity", identity]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("contains ':'"));

    // Revoked in the store (no admin API): the live session ends within the poll.
    let started = Instant::now();
    let out = gw.cli_output(&["token", "revoke-subject", identity]);
    assert!(out.status.success(), "{out:?}");
    let status = child.wait().expect("psql ends");
    assert!(!status.success());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read");
    assert!(err.contains("revoked"), "{err}");

    // The same token is refused from now on; one the issuer signs later is not.
    let (ok, _, err) = psql(
        &gw.dsn("app", &jwt),
        &["-Atc", "SELECT 'after-revoke'"],
        None,
    );
    assert!(!ok);
    assert!(err.contains("not valid"), "{err}");
    // The refused attempt's record says why (the client is told only that it failed).
    let sessions = gw.sessions_until(|s| {
        s.iter().any(|r| {
            r["end_reason"]
                .as_str()
                .is_some_and(|e| e.contains("etl-bot was revoked"))
        })
    });
    assert!(
        sessions.iter().any(|r| r["end_reason"]
            .as_str()
            .is_some_and(|e| e.contains("etl-bot was revoked"))),
        "{sessions:#?}"
    );
    let mut fresh = claims("etl-bot", &["batch"]);
    fresh["iat"] = json!(now() + 2);
    let (ok, out, err) = psql(
        &gw.dsn("app", &mint(Algorithm::EdDSA, "ed1", &fresh)),
        &["-Atc", "SELECT 'issued-again'"],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "issued-again");
    // Another subject of the issuer was never affected.
    let other = mint(Algorithm::EdDSA, "ed1", &claims("etl-bot-2", &["batch"]));
    let (ok, _, err) = psql(&gw.dsn("app", &other), &["-Atc", "SELECT 1"], None);
    assert!(ok, "{err}");
}

/// The console signs in with a JWT as with a token: the cookie it gets back names a sign-in
/// (not the JWT), which authenticates the console's calls until the subject is revoked.
#[test]
fn a_jwt_signs_in_to_the_console_until_its_subject_is_revoked() {
    let gw = Gateway::start_with_policy(&[], &policy(), &[]);
    let jwt = mint(Algorithm::ES256, "es1", &claims("ana", &["dba"]));
    let body = json!({ "token": jwt }).to_string();
    let (status, head, me) = admin_request(&gw, "POST", "/v1/console/signin", &[], &body);
    assert_eq!(status, 200, "{head}{me}");
    let me: Value = serde_json::from_str(&me).unwrap();
    assert_eq!(me["identity"], "idp.gatehouse.test:ana");
    assert_eq!(me["approver"], true);
    assert_eq!(me["admin"], false);
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: gatehouse_console="))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no sign-in cookie: {head}"))
        .to_owned();
    assert!(
        cookie.starts_with("gc_") && !cookie.contains(&jwt),
        "{cookie}"
    );
    assert!(head.to_ascii_lowercase().contains("httponly"), "{head}");
    let with_cookie = [format!("Cookie: gatehouse_console={cookie}")];
    let (status, _, listing) = admin_request(&gw, "GET", "/v1/approvals", &with_cookie, "");
    assert_eq!(status, 200, "{listing}");

    // A bad JWT does not sign in, and sets no cookie.
    let forged = json!({ "token": format!("{jwt}x") }).to_string();
    let (status, head, _) = admin_request(&gw, "POST", "/v1/console/signin", &[], &forged);
    assert_eq!(status, 401);
    assert!(!head.to_ascii_lowercase().contains("set-cookie"), "{head}");

    let out = gw.cli_output(&["token", "revoke-subject", "idp.gatehouse.test:ana"]);
    assert!(out.status.success(), "{out:?}");
    let (status, _, err) = admin_request(&gw, "GET", "/v1/approvals", &with_cookie, "");
    assert_eq!(
        status, 401,
        "a revoked subject's console sign-in still works: {err}"
    );
}
