//! MySQL and MariaDB text: lexed by the server's rules ([`mysql_lexer`](super::mysql_lexer)),
//! then parsed by sqlparser's MySQL dialect statement by statement.

use sqlparser::ast::{Expr, SetExpr, Statement};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use super::mysql_lexer::lex;
pub use super::mysql_lexer::Modes;
use super::{PreparedUse, Reading, StatementClass};

/// Whether a text could read differently under a character set whose characters can end in a
/// backslash or a backtick (sjis, big5, gbk, cp932, gb18030): those two bytes, right after a
/// non-ASCII byte, would be part of that character there (a quote or a comment opener, all
/// below 0x40, never is).
pub fn may_read_differently(sql: &str) -> bool {
    sql.as_bytes()
        .windows(2)
        .any(|w| w[0] >= 0x80 && matches!(w[1], b'\\' | b'`'))
}

/// The refusal of a text that may read differently now that the session's character set is
/// not certain ([`Modes::charset_unsure`]); `None` when it reads the same under every set.
/// Checked on every text, before any cached reading: it depends on the literals' bytes.
pub fn unsure_charset(sql: &str, modes: Modes) -> Option<Reading> {
    if !modes.charset_unsure || !may_read_differently(sql) {
        return None;
    }
    let mut unsure = Reading::unknown();
    unsure.refuse(
        "a statement with a backslash or backtick right after a non-ASCII character cannot \
         be read with certainty after a statement the gateway could not read ran in this \
         session (it may have changed the client character set); reconnect to send it"
            .into(),
    );
    Some(unsure)
}

/// Reads a MySQL text under the session's modes. Under `ANSI_QUOTES`, which no server message
/// reveals, the text is read both ways: if the readings differ it is `unknown`. A text the
/// gateway cannot read whole that would also read differently under another character set
/// is refused: a statement in it could switch the set before the server reads the rest.
pub fn read(sql: &str, modes: Modes) -> Reading {
    let mut reading = read_both_ways(sql, modes);
    if reading.classes.contains(StatementClass::Unknown) && may_read_differently(sql) {
        reading.literal_dependent = true;
        reading.refuse(
            "a text the gateway cannot read whole, with a backslash or backtick right after a \
             non-ASCII character, is refused: a statement in it could change the client \
             character set before the server reads the rest"
                .into(),
        );
    }
    reading
}

fn read_both_ways(sql: &str, modes: Modes) -> Reading {
    let plain = read_as(
        sql,
        Modes {
            ansi_quotes: false,
            ..modes
        },
    );
    if !sql.contains('"') {
        return plain;
    }
    let ansi = read_as(
        sql,
        Modes {
            ansi_quotes: true,
            ..modes
        },
    );
    if plain.classes == ansi.classes && plain.uses == ansi.uses && plain.refusal == ansi.refusal {
        plain
    } else {
        Reading {
            literal_dependent: true,
            ..Reading::unknown()
        }
    }
}

fn read_as(sql: &str, modes: Modes) -> Reading {
    let Ok(lexed) = lex(sql, modes) else {
        return Reading::unknown();
    };
    let mut out = Reading::default();
    for statement in &lexed.statements {
        character_set(statement, &mut out);
        let kill = statement
            .split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("kill"));
        if kill
            && (lexed.statements.len() > 1
                || statement.trim() != sql.trim().trim_end_matches(';').trim())
        {
            // The wire maps a KILL's connection id to the server's; it can only read one
            // sent alone and plainly.
            out.refuse(
                "send KILL alone, without comments, through the gateway (it maps the \
                 connection id it gave to the server's)"
                    .into(),
            );
        }
        if prepared_statement(statement, modes, &mut out) {
            continue;
        }
        match Parser::parse_sql(&MySqlDialect {}, statement) {
            Ok(parsed) => {
                for s in &parsed {
                    classify_statement(s, &mut out);
                }
            }
            Err(_) => out.push(StatementClass::Unknown),
        }
    }
    out
}

/// Character sets whose multi-byte characters can hold an ASCII backslash or quote byte:
/// under them the server and a UTF-8 reader disagree on where a string ends.
pub const UNSAFE_CHARSETS: &[&str] = &["big5", "cp932", "gbk", "sjis", "gb18030"];

/// Whether a character set (or collation) name is one the gateway can read text in.
pub fn charset_is_safe(name: &str) -> bool {
    let name = name.trim_matches(['\'', '`', '"']).to_ascii_lowercase();
    !UNSAFE_CHARSETS
        .iter()
        .any(|c| name == *c || name.starts_with(&format!("{c}_")))
}

/// `SET NAMES x`, `SET CHARACTER SET x`, `SET character_set_client = x` to a character set
/// the gateway cannot read is refused, and so is any such SET to a value not in the text.
fn character_set(statement: &str, out: &mut Reading) {
    let lower = statement.trim_start().to_ascii_lowercase();
    // mysqldump saves the client character set in `@old_character_set_client` (or, around a
    // view or routine, `@saved_cs_client`) and restores it; those variables may only ever
    // hold the server's own (readable) setting.
    for var in ["old_character_set_client", "saved_cs_client"] {
        if !lower.contains(var) {
            continue;
        }
        let squeezed: String = lower.split_whitespace().collect();
        let squeezed = squeezed.trim_end_matches(';');
        let save = squeezed == format!("set@{var}=@@character_set_client");
        let restore = squeezed == format!("setcharacter_set_client=@{var}");
        out.literal_dependent = true;
        if !save && !restore {
            out.refuse(format!(
                "@{var} is kept for mysqldump's own save and restore of the client character \
                 set through the gateway"
            ));
        }
        return;
    }
    if !lower.starts_with("set") {
        return;
    }
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || c == '=' || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let touches = words.iter().any(|w| {
        matches!(*w, "names" | "charset" | "character")
            || w.trim_start_matches('@')
                .trim_start_matches("session.")
                .trim_start_matches("local.")
                == "character_set_client"
    });
    if !touches {
        return;
    }
    out.literal_dependent = true;
    if let Err(why) = client_charset_assignments(&lower) {
        out.refuse(why);
    }
}

/// Character sets the gateway reads a client's text in: those where an ASCII byte is always
/// that character. An allow-list, so that nothing the server also accepts (a collation id, an
/// alias) passes for one of them.
const CLIENT_CHARSETS: &[&str] = &[
    "utf8mb4", "utf8mb3", "utf8", "latin1", "latin2", "latin5", "latin7", "ascii", "binary",
    "cp1250", "cp1251", "cp1256", "cp1257", "cp850", "cp852", "cp866", "dec8", "greek", "hebrew",
    "hp8", "keybcs2", "koi8r", "koi8u", "macce", "macroman", "swe7", "tis620", "armscii8",
    "geostd8", "euckr", "ujis", "eucjpms", "gb2312",
];

/// Checks each assignment of a SET that touches the client character set: every value it
/// gives that set must be a plain name from [`CLIENT_CHARSETS`] (quoted or not) or DEFAULT,
/// never a number (the server takes a collation id), an expression, a variable or an
/// introducer, whose value the gateway cannot know.
fn client_charset_assignments(lower: &str) -> Result<(), String> {
    let body = lower.trim().trim_end_matches(';').trim();
    let body = keyword(body, "set").unwrap_or(body);
    for assignment in body.split(',') {
        let a = assignment.trim();
        let values: Vec<(&str, bool)> = if let Some(rest) = keyword(a, "names") {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            match parts.as_slice() {
                [name] => vec![(*name, false)],
                [name, "collate", collation] => vec![(*name, false), (*collation, true)],
                _ => return Err(unreadable_charset(a)),
            }
        } else if let Some(rest) = keyword(a, "charset")
            .or_else(|| keyword(a, "character").and_then(|r| keyword(r, "set")))
        {
            vec![(rest, false)]
        } else if let Some((lhs, rhs)) = a.split_once('=') {
            let lhs = lhs.trim().trim_end_matches(':').trim();
            let lhs = ["session", "local", "global"]
                .iter()
                .find_map(|k| keyword(lhs, k))
                .unwrap_or(lhs);
            let name = lhs
                .trim_start_matches("@@")
                .trim_start_matches("session.")
                .trim_start_matches("local.")
                .trim_start_matches("global.");
            if name != "character_set_client" {
                continue;
            }
            vec![(rhs.trim(), false)]
        } else if a.contains("character_set_client") {
            return Err(unreadable_charset(a));
        } else {
            continue;
        };
        for (value, collation) in values {
            let plain = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| value.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .or_else(|| value.strip_prefix('`').and_then(|v| v.strip_suffix('`')))
                .unwrap_or(value);
            let readable = plain == "default"
                || CLIENT_CHARSETS.contains(&plain)
                || (collation
                    && CLIENT_CHARSETS
                        .iter()
                        .any(|c| plain.strip_prefix(c).is_some_and(|r| r.starts_with('_'))));
            if !readable {
                return Err(if charset_is_safe(plain) {
                    unreadable_charset(a)
                } else {
                    format!(
                        "character set {plain} is not supported through the gateway: its \
                         characters can contain an ASCII backslash, so the gateway could not \
                         read SQL as the server does; use utf8mb4"
                    )
                });
            }
        }
    }
    Ok(())
}

/// A word at the start of a text, and what follows it.
fn keyword<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(word)?;
    rest.starts_with(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '`' | '='))
        .then(|| rest.trim_start())
}

fn unreadable_charset(assignment: &str) -> String {
    format!(
        "the client character set can only be set to a plain name the gateway reads \
         (utf8mb4, latin1, ...) through the gateway, not as in `{assignment}`"
    )
}

/// The cache key of a text (numbers and strings folded, as the server lexes them).
pub fn folded_key(sql: &str, modes: Modes) -> Option<String> {
    if sql.contains('"') {
        return None;
    }
    lex(sql, modes).ok().map(|l| l.folded)
}

/// The text for pattern rules: the statements as lexed (comments gone, executable comments
/// the server runs kept), canonical where sqlparser reads them.
pub fn canonical(sql: &str) -> String {
    let Ok(lexed) = lex(sql, Modes::default()) else {
        return sql.to_owned();
    };
    lexed
        .statements
        .iter()
        .map(|s| match Parser::parse_sql(&MySqlDialect {}, s) {
            Ok(parsed) => parsed
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; "),
            Err(_) => s.trim().to_owned(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `PREPARE name FROM 'text' | @var`, `EXECUTE name [USING ...]`, `{DEALLOCATE | DROP}
/// PREPARE name`, read from the lexed statement (names are case-insensitive in MySQL).
fn prepared_statement(statement: &str, modes: Modes, out: &mut Reading) -> bool {
    let mut words = statement.split_whitespace();
    let first = words.next().unwrap_or_default().to_ascii_uppercase();
    match first.as_str() {
        "PREPARE" => {
            let Some(name) = words.next().map(name_of) else {
                return false;
            };
            let rest = statement
                .trim_start()
                .get(first.len()..)
                .and_then(|r| {
                    let r = r.trim_start();
                    let after_name = r.find(char::is_whitespace)?;
                    r.get(after_name..)
                })
                .unwrap_or_default()
                .trim_start();
            let Some(source) = rest
                .get(..4)
                .filter(|f| f.eq_ignore_ascii_case("from"))
                .and_then(|_| rest.get(4..))
                .map(str::trim)
            else {
                return false;
            };
            out.literal_dependent = true;
            let text = unquote(source);
            match &text {
                Some(text) => {
                    let inner = read(text, modes);
                    out.classes.extend(&inner.classes);
                    if inner
                        .uses
                        .iter()
                        .any(|u| matches!(u, PreparedUse::Execute(_)))
                    {
                        out.push(StatementClass::Unknown);
                    }
                }
                None => out.push(StatementClass::Unknown),
            }
            out.uses.push(PreparedUse::Prepare { name, text });
            true
        }
        "EXECUTE" => match words.next() {
            Some(name) => {
                out.uses.push(PreparedUse::Execute(name_of(name)));
                true
            }
            None => false,
        },
        "DEALLOCATE" | "DROP" => {
            if !words
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("prepare"))
            {
                return false;
            }
            match words.next() {
                Some(name) => {
                    out.push(StatementClass::Other);
                    out.uses.push(PreparedUse::Deallocate(Some(name_of(name))));
                    true
                }
                None => false,
            }
        }
        _ => false,
    }
}

fn name_of(word: &str) -> String {
    let word = word.trim_end_matches(';');
    let unquoted = word
        .strip_prefix('`')
        .and_then(|w| w.strip_suffix('`'))
        .map(|w| w.replace("``", "`"))
        .unwrap_or_else(|| word.to_owned());
    unquoted.to_ascii_lowercase()
}

/// A string literal as the lexer re-quoted it (`'...'` with `''` and `\\`), or `None` for
/// anything else (a user variable: what it holds is not in the text).
fn unquote(source: &str) -> Option<String> {
    let inner = source.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                if chars.next() != Some('\'') {
                    return None;
                }
                out.push('\'');
            }
            '\\' => {
                if chars.next() != Some('\\') {
                    return None;
                }
                out.push('\\');
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// Whether a WHERE picks no rows by their content: absent, or without any column or
/// subquery in it (`WHERE 1 = 1`, `WHERE true`, `WHERE ?`), or an OR with such a branch.
fn unfiltered(selection: Option<&Expr>) -> bool {
    use sqlparser::ast::BinaryOperator;
    let Some(expr) = selection else { return true };
    match expr {
        Expr::Nested(e) => unfiltered(Some(e)),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Or,
            right,
        } => unfiltered(Some(left)) || unfiltered(Some(right)),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => unfiltered(Some(left)) && unfiltered(Some(right)),
        other => !refers_to_rows(other),
    }
}

/// Whether an expression mentions a column or a subquery (through sqlparser's visitor, so no
/// expression kind is missed).
fn refers_to_rows(expr: &Expr) -> bool {
    use std::ops::ControlFlow;
    let found = sqlparser::ast::visit_expressions(expr, |e| match e {
        Expr::Identifier(_)
        | Expr::CompoundIdentifier(_)
        | Expr::Subquery(_)
        | Expr::Exists { .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    });
    found.is_break()
}

fn classify_statement(statement: &Statement, out: &mut Reading) {
    use StatementClass as C;
    match statement {
        Statement::Query(query) => classify_query(query, out),
        Statement::Insert(insert) => {
            out.push(C::Insert);
            // REPLACE deletes the rows it replaces; ON DUPLICATE KEY UPDATE updates them.
            if insert.replace_into {
                out.push(C::Delete);
            }
            if insert.on.is_some() {
                out.push(C::Update);
            }
        }
        Statement::Update(update) => out.push(if unfiltered(update.selection.as_ref()) {
            C::UpdateWithoutWhere
        } else {
            C::Update
        }),
        Statement::Delete(delete) => out.push(if unfiltered(delete.selection.as_ref()) {
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
fn classify_query(query: &sqlparser::ast::Query, out: &mut Reading) {
    if let Some(with) = &query.with {
        for cte in &with.cte_tables {
            classify_query(&cte.query, out);
        }
    }
    classify_set_expr(&query.body, out);
}

fn classify_set_expr(body: &SetExpr, out: &mut Reading) {
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
