//! The store's SQL names parameters `?1`, `?2` (SQLite's form); PostgreSQL's are `$1`, `$2`.

/// `sql` with every `?N` (and bare `?`) outside quotes written `$N`.
pub(super) fn to_dollars(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 1usize;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '?') => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                out.push('$');
                if digits.is_empty() {
                    out.push_str(&next.to_string());
                    next += 1;
                } else {
                    out.push_str(&digits);
                }
            }
            (None, c) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_dollars;

    #[test]
    fn numbered_and_bare_parameters_become_dollars_outside_quotes() {
        assert_eq!(
            to_dollars("SELECT a FROM t WHERE b = ?1 AND c = ?12 AND d = '?1' AND \"e?\" = ?"),
            "SELECT a FROM t WHERE b = $1 AND c = $12 AND d = '?1' AND \"e?\" = $1"
        );
        assert_eq!(to_dollars("VALUES (?, ?)"), "VALUES ($1, $2)");
        assert_eq!(to_dollars("SELECT 'it''s ?'"), "SELECT 'it''s ?'");
    }
}
