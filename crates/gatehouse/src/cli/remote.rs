//! The online commands' client of the admin API: a small blocking HTTP/1.1 client (one request
//! per connection, JSON in and out) authenticated with `GATEHOUSE_TOKEN`.
//!
//! The server is `--server URL` or `http://` + the configuration's `[listen] admin`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::config::Config;
use crate::error::CliError;

/// Longest answer read (listings are bounded server-side).
const MAX_ANSWER: u64 = 256 << 20;

/// A configured connection to the admin API.
#[derive(Debug, Clone)]
pub struct Remote {
    host_port: String,
    token: String,
}

impl Remote {
    /// The API of the running gateway, if `GATEHOUSE_TOKEN` is set; `None` otherwise.
    pub fn from_env(config: &Config, server: Option<&str>) -> Result<Option<Self>, CliError> {
        let Ok(token) = std::env::var("GATEHOUSE_TOKEN") else {
            return Ok(None);
        };
        let server = match server {
            Some(s) => s.to_owned(),
            None => config.listen.admin.clone().ok_or_else(|| {
                CliError::Usage(
                    "the configuration has no [listen] admin; pass --server http://HOST:PORT"
                        .into(),
                )
            })?,
        };
        let host_port = server
            .strip_prefix("http://")
            .unwrap_or(&server)
            .trim_end_matches('/')
            .to_owned();
        if host_port.contains("://") {
            return Err(CliError::Usage(format!(
                "--server {server}: only http:// is supported (the admin API listens on loopback)"
            )));
        }
        Ok(Some(Self {
            host_port,
            token: token.trim().to_owned(),
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
        let mut stream = TcpStream::connect(&self.host_port).map_err(unreachable)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(unreachable)?;
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
        stream
            .take(MAX_ANSWER)
            .read_to_end(&mut answer)
            .map_err(unreachable)?;
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
