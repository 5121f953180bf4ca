//! Calls into the built-in dotenv step (`kstep:steps/dotenv`).

use crate::runtime::{Limits, Runtime, StepError};

#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({ path: "../wit", world: "dotenv-step" });
}

use bindings::DotenvStep;
pub use bindings::exports::kstep::steps::dotenv::{Entry, Flavor};
pub use bindings::kstep::steps::types::{Diagnostic, Severity};

/// Parses a dotenv file inside the sandbox.
///
/// # Errors
/// The outer error is a sandbox failure; the inner `Err` holds the file's diagnostics.
pub fn parse(
    runtime: &Runtime,
    text: &[u8],
    flavor: Flavor,
    environment: &Vec<(String, String)>,
) -> Result<Result<Vec<Entry>, Vec<Diagnostic>>, StepError> {
    let step = runtime.builtin("dotenv")?;
    runtime.call(&step, &Limits::default(), |store, instance| {
        DotenvStep::new(&mut *store, instance)?
            .kstep_steps_dotenv()
            .call_parse(store, text, flavor, environment)
    })
}
