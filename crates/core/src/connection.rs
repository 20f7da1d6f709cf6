//! Connections: the named upstream servers the gateway fronts, and who may open them.

use std::fmt;

use crate::error::CoreError;

/// The wire protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// PostgreSQL frontend/backend protocol v3.
    Postgres,
    /// MySQL / MariaDB client/server protocol.
    Mysql,
    /// SSH 2.
    Ssh,
}

impl Protocol {
    /// The name used in configuration and in the audit store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
            Self::Ssh => "ssh",
        }
    }

    /// Parses the configuration name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "postgres" => Some(Self::Postgres),
            "mysql" => Some(Self::Mysql),
            "ssh" => Some(Self::Ssh),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the gateway secures its own connection to the upstream server
/// (the meanings of libpq's `sslmode` of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpstreamTls {
    /// Plain TCP.
    Disable,
    /// TLS if the server offers it, plain otherwise; the certificate is not checked.
    #[default]
    Prefer,
    /// TLS or nothing; the certificate is not checked.
    Require,
    /// TLS, the certificate chain checked against the CA and the host name matched.
    VerifyFull,
}

impl UpstreamTls {
    /// Parses the configuration name (`disable`, `prefer`, `require`, `verify-full`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "disable" => Some(Self::Disable),
            "prefer" => Some(Self::Prefer),
            "require" => Some(Self::Require),
            "verify-full" => Some(Self::VerifyFull),
            _ => None,
        }
    }
}

/// A secret the gateway holds for the upstream (never shown to a client).
///
/// `Debug` prints a placeholder so a secret cannot reach a log by accident.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a resolved secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Reads the secret from an environment variable.
    pub fn from_env(var: &str) -> Result<Self, CoreError> {
        std::env::var(var).map(Self).map_err(|e| CoreError::Secret {
            what: format!("env {var}"),
            why: e.to_string(),
        })
    }

    /// Reads the secret from a file; one trailing newline is dropped.
    pub fn from_file(path: &str) -> Result<Self, CoreError> {
        let text = std::fs::read_to_string(path).map_err(|e| CoreError::Secret {
            what: format!("file {path}"),
            why: e.to_string(),
        })?;
        let trimmed = text.strip_suffix('\n').unwrap_or(&text);
        Ok(Self(
            trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned(),
        ))
    }

    /// The secret value, for the upstream handshake only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One `[[connection]]` of the configuration, resolved.
#[derive(Debug, Clone)]
pub struct ConnectionSpec {
    /// The name clients ask for (the PostgreSQL `dbname`, the SSH user).
    pub name: String,
    /// The upstream's wire protocol.
    pub protocol: Protocol,
    /// `host:port` of the upstream server.
    pub address: String,
    /// Database to open upstream (SQL protocols).
    pub database: Option<String>,
    /// The user the gateway logs in as upstream.
    pub username: String,
    /// The gateway-held password, if the upstream asks for one.
    pub password: Option<Secret>,
    /// Identity groups allowed to open this connection.
    pub groups: Vec<String>,
    /// TLS toward the upstream.
    pub tls: UpstreamTls,
    /// PEM file of CA certificates for `verify-full` (the system store if absent).
    pub tls_ca: Option<String>,
    /// MySQL: whether `LOAD DATA LOCAL INFILE` may send a client's file upstream (refused
    /// otherwise; when allowed, the file name and bytes are recorded).
    pub local_infile: bool,
    /// PostgreSQL: whether a client's startup `options` (`-c setting=value` for the whole
    /// session, applied before any statement the audit sees) are passed upstream; refused
    /// otherwise.
    pub startup_options: bool,
    /// SSH: the gateway-held private key (OpenSSH format) the upstream host trusts; it never
    /// leaves the gateway.
    pub private_key: Option<Secret>,
    /// SSH: the upstream's host key, pinned (`ssh-ed25519 AAAA...`, as in `known_hosts`).
    pub host_key: Option<String>,
    /// SSH: whether clients may open TCP tunnels (direct-tcpip) through this connection; each
    /// is audited with its destination and bytes.
    pub port_forwarding: bool,
    /// SSH: files uploaded (SFTP, scp) no larger than this many bytes are copied into the
    /// session's recording (as masked text; 0 copies none), so a replay shows the script or
    /// module a job uploaded and then ran. Every file's SHA-256 and size are recorded whatever
    /// its size.
    pub upload_copy_max_bytes: u64,
}

/// The default of [`ConnectionSpec::upload_copy_max_bytes`]: 1 MiB.
pub const UPLOAD_COPY_MAX_BYTES: u64 = 1 << 20;

impl ConnectionSpec {
    /// What a client is told, on every wire, when this connection's server cannot be reached
    /// or refuses the gateway's login.
    pub fn unavailable(&self, why: impl std::fmt::Display) -> String {
        format!("connection \"{}\" is unavailable: {why}", self.name)
    }
}

/// Whether `host` (a name or an address, without port or brackets) is this machine's loopback
/// interface: `localhost` or a loopback address. What crosses it never reaches a network.
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
