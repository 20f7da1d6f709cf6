//! The classifier on arbitrary SQL, with two differential checks against the server's own
//! parser (libpg_query):
//!
//! - reading PostgreSQL's own rendering of a text (its deparse, where the server accepts
//!   that rendering) gives the same classes;
//! - the per-session cache is sound: a text whose reading did not look at a constant reads
//!   the same after its constants are replaced (`1` → `2`, `'a'` → `'b'`), which is exactly
//!   what sharing a folded key assumes.
//!
//! MySQL text goes through the lexer under every mode and the reader; password redaction and
//! the folded key run on both dialects.
#![no_main]

use gatehouse_core::classify::mysql::{self, Modes};
use gatehouse_core::classify::{canonical, folded_key, read, secrets};
use gatehouse_core::Protocol;
use libfuzzer_sys::fuzz_target;

/// The text with each constant the server's lexer finds replaced by another of its kind.
fn other_constants(sql: &str) -> Option<String> {
    use pg_query::protobuf::Token;
    let scanned = pg_query::scan(sql).ok()?;
    let mut out = String::with_capacity(sql.len());
    let mut at = 0usize;
    for t in &scanned.tokens {
        let replacement = match Token::try_from(t.token) {
            Ok(Token::Iconst) => "2",
            Ok(Token::Fconst) => "2.5",
            Ok(Token::Sconst) => "'b'",
            _ => continue,
        };
        let (start, end) = (usize::try_from(t.start).ok()?, usize::try_from(t.end).ok()?);
        out.push_str(sql.get(at..start)?);
        out.push_str(replacement);
        at = end;
    }
    out.push_str(sql.get(at..)?);
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let pg = read(Protocol::Postgres, sql);
    let _ = canonical(Protocol::Postgres, sql);
    let _ = folded_key(Protocol::Postgres, sql);
    let _ = secrets::redact(Protocol::Postgres, sql, Modes::default());
    if let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) {
        // Only a rendering the server itself accepts is compared: libpg_query's deparser writes
        // some odd inputs (`$0`, a cast of a column list) as text it cannot parse back, which
        // says nothing about the gateway (both inputs are seeds in fixtures/fuzz/classify).
        let rendered = parsed
            .deparse(pg_query::DeparseOptions::default())
            .ok()
            .filter(|r| pg_query::parse(r, pg_query::ParserOptions::DEFAULT).is_ok());
        if let Some(rendered) = rendered {
            let again = read(Protocol::Postgres, &rendered);
            assert_eq!(
                pg.classes, again.classes,
                "{sql:?} and the server's rendering {rendered:?} read differently"
            );
        }
    }
    if !pg.literal_dependent {
        // Only a replacement that keeps the folded key is what the cache would share (`OR.1`
        // becoming `OR2.5` is another token stream, with another key).
        let other = other_constants(sql).filter(|o| {
            folded_key(Protocol::Postgres, o) == folded_key(Protocol::Postgres, sql)
        });
        if let Some(other) = other {
            let again = read(Protocol::Postgres, &other);
            assert_eq!(
                (&pg.classes, pg.refusal.is_some(), &pg.uses),
                (&again.classes, again.refusal.is_some(), &again.uses),
                "{sql:?} and {other:?} share a cache key but read differently"
            );
        }
    }
    for (no_backslash_escapes, ansi_quotes) in [(false, false), (true, false), (false, true)] {
        let modes = Modes {
            no_backslash_escapes,
            ansi_quotes,
            ..Modes::default()
        };
        let _ = mysql::read(sql, modes);
        let _ = mysql::folded_key(sql, modes);
        let _ = secrets::redact(Protocol::Mysql, sql, modes);
    }
});
