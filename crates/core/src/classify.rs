//! Statement classification from a real SQL parser (sqlparser), never regex on text.
//!
//! A command's text may hold several statements; each is classed and the classes are kept in
//! order without repeats. Text the parser cannot read is [`StatementClass::Unknown`]: the session
//! goes on and later policy decides what unknown text may do.

use std::fmt;

use sqlparser::ast::{SetExpr, Statement};
use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;

use crate::connection::Protocol;

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
    let dialect: &dyn Dialect = match protocol {
        Protocol::Mysql => &MySqlDialect {},
        _ => &PostgreSqlDialect {},
    };
    let mut out = Classification::default();
    match Parser::parse_sql(dialect, sql) {
        Ok(statements) => {
            for statement in &statements {
                classify_statement(statement, &mut out);
            }
        }
        Err(_) => out.push(StatementClass::Unknown),
    }
    out
}

/// What a text does with SQL-level prepared statements (`PREPARE`, `EXECUTE`, `DEALLOCATE`),
/// so a session can judge an `EXECUTE name` by what `name` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreparedUse {
    /// `PREPARE name AS statement`, with the statement's classes.
    Prepare(String, Classification),
    /// `EXECUTE name`.
    Execute(String),
    /// `DEALLOCATE name` (`None`: `ALL`).
    Deallocate(Option<String>),
}

/// The prepared-statement uses of a text, in order (empty for most texts, cheaply).
pub fn prepared_uses(protocol: Protocol, sql: &str) -> Vec<PreparedUse> {
    if !["prepare", "execute", "deallocate"]
        .iter()
        .any(|w| mentions(sql, w))
    {
        return Vec::new();
    }
    let dialect: &dyn Dialect = match protocol {
        Protocol::Mysql => &MySqlDialect {},
        _ => &PostgreSqlDialect {},
    };
    let Ok(statements) = Parser::parse_sql(dialect, sql) else {
        return Vec::new();
    };
    let mut uses = Vec::new();
    for statement in &statements {
        match statement {
            Statement::Prepare {
                name, statement, ..
            } => {
                let mut classes = Classification::default();
                classify_statement(statement, &mut classes);
                uses.push(PreparedUse::Prepare(
                    name.value.to_ascii_lowercase(),
                    classes,
                ));
            }
            Statement::Execute {
                name: Some(name), ..
            } => {
                uses.push(PreparedUse::Execute(name.to_string().to_ascii_lowercase()));
            }
            Statement::Deallocate { name, .. } => {
                let name = name.value.to_ascii_lowercase();
                uses.push(PreparedUse::Deallocate((name != "all").then_some(name)));
            }
            _ => {}
        }
    }
    uses
}

/// Whether `text` contains the ASCII `word` in any case, without allocating (it runs for
/// every command).
pub fn mentions(text: &str, word: &str) -> bool {
    let word = word.as_bytes();
    !word.is_empty()
        && text
            .as_bytes()
            .windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word))
}

impl Classification {
    /// Adds another classification's classes.
    pub fn extend(&mut self, other: &Classification) {
        for class in &other.classes {
            self.push(*class);
        }
    }
}

/// The parser's canonical rendering of SQL text: comments gone, keywords upper case, one space
/// between tokens, statements joined by `; `. Text the parser cannot read is returned with its
/// comments stripped, so a pattern still sees through them.
pub fn canonical(protocol: Protocol, sql: &str) -> String {
    let dialect: &dyn Dialect = match protocol {
        Protocol::Mysql => &MySqlDialect {},
        _ => &PostgreSqlDialect {},
    };
    match Parser::parse_sql(dialect, sql) {
        Ok(statements) => statements
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => strip_comments(sql),
    }
}

/// Removes `--` line comments and `/* */` block comments outside quotes.
fn strip_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match (c, chars.peek()) {
            ('\'', _) | ('"', _) | ('`', _) => {
                quote = Some(c);
                out.push(c);
            }
            ('-', Some('-')) => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                // A comment separates tokens, as in SQL itself.
                out.push(' ');
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

fn classify_statement(statement: &Statement, out: &mut Classification) {
    use StatementClass as C;
    match statement {
        Statement::Query(query) => classify_query(query, out),
        Statement::Insert(_) => out.push(C::Insert),
        Statement::Update(update) => out.push(if update.selection.is_none() {
            C::UpdateWithoutWhere
        } else {
            C::Update
        }),
        Statement::Delete(delete) => out.push(if delete.selection.is_none() {
            C::DeleteWithoutWhere
        } else {
            C::Delete
        }),
        Statement::Merge(_) => out.push(C::Update),
        Statement::Truncate(_) => out.push(C::Truncate),
        // COPY (query) TO runs its query, which may write (`COPY (DELETE ... RETURNING *)`).
        Statement::Copy { source, .. } => {
            out.push(C::Copy);
            if let sqlparser::ast::CopySource::Query(query) = source {
                classify_query(query, out);
            }
        }
        Statement::LoadData { .. } => out.push(C::Copy),
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => out.push(C::Transaction),
        Statement::Grant(_)
        | Statement::GrantRole(_)
        | Statement::Revoke(_)
        | Statement::RevokeRole(_)
        | Statement::Deny(_)
        | Statement::CreateRole(_)
        | Statement::AlterRole { .. }
        | Statement::CreateUser(_)
        | Statement::AlterUser(_)
        | Statement::AlterDefaultPrivileges(_) => out.push(C::Dcl),
        // A prepared or explained statement is judged by what it would run. EXPLAIN ANALYZE
        // executes its statement; plain EXPLAIN only plans it, which reads.
        Statement::Prepare { statement, .. } => classify_statement(statement, out),
        Statement::Explain {
            statement,
            analyze,
            options,
            ..
        } => {
            // `EXPLAIN (ANALYZE) ...` runs its statement as much as `EXPLAIN ANALYZE ...`.
            let analyze_option = options.iter().flatten().any(|o| {
                o.name.value.eq_ignore_ascii_case("analyze")
                    && o.arg.as_ref().is_none_or(|arg| {
                        let arg = arg.to_string().to_ascii_lowercase();
                        !matches!(arg.as_str(), "false" | "off" | "0")
                    })
            });
            if *analyze || analyze_option {
                classify_statement(statement, out)
            } else {
                out.push(C::Select)
            }
        }
        Statement::Set(_) | Statement::ShowVariable { .. } => out.push(C::Other),
        other => out.push(class_by_keyword(other)),
    }
}

/// Queries read unless a data-modifying CTE or body hides a write inside them
/// (`WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d`).
fn classify_query(query: &sqlparser::ast::Query, out: &mut Classification) {
    if let Some(with) = &query.with {
        for cte in &with.cte_tables {
            classify_query(&cte.query, out);
        }
    }
    classify_set_expr(&query.body, out);
}

fn classify_set_expr(body: &SetExpr, out: &mut Classification) {
    match body {
        SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) | SetExpr::Merge(s) => {
            classify_statement(s, out)
        }
        SetExpr::Query(q) => classify_query(q, out),
        SetExpr::SetOperation { left, right, .. } => {
            classify_set_expr(left, out);
            classify_set_expr(right, out);
        }
        _ => out.push(StatementClass::Select),
    }
}

/// The long tail of statement kinds (dozens of CREATE/ALTER/DROP variants) is classed by the
/// leading keyword of the parser's canonical rendering, which stays stable across parser
/// versions where variant names do not.
fn class_by_keyword(statement: &Statement) -> StatementClass {
    let text = statement.to_string();
    let first = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    match first.as_str() {
        "DROP" => StatementClass::Drop,
        "CREATE" | "ALTER" | "COMMENT" | "RENAME" => StatementClass::Ddl,
        "SHOW" | "DESCRIBE" | "DESC" => StatementClass::Select,
        _ => StatementClass::Other,
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
            "GRANT SELECT ON t TO bob"
        );
        assert_eq!(
            canonical(Protocol::Postgres, "not sql -- x\n/* y */ 'a -- b'"),
            "not sql \n  'a -- b'"
        );
        assert_eq!(StatementClass::parse("drop"), Some(StatementClass::Drop));
        assert_eq!(StatementClass::parse("nope"), None);
        assert!(mentions("x ExEcUtE y", "execute"));
        assert!(!mentions("exec", "execute"));
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
