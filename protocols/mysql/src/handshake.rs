//! The connection phase's messages: the server greeting (HandshakeV10), the client's
//! HandshakeResponse41 (and the SSLRequest that precedes it for TLS). The answers to the
//! authentication plugins' challenges are in [`crate::auth`].

use crate::codec::{put_lenenc_bytes, Reader};
use crate::error::MysqlError;

/// Capability flags the gateway uses (the protocol's `CLIENT_*`).
pub mod caps {
    /// Longer passwords.
    pub const LONG_PASSWORD: u32 = 1;
    /// Found rows instead of affected rows.
    pub const FOUND_ROWS: u32 = 1 << 1;
    /// All column flags.
    pub const LONG_FLAG: u32 = 1 << 2;
    /// A database may be named in the handshake.
    pub const CONNECT_WITH_DB: u32 = 1 << 3;
    /// Compression (never offered by the gateway).
    pub const COMPRESS: u32 = 1 << 5;
    /// `LOAD DATA LOCAL`.
    pub const LOCAL_FILES: u32 = 1 << 7;
    /// The 4.1 protocol.
    pub const PROTOCOL_41: u32 = 1 << 9;
    /// TLS after the SSLRequest.
    pub const SSL: u32 = 1 << 11;
    /// Transactions status in OK packets.
    pub const TRANSACTIONS: u32 = 1 << 13;
    /// 4.1 authentication.
    pub const SECURE_CONNECTION: u32 = 1 << 15;
    /// Several statements per COM_QUERY.
    pub const MULTI_STATEMENTS: u32 = 1 << 16;
    /// Several result sets per command.
    pub const MULTI_RESULTS: u32 = 1 << 17;
    /// Several result sets from prepared statements.
    pub const PS_MULTI_RESULTS: u32 = 1 << 18;
    /// Authentication plugins.
    pub const PLUGIN_AUTH: u32 = 1 << 19;
    /// Connection attributes.
    pub const CONNECT_ATTRS: u32 = 1 << 20;
    /// Length-encoded authentication data.
    pub const PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;
    /// Session state tracking.
    pub const SESSION_TRACK: u32 = 1 << 23;
    /// OK packets instead of EOF packets.
    pub const DEPRECATE_EOF: u32 = 1 << 24;
    /// Parser ignores spaces before `(`.
    pub const IGNORE_SPACE: u32 = 1 << 8;
    /// The interactive timeout applies.
    pub const INTERACTIVE: u32 = 1 << 10;

    /// What the gateway offers a client: only what it relays faithfully. Not compression
    /// (the relay reads every packet), not `DEPRECATE_EOF` or session tracking (both sides
    /// then speak the classic EOF and OK forms whatever the server supports, so the two
    /// sides cannot disagree on a packet's shape), not query attributes or optional metadata
    /// (they change COM_QUERY/EXECUTE and result layouts). `SSL` is added when the listener
    /// has TLS.
    pub const GATEWAY: u32 = LONG_PASSWORD
        | FOUND_ROWS
        | LONG_FLAG
        | CONNECT_WITH_DB
        | LOCAL_FILES
        | IGNORE_SPACE
        | PROTOCOL_41
        | INTERACTIVE
        | TRANSACTIONS
        | SECURE_CONNECTION
        | MULTI_STATEMENTS
        | MULTI_RESULTS
        | PS_MULTI_RESULTS
        | PLUGIN_AUTH
        | CONNECT_ATTRS
        | PLUGIN_AUTH_LENENC_CLIENT_DATA;
}

/// An SSLRequest payload: the fixed part of a HandshakeResponse41.
pub fn ssl_request(capabilities: u32, max_packet: u32, charset: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(SSL_REQUEST_LEN);
    out.extend_from_slice(&(capabilities | caps::SSL).to_le_bytes());
    out.extend_from_slice(&max_packet.to_le_bytes());
    out.push(charset);
    out.extend_from_slice(&[0; 23]);
    out
}

/// An AuthSwitchRequest payload: the server asks the client to answer with `plugin`.
pub fn auth_switch_request(plugin: &str, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0xFE];
    out.extend_from_slice(plugin.as_bytes());
    out.push(0);
    out.extend_from_slice(data);
    out.push(0);
    out
}

/// A server's greeting (HandshakeV10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// Server version text.
    pub server_version: String,
    /// Connection (thread) id.
    pub connection_id: u32,
    /// The 20-byte scramble (authentication challenge).
    pub scramble: Vec<u8>,
    /// Capability flags (lower 32 bits).
    pub capabilities: u32,
    /// Default character set.
    pub charset: u8,
    /// Status flags.
    pub status: u16,
    /// Default authentication plugin.
    pub auth_plugin: String,
}

impl Greeting {
    /// Decodes a greeting payload.
    pub fn decode(payload: &[u8]) -> Result<Self, MysqlError> {
        let mut r = Reader::new(payload);
        if r.u8()? != 10 {
            return Err(MysqlError::Malformed("not a protocol 10 greeting"));
        }
        let server_version = String::from_utf8_lossy(r.cstr()?).into_owned();
        let connection_id = r.uint(4)? as u32;
        let mut scramble = r.take(8)?.to_vec();
        r.take(1)?;
        let low = r.uint(2)? as u32;
        let charset = r.u8()?;
        let status = r.uint(2)? as u16;
        let high = r.uint(2)? as u32;
        let capabilities = low | high << 16;
        let data_len = usize::from(r.u8()?);
        r.take(10)?;
        if capabilities & caps::SECURE_CONNECTION != 0 {
            let n = data_len.saturating_sub(8).max(13);
            let rest = r.take(n.min(r.remaining()))?;
            // The second part ends with a NUL that is not part of the scramble.
            scramble.extend_from_slice(rest.strip_suffix(&[0]).unwrap_or(rest));
        }
        let auth_plugin = if capabilities & caps::PLUGIN_AUTH != 0 && r.remaining() > 0 {
            let rest = r.rest();
            let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
            String::from_utf8_lossy(&rest[..end]).into_owned()
        } else {
            "mysql_native_password".into()
        };
        Ok(Self {
            server_version,
            connection_id,
            scramble,
            capabilities,
            charset,
            status,
            auth_plugin,
        })
    }

    /// Encodes the greeting.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![10];
        out.extend_from_slice(self.server_version.as_bytes());
        out.push(0);
        out.extend_from_slice(&self.connection_id.to_le_bytes());
        let (first, second) = self.scramble.split_at(self.scramble.len().min(8));
        out.extend_from_slice(first);
        out.push(0);
        out.extend_from_slice(&(self.capabilities as u16).to_le_bytes());
        out.push(self.charset);
        out.extend_from_slice(&self.status.to_le_bytes());
        out.extend_from_slice(&((self.capabilities >> 16) as u16).to_le_bytes());
        out.push((self.scramble.len() + 1) as u8);
        out.extend_from_slice(&[0; 10]);
        out.extend_from_slice(second);
        out.push(0);
        out.extend_from_slice(self.auth_plugin.as_bytes());
        out.push(0);
        out
    }
}

/// A client's HandshakeResponse41 (or, cut short, its SSLRequest).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandshakeResponse {
    /// Capability flags.
    pub capabilities: u32,
    /// Largest packet the client takes.
    pub max_packet: u32,
    /// Character set.
    pub charset: u8,
    /// User name (the gateway records it as claimed).
    pub user: String,
    /// Authentication data.
    pub auth: Vec<u8>,
    /// Database asked for (the gateway's connection name).
    pub database: Option<String>,
    /// Authentication plugin the client answered with.
    pub auth_plugin: Option<String>,
}

/// Bytes of an SSLRequest (a HandshakeResponse41 cut after its fixed part).
pub const SSL_REQUEST_LEN: usize = 32;

impl HandshakeResponse {
    /// Whether a payload is an SSLRequest rather than a whole response.
    pub fn is_ssl_request(payload: &[u8]) -> bool {
        payload.len() == SSL_REQUEST_LEN
            && payload
                .get(..4)
                .is_some_and(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) & caps::SSL != 0)
    }

    /// Decodes a HandshakeResponse41.
    pub fn decode(payload: &[u8]) -> Result<Self, MysqlError> {
        let mut r = Reader::new(payload);
        let capabilities = r.uint(4)? as u32;
        if capabilities & caps::PROTOCOL_41 == 0 {
            return Err(MysqlError::Malformed(
                "the client does not speak protocol 4.1",
            ));
        }
        let max_packet = r.uint(4)? as u32;
        let charset = r.u8()?;
        r.take(23)?;
        let user = String::from_utf8_lossy(r.cstr()?).into_owned();
        let auth = if capabilities & caps::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            r.lenenc_bytes()?.unwrap_or_default().to_vec()
        } else if capabilities & caps::SECURE_CONNECTION != 0 {
            let n = usize::from(r.u8()?);
            r.take(n)?.to_vec()
        } else {
            r.cstr()?.to_vec()
        };
        let database = if capabilities & caps::CONNECT_WITH_DB != 0 && r.remaining() > 0 {
            Some(String::from_utf8_lossy(r.cstr()?).into_owned())
        } else {
            None
        };
        let auth_plugin = if capabilities & caps::PLUGIN_AUTH != 0 && r.remaining() > 0 {
            Some(String::from_utf8_lossy(r.cstr()?).into_owned())
        } else {
            None
        };
        Ok(Self {
            capabilities,
            max_packet,
            charset,
            user,
            auth,
            database,
            auth_plugin,
        })
    }

    /// Encodes a HandshakeResponse41 (connection attributes are not sent).
    pub fn encode(&self) -> Vec<u8> {
        let capabilities = self.capabilities & !caps::CONNECT_ATTRS;
        let mut out = Vec::with_capacity(64 + self.auth.len());
        out.extend_from_slice(&capabilities.to_le_bytes());
        out.extend_from_slice(&self.max_packet.to_le_bytes());
        out.push(self.charset);
        out.extend_from_slice(&[0; 23]);
        out.extend_from_slice(self.user.as_bytes());
        out.push(0);
        if capabilities & caps::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            put_lenenc_bytes(&mut out, Some(&self.auth));
        } else {
            out.push(self.auth.len() as u8);
            out.extend_from_slice(&self.auth);
        }
        if capabilities & caps::CONNECT_WITH_DB != 0 {
            out.extend_from_slice(self.database.as_deref().unwrap_or_default().as_bytes());
            out.push(0);
        }
        if capabilities & caps::PLUGIN_AUTH != 0 {
            out.extend_from_slice(self.auth_plugin.as_deref().unwrap_or_default().as_bytes());
            out.push(0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings_round_trip() {
        let g = Greeting {
            server_version: "10.11.19-MariaDB-gatehouse".into(),
            connection_id: 42,
            scramble: (1..=20).collect(),
            capabilities: caps::PROTOCOL_41
                | caps::SECURE_CONNECTION
                | caps::PLUGIN_AUTH
                | caps::SSL
                | caps::DEPRECATE_EOF,
            charset: 45,
            status: 2,
            auth_plugin: "mysql_clear_password".into(),
        };
        assert_eq!(Greeting::decode(&g.encode()).unwrap(), g);
        assert!(Greeting::decode(&[9, 0]).is_err());
        assert!(Greeting::decode(&g.encode()[..12]).is_err());
    }

    #[test]
    fn responses_round_trip_and_ssl_requests_are_told_apart() {
        let r = HandshakeResponse {
            capabilities: caps::PROTOCOL_41
                | caps::SECURE_CONNECTION
                | caps::PLUGIN_AUTH
                | caps::PLUGIN_AUTH_LENENC_CLIENT_DATA
                | caps::CONNECT_WITH_DB,
            max_packet: 1 << 24,
            charset: 45,
            user: "etl".into(),
            auth: b"gh_token".to_vec(),
            database: Some("payments".into()),
            auth_plugin: Some("mysql_clear_password".into()),
        };
        let bytes = r.encode();
        assert_eq!(HandshakeResponse::decode(&bytes).unwrap(), r);
        assert!(!HandshakeResponse::is_ssl_request(&bytes));
        let mut ssl = bytes[..SSL_REQUEST_LEN].to_vec();
        ssl[1] |= (caps::SSL >> 8) as u8;
        assert!(HandshakeResponse::is_ssl_request(&ssl));
        assert!(HandshakeResponse::decode(&bytes[..40]).is_err());
    }
}
