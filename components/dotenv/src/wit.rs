//! WIT glue: exports the core as the `kstep:steps/dotenv` interface.

// wit-bindgen emits the canonical-ABI exports as `unsafe extern` functions.
#[allow(unsafe_code, missing_docs)]
mod bindings {
    wit_bindgen::generate!({ path: "../../wit", world: "dotenv-step" });
    use super::Step;
    export!(Step);
}

use bindings::exports::kstep::steps::dotenv::{Entry, Flavor, Guest};
use bindings::kstep::steps::types::{Diagnostic, Severity};

struct Step;

impl Guest for Step {
    fn parse(
        text: Vec<u8>,
        flavor: Flavor,
        _environment: Vec<(String, String)>,
    ) -> Result<Vec<Entry>, Vec<Diagnostic>> {
        match flavor {
            Flavor::Gitlab => crate::gitlab::parse(&text)
                .map(|entries| {
                    entries
                        .into_iter()
                        .map(|e| Entry {
                            key: e.key,
                            value: e.value,
                            line: e.line,
                        })
                        .collect()
                })
                .map_err(|errors| errors.into_iter().map(diagnostic).collect()),
            Flavor::Compose => Err(vec![Diagnostic {
                severity: Severity::Error,
                message: "the compose flavor is not implemented yet".into(),
                source: None,
                line: 0,
                column: 0,
            }]),
        }
    }
}

fn diagnostic(e: crate::gitlab::ParseError) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        message: e.message,
        source: None,
        line: e.line,
        column: e.column,
    }
}
