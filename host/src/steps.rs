//! Typed calls into the built-in steps: one module per WIT world, each a thin layer that turns
//! Rust values into a sandboxed component call (see [`crate::runtime`]).

pub mod custom;
pub mod dotenv;
pub mod kubeconfig;
pub mod manifest;
pub mod traefik;

/// `kstep:steps/types`, bound once: every step's bindings map the interface here (`with:`), so
/// all steps share one [`Diagnostic`] and one [`Severity`] and one way to print them.
#[allow(missing_docs)]
mod types {
    wasmtime::component::bindgen!({
        path: "../wit",
        inline: "package kstep:host; world shared-types { import kstep:steps/types@0.1.0; }",
    });
}

pub use types::kstep::steps::types::{Diagnostic, Severity};

/// [`format_diagnostic`], and the diagnostic recorded for `--report` ([`crate::report`]) as
/// a finding of `check`: the steps whose diagnostics are about the user's files (manifests,
/// dotenv files, Traefik values) turn them into lines through here, so every one printed is
/// also in the reports.
fn recorded(check: &str, file: &str, line: u32, column: u32, d: &Diagnostic) -> String {
    crate::report::record(crate::report::Finding {
        check: check.to_owned(),
        level: match d.severity {
            Severity::Error => crate::report::Level::Error,
            Severity::Warning => crate::report::Level::Warning,
            Severity::Info => crate::report::Level::Info,
        },
        message: d.message.clone(),
        path: file.to_owned(),
        line,
        column,
    });
    format_diagnostic(file, line, column, d)
}

/// `PLACE: [warning: |note: ]message`, PLACE being [`place`]`(file, line, column)`; when
/// that is empty, the message alone.
fn format_diagnostic(file: &str, line: u32, column: u32, d: &Diagnostic) -> String {
    let severity = match d.severity {
        Severity::Error => "",
        Severity::Warning => "warning: ",
        Severity::Info => "note: ",
    };
    let place = place(file, line, column);
    if place.is_empty() {
        format!("{severity}{}", d.message)
    } else {
        format!("{place}: {severity}{}", d.message)
    }
}

/// `file[:line[:column]]`; 0 means unknown and is left out.
fn place(file: &str, line: u32, column: u32) -> String {
    match (line, column) {
        (0, _) => file.to_owned(),
        (line, 0) => format!("{file}:{line}"),
        (line, column) => format!("{file}:{line}:{column}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_prints_diagnostics_its_way() {
        let d = |source: Option<&str>, line, column| Diagnostic {
            severity: Severity::Warning,
            message: "m".into(),
            source: source.map(Into::into),
            line,
            column,
        };
        // dotenv: the file, unless the step names another input without a position.
        assert_eq!(
            dotenv::format_diagnostic("f", &d(None, 3, 4)),
            "f:3:4: warning: m"
        );
        assert_eq!(
            dotenv::format_diagnostic("f", &d(Some("argument 1"), 0, 0)),
            "argument 1: warning: m"
        );
        assert_eq!(
            dotenv::format_diagnostic("f", &d(Some("s"), 3, 0)),
            "f:3: warning: m"
        );
        // kubeconfig: the step's source, or nothing.
        assert_eq!(
            kubeconfig::format_diagnostic(&d(Some("k"), 3, 0)),
            "k:3: warning: m"
        );
        assert_eq!(kubeconfig::format_diagnostic(&d(None, 0, 0)), "warning: m");
        // manifest: the source, or the command without a position.
        assert_eq!(
            manifest::format_diagnostic(&d(None, 3, 4)),
            "kstep render: warning: m"
        );
        // traefik: always the file.
        assert_eq!(
            traefik::format_diagnostic("v.yaml", &d(Some("s"), 0, 9)),
            "v.yaml: warning: m"
        );
    }
}
