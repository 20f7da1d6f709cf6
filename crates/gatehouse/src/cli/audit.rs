//! `gatehouse audit list` and `gatehouse audit export`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use gatehouse_audit::{AuditError, AuditFilter, ExportFilter, ExportFormat, Store};

use super::open_store;
use super::when::{Clock, When};
use crate::config::Config;
use crate::error::CliError;
use crate::table;

/// Audit subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// List audit entries, oldest first.
    List {
        /// Only entries since (a date, RFC 3339, or a duration ago such as `15m`).
        #[arg(long, value_parser = When::parse)]
        since: Option<When>,
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
        /// Only entries admitted at or after (a date, RFC 3339, or a duration ago such as `7d`).
        #[arg(long, value_parser = When::parse)]
        from: Option<When>,
        /// Only entries admitted before (exclusive; a date, RFC 3339, or a duration ago).
        #[arg(long, value_parser = When::parse)]
        to: Option<When>,
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
pub fn run(config: &Config, clock: &Clock, command: AuditCmd) -> Result<(), CliError> {
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
                from: clock.at_opt("--from", from.as_ref())?,
                to: clock.at_opt("--to", to.as_ref())?,
                identity,
                connection,
                protocol,
                verdict,
                ..ExportFilter::default()
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
            let since = clock.at_opt("--since", since.as_ref())?;
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

/// Runs the export to `out` or stdout. A reader that goes away (`| head`) ends it quietly.
fn export(
    store: &Store,
    filter: &ExportFilter,
    format: ExportFormat,
    out: Option<&std::path::Path>,
) -> Result<(), CliError> {
    let written = match out {
        Some(path) if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) => {
            // A device or a pipe (`--out /dev/null`): written as it goes.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| CliError::Usage(format!("cannot open {}: {e}", path.display())))?;
            store.export(filter, format, &mut file)?
        }
        Some(path) => {
            // A file appears only whole: written beside it, on disk, then renamed over it, so
            // a failed export leaves no truncated file behind.
            let cannot = |e: std::io::Error| {
                CliError::Usage(format!("cannot write {}: {e}", path.display()))
            };
            let mut staging = path.as_os_str().to_owned();
            staging.push(format!(".partial-{}", std::process::id()));
            let staging = std::path::PathBuf::from(staging);
            let mut file = std::fs::File::create(&staging).map_err(|e| {
                CliError::Usage(format!("cannot create {}: {e}", staging.display()))
            })?;
            let written = store
                .export(filter, format, &mut file)
                .map_err(CliError::from)
                .and_then(|n| file.sync_all().map(|()| n).map_err(cannot))
                .and_then(|n| std::fs::rename(&staging, path).map(|()| n).map_err(cannot));
            if written.is_err() {
                let _ = std::fs::remove_file(&staging);
            }
            written?
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
