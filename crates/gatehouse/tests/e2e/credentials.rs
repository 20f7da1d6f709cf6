//! Credentials and keys: a password set through the gateway reaches the server but never the
//! audit trail, the recordings or the journal; everything the gateway writes under its state
//! directory is readable by its own user only.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::mysql_support::{mysql, mysql_connection, root_sql, scratch_mysql_db, shown};
use crate::support::*;

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

/// Whether any file under `dir` contains `needle` (binary files included: the database).
fn anywhere(dir: &Path, needle: &str) -> Vec<std::path::PathBuf> {
    files(dir)
        .into_iter()
        .filter(|p| p.is_file())
        .filter(|p| {
            std::fs::read(p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
        .collect()
}

#[test]
fn passwords_set_through_the_gateway_reach_the_server_but_no_stored_text() {
    let db = "gh_cred_pw";
    scratch_db(db);
    admin_sql("postgres", "DROP ROLE IF EXISTS gh_cred_role");
    scratch_mysql_db(db);
    root_sql("DROP USER IF EXISTS 'gh_cred_user'@'%'");
    let policy = mysql_connection("my", db, "");
    let gw = Gateway::start_with_policy(&[Conn::local("app", db)], &policy, &[]);
    let token = gw.token("dba", &["dba", "batch"]);

    let (ok, _, err) = psql(
        &gw.dsn("app", &token),
        &[
            "-c",
            "CREATE ROLE gh_cred_role LOGIN PASSWORD 'Hunter2-pg'",
            "-c",
            "ALTER ROLE gh_cred_role WITH ENCRYPTED PASSWORD /* new */ 'Hunter3-pg'",
        ],
        None,
    );
    assert!(ok, "{err}");
    let out = mysql(
        &gw,
        "my",
        &token,
        &[
            "-e",
            "CREATE USER 'gh_cred_user'@'%' IDENTIFIED BY 'Hunter2-my'; \
             SET PASSWORD FOR 'gh_cred_user'@'%' = PASSWORD('Hunter3-my')",
        ],
        None,
    );
    assert!(out.status.success(), "{}", shown(&out));

    // The server has the passwords: the roles log in with them.
    let (ok, out, err) = psql(
        "host=127.0.0.1 port=5432 dbname=postgres user=gh_cred_role password=Hunter3-pg",
        &["-Atc", "SELECT current_user"],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "gh_cred_role");
    let direct = run(
        "mysql",
        &[
            "-h",
            "127.0.0.1",
            "-P",
            "3306",
            "-u",
            "gh_cred_user",
            "-pHunter3-my",
            "-Nse",
            "SELECT current_user()",
        ],
        None,
        &[],
    );
    assert!(direct.status.success(), "{}", shown(&direct));

    // The audit shows the statements with the passwords redacted...
    let rows = gw.audit_until(|r| with_statement(r, "SET PASSWORD").len() == 1);
    for needle in [
        "CREATE ROLE gh_cred_role",
        "ALTER ROLE",
        "CREATE USER",
        "SET PASSWORD",
    ] {
        let found = with_statement(&rows, needle);
        assert_eq!(found.len(), 1, "{needle}: {rows:#?}");
        assert!(
            found[0]["statement"]
                .as_str()
                .is_some_and(|s| s.contains("'<redacted>'")),
            "{:#?}",
            found[0]
        );
    }
    // ... and no file the gateway wrote holds them: database, journal, recordings.
    gw.cli(&["audit", "verify"]);
    for secret in ["Hunter2-pg", "Hunter3-pg", "Hunter2-my", "Hunter3-my"] {
        let found = anywhere(gw.dir.path(), secret);
        assert!(found.is_empty(), "{secret} in {found:?}");
    }
    admin_sql("postgres", "DROP ROLE IF EXISTS gh_cred_role");
    root_sql("DROP USER IF EXISTS 'gh_cred_user'@'%'");
}

#[test]
fn everything_under_the_state_directory_is_private() {
    let db = "gh_cred_modes";
    scratch_db(db);
    let gw = Gateway::start(&[Conn::local("app", db)]);
    let token = gw.token("job", &["batch"]);
    let (ok, _, err) = psql(&gw.dsn("app", &token), &["-c", "SELECT 1"], None);
    assert!(ok, "{err}");
    gw.sessions_until(|s| s.iter().any(|r| !r["ended_at"].is_null()));
    let state = gw.dir.path().join("var");
    let all = files(&state);
    // The store's file (SQLite), or the chain key beside a PostgreSQL store's journal.
    assert!(
        all.iter().any(|p| p.extension().is_some_and(|x| x == "db"))
            || (on_postgres() && all.iter().any(|p| p.ends_with("chain.key"))),
        "{all:?}"
    );
    assert!(
        all.iter()
            .any(|p| p.extension().is_some_and(|x| x == "jsonl")),
        "a recording: {all:?}"
    );
    for path in all.iter().chain([&state]) {
        let mode = std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{} is {:o}", path.display(), mode & 0o777);
    }
}

/// Runs the gateway's CLI with `config`, `GATEHOUSE_TOKEN` = `token`, bounded in time.
fn online(config: &Path, token: &str, args: &[&str]) -> std::process::Output {
    let config = config.to_string_lossy();
    let mut all = vec!["20", env!("CARGO_BIN_EXE_gatehouse"), "--config", &config];
    all.extend(args);
    run("timeout", &all, None, &[("GATEHOUSE_TOKEN", token)])
}

#[test]
fn the_admin_api_carries_tokens_only_over_tls_or_loopback() {
    let gw = Gateway::start_with_policy(&[], "[admin]\ntls = true\n", &[]);
    let admin = gw.token("root-admin", &["admin"]);
    // The CLI follows the configuration (`[admin] tls`: https for a bare host:port),
    // trusting the gateway's own certificate.
    let server = format!("127.0.0.1:{}", gw.admin_port);
    let out = online(
        &gw.config,
        &admin,
        &["--server", &server, "approvals", "list", "--json"],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]", "{out:?}");
    // curl agrees: TLS with the generated certificate; plain HTTP gets no answer.
    let cert = gw.dir.path().join("var/tls/gateway.crt");
    let url = format!("https://127.0.0.1:{}/healthz", gw.admin_port);
    let out = run(
        "curl",
        &["-sS", "--cacert", &cert.to_string_lossy(), &url],
        None,
        &[],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{out:?}");
    let plain = format!("http://127.0.0.1:{}/healthz", gw.admin_port);
    let out = run("curl", &["-sS", "-m", "5", &plain], None, &[]);
    assert!(!out.status.success(), "{out:?}");

    // The CLI never sends a token over plain HTTP off this machine (it does not even connect).
    let out = online(
        &gw.config,
        &admin,
        &["--server", "http://192.0.2.10:8080", "approvals", "list"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to send your token over plain HTTP"),
        "{err}"
    );

    // The gateway will not serve the admin API in clear off loopback.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("gatehouse.toml");
    std::fs::write(
        &config,
        "[gateway]\nstate = \"sqlite:var/gatehouse.db\"\n[listen]\nadmin = \"0.0.0.0:0\"\n",
    )
    .expect("config");
    let out = run(
        "timeout",
        &[
            "20",
            env!("CARGO_BIN_EXE_gatehouse"),
            "--config",
            &config.to_string_lossy(),
            "serve",
        ],
        None,
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tls = true"), "{err}");
}

/// A veth pair whose far end carries `addr`: a non-loopback address that never leaves the
/// machine. Removed on drop.
struct PrivateLink {
    name: String,
}

impl PrivateLink {
    fn new(name: &str, near: &str, far: &str) -> Self {
        let peer = format!("{name}p");
        let _ = run("ip", &["link", "del", name], None, &[]);
        for args in [
            vec!["link", "add", name, "type", "veth", "peer", "name", &peer],
            vec!["addr", "add", near, "dev", name],
            vec!["addr", "add", far, "dev", &peer],
            vec!["link", "set", name, "up"],
            vec!["link", "set", &peer, "up"],
        ] {
            let out = run("ip", &args, None, &[]);
            assert!(
                out.status.success(),
                "ip {args:?}: {out:?} (tests run as root)"
            );
        }
        Self {
            name: name.to_owned(),
        }
    }
}

impl Drop for PrivateLink {
    fn drop(&mut self) {
        let _ = run("ip", &["link", "del", &self.name], None, &[]);
    }
}

/// A server that speaks just enough of PostgreSQL's login to ask for a password with
/// `method` (3 cleartext, 5 md5), and reports whether a password message came back.
fn password_asking_server(addr: &str, method: i32) -> (u16, std::thread::JoinHandle<bool>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind(addr).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return false;
        };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
        let frame = |s: &mut std::net::TcpStream| -> Option<Vec<u8>> {
            let mut len = [0u8; 4];
            s.read_exact(&mut len).ok()?;
            let mut body = vec![0u8; (i32::from_be_bytes(len) as usize).saturating_sub(4)];
            s.read_exact(&mut body).ok()?;
            Some(body)
        };
        // SSLRequest (answered N) and the StartupMessage.
        let Some(first) = frame(&mut s) else {
            return false;
        };
        if first.get(..4) == Some(&[4, 210, 22, 47]) {
            let _ = s.write_all(b"N");
            if frame(&mut s).is_none() {
                return false;
            }
        }
        let mut ask = vec![b'R', 0, 0, 0, if method == 5 { 12 } else { 8 }];
        ask.extend_from_slice(&method.to_be_bytes());
        if method == 5 {
            ask.extend_from_slice(b"salt");
        }
        let _ = s.write_all(&ask);
        let mut tag = [0u8; 1];
        matches!(s.read_exact(&mut tag), Ok(()) if tag[0] == b'p')
    });
    (port, handle)
}

#[test]
fn a_password_the_server_could_read_never_crosses_an_unverified_link() {
    let _link = PrivateLink::new("ghpw0", "10.203.7.1/30", "10.203.7.2/30");
    for method in [3, 5] {
        // Off loopback, TLS not verified (here: not offered): the gateway refuses to answer.
        let (port, asked) = password_asking_server("10.203.7.2:0", method);
        let address = format!("10.203.7.2:{port}");
        let conn = Conn {
            address: &address,
            password_env: Some("UPSTREAM_PW"),
            ..Conn::local("remote", "postgres")
        };
        let gw = Gateway::start_with_env(&[conn], &[("UPSTREAM_PW", "s3cret-upstream")]);
        let token = gw.token("job", &["batch"]);
        let (ok, _, err) = psql(&gw.dsn("remote", &token), &["-c", "SELECT 1"], None);
        assert!(!ok);
        assert!(err.contains("verify-full"), "{err}");
        assert!(
            !asked.join().expect("server"),
            "method {method}: the password was sent"
        );

        // Off loopback a connection that names no `tls` verifies the server: one without TLS
        // is refused before any login.
        let (port, asked) = password_asking_server("10.203.7.2:0", method);
        let policy = format!(
            "[[connection]]\nname = \"remote\"\nprotocol = \"postgres\"\n\
             address = \"10.203.7.2:{port}\"\nusername = \"postgres\"\n\
             password = {{ env = \"UPSTREAM_PW\" }}\ngroups = [\"batch\"]\n"
        );
        let gw = Gateway::start_with_policy(&[], &policy, &[("UPSTREAM_PW", "s3cret-upstream")]);
        let token = gw.token("job", &["batch"]);
        let (ok, _, err) = psql(&gw.dsn("remote", &token), &["-c", "SELECT 1"], None);
        assert!(!ok);
        assert!(err.contains("does not offer TLS"), "{err}");
        assert!(
            !asked.join().expect("server"),
            "method {method}: default tls"
        );

        // The same server on loopback does get it: the check above could fail.
        let (port, asked) = password_asking_server("127.0.0.1:0", method);
        let address = format!("127.0.0.1:{port}");
        let conn = Conn {
            address: &address,
            password_env: Some("UPSTREAM_PW"),
            ..Conn::local("local", "postgres")
        };
        let gw = Gateway::start_with_env(&[conn], &[("UPSTREAM_PW", "s3cret-upstream")]);
        let token = gw.token("job", &["batch"]);
        let _ = psql(&gw.dsn("local", &token), &["-c", "SELECT 1"], None);
        assert!(asked.join().expect("server"), "method {method}: loopback");
    }
}
