//! `gatehouse retention run`: removes what is past `[gateway] retention_days` (serve also does
//! it on a schedule).

use std::time::{Duration, SystemTime};

use clap::Args;
use gatehouse_audit::{PurgeReport, Store};

use super::when::{Clock, When};
use crate::config::Config;
use crate::error::CliError;

/// `retention run` options.
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// Purge as if it were this time (a date or RFC 3339): to see what a date will remove, or
    /// to test.
    #[arg(long, value_parser = When::parse)]
    pub now: Option<When>,
    /// The report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The cutoff for `now` under the configuration.
pub fn cutoff(config: &Config, now: SystemTime) -> SystemTime {
    let period = Duration::from_secs(u64::from(config.gateway.retention_days) * 86_400);
    now.checked_sub(period).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Purges once; `by` is who is recorded as running it.
pub fn purge(
    config: &Config,
    store: &Store,
    now: SystemTime,
    by: &str,
) -> Result<PurgeReport, CliError> {
    Ok(store.purge(cutoff(config, now), now, by, &config.recordings_dir())?)
}

/// Runs `retention run`.
pub fn run(config: &Config, clock: &Clock, args: &RetentionArgs) -> Result<(), CliError> {
    let now = match &args.now {
        None => clock.now(),
        Some(t) => clock.at("--now", t)?,
    };
    let store = super::open_store(config)?;
    let by = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    let report = purge(config, &store, now, &by)?;
    if args.json {
        crate::table::json(&report);
    } else {
        println!(
            "retention {} days: removed {} sessions, {} audit entries, {} approval requests, \
             {} recordings that ended before {}",
            config.gateway.retention_days,
            report.sessions,
            report.entries,
            report.approvals,
            report.recordings,
            report.cutoff
        );
        println!(
            "oldest record kept: {}",
            report.oldest_kept.as_deref().unwrap_or("none")
        );
    }
    Ok(())
}
