//! What a new user tries first, following the README: its own commands on the quick-start
//! configuration, dates in every time flag (with the flag typed named in an error), and
//! commands that fail leaving no partial output behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use crate::support::*;

/// The repository's quick-start configuration, copied into a fresh directory (nothing served
/// yet), as a newcomer has it after a clone.
fn quick_start() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gatehouse.toml");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../gatehouse.toml");
    std::fs::copy(&source, &config).unwrap();
    (dir, config)
}

/// Runs `gatehouse ARGS` from `dir` (the configuration there is found by its default name).
fn gatehouse_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(gatehouse_bin())
        .current_dir(dir)
        .env_remove("GATEHOUSE_CONFIG")
        .env_remove("GATEHOUSE_TZ")
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(out: &Output) -> String {
    assert!(!out.status.success(), "succeeded: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Everything under `dir` whose name holds `partial`, at any depth.
fn partials(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.to_string_lossy().contains("partial") {
            found.push(path.clone());
        }
        if path.is_dir() {
            found.extend(partials(&path));
        }
    }
    found
}

#[test]
fn the_readme_evidence_example_works_on_a_store_made_by_token_create_alone() {
    let (dir, _) = quick_start();
    let token = ok(&gatehouse_in(
        dir.path(),
        &[
            "token",
            "create",
            "--identity",
            "nightly-etl",
            "--group",
            "batch",
        ],
    ));
    assert!(token.trim().starts_with("gh_"), "{token}");

    // The README's line, as written (a trailing slash, dates without a time).
    let out = gatehouse_in(
        dir.path(),
        &[
            "evidence",
            "--from",
            "2026-01-01",
            "--to",
            "2026-04-01",
            "--out",
            "q1-evidence/",
        ],
    );
    ok(&out);
    let package = dir.path().join("q1-evidence");
    for file in ["manifest.json", "SHA256SUMS", "verify.json", "report.html"] {
        assert!(package.join(file).is_file(), "{file} missing");
    }
    let verify: serde_json::Value =
        serde_json::from_str(&read(&package.join("verify.json"))).unwrap();
    assert_eq!(verify["problems"], serde_json::json!([]), "{verify}");
    // The token issued today is outside the first quarter's audit log, but in the register.
    assert!(read(&package.join("tokens.jsonl")).contains("nightly-etl"));
    assert!(
        partials(dir.path()).is_empty(),
        "{:?}",
        partials(dir.path())
    );

    // The same period again into the same folder is refused, and the package is untouched.
    let before = read(&package.join("SHA256SUMS"));
    let again = gatehouse_in(
        dir.path(),
        &["evidence", "--from", "2026-01-01", "--out", "q1-evidence"],
    );
    assert!(refused(&again).contains("not empty"));
    assert_eq!(read(&package.join("SHA256SUMS")), before);
}

#[test]
fn a_store_without_a_chain_key_is_an_empty_chain_unless_it_has_links() {
    let (dir, _) = quick_start();
    // A store that exists (a read made it) but never chained anything, with no key file.
    ok(&gatehouse_in(dir.path(), &["sessions", "list"]));
    let key = dir.path().join("var/chain.key");
    let _ = std::fs::remove_file(&key);
    let out = ok(&gatehouse_in(dir.path(), &["audit", "verify"]));
    assert!(out.contains("checked 0 chain links"), "{out}");
    ok(&gatehouse_in(
        dir.path(),
        &["evidence", "--from", "30d", "--out", "empty"],
    ));
    assert!(dir.path().join("empty/manifest.json").is_file());

    // A store that chained something (the token's issue) and lost its key: said plainly.
    ok(&gatehouse_in(
        dir.path(),
        &["token", "create", "--identity", "job", "--group", "batch"],
    ));
    std::fs::remove_file(&key).unwrap();
    let out = gatehouse_in(dir.path(), &["audit", "verify"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("chain key") && text.contains("is missing"),
        "{text}"
    );
    // Nothing makes a new key for that chain (every old link would look forged): writing is
    // refused with what to do, and verify still says the key is missing.
    let again = gatehouse_in(
        dir.path(),
        &["token", "create", "--identity", "job2", "--group", "batch"],
    );
    let err = refused(&again);
    assert!(err.contains("restore chain.key"), "{err}");
    assert!(!key.exists(), "a new key was made");
    let out = gatehouse_in(dir.path(), &["audit", "verify"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("is missing"));
}

#[test]
fn every_time_flag_takes_a_date_and_an_error_names_the_flag_typed() {
    let (dir, _) = quick_start();
    ok(&gatehouse_in(
        dir.path(),
        &["token", "create", "--identity", "job", "--group", "batch"],
    ));
    let every = [
        vec!["sessions", "list", "--since", "2026-01-01"],
        vec!["audit", "list", "--since", "2026-01-01"],
        vec![
            "audit",
            "export",
            "--from",
            "2026-01-01",
            "--to",
            "2099-01-01",
            "--out",
            "/dev/null",
        ],
        vec!["retention", "run", "--now", "2026-01-01"],
        vec!["evidence", "--from", "2026-01-01", "--out", "pkg"],
        vec!["sessions", "list", "--since", "yesterday"],
        vec![
            "audit",
            "list",
            "--since",
            "2026-01-01 10:00",
            "--tz",
            "Europe/Berlin",
        ],
    ];
    for args in &every {
        ok(&gatehouse_in(dir.path(), args));
    }
    let bad = [
        (vec!["sessions", "list", "--since", "2026-13-01"], "--since"),
        (vec!["audit", "list", "--since", "last tuesday"], "--since"),
        (vec!["audit", "export", "--from", "2026-02-30"], "--from"),
        (vec!["audit", "export", "--to", "soon"], "--to"),
        (vec!["retention", "run", "--now", "2026/01/01"], "--now"),
        (vec!["evidence", "--from", "Q1", "--out", "x"], "--from"),
        (
            vec!["evidence", "--from", "1d", "--to", "later", "--out", "x"],
            "--to",
        ),
    ];
    for (args, flag) in &bad {
        let err = refused(&gatehouse_in(dir.path(), args));
        assert!(
            err.contains(&format!("'{flag} ")) && err.contains("2026-01-01"),
            "{args:?}: {err}"
        );
        for other in ["--since", "--from", "--to", "--now"] {
            assert!(
                other == *flag || !err.contains(&format!("'{other} ")),
                "{args:?} named {other}: {err}"
            );
        }
    }
    let zone = refused(&gatehouse_in(
        dir.path(),
        &["audit", "list", "--tz", "Mars/Olympus"],
    ));
    assert!(
        zone.contains("--tz") && zone.contains("Europe/Berlin"),
        "{zone}"
    );
    assert!(!dir.path().join("x").exists());
}

#[test]
fn a_wall_clock_time_is_read_in_the_zone_given() {
    scratch_db("gh_new_user_tz");
    let gw = Gateway::start(&[Conn::local("db", "gh_new_user_tz")]);
    let token = gw.token("job", &["batch"]);
    let (done, _, err) = psql(&gw.dsn("db", &token), &["-c", "SELECT 'tz-probe'"], None);
    assert!(done, "{err}");
    gw.audit_until(|r| !with_statement(r, "tz-probe").is_empty());

    // An hour from now, written without an offset: in UTC that is after the entry; read as
    // UTC+02:00 it is an hour before it.
    let later = SystemTime::now() + Duration::from_secs(3600);
    let wall = humantime::format_rfc3339_seconds(later).to_string();
    let wall = wall.trim_end_matches('Z').replace('T', " ");
    let count = |tz: &str| {
        let out = gw.cli_output(&["audit", "export", "--to", &wall, "--tz", tz]);
        ok(&out).lines().filter(|l| l.contains("tz-probe")).count()
    };
    assert_eq!(count("UTC"), 1);
    assert_eq!(count("+02:00"), 0);
    assert_eq!(count("America/Los_Angeles"), 1);
}

#[test]
fn a_failed_evidence_run_or_export_leaves_nothing_behind() {
    scratch_db("gh_new_user_partial");
    let gw = Gateway::start(&[Conn::local("db", "gh_new_user_partial")]);
    let token = gw.token("job", &["batch"]);
    let (done, _, err) = psql(
        &gw.dsn("db", &token),
        &["-c", "SELECT 'partial-probe'"],
        None,
    );
    assert!(done, "{err}");
    let sessions = gw.sessions_until(|s| s.iter().any(|r| r["recording_sha256"].is_string()));
    let session = sessions
        .iter()
        .find(|r| r["recording_sha256"].is_string())
        .unwrap();
    let id = session["id"].as_str().unwrap();

    // The recording is unreadable halfway through the package (a directory where the file was).
    let recording = path_in(&gw, &format!("var/recordings/{id}.jsonl"));
    let kept = path_in(&gw, "kept.jsonl");
    std::fs::rename(&recording, &kept).unwrap();
    std::fs::create_dir(&recording).unwrap();
    let out_dir = path_in(&gw, "out/pkg");
    let out = gw.cli_output(&[
        "evidence",
        "--from",
        "1h",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let err = refused(&out);
    assert!(err.contains("cannot read"), "{err}");
    assert!(!out_dir.exists(), "a failed run left {}", out_dir.display());
    assert!(partials(&path_in(&gw, "out")).is_empty());
    std::fs::remove_dir(&recording).unwrap();
    std::fs::rename(&kept, &recording).unwrap();
    gw.cli(&[
        "evidence",
        "--from",
        "1h",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out_dir.join("manifest.json").is_file());

    // An export that fails midway (a row the store cannot read: a damaged disk, an intruder)
    // leaves the previous file as it was, not truncated.
    let file = path_in(&gw, "entries.jsonl");
    gw.cli(&["audit", "export", "--out", file.to_str().unwrap()]);
    let whole = read(&file);
    assert!(whole.contains("partial-probe"));
    store_sql(
        &gw,
        if on_postgres() {
            // PostgreSQL keeps its column types: the column itself is damaged.
            "ALTER TABLE audit_entries ALTER COLUMN duration_us TYPE TEXT; \
             UPDATE audit_entries SET duration_us = 'not a number' \
             WHERE id = (SELECT max(id) FROM audit_entries)"
        } else {
            "UPDATE audit_entries SET duration_us = 'not a number' \
             WHERE id = (SELECT max(id) FROM audit_entries)"
        },
    );
    let out = gw.cli_output(&["audit", "export", "--out", file.to_str().unwrap()]);
    refused(&out);
    assert_eq!(read(&file), whole);
    assert!(
        partials(gw.dir.path()).is_empty(),
        "{:?}",
        partials(gw.dir.path())
    );
}
