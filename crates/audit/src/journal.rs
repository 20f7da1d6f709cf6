//! The audit journal: an append-only file written before a command is forwarded, so an entry
//! is durable (in the operating system, surviving the gateway being killed) after one `write`.
//! The database is filled from it in batches; a sealed segment is deleted once its entries
//! are committed there.
//!
//! Layout: `DB.journal/` beside a SQLite database (`INSTANCE.pg.journal/` in the state directory
//! for an instance of a PostgreSQL store), segments `NNNNNNNNNNNN.jsonl` (one entry a line),
//! and `lock`, held exclusively by the gateway that writes. A process that can take the lock
//! knows no gateway is writing, and may replay what a killed one left behind.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::entry::Entry;
use crate::error::AuditError;

/// The journal directory of a database file.
pub(crate) fn dir_of(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".journal");
    db.with_file_name(name)
}

/// The writing side: holds the lock and the active segment.
pub(crate) struct Journal {
    dir: PathBuf,
    _lock: File,
    active: File,
    active_path: PathBuf,
    active_len: u64,
    next: u64,
}

/// Proof that no gateway writes the journal (the lock is held until this drops).
pub(crate) struct Idle {
    _lock: File,
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> AuditError {
    move |source| AuditError::Io { what, source }
}

fn lock_file(dir: &Path) -> Result<File, AuditError> {
    std::fs::create_dir_all(dir).map_err(io(format!("could not create {}", dir.display())))?;
    let path = dir.join("lock");
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(format!("could not open {}", path.display())))
}

/// Takes the lock if nobody holds it.
pub(crate) fn try_idle(db: &Path) -> Result<Option<Idle>, AuditError> {
    let lock = lock_file(&dir_of(db))?;
    match lock.try_lock() {
        Ok(()) => Ok(Some(Idle { _lock: lock })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(io("could not lock the journal".into())(e)),
    }
}

/// Sealed segments left in the directory, oldest first.
pub(crate) fn segments(db: &Path) -> Result<Vec<PathBuf>, AuditError> {
    let dir = dir_of(db);
    let mut found: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io(format!("could not list {}", dir.display()))(e)),
    };
    found.sort();
    Ok(found)
}

/// Where segments refused at ingest are kept, as evidence: `DB.journal/refused/`.
pub fn refused_dir(db: &Path) -> PathBuf {
    dir_of(db).join("refused")
}

/// What `audit verify` reports about the journal: every segment refused at ingest.
pub fn problems(db: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(refused_dir(db)) else {
        return Vec::new();
    };
    let mut found: Vec<String> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .map(|p| {
            format!(
                "journal segment {} was refused at ingest: a line's MAC does not hold (written \
                 or altered by something other than the gateway); its entries are not in the \
                 store or the chain",
                p.display()
            )
        })
        .collect();
    found.sort();
    found
}

/// Reads a sealed segment left by a gateway and checks every line's MAC. A segment with a
/// line that fails (planted, or altered after it was written) is moved to
/// [`refused_dir`] and `None` comes back: nothing of it is ingested or chained.
pub(crate) fn read_checked(
    db: &Path,
    path: &Path,
    key: &crate::chain::ChainKey,
) -> Result<Option<Vec<Entry>>, AuditError> {
    match read_segment(path, key) {
        Ok(entries) => Ok(Some(entries)),
        Err(AuditError::Corrupt(why)) => {
            let refused = refused_dir(db);
            std::fs::create_dir_all(&refused)
                .map_err(io(format!("could not create {}", refused.display())))?;
            let to = refused.join(path.file_name().unwrap_or_default());
            std::fs::rename(path, &to)
                .map_err(io(format!("could not move {} aside", path.display())))?;
            tracing::error!(segment = %to.display(), %why,
                "journal segment refused: not ingested; `gatehouse audit verify` reports it");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Reads a segment, checking every write's seal. The last write, if it was cut short (a torn
/// last line: the process or the machine died mid-write, so the commands it belonged to were
/// never forwarded), is skipped; anything else unreadable or
/// unauthenticated is [`AuditError::Corrupt`]. Lines an earlier build wrote, each with its own
/// MAC after a tab, are read as well.
pub(crate) fn read_segment(
    path: &Path,
    key: &crate::chain::ChainKey,
) -> Result<Vec<Entry>, AuditError> {
    let bytes = std::fs::read(path).map_err(io(format!("could not read {}", path.display())))?;
    let lines: Vec<String> = BufReader::new(bytes.as_slice())
        .lines()
        .collect::<Result<_, _>>()
        .map_err(io(format!("could not read {}", path.display())))?;
    let corrupt = |n: usize, what: &str| {
        AuditError::Corrupt(format!("{} line {}: {what}", path.display(), n + 1))
    };
    let mut entries = Vec::with_capacity(lines.len());
    // Lines of the current write, waiting for its seal: the line number, the JSON (parsed
    // only once the seal holds) and its digest.
    let mut unsealed: Vec<(usize, &str, [u8; 32])> = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(mac) = line.strip_prefix('\t') {
            let digests: Vec<[u8; 32]> = unsealed.iter().map(|(_, _, d)| *d).collect();
            if unsealed.is_empty() || !key.write_seal_holds(&digests, mac) {
                return Err(corrupt(
                    n,
                    "a seal that does not hold for the lines before it",
                ));
            }
            for (at, json, _) in unsealed.drain(..) {
                let entry = serde_json::from_str(json)
                    .map_err(|_| corrupt(at, "sealed, but not an entry the gateway writes"))?;
                entries.push(entry);
            }
            continue;
        }
        match line.split_once('\t') {
            // A line an earlier build wrote: its JSON and its own MAC.
            Some((json, mac)) if unsealed.is_empty() && key.line_mac_holds(json, mac) => {
                let entry = serde_json::from_str(json)
                    .map_err(|_| corrupt(n, "not an entry the gateway writes"))?;
                entries.push(entry);
            }
            Some(_) => {
                return Err(corrupt(
                    n,
                    "not a journal line the gateway wrote (its MAC does not hold)",
                ))
            }
            None => unsealed.push((n, line, crate::chain::json_digest(line))),
        }
    }
    if let Some((first, _, _)) = unsealed.first() {
        // A write is one `write` of its lines and its seal: only one cut short (a torn last
        // line) lacks it. Whole lines without a seal were put there by something else.
        if bytes.ends_with(b"\n") {
            return Err(corrupt(
                *first,
                "lines without the seal their write ends with",
            ));
        }
        tracing::warn!(segment = %path.display(), from_line = first + 1, lines = unsealed.len(),
            "skipping the journal's last write: it was cut short before its seal");
    }
    Ok(entries)
}

impl Journal {
    /// Takes the lock (waiting up to `wait` for a CLI command that holds it) and opens a new
    /// active segment after any left behind.
    pub(crate) fn open(db: &Path, wait: Duration) -> Result<Self, AuditError> {
        let dir = dir_of(db);
        let lock = lock_file(&dir)?;
        let deadline = Instant::now() + wait;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(AuditError::NotFound(format!(
                        "another gateway is writing the audit journal in {}; one store, one writer",
                        dir.display()
                    )))
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(io("could not lock the journal".into())(e))
                }
            }
        }
        let next = segments(db)?
            .last()
            .and_then(|p| p.file_stem()?.to_str()?.parse::<u64>().ok())
            .map_or(1, |n| n + 1);
        let (active, active_path) = create_segment(&dir, next)?;
        Ok(Self {
            dir,
            _lock: lock,
            active,
            active_path,
            active_len: 0,
            next: next + 1,
        })
    }

    /// The segment being written.
    pub(crate) fn active_path(&self) -> &Path {
        &self.active_path
    }

    /// Appends lines with one write. A write that fails part-way is cut back off, so a torn
    /// line can only ever be the last one of a segment.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.active.write_all(bytes) {
            Ok(()) => {
                self.active_len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                if let Err(cut) = self.active.set_len(self.active_len) {
                    tracing::error!(error = %cut, "could not cut a torn journal write back off");
                }
                Err(e)
            }
        }
    }

    /// Seals the active segment and starts a new one; returns the sealed segment's path.
    pub(crate) fn rotate(&mut self) -> Result<PathBuf, AuditError> {
        let (file, path) = create_segment(&self.dir, self.next)?;
        self.next += 1;
        self.active = file;
        self.active_len = 0;
        Ok(std::mem::replace(&mut self.active_path, path))
    }
}

fn create_segment(dir: &Path, n: u64) -> Result<(File, PathBuf), AuditError> {
    let path = dir.join(format!("{n:012}.jsonl"));
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io(format!("could not create {}", path.display())))?;
    Ok((file, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_cut_short_is_skipped_and_other_damage_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("g.db");
        let key = crate::chain::ChainKey::load(&dir.path().join("chain.key"), true, || 0).unwrap();
        let json = r#"{"op":"close","id":"s","ended_at":1,"reason":"x","bytes_from_client":0,"bytes_from_server":0}"#;
        let digest = crate::chain::json_digest(json);
        // One write of two lines and its seal.
        let write = format!("{json}\n{json}\n{}", key.seal_write(&[digest, digest]));
        let path = dir.path().join("1.jsonl");
        std::fs::write(&path, format!("{write}{write}")).unwrap();
        assert_eq!(read_segment(&path, &key).unwrap().len(), 4);
        // The last write cut short (a torn last line): skipped, with whole lines before it.
        std::fs::write(&path, format!("{write}{{\"op\":\"clo")).unwrap();
        assert_eq!(read_segment(&path, &key).unwrap().len(), 2);
        std::fs::write(&path, format!("{write}{json}\n{{\"op\":\"clo")).unwrap();
        assert_eq!(read_segment(&path, &key).unwrap().len(), 2);
        // Whole lines with no seal after them were not cut short: refused.
        std::fs::write(&path, format!("{write}{json}\n")).unwrap();
        assert!(read_segment(&path, &key).is_err());
        // Lines of an earlier build, each with its MAC over the JSON, are read too.
        let tag = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                &std::fs::read(dir.path().join("chain.key")).unwrap(),
            ),
            json.as_bytes(),
        );
        let legacy = format!(
            "{json}\t{}\n",
            gatehouse_core::identity::hex(&tag.as_ref()[..16])
        );
        std::fs::write(&path, format!("{legacy}{write}")).unwrap();
        assert_eq!(read_segment(&path, &key).unwrap().len(), 3);

        // A line slipped into a sealed write, another key's seal, a line altered after it was
        // sealed, a seal with nothing before it: refused wherever they are.
        std::fs::create_dir(dir.path().join("x")).unwrap();
        let other =
            crate::chain::ChainKey::load(&dir.path().join("x/chain.key"), true, || 0).unwrap();
        let planted = format!(
            "{json}\n{json}\n{json}\n{}",
            key.seal_write(&[digest, digest])
        );
        let forged = format!("{json}\n{}", other.seal_write(&[digest]));
        let altered = write.replacen("\"x\"", "\"y\"", 1);
        let bare = key.seal_write(&[]);
        for bad in [planted, forged, altered, bare] {
            std::fs::write(&path, format!("{write}{bad}{write}")).unwrap();
            assert!(read_segment(&path, &key).is_err(), "{bad}");
        }
        // Moved aside, reported, not ingested.
        assert!(read_checked(&db, &path, &key).unwrap().is_none());
        assert!(!path.exists());
        assert_eq!(problems(&db).len(), 1);
    }
}
