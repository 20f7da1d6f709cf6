//! A minimal HTTP/1.1 client, over TCP or TLS: GET for fetching a JWKS document, POST for
//! the approvers' webhooks (the gateway's one HTTP client).
//!
//! One request per connection (`Connection: close`), no redirects, no compression, no proxies.
//! The whole exchange is bounded: 5 s, 64 KiB of headers, 1 MiB of body. A GET's answer must
//! be `200`, a POST's any `2xx`; the body is framed by `Content-Length`,
//! `Transfer-Encoding: chunked`, or the end of the connection. Plain `http://` is accepted only
//! toward a loopback address: what crosses it (keys that decide who logs in, held statements)
//! must not travel in clear over a network.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The longest a fetch may take, connection and TLS handshake included.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest body accepted.
pub(crate) const MAX_BODY: usize = 1024 * 1024;
/// The largest status line and headers accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The most bytes read from the peer in all: head, body and chunk framing.
const MAX_RESPONSE: usize = MAX_HEAD + 2 * MAX_BODY;
/// The longest chunk-size line accepted (size and extensions).
const MAX_CHUNK_LINE: usize = 1024;

/// A parsed `http://` or `https://` URL and, for `https`, the TLS settings to reach it.
#[derive(Clone)]
pub struct FetchTarget {
    url: String,
    host: String,
    port: u16,
    /// `host[:port]` as written in the URL, for the `Host` header.
    authority: String,
    path: String,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl FetchTarget {
    /// Parses a `jwks_url`; for `https`, trusts the CAs in `ca` (a PEM file) or else the
    /// system's.
    pub(crate) fn new(url: &str, ca: Option<&Path>) -> Result<Self, String> {
        Self::named("jwks_url", url, ca)
    }

    /// Parses `url`, given under the configuration key `what` (named in errors); for `https`,
    /// trusts the CAs in `ca` (a PEM file) or else the system's.
    pub fn named(what: &'static str, url: &str, ca: Option<&Path>) -> Result<Self, String> {
        let (https, rest) = if let Some(rest) = strip_prefix_ignore_case(url, "https://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(url, "http://") {
            (false, rest)
        } else {
            return Err(format!(
                "{what} {url:?} must start with https:// or http://"
            ));
        };
        if ca.is_some() && !https {
            return Err("jwks_ca applies to https:// URLs only".to_owned());
        }
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => (
                rest.get(..at).unwrap_or_default(),
                rest.get(at..).unwrap_or_default(),
            ),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(format!(
                "{what} {url:?} contains spaces or control characters; percent-encode them"
            ));
        }
        if authority.contains('@') {
            return Err(format!(
                "{what} {url:?} carries credentials; they are not supported"
            ));
        }
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| format!("{what} {url:?} has no valid host[:port]"))?;
        if !https && !crate::connection::is_loopback_host(host) {
            return Err(format!(
                "{what} {url:?}: use https:// (http:// is accepted only to a loopback address: \
                 what crosses it must not travel in clear over a network)"
            ));
        }
        let port = port.unwrap_or(if https { 443 } else { 80 });
        let tls = if https {
            Some(Arc::new(client_config(ca)?))
        } else {
            None
        };
        Ok(Self {
            url: url.to_owned(),
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            path,
            tls,
        })
    }

    /// The URL as configured.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// GETs the document; the error says what went wrong, for the log.
    pub(crate) async fn get(&self) -> Result<Vec<u8>, String> {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json, application/jwk-set+json\r\n\
             User-Agent: gatehouse\r\nConnection: close\r\n\r\n",
            self.path, self.authority
        );
        match tokio::time::timeout(FETCH_TIMEOUT, self.exchange(request.into_bytes(), false)).await
        {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(why)) => Err(format!("GET {}: {why}", self.url)),
            Err(_) => Err(format!(
                "GET {}: no complete answer within {} s",
                self.url,
                FETCH_TIMEOUT.as_secs()
            )),
        }
    }

    /// POSTs `body` (of `content_type`); any `2xx` answer is success. The error says what
    /// went wrong, for the log.
    pub async fn post(&self, content_type: &str, body: &[u8]) -> Result<(), String> {
        let mut request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\nUser-Agent: gatehouse\r\nConnection: close\r\n\r\n",
            self.path,
            self.authority,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        match tokio::time::timeout(FETCH_TIMEOUT, self.exchange(request, true)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(why)) => Err(format!("POST {}: {why}", self.url)),
            Err(_) => Err(format!(
                "POST {}: no complete answer within {} s",
                self.url,
                FETCH_TIMEOUT.as_secs()
            )),
        }
    }

    async fn exchange(&self, request: Vec<u8>, any_2xx: bool) -> Result<Vec<u8>, String> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("cannot connect to {}:{}: {e}", self.host, self.port))?;
        match &self.tls {
            None => request_response(tcp, &request, any_2xx).await,
            Some(config) => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|e| format!("{:?} is not a valid TLS server name: {e}", self.host))?;
                let tls = TlsConnector::from(Arc::clone(config))
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS handshake with {} failed: {e}", self.authority))?;
                request_response(tls, &request, any_2xx).await
            }
        }
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| text.get(prefix.len()..))
        .flatten()
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`; the host comes back without brackets.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || (host.contains([':', '/', '[', ']']) && !authority.starts_with('[')) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0)?),
    };
    Some((host, port))
}

fn client_config(ca: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("jwks_ca {}: {e}", path.display()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "jwks_ca {} holds no usable CA certificate",
                    path.display()
                ));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err("no system root certificates found for the https jwks_url; \
                     install them or set jwks_ca"
                    .to_owned());
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS settings: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Writes the request and reads until the response's body is complete.
async fn request_response<S>(
    mut stream: S,
    request: &[u8],
    any_2xx: bool,
) -> Result<Vec<u8>, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream
        .write_all(request)
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    stream
        .flush()
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            // A TLS peer that closes without close_notify: the framing checks below still
            // catch a truncated body, and a truncated JSON document does not parse.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(format!("reading the response: {e}")),
        };
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        let eof = n == 0;
        if let Some(body) = parse_response(&buf, eof, any_2xx)? {
            return Ok(body);
        }
        if buf.len() > MAX_RESPONSE {
            return Err(format!("response larger than {} KiB", MAX_BODY / 1024));
        }
    }
}

/// How the body of a response ends.
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// Parses what has been read so far: `Ok(None)` means "read more" (never at `eof`). The
/// status must be 200, or any 2xx if `any_2xx`.
fn parse_response(buf: &[u8], eof: bool, any_2xx: bool) -> Result<Option<Vec<u8>>, String> {
    let mut rest = buf;
    // Skip interim 1xx answers.
    let (framing, body) = loop {
        let Some(head_len) = find(rest, b"\r\n\r\n") else {
            if rest.len() > MAX_HEAD {
                return Err(format!(
                    "response headers larger than {} KiB",
                    MAX_HEAD / 1024
                ));
            }
            if eof {
                return Err("connection closed before the response headers ended".to_owned());
            }
            return Ok(None);
        };
        let head = rest.get(..head_len).unwrap_or_default();
        let body = rest.get(head_len + 4..).unwrap_or_default();
        let head = std::str::from_utf8(head)
            .map_err(|_| "response headers are not valid UTF-8".to_owned())?;
        match parse_head(head, any_2xx)? {
            Some(framing) => break (framing, body),
            None => rest = body,
        }
    };
    let incomplete = |what: String| {
        if eof {
            Err(format!("connection closed before the body ended ({what})"))
        } else {
            Ok(None)
        }
    };
    match framing {
        Framing::Length(len) => match body.get(..len) {
            Some(body) => Ok(Some(body.to_vec())),
            None => incomplete(format!("{} of {len} bytes", body.len())),
        },
        Framing::Chunked => match decode_chunked(body)? {
            Some(body) => Ok(Some(body)),
            None => incomplete("chunked".to_owned()),
        },
        Framing::UntilClose => {
            if body.len() > MAX_BODY {
                Err(format!("body larger than {} KiB", MAX_BODY / 1024))
            } else if eof {
                Ok(Some(body.to_vec()))
            } else {
                Ok(None)
            }
        }
    }
}

/// Checks the status line and headers; `None` for an interim (1xx) answer.
fn parse_head(head: &str, any_2xx: bool) -> Result<Option<Framing>, String> {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().and_then(|c| c.parse::<u16>().ok());
    let reason = parts.next().unwrap_or_default();
    let Some(code) = code.filter(|_| version.starts_with("HTTP/1.")) else {
        return Err(format!(
            "not an HTTP/1.x response: {:?}",
            super::error::clip(status_line)
        ));
    };
    if (100..200).contains(&code) {
        return Ok(None);
    }
    let accepted = code == 200 || (any_2xx && (200..300).contains(&code));
    if !accepted {
        let hint = if (300..400).contains(&code) {
            "; redirects are not followed, configure the final URL"
        } else {
            ""
        };
        return Err(format!(
            "HTTP status {code} {:?}, expected {}{hint}",
            super::error::clip(reason),
            if any_2xx { "2xx" } else { "200" }
        ));
    }
    let mut length: Option<usize> = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!(
                "malformed header line {:?}",
                super::error::clip(line)
            ));
        };
        let name = name.trim();
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or_default().trim();
            if !last.eq_ignore_ascii_case("chunked") {
                return Err(format!(
                    "unsupported transfer-encoding {:?}",
                    super::error::clip(value)
                ));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            for v in value.split(',') {
                let v: usize = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad content-length {:?}", super::error::clip(value)))?;
                if length.is_some_and(|l| l != v) {
                    return Err("conflicting content-length headers".to_owned());
                }
                length = Some(v);
            }
        } else if name.eq_ignore_ascii_case("content-encoding")
            && !value.eq_ignore_ascii_case("identity")
        {
            return Err(format!(
                "unsupported content-encoding {:?}",
                super::error::clip(value)
            ));
        }
    }
    // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3).
    let framing = match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(len)) if len > MAX_BODY => {
            return Err(format!(
                "body of {len} bytes is larger than {} KiB",
                MAX_BODY / 1024
            ))
        }
        (false, Some(len)) => Framing::Length(len),
        (false, None) => Framing::UntilClose,
    };
    Ok(Some(framing))
}

/// Decodes a complete chunked body; `Ok(None)` if more bytes are needed.
fn decode_chunked(mut data: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let Some(line_len) = find(data, b"\r\n") else {
            if data.len() > MAX_CHUNK_LINE {
                return Err("chunk-size line too long".to_owned());
            }
            return Ok(None);
        };
        let line = data.get(..line_len).unwrap_or_default();
        let size = std::str::from_utf8(line)
            .ok()
            .map(|l| l.split(';').next().unwrap_or_default().trim())
            .filter(|s| !s.is_empty() && s.len() <= 8)
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or_else(|| "malformed chunk size".to_owned())?;
        data = data.get(line_len + 2..).unwrap_or_default();
        if size == 0 {
            // Trailer fields, if any, end with an empty line.
            if data.starts_with(b"\r\n") || find(data, b"\r\n\r\n").is_some() {
                return Ok(Some(out));
            }
            return Ok(None);
        }
        if out.len() + size > MAX_BODY {
            return Err(format!("body larger than {} KiB", MAX_BODY / 1024));
        }
        let (Some(chunk), Some(end)) = (data.get(..size), data.get(size..size + 2)) else {
            return Ok(None);
        };
        if end != b"\r\n" {
            return Err("chunk not followed by CRLF".to_owned());
        }
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests;
