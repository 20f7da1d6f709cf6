//! Statement classification from a real SQL parser, never regex on text.
//!
//! A command's text may hold several statements; each is classed and the classes are kept in
//! order without repeats. Text the parser cannot read is [`StatementClass::Unknown`]: the session
//! goes on and policy decides what unknown text may do.
//!
//! The gateway must read a text exactly as the server will, or a statement could hide inside
//! what the gateway took for a string or a comment. PostgreSQL text is read by PostgreSQL's own
//! parser ([`postgres`]); MySQL text by a lexer that follows the server's rules for quotes,
//! comments and executable comments before sqlparser sees it ([`mysql`]). Settings that change
//! how text is read are pinned: a statement that would change them is refused
//! ([`Reading::refusal`]).

use std::fmt;

use crate::connection::Protocol;

pub mod mysql;
pub mod mysql_lexer;
pub mod postgres;
pub mod secrets;

/// Longest text the gateway parses: longer text is class `unknown` (which rules can deny),
/// still audited (cut at [`crate::session::MAX_AUDITED_TEXT`], with its length), so a huge text cannot tie
/// a worker up in the parser.
pub const MAX_PARSED_TEXT: usize = 256 << 10;

/// The class of one SQL statement, as rules and auditors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatementClass {
    /// A query that reads (SELECT, VALUES, TABLE, SHOW-like reads).
    Select,
    /// INSERT.
    Insert,
    /// UPDATE with a WHERE clause (and MERGE).
    Update,
    /// UPDATE without WHERE: every row of the table.
    UpdateWithoutWhere,
    /// DELETE with a WHERE clause.
    Delete,
    /// DELETE without WHERE: every row of the table.
    DeleteWithoutWhere,
    /// TRUNCATE.
    Truncate,
    /// Any DROP.
    Drop,
    /// CREATE, ALTER, COMMENT, RENAME and other schema changes.
    Ddl,
    /// GRANT, REVOKE, role and user management.
    Dcl,
    /// COPY (either direction) and LOAD DATA.
    Copy,
    /// BEGIN, COMMIT, ROLLBACK, SAVEPOINT.
    Transaction,
    /// Session and utility statements (SET, SHOW, VACUUM, LISTEN, ...).
    Other,
    /// Text the parser could not read.
    Unknown,
    /// SSH: a command run by `exec` (`ssh host 'cmd'`, scp, rsync).
    Exec,
    /// SSH: an interactive shell opened.
    Shell,
    /// SSH: a line typed into an interactive shell (reconstructed; evidence, not a boundary).
    ShellLine,
    /// SSH: an SFTP operation (open, remove, rename, mkdir, setstat, ...).
    Sftp,
    /// SSH: a forwarded TCP connection (direct-tcpip).
    Tunnel,
}

impl StatementClass {
    /// Every class, in the order rules and documentation list them.
    pub const ALL: [Self; 19] = [
        Self::Select,
        Self::Insert,
        Self::Update,
        Self::UpdateWithoutWhere,
        Self::Delete,
        Self::DeleteWithoutWhere,
        Self::Truncate,
        Self::Drop,
        Self::Ddl,
        Self::Dcl,
        Self::Copy,
        Self::Transaction,
        Self::Other,
        Self::Unknown,
        Self::Exec,
        Self::Shell,
        Self::ShellLine,
        Self::Sftp,
        Self::Tunnel,
    ];

    /// The class of a configuration name (`delete-without-where`), if there is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The stable name used in configuration (`when = { class = [...] }`) and the audit store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Select => "select",
            Self::Insert => "insert",
            Self::Update => "update",
            Self::UpdateWithoutWhere => "update-without-where",
            Self::Delete => "delete",
            Self::DeleteWithoutWhere => "delete-without-where",
            Self::Truncate => "truncate",
            Self::Drop => "drop",
            Self::Ddl => "ddl",
            Self::Dcl => "dcl",
            Self::Copy => "copy",
            Self::Transaction => "transaction",
            Self::Other => "other",
            Self::Unknown => "unknown",
            Self::Exec => "exec",
            Self::Shell => "shell",
            Self::ShellLine => "shell-line",
            Self::Sftp => "sftp",
            Self::Tunnel => "tunnel",
        }
    }
}

impl fmt::Display for StatementClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The classes of every statement in one command's text, in order, without repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Classification {
    classes: Vec<StatementClass>,
}

impl Classification {
    /// Builds a classification from known classes (for commands that are not SQL text).
    pub fn of(classes: &[StatementClass]) -> Self {
        let mut c = Self::default();
        for class in classes {
            c.push(*class);
        }
        c
    }

    /// The classes in statement order.
    pub fn classes(&self) -> &[StatementClass] {
        &self.classes
    }

    /// Whether any statement has this class.
    pub fn contains(&self, class: StatementClass) -> bool {
        self.classes.contains(&class)
    }

    fn push(&mut self, class: StatementClass) {
        if !self.classes.contains(&class) {
            self.classes.push(class);
        }
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, class) in self.classes.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(class.as_str())?;
        }
        Ok(())
    }
}

/// Classifies SQL text in the dialect of the wire it came from.
///
/// Empty text (only whitespace, comments or semicolons) yields an empty classification.
pub fn classify(protocol: Protocol, sql: &str) -> Classification {
    read(protocol, sql).classes
}

/// Everything the gateway reads in one command's text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    /// The classes of its statements (before any `EXECUTE` is resolved).
    pub classes: Classification,
    /// What it does with prepared statements, in statement order.
    pub uses: Vec<PreparedUse>,
    /// Its reading depends on the value of a constant (`EXPLAIN (ANALYZE 1)`, `set_config`'s
    /// setting name, a `PREPARE`'s text): it may be cached only under its exact text.
    pub literal_dependent: bool,
    /// Why the gateway refuses it whatever the rules say: it would change how the gateway and
    /// the server read later text (a pinned setting, an unreadable client encoding).
    pub refusal: Option<String>,
}

impl Reading {
    /// The reading of text the parser could not read.
    pub fn unknown() -> Self {
        Self {
            classes: Classification::of(&[StatementClass::Unknown]),
            ..Self::default()
        }
    }

    pub(crate) fn push(&mut self, class: StatementClass) {
        self.classes.push(class);
    }

    pub(crate) fn refuse(&mut self, reason: String) {
        if self.refusal.is_none() {
            self.refusal = Some(reason);
        }
    }
}

/// Reads SQL text in the dialect of the wire it came from.
pub fn read(protocol: Protocol, sql: &str) -> Reading {
    match protocol {
        Protocol::Mysql => mysql::read(sql, mysql::Modes::default()),
        _ => postgres::read(sql),
    }
}

/// What a text does with prepared statements (`PREPARE`, `EXECUTE`, `DEALLOCATE`), so an
/// `EXECUTE name` is judged by what `name` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreparedUse {
    /// `PREPARE name ...`: `text` is read to judge what `EXECUTE name` runs (`None`: the
    /// gateway cannot know it, as for MySQL's `PREPARE name FROM @variable`).
    Prepare {
        /// The statement name as the server stores it.
        name: String,
        /// A text whose reading is what the prepared statement runs.
        text: Option<String>,
    },
    /// `EXECUTE name`, wherever it appears (top level, under EXPLAIN, in CREATE TABLE AS).
    Execute(String),
    /// `DEALLOCATE name` (`None`: `DEALLOCATE ALL`, `DISCARD ALL`).
    Deallocate(Option<String>),
}

/// Whether `text` contains the ASCII `word` in any case, without allocating (it runs for
/// every command).
pub fn mentions(text: &str, word: &str) -> bool {
    let (text, word) = (text.as_bytes(), word.as_bytes());
    if word.is_empty() || text.len() < word.len() {
        return false;
    }
    // Candidates are found by the word's rarest letter in SQL (memchr, both cases), not by
    // comparing at every offset: this runs on every statement (the password check).
    let (at, anchor) = word
        .iter()
        .enumerate()
        .min_by_key(|(_, b)| rarity_rank(**b))
        .map_or((0, word[0]), |(i, b)| (i, *b));
    memchr::memchr2_iter(
        anchor.to_ascii_lowercase(),
        anchor.to_ascii_uppercase(),
        text,
    )
    .any(|i| {
        i >= at
            && text
                .get(i - at..i - at + word.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(word))
    })
}

/// How common a letter is in SQL text, rarest first (letters not listed rank last).
fn rarity_rank(b: u8) -> usize {
    const RAREST_FIRST: &[u8] = b"qjzxkvwyfbgphmudclnortiase";
    RAREST_FIRST
        .iter()
        .position(|r| *r == b.to_ascii_lowercase())
        .unwrap_or(RAREST_FIRST.len())
}

impl Classification {
    /// Adds another classification's classes.
    pub fn extend(&mut self, other: &Classification) {
        for class in &other.classes {
            self.push(*class);
        }
    }
}

/// The parser's canonical rendering of SQL text, for pattern rules: comments gone, keywords
/// upper case, one space between tokens, statements joined by `; `. Text the parser cannot
/// read is returned with its comments stripped, so a pattern still sees through them.
pub fn canonical(protocol: Protocol, sql: &str) -> String {
    match protocol {
        Protocol::Mysql => mysql::canonical(sql),
        _ => match pg_query::parse(sql, pg_query::ParserOptions::DEFAULT)
            .and_then(|p| p.deparse(pg_query::DeparseOptions::default()))
        {
            Ok(text) => text,
            Err(_) => postgres::without_comments(sql),
        },
    }
}

/// The key under which a text's reading may be cached: its constants folded where the
/// dialect's lexer can find them exactly (`None`: do not fold, key by the exact text).
pub fn folded_key(protocol: Protocol, sql: &str) -> Option<String> {
    match protocol {
        Protocol::Mysql => mysql::folded_key(sql, mysql::Modes::default()),
        _ => postgres::folded_key(sql),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(sql: &str) -> String {
        classify(Protocol::Postgres, sql).to_string()
    }

    #[test]
    fn classes_of_common_statements() {
        let table = [
            ("SELECT 1", "select"),
            ("select * from t where id = $1", "select"),
            ("INSERT INTO t VALUES (1)", "insert"),
            ("UPDATE t SET a = 1 WHERE id = 2", "update"),
            ("update t set a = 1", "update-without-where"),
            ("DELETE FROM t WHERE id = 1", "delete"),
            ("/* hidden */ DeLeTe FROM t", "delete-without-where"),
            ("TRUNCATE t", "truncate"),
            ("DROP TABLE t", "drop"),
            ("DROP INDEX i", "drop"),
            ("CREATE TABLE t (a int)", "ddl"),
            ("ALTER TABLE t ADD COLUMN b int", "ddl"),
            ("GRANT SELECT ON t TO bob", "dcl"),
            ("REVOKE SELECT ON t FROM bob", "dcl"),
            ("COPY t FROM STDIN", "copy"),
            ("COPY t TO STDOUT", "copy"),
            ("BEGIN", "transaction"),
            ("COMMIT", "transaction"),
            ("ROLLBACK", "transaction"),
            ("SET search_path = public", "other"),
            ("EXPLAIN ANALYZE DELETE FROM t", "delete-without-where"),
            ("EXPLAIN DELETE FROM t", "select"),
            ("EXPLAIN (ANALYZE) DELETE FROM t", "delete-without-where"),
            ("EXPLAIN (ANALYZE false) DELETE FROM t", "select"),
            (
                "COPY (DELETE FROM t RETURNING 1) TO STDOUT",
                "copy,delete-without-where",
            ),
            ("this is not sql", "unknown"),
            ("", ""),
        ];
        for (sql, want) in table {
            assert_eq!(pg(sql), want, "{sql}");
        }
    }

    #[test]
    fn canonical_text_drops_comments() {
        assert_eq!(
            canonical(Protocol::Postgres, "/* x */ grant/**/select on t to bob"),
            "GRANT select ON t TO bob"
        );
        assert_eq!(
            canonical(Protocol::Postgres, "not sql -- x\n/* y */ 'a -- b'"),
            "not sql 'a -- b'"
        );
        assert_eq!(StatementClass::parse("drop"), Some(StatementClass::Drop));
        assert_eq!(StatementClass::parse("nope"), None);
        assert!(mentions("x ExEcUtE y", "execute"));
        assert!(!mentions("exec", "execute"));
        assert!(mentions("ALTER ROLE a PASSWORD 'x'", "password"));
        assert!(mentions("password", "password"));
        assert!(!mentions("pass word", "password"));
        assert!(mentions("wwidentifiedw", "identified"));
        assert!(!mentions("", "password"));
        assert!(mentions("é identified", "identified"));
    }

    #[test]
    fn the_server_reading_wins() {
        // Nested block comments: two statements to PostgreSQL.
        assert_eq!(
            pg("SELECT /* /* */ ' */ 1; DELETE FROM t; -- '"),
            "select,delete-without-where"
        );
        assert_eq!(
            pg("SELECT /* /* */ */ 1; DELETE FROM t; -- '"),
            "select,delete-without-where"
        );
        // E'' strings: the backslash escapes the quote.
        assert_eq!(
            pg(r"SELECT E'\''; DELETE FROM t; -- '"),
            "select,delete-without-where"
        );
        assert_eq!(
            pg("SELECT $x$ '; $x$; DELETE FROM t"),
            "select,delete-without-where"
        );
    }

    #[test]
    fn classes_say_what_a_statement_does() {
        let table = [
            (
                "MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE",
                "delete-without-where",
            ),
            (
                "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
                "delete",
            ),
            (
                "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = 1 \
                 WHEN NOT MATCHED THEN INSERT VALUES (1)",
                "update,insert",
            ),
            ("SELECT * INTO t2 FROM t", "ddl,select"),
            (
                "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 2",
                "insert,update",
            ),
            ("INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", "insert"),
            ("DELETE FROM t WHERE true", "delete-without-where"),
            ("DELETE FROM t WHERE 1 = 1", "delete-without-where"),
            ("DELETE FROM t WHERE $1", "delete-without-where"),
            (
                "DELETE FROM t WHERE id = 5 OR 1 = 1",
                "delete-without-where",
            ),
            ("DELETE FROM t WHERE id = 5 AND true", "delete"),
            ("UPDATE t SET a = 1 WHERE coalesce(id, 0) = 5", "update"),
            ("CREATE TABLE t2 AS SELECT 1", "ddl,select"),
            ("DO $$ BEGIN DELETE FROM t; END $$", "unknown"),
            ("EXPLAIN (ANALYZE 1) DELETE FROM t", "delete-without-where"),
            ("EXPLAIN (ANALYZE 0) DELETE FROM t", "select"),
            ("EXPLAIN (ANALYZE off) DELETE FROM t", "select"),
        ];
        for (sql, want) in table {
            assert_eq!(pg(sql), want, "{sql}");
        }
        let my = |sql: &str| classify(Protocol::Mysql, sql).to_string();
        assert_eq!(my("DELETE FROM t WHERE 1=1"), "delete-without-where");
        assert_eq!(
            my("INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 2"),
            "insert,update"
        );
        assert_eq!(my("/*!32302 DELETE FROM t */"), "delete-without-where");
        assert_eq!(my("SELECT 1 # ; DELETE FROM t"), "select");
    }

    #[test]
    fn executes_are_found_wherever_they_are() {
        let uses = |sql: &str| read(Protocol::Postgres, sql).uses;
        for sql in [
            "EXECUTE s1",
            "EXPLAIN ANALYZE EXECUTE s1",
            "CREATE TABLE x AS EXECUTE s1",
            "EXPLAIN (ANALYZE) CREATE TABLE x AS EXECUTE s1",
        ] {
            assert!(
                uses(sql).contains(&PreparedUse::Execute("s1".into())),
                "{sql}"
            );
        }
        assert_eq!(
            uses("PREPARE p AS DELETE FROM t; DEALLOCATE p; DISCARD ALL"),
            vec![
                PreparedUse::Prepare {
                    name: "p".into(),
                    text: Some("PREPARE p AS DELETE FROM t".into())
                },
                PreparedUse::Deallocate(Some("p".into())),
                PreparedUse::Deallocate(None),
            ]
        );
        let my = read(
            Protocol::Mysql,
            "PREPARE s FROM 'DELETE FROM t'; EXECUTE s USING @a",
        );
        assert_eq!(my.classes.to_string(), "delete-without-where");
        assert_eq!(my.uses.len(), 2);
        let var = read(Protocol::Mysql, "PREPARE s FROM @q");
        assert_eq!(var.classes.to_string(), "unknown");
    }

    #[test]
    fn after_an_unreadable_mysql_statement_only_texts_no_charset_reads_differently_pass() {
        let unsure = mysql::Modes {
            charset_unsure: true,
            ..mysql::Modes::default()
        };
        let hidden = "SELECT '\u{c3}\\'; DELETE FROM t; -- '";
        assert!(mysql::unsure_charset(hidden, unsure).is_some_and(|r| r.refusal.is_some()));
        assert!(mysql::unsure_charset("SELECT `caf\u{e9}` FROM t", unsure).is_some());
        assert!(mysql::unsure_charset("SELECT 'caf\u{e9}', 'a\\'b'", unsure).is_none());
        // In one text with a statement the gateway cannot read, it is refused at once.
        let one_text = "SET @s = CONCAT('SET charac', 'ter_set_client = sjis'); \
                        PREPARE st FROM @s; EXECUTE st; SELECT '\u{c3}\\'; DELETE FROM t; -- '";
        let read_once = mysql::read(one_text, mysql::Modes::default());
        assert!(read_once.refusal.is_some(), "{read_once:?}");
        // Before any such statement, the same text is read (as the one SELECT it is in utf8).
        assert!(mysql::unsure_charset(hidden, mysql::Modes::default()).is_none());
        let sure = mysql::read(hidden, mysql::Modes::default());
        assert!(sure.refusal.is_none());
        assert_eq!(sure.classes.to_string(), "select");
    }

    #[test]
    fn settings_that_change_lexing_are_refused() {
        let refused = |p, sql: &str| read(p, sql).refusal.is_some();
        let pgp = Protocol::Postgres;
        assert!(refused(pgp, "SET standard_conforming_strings = off"));
        assert!(refused(pgp, "SET LOCAL standard_conforming_strings TO off"));
        assert!(refused(pgp, "RESET standard_conforming_strings"));
        assert!(refused(
            pgp,
            "SELECT set_config('standard_conforming_strings', 'off', false)"
        ));
        assert!(refused(
            pgp,
            "SELECT pg_catalog.set_config(name, 'off', false) FROM x"
        ));
        assert!(refused(
            pgp,
            "ALTER ROLE app SET standard_conforming_strings = off"
        ));
        assert!(refused(pgp, "SET client_encoding = 'SJIS'"));
        assert!(refused(pgp, "SET NAMES 'big5'"));
        assert!(!refused(pgp, "SET standard_conforming_strings = on"));
        assert!(!refused(pgp, "SET client_encoding = 'LATIN1'"));
        assert!(!refused(pgp, "SELECT set_config('app.user', '42', false)"));
        assert!(!refused(pgp, "RESET ALL"));
        let my = Protocol::Mysql;
        assert!(refused(my, "SET NAMES gbk"));
        assert!(refused(my, "SET CHARACTER SET sjis"));
        assert!(refused(my, "SET character_set_client = big5"));
        assert!(refused(my, "SET @@session.character_set_client = @cs"));
        assert!(!refused(my, "SET NAMES utf8mb4"));
        // Values the server takes for a character set that the gateway cannot read off the
        // text: a collation id, adjacent literals, an introducer, an expression, a variable.
        for sneaky in [
            "SET character_set_client = 13",
            "SET character_set_client = 's' 'jis'",
            "SET character_set_client = _latin1'sjis'",
            "SET character_set_client = CONCAT('sj', 'is')",
            "SET character_set_client = @@character_set_results",
            "SET SESSION character_set_client = 13",
            "SET NAMES 13",
            "SET CHARACTER SET 'sj' 'is'",
        ] {
            assert!(refused(my, sneaky), "{sneaky}");
        }
        for plain in [
            "SET NAMES 'utf8mb4' COLLATE 'utf8mb4_unicode_ci'",
            "SET NAMES latin1",
            "SET CHARACTER SET utf8mb4",
            "SET character_set_client = DEFAULT, autocommit = 1",
            "SET @@session.character_set_client = `utf8mb4`",
            "SET character_set_results = NULL",
        ] {
            assert!(!refused(my, plain), "{plain}");
        }
        assert!(!refused(
            my,
            "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */"
        ));
        assert!(!refused(
            my,
            "/*!40101 SET CHARACTER_SET_CLIENT = @OLD_CHARACTER_SET_CLIENT */"
        ));
        assert!(refused(my, "SET @old_character_set_client = 'gbk'"));
        assert!(refused(my, "SELECT @old_character_set_client := 'gbk'"));
        assert!(!refused(my, "SET autocommit = 1"));
    }

    #[test]
    fn multi_statement_text_keeps_every_class() {
        assert_eq!(
            pg("SELECT 1; DELETE FROM t; SELECT 2"),
            "select,delete-without-where"
        );
    }

    #[test]
    fn writes_hidden_in_ctes_are_seen() {
        assert_eq!(
            pg("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d"),
            "delete-without-where,select"
        );
    }
}
