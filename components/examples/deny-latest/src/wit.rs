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

use crate::{Params, check};

struct Step;

impl Guest for Step {
    fn run(input: Input) -> Result<Output, Error> {
        let params = Params::from_json(&input.params).map_err(fail)?;
        let documents = input
            .documents
            .iter()
            .map(|d| serde_json::from_str(d))
            .collect::<Result<Vec<serde_json::Value>, _>>()
            .map_err(|e| fail(format!("a document is not JSON: {e}")))?;
        let (findings, summary) = check(&params, &documents);
        log(
            Level::Info,
            &format!(
                "checked {} container(s) in {} workload(s): {} problem(s)",
                summary.containers,
                summary.workloads,
                findings.len()
            ),
        );
        Ok(Output {
            variables: Vec::new(),
            // A pure check: the documents flow on unchanged.
            documents: None,
            findings: findings
                .into_iter()
                .map(|f| Finding {
                    severity: match f.severity {
                        crate::Severity::Error => Severity::Error,
                        crate::Severity::Warning => Severity::Warning,
                    },
                    message: f.message,
                    document: Some(f.document),
                    field: Some(f.field),
                })
                .collect(),
        })
    }
}

fn fail(message: impl Into<String>) -> Error {
    Error {
        message: message.into(),
        findings: Vec::new(),
    }
}
