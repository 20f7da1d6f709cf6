//! The commands besides `serve`. Offline ones open the store named by the configuration;
//! online ones (approvals, approve, deny, and token revoke / key remove with
//! `GATEHOUSE_TOKEN`) go through the running gateway's admin API ([`remote`]).

pub mod approvals;
pub mod audit;
pub mod key;
pub mod play;
pub mod remote;
pub mod replay;
pub mod retention;
pub mod sessions;
pub mod token;
pub mod verify;
pub mod when;

use gatehouse_audit::Store;

use crate::config::Config;
use crate::error::CliError;

/// Opens the store of the configuration.
pub fn open_store(config: &Config) -> Result<Store, CliError> {
    config.open_store()
}
