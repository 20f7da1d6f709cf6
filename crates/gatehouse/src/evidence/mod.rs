//! `gatehouse evidence --from T --to T --out DIR`: the package an auditor takes away.
//!
//! For the period: the audit log (JSON Lines and CSV), the sessions index with their
//! recordings (copied, each with its hash and whether it matches its seal; an SSH session's
//! terminal casts too, each against the seal its recording holds), the masking log,
//! the approval trail, the identity and token register, the retention policy and the oldest
//! record held, the result of `audit verify`, the active policy, and a report (HTML and
//! Markdown) mapping PCI DSS controls to these files and their counts. `manifest.json` and
//! `SHA256SUMS` hash every file.

mod files;
mod report;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::Args;
use gatehouse_audit::cast::casts_of;
use gatehouse_audit::export::{ExportFilter, ExportFormat};
use gatehouse_audit::recording::{file_sha256, recording_path};
use gatehouse_core::time::display;
use serde_json::{json, Value};

use crate::cli::open_store;
use crate::cli::when::{Clock, When};
use crate::config::Config;
use crate::error::CliError;
use files::Written;
use report::Report;

/// `evidence` options.
#[derive(Debug, Args)]
pub struct EvidenceArgs {
    /// Start of the period (a date such as `2026-01-01`, RFC 3339, or a duration ago such as
    /// `90d`).
    #[arg(long, value_parser = When::parse)]
    pub from: When,
    /// End of the period, exclusive (a date, RFC 3339 or a duration ago; default now).
    #[arg(long, value_parser = When::parse)]
    pub to: Option<When>,
    /// Directory to write the package to (created; must be empty if it exists).
    #[arg(long)]
    pub out: PathBuf,
}

/// Writes the package.
pub fn run(config: &Config, clock: &Clock, args: &EvidenceArgs) -> Result<(), CliError> {
    let from = clock.at("--from", &args.from)?;
    let to = match &args.to {
        Some(t) => clock.at("--to", t)?,
        None => clock.now(),
    };
    if to <= from {
        return Err(CliError::Usage("--to must be after --from".into()));
    }
    let dir = &args.out;
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(CliError::Usage(format!(
            "{} exists and is not empty; give a new directory",
            dir.display()
        )));
    }
    // Written into a staging folder beside the destination and renamed into place at the end,
    // so a command that fails leaves no half package an auditor could mistake for a whole one.
    let staging = staging_dir(dir)?;
    let done = write_package(config, from, to, &staging).and_then(|summary| {
        std::fs::rename(&staging, dir)
            .map_err(|e| CliError::Usage(format!("cannot create {}: {e}", dir.display())))?;
        Ok(summary)
    });
    let (files, report) = match done {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    eprintln!(
        "wrote {} files to {} (manifest.json, SHA256SUMS); {} entries, {} sessions",
        files,
        dir.display(),
        report.counts.entries,
        report.counts.sessions
    );
    if !report.verify.ok() {
        eprintln!(
            "warning: audit verify found {} problem(s); they are listed in the report",
            report.verify.problems.len()
        );
    }
    Ok(())
}

/// A new, empty folder beside `dir` (same filesystem, so the final rename is atomic).
fn staging_dir(dir: &Path) -> Result<PathBuf, CliError> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "evidence".into());
    std::fs::create_dir_all(&parent)
        .map_err(|e| CliError::Usage(format!("cannot create {}: {e}", parent.display())))?;
    let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging)
        .map_err(|e| CliError::Usage(format!("cannot create {}: {e}", staging.display())))?;
    Ok(staging)
}

/// Writes every file of the package into `dir`; how many, and the report.
pub(crate) fn write_package(
    config: &Config,
    from: SystemTime,
    to: SystemTime,
    dir: &Path,
) -> Result<(usize, Report), CliError> {
    let store = open_store(config)?;
    let mut written = Written::default();

    // The audit log, streamed.
    let filter = ExportFilter {
        from: Some(from),
        to: Some(to),
        ..ExportFilter::default()
    };
    for (name, format) in [
        ("audit.jsonl", ExportFormat::Jsonl),
        ("audit.csv", ExportFormat::Csv),
    ] {
        written.file(dir, name, |out| {
            store.export(&filter, format, out)?;
            Ok(())
        })?;
    }

    // Sessions, with their recordings.
    let recordings_dir = config.recordings_dir();
    let mut sessions = Vec::new();
    let (mut included, mut matching) = (0u64, 0u64);
    for s in store.list_sessions(Some(from))? {
        let started = humantime::parse_rfc3339_weak(&s.started_at).unwrap_or(from);
        if started >= to {
            continue;
        }
        let source = recording_path(&recordings_dir, &s.id);
        let mut row = serde_json::to_value(&s).unwrap_or(Value::Null);
        let copied = copy_recording(
            &source,
            dir,
            &format!("recordings/{}.jsonl", s.id),
            &mut written,
        )?;
        let (file, hash) = match &copied {
            Some((file, hash)) => (Some(file.clone()), Some(hash.clone())),
            None => (None, None),
        };
        let seal = match (&s.recording_sha256, &hash) {
            (Some(sealed), Some(hash)) if sealed == hash => "matches its seal",
            (Some(_), Some(_)) => "DOES NOT MATCH its seal",
            (Some(_), None) => "sealed, but the file is missing",
            (None, Some(_)) => "not sealed (session live, or the gateway stopped abruptly)",
            (None, None) => "no recording",
        };
        if hash.is_some() {
            included += 1;
            if seal == "matches its seal" {
                matching += 1;
            }
        }
        let casts = if s.protocol == "ssh" && copied.is_some() {
            copy_casts(
                &recordings_dir,
                dir,
                &s.id,
                &mut written,
                &mut included,
                &mut matching,
            )?
        } else {
            Value::Array(Vec::new())
        };
        if let Value::Object(map) = &mut row {
            map.insert("recording_file".into(), json!(file));
            map.insert("recording_file_sha256".into(), json!(hash));
            map.insert("recording_seal".into(), json!(seal));
            // On every row, so the CSV (keyed by the first row) has the column.
            map.insert("casts".into(), casts);
        }
        sessions.push(row);
    }
    written.rows(dir, "sessions", &sessions)?;
    written.rows(dir, "masking", &store.masking_log(from, to)?)?;
    written.rows(dir, "approvals", &store.approval_trail(from, to)?)?;
    let tokens = store.token_register()?;
    written.rows(dir, "tokens", &tokens)?;

    let oldest = store.oldest_session()?;
    let retention = json!({
        "retention_days": config.gateway.retention_days,
        "below_pci_minimum_forced": config.gateway.retention_force,
        "pci_dss_minimum_days": 365,
        "enforced": "by `gatehouse serve` every 6 hours and by `gatehouse retention run`",
        "oldest_record_held": oldest,
    });
    written.file(dir, "retention.json", |out| json_to(out, &retention))?;

    let verify = store.verify(&recordings_dir)?;
    written.file(dir, "verify.json", |out| json_to(out, &verify))?;

    let policy = policy_text(config);
    written.file(dir, "policy.md", |out| {
        use std::io::Write;
        write!(out, "# Active policy\n\nQuoted from the configuration in force when this package was made (secrets are references, never values).\n\n```toml\n{policy}\n```\n")
            .map_err(|e| CliError::Usage(e.to_string()))
    })?;

    let state = |kind: &str, s: &str| {
        tokens
            .iter()
            .filter(|t| t["kind"] == kind && t["state"] == s)
            .count() as u64
    };
    let states = |kind: &str| {
        (
            state(kind, "active"),
            state(kind, "expired"),
            state(kind, "revoked"),
        )
    };
    let report = Report {
        from: display(from),
        to: display(to),
        generated: display(SystemTime::now()),
        counts: store.period_counts(from, to)?,
        tokens: states("token"),
        keys: states("ssh-key"),
        connections: config
            .connection
            .iter()
            .map(|c| (c.name.clone(), c.protocol.clone(), c.groups.clone()))
            .collect(),
        recordings: (included, matching),
        verify,
        retention: (config.gateway.retention_days, oldest),
        policy,
    };
    let (md, html) = (report::markdown(&report), report::html(&report));
    written.file(dir, "report.md", |out| text_to(out, &md))?;
    written.file(dir, "report.html", |out| text_to(out, &html))?;
    let n = written.manifest(dir)?;
    Ok((n, report))
}

/// Copies a recording file to `name` in the package; its name there and hash, if it exists.
fn copy_recording(
    source: &Path,
    dir: &Path,
    name: &str,
    written: &mut Written,
) -> Result<Option<(String, String)>, CliError> {
    if !source.exists() {
        return Ok(None);
    }
    let name = name.to_owned();
    written.file(dir, &name, |out| {
        let mut file = std::fs::File::open(source)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", source.display())))?;
        std::io::copy(&mut file, out)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", source.display())))?;
        Ok(())
    })?;
    let hash = file_sha256(&dir.join(&name)).map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(Some((name, hash)))
}

/// Copies the terminal casts a session's recording names into `recordings/`, each with its
/// hash and whether it matches the seal the recording holds; counted with the recordings.
fn copy_casts(
    source_dir: &Path,
    dir: &Path,
    session: &str,
    written: &mut Written,
    included: &mut u64,
    matching: &mut u64,
) -> Result<Value, CliError> {
    let casts = match casts_of(source_dir, session) {
        Ok(casts) => casts,
        Err(e) => return Ok(json!({ "error": e.to_string() })),
    };
    let mut rows = Vec::new();
    for cast in casts {
        let copied = copy_recording(
            &source_dir.join(&cast.file),
            dir,
            &format!("recordings/{}", cast.file),
            written,
        )?;
        let hash = copied.as_ref().map(|(_, hash)| hash.clone());
        let seal = match (&cast.seal, &hash) {
            (Some(sealed), Some(hash)) if sealed.sha256 == *hash => "matches its seal",
            (Some(_), Some(_)) => "DOES NOT MATCH its seal",
            (Some(_), None) => "sealed, but the file is missing",
            (None, Some(_)) => "not sealed (channel live, or the gateway stopped abruptly)",
            (None, None) => "not sealed, and the file is missing",
        };
        if hash.is_some() {
            *included += 1;
            if seal == "matches its seal" {
                *matching += 1;
            }
        }
        rows.push(json!({
            "channel": cast.channel,
            "command": cast.command,
            "file": copied.map(|(file, _)| file),
            "sha256": hash,
            "seal": seal,
        }));
    }
    Ok(Value::Array(rows))
}

fn json_to(out: &mut impl std::io::Write, value: &impl serde::Serialize) -> Result<(), CliError> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(|e| CliError::Usage(e.to_string()))?;
    writeln!(out).map_err(|e| CliError::Usage(e.to_string()))
}

fn text_to(out: &mut impl std::io::Write, text: &str) -> Result<(), CliError> {
    out.write_all(text.as_bytes())
        .map_err(|e| CliError::Usage(e.to_string()))
}

/// The `[[connection]]`, `[[rule]]`, `[[mask]]`, `[[oidc]]`, `[admin]` and `[gateway]` sections
/// of the configuration file, as written.
fn policy_text(config: &Config) -> String {
    let Ok(text) = std::fs::read_to_string(&config.path) else {
        return "(the configuration file could not be read)".into();
    };
    let mut out = String::new();
    let mut keep = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            keep = [
                "[[connection]]",
                "[[rule]]",
                "[[mask]]",
                "[[oidc]]",
                "[admin]",
                "[gateway]",
            ]
            .iter()
            .any(|h| trimmed.starts_with(h));
            if keep && !out.is_empty() {
                out.push('\n');
            }
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.trim_end().to_owned()
}
