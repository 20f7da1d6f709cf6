//! End-to-end tests: the real `gatehouse` binary between real clients (psql, pgbench,
//! psycopg, tokio-postgres) and real PostgreSQL servers.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cluster;
mod mysql_support;
mod ssh_support;
mod support;

mod admin_api;
mod approvals;
mod boundary;
mod console;
mod credentials;
mod deploy;
mod drivers;
mod durability;
mod evidence;
mod export;
mod faults;
mod instances;
mod limits;
mod masking;
mod mysql_cli;
mod mysql_drivers;
mod mysql_faults;
mod mysql_policy;
mod new_user;
mod oidc;
mod operations;
mod pg_fidelity;
mod pgbench;
mod pipelines;
mod psql;
mod replay_cast;
mod ssh_automation;
mod ssh_exec;
mod ssh_faults;
mod ssh_files;
mod ssh_shell;
mod ssh_transfer;
mod trail;
mod upstream_auth;
