//! `gatehouse audit list`.

use clap::Subcommand;
use gatehouse_audit::AuditFilter;

use super::open_store;
use crate::config::Config;
use crate::error::CliError;
use crate::table;

/// Audit subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// List audit entries, oldest first.
    List {
        /// Only entries since (RFC 3339, or a duration ago such as `15m`).
        #[arg(long)]
        since: Option<String>,
        /// Only entries of the session whose id starts with this.
        #[arg(long)]
        session: Option<String>,
        /// Only the newest N entries.
        #[arg(long)]
        limit: Option<u64>,
        /// JSON for scripts (one array, every field).
        #[arg(long)]
        json: bool,
    },
    /// Walk the tamper-evident chain and the recordings; exit non-zero if anything was
    /// altered, removed or inserted.
    Verify {
        /// The report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an audit subcommand.
pub fn run(config: &Config, command: AuditCmd) -> Result<(), CliError> {
    let store = open_store(config)?;
    match command {
        AuditCmd::Verify { json } => return super::verify::run(config, &store, json),
        AuditCmd::List {
            since,
            session,
            limit,
            json,
        } => {
            let since = super::since(since.as_deref())?;
            let rows = store.list_audit(&AuditFilter {
                since,
                session,
                limit,
            })?;
            if json {
                table::json(&rows);
                return Ok(());
            }
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let outcome = match (r.status.as_deref(), &r.tag, &r.sqlstate, &r.error) {
                        (Some("ok"), Some(tag), _, _) => tag.clone(),
                        (Some("error"), _, Some(code), _) => format!("ERROR {code}"),
                        (Some(status), _, _, _) => status.to_owned(),
                        (None, _, _, _) => "unknown".into(),
                    };
                    let params = if r.params.is_empty() {
                        String::new()
                    } else {
                        let shown: Vec<String> = r
                            .params
                            .iter()
                            .map(|p| p.clone().unwrap_or_else(|| "NULL".into()))
                            .collect();
                        format!(" [{}]", shown.join(", "))
                    };
                    vec![
                        r.at.clone(),
                        r.session.chars().take(8).collect(),
                        r.identity.clone(),
                        r.connection.clone(),
                        r.class.clone(),
                        match &r.rule {
                            Some(rule) => format!("{} ({rule})", r.verdict),
                            None => r.verdict.clone(),
                        },
                        outcome,
                        r.rows_returned.map(|n| n.to_string()).unwrap_or_default(),
                        r.duration_us
                            .map(|us| format!("{:.1}", us as f64 / 1000.0))
                            .unwrap_or_default(),
                        match r.masked.values().sum::<u64>() {
                            0 => String::new(),
                            n => n.to_string(),
                        },
                        table::clip(&format!("{}{params}", r.statement), 80),
                    ]
                })
                .collect();
            table::print(
                &[
                    "TIME",
                    "SESSION",
                    "IDENTITY",
                    "CONNECTION",
                    "CLASS",
                    "VERDICT",
                    "OUTCOME",
                    "ROWS",
                    "MS",
                    "MASKED",
                    "STATEMENT",
                ],
                &cells,
            );
        }
    }
    Ok(())
}
