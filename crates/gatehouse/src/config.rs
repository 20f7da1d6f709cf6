//! The configuration file (TOML), per the contract in DESIGN.md. Only this crate reads it.
//!
//! Relative paths in the file are relative to the file's own directory, so a config works the
//! same from wherever `gatehouse` is started.

use std::path::{Path, PathBuf};

use gatehouse_audit::{Location, Store, StoreOptions};
use gatehouse_core::mask::{MaskPolicy, MaskSpec};
use gatehouse_core::oidc::{OidcSpec, OidcVerifier};
use gatehouse_core::{ConnectionSpec, Protocol, RuleSpec, Rules, Secret, UpstreamTls};
use serde::Deserialize;

use crate::error::CliError;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[gateway]`.
    #[serde(default)]
    pub gateway: GatewaySection,
    /// `[listen]`.
    #[serde(default)]
    pub listen: ListenSection,
    /// `[tls]`.
    pub tls: Option<TlsSection>,
    /// `[[connection]]`.
    #[serde(default)]
    pub connection: Vec<ConnectionSection>,
    /// `[[oidc]]`: issuers whose JWTs are taken as tokens.
    #[serde(default)]
    pub oidc: Vec<OidcSpec>,
    /// `[[rule]]`: guardrails, first match wins.
    #[serde(default)]
    pub rule: Vec<RuleSpec>,
    /// `[admin]`: who may use the admin API.
    #[serde(default)]
    pub admin: AdminSection,
    /// `[[mask]]`: what identities may not see.
    #[serde(default)]
    pub mask: Vec<MaskSpec>,
    /// `[limits]`: connections held at once, per listener and per client address.
    #[serde(default)]
    pub limits: crate::limits::LimitsSection,
    /// `[[webhook]]`: where approvers are told of requests and decisions.
    #[serde(default)]
    pub webhook: Vec<crate::webhook::WebhookSpec>,
    /// The directory relative paths are resolved against.
    #[serde(skip)]
    pub base: PathBuf,
    /// The file it was read from.
    #[serde(skip)]
    pub path: PathBuf,
}

/// `[gateway]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// The store: `sqlite:PATH` (the embedded default; one gateway) or
    /// `postgres://user:password@host:port/db` (several gateways sharing one store).
    #[serde(default = "default_state")]
    pub state: String,
    /// The local state directory (journal, chain key, masking key, TLS and SSH host keys).
    /// Default: the SQLite file's directory, or `var` beside the configuration for PostgreSQL.
    #[serde(default)]
    pub state_dir: Option<String>,
    /// This gateway's instance id on a PostgreSQL store: names its journal and its chain.
    /// Default: the host name. Two gateways on one host need different ones.
    #[serde(default)]
    pub instance: Option<String>,
    /// Directory of session recordings.
    #[serde(default = "default_recordings")]
    pub recordings: String,
    /// How long evidence is kept.
    #[serde(default = "default_retention")]
    pub retention_days: u32,
    /// Allows `retention_days` below PCI DSS's 365.
    #[serde(default)]
    pub retention_force: bool,
}

impl Default for GatewaySection {
    fn default() -> Self {
        Self {
            state: default_state(),
            state_dir: None,
            instance: None,
            recordings: default_recordings(),
            retention_days: default_retention(),
            retention_force: false,
        }
    }
}

fn default_state() -> String {
    "sqlite:var/gatehouse.db".into()
}

fn default_recordings() -> String {
    "var/recordings".into()
}

fn default_retention() -> u32 {
    365
}

/// `[listen]`: one address per wire; absent wires are not served.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenSection {
    /// PostgreSQL listener.
    pub postgres: Option<String>,
    /// MySQL listener (`host:port`).
    pub mysql: Option<String>,
    /// SSH listener (`host:port`).
    pub ssh: Option<String>,
    /// Admin HTTP API listener (`host:port`; HTTPS with `[admin] tls`).
    pub admin: Option<String>,
}

/// `[admin]`: the admin API's access.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// Groups whose members may use every admin endpoint (tokens, sessions, audit, approvals).
    /// Approvers of a review rule may always list and decide approvals.
    #[serde(default = "default_admin_groups")]
    pub groups: Vec<String>,
    /// Serve the admin API over HTTPS with the gateway's `[tls]` certificate (or the one it
    /// generates). Required when `[listen] admin` is not a loopback address: the API carries
    /// tokens.
    #[serde(default)]
    pub tls: bool,
    /// The console's address as approvers reach it (`https://gatehouse.example:18080`), for
    /// the links webhooks carry. Default: the `[listen] admin` address.
    pub console_url: Option<String>,
}

impl Default for AdminSection {
    fn default() -> Self {
        Self {
            groups: default_admin_groups(),
            tls: false,
            console_url: None,
        }
    }
}

fn default_admin_groups() -> Vec<String> {
    vec!["admin".into()]
}

/// `[tls]`: the client-facing certificate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain.
    pub cert: String,
    /// PEM private key.
    pub key: String,
}

/// Where a secret comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum SecretRef {
    /// `{ env = "VAR" }`.
    Env {
        /// Variable name.
        env: String,
    },
    /// `{ file = "path" }`.
    File {
        /// File path.
        file: String,
    },
}

/// `[[connection]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSection {
    /// Name clients ask for.
    pub name: String,
    /// `postgres`, `mysql` or `ssh`.
    pub protocol: String,
    /// `host:port`.
    pub address: String,
    /// Upstream database (defaults to the connection name).
    pub database: Option<String>,
    /// Upstream user.
    pub username: String,
    /// Upstream password.
    pub password: Option<SecretRef>,
    /// Groups allowed to open it.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Upstream TLS: `disable`, `prefer` (default), `require`, `verify-full`.
    pub tls: Option<String>,
    /// CA file for `verify-full`.
    pub tls_ca: Option<String>,
    /// MySQL: allow `LOAD DATA LOCAL INFILE` (default false).
    #[serde(default)]
    pub local_infile: bool,
    /// PostgreSQL: pass a client's startup `options` upstream (default false: refused).
    #[serde(default)]
    pub startup_options: bool,
    /// SSH: the gateway's private key for the host (OpenSSH format).
    pub private_key: Option<SecretRef>,
    /// SSH: the pinned host key (`ssh-ed25519 AAAA...`).
    pub host_key: Option<String>,
    /// SSH: allow TCP tunnels (direct-tcpip) through this connection (default false).
    #[serde(default)]
    pub port_forwarding: bool,
    /// SSH: uploaded files up to this many bytes are copied into the recording (default
    /// 1 MiB; 0: none).
    #[serde(default = "default_upload_copy_max_bytes")]
    pub upload_copy_max_bytes: u64,
}

fn default_upload_copy_max_bytes() -> u64 {
    gatehouse_core::connection::UPLOAD_COPY_MAX_BYTES
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, CliError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::Config(format!(
                "cannot read {}: {e} (pass --config FILE, or run from the directory holding gatehouse.toml)",
                path.display()
            ))
        })?;
        let mut config: Config = toml::from_str(&text)
            .map_err(|e| CliError::Config(format!("{}: {e}", path.display())))?;
        config.path = path.to_owned();
        config.base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("."));
        if config.gateway.retention_days < 365 && !config.gateway.retention_force {
            return Err(CliError::Config(format!(
                "[gateway] retention_days = {} is below PCI DSS 10.5.1's minimum of 365 days; \
                 raise it, or add retention_force = true if you must keep less",
                config.gateway.retention_days
            )));
        }
        if config.gateway.retention_days == 0 {
            return Err(CliError::Config(
                "[gateway] retention_days = 0 would remove everything; give a number of days"
                    .into(),
            ));
        }
        // Checked now (with a throwaway key) so every command refuses a bad file alike.
        config.masks(vec![0; 32])?;
        config.rules()?;
        Ok(config)
    }

    /// A path from the file, resolved against the file's directory.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base.join(p)
        }
    }

    /// The store named by `[gateway] state`.
    pub fn store_location(&self) -> Result<Location, CliError> {
        Location::parse(&self.gateway.state, &self.base)
            .map_err(|e| CliError::Config(format!("[gateway] {e}")))
    }

    /// The local state directory: `[gateway] state_dir`, else the SQLite file's directory,
    /// else `var`.
    pub fn state_dir(&self) -> Result<PathBuf, CliError> {
        if let Some(dir) = &self.gateway.state_dir {
            return Ok(self.resolve(dir));
        }
        Ok(match self.store_location()? {
            Location::Sqlite(path) => path
                .parent()
                .map(Path::to_owned)
                .unwrap_or_else(|| self.base.clone()),
            Location::Postgres(_) => self.resolve("var"),
        })
    }

    /// Opens the store (creating its tables if needed).
    pub fn open_store(&self) -> Result<Store, CliError> {
        let options = StoreOptions {
            state_dir: Some(self.state_dir()?),
            instance: self.gateway.instance.clone(),
        };
        gatehouse_audit::open(&self.gateway.state, &self.base, &options).map_err(|e| match e {
            gatehouse_audit::AuditError::NotFound(why) => {
                CliError::Config(format!("[gateway] {why}"))
            }
            other => other.into(),
        })
    }

    /// The recordings directory.
    pub fn recordings_dir(&self) -> PathBuf {
        self.resolve(&self.gateway.recordings)
    }

    /// The compiled `[[rule]]`s.
    pub fn rules(&self) -> Result<Rules, CliError> {
        Rules::new(self.rule.clone()).map_err(|e| CliError::Config(e.to_string()))
    }

    /// The `[[oidc]]` issuers (JWKS files read now, so a bad one fails at start).
    pub fn oidc(&self) -> Result<OidcVerifier, CliError> {
        OidcVerifier::new(self.oidc.clone(), &self.base)
            .map_err(|e| CliError::Config(e.to_string()))
    }

    /// The compiled `[[mask]]`s, hashing with `hash_key`.
    pub fn masks(&self, hash_key: Vec<u8>) -> Result<MaskPolicy, CliError> {
        MaskPolicy::new(self.mask.clone(), hash_key).map_err(|e| CliError::Config(e.to_string()))
    }

    /// Every group named as an approver by some review rule.
    pub fn approver_groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = self
            .rule
            .iter()
            .flat_map(|r| r.approvers.iter().cloned())
            .collect();
        groups.sort();
        groups.dedup();
        groups
    }

    /// The names of the rules that hold commands for review.
    pub fn review_rules(&self) -> Vec<String> {
        self.rule
            .iter()
            .filter(|r| r.action == "review")
            .map(|r| r.name.clone())
            .collect()
    }

    /// The addresses of the MySQL upstreams.
    pub fn mysql_upstreams(&self) -> impl Iterator<Item = String> + '_ {
        self.connection
            .iter()
            .filter(|c| c.protocol == "mysql")
            .map(|c| c.address.clone())
    }

    /// The connections, resolved (secrets read now, so a missing one fails at start).
    pub fn connections(&self) -> Result<Vec<ConnectionSpec>, CliError> {
        self.connection
            .iter()
            .map(|c| self.resolve_connection(c))
            .collect()
    }

    fn resolve_connection(&self, c: &ConnectionSection) -> Result<ConnectionSpec, CliError> {
        let bad = |what: String| CliError::Config(format!("connection \"{}\": {what}", c.name));
        let protocol = Protocol::parse(&c.protocol).ok_or_else(|| {
            bad(format!(
                "unknown protocol {:?} (postgres, mysql, ssh)",
                c.protocol
            ))
        })?;
        let tls = match &c.tls {
            // Naming a CA means the server's certificate can be checked: then it is.
            None if c.tls_ca.is_some() => UpstreamTls::VerifyFull,
            // On this machine nothing crosses a network: encrypt if offered. Anywhere else the
            // server is verified unless the connection says otherwise.
            None if on_loopback(&c.address) => UpstreamTls::default(),
            None => UpstreamTls::VerifyFull,
            Some(t) => UpstreamTls::parse(t).ok_or_else(|| {
                bad(format!(
                    "unknown tls {t:?} (disable, prefer, require, verify-full)"
                ))
            })?,
        };
        let secret = |r: &Option<SecretRef>| -> Result<Option<Secret>, CliError> {
            Ok(match r {
                None => None,
                Some(SecretRef::Env { env }) => {
                    Some(Secret::from_env(env).map_err(|e| bad(e.to_string()))?)
                }
                Some(SecretRef::File { file }) => Some(
                    Secret::from_file(&self.resolve(file).to_string_lossy())
                        .map_err(|e| bad(e.to_string()))?,
                ),
            })
        };
        let password = secret(&c.password)?;
        let private_key = secret(&c.private_key)?;
        if protocol == Protocol::Ssh && (c.private_key.is_none() || c.host_key.is_none()) {
            return Err(bad(
                "an ssh connection needs private_key and host_key".into()
            ));
        }
        if c.groups.is_empty() {
            tracing::warn!(connection = %c.name, "connection has no groups: nobody can open it");
        }
        Ok(ConnectionSpec {
            name: c.name.clone(),
            protocol,
            address: c.address.clone(),
            database: c.database.clone(),
            username: c.username.clone(),
            password,
            groups: c.groups.clone(),
            tls,
            tls_ca: c
                .tls_ca
                .as_deref()
                .map(|p| self.resolve(p).to_string_lossy().into_owned()),
            local_infile: c.local_infile,
            startup_options: c.startup_options,
            private_key,
            host_key: c.host_key.clone(),
            port_forwarding: c.port_forwarding,
            upload_copy_max_bytes: c.upload_copy_max_bytes,
        })
    }
}

/// Whether a `host:port` address names this machine (`localhost` or a loopback address).
fn on_loopback(address: &str) -> bool {
    let host = match address.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => address.rsplit_once(':').map_or(address, |(h, _)| h),
    };
    gatehouse_core::connection::is_loopback_host(host)
}

#[cfg(test)]
mod tests {
    use super::on_loopback;

    #[test]
    fn loopback_addresses_are_recognised() {
        for a in [
            "127.0.0.1:5432",
            "localhost:3306",
            "[::1]:5432",
            "127.9.9.9:1",
        ] {
            assert!(on_loopback(a), "{a}");
        }
        for a in [
            "10.0.0.5:5432",
            "db.internal:5432",
            "[fe80::1]:5432",
            "0.0.0.0:5432",
        ] {
            assert!(!on_loopback(a), "{a}");
        }
    }
}
