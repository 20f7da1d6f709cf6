//! The tamper-evident chain (PCI DSS 10.3): every write to the audit store — an admission, an
//! outcome, a session's opening or end, a purge — is sealed by a link holding the SHA-256 of the
//! write's canonical encoding (its journal JSON) and the SHA-256 of the link before it. A
//! session's opening and end, a trail event and a purge each have a link of their own; the
//! admissions and outcomes of one transaction are listed, each with its hash, in one batch link
//! (see [`crate::links`]). The links are appended in the same transaction as the writes, so the
//! database never holds one without the other.
//!
//! `verify` (in [`crate::verify`]) re-reads each write from the tables, re-encodes it, and
//! walks the links: a changed byte changes a content hash, a removed row leaves a link without
//! its row, an inserted row has no link, and a removed or forged link breaks the chain.
//! Recordings are sealed at session end: their SHA-256 is part of the session's chained end.
//!
//! A purge (retention) removes rows and marks their links `purged_by` the purge's own link,
//! which records what it removed and the cutoff; the oldest run of purged links is then
//! deleted and the last one's hash kept as the anchor the chain starts from.
//!
//! Several gateways sharing a PostgreSQL store each keep a chain of their own (a [`Chain`]:
//! the key, which they share, and their instance id, which every link's MAC covers), so no
//! instance waits for another to extend it. A SQLite store has one writer and one chain,
//! instance `""`, whose links hash as they always did.

use crate::db::{params, Backend, Db, DbError, OptionalExtension};
use crate::entry::Entry;
pub(crate) use crate::entry::LinkKey;
use crate::error::AuditError;

/// The hash a chain starts from on a store that was never purged.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// SHA-256, hex.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    gatehouse_core::identity::hex(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref(),
    )
}

/// The secret the links are keyed with (HMAC-SHA256), kept in the state directory
/// (`chain.key`; beside a SQLite database), never in the store: someone who can write the
/// database but not that file cannot recompute the chain after changing a row. Every instance
/// of a shared store holds the same key.
#[derive(Clone)]
pub struct ChainKey(aws_lc_rs::hmac::Key);

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(..)")
    }
}

impl ChainKey {
    /// The key kept at `path`; when `create` and there is none, made (once, mode 0600)
    /// unless `links` (how many links the store holds) says a chain already needs the lost one.
    pub fn load(
        path: &std::path::Path,
        create: bool,
        links: impl FnOnce() -> i64,
    ) -> Result<Self, AuditError> {
        let path = path.to_owned();
        let io = |what: &str, source| AuditError::Io {
            what: format!("{what} {}", path.display()),
            source,
        };
        let secret = match std::fs::read(&path) {
            Ok(secret) => secret,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                // A new key for a chain that already has links would make every one of them
                // look forged: the key was lost, and that is what must be said.
                let links = links();
                if links > 0 {
                    return Err(AuditError::Corrupt(format!(
                        "the chain key {} is missing but the store holds {links} chain links; \
                         restore chain.key from a backup (a new key cannot extend this chain)",
                        path.display()
                    )));
                }
                let secret = gatehouse_core::identity::random_hex(32)
                    .map_err(|e| AuditError::Corrupt(e.to_string()))?
                    .into_bytes();
                match gatehouse_core::private_file::write_private(&path, &secret) {
                    Ok(()) => secret,
                    // Another instance sharing the directory made it first: theirs is the key.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        std::fs::read(&path).map_err(|e| io("could not read the chain key", e))?
                    }
                    Err(e) => return Err(io("could not create", e)),
                }
            }
            Err(e) => return Err(io("could not read the chain key", e)),
        };
        if secret.len() < 32 {
            return Err(AuditError::Corrupt(format!(
                "{} is too short to be a chain key",
                path.display()
            )));
        }
        Ok(Self(aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            &secret,
        )))
    }
}

/// How many links a store holds, all chains together.
pub(crate) fn links(db: &mut Db) -> Result<i64, DbError> {
    db.query_row("SELECT count(*) FROM audit_chain", params![], |r| r.get(0))
}

/// One chain of the store: the key its links are keyed with, and whose chain it is.
#[derive(Debug, Clone)]
pub struct Chain {
    /// The key (shared by every instance of a store).
    pub key: ChainKey,
    /// The gateway instance whose chain this is (`""`: a SQLite store's one chain).
    pub instance: String,
}

impl Chain {
    /// The same key, for another instance's chain (verification, a purge).
    pub(crate) fn of(&self, instance: &str) -> Self {
        Self {
            key: self.key.clone(),
            instance: instance.to_owned(),
        }
    }
}

/// The instances that have a chain in the store, the empty one (SQLite's) included.
pub(crate) fn instances(db: &mut Db) -> Result<Vec<String>, DbError> {
    db.query_map(
        "SELECT instance FROM audit_chain UNION SELECT instance FROM chain_anchors
         ORDER BY 1",
        params![],
        |r| r.get(0),
    )
}

/// A journal write's lines, as the writer seals them: each entry line is its JSON alone, and
/// the write ends with a seal line (a tab, then the MAC) that authenticates every line of the
/// write at once.
impl ChainKey {
    /// The seal line of a write whose entry lines' JSON hash to `digests`, in order: a tab,
    /// the first 16 bytes of HMAC-SHA256 over the digests, hex, and a newline. Someone who can
    /// write the journal but not read `chain.key` cannot make lines that are ingested. One MAC
    /// per write, not per line, over hashes the chain needs anyway: this runs before every
    /// statement is forwarded.
    #[cfg(test)]
    pub(crate) fn seal_write<'d>(&self, digests: impl IntoIterator<Item = &'d [u8; 32]>) -> String {
        let mut line = String::with_capacity(34);
        self.seal_write_into(&mut line, digests);
        line
    }

    /// [`ChainKey::seal_write`], appended to the write's bytes (no string of its own: this
    /// is on every statement's path).
    pub(crate) fn seal_write_into<'d>(
        &self,
        out: &mut String,
        digests: impl IntoIterator<Item = &'d [u8; 32]>,
    ) {
        out.push('\t');
        push_hex(
            out,
            self.write_tag(digests)
                .as_ref()
                .get(..16)
                .unwrap_or_default(),
        );
        out.push('\n');
    }

    fn write_tag<'d>(
        &self,
        digests: impl IntoIterator<Item = &'d [u8; 32]>,
    ) -> aws_lc_rs::hmac::Tag {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.0);
        for digest in digests {
            ctx.update(digest);
        }
        ctx.sign()
    }

    fn write_mac<'d>(&self, digests: impl IntoIterator<Item = &'d [u8; 32]>) -> String {
        let mut mac = String::with_capacity(32);
        push_hex(
            &mut mac,
            self.write_tag(digests)
                .as_ref()
                .get(..16)
                .unwrap_or_default(),
        );
        mac
    }

    /// Whether `mac` seals lines whose JSON hash to `digests` (compared in constant time).
    pub(crate) fn write_seal_holds(&self, digests: &[[u8; 32]], mac: &str) -> bool {
        same_text(&self.write_mac(digests), mac)
    }

    /// Whether `mac` is the MAC a line of an earlier build carried after its JSON: HMAC-SHA256
    /// over the JSON itself. Still accepted, so a segment a previous build left is ingested.
    pub(crate) fn line_mac_holds(&self, json: &str, mac: &str) -> bool {
        let tag = aws_lc_rs::hmac::sign(&self.0, json.as_bytes());
        same_text(
            &gatehouse_core::identity::hex(tag.as_ref().get(..16).unwrap_or_default()),
            mac,
        )
    }
}

/// Appends `bytes` in lowercase hex, as [`gatehouse_core::identity::hex`] writes them.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// The SHA-256 of a journal line's JSON: what its write's seal covers, and (hex) its chain
/// link's content hash.
pub(crate) fn json_digest(json: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, json.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Equal texts, compared in constant time.
fn same_text(expected: &str, got: &str) -> bool {
    expected.len() == got.len()
        && expected
            .bytes()
            .zip(got.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The link hash: the previous link, what this link is about, and its content's hash, keyed.
pub(crate) fn link_hash(chain: &Chain, prev: &str, key: &LinkKey, content_sha256: &str) -> String {
    // The MAC of `[{instance}|]{prev}|{kind}|{session}|{entry_seq}|{at}|{content_sha256}`, fed
    // in pieces (two links per command: no message string is built for it). The instance is
    // left out for SQLite's chain, so its links hash as before instances existed.
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&chain.key.0);
    if !chain.instance.is_empty() {
        ctx.update(chain.instance.as_bytes());
        ctx.update(b"|");
    }
    let mut digits = [0u8; 20];
    for piece in [
        prev.as_bytes(),
        b"|",
        key.kind.as_bytes(),
        b"|",
        key.session.as_bytes(),
        b"|",
    ] {
        ctx.update(piece);
    }
    ctx.update(decimal(key.entry_seq, &mut digits));
    ctx.update(b"|");
    ctx.update(decimal(key.at, &mut digits));
    ctx.update(b"|");
    ctx.update(content_sha256.as_bytes());
    gatehouse_core::identity::hex(ctx.sign().as_ref())
}

/// `n` in decimal as `Display` writes it, in `buf` (20 bytes hold `i64::MIN`).
fn decimal(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        if let Some(d) = buf.get_mut(at) {
            // A digit: rest % 10 < 10, so the cast cannot truncate.
            *d = b'0' + (rest % 10) as u8;
        }
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        at -= 1;
        if let Some(sign) = buf.get_mut(at) {
            *sign = b'-';
        }
    }
    buf.get(at..).unwrap_or_default()
}

/// The canonical encoding of a write: its journal JSON.
pub(crate) fn content_of(entry: &Entry) -> Result<Vec<u8>, AuditError> {
    serde_json::to_vec(entry).map_err(|e| AuditError::Corrupt(format!("cannot encode: {e}")))
}

/// The chain's last link (its sequence and hash; the anchor's, or 0 and [`GENESIS`], if it
/// has none). On PostgreSQL it first takes the chain's lock for the rest of the transaction,
/// so the gateway and a CLI command extending one chain take turns (SQLite's immediate
/// transaction does that for the whole file).
pub(crate) fn head(tx: &mut Db, chain: &Chain) -> Result<(i64, String), AuditError> {
    if tx.backend() == Backend::Postgres {
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('gatehouse chain ' || ?1))",
            params![chain.instance],
        )?;
    }
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, sha256 FROM audit_chain WHERE instance = ?1 ORDER BY seq DESC LIMIT 1",
            params![chain.instance],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some(last) = last {
        return Ok(last);
    }
    let anchor: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, sha256 FROM chain_anchors WHERE instance = ?1",
            params![chain.instance],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(anchor.unwrap_or_else(|| (0, GENESIS.to_owned())))
}

/// Appends a purge's own link, its record kept in the link; returns the link's sequence.
///
/// The link's session is the chain's instance (`""` on SQLite), so purges of several chains
/// never share a key.
pub(crate) fn append_purge(
    tx: &mut Db,
    chain: &Chain,
    record: &str,
    at: i64,
) -> Result<i64, AuditError> {
    let (last, prev) = head(tx, chain)?;
    let next = last + 1;
    let key = LinkKey {
        kind: "purge",
        session: chain.instance.clone(),
        entry_seq: next,
        at,
    };
    let content = sha256(record.as_bytes());
    let hash = link_hash(chain, &prev, &key, &content);
    tx.execute(
        "INSERT INTO audit_chain (instance, seq, kind, session_id, entry_seq, at,
            content_sha256, prev_sha256, sha256, content)
         VALUES (?7, ?1, 'purge', ?7, ?1, ?2, ?3, ?4, ?5, ?6)",
        params![next, at, content, prev, hash, record, chain.instance],
    )?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_is_display() {
        let mut buf = [0u8; 20];
        for n in [
            0,
            1,
            -1,
            9,
            10,
            -10,
            42,
            1_700_000_000_123_456,
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(decimal(n, &mut buf), n.to_string().as_bytes());
        }
    }

    #[test]
    fn the_content_hash_of_a_journal_line_is_that_of_the_entry() {
        let entries = [
            Entry::Admit {
                session: "s1".into(),
                seq: 3,
                at: 1_700_000_000_000_001,
                identity: "ana".into(),
                groups: vec!["dba".into(), "on \"call\"".into()].into(),
                connection: "payments".into(),
                protocol: "postgres".into(),
                client: "127.0.0.1:5555".into(),
                statement: "SELECT 'é\n\t' FROM t WHERE id = $1".into(),
                params: vec![Some("42".into()), None],
                class: "select".into(),
                verdict: "allow".into(),
                rule: Some("r".into()),
                approval: None,
                masked: [("pan".to_owned(), 2)].into_iter().collect(),
                approved_by: Some("dana".into()),
            },
            Entry::Finish {
                session: "s1".into(),
                seq: 3,
                status: "ok".into(),
                tag: Some("SELECT 1".into()),
                sqlstate: None,
                error: None,
                rows_returned: 1,
                rows_affected: None,
                duration_us: 120,
                finished_at: 1_700_000_000_000_121,
                masked: Default::default(),
            },
            Entry::Open {
                id: "s1".into(),
                identity: "ana".into(),
                groups: vec![],
                token_id: "tok_1".into(),
                connection: "payments".into(),
                protocol: "postgres".into(),
                client: "[::1]:5555".into(),
                claimed_user: "x".into(),
                started_at: 1,
                settings: vec![],
            },
            Entry::Close {
                id: "s1".into(),
                ended_at: 2,
                reason: "client closed".into(),
                bytes_from_client: 10,
                bytes_from_server: 20,
                recording_sha256: Some(sha256(b"")),
            },
        ];
        let key = ChainKey(aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            b"0123456789abcdef0123456789abcdef",
        ));
        for entry in &entries {
            let line = crate::writer::journal_line(entry);
            assert!(!line.text.contains('\t'), "an entry line is its JSON alone");
            let fresh = sha256(&content_of(entry).unwrap_or_default());
            assert_eq!(
                line.content_sha256, fresh,
                "the line's hash is the content hash"
            );
            let hash = |sealed: Option<&String>| crate::links::content_sha256(entry, sealed).ok();
            assert_eq!(hash(Some(&line.content_sha256)), Some(fresh.clone()));
            assert_eq!(hash(None), Some(fresh.clone()));
            // A line that could not be encoded is never taken as the content's hash.
            assert_eq!(hash(Some(&String::new())), Some(fresh));
            let seal = key.seal_write(&[line.digest]);
            let mac = seal.trim();
            assert!(key.write_seal_holds(&[line.digest], mac));
            assert!(!key.write_seal_holds(&[line.digest, line.digest], mac));
            assert!(!key.write_seal_holds(&[json_digest("{}")], mac));
        }
    }

    #[test]
    fn link_hash_is_the_mac_of_the_joined_fields() {
        let key = ChainKey(aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            b"0123456789abcdef0123456789abcdef",
        ));
        for (kind, session, entry_seq, at) in [
            (
                "admit",
                "9f1c2ab34d5e6f708192a3b4c5d6e7f8",
                1,
                1_700_000_000_123_456,
            ),
            ("close", "s", 0, 0),
            ("purge", "", 17, -5),
        ] {
            let link = LinkKey {
                kind,
                session: session.to_owned(),
                entry_seq,
                at,
            };
            let content = sha256(b"{}");
            let joined = format!("{GENESIS}|{kind}|{session}|{entry_seq}|{at}|{content}");
            let want = gatehouse_core::identity::hex(
                aws_lc_rs::hmac::sign(&key.0, joined.as_bytes()).as_ref(),
            );
            let sqlite = Chain {
                key: key.clone(),
                instance: String::new(),
            };
            assert_eq!(link_hash(&sqlite, GENESIS, &link, &content), want);
            // An instance's chain: its id first, so one instance's link never fits another's.
            let joined = format!("gw-a|{joined}");
            let want = gatehouse_core::identity::hex(
                aws_lc_rs::hmac::sign(&key.0, joined.as_bytes()).as_ref(),
            );
            assert_eq!(
                link_hash(&sqlite.of("gw-a"), GENESIS, &link, &content),
                want
            );
        }
    }
}
