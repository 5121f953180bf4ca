//! GitLab's masked-variable rules (`app/models/concerns/ci/maskable.rb`) and the one-line base64
//! encoding (`base64 -w 0`) that satisfies them.

use base64::Engine as _;

use crate::connection::Diagnostic;
use crate::input;

/// The longest value a GitLab CI/CD variable holds.
pub const MAX_LEN: usize = 10_000;
/// The shortest value GitLab agrees to mask.
pub const MIN_LEN: usize = 8;

/// Why a value cannot be stored as a masked variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaskError {
    /// Shorter than GitLab's minimum.
    TooShort(usize),
    /// Longer than GitLab's maximum.
    TooLong(usize),
    /// A character outside `A-Z a-z 0-9 _ + = / @ : . ~ -` at this 1-based position.
    Character(usize),
}

impl std::fmt::Display for MaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooShort(n) => write!(
                f,
                "the encoded value has {n} characters; GitLab masks only values of at least \
                 {MIN_LEN}: a kubeconfig this short cannot be complete"
            ),
            Self::TooLong(n) => write!(
                f,
                "the encoded value has {n} characters; a GitLab variable holds at most {MAX_LEN}: \
                 keep only the context the job needs (`kstep kubeconfig encode --minify`), or \
                 store the kubeconfig file itself in a File-type variable named KUBECONFIG \
                 (not maskable: make it protected, and kstep never prints it)"
            ),
            Self::Character(at) => write!(
                f,
                "character {at} is not allowed in a masked variable (only A-Z a-z 0-9 _ + = / @ \
                 : . ~ -): store the base64 form"
            ),
        }
    }
}

/// Checks `value` against the masked-variable rules (with variable expansion on, the stricter
/// set: `/\A[a-zA-Z0-9_+=\/@:.~-]{8,}\z/` and the 10 000-character cap).
///
/// # Errors
/// The first rule that fails.
pub fn check(value: &str) -> Result<(), MaskError> {
    if let Some(i) = value
        .chars()
        .position(|c| !(c.is_ascii_alphanumeric() || "_+=/@:.~-".contains(c)))
    {
        return Err(MaskError::Character(i + 1));
    }
    match value.len() {
        n if n < MIN_LEN => Err(MaskError::TooShort(n)),
        n if n > MAX_LEN => Err(MaskError::TooLong(n)),
        _ => Ok(()),
    }
}

/// One-line standard base64 of the kubeconfig in `input` (YAML or JSON; base64 input, wrapped
/// or not, is decoded first, so re-encoding a wrapped value gives the one-line form), checked
/// against the masked-variable rules. The text must parse as a kubeconfig document.
///
/// # Errors
/// A diagnostic naming the rule that fails, or what is wrong with the input.
pub fn encode(input: &[u8]) -> Result<String, Diagnostic> {
    let text = input::recognise(input)?;
    if let Err((line, column, message)) = crate::model::parse(&text.text) {
        let source = match text.form {
            crate::connection::Form::Base64OneLine | crate::connection::Form::Base64Wrapped => {
                Some("base64-decoded")
            }
            _ => None,
        };
        return Err(Diagnostic::error(message).at(source, line, column));
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.text.as_bytes());
    check(&encoded).map_err(|e| Diagnostic::error(e.to_string()))?;
    Ok(encoded)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(check("abcdefgh"), Ok(()));
        assert_eq!(check("abc"), Err(MaskError::TooShort(3)));
        assert_eq!(check("abc def gh"), Err(MaskError::Character(4)));
        assert_eq!(check("abcdefgh\n"), Err(MaskError::Character(9)));
        assert_eq!(check("a@b:c.d~e-f_g+h=/"), Ok(()));
        assert_eq!(check(&"a".repeat(MAX_LEN)), Ok(()));
        assert_eq!(
            check(&"a".repeat(MAX_LEN + 1)),
            Err(MaskError::TooLong(MAX_LEN + 1))
        );
    }

    #[test]
    fn encodes_one_line() {
        let yaml = "apiVersion: v1\nkind: Config\n";
        let one = encode(yaml.as_bytes()).unwrap();
        assert_eq!(one, "YXBpVmVyc2lvbjogdjEKa2luZDogQ29uZmlnCg==");
        // Wrapped base64 is normalised to one line; one-line base64 stays as it is.
        let wrapped = format!("{}\n{}\n", &one[..10], &one[10..]);
        assert_eq!(encode(wrapped.as_bytes()).unwrap(), one);
        assert_eq!(encode(one.as_bytes()).unwrap(), one);
    }

    #[test]
    fn encode_errors() {
        let long = format!("apiVersion: v1\nkind: Config\n# {}\n", "x".repeat(8000));
        let e = encode(long.as_bytes()).unwrap_err();
        assert!(e.message.contains("at most 10000"), "{e:?}");
        assert!(e.message.contains("File-type variable"), "{e:?}");
        let e = encode(b"a: [b\n").unwrap_err();
        assert!(e.message.starts_with("YAML syntax error"), "{e:?}");
        assert!(encode(b"").is_err());
    }
}
