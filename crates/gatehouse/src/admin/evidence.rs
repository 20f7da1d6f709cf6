//! `GET /v1/evidence?from=T&to=T` (administrators): the evidence package of `gatehouse
//! evidence` for the period, made by the same code, as one `.tar.gz` download. It is written
//! to a scratch folder in the state directory, packed there, streamed, and removed once the
//! download ends (or is abandoned).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use flate2::write::GzEncoder;
use gatehouse_core::time::display;
use serde::Deserialize;
use tokio_util::io::ReaderStream;

use super::audit_files::{attachment, time_param};
use super::auth::Caller;
use super::{blocking, AdminState, ApiError};
use crate::config::Config;

/// The folder under the state directory the packages are made in.
const SCRATCH: &str = "console-evidence";

/// The period.
#[derive(Debug, Deserialize)]
pub struct Period {
    /// Start (a date, RFC 3339, or a duration ago such as `90d`).
    from: String,
    /// End, exclusive (default now).
    to: Option<String>,
}

/// A scratch folder, removed when dropped (the download's stream owns it).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Makes the package in `scratch` and packs it; returns the archive's path.
fn build(
    config: &Config,
    from: SystemTime,
    to: SystemTime,
    scratch: &Path,
    name: &str,
) -> Result<PathBuf, ApiError> {
    let failed = |e: &dyn std::fmt::Display| ApiError::Internal(format!("evidence: {e}"));
    let package = scratch.join(name);
    std::fs::create_dir_all(&package).map_err(|e| failed(&e))?;
    crate::evidence::write_package(config, from, to, &package).map_err(|e| failed(&e))?;
    let archive = scratch.join(format!("{name}.tar.gz"));
    let file = std::fs::File::create(&archive).map_err(|e| failed(&e))?;
    let mut tar = tar::Builder::new(GzEncoder::new(file, flate2::Compression::default()));
    tar.follow_symlinks(false);
    tar.append_dir_all(name, &package).map_err(|e| failed(&e))?;
    tar.into_inner()
        .and_then(|gz| gz.finish())
        .map_err(|e| failed(&e))?;
    Ok(archive)
}

pub(super) async fn package(
    State(state): State<AdminState>,
    caller: Caller,
    Query(period): Query<Period>,
) -> Result<Response, ApiError> {
    caller.require_admin(&state)?;
    let from = time_param("from", Some(&period.from))?
        .ok_or_else(|| ApiError::BadRequest("give the period's start as from".into()))?;
    let to = time_param("to", period.to.as_deref())?.unwrap_or_else(SystemTime::now);
    if to <= from {
        return Err(ApiError::BadRequest("to must be after from".into()));
    }
    static MADE: AtomicU64 = AtomicU64::new(0);
    let state_dir = state
        .config
        .state_dir()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let scratch = Scratch(state_dir.join(format!(
        "{SCRATCH}/{}-{}",
        std::process::id(),
        MADE.fetch_add(1, Ordering::Relaxed)
    )));
    let name = format!(
        "gatehouse-evidence-{}-{}",
        display(from).replace(':', ""),
        display(to).replace(':', "")
    );
    let (start, end) = (display(from), display(to));
    tracing::info!(by = %caller.0.name, from = %start, to = %end, "evidence package from the console");
    let config = Arc::clone(&state.config);
    // The scratch folder goes into the build: if the client leaves while the package is
    // made, it is removed once the build ends, not while the build still writes into it.
    let folder = name.clone();
    let (scratch, archive) = blocking(move || {
        let archive = build(&config, from, to, &scratch.0, &folder)?;
        Ok((scratch, archive))
    })
    .await?;
    let file = tokio::fs::File::open(&archive)
        .await
        .map_err(|e| ApiError::Internal(format!("evidence: {e}")))?;
    // The scratch folder lives as long as the stream that reads from it.
    let stream = futures_util::StreamExt::map(ReaderStream::new(file), move |chunk| {
        let _keep = &scratch;
        chunk
    });
    Ok(attachment(
        Body::from_stream(stream).into_response(),
        "application/gzip",
        &format!("{name}.tar.gz"),
    ))
}

/// Removes what downloads left behind when the gateway stopped mid-way (called at start).
pub fn clear_scratch(state_dir: &Path) {
    let _ = std::fs::remove_dir_all(state_dir.join(SCRATCH));
}
