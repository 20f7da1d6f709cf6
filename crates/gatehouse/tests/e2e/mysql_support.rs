//! Helpers of the MySQL tests: scratch databases on the local MariaDB (as root, directly),
//! `[[connection]]` sections for them, and the mysql CLI through the gateway.

use std::process::Output;

use crate::support::{run, Gateway};

/// The local MariaDB every machine runs.
pub const LOCAL_MARIADB: &str = "127.0.0.1:3306";

/// Runs SQL on the local MariaDB as root, directly (setup and checks, not through the gateway).
pub fn root_sql(sql: &str) -> String {
    let out = run(
        "mysql",
        &[
            "-h",
            "127.0.0.1",
            "-P",
            "3306",
            "-u",
            "root",
            "-N",
            "-B",
            "-e",
            sql,
        ],
        None,
        &[],
    );
    assert!(
        out.status.success(),
        "root sql {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Drops and creates a database on the local MariaDB.
pub fn scratch_mysql_db(name: &str) {
    root_sql(&format!(
        "DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}`"
    ));
}

/// A `[[connection]]` section: the local MariaDB's `database` as connection `name`, logged in
/// as root, open to groups `dba` and `batch`; `extra` lines are appended to it.
pub fn mysql_connection(name: &str, database: &str, extra: &str) -> String {
    format!(
        "[[connection]]\nname = {name:?}\nprotocol = \"mysql\"\naddress = {LOCAL_MARIADB:?}\n\
         database = {database:?}\nusername = \"root\"\ntls = \"prefer\"\n\
         groups = [\"dba\", \"batch\"]\n{extra}\n"
    )
}

/// The mysql CLI's arguments to reach `connection` through the gateway over TLS.
pub fn mysql_args(gw: &Gateway, connection: &str, token: &str) -> Vec<String> {
    vec![
        "-h".into(),
        "127.0.0.1".into(),
        "-P".into(),
        gw.mysql_port.to_string(),
        "-u".into(),
        "tester".into(),
        format!("-p{token}"),
        "--ssl".into(),
        "--connect-timeout=10".into(),
        connection.into(),
    ]
}

/// Runs the mysql CLI through the gateway with more arguments and optional stdin.
pub fn mysql(
    gw: &Gateway,
    connection: &str,
    token: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    let mut all = mysql_args(gw, connection, token);
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    run("mysql", &refs, stdin, &[])
}

/// The text of a command's output, both streams, for assertion messages.
pub fn shown(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
