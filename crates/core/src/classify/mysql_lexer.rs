//! MySQL and MariaDB text lexed by the server's own rules, before any parser sees it.
//!
//! sqlparser's MySQL tokenizer and the server disagree on executable comments (`/*! */`,
//! MariaDB's `/*M! */`), `#` and `-- ` comments, backslashes under `NO_BACKSLASH_ESCAPES` and
//! double quotes under `ANSI_QUOTES`. So the gateway lexes the text itself, as the server
//! would under the session's modes, and hands sqlparser a rewritten text with no such
//! construct left: comments dropped (an executable comment the server runs is kept as code),
//! every string re-quoted one plain way, every quoted identifier in backquotes. Anything the
//! lexer is not certain of (an unterminated quote or comment, a comment inside a comment)
//! makes the whole text unreadable, class `unknown`.

/// How the server lexes a session's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modes {
    /// `sql_mode` has `NO_BACKSLASH_ESCAPES` (the server says so in every OK packet's status).
    pub no_backslash_escapes: bool,
    /// `sql_mode` has `ANSI_QUOTES`: double quotes delimit identifiers, not strings.
    pub ansi_quotes: bool,
    /// The server's version as `MMmmpp` (`101106` for 10.11.6): `/*!NNNNN ... */` runs only
    /// on servers at least that new.
    pub version: u32,
    /// The server is MariaDB, which also runs `/*M! ... */`.
    pub mariadb: bool,
    /// A command the gateway could not read ran (`EXECUTE` of a statement prepared from a
    /// variable, `EXECUTE IMMEDIATE` of an expression): it may have switched the client
    /// character set to one whose characters can end in a backslash or a backtick, which no
    /// packet reveals. From then on a text that would read differently under such a set is
    /// refused ([`may_read_differently`](super::mysql::may_read_differently)).
    pub charset_unsure: bool,
}

impl Default for Modes {
    fn default() -> Self {
        Self {
            no_backslash_escapes: false,
            ansi_quotes: false,
            version: 100_000,
            mariadb: true,
            charset_unsure: false,
        }
    }
}

/// A text as the server lexes it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Lexed {
    /// The statements, each rewritten for sqlparser (no comments, plain quotes).
    pub statements: Vec<String>,
    /// The same with every number and string replaced by a marker: the cache key.
    pub folded: String,
    /// Where, in the text as sent, the string literals that hold a password are (quotes
    /// included): `IDENTIFIED BY '...'`, `PASSWORD('...')`, `MASTER_PASSWORD = '...'`,
    /// `SET PASSWORD ... = '...'`, and any string that carries `password=`.
    pub secrets: Vec<std::ops::Range<usize>>,
}

/// The words and signs of the statement being lexed, for telling a password literal apart.
#[derive(Default)]
struct Words {
    /// Upper-cased words and the signs `=` `(` `'` (a string), in order.
    seen: Vec<String>,
    /// The word being read.
    word: String,
}

impl Words {
    fn flush(&mut self) {
        if !self.word.is_empty() {
            self.seen
                .push(std::mem::take(&mut self.word).to_ascii_uppercase());
        }
    }

    fn sign(&mut self, sign: &str) {
        self.flush();
        self.seen.push(sign.to_owned());
    }

    /// Whether a string literal starting now holds a password.
    fn secret_follows(&mut self) -> bool {
        self.flush();
        let has = |w: &str| self.seen.iter().any(|s| s == w);
        let before = self
            .seen
            .iter()
            .rev()
            .find(|w| *w != "=" && *w != "(")
            .map(String::as_str)
            .unwrap_or("");
        before.ends_with("PASSWORD")
            || (matches!(before, "BY" | "USING" | "AS") && has("IDENTIFIED"))
            || (self.seen.first().is_some_and(|w| w == "SET")
                && self.seen.get(1).is_some_and(|w| w == "PASSWORD")
                && has("="))
    }
}

/// Why a text could not be lexed with certainty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uncertain;

fn ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Lexes `sql` under `modes`.
pub fn lex(sql: &str, modes: Modes) -> Result<Lexed, Uncertain> {
    let b = sql.as_bytes();
    let mut out = Lexed::default();
    let mut stmt = String::new();
    let mut i = 0usize;
    // Inside an executable comment the server runs: its `*/` closes it.
    let mut in_exec = false;
    let mut words = Words::default();
    while let Some(&c) = b.get(i) {
        if !ident_byte(c) {
            words.flush();
        }
        match c {
            b'\'' | b'"' if c == b'\'' || !modes.ansi_quotes => {
                let (content, end) = string(b, i, c, !modes.no_backslash_escapes)?;
                if words.secret_follows() || content.to_ascii_lowercase().contains("password=") {
                    out.secrets.push(i..end);
                }
                words.sign("'");
                stmt.push('\'');
                stmt.push_str(&content.replace('\\', "\\\\").replace('\'', "''"));
                stmt.push('\'');
                out.folded.push('\u{1}');
                i = end;
            }
            b'`' | b'"' => {
                let (content, end) = string(b, i, c, false)?;
                stmt.push('`');
                stmt.push_str(&content.replace('`', "``"));
                stmt.push('`');
                out.folded.push_str(sql.get(i..end).ok_or(Uncertain)?);
                i = end;
            }
            b'#' => i = line_end(b, i),
            b'-' if b.get(i + 1) == Some(&b'-')
                && b.get(i + 2)
                    .is_none_or(|n| n.is_ascii_whitespace() || n.is_ascii_control()) =>
            {
                i = line_end(b, i)
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                if in_exec {
                    return Err(Uncertain);
                }
                let (runs, body) = executable(b, i + 2, modes);
                if runs {
                    in_exec = true;
                    stmt.push(' ');
                    out.folded.push(' ');
                    i = body;
                } else {
                    i = comment_end(b, i + 2)?;
                    stmt.push(' ');
                    out.folded.push(' ');
                }
            }
            b'*' if in_exec && b.get(i + 1) == Some(&b'/') => {
                in_exec = false;
                stmt.push(' ');
                out.folded.push(' ');
                i += 2;
            }
            b';' => {
                words = Words::default();
                out.folded.push(';');
                let done = std::mem::take(&mut stmt);
                if !done.trim().is_empty() {
                    out.statements.push(done);
                }
                i += 1;
            }
            b'0'..=b'9'
                if i == 0
                    || b.get(i - 1)
                        .is_some_and(|p| !ident_byte(*p) && *p != b'.' && *p != b'@') =>
            {
                let mut end = i;
                while b.get(end).is_some_and(u8::is_ascii_digit) {
                    end += 1;
                }
                let text = sql.get(i..end).ok_or(Uncertain)?;
                stmt.push_str(text);
                if b.get(end).is_some_and(|n| ident_byte(*n) || *n == b'.') {
                    // `1abc` is an identifier, `1.5` and `1e5` are not plain runs: kept.
                    out.folded.push_str(text);
                } else {
                    out.folded.push('\u{1}');
                }
                i = end;
            }
            _ => {
                // Copy one whole character (the text is UTF-8).
                let len = sql
                    .get(i..)
                    .and_then(|r| r.chars().next())
                    .map_or(1, char::len_utf8);
                let text = sql.get(i..i + len).ok_or(Uncertain)?;
                stmt.push_str(text);
                out.folded.push_str(text);
                if ident_byte(c) {
                    words.word.push_str(text);
                } else if !c.is_ascii_whitespace() {
                    words.sign(text);
                }
                i += len;
            }
        }
    }
    if in_exec {
        return Err(Uncertain);
    }
    if !stmt.trim().is_empty() {
        out.statements.push(stmt);
    }
    Ok(out)
}

/// A quoted string or identifier from its opening quote: its content (escapes resolved) and
/// the index after its closing quote. A doubled quote is one quote; a backslash escapes the
/// next character where `backslash` says so.
fn string(
    b: &[u8],
    start: usize,
    quote: u8,
    backslash: bool,
) -> Result<(String, usize), Uncertain> {
    let mut content = Vec::new();
    let mut i = start + 1;
    loop {
        let &c = b.get(i).ok_or(Uncertain)?;
        if c == quote {
            if b.get(i + 1) == Some(&quote) {
                content.push(quote);
                i += 2;
                continue;
            }
            let content = String::from_utf8(content).map_err(|_| Uncertain)?;
            return Ok((content, i + 1));
        }
        if backslash && c == b'\\' {
            let &n = b.get(i + 1).ok_or(Uncertain)?;
            match n {
                b'0' => content.push(0),
                b'n' => content.push(b'\n'),
                b'r' => content.push(b'\r'),
                b't' => content.push(b'\t'),
                b'b' => content.push(8),
                b'Z' => content.push(26),
                // LIKE wildcards keep their backslash.
                b'%' | b'_' => content.extend_from_slice(&[b'\\', n]),
                other => content.push(other),
            }
            i += 2;
            continue;
        }
        content.push(c);
        i += 1;
    }
}

fn line_end(b: &[u8], from: usize) -> usize {
    let mut i = from;
    while b.get(i).is_some_and(|c| *c != b'\n') {
        i += 1;
    }
    i
}

/// The end of a plain `/* */` comment whose body starts at `from`. A comment inside it is
/// read differently by different server versions, so it is not read at all.
fn comment_end(b: &[u8], from: usize) -> Result<usize, Uncertain> {
    let mut i = from;
    loop {
        match (b.get(i), b.get(i + 1)) {
            (None, _) => return Err(Uncertain),
            (Some(b'*'), Some(b'/')) => return Ok(i + 2),
            (Some(b'/'), Some(b'*')) => return Err(Uncertain),
            _ => i += 1,
        }
    }
}

/// Whether the comment whose body starts at `from` is one the server runs (`/*!`, with a
/// version it has reached; MariaDB's `/*M!`), and where its code starts.
fn executable(b: &[u8], from: usize, modes: Modes) -> (bool, usize) {
    let (mariadb_only, bang) = match (b.get(from), b.get(from + 1)) {
        (Some(b'!'), _) => (false, from + 1),
        (Some(b'M'), Some(b'!')) => (true, from + 2),
        _ => return (false, from),
    };
    if mariadb_only && !modes.mariadb {
        return (false, from);
    }
    let digits = b
        .get(bang..)
        .unwrap_or_default()
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    // MySQL reads five digits of version, MariaDB five or six.
    let take = match digits {
        0 => 0,
        d if d >= 6 && modes.mariadb => 6,
        d if d >= 5 => 5,
        _ => 0,
    };
    let version = b
        .get(bang..bang + take)
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| d.parse::<u32>().ok());
    match version {
        Some(v) if v > modes.version => (false, from),
        _ => (true, bang + take),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmts(sql: &str, modes: Modes) -> Vec<String> {
        lex(sql, modes)
            .map(|l| l.statements.iter().map(|s| s.trim().to_owned()).collect())
            .unwrap_or_else(|_| vec!["<uncertain>".into()])
    }

    #[test]
    fn backslashes_follow_the_session_mode() {
        let sql = r"SELECT 'a\'; DELETE FROM t; -- '";
        let on = Modes::default();
        assert_eq!(stmts(sql, on), vec![r"SELECT 'a''; DELETE FROM t; -- '"]);
        let off = Modes {
            no_backslash_escapes: true,
            ..on
        };
        assert_eq!(stmts(sql, off), vec![r"SELECT 'a\\'", "DELETE FROM t"]);
    }

    #[test]
    fn executable_comments_run_as_the_server_runs_them() {
        let m = Modes {
            version: 101106,
            ..Modes::default()
        };
        assert_eq!(stmts("/*! DELETE FROM t */", m), vec!["DELETE FROM t"]);
        assert_eq!(
            stmts("/*M!100000 DELETE FROM t */", m),
            vec!["DELETE FROM t"]
        );
        assert_eq!(
            stmts("/*!999999 ' */ DELETE FROM t; -- ' */", m),
            vec!["DELETE FROM t"]
        );
        assert_eq!(stmts("SELECT 1 /*!40101 , 2 */", m), vec!["SELECT 1   , 2"]);
        let mysql = Modes {
            mariadb: false,
            version: 80036,
            ..m
        };
        assert_eq!(
            stmts("SELECT 1 /*M! ; DELETE FROM t */", mysql),
            vec!["SELECT 1"]
        );
    }

    #[test]
    fn comments_and_quotes() {
        let m = Modes::default();
        assert_eq!(stmts("SELECT 1 # ; DELETE\n", m), vec!["SELECT 1"]);
        assert_eq!(
            stmts("SELECT 1 --; DELETE FROM t", m),
            vec!["SELECT 1 --", "DELETE FROM t"]
        );
        assert_eq!(stmts("SELECT \"a;b\"", m), vec!["SELECT 'a;b'"]);
        let ansi = Modes {
            ansi_quotes: true,
            ..m
        };
        assert_eq!(
            stmts("SELECT \"a\\\"; DELETE FROM t", ansi),
            vec!["SELECT `a\\`", "DELETE FROM t"]
        );
        assert_eq!(stmts("SELECT /* /* */ 1", m), vec!["<uncertain>"]);
        assert_eq!(stmts("SELECT 'open", m), vec!["<uncertain>"]);
    }

    #[test]
    fn folding_keeps_identifiers_that_start_with_digits() {
        let a = lex(
            "SELECT * FROM t1 WHERE id = 17 AND n = 'x'",
            Modes::default(),
        )
        .ok();
        let b = lex(
            "SELECT * FROM t1 WHERE id = 42 AND n = 'yy'",
            Modes::default(),
        )
        .ok();
        assert_eq!(a.map(|l| l.folded), b.map(|l| l.folded));
        let c = lex("SELECT 1abc", Modes::default()).ok().map(|l| l.folded);
        assert_eq!(c.as_deref(), Some("SELECT 1abc"));
    }
}
