//! Column selectors: `table.column` or a bare `column`, with `*` and `?` globs.
//!
//! Matching ignores ASCII case (PostgreSQL folds unquoted identifiers). A selector with a table
//! part needs the result's table: a column whose table is unknown (an expression, a function's
//! result) matches only when the table part is `*`, so `*.card_number` still catches
//! `card_number` of an unknown table but `customers.*` does not catch every expression.

/// One compiled selector.
#[derive(Debug, Clone)]
pub(crate) struct Selector {
    table: Option<Glob>,
    column: Glob,
}

/// A glob over identifiers: `*` any run, `?` one byte, everything else literal (ASCII case
/// folded).
#[derive(Debug, Clone)]
struct Glob {
    pattern: Box<[u8]>,
    any: bool,
}

impl Selector {
    /// Parses `table.column` or `column`. The error says what to write instead.
    pub(crate) fn parse(text: &str) -> Result<Self, &'static str> {
        let text = text.trim();
        let mut parts = text.split('.');
        let (table, column) =
            match (parts.next(), parts.next(), parts.next()) {
                (Some(column), None, _) => (None, column),
                (Some(table), Some(column), None) => (Some(table), column),
                _ => return Err(
                    "has more than one dot; write table.column or column (schemas are not matched)",
                ),
            };
        if column.is_empty() || table.is_some_and(str::is_empty) {
            return Err("has an empty part; write table.column or column, e.g. *.card_number");
        }
        Ok(Self {
            table: table.map(Glob::new),
            column: Glob::new(column),
        })
    }

    /// Whether the column `name` of `table` (`None`: unknown) is selected.
    pub(crate) fn matches(&self, table: Option<&str>, name: &str) -> bool {
        let table_ok = match (&self.table, table) {
            (None, _) => true,
            (Some(glob), _) if glob.any => true,
            (Some(glob), Some(table)) => glob.matches(table.as_bytes()),
            (Some(_), None) => false,
        };
        table_ok && self.column.matches(name.as_bytes())
    }
}

impl Glob {
    fn new(text: &str) -> Self {
        let pattern: Box<[u8]> = text.bytes().map(|b| b.to_ascii_lowercase()).collect();
        let any = !pattern.is_empty() && pattern.iter().all(|&b| b == b'*');
        Self { pattern, any }
    }

    /// Iterative wildcard match with one backtrack point: linear in practice, no allocation.
    fn matches(&self, text: &[u8]) -> bool {
        let pattern = &self.pattern;
        let (mut p, mut t) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            let tc = text.get(t).map(u8::to_ascii_lowercase);
            match pattern.get(p) {
                Some(b'*') => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                Some(&pc) if pc == b'?' || Some(pc) == tc => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
            match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            }
        }
        pattern
            .get(p..)
            .is_some_and(|rest| rest.iter().all(|&b| b == b'*'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(s: &str) -> Selector {
        Selector::parse(s).unwrap()
    }

    #[test]
    fn globs_on_table_and_column() {
        let any_table = sel("*.card_number");
        assert!(any_table.matches(Some("cards"), "card_number"));
        assert!(any_table.matches(None, "card_number"));
        assert!(any_table.matches(Some("x"), "CARD_NUMBER"));
        assert!(!any_table.matches(Some("cards"), "card_numbers"));

        let whole_table = sel("customers.*");
        assert!(whole_table.matches(Some("customers"), "name"));
        assert!(whole_table.matches(Some("Customers"), "email"));
        assert!(!whole_table.matches(Some("customers_old"), "name"));
        assert!(!whole_table.matches(None, "name"));

        let prefix = sel("card_*");
        assert!(prefix.matches(Some("t"), "card_number"));
        assert!(prefix.matches(None, "card_"));
        assert!(!prefix.matches(None, "cardholder"));

        let bare = sel("email");
        assert!(bare.matches(Some("users"), "email"));
        assert!(bare.matches(None, "email"));
        assert!(!bare.matches(None, "email2"));

        let one = sel("t?.pan");
        assert!(one.matches(Some("t1"), "pan"));
        assert!(!one.matches(Some("t12"), "pan"));

        let middle = sel("*.*_pan_*");
        assert!(middle.matches(Some("a"), "x_pan_y"));
        assert!(middle.matches(Some("a"), "a_b_pan_pan_c"));
        assert!(!middle.matches(Some("a"), "x_pan"));
    }

    #[test]
    fn malformed_selectors_are_refused() {
        assert!(Selector::parse("a.b.c")
            .unwrap_err()
            .contains("more than one dot"));
        assert!(Selector::parse("").unwrap_err().contains("empty part"));
        assert!(Selector::parse("cards.")
            .unwrap_err()
            .contains("empty part"));
        assert!(Selector::parse(".pan").unwrap_err().contains("empty part"));
    }
}
