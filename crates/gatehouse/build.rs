//! Embeds the web console's built files (`console/dist`, made by `npm run build` in
//! `console/`, which `scripts/setup.sh` runs) in the binary, so a release binary serves the
//! console with no files beside it. Without them a page saying how to build them is served
//! instead: `cargo build` alone still works.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dist = manifest.join("../../console/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut files = Vec::new();
    if dist.is_dir() {
        walk(&dist, &dist, &mut files);
    }
    files.sort();
    let mut code = String::from(
        "/// The console's built files: path under `/`, content type, bytes.\n\
         pub static ASSETS: &[(&str, &str, &[u8])] = &[\n",
    );
    for (rel, abs) in &files {
        let _ = writeln!(
            code,
            "    ({rel:?}, {:?}, include_bytes!({:?})),",
            content_type(rel),
            abs.display().to_string()
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    if let Err(e) = std::fs::write(out.join("console_assets.rs"), code) {
        println!("cargo:warning=could not write the console's asset table: {e}");
        std::process::exit(1);
    }
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, files);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            let abs = path.canonicalize().unwrap_or(path);
            files.push((rel, abs));
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
