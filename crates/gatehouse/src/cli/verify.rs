//! `gatehouse audit verify`: the chain and the recordings checked, every problem named.

use gatehouse_audit::Store;

use crate::config::Config;
use crate::error::CliError;

/// Verifies; an error (non-zero exit) if anything does not hold.
pub fn run(config: &Config, store: &Store, json: bool) -> Result<(), CliError> {
    let report = store.verify(&config.recordings_dir())?;
    if json {
        crate::table::json(&report);
    } else {
        println!(
            "checked {} chain links ({} writes re-read, {} purged, {} purges), {} sealed recordings, \
             {} sealed terminal casts",
            report.links,
            report.writes_checked,
            report.purged_links,
            report.purges,
            report.recordings_checked,
            report.casts_checked
        );
        let instances: Vec<&str> = report
            .chains
            .iter()
            .map(String::as_str)
            .filter(|c| !c.is_empty())
            .collect();
        if !instances.is_empty() {
            // A shared store: one chain per gateway instance, each walked.
            println!(
                "{} chains, one per gateway instance: {}",
                report.chains.len(),
                instances.join(", ")
            );
        }
        if report.anchor_seq > 0 {
            println!(
                "the chain starts after link {} (older links were purged by retention)",
                report.anchor_seq
            );
        }
        for problem in &report.problems {
            println!("{problem}");
        }
    }
    if report.ok() {
        if !json {
            println!("ok: nothing was altered, removed or inserted");
        }
        Ok(())
    } else {
        Err(CliError::Verify(report.problems.len()))
    }
}
