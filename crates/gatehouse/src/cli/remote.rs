//! The online commands' client of the admin API: a small blocking HTTP/1.1 client (one request
//! per connection, JSON in and out) authenticated with `GATEHOUSE_TOKEN`.
//!
//! The server is `--server URL` or the configuration's `[listen] admin` (`https://` when
//! `[admin] tls = true`). Over https the gateway's own certificate (`[tls] cert`, or the one
//! it generated in the state directory) is trusted beside the system's roots. A token is never
//! sent over plain HTTP to anything but the loopback interface.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::config::Config;
use crate::error::CliError;

/// Longest answer read (listings are bounded server-side).
const MAX_ANSWER: u64 = 256 << 20;

/// A configured connection to the admin API.
#[derive(Debug, Clone)]
pub struct Remote {
    host_port: String,
    token: String,
    /// Over https: the TLS settings and the name the certificate must carry.
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

impl Remote {
    /// The API of the running gateway, if `GATEHOUSE_TOKEN` is set; `None` otherwise.
    pub fn from_env(config: &Config, server: Option<&str>) -> Result<Option<Self>, CliError> {
        let Ok(token) = std::env::var("GATEHOUSE_TOKEN") else {
            return Ok(None);
        };
        let server = match server {
            Some(s) => s.to_owned(),
            None => {
                let admin = config.listen.admin.clone().ok_or_else(|| {
                    CliError::Usage(
                        "the configuration has no [listen] admin; pass --server https://HOST:PORT"
                            .into(),
                    )
                })?;
                let scheme = if config.admin.tls { "https" } else { "http" };
                format!("{scheme}://{admin}")
            }
        };
        let (https, rest) = if let Some(rest) = server.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = server.strip_prefix("http://") {
            (false, rest)
        } else if server.contains("://") {
            return Err(CliError::Usage(format!(
                "--server {server}: give an https:// (or, on this machine, http://) URL"
            )));
        } else {
            (config.admin.tls, server.as_str())
        };
        let host_port = rest.trim_end_matches('/').to_owned();
        let host = host_of(&host_port);
        let tls = if https {
            let name = ServerName::try_from(host.to_owned()).map_err(|e| {
                CliError::Usage(format!(
                    "--server {server}: {host:?} is not a TLS name: {e}"
                ))
            })?;
            Some((client_config(config)?, name))
        } else {
            if !gatehouse_core::connection::is_loopback_host(host) {
                return Err(CliError::Usage(format!(
                    "refusing to send your token over plain HTTP to {host}: use \
                     --server https://{host_port} (the gateway's `[admin] tls = true`)"
                )));
            }
            None
        };
        Ok(Some(Self {
            host_port,
            token: token.trim().to_owned(),
            tls,
        }))
    }

    /// Like [`Remote::from_env`], but the command cannot run without it.
    pub fn required(config: &Config, server: Option<&str>) -> Result<Self, CliError> {
        Self::from_env(config, server)?.ok_or_else(|| {
            CliError::Usage(
                "this command acts on the running gateway: set GATEHOUSE_TOKEN to your token"
                    .into(),
            )
        })
    }

    /// `GET path`, the JSON answer.
    pub fn get(&self, path: &str) -> Result<serde_json::Value, CliError> {
        self.call("GET", path, None)
    }

    /// `POST path` with a JSON body, the JSON answer.
    pub fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, CliError> {
        self.call("POST", path, Some(body))
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, CliError> {
        let unreachable = |e: std::io::Error| {
            CliError::Remote(format!(
                "cannot reach the admin API at {}: {e} (is `gatehouse serve` running with [listen] admin?)",
                self.host_port
            ))
        };
        let tcp = TcpStream::connect(&self.host_port).map_err(unreachable)?;
        tcp.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(unreachable)?;
        let mut stream: Box<dyn ReadWrite> = match &self.tls {
            Some((config, name)) => {
                let conn = rustls::ClientConnection::new(config.clone(), name.clone())
                    .map_err(|e| CliError::Remote(format!("TLS to {}: {e}", self.host_port)))?;
                Box::new(rustls::StreamOwned::new(conn, tcp))
            }
            None => Box::new(tcp),
        };
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.host_port,
            self.token,
            body.len()
        );
        stream.write_all(request.as_bytes()).map_err(unreachable)?;
        let mut answer = Vec::new();
        match stream.take(MAX_ANSWER).read_to_end(&mut answer) {
            Ok(_) => {}
            // A TLS peer that closes without close_notify after a whole answer: the answer's
            // own framing (parsed below) says whether it is complete.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
            Err(e) => return Err(unreachable(e)),
        }
        let (status, body) = parse_answer(&answer)?;
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(
            |_| serde_json::json!({ "error": String::from_utf8_lossy(&body).trim().to_owned() }),
        );
        if !(200..300).contains(&status) {
            let message = json
                .get("error")
                .and_then(|e| e.as_str())
                .unwrap_or("no reason given")
                .to_owned();
            return Err(CliError::Remote(format!("{message} (HTTP {status})")));
        }
        Ok(json)
    }
}

/// A stream the client talks over: plain TCP or TLS.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// The host of `host:port` or `[v6]:port`, without brackets.
fn host_of(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
}

/// TLS toward the admin API: the system's roots and the gateway's own certificate.
fn client_config(config: &Config) -> Result<Arc<rustls::ClientConfig>, CliError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let own = match &config.tls {
        Some(t) => Some(config.resolve(&t.cert)),
        None => config.state_dir().ok().map(|d| d.join("tls/gateway.crt")),
    };
    if let Some(path) = own.filter(|p| p.exists()) {
        let certs = CertificateDer::pem_file_iter(&path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| CliError::Tls(format!("cannot read {}: {e}", path.display())))?;
        roots.add_parsable_certificates(certs);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CliError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Splits an HTTP/1.1 answer into its status and body (Content-Length, chunked, or to EOF).
fn parse_answer(answer: &[u8]) -> Result<(u16, Vec<u8>), CliError> {
    let bad = || CliError::Remote("the admin API sent a malformed answer".into());
    let head_end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(bad)?;
    let head = std::str::from_utf8(&answer[..head_end]).map_err(|_| bad())?;
    let body = &answer[head_end + 4..];
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if !chunked {
        return Ok((status, body.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| bad())?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad())?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok((status, out));
        }
        out.extend_from_slice(rest.get(..size).ok_or_else(bad)?);
        rest = rest.get(size + 2..).ok_or_else(bad)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_split_plain_and_chunked() {
        let (s, b) = parse_answer(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((s, b.as_slice()), (200, b"{}".as_slice()));
        let (s, b) = parse_answer(
            b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((s, b.as_slice()), (404, b"abcde".as_slice()));
        assert!(parse_answer(b"garbage").is_err());
    }
}
