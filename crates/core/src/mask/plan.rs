//! The per-result plan: from a result's column metadata, what to do with each column's values.

use std::sync::Arc;

use super::counts::MaskCounts;
use super::json;
use super::pgtype::{render_int, render_numeric, Kind};
use super::rewrite::{any_match, rewrite};
use super::Rules;

/// What a wire knows about one result column (PostgreSQL's RowDescription field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnMeta<'a> {
    /// The source table's name without schema, when the column comes straight from one
    /// (`None` for expressions, or when the wire cannot resolve the table OID).
    pub table: Option<&'a str>,
    /// The column's name. Give the source column's name (from the table OID and attribute
    /// number) rather than the alias the client chose, or `SELECT pan AS x` escapes column rules.
    pub name: &'a str,
    /// The PostgreSQL type OID, 0 if unknown.
    pub type_oid: u32,
    /// Whether values come in binary format.
    pub binary: bool,
}

/// What to send instead of a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Masked {
    /// Forward the value as it came.
    Unchanged,
    /// Send these bytes instead (same format as the value).
    Replaced(Vec<u8>),
    /// Send SQL NULL instead: the value had to be masked and no mask fits its type.
    Null,
}

/// What to do with each column of one result. Built by [`super::Masker::plan`]; cheap to keep
/// for the life of the result (it shares the masker's rules).
#[derive(Debug, Clone)]
pub struct MaskPlan {
    /// Empty when no column is touched (a no-op plan allocates nothing).
    columns: Vec<Column>,
    rules: Arc<Rules>,
}

#[derive(Debug, Clone)]
struct Column {
    /// Values shorter than this are left alone without looking at the action: `usize::MAX` to
    /// keep, the shortest detector match to scan bytes, 0 otherwise.
    skip_below: usize,
    action: Action,
    /// The counts label; set for touched columns only.
    label: Option<Arc<str>>,
}

impl Column {
    fn keep() -> Self {
        Self {
            skip_below: usize::MAX,
            action: Action::Keep,
            label: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Forward untouched.
    Keep,
    /// Always NULL (a column rule on a type no mask can be written into).
    Null,
    /// Masked whole by `rules.columns[rule]`.
    Whole { rule: usize, kind: Kind },
    /// Scanned by the detector rules.
    Scan(Kind),
}

impl MaskPlan {
    /// Plans a result with `columns` under `rules`.
    pub(crate) fn build(rules: &Arc<Rules>, columns: &[ColumnMeta<'_>]) -> Self {
        let mut planned: Vec<Column> = Vec::new();
        for (i, meta) in columns.iter().enumerate() {
            let action = decide(rules, meta);
            if action != Action::Keep && planned.is_empty() {
                planned.reserve_exact(columns.len());
                planned.extend((0..i).map(|_| Column::keep()));
            }
            if !planned.is_empty() || action != Action::Keep {
                planned.push(match action {
                    Action::Keep => Column::keep(),
                    Action::Scan(kind) if kind.raw() => Column {
                        skip_below: rules.min_scan_len,
                        action,
                        label: Some(label_of(meta)),
                    },
                    _ => Column {
                        skip_below: 0,
                        action,
                        label: Some(label_of(meta)),
                    },
                });
            }
        }
        Self {
            columns: planned,
            rules: Arc::clone(rules),
        }
    }

    /// Whether no column needs touching: the wire forwards rows byte for byte.
    #[inline]
    pub fn is_noop(&self) -> bool {
        self.columns.is_empty()
    }

    /// Whether values of column `column` (0-based) must go through [`apply`](Self::apply).
    #[inline]
    pub fn touches(&self, column: usize) -> bool {
        self.columns
            .get(column)
            .is_some_and(|c| c.action != Action::Keep)
    }

    /// Masks one value of column `column` (`None` is SQL NULL and stays NULL), counting it in
    /// `counts` under the column's label when it is masked. Allocates only to build a
    /// replacement.
    ///
    /// A column index beyond the planned result (a row longer than its description) is not
    /// trusted: unless the plan is a no-op its values become NULL.
    #[inline]
    pub fn apply(&self, column: usize, value: Option<&[u8]>, counts: &mut MaskCounts) -> Masked {
        let Some(value) = value else {
            return Masked::Unchanged;
        };
        let Some(col) = self.columns.get(column) else {
            return if self.is_noop() {
                Masked::Unchanged
            } else {
                Masked::Null
            };
        };
        // Kept columns, and values too short for any detector (ids, names, amounts).
        if value.len() < col.skip_below {
            return Masked::Unchanged;
        }
        let masked = match col.action {
            Action::Keep => return Masked::Unchanged,
            Action::Null => Masked::Null,
            Action::Whole { rule, kind } => self.whole(rule, kind, value),
            Action::Scan(kind) => self.scan(kind, value),
        };
        if !matches!(masked, Masked::Unchanged) {
            if let Some(label) = &col.label {
                counts.add_shared(label, 1);
            }
        }
        masked
    }

    fn whole(&self, rule: usize, kind: Kind, value: &[u8]) -> Masked {
        let Some(rule) = self.rules.columns.get(rule) else {
            return Masked::Null;
        };
        let hasher = &self.rules.hasher;
        let mut out = Vec::with_capacity(value.len().max(18) + 3);
        match kind {
            Kind::Text => rule.style.write_whole(hasher, value, &mut out),
            Kind::Json | Kind::Jsonb => {
                let text = match (kind, value.split_first()) {
                    (Kind::Json, _) => value,
                    (_, Some((1, text))) => {
                        out.push(1);
                        text
                    }
                    _ => return Masked::Null,
                };
                let mut styled = Vec::with_capacity(text.len().max(18));
                rule.style.write_whole(hasher, text, &mut styled);
                json::write_string(&styled, &mut out);
            }
            _ => return Masked::Null,
        }
        Masked::Replaced(out)
    }

    fn scan(&self, kind: Kind, value: &[u8]) -> Masked {
        let rules = &self.rules.detectors;
        let hasher = &self.rules.hasher;
        let null_if_match = |hay: &[u8]| {
            if any_match(rules, hay) {
                Masked::Null
            } else {
                Masked::Unchanged
            }
        };
        match kind {
            Kind::Text => {
                rewrite(rules, hasher, value, false).map_or(Masked::Unchanged, Masked::Replaced)
            }
            Kind::Json => {
                rewrite(rules, hasher, value, true).map_or(Masked::Unchanged, Masked::Replaced)
            }
            Kind::Jsonb => match value.split_first() {
                Some((1, text)) => match rewrite(rules, hasher, text, true) {
                    Some(masked) => {
                        let mut out = Vec::with_capacity(masked.len() + 1);
                        out.push(1);
                        out.extend_from_slice(&masked);
                        Masked::Replaced(out)
                    }
                    None => Masked::Unchanged,
                },
                // A jsonb version this code does not know: check it, never rewrite it.
                _ => null_if_match(value),
            },
            Kind::Typed | Kind::Opaque => null_if_match(value),
            Kind::Int(size) => match render_int(value, size) {
                Some(decimal) => null_if_match(decimal.as_bytes()),
                None => Masked::Null,
            },
            Kind::Numeric => match render_numeric(value) {
                Some(decimal) => null_if_match(decimal.as_bytes()),
                None => Masked::Null,
            },
            Kind::Inert => Masked::Unchanged,
        }
    }
}

/// The action for one column: the first column rule selecting it masks it whole; otherwise the
/// detector rules scan it, unless its kind cannot hold what they find.
fn decide(rules: &Rules, meta: &ColumnMeta<'_>) -> Action {
    let kind = Kind::of(meta.type_oid, meta.binary);
    let selected = rules
        .columns
        .iter()
        .position(|r| r.columns.iter().any(|s| s.matches(meta.table, meta.name)));
    match selected {
        Some(rule) if kind.writable() => Action::Whole { rule, kind },
        Some(_) => Action::Null,
        None if rules.detectors.is_empty() || kind == Kind::Inert => Action::Keep,
        None => Action::Scan(kind),
    }
}

/// `table.column`, or `column` when the table is not known.
fn label_of(meta: &ColumnMeta<'_>) -> Arc<str> {
    match meta.table {
        Some(table) => Arc::from(format!("{table}.{}", meta.name)),
        None => Arc::from(meta.name),
    }
}
