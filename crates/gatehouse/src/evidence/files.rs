//! Writing the package's files: JSON Lines and CSV of plain JSON rows, and the manifest.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::CliError;

/// The files written so far, for the manifest.
#[derive(Debug, Default)]
pub struct Written {
    /// Paths relative to the package directory.
    pub files: Vec<PathBuf>,
}

fn io(path: &Path, e: std::io::Error) -> CliError {
    CliError::Usage(format!("cannot write {}: {e}", path.display()))
}

impl Written {
    /// Creates `dir/name` (and its directory), hands it to `fill`, and remembers it.
    pub fn file(
        &mut self,
        dir: &Path,
        name: &str,
        fill: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        let file = std::fs::File::create(&path).map_err(|e| io(&path, e))?;
        let mut out = std::io::BufWriter::new(file);
        fill(&mut out)?;
        out.flush().map_err(|e| io(&path, e))?;
        self.files.push(PathBuf::from(name));
        Ok(())
    }

    /// Writes rows as `name.jsonl` and `name.csv`.
    pub fn rows(&mut self, dir: &Path, name: &str, rows: &[Value]) -> Result<(), CliError> {
        let jsonl = format!("{name}.jsonl");
        self.file(dir, &jsonl, |out| {
            for row in rows {
                writeln!(out, "{row}").map_err(|e| io(Path::new(&jsonl), e))?;
            }
            Ok(())
        })?;
        let csv = format!("{name}.csv");
        self.file(dir, &csv, |out| {
            write_csv(out, rows).map_err(|e| io(Path::new(&csv), e))
        })
    }

    /// Writes `manifest.json` and `SHA256SUMS` (checkable with `sha256sum -c SHA256SUMS`).
    pub fn manifest(&mut self, dir: &Path) -> Result<usize, CliError> {
        let mut entries = Vec::new();
        let mut sums = String::new();
        for file in &self.files {
            let path = dir.join(file);
            let hash = gatehouse_audit::recording::file_sha256(&path).map_err(|e| io(&path, e))?;
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let name = file.to_string_lossy().into_owned();
            sums.push_str(&format!("{hash}  {name}\n"));
            entries.push(serde_json::json!({"file": name, "sha256": hash, "bytes": bytes}));
        }
        let count = entries.len();
        let manifest = serde_json::json!({
            "generator": format!("gatehouse {}", env!("CARGO_PKG_VERSION")),
            "files": entries,
        });
        let path = dir.join("manifest.json");
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&manifest).unwrap_or_default(),
        )
        .map_err(|e| io(&path, e))?;
        let path = dir.join("SHA256SUMS");
        std::fs::write(&path, sums).map_err(|e| io(&path, e))?;
        Ok(count)
    }
}

/// CSV (RFC 4180) of JSON objects: the header is the first row's keys; nested values as
/// compact JSON; null as empty.
pub fn write_csv(out: &mut impl Write, rows: &[Value]) -> std::io::Result<()> {
    let Some(Value::Object(first)) = rows.first() else {
        return Ok(());
    };
    let keys: Vec<&String> = first.keys().collect();
    let line: Vec<String> = keys.iter().map(|k| cell(k)).collect();
    write!(out, "{}\r\n", line.join(","))?;
    for row in rows {
        let line: Vec<String> = keys
            .iter()
            .map(|k| match row.get(k.as_str()) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => cell(s),
                Some(other) => cell(&other.to_string()),
            })
            .collect();
        write!(out, "{}\r\n", line.join(","))?;
    }
    Ok(())
}

fn cell(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
