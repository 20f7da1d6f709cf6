//! `gatehouse token create | list | revoke`, and what `gatehouse key` shares with it: the grant
//! (identity, groups, scope, lifetime), the listing's columns, and revocation online or offline.

use std::time::SystemTime;

use clap::{Args, Subcommand};
use gatehouse_audit::{CredentialKind, NewToken, Store, TokenRow};
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
    Create(Grant),
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
    /// Revoke an identity provider's subject (`namespace:sub`, as `sessions list` shows it):
    /// its sessions end within a second and its JWTs issued until now are refused.
    RevokeSubject {
        /// The identity, e.g. `idp.example.com:deploy-bot`.
        identity: String,
    },
}

/// Who a token or key authenticates as, where it may go, and for how long.
#[derive(Debug, Args)]
pub struct Grant {
    /// The identity it authenticates as.
    #[arg(long)]
    identity: String,
    /// A group of the identity (repeat for several).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// Limit it to a connection (repeat for several; default: any its groups allow).
    #[arg(long = "connection")]
    connections: Vec<String>,
    /// Lifetime, e.g. `30d`, `12h` (default: no expiry).
    #[arg(long)]
    ttl: Option<String>,
}

impl Grant {
    /// What the store issues it for, by the user running the CLI.
    pub fn to_new(&self) -> Result<NewToken, CliError> {
        if self.identity.trim().is_empty() {
            return Err(CliError::Usage("--identity must not be empty".into()));
        }
        Ok(NewToken {
            identity: self.identity.clone(),
            groups: self.groups.clone(),
            connections: self.connections.clone(),
            expires_at: expiry(self.ttl.as_deref())
                .map_err(|e| CliError::Usage(format!("--ttl {e}")))?,
            created_by: format!("cli:{}", cli_user()),
        })
    }
}

/// When something issued now with this lifetime expires; the error (to be prefixed with the
/// option's name) says what to write.
pub fn expiry(ttl: Option<&str>) -> Result<Option<SystemTime>, String> {
    ttl.map(|ttl| {
        humantime::parse_duration(ttl)
            .map(|d| SystemTime::now() + d)
            .map_err(|e| format!("{ttl}: {e} (examples: 30d, 12h, 15m)"))
    })
    .transpose()
}

/// Runs a token subcommand.
pub fn run(config: &Config, server: Option<&str>, command: TokenCmd) -> Result<(), CliError> {
    let store = open_store(config)?;
    match command {
        TokenCmd::Create(grant) => {
            let (id, secret) = store.create_token(&grant.to_new()?)?;
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
            let rows: Vec<Vec<String>> = tokens.iter().map(|t| columns(t, now, None)).collect();
            table::print(&header(None), &rows);
        }
        TokenCmd::Revoke { id } => {
            revoke(config, server, &store, CredentialKind::Token, &id)?;
            println!("revoked {id}");
        }
        TokenCmd::RevokeSubject { identity } => {
            match Remote::from_env(config, server)? {
                Some(api) => {
                    api.post(
                        "/v1/subjects/revoke",
                        &serde_json::json!({ "identity": identity }),
                    )?;
                }
                None => store.revoke_subject(&identity, &format!("cli:{}", cli_user()))?,
            }
            println!("revoked subject {identity}");
        }
    }
    Ok(())
}

/// Revokes a token or key: through the running gateway's admin API when `GATEHOUSE_TOKEN` is
/// set (its sessions end at once), else in the store (the gateway sees it at its next poll).
pub fn revoke(
    config: &Config,
    server: Option<&str>,
    store: &Store,
    kind: CredentialKind,
    id: &str,
) -> Result<(), CliError> {
    if let Some(api) = Remote::from_env(config, server)? {
        let resource = match kind {
            CredentialKind::Token => "tokens",
            CredentialKind::SshKey => "keys",
        };
        api.post(
            &format!("/v1/{resource}/{id}/revoke"),
            &serde_json::json!({}),
        )?;
    } else {
        store.revoke_credential(kind, id, &format!("cli:{}", cli_user()))?;
    }
    Ok(())
}

/// The listing's header; a key listing has a fingerprint column after the groups.
pub fn header(extra: Option<&'static str>) -> Vec<&'static str> {
    let mut h = vec!["ID", "IDENTITY", "GROUPS"];
    h.extend(extra);
    h.extend(["CONNECTIONS", "STATE", "CREATED", "EXPIRES"]);
    h
}

/// A token's (or key's) row under [`header`].
pub fn columns(t: &TokenRow, now: SystemTime, extra: Option<String>) -> Vec<String> {
    let state = if t.revoked_at.is_some() {
        "revoked"
    } else if !t.is_valid_at(now) {
        "expired"
    } else {
        "active"
    };
    let mut row = vec![
        t.id.0.clone(),
        t.identity.name.clone(),
        t.identity.groups.join(","),
    ];
    row.extend(extra);
    row.extend([
        if t.connections.is_empty() {
            "*".into()
        } else {
            t.connections.join(",")
        },
        state.into(),
        display(t.created_at),
        t.expires_at.map(display).unwrap_or_else(|| "never".into()),
    ]);
    row
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

/// Who runs the CLI, for `created_by` and `revoked_by`.
fn cli_user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "cli".into())
}
