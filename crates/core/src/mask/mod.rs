//! Data masking: what an identity may not see in results, statements and server messages.
//!
//! A pure library: wires hand it metadata and values, it says what to send instead. Nothing
//! here decodes a protocol.
//!
//! # Flow
//!
//! 1. The binary parses each `[[mask]]` into a [`MaskSpec`]; [`MaskPolicy::new`] validates them
//!    (a bad spec is a [`MaskError`] naming the mask and what to fix) with the gateway's secret
//!    hash key.
//! 2. At session open, [`MaskPolicy::for_groups`] gives the session's [`Masker`]: the rules its
//!    identity is not exempt from. [`Masker::is_empty`] means the wire can skip all of this.
//! 3. Free text (statement text, bind parameters, server notices and errors) goes through
//!    [`Masker::mask_text`].
//! 4. For each result, [`Masker::plan`] turns the column metadata into a [`MaskPlan`]; when it
//!    [is a no-op](MaskPlan::is_noop) rows are forwarded byte for byte, otherwise the wire decodes
//!    the rows and passes the [touched](MaskPlan::touches) columns' values to
//!    [`MaskPlan::apply`], which answers [`Masked::Unchanged`], [`Masked::Replaced`] or
//!    [`Masked::Null`].
//! 5. What was masked is tallied in [`MaskCounts`] (per column or free-text label) for the audit
//!    entry.
//!
//! # Rules
//!
//! A rule has `columns`, a detector (`detect = "pan" | "email"` or `regex`), or both:
//!
//! - **`columns`** declares columns sensitive: every value of a selected column is masked
//!   *whole* with the rule's style, whatever it holds (fail closed: no detection needed).
//!   Selectors are `table.column` or a bare `column` (any table), with `*` and `?` globs,
//!   ASCII case-insensitive. A column of unknown table (an expression) is selected only by a
//!   bare `column` or `*.column`. The first column rule selecting a column decides it.
//! - **A detector** scans every other value of every result, and all free text, and masks each
//!   match with the style. With both (the documented `pan` example), the selected columns are
//!   masked whole *and* the detector catches the same data elsewhere (in another column, an
//!   expression, an aliased column, a statement or an error message).
//! - **`exempt_groups`**: an identity in any of these groups is not subject to the rule.
//!
//! Several detector rules apply in configuration order, each to the previous one's output.
//!
//! # Detectors
//!
//! - `pan`: 13–19 digit card numbers, plain or grouped by single spaces or dashes, Luhn-valid,
//!   not glued to letters and never part of a longer digit run (`mask/pan.rs` has the details).
//! - `email`: `local@domain.tld`, the TLD two letters or more (`mask/email.rs`).
//! - `regex`: the Rust `regex` syntax over the value's bytes; a pattern that can match the empty
//!   string is refused.
//!
//! Detectors are ASCII and work on bytes: values in any ASCII-compatible client encoding are
//! scanned, invalid UTF-8 included, and nothing a server sends can make them panic.
//!
//! # Styles
//!
//! - `redact` (the default): `[redacted]`.
//! - `keep-last-4`: a match keeps its last four letters or digits and its separators
//!   (`**** **** **** 1111`); a whole value keeps its last four characters
//!   (`***************1111`). Anything with fewer than eight characters is masked entirely.
//! - `hash`: `h:` + 16 hex digits of HMAC-SHA256 under the gateway's key (at least 16 bytes).
//!   Equal values give equal outputs, across sessions and restarts, so joins still line up.
//!   PAN matches are hashed on their digits alone, e-mails in lower case.
//!
//! # Types and formats (PostgreSQL)
//!
//! A mask is text, so where it goes depends on what the client will parse:
//!
//! - **Text-like types** (`text`, `varchar`, `bpchar`, `name`, `unknown`, OID 0; user-defined
//!   types such as `citext`, enums and domains in text format; text arrays in text format), in
//!   either format: masked in place. `json`/`jsonb` stay valid JSON (a match outside a string
//!   becomes a string; binary `jsonb` keeps its version byte).
//! - **A column rule on any other type** (a `bigint` card number, a `date`, any binary value
//!   not text-like): the value becomes NULL — a mask is not a valid number or date.
//! - **Detectors on other types**: binary `int2`/`int4`/`int8` and `numeric` are rendered in
//!   decimal and checked; text-format values of non-text types are checked as they are; other
//!   binary values of unknown layout (user types, arrays, `bytea`) are checked byte for byte. A
//!   match makes the value NULL. Binary values of fixed-layout types that cannot hold a
//!   detectable string (`bool`, `float4`/`float8`, `money`, dates and times, `interval`, `uuid`,
//!   `inet`, geometric types, ...) are not scanned at all.
//! - SQL NULL stays NULL.
//!
//! # Cost
//!
//! Nothing is allocated unless something is masked: [`Masker::mask_text`] returns the borrowed
//! text and [`MaskPlan::apply`] answers `Unchanged`. The PAN scanner probes one byte in 13 and
//! runs Luhn only on runs of 13+ digits; the e-mail scanner jumps between `@`s with `memchr`.

use std::borrow::Cow;
use std::sync::Arc;

mod counts;
mod detect;
mod email;
mod json;
mod pan;
mod pgtype;
mod plan;
mod rewrite;
mod select;
mod spec;
mod style;

pub use counts::MaskCounts;
pub use plan::{ColumnMeta, MaskPlan, Masked};
pub use spec::{MaskError, MaskSpec};

use rewrite::Scanner;
use spec::Rule;
use style::Hasher;

/// The configured masking rules, compiled. Build once at startup and share (`Arc`); it is
/// `Send + Sync`.
#[derive(Debug)]
pub struct MaskPolicy {
    /// Every rule; shared as is by sessions exempt from none.
    rules: Arc<Rules>,
}

/// The rules that apply to one identity: from [`MaskPolicy::for_groups`]. Cloning is cheap
/// (one `Arc`).
#[derive(Debug, Clone)]
pub struct Masker {
    rules: Arc<Rules>,
}

/// A set of compiled rules, split by how they apply.
#[derive(Debug)]
pub(crate) struct Rules {
    /// Every rule, in configuration order.
    all: Vec<Arc<Rule>>,
    /// Rules with `columns`, in configuration order.
    columns: Vec<Arc<Rule>>,
    /// The detectors of rules that have one, in configuration order.
    detectors: Vec<Scanner>,
    /// The shortest value any of them can match in (`usize::MAX` with none).
    min_scan_len: usize,
    /// The `hash` style's keyed hash.
    hasher: Arc<Hasher>,
}

impl Rules {
    fn new(all: Vec<Arc<Rule>>, hasher: Arc<Hasher>) -> Self {
        let columns = all
            .iter()
            .filter(|r| !r.columns.is_empty())
            .cloned()
            .collect();
        let detectors: Vec<Scanner> = all
            .iter()
            .filter_map(|r| {
                r.detector.clone().map(|detector| Scanner {
                    detector,
                    style: r.style,
                })
            })
            .collect();
        let min_scan_len = detectors
            .iter()
            .map(|s| s.detector.min_len())
            .min()
            .unwrap_or(usize::MAX);
        Self {
            all,
            columns,
            detectors,
            min_scan_len,
            hasher,
        }
    }
}

impl MaskPolicy {
    /// Compiles and validates `specs` in order. `hash_key` is the gateway's secret for the
    /// `hash` style; it must be at least 16 bytes if any rule hashes (otherwise it is unused).
    pub fn new(specs: Vec<MaskSpec>, hash_key: Vec<u8>) -> Result<Self, MaskError> {
        let rules = spec::compile_all(specs, hash_key.len())?;
        let hasher = Arc::new(Hasher::new(&hash_key));
        let all = rules.into_iter().map(Arc::new).collect();
        Ok(Self {
            rules: Arc::new(Rules::new(all, hasher)),
        })
    }

    /// Whether there are no rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.all.is_empty()
    }

    /// The names of the rules, in configuration order.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.rules.all.iter().map(|r| &*r.name)
    }

    /// The rules an identity in `groups` is subject to (those not exempting any of its groups).
    pub fn for_groups(&self, groups: &[String]) -> Masker {
        if !self.rules.all.iter().any(|r| r.exempts(groups)) {
            return Masker {
                rules: Arc::clone(&self.rules),
            };
        }
        let kept = self
            .rules
            .all
            .iter()
            .filter(|r| !r.exempts(groups))
            .cloned()
            .collect();
        Masker {
            rules: Arc::new(Rules::new(kept, Arc::clone(&self.rules.hasher))),
        }
    }
}

impl Masker {
    /// Whether no rule applies: the wire can skip every decoding step masking would need.
    pub fn is_empty(&self) -> bool {
        self.rules.all.is_empty()
    }

    /// Whether some rule scans values and free text (otherwise only named columns are masked
    /// and [`mask_text`](Self::mask_text) never changes anything).
    pub fn has_detectors(&self) -> bool {
        !self.rules.detectors.is_empty()
    }

    /// The names of the rules that apply, in configuration order (for the audit trail).
    pub fn rule_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.rules.all.iter().map(|r| &*r.name)
    }

    /// Masks free text — statement text, a bind parameter, a server notice or error — with the
    /// detector rules, counting one masked value under `what` if anything matched. Borrowed
    /// (and nothing allocated) when nothing matched.
    pub fn mask_text<'a>(
        &self,
        text: &'a str,
        counts: &mut MaskCounts,
        what: &str,
    ) -> Cow<'a, str> {
        match rewrite::rewrite(
            &self.rules.detectors,
            &self.rules.hasher,
            text.as_bytes(),
            false,
        ) {
            None => Cow::Borrowed(text),
            Some(masked) => {
                counts.add(what, 1);
                Cow::Owned(match String::from_utf8(masked) {
                    Ok(s) => s,
                    // Only a byte-level regex can split a character; never hand back bad UTF-8.
                    Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
                })
            }
        }
    }

    /// [`mask_text`](Self::mask_text) for bytes in another encoding (or not text at all).
    pub fn mask_bytes<'a>(
        &self,
        bytes: &'a [u8],
        counts: &mut MaskCounts,
        what: &str,
    ) -> Cow<'a, [u8]> {
        match rewrite::rewrite(&self.rules.detectors, &self.rules.hasher, bytes, false) {
            None => Cow::Borrowed(bytes),
            Some(masked) => {
                counts.add(what, 1);
                Cow::Owned(masked)
            }
        }
    }

    /// Plans one result from its column metadata, in column order.
    pub fn plan(&self, columns: &[ColumnMeta<'_>]) -> MaskPlan {
        MaskPlan::build(&self.rules, columns)
    }
}

impl Default for MaskPolicy {
    /// No rules: nothing is ever masked.
    fn default() -> Self {
        Self {
            rules: Arc::new(Rules::new(Vec::new(), Arc::new(Hasher::new(&[])))),
        }
    }
}

impl Masker {
    /// Whether some rule names columns (a wire must then know every result's columns, and
    /// refuses results whose columns it cannot know, such as COPY's).
    pub fn has_column_rules(&self) -> bool {
        !self.rules.columns.is_empty()
    }

    /// Whether some rule names columns and has no detector: output without column names
    /// (COPY) cannot be masked for it. A rule with both is applied there by its detector.
    pub fn has_column_only_rules(&self) -> bool {
        self.rules.columns.iter().any(|r| r.detector.is_none())
    }
}

impl MaskCounts {
    /// The counts as the audit entry's masking log.
    pub fn to_log(&self) -> crate::events::MaskLog {
        self.iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }
}

#[cfg(test)]
mod tests;
