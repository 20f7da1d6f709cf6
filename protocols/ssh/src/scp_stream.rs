//! The files inside a legacy scp stream (`scp -O`, or an scp older than OpenSSH 9: the exec of
//! `scp -t` or `scp -f`), so each gets its SHA-256 and size like an SFTP file.
//!
//! The side sending files (the client for `-t`, the server for `-f`) writes control lines —
//! `C<mode> <size> <name>` then exactly that many bytes and a `\0`; `D<mode> 0 <name>` and `E`
//! around a directory's contents; `T<times>` before either — and the receiver answers each
//! with a byte the watcher does not need. The stream is relayed untouched whatever the watcher
//! makes of it; if it cannot follow the stream it says so once and stops looking.

use std::sync::{Arc, Mutex, MutexGuard};

use gatehouse_core::files::FileDirection;
use gatehouse_core::Session;

use crate::file_digest::FileDigest;

/// Longest control line followed (a name is at most a path's length).
const MAX_LINE: usize = 8 * 1024;

/// Follows the file-sending side of one scp channel. Shared by the half that sees the files
/// (which feeds it) and the host half (which puts the files in the command's audit entry).
#[derive(Clone)]
pub(crate) struct ScpWatch(Arc<Mutex<ScpStream>>);

struct ScpStream {
    direction: FileDirection,
    /// The audit entry the files belong to (the exec of scp).
    seq: u64,
    copy_limit: usize,
    state: State,
    /// The directories entered (`D` lines) around the current file.
    dirs: Vec<String>,
    /// One line per file for the entry: `x.txt 5 bytes, sha256 …`.
    files: Vec<String>,
}

enum State {
    /// Reading a control line.
    Line(Vec<u8>),
    /// Inside a file's bytes.
    Data {
        path: String,
        size: u64,
        remaining: u64,
        digest: FileDigest,
    },
    /// The `\0` after a file's bytes.
    Trailer,
    /// Not followed any further, and why.
    Lost(String),
}

impl ScpWatch {
    /// A watcher for the files of the command admitted as `seq`.
    pub(crate) fn new(direction: FileDirection, seq: u64, copy_limit: u64) -> Self {
        Self(Arc::new(Mutex::new(ScpStream {
            direction,
            seq,
            copy_limit: usize::try_from(copy_limit).unwrap_or(usize::MAX),
            state: State::Line(Vec::new()),
            dirs: Vec::new(),
            files: Vec::new(),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, ScpStream> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Which way the files go (which half feeds the watcher).
    pub(crate) fn direction(&self) -> FileDirection {
        self.lock().direction
    }

    /// Follows bytes of the file-sending side; each file completed is recorded.
    pub(crate) fn feed(&self, core: &Session, data: &[u8]) {
        self.lock().feed(core, data);
    }

    /// The files seen, for the command's audit entry: `upload x.txt 5 bytes, sha256 …; …`,
    /// with a file cut off and a stream not followed said as such. Empty if there were none.
    pub(crate) fn summary(&self) -> String {
        let stream = self.lock();
        let mut parts = stream.files.clone();
        match &stream.state {
            State::Data {
                path,
                size,
                remaining,
                ..
            } => parts.push(format!(
                "{} {path} cut off after {} of {size} bytes",
                stream.direction.as_str(),
                size - remaining
            )),
            State::Lost(why) => parts.push(format!("scp stream not followed: {why}")),
            State::Line(_) | State::Trailer => {}
        }
        parts.join("; ")
    }
}

impl ScpStream {
    fn feed(&mut self, core: &Session, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.state {
                State::Lost(_) => return,
                State::Trailer => {
                    data = &data[1..];
                    self.state = State::Line(Vec::new());
                }
                State::Line(line) => match data.iter().position(|b| *b == b'\n') {
                    Some(end) => {
                        line.extend_from_slice(&data[..end]);
                        data = &data[end + 1..];
                        let line = std::mem::take(line);
                        self.on_line(core, &line);
                    }
                    None => {
                        line.extend_from_slice(data);
                        if line.len() > MAX_LINE {
                            self.state = State::Lost("a control line too long".into());
                        }
                        return;
                    }
                },
                State::Data {
                    size,
                    remaining,
                    digest,
                    ..
                } => {
                    let n = usize::try_from(*remaining).map_or(data.len(), |r| r.min(data.len()));
                    digest.add(*size - *remaining, &data[..n]);
                    *remaining -= n as u64;
                    data = &data[n..];
                    if *remaining == 0 {
                        self.file_done(core);
                    }
                }
            }
        }
    }

    /// A control line (without its newline).
    fn on_line(&mut self, core: &Session, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        match line.first() {
            Some(b'C') => {
                let mut words = text[1..].splitn(3, ' ');
                let (_mode, size, name) = (words.next(), words.next(), words.next());
                let (Some(size), Some(name)) = (size.and_then(|s| s.parse::<u64>().ok()), name)
                else {
                    self.state = State::Lost(format!("a file line scp does not send: {text}"));
                    return;
                };
                let mut path = self.dirs.join("/");
                if !path.is_empty() {
                    path.push('/');
                }
                path.push_str(name);
                self.state = State::Data {
                    path,
                    size,
                    remaining: size,
                    digest: FileDigest::new(match self.direction {
                        FileDirection::Upload => self.copy_limit,
                        FileDirection::Download => 0,
                    }),
                };
                if size == 0 {
                    self.file_done(core);
                }
            }
            Some(b'D') => {
                let name = text.splitn(3, ' ').nth(2).unwrap_or_default().to_owned();
                self.dirs.push(name);
                self.state = State::Line(Vec::new());
            }
            Some(b'E') => {
                self.dirs.pop();
                self.state = State::Line(Vec::new());
            }
            // Times before a file or directory; a warning or error from the sender (`\x01`,
            // `\x02`, sent as the answer would be, before a line).
            Some(b'T' | 1 | 2) => self.state = State::Line(Vec::new()),
            // The sender's `\0` answers glued before a line (the receiver's acknowledgements
            // travel the other way, but a sender may also send one before its first line).
            Some(0) => self.on_line(core, &line[1..]),
            _ => self.state = State::Lost(format!("a line scp does not send: {text:.80}")),
        }
    }

    /// A file's last byte went by: recorded, and named in the summary.
    fn file_done(&mut self, core: &Session) {
        let State::Data { path, digest, .. } = std::mem::replace(&mut self.state, State::Trailer)
        else {
            return;
        };
        let seen = digest.finish();
        self.files.push(format!(
            "{} {path} {} bytes, {}",
            self.direction.as_str(),
            seen.bytes,
            seen.hash_text()
        ));
        core.record_file(self.seq, seen.crossed(self.direction, &path));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use gatehouse_core::testing::{connection, open, MemoryStore};
    use gatehouse_core::{Gateway, Protocol};

    use super::*;

    /// What `scp -r -p` sends for a directory holding `run.sh`, then a second file.
    fn stream() -> Vec<u8> {
        let mut s = Vec::new();
        s.extend_from_slice(b"T1700000000 0 1700000000 0\nD0755 0 tree\nD0755 0 sub\n");
        s.extend_from_slice(b"C0644 5 run.sh\nhello\0E\nE\n");
        s.extend_from_slice(b"C0600 0 empty\n\0");
        s
    }

    #[tokio::test]
    async fn files_are_found_at_any_split_and_recorded() {
        let memory = Arc::new(MemoryStore::accepting_any_token("t", &["g"]));
        let gateway = Gateway::new(memory.parts(connection("box", Protocol::Ssh, &["g"]))).unwrap();
        let session = open(&gateway, "box", Protocol::Ssh).await;
        let bytes = stream();
        let mut summaries = Vec::new();
        for chunk in [1, 2, 7, bytes.len()] {
            let watch = ScpWatch::new(FileDirection::Upload, 1, 1024);
            for piece in bytes.chunks(chunk) {
                watch.feed(&session, piece);
            }
            summaries.push(watch.summary());
        }
        let hello = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let want = format!(
            "upload tree/sub/run.sh 5 bytes, sha256 {hello}; upload empty 0 bytes, sha256 {empty}"
        );
        assert!(summaries.iter().all(|s| *s == want), "{summaries:#?}");
        // Each file is in the recording, the small upload with its text.
        let recorded = memory.recorded.lock().unwrap();
        let files: Vec<_> = recorded
            .iter()
            .filter_map(|e| match e {
                gatehouse_core::store::RecordingEvent::File { path, content, .. } => {
                    Some((path.clone(), content.clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(files.len(), 8, "two files, four runs");
        assert_eq!(files[0], ("tree/sub/run.sh".into(), Some("hello".into())));
    }

    #[tokio::test]
    async fn a_stream_cut_short_or_not_understood_says_so() {
        let memory = Arc::new(MemoryStore::accepting_any_token("t", &["g"]));
        let gateway = Gateway::new(memory.parts(connection("box", Protocol::Ssh, &["g"]))).unwrap();
        let session = open(&gateway, "box", Protocol::Ssh).await;
        let cut = ScpWatch::new(FileDirection::Download, 1, 0);
        cut.feed(&session, b"C0644 10 big.bin\n12345");
        assert_eq!(
            cut.summary(),
            "download big.bin cut off after 5 of 10 bytes"
        );
        let odd = ScpWatch::new(FileDirection::Upload, 1, 0);
        odd.feed(&session, b"X not scp\nC0644 1 a\nz\0");
        assert!(
            odd.summary().starts_with("scp stream not followed"),
            "{}",
            odd.summary()
        );
        let long = ScpWatch::new(FileDirection::Upload, 1, 0);
        long.feed(&session, &vec![b'C'; MAX_LINE + 1]);
        assert!(long.summary().contains("too long"), "{}", long.summary());
    }
}
