//! GitLab's `artifacts:reports:dotenv` rules (app/services/ci/parse_dotenv_artifact_service.rb).

/// A parsed variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The variable name.
    pub key: String,
    /// The value, verbatim after stripping surrounding whitespace.
    pub value: String,
    /// 1-based line number.
    pub line: u32,
}

/// Why a line is rejected. GitLab rejects the whole file when any line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// What is wrong.
    pub message: String,
}

/// Parses a dotenv artifact the way GitLab does; returns every problem, not only the first.
///
/// # Errors
/// One [`ParseError`] per rejected line.
pub fn parse(bytes: &[u8]) -> Result<Vec<Entry>, Vec<ParseError>> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.strip_prefix('\u{feff}').unwrap_or(t),
        Err(e) => {
            return Err(vec![ParseError {
                line: 0,
                column: 0,
                message: format!("not valid UTF-8 at byte offset {}", e.valid_up_to()),
            }]);
        }
    };
    let mut entries: Vec<Entry> = Vec::new();
    let mut errors = Vec::new();
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let Some((key, value)) = line.split_once('=') else {
            errors.push(ParseError {
                line: number,
                column: 1,
                message: "Invalid Format: no `=`".into(),
            });
            continue;
        };
        let key = key.trim();
        if key.is_empty()
            || key.len() > 255
            || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            errors.push(ParseError {
                line: number,
                column: 1,
                message: format!("invalid key `{key}`"),
            });
            continue;
        }
        let value = value.trim().to_owned();
        match entries.iter_mut().find(|e| e.key == key) {
            Some(existing) => {
                *existing = Entry {
                    key: key.to_owned(),
                    value,
                    line: number,
                }
            }
            None => entries.push(Entry {
                key: key.to_owned(),
                value,
                line: number,
            }),
        }
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_quotes_and_rejects_comments() {
        let entries = parse(b"A=\"x\"\nB = y # z\n").unwrap();
        assert_eq!(entries[0].value, "\"x\"");
        assert_eq!(entries[1].value, "y # z");
        let errors = parse(b"# c\nA=b\n\n").unwrap_err();
        assert_eq!(
            errors.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![1, 3]
        );
    }
}
