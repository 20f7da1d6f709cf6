//! The server half's masking state: the plan of the result being relayed, what was masked for
//! the command it belongs to, and results refused because no plan can be trusted for them.
//!
//! Only sessions whose identity is subject to some `[[mask]]` have one; for everyone else the
//! relay never decodes a row.
//!
//! Where the columns of a result come from: for a simple query, the RowDescription just before
//! its rows; for an extended Execute, the command's own shape — the Describe of that very
//! portal (same Bind), else the described statement it was bound from with the Bind's result
//! formats. A plan never outlives its command (CommandComplete, ErrorResponse,
//! PortalSuspended, EmptyQueryResponse, ReadyForQuery end it). Rows of a result whose columns are unknown
//! are scanned as text by the detectors when every column is text; when some column is binary,
//! or a column rule applies to the identity, such a result is refused (fail closed). COPY TO
//! output is scanned by the detectors in text and CSV format; it is refused in binary format,
//! or when a rule with columns and no detector applies (COPY carries no column names to
//! match; a rule with both is applied to COPY by its detector).

use std::sync::Arc;

use bytes::Bytes;
use gatehouse_core::mask::{MaskCounts, MaskPlan, Masker};

use crate::error::PgError;
use crate::masking::{
    decode_row_description, mask_copy_data, mask_data_row, mask_function_result, mask_notice,
    mask_notification, mask_parameter_status, plan, Catalog, Field,
};
use crate::messages::{error_response, Severity};
use crate::tracker::{Described, Tracker};

/// What to do with a server message.
#[derive(Debug)]
pub enum Action {
    /// Forward it as it came.
    Forward,
    /// Send these bytes instead.
    Replace(Bytes),
    /// Send nothing.
    Drop,
}

/// The SQLSTATE of a refused result (insufficient privilege).
pub const REFUSED_RESULT: &str = "42501";

/// See the module documentation.
pub struct ResultMasker {
    masker: Masker,
    catalog: Option<Arc<Catalog>>,
    plan: Option<MaskPlan>,
    /// Plan for rows of unknown columns, by column count.
    blind: Option<(usize, MaskPlan)>,
    /// What was masked since the last command closed.
    pub counts: MaskCounts,
    refusing: Option<String>,
}

impl ResultMasker {
    /// The masking state of a session subject to `masker`.
    pub fn new(masker: Masker, catalog: Option<Arc<Catalog>>) -> Self {
        Self {
            masker,
            catalog,
            plan: None,
            blind: None,
            counts: MaskCounts::new(),
            refusing: None,
        }
    }

    fn refuse(&mut self, why: &str) -> Action {
        let names: Vec<&str> = self.masker.rule_names().collect();
        let message = format!(
            "gatehouse: this result was withheld because masking ({}) cannot be applied to it: \
             {why}",
            names.join(", ")
        );
        let error = error_response(
            Severity::Error,
            REFUSED_RESULT,
            &message,
            Some("select the columns by name with text results (or ask for an exemption)"),
        );
        self.refusing = Some(message);
        Action::Replace(error)
    }

    /// Whether the current result is being withheld.
    pub fn is_refusing(&self) -> bool {
        self.refusing.is_some()
    }

    /// A RowDescription: either a described statement's columns (kept by the tracker) or the
    /// start of a result.
    pub fn row_description(&mut self, tracker: &mut Tracker, body: &[u8]) -> Result<(), PgError> {
        let fields = decode_row_description(body, tracker.encoding())?;
        if tracker.row_description(&fields) == Described::Result {
            self.plan = Some(plan(&self.masker, self.catalog.as_deref(), &fields));
        }
        Ok(())
    }

    /// A DataRow.
    pub fn data_row(&mut self, tracker: &Tracker, body: &[u8]) -> Result<Action, PgError> {
        if self.refusing.is_some() {
            return Ok(Action::Drop);
        }
        if self.plan.is_none() {
            let shape = tracker.running_shape().cloned().unwrap_or_default();
            match shape.fields {
                Some(fields) => {
                    self.plan = Some(plan(&self.masker, self.catalog.as_deref(), &fields))
                }
                None if shape.any_binary || self.masker.has_column_rules() => {
                    return Ok(self.refuse("its columns were not described before its rows arrived"))
                }
                None => return self.blind_row(body),
            }
        }
        let Some(plan) = &self.plan else {
            return Ok(Action::Forward);
        };
        if plan.is_noop() {
            return Ok(Action::Forward);
        }
        Ok(match mask_data_row(plan, body, &mut self.counts)? {
            Some(row) => Action::Replace(row),
            None => Action::Forward,
        })
    }

    /// A row of unknown columns, all text: scanned by the detectors as text of unknown type.
    fn blind_row(&mut self, body: &[u8]) -> Result<Action, PgError> {
        let n = body
            .get(..2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .unwrap_or(0);
        if self.blind.as_ref().is_none_or(|(k, _)| *k != n) {
            let unknown: Vec<Field> = (0..n)
                .map(|_| Field {
                    name: "?column?".into(),
                    table_oid: 0,
                    attnum: 0,
                    type_oid: 0,
                    format: 0,
                })
                .collect();
            self.blind = Some((n, plan(&self.masker, None, &unknown)));
        }
        let Some((_, plan)) = &self.blind else {
            return Ok(Action::Forward);
        };
        Ok(match mask_data_row(plan, body, &mut self.counts)? {
            Some(row) => Action::Replace(row),
            None => Action::Forward,
        })
    }

    /// A CopyOutResponse: COPY TO output is about to stream.
    pub fn copy_out(&mut self, body: &[u8], custom_format: bool) -> Action {
        if body.first() == Some(&1) {
            return self.refuse("COPY in binary format cannot be scanned");
        }
        if custom_format {
            return self
                .refuse("COPY with its own DELIMITER, QUOTE or ESCAPE cannot be scanned reliably");
        }
        if self.masker.has_column_only_rules() {
            return self.refuse("COPY output carries no column names for the column rules");
        }
        Action::Forward
    }

    /// A CopyData of COPY TO output.
    pub fn copy_data(&mut self, body: &[u8]) -> Action {
        if self.refusing.is_some() {
            return Action::Drop;
        }
        match mask_copy_data(&self.masker, body, &mut self.counts) {
            Some(masked) => Action::Replace(masked),
            None => Action::Forward,
        }
    }

    /// A CopyDone of COPY TO output.
    pub fn copy_done(&mut self) -> Action {
        if self.refusing.is_some() {
            Action::Drop
        } else {
            Action::Forward
        }
    }

    /// An ErrorResponse or NoticeResponse: its text masked.
    pub fn notice(&mut self, tag: u8, body: &[u8]) -> Result<Action, PgError> {
        Ok(
            match mask_notice(&self.masker, tag, body, &mut self.counts)? {
                Some(masked) => Action::Replace(masked),
                None => Action::Forward,
            },
        )
    }

    /// A ParameterStatus: its value masked.
    pub fn parameter_status(&mut self, body: &[u8]) -> Result<Action, PgError> {
        Ok(
            match mask_parameter_status(&self.masker, body, &mut self.counts)? {
                Some(masked) => Action::Replace(masked),
                None => Action::Forward,
            },
        )
    }

    /// A NotificationResponse: its payload masked.
    pub fn notification(&mut self, body: &[u8]) -> Result<Action, PgError> {
        Ok(
            match mask_notification(&self.masker, body, &mut self.counts)? {
                Some(masked) => Action::Replace(masked),
                None => Action::Forward,
            },
        )
    }

    /// A FunctionCallResponse: its value masked.
    pub fn function_result(&mut self, body: &[u8]) -> Result<Action, PgError> {
        Ok(
            match mask_function_result(&self.masker, body, &mut self.counts)? {
                Some(masked) => Action::Replace(masked),
                None => Action::Forward,
            },
        )
    }

    /// The end of a result (CommandComplete, ErrorResponse, PortalSuspended, ReadyForQuery):
    /// if it was refused, the message the client was given.
    pub fn end_result(&mut self) -> Option<String> {
        self.plan = None;
        self.refusing.take()
    }
}
