//! The gateway logs in upstream with its own secret (SCRAM-SHA-256, md5, cleartext) and the
//! client never sees the secret or anything derived from it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::cluster::Cluster;
use crate::support::*;

const SECRET: &str = "s3cret-Upstream-pw";

fn cluster() -> Cluster {
    let c = Cluster::start(
        "host all scram_user 127.0.0.1/32 scram-sha-256\n\
         host all md5_user 127.0.0.1/32 md5\n\
         host all clear_user 127.0.0.1/32 password",
        "password_encryption = 'scram-sha-256'",
    );
    c.sql(&format!("CREATE ROLE scram_user LOGIN PASSWORD '{SECRET}'"));
    c.sql(&format!(
        "SET password_encryption = 'md5'; CREATE ROLE md5_user LOGIN PASSWORD '{SECRET}'"
    ));
    c.sql(&format!("CREATE ROLE clear_user LOGIN PASSWORD '{SECRET}'"));
    c.sql("CREATE ROLE wrong_user LOGIN PASSWORD 'something-else'");
    c
}

/// Speaks the protocol by hand (no TLS, loopback) and returns every byte the gateway sent.
pub fn raw_login(port: u16, connection: &str, token: &str, query: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut body = Vec::new();
    body.extend_from_slice(&196_608i32.to_be_bytes());
    for (k, v) in [("user", "raw"), ("database", connection)] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    msg.extend(body);
    s.write_all(&msg).unwrap();
    let mut got = Vec::new();
    let mut sent_password = false;
    let mut sent_query = false;
    let mut buf = [0u8; 8192];
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => n,
        };
        got.extend_from_slice(&buf[..n]);
        if !sent_password && got.len() >= 9 {
            let mut p = vec![b'p'];
            p.extend_from_slice(&((token.len() + 5) as i32).to_be_bytes());
            p.extend_from_slice(token.as_bytes());
            p.push(0);
            s.write_all(&p).unwrap();
            sent_password = true;
        }
        if !sent_query && got.ends_with(&[b'Z', 0, 0, 0, 5, b'I']) {
            let mut q = vec![b'Q'];
            q.extend_from_slice(&((query.len() + 5) as i32).to_be_bytes());
            q.extend_from_slice(query.as_bytes());
            q.push(0);
            q.extend_from_slice(&[b'X', 0, 0, 0, 4]);
            s.write_all(&q).unwrap();
            sent_query = true;
        }
    }
}

/// The SQLSTATE of the first ErrorResponse in a stream of backend messages.
pub fn error_code(bytes: &[u8]) -> Option<String> {
    let (_, body) = message_types(bytes).into_iter().find(|(t, _)| *t == b'E')?;
    body.split(|b| *b == 0).find_map(|f| {
        f.strip_prefix(b"C")
            .map(|c| String::from_utf8_lossy(c).into_owned())
    })
}

/// The message types in a stream of backend messages.
pub fn message_types(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 5 <= bytes.len() {
        let len = i32::from_be_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        let end = (at + 1 + len).min(bytes.len());
        out.push((bytes[at], bytes[at + 5..end].to_vec()));
        at += 1 + len;
    }
    out
}

#[test]
fn scram_md5_and_cleartext_upstream_logins_work_and_never_reach_the_client() {
    let cluster = cluster();
    let addr = cluster.address();
    let conn = |name: &'static str, user: &'static str| Conn {
        name,
        address: Box::leak(addr.clone().into_boxed_str()),
        database: "postgres",
        username: user,
        password_env: Some("UPSTREAM_PW"),
        groups: &["batch"],
        tls: "disable",
        tls_ca: None,
    };
    let gw = Gateway::start_with_env(
        &[
            conn("scram", "scram_user"),
            conn("md5", "md5_user"),
            conn("clear", "clear_user"),
        ],
        &[("UPSTREAM_PW", SECRET)],
    );
    let token = gw.token("svc", &["batch"]);
    for (connection, user) in [
        ("scram", "scram_user"),
        ("md5", "md5_user"),
        ("clear", "clear_user"),
    ] {
        let (ok, out, err) = psql(
            &gw.dsn(connection, &token),
            &["-Atc", "SELECT current_user"],
            None,
        );
        assert!(ok, "{connection}: {err}");
        assert_eq!(out.trim(), user);

        let bytes = raw_login(gw.port, connection, &token, "SELECT current_user");
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(SECRET),
            "{connection}: the upstream password reached the client"
        );
        assert!(
            !text.contains("SCRAM"),
            "{connection}: SASL traffic reached the client"
        );
        let auth: Vec<Vec<u8>> = message_types(&bytes)
            .into_iter()
            .filter(|(t, _)| *t == b'R')
            .map(|(_, body)| body)
            .collect();
        assert_eq!(
            auth,
            vec![3i32.to_be_bytes().to_vec(), 0i32.to_be_bytes().to_vec()],
            "{connection}: the client may only see the gateway's own cleartext request and ok"
        );
        assert!(text.contains(user), "{connection}: the query ran: {text}");
        let key: Vec<_> = message_types(&bytes)
            .into_iter()
            .filter(|(t, _)| *t == b'K')
            .collect();
        assert_eq!(key.len(), 1);
        let upstream_pids = cluster.sql("SELECT string_agg(pid::text, ',') FROM pg_stat_activity");
        let pid = i32::from_be_bytes(key[0].1[..4].try_into().unwrap());
        assert!(
            !upstream_pids.split(',').any(|p| p == pid.to_string()),
            "the client got the upstream's own backend key"
        );
    }
}

#[test]
fn an_upstream_refusing_the_gateway_or_down_gives_08006_with_the_reason() {
    let cluster = cluster();
    let addr = cluster.address();
    let down = format!("127.0.0.1:{}", free_port());
    let gw = Gateway::start_with_env(
        &[
            Conn {
                name: "wrongpw",
                address: &addr,
                database: "postgres",
                username: "scram_user",
                password_env: Some("UPSTREAM_PW"),
                groups: &["batch"],
                tls: "disable",
                tls_ca: None,
            },
            Conn {
                name: "down",
                address: &down,
                ..Conn::local("down", "test")
            },
            Conn::local("fine", "test"),
        ],
        &[("UPSTREAM_PW", "not-the-password")],
    );
    let token = gw.token("svc", &["batch"]);
    let (ok, _, err) = psql(&gw.dsn("wrongpw", &token), &["-c", "SELECT 1"], None);
    assert!(!ok);
    assert!(
        err.contains("password authentication failed for user \"scram_user\""),
        "{err}"
    );
    assert_eq!(
        error_code(&raw_login(gw.port, "wrongpw", &token, "SELECT 1")).as_deref(),
        Some("08006")
    );
    let (ok, _, err) = psql(&gw.dsn("down", &token), &["-c", "SELECT 1"], None);
    assert!(!ok);
    assert!(
        err.contains("could not connect") && err.contains(&down),
        "{err}"
    );
    assert_eq!(
        error_code(&raw_login(gw.port, "down", &token, "SELECT 1")).as_deref(),
        Some("08006")
    );
    // Everyone else is still served.
    let (ok, out, err) = psql(
        &gw.dsn("fine", &token),
        &["-Atc", "SELECT 'still here'"],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "still here");
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made with the openssl CLI.
pub fn certificates(dir: &std::path::Path, name: &str) -> (String, String, String) {
    let p = |f: &str| dir.join(format!("{name}-{f}")).to_str().unwrap().to_owned();
    let (ca_key, ca, key, csr, cert, ext) = (
        p("ca.key"),
        p("ca.pem"),
        p("server.key"),
        p("server.csr"),
        p("server.pem"),
        p("ext.cnf"),
    );
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    let steps: [Vec<&str>; 3] = [
        vec![
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &ca_key,
            "-out",
            &ca,
            "-days",
            "2",
            "-subj",
            "/CN=gatehouse test CA",
        ],
        vec![
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            "/CN=localhost",
        ],
        vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    ];
    for args in steps {
        let out = run("openssl", &args, None, &[]);
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (ca, cert, key)
}

#[test]
fn verify_full_checks_the_upstream_certificate_and_refuses_a_stranger() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(certs.path(), "real");
    let (other_ca, _, _) = certificates(certs.path(), "other");
    // The server reads its key as postgres, and insists on 0600.
    for path in [&cert, &key] {
        assert!(std::process::Command::new("chown")
            .args(["postgres", path])
            .status()
            .unwrap()
            .success());
    }
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::set_permissions(
        certs.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let cluster = Cluster::start(
        "hostssl all scram_user 127.0.0.1/32 scram-sha-256",
        &format!("ssl = on\nssl_cert_file = '{cert}'\nssl_key_file = '{key}'"),
    );
    cluster.sql(&format!("CREATE ROLE scram_user LOGIN PASSWORD '{SECRET}'"));
    let addr = cluster.address();
    let conn = |name: &'static str, ca: &str| Conn {
        name,
        address: Box::leak(addr.clone().into_boxed_str()),
        database: "postgres",
        username: "scram_user",
        password_env: Some("UPSTREAM_PW"),
        groups: &["batch"],
        tls: "verify-full",
        tls_ca: Some(Box::leak(ca.to_owned().into_boxed_str())),
    };
    let gw = Gateway::start_with_env(
        &[conn("trusted", &ca), conn("stranger", &other_ca)],
        &[("UPSTREAM_PW", SECRET)],
    );
    let token = gw.token("svc", &["batch"]);
    let (ok, out, err) = psql(
        &gw.dsn("trusted", &token),
        &[
            "-Atc",
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "t",
        "the gateway's upstream connection is encrypted"
    );
    let (ok, _, err) = psql(&gw.dsn("stranger", &token), &["-c", "SELECT 1"], None);
    assert!(!ok);
    assert!(
        err.contains("TLS with upstream") && err.contains("certificate"),
        "{err}"
    );
}
