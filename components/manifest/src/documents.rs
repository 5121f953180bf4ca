//! Parsing manifest texts into canonical JSON documents.

/// A syntax error with its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// What is wrong.
    pub message: String,
}

/// Parses one JSON document and returns it in canonical (compact) form.
///
/// # Errors
/// [`SyntaxError`] with the position of the first problem.
pub fn parse_json(text: &str) -> Result<String, SyntaxError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| SyntaxError {
        line: u32::try_from(e.line()).unwrap_or(u32::MAX),
        column: u32::try_from(e.column()).unwrap_or(u32::MAX),
        message: e.to_string(),
    })?;
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_and_positioned() {
        assert_eq!(parse_json("{ \"kind\" : \"Pod\" }").unwrap(), r#"{"kind":"Pod"}"#);
        let e = parse_json("{\n  \"a\": ,\n}").unwrap_err();
        assert_eq!((e.line, e.column), (2, 8));
    }
}
