//! A private PostgreSQL cluster for tests that need what the shared local server does not
//! give: password authentication (SCRAM, md5, cleartext) and a statement log of its own.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{free_port, run, superuser_sql};

/// A running private cluster, stopped when dropped.
pub struct Cluster {
    dir: tempfile::TempDir,
    pub port: u16,
}

fn pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries in /usr/lib/postgresql (scripts/setup.sh)")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    versions.sort();
    versions
        .last()
        .expect("a PostgreSQL version")
        .join("bin")
        .join(name)
}

fn is_root() -> bool {
    run("id", &["-u"], None, &[]).stdout.starts_with(b"0")
}

/// Runs a server binary as the postgres user (PostgreSQL refuses to run as root).
fn as_postgres(program: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args).output().expect("run server binary")
}

impl Cluster {
    /// initdb, the given pg_hba.conf lines and postgresql.conf settings, start.
    pub fn start(hba: &str, settings: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("gh-cluster")
            .tempdir()
            .expect("tempdir");
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(ok.success());
        }
        let data = dir.path().join("data");
        let out = as_postgres(
            &pg_bin("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             fsync = off\nlogging_collector = off\n{settings}\n",
            dir.path().display()
        );
        let append = |file: &str, text: &str| {
            let path = data.join(file);
            let mut existing = std::fs::read_to_string(&path).unwrap_or_default();
            if file == "pg_hba.conf" {
                existing = String::new();
            }
            existing.push_str(text);
            let tmp = dir.path().join(format!("{file}.new"));
            std::fs::write(&tmp, existing).unwrap();
            let out = as_postgres(
                Path::new("/bin/cp"),
                &[tmp.to_str().unwrap(), path.to_str().unwrap()],
            );
            assert!(out.status.success());
        };
        append("postgresql.conf", &conf);
        append(
            "pg_hba.conf",
            &format!("local all all trust\n{hba}\nhost all postgres 127.0.0.1/32 trust\n"),
        );
        let cluster = Self { dir, port };
        cluster.start_again();
        cluster
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs SQL as the superuser over the socket directory.
    pub fn sql(&self, sql: &str) -> String {
        superuser_sql(
            self.dir.path().to_str().unwrap(),
            self.port,
            "postgres",
            sql,
        )
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Cluster {
    /// Stops the server (as an outage would: connections are cut).
    pub fn stop(&self) {
        self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }

    /// Restarts the server with a fast shutdown, as an operator would: every session gets
    /// FATAL 57P01 and its connection closes.
    pub fn restart(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "-t", "60", "restart"]);
    }

    /// Starts the stopped server again, on the same port.
    pub fn start_again(&self) {
        self.pg_ctl(&["-w", "-t", "60", "start"]);
    }

    /// `pg_ctl` on this cluster's data directory and log, as the postgres user.
    fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("server.log");
        let mut all = vec!["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = as_postgres(&pg_bin("pg_ctl"), &all);
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres(
            &pg_bin("pg_ctl"),
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}
