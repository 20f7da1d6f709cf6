//! The console's audit page, administrators only, on the same store code as the CLI:
//!
//! - `GET /v1/audit/export?from=T&to=T&format=jsonl|csv&identity=&connection=&protocol=&verdict=`
//!   streams `audit export` as a download (never collected in memory);
//! - `GET /v1/audit/search?…same filters…&after=ID&limit=N` is a page of the same entries,
//!   continued after the last id shown;
//! - `POST /v1/audit/verify` runs `audit verify` and keeps its result; `GET /v1/audit/verify`
//!   answers the last one (this instance's), or `null`.

use std::io::Write;
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_audit::export::{ExportFilter, ExportFormat};
use gatehouse_core::time::display;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::auth::Caller;
use super::{blocking, AdminState, ApiError};
use crate::cli::when::{Clock, When};

/// The most entries a search page holds.
const MOST_PER_PAGE: u64 = 500;

/// The filters of `audit export`, as query parameters.
#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    /// From (inclusive): a date, RFC 3339, or a duration ago (`7d`).
    from: Option<String>,
    /// To (exclusive).
    to: Option<String>,
    /// `jsonl` (default) or `csv`.
    format: Option<String>,
    identity: Option<String>,
    connection: Option<String>,
    protocol: Option<String>,
    verdict: Option<String>,
    /// Search: entries after this id.
    after: Option<i64>,
    /// Search: at most this many (default 100).
    limit: Option<u64>,
}

/// A time parameter, if given.
pub fn time_param(name: &str, text: Option<&str>) -> Result<Option<SystemTime>, ApiError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let when =
        When::parse(text).map_err(|e| ApiError::BadRequest(format!("{name} {text}: {e}")))?;
    Clock::utc()
        .at(name, &when)
        .map(Some)
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// A filter's text, unless empty (a form's blank field means "any").
pub fn given(text: &Option<String>) -> Option<String> {
    text.clone().filter(|t| !t.trim().is_empty())
}

impl ExportQuery {
    fn filter(&self) -> Result<ExportFilter, ApiError> {
        let filter = ExportFilter {
            from: time_param("from", self.from.as_deref())?,
            to: time_param("to", self.to.as_deref())?,
            identity: given(&self.identity),
            connection: given(&self.connection),
            protocol: given(&self.protocol),
            verdict: given(&self.verdict),
            after_id: None,
            limit: None,
        };
        if let (Some(from), Some(to)) = (filter.from, filter.to) {
            if from >= to {
                return Err(ApiError::BadRequest(
                    "from must be before to (to is exclusive)".into(),
                ));
            }
        }
        Ok(filter)
    }

    fn format(&self) -> Result<ExportFormat, ApiError> {
        match self.format.as_deref().unwrap_or("jsonl") {
            "jsonl" => Ok(ExportFormat::Jsonl),
            "csv" => Ok(ExportFormat::Csv),
            other => Err(ApiError::BadRequest(format!(
                "format {other:?}: give jsonl or csv"
            ))),
        }
    }
}

/// How long a download may take to accept the next buffer before it is given up (its
/// export holds a database snapshot and a thread meanwhile).
const STALLED: std::time::Duration = std::time::Duration::from_secs(60);

/// Hands what a blocking writer writes to an async body, a buffer at a time.
struct ChannelWriter {
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
    runtime: tokio::runtime::Handle,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let chunk = Ok(Bytes::copy_from_slice(buf));
        let sent = self
            .runtime
            .block_on(tokio::time::timeout(STALLED, self.sender.send(chunk)));
        match sent {
            Ok(Ok(())) => Ok(buf.len()),
            Ok(Err(_)) => Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "download cancelled",
            )),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the download stopped reading",
            )),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A download's headers: its type and the name the browser saves it under.
pub fn attachment(mut response: Response, kind: &'static str, name: &str) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(super) async fn export(
    State(state): State<AdminState>,
    caller: Caller,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    caller.require_admin(&state)?;
    let filter = q.filter()?;
    let format = q.format()?;
    tracing::info!(by = %caller.0.name, "audit export from the console");
    let (tx, rx) = mpsc::channel(8);
    let store = state.store.clone();
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            sender: tx.clone(),
            runtime,
        };
        if let Err(e) = store.export(&filter, format, &mut out) {
            // The client sees the body cut short rather than a complete-looking file.
            tracing::warn!(error = %e, "audit export for the console failed");
            let failed = tx.send(Err(std::io::Error::other(e.to_string())));
            let _ = out.runtime.block_on(tokio::time::timeout(STALLED, failed));
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    let (kind, ext) = match format {
        ExportFormat::Jsonl => ("application/x-ndjson", "jsonl"),
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    let stamp = display(SystemTime::now()).replace(':', "");
    Ok(attachment(
        body.into_response(),
        kind,
        &format!("gatehouse-audit-{stamp}.{ext}"),
    ))
}

/// A page of a search.
#[derive(Debug, Serialize)]
pub struct SearchPage {
    /// The entries, as `audit export --format jsonl` writes them.
    entries: Vec<serde_json::Value>,
    /// Give this as `after` for the next page; absent on the last.
    next: Option<i64>,
}

pub(super) async fn search(
    State(state): State<AdminState>,
    caller: Caller,
    Query(q): Query<ExportQuery>,
) -> Result<Json<SearchPage>, ApiError> {
    caller.require_admin(&state)?;
    let limit = q.limit.unwrap_or(100).clamp(1, MOST_PER_PAGE);
    let filter = ExportFilter {
        after_id: q.after,
        limit: Some(limit),
        ..q.filter()?
    };
    let store = state.store.clone();
    let lines = blocking(move || {
        let mut out = Vec::new();
        store.export(&filter, ExportFormat::Jsonl, &mut out)?;
        Ok(out)
    })
    .await?;
    let entries: Vec<serde_json::Value> = lines
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect();
    let next = (entries.len() as u64 == limit)
        .then(|| entries.last().and_then(|e| e["id"].as_i64()))
        .flatten();
    Ok(Json(SearchPage { entries, next }))
}

/// A run of `audit verify` from the console.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyRun {
    /// When it ran (RFC 3339).
    at: String,
    /// Who ran it.
    by: String,
    /// Whether every link, write, recording and cast checked out.
    ok: bool,
    /// What it found (`audit verify --json`).
    report: serde_json::Value,
}

pub(super) async fn verify(
    State(state): State<AdminState>,
    caller: Caller,
) -> Result<Json<VerifyRun>, ApiError> {
    caller.require_admin(&state)?;
    let store = state.store.clone();
    let dir = state.recordings.clone();
    let report = blocking(move || Ok(store.verify(&dir)?)).await?;
    let run = VerifyRun {
        at: display(SystemTime::now()),
        by: caller.0.name.clone(),
        ok: report.ok(),
        report: serde_json::to_value(&report).unwrap_or_default(),
    };
    tracing::info!(by = %run.by, ok = run.ok, "audit verify from the console");
    if let Ok(mut last) = state.last_verify.lock() {
        *last = Some(run.clone());
    }
    Ok(Json(run))
}

pub(super) async fn last_verify(
    State(state): State<AdminState>,
    caller: Caller,
) -> Result<Json<Option<VerifyRun>>, ApiError> {
    caller.require_admin(&state)?;
    Ok(Json(
        state.last_verify.lock().ok().and_then(|last| last.clone()),
    ))
}
