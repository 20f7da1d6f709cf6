//! `gatehouse key add | list | remove`: SSH public keys registered to an identity, the SSH
//! wire's alternative to a token as password. A key is granted, listed and revoked like a
//! token (the shared pieces are in [`super::token`]).

use std::io::Read;
use std::time::SystemTime;

use clap::Subcommand;
use gatehouse_audit::{CredentialKind, KeyRow};

use super::open_store;
use super::token::{columns, header, revoke, token_json, Grant};
use crate::config::Config;
use crate::error::CliError;
use crate::table;

/// The most read from `--public-key`: far past any public key, short of reading a wrong file
/// whole.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Key subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Register an SSH public key to an identity; prints the key's id alone on stdout.
    Add {
        #[command(flatten)]
        grant: Grant,
        /// The public key file (`~/.ssh/id_ed25519.pub`), or `-` for stdin.
        #[arg(long)]
        public_key: String,
    },
    /// List registered keys (id, identity, groups, fingerprint, scope, state, times).
    List {
        /// JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Remove (revoke) a key; a running gateway ends its sessions within a second.
    Remove {
        /// The key id (`key_...`).
        id: String,
    },
}

/// Runs a key subcommand.
pub fn run(config: &Config, server: Option<&str>, command: KeyCmd) -> Result<(), CliError> {
    let store = open_store(config)?;
    match command {
        KeyCmd::Add { grant, public_key } => {
            let line = read_key_line(&public_key)?;
            let key = store.add_key(&grant.to_new()?, &line)?;
            eprintln!(
                "registered {} key {} ({}) for {}",
                key.key_type(),
                key.token.id,
                key.fingerprint,
                key.token.identity.name
            );
            println!("{}", key.token.id);
        }
        KeyCmd::List { json } => {
            let keys = store.list_keys()?;
            if json {
                let rows: Vec<serde_json::Value> = keys.iter().map(key_json).collect();
                table::json(&rows);
                return Ok(());
            }
            let now = SystemTime::now();
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| columns(&k.token, now, Some(k.fingerprint.clone())))
                .collect();
            table::print(&header(Some("FINGERPRINT")), &rows);
        }
        KeyCmd::Remove { id } => {
            revoke(config, server, &store, CredentialKind::SshKey, &id)?;
            println!("removed {id}");
        }
    }
    Ok(())
}

/// A key as the listings show it in JSON: a token's fields, and the key's.
pub fn key_json(k: &KeyRow) -> serde_json::Value {
    let mut json = token_json(&k.token);
    if let serde_json::Value::Object(map) = &mut json {
        map.insert("fingerprint".into(), k.fingerprint.clone().into());
        map.insert("key_type".into(), k.key_type().into());
        map.insert("public_key".into(), k.public_key.clone().into());
    }
    json
}

/// The one key line of a `.pub` file (or stdin): blank lines and `#` comments are skipped.
fn read_key_line(source: &str) -> Result<String, CliError> {
    let mut text = String::new();
    let read = if source == "-" {
        std::io::stdin()
            .take(MAX_KEY_FILE)
            .read_to_string(&mut text)
    } else {
        std::fs::File::open(source).and_then(|f| f.take(MAX_KEY_FILE).read_to_string(&mut text))
    };
    let what = if source == "-" { "stdin" } else { source };
    read.map_err(|e| CliError::Usage(format!("--public-key {what}: {e}")))?;
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    match (lines.next(), lines.next()) {
        (Some(line), None) => Ok(line.to_owned()),
        (None, _) => Err(CliError::Usage(format!(
            "--public-key {what}: no key in it (give the .pub file ssh-keygen wrote)"
        ))),
        // Said before anything else: a private key goes no further than this message.
        (Some(_), Some(_)) if text.contains("PRIVATE KEY") => Err(CliError::Usage(format!(
            "--public-key {what}: {}",
            gatehouse_core::PublicKeyError::NotPublic
        ))),
        (Some(_), Some(_)) => Err(CliError::Usage(format!(
            "--public-key {what}: more than one line; give one key (one .pub file) at a time"
        ))),
    }
}
