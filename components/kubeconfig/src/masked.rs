//! GitLab's masked-variable rules (app/models/concerns/ci/maskable.rb) applied to base64 output.

use base64::Engine as _;

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
}

impl std::fmt::Display for MaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooShort(n) => write!(
                f,
                "the encoded value has {n} characters; GitLab masks only values of at least {MIN_LEN}"
            ),
            Self::TooLong(n) => write!(
                f,
                "the encoded value has {n} characters; GitLab variables hold at most {MAX_LEN}: \
                 store the kubeconfig in a File-type variable instead"
            ),
        }
    }
}

/// One-line standard base64 (`base64 -w 0`): its alphabet and `=` padding are all allowed in
/// masked variables, so only the length rules can fail.
///
/// # Errors
/// [`MaskError`] naming the length rule that fails.
pub fn encode(kubeconfig: &[u8]) -> Result<String, MaskError> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(kubeconfig);
    match encoded.len() {
        n if n < MIN_LEN => Err(MaskError::TooShort(n)),
        n if n > MAX_LEN => Err(MaskError::TooLong(n)),
        _ => Ok(encoded),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_rules() {
        assert_eq!(encode(b"apiVersion: v1\n").unwrap(), "YXBpVmVyc2lvbjogdjEK");
        assert_eq!(encode(b"a"), Err(MaskError::TooShort(4)));
        assert!(matches!(encode(&[b'x'; 8000]), Err(MaskError::TooLong(_))));
    }
}
