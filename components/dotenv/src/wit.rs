//! WIT glue: exports the core as the `kstep:builtin/dotenv` interface.

// wit-bindgen emits the canonical-ABI exports as `unsafe extern` functions.
#[allow(unsafe_code, missing_docs)]
mod bindings {
    // `generate_all`: the shared `kstep:steps/types` come from the public package.
    wit_bindgen::generate!({ path: "../../wit/builtin", world: "dotenv-step", generate_all });
    use super::Step;
    export!(Step);
}

use bindings::exports::kstep::builtin::dotenv::{
    Entry, Flavor, Guest, Limits, Parsed, Report, SetOutcome,
};
use bindings::kstep::steps::types::{Diagnostic, Severity};

use crate::{Problem, compose, gitlab};

struct Step;

impl Guest for Step {
    fn parse(
        text: Vec<u8>,
        flavor: Flavor,
        environment: Vec<(String, String)>,
    ) -> Result<Parsed, Vec<Diagnostic>> {
        let parsed = match flavor {
            Flavor::Gitlab => gitlab::parse(&text).map_err(diagnostics)?,
            Flavor::Compose => {
                compose::parse(&text, &environment).map_err(|p| vec![diagnostic(p)])?
            }
        };
        Ok(Parsed {
            entries: parsed.entries.into_iter().map(entry_out).collect(),
            warnings: diagnostics(parsed.warnings),
        })
    }

    fn check(text: Vec<u8>, limits: Limits) -> Report {
        let report = gitlab::check(&text, limits_in(limits));
        Report {
            problems: diagnostics(report.problems),
            variables: report.variables,
            bytes: report.bytes,
            encoding: report.encoding.map(|e| e.name().to_owned()),
            gitlab_message: report.gitlab_message,
        }
    }

    fn set(
        existing: Option<Vec<u8>>,
        assignments: Vec<(String, String)>,
        limits: Limits,
    ) -> Result<SetOutcome, Vec<Diagnostic>> {
        let outcome = gitlab::set(existing.as_deref(), &assignments, limits_in(limits))
            .map_err(diagnostics)?;
        Ok(SetOutcome {
            text: outcome.text,
            added: outcome.added,
            replaced: outcome.replaced,
            warnings: diagnostics(outcome.warnings),
        })
    }

    fn to_gitlab(entries: Vec<Entry>) -> Result<String, Vec<Diagnostic>> {
        let entries: Vec<crate::Entry> = entries
            .into_iter()
            .map(|e| crate::Entry {
                key: e.key,
                value: e.value,
                line: e.line,
            })
            .collect();
        gitlab::render(&entries).map_err(diagnostics)
    }
}

fn limits_in(limits: Limits) -> gitlab::Limits {
    gitlab::Limits {
        max_bytes: limits.max_bytes,
        max_vars: limits.max_vars,
    }
}

fn entry_out(e: crate::Entry) -> Entry {
    Entry {
        key: e.key,
        value: e.value,
        line: e.line,
    }
}

fn diagnostics(problems: Vec<Problem>) -> Vec<Diagnostic> {
    problems.into_iter().map(diagnostic).collect()
}

fn diagnostic(p: Problem) -> Diagnostic {
    Diagnostic {
        severity: match p.severity {
            crate::Severity::Error => Severity::Error,
            crate::Severity::Warning => Severity::Warning,
        },
        message: p.message,
        source: p.source,
        line: p.line,
        column: p.column,
    }
}
