//! WIT glue: exports the core as `kstep:steps/step` (world `custom-step`).

// wit-bindgen emits the canonical-ABI exports as `unsafe extern` functions.
#[allow(unsafe_code, missing_docs)]
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "custom-step" });
    use super::Step;
    export!(Step);
}

use bindings::exports::kstep::steps::step::{Error, Finding, Guest, Input, Output};
use bindings::kstep::steps::log::{Level, log};
use bindings::kstep::steps::types::Severity;

use crate::{Params, Stamp, apply, known_variables};

struct Step;

impl Guest for Step {
    fn run(input: Input) -> Result<Output, Error> {
        let params = Params::from_json(&input.params).map_err(fail)?;
        let stamp = Stamp::new(&params, &input.variables);
        if stamp.is_empty() {
            // Nothing to do is suspicious (the pipeline forgot `variables:`), not fatal: a local
            // dry run has no CI variables.
            let known: Vec<&str> = known_variables().collect();
            return Ok(Output {
                variables: Vec::new(),
                documents: None,
                findings: vec![Finding {
                    severity: Severity::Warning,
                    message: format!(
                        "no CI variable was passed, nothing stamped; list some of {} under `variables:`",
                        known.join(", ")
                    ),
                    document: None,
                    field: None,
                }],
            });
        }
        let mut documents = input
            .documents
            .iter()
            .map(|d| serde_json::from_str(d))
            .collect::<Result<Vec<serde_json::Value>, _>>()
            .map_err(|e| fail(format!("a document is not JSON: {e}")))?;
        let stamped = apply(&params, &stamp, &mut documents);
        log(
            Level::Info,
            &format!(
                "stamped {stamped} object(s) with {} label(s) and {} annotation(s)",
                stamp.labels.len(),
                stamp.annotations.len()
            ),
        );
        let documents = documents
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(format!("cannot write a document: {e}")))?;
        Ok(Output {
            variables: Vec::new(),
            documents: Some(documents),
            findings: Vec::new(),
        })
    }
}

fn fail(message: impl Into<String>) -> Error {
    Error {
        message: message.into(),
        findings: Vec::new(),
    }
}
