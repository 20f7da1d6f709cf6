//! The verdict a command gets, as the audit trail records it. The rules that produce it live in
//! [`crate::rules`]; approvals in [`crate::approval`].

/// The decision on one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The command may run (no rule, or an allow rule).
    Allow,
    /// A deny rule refused it.
    Deny {
        /// What the client was told.
        reason: String,
    },
    /// A review rule held it and an approver approved it (or an earlier approval's grace
    /// covered it).
    Approved {
        /// Who approved it (`grace of apr_...` for a covered re-run).
        by: String,
    },
    /// A review rule held it and it was denied, timed out, or could not be held.
    Rejected {
        /// What the client was told.
        reason: String,
    },
}

impl Verdict {
    /// The word stored in the audit entry.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny { .. } => "deny",
            Self::Approved { .. } => "approved",
            Self::Rejected { .. } => "rejected",
        }
    }

    /// Whether the command may run.
    pub fn runs(&self) -> bool {
        matches!(self, Self::Allow | Self::Approved { .. })
    }
}
