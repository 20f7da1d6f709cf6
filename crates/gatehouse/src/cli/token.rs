//! `gatehouse token create | list | revoke`.

use std::time::SystemTime;

use clap::Subcommand;
use gatehouse_audit::{NewToken, TokenRow};
use gatehouse_core::time::display;

use super::open_store;
use super::remote::Remote;
use crate::config::Config;
use crate::error::CliError;
use crate::table;

/// Token subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Issue a token; prints the token alone on stdout, once.
    Create {
        /// The identity the token authenticates as.
        #[arg(long)]
        identity: String,
        /// A group of the identity (repeat for several).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Limit the token to a connection (repeat for several; default: any its groups allow).
        #[arg(long = "connection")]
        connections: Vec<String>,
        /// Lifetime, e.g. `30d`, `12h` (default: no expiry).
        #[arg(long)]
        ttl: Option<String>,
    },
    /// List tokens (never the secrets).
    List {
        /// JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token; a running gateway ends its sessions within a second.
    Revoke {
        /// The token id (`tok_...`).
        id: String,
    },
}

/// Runs a token subcommand.
pub fn run(config: &Config, server: Option<&str>, command: TokenCmd) -> Result<(), CliError> {
    let store = open_store(config)?;
    match command {
        TokenCmd::Create {
            identity,
            groups,
            connections,
            ttl,
        } => {
            let expires_at = match ttl {
                None => None,
                Some(ttl) => {
                    let d = humantime::parse_duration(&ttl).map_err(|e| {
                        CliError::Usage(format!("--ttl {ttl}: {e} (examples: 30d, 12h, 15m)"))
                    })?;
                    Some(SystemTime::now() + d)
                }
            };
            let created_by = std::env::var("USER").unwrap_or_else(|_| "cli".into());
            let (id, secret) = store.create_token(&NewToken {
                identity,
                groups,
                connections,
                expires_at,
                created_by: format!("cli:{created_by}"),
            })?;
            eprintln!("created token {id}");
            println!("{secret}");
        }
        TokenCmd::List { json } => {
            let tokens = store.list_tokens()?;
            if json {
                let rows: Vec<serde_json::Value> = tokens.iter().map(token_json).collect();
                table::json(&rows);
                return Ok(());
            }
            let now = SystemTime::now();
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|t| {
                    let state = if t.revoked_at.is_some() {
                        "revoked"
                    } else if !t.is_valid_at(now) {
                        "expired"
                    } else {
                        "active"
                    };
                    vec![
                        t.id.0.clone(),
                        t.identity.name.clone(),
                        t.identity.groups.join(","),
                        if t.connections.is_empty() {
                            "*".into()
                        } else {
                            t.connections.join(",")
                        },
                        state.into(),
                        display(t.created_at),
                        t.expires_at.map(display).unwrap_or_else(|| "never".into()),
                    ]
                })
                .collect();
            table::print(
                &[
                    "ID",
                    "IDENTITY",
                    "GROUPS",
                    "CONNECTIONS",
                    "STATE",
                    "CREATED",
                    "EXPIRES",
                ],
                &rows,
            );
        }
        TokenCmd::Revoke { id } => {
            if let Some(api) = Remote::from_env(config, server)? {
                // Through the running gateway: its sessions end at once.
                api.post(&format!("/v1/tokens/{id}/revoke"), &serde_json::json!({}))?;
            } else {
                // No token for the API: write the store; the gateway sees it at its next poll.
                let by = std::env::var("USER").unwrap_or_else(|_| "cli".into());
                store.revoke_token(&id, &format!("cli:{by}"))?;
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}

/// A token as the listings show it in JSON (never the secret).
pub fn token_json(t: &TokenRow) -> serde_json::Value {
    serde_json::json!({
        "id": t.id.0,
        "identity": t.identity.name,
        "groups": t.identity.groups,
        "connections": t.connections,
        "created_at": display(t.created_at),
        "created_by": t.created_by,
        "expires_at": t.expires_at.map(display),
        "revoked_at": t.revoked_at.map(display),
    })
}
