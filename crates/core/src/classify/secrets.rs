//! Passwords in statement text, found by the dialect's own lexer so they never reach the
//! audit trail, a recording or an approver's screen: `CREATE ROLE ... PASSWORD '...'`,
//! `ALTER USER ... IDENTIFIED BY '...'`, `SET PASSWORD = '...'`, an FDW's
//! `OPTIONS (password '...')`, a connection string's `password=...`.
//!
//! Only the stored text is redacted; the server receives the statement as sent, and rules
//! judge it as sent.

use std::ops::Range;

use crate::connection::Protocol;

use super::mentions;
use super::mysql::Modes;
use super::mysql_lexer::lex;

/// What replaces a password literal in stored text.
pub const REDACTED: &str = "'<redacted>'";

/// The text with every password literal replaced by [`REDACTED`], or `None` if it has none.
/// Cheap for texts that never mention a password (one scan of the bytes).
pub fn redact(protocol: Protocol, sql: &str, modes: Modes) -> Option<String> {
    if !mentions(sql, "password") && !mentions(sql, "identified") {
        return None;
    }
    let mut spans = match protocol {
        Protocol::Mysql => mysql(sql, modes),
        _ => postgres(sql),
    };
    if spans.is_empty() {
        return None;
    }
    spans.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for span in spans {
        if span.start < at {
            continue;
        }
        out.push_str(sql.get(at..span.start)?);
        out.push_str(REDACTED);
        at = span.end;
    }
    out.push_str(sql.get(at..)?);
    Some(out)
}

/// MySQL: what the lexer marked, under both readings of double quotes (which no server
/// message reveals), so a literal is redacted if either reading makes it a password.
fn mysql(sql: &str, modes: Modes) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    for ansi_quotes in [false, true] {
        if ansi_quotes && !sql.contains('"') {
            break;
        }
        if let Ok(lexed) = lex(
            sql,
            Modes {
                ansi_quotes,
                ..modes
            },
        ) {
            spans.extend(lexed.secrets);
        }
    }
    spans
}

/// PostgreSQL: string constants from the server's own lexer that follow the word `password`
/// (role options, FDW options; `(` and `=` between are skipped) or carry `password=`.
fn postgres(sql: &str) -> Vec<Range<usize>> {
    use pg_query::protobuf::Token;
    let Ok(scanned) = pg_query::scan(sql) else {
        return Vec::new();
    };
    let mut spans = Vec::new();
    let mut before: Option<&str> = None;
    for t in &scanned.tokens {
        let kind = Token::try_from(t.token);
        if matches!(kind, Ok(Token::SqlComment | Token::CComment)) {
            continue;
        }
        let (Ok(start), Ok(end)) = (usize::try_from(t.start), usize::try_from(t.end)) else {
            continue;
        };
        let Some(text) = sql.get(start..end) else {
            continue;
        };
        if matches!(kind, Ok(Token::Sconst | Token::Usconst)) {
            let carries = text.to_ascii_lowercase().contains("password=");
            if carries || before.is_some_and(|w| w.eq_ignore_ascii_case("password")) {
                spans.push(start..end);
            }
        }
        if text != "(" && text != "=" {
            before = Some(text);
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(sql: &str) -> Option<String> {
        redact(Protocol::Postgres, sql, Modes::default())
    }

    fn my(sql: &str) -> Option<String> {
        redact(Protocol::Mysql, sql, Modes::default())
    }

    #[test]
    fn postgres_passwords_are_redacted_wherever_the_lexer_finds_them() {
        assert_eq!(
            pg("ALTER ROLE app WITH ENCRYPTED PASSWORD 's3cret' VALID UNTIL '2027-01-01'")
                .as_deref(),
            Some("ALTER ROLE app WITH ENCRYPTED PASSWORD '<redacted>' VALID UNTIL '2027-01-01'")
        );
        assert_eq!(
            pg("create user u password /* c */ E'it''s'").as_deref(),
            Some("create user u password /* c */ '<redacted>'")
        );
        assert_eq!(
            pg("CREATE ROLE r LOGIN PASSWORD $$x$$").as_deref(),
            Some("CREATE ROLE r LOGIN PASSWORD '<redacted>'")
        );
        assert_eq!(
            pg("CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'a', password 'b')").as_deref(),
            Some("CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'a', password '<redacted>')")
        );
        assert_eq!(
            pg("SELECT dblink_connect('host=h user=u password=pw')").as_deref(),
            Some("SELECT dblink_connect('<redacted>')")
        );
        assert_eq!(pg("SELECT 'password'"), None);
        assert_eq!(pg("SELECT password FROM users WHERE id = 1"), None);
    }

    #[test]
    fn mysql_passwords_are_redacted_in_every_form() {
        for (sql, want) in [
            (
                "CREATE USER 'u'@'%' IDENTIFIED BY 'pw'",
                "CREATE USER 'u'@'%' IDENTIFIED BY '<redacted>'",
            ),
            (
                "ALTER USER u IDENTIFIED WITH caching_sha2_password BY \"pw\"",
                "ALTER USER u IDENTIFIED WITH caching_sha2_password BY '<redacted>'",
            ),
            (
                "alter user u identified via ed25519 using password('pw')",
                "alter user u identified via ed25519 using password('<redacted>')",
            ),
            (
                "SET PASSWORD FOR 'u'@'h' = 'pw'",
                "SET PASSWORD FOR 'u'@'h' = '<redacted>'",
            ),
            (
                "SET PASSWORD = PASSWORD('pw')",
                "SET PASSWORD = PASSWORD('<redacted>')",
            ),
            (
                "CHANGE MASTER TO MASTER_PASSWORD = 'pw', MASTER_USER = 'r'",
                "CHANGE MASTER TO MASTER_PASSWORD = '<redacted>', MASTER_USER = 'r'",
            ),
            (
                "GRANT ALL ON *.* TO u IDENTIFIED BY /* x */ 'p\\'w'",
                "GRANT ALL ON *.* TO u IDENTIFIED BY /* x */ '<redacted>'",
            ),
        ] {
            assert_eq!(my(sql).as_deref(), Some(want), "{sql}");
        }
        assert_eq!(my("SELECT 'IDENTIFIED BY' FROM t ORDER BY 'x'"), None);
    }
}
