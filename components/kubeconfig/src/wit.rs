//! WIT glue: exports the core as the `kstep:steps/kubeconfig` interface.

// wit-bindgen emits the canonical-ABI exports as `unsafe extern` functions.
#[allow(unsafe_code, missing_docs)]
mod bindings {
    wit_bindgen::generate!({ path: "../../wit", world: "kubeconfig-step" });
    use super::Step;
    export!(Step);
}

use bindings::exports::kstep::steps::kubeconfig::Guest;
use bindings::kstep::steps::types::{Diagnostic, Severity};

struct Step;

impl Guest for Step {
    fn encode(kubeconfig: Vec<u8>) -> Result<String, Diagnostic> {
        crate::masked::encode(&kubeconfig).map_err(|e| Diagnostic {
            severity: Severity::Error,
            message: e.to_string(),
            source: None,
            line: 0,
            column: 0,
        })
    }
}
