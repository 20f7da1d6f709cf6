//! A command as a wire decoded it, before the core judges it.

use crate::classify::StatementClass;

/// One bind parameter as the audit trail shows it: text, or `None` for SQL NULL.
pub type Param = Option<String>;

/// What a wire asks the core to admit: SQL text with its bind parameters, an SSH exec line, an
/// SFTP operation. The core classifies it; the wire only decodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    text: String,
    params: Vec<Param>,
    class: Option<StatementClass>,
    unreadable: Option<String>,
}

impl Command {
    /// A command with no parameters (a simple query, an exec line).
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            params: Vec::new(),
            class: None,
            unreadable: None,
        }
    }

    /// A command that is not SQL, whose class the wire knows (an SSH exec line, an SFTP
    /// operation): the core takes the class as given instead of parsing the text.
    pub fn classed(text: impl Into<String>, class: StatementClass) -> Self {
        Self {
            text: text.into(),
            params: Vec::new(),
            class: Some(class),
            unreadable: None,
        }
    }

    /// A command with bind parameters (an extended-protocol execute).
    pub fn with_params(text: impl Into<String>, params: Vec<Param>) -> Self {
        Self {
            text: text.into(),
            params,
            class: None,
            unreadable: None,
        }
    }

    /// Marks a text the wire cannot be sure the server reads as the gateway does (`reason`
    /// says why): recorded, and refused whatever the rules say.
    pub fn unreadable(mut self, reason: impl Into<String>) -> Self {
        self.unreadable = Some(reason.into());
        self
    }

    /// Why the wire could not read it with certainty, if it could not.
    pub fn unreadable_reason(&self) -> Option<&str> {
        self.unreadable.as_deref()
    }

    /// The command text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The bind parameters, rendered for the audit trail.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The class the wire gave, for commands that are not SQL.
    pub fn class(&self) -> Option<StatementClass> {
        self.class
    }

    /// Takes the command apart without copying.
    pub fn into_parts(self) -> (String, Vec<Param>) {
        (self.text, self.params)
    }
}
