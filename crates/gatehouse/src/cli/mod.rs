//! The offline commands: each opens the store named by the configuration.

pub mod audit;
pub mod replay;
pub mod sessions;
pub mod token;

use gatehouse_audit::SqliteStore;

use crate::config::Config;
use crate::error::CliError;

/// Opens the store of the configuration.
pub fn open_store(config: &Config) -> Result<SqliteStore, CliError> {
    Ok(SqliteStore::open(&config.sqlite_path()?)?)
}
