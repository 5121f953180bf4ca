//! Everything kstep shows the user goes through here, with secret masking.
//!
//! Secrets (tokens, keys, a kubeconfig and its base64 form) are registered with [`register_secret`]
//! as soon as the host reads them; from then on every byte written through [`stdout`],
//! [`stderr_line`], [`guest_output`] or an error report has each occurrence replaced by
//! `[MASKED]`. The registry is process-global on purpose: a secret must be masked on every path,
//! including error messages built deep in libraries and the panic hook, without threading a
//! handle through all of them.

use std::borrow::Cow;
use std::io::Write;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// What replaces a secret.
pub const MASK: &str = "[MASKED]";

/// Values shorter than this are not masked: they would blank out ordinary words.
const MIN_SECRET_LEN: usize = 6;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers `secret` and its base64 encodings (standard and URL-safe, padded or not, and the
/// stretch of base64 that the secret produces at each of the three byte alignments when it is
/// embedded in a larger encoded blob).
pub fn register_secret(secret: &str) {
    if secret.len() < MIN_SECRET_LEN {
        return;
    }
    let mut forms = vec![secret.to_owned()];
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(secret));
    }
    for shift in 0..3 {
        let mut padded = vec![0u8; shift];
        padded.extend_from_slice(secret.as_bytes());
        let encoded = STANDARD_NO_PAD.encode(&padded);
        // Characters wholly determined by the secret's bits, wherever the blob puts it.
        let start = (8 * shift).div_ceil(6);
        let end = 8 * padded.len() / 6;
        if let Some(core) = encoded.get(start..end) {
            forms.push(core.to_owned());
        }
    }
    let mut secrets = SECRETS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for form in forms {
        if form.len() >= MIN_SECRET_LEN && !secrets.contains(&form) {
            secrets.push(form);
        }
    }
    // Longest first, so a secret that contains another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every registered secret replaced by [`MASK`].
pub fn mask(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = Cow::Borrowed(text);
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), MASK));
        }
    }
    out
}

/// Set by [`progress_to_stderr`].
static STDOUT_TO_STDERR: AtomicBool = AtomicBool::new(false);

/// From now on [`stdout`] writes to stderr: for a command whose stdout carries one value
/// (`serviceaccount create --print-secret > file`), so that the lines of shared code (the apply
/// engine's) cannot mix into it.
pub fn progress_to_stderr() {
    STDOUT_TO_STDERR.store(true, Ordering::Relaxed);
}

/// Writes `text` to stdout (or stderr, after [`progress_to_stderr`]), masked. Output errors (a
/// closed pipe) are ignored: there is no one left to tell.
pub fn stdout(text: &str) {
    let masked = mask(text);
    if STDOUT_TO_STDERR.load(Ordering::Relaxed) {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(masked.as_bytes());
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(masked.as_bytes());
    let _ = out.flush();
}

/// Writes one line to stderr, masked.
pub fn stderr_line(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", mask(text));
}

/// Forwards what a step wrote on stdout/stderr to kstep's stderr, masked, one prefixed line each.
pub fn guest_output(step: &str, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let text = String::from_utf8_lossy(bytes);
    for line in text.lines() {
        stderr_line(&format!("[{step}] {line}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_plain_and_embedded_base64() {
        let secret = "s3cr3t-token-value";
        register_secret(secret);
        assert_eq!(mask(&format!("a {secret} b")), "a [MASKED] b");
        assert_eq!(mask(&STANDARD.encode(secret)), MASK);
        for prefix in ["", "x", "xy", "xyz"] {
            let blob = STANDARD.encode(format!("{prefix}token: {secret}\nmore"));
            assert!(
                !mask(&blob).contains(&STANDARD_NO_PAD.encode(secret)[4..12]),
                "{prefix:?}"
            );
            assert!(mask(&blob).contains(MASK), "{prefix:?}");
        }
        assert_eq!(mask("nothing here"), "nothing here");
    }

    #[test]
    fn short_values_are_not_masked() {
        register_secret("abc");
        assert_eq!(mask("abc abcd"), "abc abcd");
    }
}
