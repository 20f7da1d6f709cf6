//! The web console's pages at `/`: the files `build.rs` embedded from `console/dist`. Every
//! answer forbids framing and limits what the page may load to the gateway itself.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

/// What the pages may load: only this origin (no CDN), and never inside another site's frame.
/// The terminal player runs its emulator as WebAssembly, hence `wasm-unsafe-eval` (which
/// allows compiling WebAssembly, not `eval` of script).
const POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     img-src 'self' data:; style-src 'self' 'unsafe-inline'; worker-src 'self' blob:; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Served when the binary was built without the console (see `build.rs`).
const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>Gatehouse</title>\
<h1>The console was not built into this binary</h1>\
<p>Build it with <code>bash scripts/setup.sh</code> (or <code>npm ci && npm run build</code> in \
<code>console/</code>), then <code>cargo build</code> again. The admin API under <code>/v1/</code> \
works without it.</p>";

fn find(path: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, kind, bytes)| (*kind, *bytes))
}

fn answer(status: StatusCode, kind: &str, body: &'static [u8], cache: &'static str) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    if let Ok(kind) = HeaderValue::from_str(kind) {
        headers.insert(header::CONTENT_TYPE, kind);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `GET /`: the console's page (it signs in first).
pub async fn index() -> Response {
    match find("index.html") {
        Some((kind, bytes)) => answer(StatusCode::OK, kind, bytes, "no-store"),
        None => answer(
            StatusCode::OK,
            "text/html; charset=utf-8",
            NOT_BUILT.as_bytes(),
            "no-store",
        ),
    }
}

/// `GET /assets/{file}`: a built script, style sheet or image. Their names carry a hash of
/// their content, so they may be cached for good.
pub async fn asset(Path(file): Path<String>) -> Response {
    match find(&format!("assets/{file}")) {
        Some((kind, bytes)) => answer(
            StatusCode::OK,
            kind,
            bytes,
            "public, max-age=31536000, immutable",
        ),
        None => answer(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            b"no such file in the console\n",
            "no-store",
        ),
    }
}
