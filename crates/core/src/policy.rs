//! The verdict a command gets. Rules, reviews and masking plug in here (the policy issue);
//! until they land every admitted command is allowed, and the only refusals are fail-closed ones
//! (the audit store could not take the entry).

/// The decision on one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The command may run.
    Allow,
    /// The command may not run; the client sees the reason.
    Deny {
        /// The rule that denied it.
        rule: String,
        /// What the client is told.
        reason: String,
    },
}

impl Verdict {
    /// The word stored in the audit entry.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny { .. } => "deny",
        }
    }
}
