//! `gatehouse sessions list`.

use clap::Subcommand;

use super::open_store;
use super::when::{Clock, When};
use crate::config::Config;
use crate::error::CliError;
use crate::table;

/// Sessions subcommands.
#[derive(Debug, Subcommand)]
pub enum SessionsCmd {
    /// List sessions, oldest first (refused attempts included).
    List {
        /// Only sessions started since (a date, RFC 3339, or a duration ago such as `2h`).
        #[arg(long, value_parser = When::parse)]
        since: Option<When>,
        /// Only sessions of this identity.
        #[arg(long)]
        identity: Option<String>,
        /// Only sessions on this connection.
        #[arg(long)]
        connection: Option<String>,
        /// Only sessions of this protocol (`postgres`, `mysql`, `ssh`).
        #[arg(long)]
        protocol: Option<String>,
        /// Only refused attempts (bad token, forbidden connection).
        #[arg(long)]
        refused: bool,
        /// Only sessions still open (or whose end was never recorded).
        #[arg(long)]
        open: bool,
        /// JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a sessions subcommand.
pub fn run(config: &Config, clock: &Clock, command: SessionsCmd) -> Result<(), CliError> {
    let store = open_store(config)?;
    match command {
        SessionsCmd::List {
            since,
            identity,
            connection,
            protocol,
            refused,
            open,
            json,
        } => {
            let since = clock.at_opt("--since", since.as_ref())?;
            let is = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
            let sessions: Vec<_> = store
                .list_sessions(since)?
                .into_iter()
                .filter(|s| {
                    is(&identity, &s.identity)
                        && is(&connection, &s.connection)
                        && is(&protocol, &s.protocol)
                        && (!refused
                            || s.end_reason
                                .as_deref()
                                .is_some_and(|r| r.starts_with("refused:")))
                        && (!open || s.ended_at.is_none())
                })
                .collect();
            if json {
                table::json(&sessions);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = sessions
                .iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        s.identity.clone(),
                        s.connection.clone(),
                        s.protocol.clone(),
                        s.client.clone(),
                        s.started_at.clone(),
                        s.ended_at.clone().unwrap_or_else(|| "-".into()),
                        s.commands.to_string(),
                        s.end_reason.clone().unwrap_or_else(|| "(open)".into()),
                    ]
                })
                .collect();
            table::print(
                &[
                    "SESSION",
                    "IDENTITY",
                    "CONNECTION",
                    "PROTO",
                    "CLIENT",
                    "STARTED",
                    "ENDED",
                    "CMDS",
                    "END",
                ],
                &rows,
            );
        }
    }
    Ok(())
}
