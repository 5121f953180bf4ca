//! WIT glue: exports the core as the `kstep:steps/traefik` interface.

// wit-bindgen emits the canonical-ABI exports as `unsafe extern` functions.
#[allow(unsafe_code, missing_docs)]
mod bindings {
    wit_bindgen::generate!({ path: "../../wit", world: "traefik-step" });
    use super::Step;
    export!(Step);
}

use bindings::exports::kstep::steps::traefik::Guest;
use bindings::kstep::steps::types::{Diagnostic, Severity};

struct Step;

impl Guest for Step {
    fn render(values: String) -> Result<String, Vec<Diagnostic>> {
        crate::render::render(&values).map_err(|e| {
            vec![Diagnostic {
                severity: Severity::Error,
                message: e,
                source: None,
                line: 0,
                column: 0,
            }]
        })
    }
}
