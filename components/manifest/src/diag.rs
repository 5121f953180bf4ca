//! Positions and diagnostics of the manifest core (mapped onto `kstep:steps/types` by the glue).

use std::fmt;

/// A 1-based position in a source; `line == 0` means "not known".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
}

impl Pos {
    /// A known position.
    pub fn new(line: u32, column: u32) -> Self {
        Self { line, column }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Rendering fails.
    Error,
    /// Rendering succeeds, but the user should look.
    Warning,
}

/// A problem found in the input, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The source name (file path, `<stdin>`, `--image`…); empty when not tied to a source.
    pub source: String,
    /// Where in `source`.
    pub pos: Pos,
    /// What is wrong. Never contains a variable's value.
    pub message: String,
}

impl Diagnostic {
    /// An error.
    pub fn error(source: &str, pos: Pos, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            source: source.to_owned(),
            pos,
            message: message.into(),
        }
    }

    /// A warning.
    pub fn warning(source: &str, pos: Pos, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            source: source.to_owned(),
            pos,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match (self.source.is_empty(), self.pos.line) {
            (true, _) => write!(f, "{severity}: {}", self.message),
            (false, 0) => write!(f, "{}: {severity}: {}", self.source, self.message),
            (false, _) => write!(
                f,
                "{}:{}: {severity}: {}",
                self.source, self.pos, self.message
            ),
        }
    }
}
