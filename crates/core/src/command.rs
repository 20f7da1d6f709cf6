//! A command as a wire decoded it, before the core judges it.

/// One bind parameter as the audit trail shows it: text, or `None` for SQL NULL.
pub type Param = Option<String>;

/// What a wire asks the core to admit: SQL text with its bind parameters, an SSH exec line, an
/// SFTP operation. The core classifies it; the wire only decodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    text: String,
    params: Vec<Param>,
}

impl Command {
    /// A command with no parameters (a simple query, an exec line).
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            params: Vec::new(),
        }
    }

    /// A command with bind parameters (an extended-protocol execute).
    pub fn with_params(text: impl Into<String>, params: Vec<Param>) -> Self {
        Self {
            text: text.into(),
            params,
        }
    }

    /// The command text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The bind parameters, rendered for the audit trail.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// Takes the command apart without copying.
    pub fn into_parts(self) -> (String, Vec<Param>) {
        (self.text, self.params)
    }
}
