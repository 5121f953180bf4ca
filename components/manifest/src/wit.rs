//! WIT glue: exports the core as the `kstep:steps/manifest` interface.

// wit-bindgen emits the canonical-ABI exports as `unsafe extern` functions.
#[allow(unsafe_code, missing_docs)]
mod bindings {
    wit_bindgen::generate!({ path: "../../wit", world: "manifest-step" });
    use super::Step;
    export!(Step);
}

use bindings::exports::kstep::steps::manifest::{Document, Guest, Source};
use bindings::kstep::steps::types::{Diagnostic, Severity};

struct Step;

impl Guest for Step {
    fn render(sources: Vec<Source>) -> Result<Vec<Document>, Vec<Diagnostic>> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for source in sources {
            match crate::documents::parse_json(&source.text) {
                Ok(json) => out.push(Document {
                    json,
                    source: source.name,
                    index: 1,
                }),
                Err(e) => errors.push(Diagnostic {
                    severity: Severity::Error,
                    message: e.message,
                    source: Some(source.name),
                    line: e.line,
                    column: e.column,
                }),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}
