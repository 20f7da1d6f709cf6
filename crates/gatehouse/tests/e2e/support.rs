//! Test support: a gateway started from the real binary on a free port, with its own store,
//! and helpers to drive real clients (psql, pgbench, python) through it.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The local PostgreSQL every machine has (trust auth on loopback).
pub const LOCAL_PG: &str = "127.0.0.1:5432";

/// A gateway process for one test.
pub struct Gateway {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// Its `[gateway] state`: `sqlite:var/gatehouse.db`, or a database of its own on the
    /// PostgreSQL server `GATEHOUSE_TEST_STORE` names.
    pub state: String,
    pub port: u16,
    /// The admin API's port.
    pub admin_port: u16,
    /// The MySQL listener's port.
    pub mysql_port: u16,
    /// The SSH listener's port.
    pub ssh_port: u16,
    child: Option<Child>,
    pub log: Arc<Mutex<Vec<String>>>,
    pub stdout: Arc<Mutex<Vec<String>>>,
}

/// A `[[connection]]` for a test config.
#[derive(Clone, Copy)]
pub struct Conn<'a> {
    pub name: &'a str,
    pub address: &'a str,
    pub database: &'a str,
    pub username: &'a str,
    pub password_env: Option<&'a str>,
    pub groups: &'a [&'a str],
    pub tls: &'a str,
    pub tls_ca: Option<&'a str>,
}

impl<'a> Conn<'a> {
    /// The local server's database `database` as connection `name`, open to group `batch`.
    pub fn local(name: &'a str, database: &'a str) -> Self {
        Self {
            name,
            address: LOCAL_PG,
            database,
            username: "postgres",
            password_env: None,
            groups: &["batch", "dba"],
            tls: "prefer",
            tls_ca: None,
        }
    }
}

/// The `gatehouse` binary under test.
pub fn gatehouse_bin() -> &'static str {
    env!("CARGO_BIN_EXE_gatehouse")
}

impl Gateway {
    /// Starts a gateway fronting these connections, listening on a free loopback port.
    pub fn start(connections: &[Conn<'_>]) -> Self {
        Self::start_with_env(connections, &[])
    }

    /// Same, with extra environment variables (for `password = { env = ... }`).
    pub fn start_with_env(connections: &[Conn<'_>], env: &[(&str, &str)]) -> Self {
        Self::start_with_policy(connections, "", env)
    }

    /// Same, with more configuration (`[[rule]]`, `[[mask]]`, `[[oidc]]` sections) appended.
    pub fn start_with_policy(connections: &[Conn<'_>], policy: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = test_state(dir.path());
        let gateway = format!("state = {state:?}\nrecordings = \"var/recordings\"\n");
        Self::start_config(dir, state, &gateway, connections, policy, env)
    }

    /// One of several gateways on the shared PostgreSQL store `state`: instance `instance`,
    /// its local state (journal, keys) and recordings in `shared` (which the instances
    /// share, as a volume would; each has a journal of its own in it).
    pub fn start_instance(
        state: &str,
        instance: &str,
        shared: &Path,
        connections: &[Conn<'_>],
        policy: &str,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let gateway = format!(
            "state = {state:?}\ninstance = {instance:?}\nstate_dir = {:?}\nrecordings = {:?}\n",
            shared.display().to_string(),
            shared.join("recordings").display().to_string()
        );
        Self::start_config(dir, state.to_owned(), &gateway, connections, policy, &[])
    }

    /// A gateway running exactly `toml` (written to its directory) on the store `state`.
    pub fn start_toml(toml: &str, state: &str) -> Self {
        Self::launch(
            tempfile::tempdir().expect("tempdir"),
            toml,
            state.to_owned(),
            &[],
        )
    }

    /// Writes `toml` as the gateway's configuration in `dir` and starts it.
    fn launch(dir: tempfile::TempDir, toml: &str, state: String, env: &[(&str, &str)]) -> Self {
        let config = dir.path().join("gatehouse.toml");
        std::fs::write(&config, toml).expect("write config");
        let mut gw = Self {
            dir,
            config,
            state,
            port: 0,
            admin_port: 0,
            mysql_port: 0,
            ssh_port: 0,
            child: None,
            log: Arc::new(Mutex::new(Vec::new())),
            stdout: Arc::new(Mutex::new(Vec::new())),
        };
        gw.spawn(env);
        gw
    }

    fn start_config(
        dir: tempfile::TempDir,
        state: String,
        gateway: &str,
        connections: &[Conn<'_>],
        policy: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let mut toml = format!(
            "[gateway]\n{gateway}\n\
             [listen]\npostgres = \"127.0.0.1:0\"\nmysql = \"127.0.0.1:0\"\nssh = \"127.0.0.1:0\"\n             admin = \"127.0.0.1:0\"\n\n",
        );
        for c in connections {
            toml.push_str(&format!(
                "[[connection]]\nname = {:?}\nprotocol = \"postgres\"\naddress = {:?}\n\
                 database = {:?}\nusername = {:?}\ntls = {:?}\ngroups = {:?}\n",
                c.name, c.address, c.database, c.username, c.tls, c.groups
            ));
            if let Some(ca) = c.tls_ca {
                toml.push_str(&format!("tls_ca = {ca:?}\n"));
            }
            if let Some(var) = c.password_env {
                toml.push_str(&format!("password = {{ env = {var:?} }}\n"));
            }
            toml.push('\n');
        }
        toml.push_str(policy);
        Self::launch(dir, &toml, state, env)
    }

    /// Kills the gateway and starts it again on the same store (a new port).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn(&[]);
    }

    fn spawn(&mut self, env: &[(&str, &str)]) {
        let mut cmd = Command::new(gatehouse_bin());
        cmd.arg("serve")
            .arg("--config")
            .arg(&self.config)
            .env("GATEHOUSE_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn gatehouse");
        let stdout = child.stdout.take().expect("stdout");
        let out = self.stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                out.lock().expect("stdout").push(line);
            }
        });
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("gatehouse: postgres listening on ") {
                    let _ = tx.send(("pg", addr.to_owned()));
                }
                if let Some(addr) = line.strip_prefix("gatehouse: admin listening on ") {
                    let _ = tx.send(("admin", addr.to_owned()));
                }
                if let Some(addr) = line.strip_prefix("gatehouse: mysql listening on ") {
                    let _ = tx.send(("mysql", addr.to_owned()));
                }
                if let Some(addr) = line.strip_prefix("gatehouse: ssh listening on ") {
                    let _ = tx.send(("ssh", addr.to_owned()));
                }
                log.lock().expect("log").push(line);
            }
        });
        let port_of = |addr: &str| -> u16 {
            addr.rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("port")
        };
        self.port = 0;
        self.admin_port = 0;
        self.mysql_port = 0;
        self.ssh_port = 0;
        while self.port == 0 || self.admin_port == 0 || self.mysql_port == 0 || self.ssh_port == 0 {
            let (which, addr) = rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| {
                    panic!("gateway did not start: {:?}", self.log.lock().expect("log"))
                });
            match which {
                "pg" => self.port = port_of(&addr),
                "mysql" => self.mysql_port = port_of(&addr),
                "ssh" => self.ssh_port = port_of(&addr),
                _ => self.admin_port = port_of(&addr),
            }
        }
        self.child = Some(child);
    }

    /// Sends SIGTERM and waits for the gateway to exit; returns whether it exited cleanly.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        false
    }

    /// Kills the gateway with SIGKILL (no chance to flush anything).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs a `gatehouse` CLI command against this gateway's config; panics on failure.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_output(args);
        assert!(
            out.status.success(),
            "gatehouse {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a CLI command and returns its output whatever the status.
    pub fn cli_output(&self, args: &[&str]) -> Output {
        Command::new(gatehouse_bin())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("run gatehouse cli")
    }

    /// Runs an online CLI command (through the admin API) as the holder of `token`.
    pub fn cli_as(&self, token: &str, args: &[&str]) -> Output {
        Command::new(gatehouse_bin())
            .arg("--config")
            .arg(&self.config)
            .arg("--server")
            .arg(format!("http://127.0.0.1:{}", self.admin_port))
            .args(args)
            .env("GATEHOUSE_TOKEN", token)
            .output()
            .expect("run gatehouse cli")
    }

    /// The pending approval requests, as an approver holding `token` sees them.
    pub fn pending_approvals(&self, token: &str) -> Vec<Value> {
        let out = self.cli_as(token, &["approvals", "list", "--pending", "--json"]);
        assert!(
            out.status.success(),
            "approvals list: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("approvals json")
    }

    /// Waits until a request is pending and returns its id.
    pub fn wait_for_request(&self, token: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(id) = self
                .pending_approvals(token)
                .first()
                .and_then(|r| r["id"].as_str())
            {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no approval request appeared");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Issues a token for `identity` in `groups`.
    pub fn token(&self, identity: &str, groups: &[&str]) -> String {
        let mut args = vec!["token", "create", "--identity", identity];
        for g in groups {
            args.push("--group");
            args.push(g);
        }
        self.cli(&args).trim().to_owned()
    }

    /// A libpq connection string through the gateway.
    pub fn dsn(&self, connection: &str, token: &str) -> String {
        format!(
            "host=127.0.0.1 port={} dbname={connection} user=tester password={token} sslmode=require connect_timeout=10",
            self.port
        )
    }

    /// Every audit entry (oldest first) as JSON.
    pub fn audit(&self) -> Vec<Value> {
        let out = self.cli(&["audit", "list", "--json"]);
        serde_json::from_str::<Vec<Value>>(&out).expect("audit json")
    }

    /// Audit entries, waiting until `ready` holds for them (outcomes are written just after
    /// the client sees its answer) or the timeout passes.
    pub fn audit_until(&self, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let rows = self.audit();
            if ready(&rows) || Instant::now() > deadline {
                return rows;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sessions, waiting until `ready` holds for them (the store is filled from the journal
    /// every 20 to 100 ms) or the timeout passes.
    pub fn sessions_until(&self, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let rows = self.sessions();
            if ready(&rows) || Instant::now() > deadline {
                return rows;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every session as JSON.
    pub fn sessions(&self) -> Vec<Value> {
        let out = self.cli(&["sessions", "list", "--json"]);
        serde_json::from_str::<Vec<Value>>(&out).expect("sessions json")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a client program; returns its output.
pub fn run(program: &str, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is not runnable ({e}); run scripts/setup.sh"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

/// psql through the gateway with these arguments; returns (status ok, stdout, stderr).
pub fn psql(dsn: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut all = vec![
        "-X",
        "-v",
        "ON_ERROR_STOP=1",
        "-v",
        "VERBOSITY=verbose",
        "-d",
        dsn,
    ];
    all.extend_from_slice(args);
    let out = run("psql", &all, stdin, &[]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// psql straight to the local server as postgres (setup and checks, not through the gateway).
pub fn admin_sql(database: &str, sql: &str) -> String {
    superuser_sql("127.0.0.1", 5432, database, sql)
}

/// psql as the superuser at `host` (a name or a socket directory) and `port`.
pub fn superuser_sql(host: &str, port: u16, database: &str, sql: &str) -> String {
    let port = port.to_string();
    let out = run(
        "psql",
        &[
            "-X",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            host,
            "-p",
            &port,
            "-U",
            "postgres",
            "-d",
            database,
            "-c",
            sql,
        ],
        None,
        &[],
    );
    assert!(
        out.status.success(),
        "sql {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Creates (or recreates) a scratch database on the local server.
pub fn scratch_db(name: &str) {
    admin_sql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
    admin_sql("postgres", &format!("CREATE DATABASE {name}"));
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Entries whose statement contains `needle`.
pub fn with_statement<'a>(rows: &'a [Value], needle: &str) -> Vec<&'a Value> {
    rows.iter()
        .filter(|r| r["statement"].as_str().is_some_and(|s| s.contains(needle)))
        .collect()
}

/// A path inside the gateway's temporary directory.
pub fn path_in(gw: &Gateway, name: &str) -> PathBuf {
    gw.dir.path().join(name)
}

/// Reads a file as a string.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A new store's `[gateway] state` for a test gateway in `dir`: SQLite in `dir/var`, or a new
/// database on the PostgreSQL server `GATEHOUSE_TEST_STORE` names (the suite's second run).
pub fn test_state(dir: &Path) -> String {
    if gatehouse_audit::testing::on_postgres() {
        gatehouse_audit::testing::fresh_state(dir).expect("a test database on the store server")
    } else {
        "sqlite:var/gatehouse.db".into()
    }
}

/// The gateway's journal directory (`var/gatehouse.db.journal`, or on PostgreSQL
/// `var/INSTANCE.pg.journal`).
pub fn journal_dir(gw: &Gateway) -> PathBuf {
    if !gw.state.starts_with("postgres") {
        return path_in(gw, "var/gatehouse.db.journal");
    }
    std::fs::read_dir(path_in(gw, "var"))
        .expect("var/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with(".pg.journal"))
        .expect("a journal under var/")
}

/// Everything the store holds, as bytes to search: the SQLite file and its log, or a dump
/// of the PostgreSQL database.
pub fn store_bytes(gw: &Gateway) -> Vec<u8> {
    if gw.state.starts_with("postgres") {
        let out = run("pg_dump", &["--data-only", &gw.state], None, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return out.stdout;
    }
    let mut stored = std::fs::read(path_in(gw, "var/gatehouse.db")).expect("the store file");
    stored.extend(std::fs::read(path_in(gw, "var/gatehouse.db-wal")).unwrap_or_default());
    stored
}

/// Whether this run's stores are on PostgreSQL.
pub fn on_postgres() -> bool {
    gatehouse_audit::testing::on_postgres()
}

/// Runs SQL on a gateway's own store (to break or tamper with it as a failing disk or an
/// intruder would): with psql on a PostgreSQL store, with Python's sqlite3 on a SQLite one.
pub fn store_sql(gw: &Gateway, sql: &str) {
    if gw.state.starts_with("postgres") {
        let out = run(
            "psql",
            &[&gw.state, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
            None,
            &[],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let db = path_in(gw, "var/gatehouse.db");
    let out = run(
        "python3",
        &[
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()",
            db.to_str().unwrap(),
            sql,
        ],
        None,
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `GET path` on a gateway's admin listener without a token: the status and the body as
/// text (`/metrics`, `/healthz`, `/readyz`).
pub fn admin_get(gw: &Gateway, path: &str) -> (u16, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", gw.admin_port)).expect("admin");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("answer");
    let status = answer.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// One request to a gateway's admin listener with the given extra header lines (`Name: value`)
/// and JSON body: the status, the response's head (status line and headers) and its body.
pub fn admin_request(
    gw: &Gateway,
    method: &str,
    path: &str,
    headers: &[String],
    body: &str,
) -> (u16, String, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", gw.admin_port)).expect("admin");
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: gw\r\n{extra}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("request");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("answer");
    let status = answer.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (status, head.to_owned(), body.to_owned())
}

/// The value of a Prometheus sample line `name{labels} value` in `/metrics` text (labels as
/// written, e.g. `protocol="postgres"`; several must all be present), summed over matching
/// lines; `None` if none matches.
pub fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, l)) => (n, l),
            None => (series, ""),
        };
        if series_name == name && labels.iter().all(|l| series_labels.contains(l)) {
            *found.get_or_insert(0.0) += value.parse::<f64>().unwrap_or(f64::NAN);
        }
    }
    found
}
