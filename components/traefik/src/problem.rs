//! Problems found in user input, with the position they refer to.

/// How serious a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The input is refused.
    Error,
    /// The input is accepted, but something deserves attention.
    Warning,
}

/// One problem, at a 1-based line and column (0 when not known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// How serious it is.
    pub level: Level,
    /// What is wrong and what to do instead. Never contains secret material.
    pub message: String,
    /// 1-based line, 0 when not known.
    pub line: u32,
    /// 1-based column, 0 when not known.
    pub column: u32,
}

impl Problem {
    /// An error at a position.
    pub fn error(message: impl Into<String>, (line, column): (u32, u32)) -> Self {
        Self {
            level: Level::Error,
            message: message.into(),
            line,
            column,
        }
    }

    /// A warning at a position.
    pub fn warning(message: impl Into<String>, (line, column): (u32, u32)) -> Self {
        Self {
            level: Level::Warning,
            message: message.into(),
            line,
            column,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// 1-based line and column of byte `offset` in `text` (columns count characters).
pub fn position(text: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn positions() {
        let text = "ab\ncdé\nf";
        assert_eq!(super::position(text, 0), (1, 1));
        assert_eq!(super::position(text, 3), (2, 1));
        assert_eq!(super::position(text, 7), (2, 4)); // after "cdé": é is 2 bytes
        assert_eq!(super::position(text, 100), (3, 2));
    }
}
