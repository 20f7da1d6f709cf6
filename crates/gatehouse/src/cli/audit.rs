//! `gatehouse audit list` and `gatehouse audit export`.

use std::io::Write;
use std::path::PathBuf;
use std::time::SystemTime;

use clap::{Subcommand, ValueEnum};
use gatehouse_audit::{AuditError, AuditFilter, ExportFilter, ExportFormat, SqliteStore};

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
    /// Export audit entries, oldest first, as JSON Lines or CSV (streamed: any number of
    /// entries in constant memory). The count goes to stderr.
    Export {
        /// Only entries admitted at or after (RFC 3339, or a duration ago such as `7d`).
        #[arg(long)]
        from: Option<String>,
        /// Only entries admitted before (exclusive; RFC 3339, or a duration ago).
        #[arg(long)]
        to: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Jsonl)]
        format: Format,
        /// Only entries of this identity.
        #[arg(long)]
        identity: Option<String>,
        /// Only entries on this connection.
        #[arg(long)]
        connection: Option<String>,
        /// Only entries of this protocol.
        #[arg(long, value_parser = ["postgres", "mysql", "ssh"])]
        protocol: Option<String>,
        /// Only entries with this verdict.
        #[arg(long, value_parser = ["allow", "deny", "approved", "rejected"])]
        verdict: Option<String>,
        /// Write to this file (created or truncated) instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// RFC 4180 CSV with a header line.
    Csv,
}

/// Runs an audit subcommand.
pub fn run(config: &Config, command: AuditCmd) -> Result<(), CliError> {
    let store = open_store(config)?;
    match command {
        AuditCmd::Verify { json } => return super::verify::run(config, &store, json),
        AuditCmd::Export {
            from,
            to,
            format,
            identity,
            connection,
            protocol,
            verdict,
            out,
        } => {
            let filter = ExportFilter {
                from: time("--from", from.as_deref())?,
                to: time("--to", to.as_deref())?,
                identity,
                connection,
                protocol,
                verdict,
            };
            if let (Some(from), Some(to)) = (filter.from, filter.to) {
                if from >= to {
                    return Err(CliError::Usage(
                        "--from must be before --to (--to is exclusive)".into(),
                    ));
                }
            }
            let format = match format {
                Format::Jsonl => ExportFormat::Jsonl,
                Format::Csv => ExportFormat::Csv,
            };
            return export(&store, &filter, format, out.as_deref());
        }
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

/// Parses `--from`/`--to` as `--since` is parsed.
fn time(flag: &str, value: Option<&str>) -> Result<Option<SystemTime>, CliError> {
    super::since(value).map_err(|_| {
        CliError::Usage(format!(
            "{flag} {}: give RFC 3339 or a duration ago like 7d",
            value.unwrap_or_default()
        ))
    })
}

/// Runs the export to `out` or stdout. A reader that goes away (`| head`) ends it quietly.
fn export(
    store: &SqliteStore,
    filter: &ExportFilter,
    format: ExportFormat,
    out: Option<&std::path::Path>,
) -> Result<(), CliError> {
    let written = match out {
        Some(path) => {
            let mut file = std::fs::File::create(path)
                .map_err(|e| CliError::Usage(format!("cannot create {}: {e}", path.display())))?;
            let written = store.export(filter, format, &mut file)?;
            // On disk before the count is reported (a device such as /dev/null has no sync).
            if file.metadata().is_ok_and(|m| m.is_file()) {
                file.sync_all().map_err(|e| {
                    CliError::Usage(format!("cannot write {}: {e}", path.display()))
                })?;
            }
            written
        }
        None => match store.export(filter, format, &mut std::io::stdout().lock()) {
            Err(AuditError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::BrokenPipe =>
            {
                return Ok(());
            }
            other => other?,
        },
    };
    let _ = writeln!(std::io::stderr(), "exported {written} entries");
    Ok(())
}
