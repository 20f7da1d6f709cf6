//! `gatehouse approvals list [--pending]`, `gatehouse approve ID`, `gatehouse deny ID`: online
//! commands, through the admin API with the approver's own `GATEHOUSE_TOKEN`.

use clap::{Args, Subcommand};

use super::remote::Remote;
use crate::config::Config;
use crate::error::CliError;
use crate::table;

/// Approvals subcommands.
#[derive(Debug, Subcommand)]
pub enum ApprovalsCmd {
    /// List approval requests, newest first.
    List {
        /// Only those still waiting for a decision.
        #[arg(long)]
        pending: bool,
        /// JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

/// `approve ID` / `deny ID`.
#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The request id (`apr_...`), as the held client was told.
    pub id: String,
    /// Why (kept in the approval trail).
    #[arg(long)]
    pub reason: Option<String>,
}

/// Runs `approvals list`.
pub fn list(config: &Config, server: Option<&str>, command: ApprovalsCmd) -> Result<(), CliError> {
    let ApprovalsCmd::List { pending, json } = command;
    let api = Remote::required(config, server)?;
    let rows = api.get(&format!("/v1/approvals?pending={pending}"))?;
    let rows = rows.as_array().cloned().unwrap_or_default();
    if json {
        table::json(&rows);
        return Ok(());
    }
    let field = |r: &serde_json::Value, k: &str| -> String {
        match r.get(k) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) | None => "-".into(),
            Some(v) => v.to_string(),
        }
    };
    let lines: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut statement = field(r, "statement").replace('\n', " ");
            if statement.chars().count() > 60 {
                statement = statement.chars().take(57).collect::<String>() + "...";
            }
            vec![
                field(r, "id"),
                field(r, "state"),
                field(r, "identity"),
                field(r, "connection"),
                field(r, "rule"),
                statement,
                field(r, "requested_at"),
                field(r, "decided_by"),
            ]
        })
        .collect();
    table::print(
        &[
            "ID",
            "STATE",
            "IDENTITY",
            "CONNECTION",
            "RULE",
            "STATEMENT",
            "REQUESTED",
            "DECIDED BY",
        ],
        &lines,
    );
    Ok(())
}

/// Runs `approve` (`approve = true`) or `deny`.
pub fn decide(
    config: &Config,
    server: Option<&str>,
    args: &DecideArgs,
    approve: bool,
) -> Result<(), CliError> {
    let api = Remote::required(config, server)?;
    let verb = if approve { "approve" } else { "deny" };
    let answer = api.post(
        &format!("/v1/approvals/{}/{verb}", args.id),
        &serde_json::json!({ "reason": args.reason }),
    )?;
    println!(
        "{} {} by {}",
        args.id,
        answer.get("state").and_then(|s| s.as_str()).unwrap_or(verb),
        answer
            .get("decided_by")
            .and_then(|s| s.as_str())
            .unwrap_or("?")
    );
    Ok(())
}
