//! Stores for tests (feature `testing`): the same tests run on SQLite, or on PostgreSQL when
//! `GATEHOUSE_TEST_STORE` names a server (`postgres://user@host:port/`): each store is then a
//! new database of its own on that server.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::db::Db;
use crate::error::AuditError;
use crate::store::{Location, Store, StoreOptions};

/// The variable naming the PostgreSQL server tests use instead of SQLite.
pub const STORE_ENV: &str = "GATEHOUSE_TEST_STORE";

/// The PostgreSQL server tests run their stores on, if one is named.
pub fn postgres_server() -> Option<String> {
    std::env::var(STORE_ENV)
        .ok()
        .filter(|v| v.starts_with("postgres://") || v.starts_with("postgresql://"))
}

/// Whether the tests run on PostgreSQL.
pub fn on_postgres() -> bool {
    postgres_server().is_some()
}

/// A `[gateway] state` for a new, empty store: `sqlite:DIR/gatehouse.db`, or a new database
/// on the PostgreSQL server tests use.
pub fn fresh_state(dir: &Path) -> Result<String, AuditError> {
    match postgres_server() {
        None => Ok(format!("sqlite:{}", dir.join("gatehouse.db").display())),
        Some(server) => fresh_postgres(&server),
    }
}

/// A new, empty database on the PostgreSQL server `server` (`postgres://user@host:port/`),
/// as a `[gateway] state`.
pub fn fresh_postgres(server: &str) -> Result<String, AuditError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "gh_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        gatehouse_core::identity::random_hex(4).map_err(|e| AuditError::Corrupt(e.to_string()))?
    );
    let (root, _) = split_database(server.trim_end_matches('/'));
    let mut admin = Db::postgres(&format!("{root}/postgres"))?;
    admin.execute_batch(&format!("CREATE DATABASE {name}"))?;
    Ok(format!("{root}/{name}"))
}

/// `postgres://user@host:port/db?opts` → (`postgres://user@host:port`, `db`).
fn split_database(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => (&url[..after_scheme + i], &url[after_scheme + i + 1..]),
        None => (url, ""),
    }
}

/// A new, empty store: SQLite in `dir`, or a new PostgreSQL database (its journal and chain
/// key in `dir`).
pub fn fresh_store(dir: &Path) -> Result<Store, AuditError> {
    let state = fresh_state(dir)?;
    open_state(&state, dir)
}

/// Opens the store `state` with its local files in `dir` (a second process's view of it).
pub fn open_state(state: &str, dir: &Path) -> Result<Store, AuditError> {
    Store::open(
        Location::parse(state, dir)?,
        &StoreOptions {
            state_dir: Some(dir.to_owned()),
            instance: Some("test".into()),
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_server_url_splits_from_its_database() {
        assert_eq!(
            super::split_database("postgres://u@h:5432/db"),
            ("postgres://u@h:5432", "db")
        );
        assert_eq!(
            super::split_database("postgres://u@h:5432"),
            ("postgres://u@h:5432", "")
        );
    }
}
