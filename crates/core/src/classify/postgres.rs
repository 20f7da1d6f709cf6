//! PostgreSQL text read by PostgreSQL's own parser (libpg_query, through `pg_query`).
//!
//! The gateway and the server must never disagree on where a string, a comment or a statement
//! ends: nested block comments, dollar quotes, `E''` escapes and the like are read by the very
//! lexer and grammar the server runs. The one lexing setting libpg_query cannot follow,
//! `standard_conforming_strings`, is pinned on (see [`PINNED`]), and so are client encodings
//! whose multi-byte characters can hold an ASCII backslash.

use pg_query::protobuf::{
    a_const, node::Node as N, BoolExprType, CmdType, DiscardMode, Node, OnConflictAction,
    SelectStmt, VariableSetKind, VariableSetStmt, WithClause,
};

use super::{PreparedUse, Reading, StatementClass as C};

/// Settings the gateway reads SQL under and the session may not change: with
/// `standard_conforming_strings` off, backslashes in plain strings escape quotes, and the
/// gateway's reading of a text would no longer be the server's.
pub const PINNED: &[&str] = &["standard_conforming_strings"];

/// The client encodings the gateway reads text in, as PostgreSQL normalises their names
/// (lowercase, letters and digits only): those where an ASCII byte is always that ASCII
/// character and that the gateway can decode exactly. An allow-list: PostgreSQL has aliases
/// (`mskanji`, `shiftjis2004`, `windows932`...) for the encodings whose characters can end in
/// a backslash, and a name missing from a deny-list would be read as safe.
pub const SAFE_ENCODINGS: &[&str] = &[
    "utf8",
    "unicode",
    "sqlascii",
    "latin1",
    "latin2",
    "latin3",
    "latin4",
    "latin5",
    "latin6",
    "latin7",
    "latin8",
    "latin9",
    "latin10",
    "iso88591",
    "iso88592",
    "iso88593",
    "iso88594",
    "iso88595",
    "iso88596",
    "iso88597",
    "iso88598",
    "iso88599",
    "iso885910",
    "iso885913",
    "iso885914",
    "iso885915",
    "iso885916",
    "koi8",
    "koi8r",
    "koi8u",
    "win",
    "alt",
    "abc",
    "tcvn",
    "tcvn5712",
    "vscii",
    "win866",
    "win874",
    "win1250",
    "win1251",
    "win1252",
    "win1253",
    "win1254",
    "win1255",
    "win1256",
    "win1257",
    "win1258",
    "windows866",
    "windows874",
    "windows1250",
    "windows1251",
    "windows1252",
    "windows1253",
    "windows1254",
    "windows1255",
    "windows1256",
    "windows1257",
    "windows1258",
    "euccn",
    "eucjp",
    "euckr",
];

/// A client encoding name as PostgreSQL compares it (`clean_encoding_name`): lowercase, only
/// letters and digits (`LATIN-9`, `latin_9` and `Latin9` are one name).
pub fn encoding_key(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Whether a client encoding name is one the gateway can read text in ([`SAFE_ENCODINGS`]).
pub fn encoding_is_safe(name: &str) -> bool {
    SAFE_ENCODINGS.contains(&encoding_key(name).as_str())
}

/// Reads a PostgreSQL text: the class of every statement, the prepared statements it makes,
/// runs or drops, and whether it tries to change how SQL is read.
pub(super) fn read(sql: &str) -> Reading {
    let parsed = match pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) {
        Ok(parsed) => parsed,
        Err(_) => return Reading::unknown(),
    };
    let mut r = Reading::default();
    for raw in &parsed.protobuf.stmts {
        let text = statement_text(sql, raw.stmt_location, raw.stmt_len);
        if let Some(node) = raw.stmt.as_deref().and_then(|n| n.node.as_ref()) {
            statement(node, text, &mut r);
        }
    }
    if parsed
        .functions
        .iter()
        .any(|(f, _)| f.rsplit('.').next() == Some("set_config"))
    {
        set_config_calls(&parsed, &mut r);
    }
    r
}

/// The source text of one statement (`stmt_len` 0 means "to the end").
fn statement_text(sql: &str, location: i32, len: i32) -> &str {
    let start = usize::try_from(location).unwrap_or(0);
    let rest = sql.get(start..).unwrap_or_default();
    match usize::try_from(len) {
        Ok(0) | Err(_) => rest,
        Ok(len) => rest.get(..len).unwrap_or(rest),
    }
    .trim()
}

fn inner(node: &Option<Box<Node>>) -> Option<&N> {
    node.as_deref().and_then(|n| n.node.as_ref())
}

fn statement(node: &N, text: &str, r: &mut Reading) {
    match node {
        N::SelectStmt(s) => select(s, r),
        N::InsertStmt(s) => {
            with(&s.with_clause, r);
            r.push(C::Insert);
            if let Some(N::SelectStmt(q)) = inner(&s.select_stmt) {
                with(&q.with_clause, r);
            }
            if s.on_conflict_clause
                .as_ref()
                .is_some_and(|c| c.action == OnConflictAction::OnconflictUpdate as i32)
            {
                r.push(C::Update);
            }
        }
        N::UpdateStmt(s) => {
            with(&s.with_clause, r);
            r.push(if unfiltered(&s.where_clause) {
                C::UpdateWithoutWhere
            } else {
                C::Update
            });
        }
        N::DeleteStmt(s) => {
            with(&s.with_clause, r);
            r.push(if unfiltered(&s.where_clause) {
                C::DeleteWithoutWhere
            } else {
                C::Delete
            });
        }
        N::MergeStmt(s) => {
            with(&s.with_clause, r);
            let join_unfiltered = unfiltered(&s.join_condition);
            for clause in &s.merge_when_clauses {
                let Some(N::MergeWhenClause(w)) = clause.node.as_ref() else {
                    continue;
                };
                let every_row = join_unfiltered && unfiltered(&w.condition);
                match CmdType::try_from(w.command_type) {
                    Ok(CmdType::CmdDelete) if every_row => r.push(C::DeleteWithoutWhere),
                    Ok(CmdType::CmdDelete) => r.push(C::Delete),
                    Ok(CmdType::CmdUpdate) if every_row => r.push(C::UpdateWithoutWhere),
                    Ok(CmdType::CmdUpdate) => r.push(C::Update),
                    Ok(CmdType::CmdInsert) => r.push(C::Insert),
                    Ok(CmdType::CmdNothing) => {}
                    _ => r.push(C::Unknown),
                }
            }
        }
        N::ExplainStmt(s) => {
            let mut analyze = false;
            for option in &s.options {
                let Some(N::DefElem(d)) = option.node.as_ref() else {
                    continue;
                };
                if d.defname.eq_ignore_ascii_case("analyze") {
                    analyze = match inner(&d.arg) {
                        None => true,
                        Some(arg) => {
                            // `ANALYZE 0` and `ANALYZE 1` differ by a literal: such a text is
                            // never shared through a folded cache key.
                            r.literal_dependent = true;
                            !is_false(arg)
                        }
                    };
                }
            }
            match inner(&s.query) {
                Some(query) if analyze => statement(query, text, r),
                _ => r.push(C::Select),
            }
        }
        N::CreateTableAsStmt(s) => {
            r.push(C::Ddl);
            if let Some(query) = inner(&s.query) {
                statement(query, text, r);
            }
        }
        N::ExecuteStmt(s) => r.uses.push(PreparedUse::Execute(s.name.clone())),
        N::PrepareStmt(s) => {
            // What EXECUTE runs is this whole statement's reading; the text keeps the
            // literals, so such a reading is keyed by its exact text.
            r.literal_dependent = true;
            r.uses.push(PreparedUse::Prepare {
                name: s.name.clone(),
                text: Some(text.to_owned()),
            });
            match inner(&s.query) {
                Some(query) => statement(query, text, r),
                None => r.push(C::Unknown),
            }
        }
        N::DeallocateStmt(s) => {
            r.push(C::Other);
            r.uses
                .push(PreparedUse::Deallocate((!s.isall).then(|| s.name.clone())));
        }
        N::DiscardStmt(s) => {
            r.push(C::Other);
            if s.target == DiscardMode::DiscardAll as i32 {
                r.uses.push(PreparedUse::Deallocate(None));
            }
        }
        N::DeclareCursorStmt(s) => match inner(&s.query) {
            Some(query) => statement(query, text, r),
            None => r.push(C::Select),
        },
        N::CopyStmt(s) => {
            r.push(C::Copy);
            if let Some(query) = inner(&s.query) {
                statement(query, text, r);
            }
        }
        N::TruncateStmt(_) => r.push(C::Truncate),
        N::TransactionStmt(_) => r.push(C::Transaction),
        N::GrantStmt(_)
        | N::GrantRoleStmt(_)
        | N::CreateRoleStmt(_)
        | N::AlterRoleStmt(_)
        | N::AlterDefaultPrivilegesStmt(_) => r.push(C::Dcl),
        N::AlterRoleSetStmt(s) => {
            r.push(C::Dcl);
            if let Some(set) = &s.setstmt {
                pinned_set(set, r);
            }
        }
        N::AlterDatabaseSetStmt(s) => {
            r.push(C::Ddl);
            if let Some(set) = &s.setstmt {
                pinned_set(set, r);
            }
        }
        N::AlterSystemStmt(s) => {
            r.push(C::Other);
            if let Some(set) = &s.setstmt {
                pinned_set(set, r);
            }
        }
        N::VariableSetStmt(s) => {
            r.push(C::Other);
            pinned_set(s, r);
        }
        N::VariableShowStmt(_) => r.push(C::Other),
        // A DO block runs procedural code the gateway does not read.
        N::DoStmt(_) => r.push(C::Unknown),
        _ => r.push(by_keyword(text)),
    }
}

fn with(clause: &Option<WithClause>, r: &mut Reading) {
    let Some(with) = clause else { return };
    for cte in &with.ctes {
        if let Some(N::CommonTableExpr(cte)) = cte.node.as_ref() {
            if let Some(query) = inner(&cte.ctequery) {
                statement(query, "", r);
            }
        }
    }
}

/// Queries read, unless a data-modifying CTE hides a write inside them, or `SELECT ... INTO`
/// creates a table.
fn select(s: &SelectStmt, r: &mut Reading) {
    with(&s.with_clause, r);
    if s.into_clause.is_some() {
        r.push(C::Ddl);
    }
    match (&s.larg, &s.rarg) {
        (Some(l), Some(rr)) => {
            select(l, r);
            select(rr, r);
        }
        _ => r.push(C::Select),
    }
}

/// Whether a WHERE (or MERGE join) picks no rows by their content: absent, or constant
/// (`WHERE true`, `WHERE 1 = 1`, `WHERE $1`), or an OR with such a branch.
fn unfiltered(clause: &Option<Box<Node>>) -> bool {
    match inner(clause) {
        None => true,
        Some(node) => unfiltered_node(node),
    }
}

fn unfiltered_node(node: &N) -> bool {
    if let N::BoolExpr(b) = node {
        let args = b.args.iter().filter_map(|a| a.node.as_ref());
        match BoolExprType::try_from(b.boolop) {
            Ok(BoolExprType::AndExpr) => return args.clone().all(unfiltered_node),
            Ok(BoolExprType::OrExpr) => return args.clone().any(unfiltered_node),
            _ => {}
        }
    }
    !refers_to_rows(node)
}

/// Whether an expression mentions a column or a subquery anywhere. The tree is searched in
/// its serialized form, so no expression kind can be missed (a literal's quotes are escaped
/// there, so its content cannot look like a node).
fn refers_to_rows(node: &N) -> bool {
    match serde_json::to_string(node) {
        Ok(json) => json.contains("{\"ColumnRef\":") || json.contains("{\"SubLink\":"),
        // Unreadable: assume it filters nothing, the stricter class.
        Err(_) => false,
    }
}

fn is_false(arg: &N) -> bool {
    match arg {
        N::String(s) => matches!(s.sval.to_ascii_lowercase().as_str(), "false" | "off"),
        N::Integer(i) => i.ival == 0,
        N::Boolean(b) => !b.boolval,
        N::AConst(c) => match &c.val {
            Some(a_const::Val::Ival(i)) => i.ival == 0,
            Some(a_const::Val::Boolval(b)) => !b.boolval,
            Some(a_const::Val::Sval(s)) => {
                matches!(s.sval.to_ascii_lowercase().as_str(), "false" | "off")
            }
            _ => false,
        },
        _ => false,
    }
}

/// `SET`, `RESET`, `ALTER ROLE/DATABASE/SYSTEM ... SET` of a setting that changes how SQL is
/// read is refused; `RESET ALL` and `SET client_encoding` only to values the gateway reads.
fn pinned_set(set: &VariableSetStmt, r: &mut Reading) {
    let name = set.name.to_ascii_lowercase();
    if set.kind == VariableSetKind::VarResetAll as i32 {
        return;
    }
    if PINNED.contains(&name.as_str()) {
        let to_on = set.kind == VariableSetKind::VarSetValue as i32
            && set.args.len() == 1
            && set
                .args
                .first()
                .and_then(|a| a.node.as_ref())
                .is_some_and(|a| {
                    matches!(a, N::AConst(c) if matches!(&c.val,
                    Some(a_const::Val::Sval(s)) if s.sval.eq_ignore_ascii_case("on")))
                });
        r.literal_dependent = true;
        if !to_on {
            r.refuse(format!(
                "{name} stays on through the gateway: it changes how SQL text is read, and the \
                 gateway must read every statement as the server does"
            ));
        }
        return;
    }
    if name == "client_encoding" || name == "names" {
        r.literal_dependent = true;
        if set.kind != VariableSetKind::VarSetValue as i32 {
            return;
        }
        let value = set
            .args
            .first()
            .and_then(|a| a.node.as_ref())
            .and_then(|a| match a {
                N::AConst(c) => match &c.val {
                    Some(a_const::Val::Sval(s)) => Some(s.sval.clone()),
                    _ => None,
                },
                N::String(s) => Some(s.sval.clone()),
                _ => None,
            });
        match value {
            Some(v) if encoding_is_safe(&v) => {}
            Some(v) => r.refuse(format!(
                "client encoding {v} is not supported through the gateway: the gateway \
                 reads SQL only in encodings where an ASCII byte is always that character and \
                 that it decodes exactly (UTF8, LATIN1-10, WIN125x, KOI8, EUC_JP/KR/CN); use UTF8"
            )),
            None => r.refuse("client_encoding can only be set to a literal value".into()),
        }
    }
}

/// `set_config(name, ...)` may set anything but the pinned settings, named by a literal.
fn set_config_calls(parsed: &pg_query::ParseResult, r: &mut Reading) {
    r.literal_dependent = true;
    for (node, ..) in parsed.protobuf.nodes() {
        let pg_query::NodeRef::FuncCall(call) = node else {
            continue;
        };
        let named_set_config = call
            .funcname
            .last()
            .and_then(|n| n.node.as_ref())
            .is_some_and(
                |n| matches!(n, N::String(s) if s.sval.eq_ignore_ascii_case("set_config")),
            );
        if !named_set_config {
            continue;
        }
        let setting = call
            .args
            .first()
            .and_then(|a| a.node.as_ref())
            .and_then(|a| match a {
                N::AConst(c) => match &c.val {
                    Some(a_const::Val::Sval(s)) => Some(s.sval.to_ascii_lowercase()),
                    _ => None,
                },
                _ => None,
            });
        match setting {
            Some(s) if PINNED.contains(&s.as_str()) || s == "client_encoding" => r.refuse(format!(
                "set_config('{s}', ...) is refused through the gateway: it changes how SQL text \
                 is read"
            )),
            Some(_) => {}
            None => r.refuse(
                "set_config() must name its setting with a literal through the gateway (a \
                 computed name could change how SQL text is read)"
                    .into(),
            ),
        }
    }
}

/// The long tail of statement kinds (dozens of CREATE/ALTER/DROP variants) by their first
/// keyword, after any leading comments.
fn by_keyword(text: &str) -> C {
    let word = first_word(text).to_ascii_uppercase();
    match word.as_str() {
        "DROP" => C::Drop,
        "CREATE" | "ALTER" | "COMMENT" | "SECURITY" | "REINDEX" | "CLUSTER" | "IMPORT" => C::Ddl,
        "REFRESH" => C::Ddl,
        _ => C::Other,
    }
}

/// The first word of a statement, skipping whitespace, `--` comments and nested `/* */`
/// comments (nothing else can come before a statement's first keyword).
fn first_word(text: &str) -> &str {
    let b = text.as_bytes();
    let mut i = 0;
    loop {
        while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
            i += 1;
        }
        match (b.get(i), b.get(i + 1)) {
            (Some(b'-'), Some(b'-')) => {
                while b.get(i).is_some_and(|c| *c != b'\n') {
                    i += 1;
                }
            }
            (Some(b'/'), Some(b'*')) => {
                let mut depth = 0usize;
                while i < b.len() {
                    match (b.get(i), b.get(i + 1)) {
                        (Some(b'/'), Some(b'*')) => {
                            depth += 1;
                            i += 2;
                        }
                        (Some(b'*'), Some(b'/')) => {
                            depth -= 1;
                            i += 2;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => i += 1,
                    }
                }
            }
            _ => break,
        }
    }
    let rest = text.get(i..).unwrap_or_default();
    let end = rest
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    rest.get(..end).unwrap_or_default()
}

/// The cache key of a text for its reading: the text with every constant the server's own
/// lexer finds (numbers and plain strings) replaced by a marker, so `... WHERE aid = 17` and
/// `... WHERE aid = 42` share a key. Nothing else is folded, so no two texts the server reads
/// differently share one; readings that looked at a constant's value are never stored under
/// a folded key (see `Reading::literal_dependent`).
pub(super) fn folded_key(sql: &str) -> Option<String> {
    if let Some(key) = simple_folded_key(sql) {
        return Some(key);
    }
    scanned_folded_key(sql)
}

/// The folded key of a text made only of characters whose lexing is unambiguous without the
/// server's lexer — ASCII letters, digits, `_`, whitespace and `,()=<>*+-;.` — with no `--`:
/// no string, quoted identifier, comment, parameter, cast or escape can occur in it. There a
/// run of digits between delimiters is exactly the lexer's integer constant, so this gives the
/// key [`scanned_folded_key`] gives, at a fraction of its cost (it runs for every statement).
/// Any other text is `None` (scanned instead); a digit run the rule does not cover is kept.
fn simple_folded_key(sql: &str) -> Option<String> {
    const BEFORE: &[u8] = b" \t\n\r(,=<>+-*;";
    const AFTER: &[u8] = b" \t\n\r),=<>+-*;";
    let b = sql.as_bytes();
    let simple =
        |c: u8| c.is_ascii_alphanumeric() || c == b'_' || b" \t\n\r,()=<>*+-;.".contains(&c);
    if !b.iter().all(|c| simple(*c)) || b.windows(2).any(|w| w == b"--") {
        return None;
    }
    let mut key = String::with_capacity(sql.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c.is_ascii_alphabetic() || c == b'_' {
            // An identifier or keyword, digits and all.
            let start = i;
            while b
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
            {
                i += 1;
            }
            key.push_str(sql.get(start..i)?);
        } else if c.is_ascii_digit() {
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            let delimited = (start == 0 || b.get(start - 1).is_some_and(|p| BEFORE.contains(p)))
                && b.get(i).is_none_or(|n| AFTER.contains(n));
            if delimited {
                key.push('\u{1}');
            } else {
                key.push_str(sql.get(start..i)?);
            }
        } else {
            key.push(char::from(c));
            i += 1;
        }
    }
    Some(key)
}

/// The folded key by the server's own lexer (`pg_query::scan`).
fn scanned_folded_key(sql: &str) -> Option<String> {
    use pg_query::protobuf::Token;
    let tokens = pg_query::scan(sql).ok()?;
    let mut key = String::with_capacity(sql.len());
    let mut at = 0usize;
    for t in &tokens.tokens {
        let constant = matches!(
            Token::try_from(t.token),
            Ok(Token::Iconst | Token::Fconst | Token::Sconst)
        );
        if !constant {
            continue;
        }
        let (Ok(start), Ok(end)) = (usize::try_from(t.start), usize::try_from(t.end)) else {
            return None;
        };
        key.push_str(sql.get(at..start)?);
        key.push('\u{1}');
        at = end;
    }
    key.push_str(sql.get(at..)?);
    Some(key)
}

/// Text the parser cannot read, for pattern rules: the server's own tokens without comments,
/// one space apart (the text as it is if even the lexer fails).
pub(super) fn without_comments(sql: &str) -> String {
    use pg_query::protobuf::Token;
    let Ok(tokens) = pg_query::scan(sql) else {
        return sql.to_owned();
    };
    let mut out = String::with_capacity(sql.len());
    for t in &tokens.tokens {
        if matches!(
            Token::try_from(t.token),
            Ok(Token::SqlComment | Token::CComment)
        ) {
            continue;
        }
        let (Ok(start), Ok(end)) = (usize::try_from(t.start), usize::try_from(t.end)) else {
            continue;
        };
        if let Some(token) = sql.get(start..end) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(token);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{scanned_folded_key, simple_folded_key};

    #[test]
    fn the_quick_key_is_the_lexers_key_where_it_applies() {
        for sql in [
            "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;",
            "UPDATE t SET a = a + -2714, b=3 WHERE id IN (1,2, 3) AND x<>4",
            "SELECT t1.c2 FROM t1 LIMIT 10 OFFSET 20",
            "EXPLAIN (ANALYZE 0) DELETE FROM t",
            "SELECT 1",
            "select\n\t2*3",
        ] {
            assert_eq!(simple_folded_key(sql), scanned_folded_key(sql), "{sql}");
        }
        // Digit runs the rule does not cover are kept (a key that shares less, never more).
        for (sql, kept) in [
            ("SELECT 1e5 FROM t", "1e5"),
            ("SELECT 1.5", "1.5"),
            ("SELECT a FROM t WHERE b OR.1=1", ".1"),
            ("SELECT 12abc", "12abc"),
            ("SELECT 0x1F", "0x1F"),
        ] {
            let key = simple_folded_key(sql).unwrap_or_default();
            assert!(key.contains(kept), "{sql}: {key:?}");
        }
        // Anything a quote, comment, parameter, cast or escape could change is scanned.
        for sql in [
            "SELECT 'a' FROM t",
            "SELECT \"a 1\" FROM t",
            "SELECT 1 -- 2",
            "SELECT /* 1 */ 2",
            "SELECT $1",
            "SELECT 1::int",
            "SELECT E'\\\\'",
            "SELECT 1 ; DELETE FROM t WHERE a = 'é'",
        ] {
            assert_eq!(simple_folded_key(sql), None, "{sql}");
        }
    }
}
