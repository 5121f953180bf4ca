//! Everything kstep shows the user goes through here, masked.
//!
//! Every byte written through [`stdout`], [`stderr_line`], [`guest_output`] or an error report
//! has each registered secret replaced by [`MASK`] (what is registered, and in which forms, is
//! the rule of [`crate::secrets`]). A text is masked whole, before it is split into lines or
//! cut, so a multi-line secret is matched as one.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

pub use crate::secrets::{MASK, mask, register as register_secret};

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

/// Writes one line to stderr, masked; the line is also kept for the reports of the check
/// running ([`crate::report::log`]).
pub fn stderr_line(text: &str) {
    let masked = mask(text);
    crate::report::log(&masked);
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{masked}");
}

/// Forwards what a step wrote on stdout/stderr to kstep's stderr, masked, one prefixed line each.
pub fn guest_output(step: &str, bytes: &[u8]) {
    let text = guest_text(step, bytes);
    for line in text.lines() {
        crate::report::log(line);
    }
    if !text.is_empty() {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
    }
}

/// What [`guest_output`] writes: the guest's bytes masked as one text, then split into lines,
/// each prefixed with `[step] `.
pub fn guest_text(step: &str, bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let masked = mask(&text);
    let mut out = String::with_capacity(masked.len() + 16);
    for line in masked.lines() {
        // The step's name is the user's, from kstep.yaml: masked like the rest.
        out.push_str(&mask(&format!("[{step}] {line}")));
        out.push('\n');
    }
    out
}
