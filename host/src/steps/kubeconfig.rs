//! Calls into the built-in kubeconfig step (`kstep:builtin/kubeconfig`).
//!
//! [`decode`] registers every secret the step reports with the masker inside the call, before
//! the runtime forwards whatever the guest printed and before the caller can print anything.

use crate::runtime::{Limits, Runtime, StepError};

#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/builtin",
        world: "kubeconfig-step",
        with: { "kstep:steps/types": crate::steps::types::kstep::steps::types },
        exports: { default: async },
    });
}

pub use crate::steps::{Diagnostic, Severity};
use bindings::KubeconfigStep;
pub use bindings::exports::kstep::builtin::kubeconfig::{
    Auth, AuthProvider, BasicAuth, ClientCertificate, Connection, DecodeFailure, Decoded,
    ExecPlugin, Input, InputForm, Material,
};

/// Decodes `inputs` and selects `context` (or the current-context) inside the sandbox.
///
/// Every secret the step found (in any input, of any user) is registered with
/// [`crate::secrets::register`] before this returns, on success and on failure.
///
/// # Errors
/// The outer error is a sandbox failure; the inner `Err` holds the diagnostics.
pub fn decode(
    runtime: &Runtime,
    inputs: &[Input],
    context: Option<&str>,
) -> Result<Result<Decoded, DecodeFailure>, StepError> {
    call_decode(runtime, inputs, context, true)
}

/// [`decode`] without registering the secrets with the masker: only for `kstep kubeconfig
/// encode`, whose requested output is the secret itself (masking it would corrupt it).
///
/// # Errors
/// As [`decode`].
pub fn inspect(
    runtime: &Runtime,
    inputs: &[Input],
    context: Option<&str>,
) -> Result<Result<Decoded, DecodeFailure>, StepError> {
    call_decode(runtime, inputs, context, false)
}

fn call_decode(
    runtime: &Runtime,
    inputs: &[Input],
    context: Option<&str>,
    register: bool,
) -> Result<Result<Decoded, DecodeFailure>, StepError> {
    let step = runtime.builtin("kubeconfig")?;
    runtime.call(&step, &Limits::default(), async |store, instance| {
        let result = KubeconfigStep::new(&mut *store, instance)?
            .kstep_builtin_kubeconfig()
            .call_decode(store, inputs, context)
            .await?;
        // Inside the call: the runtime forwards the guest's output only after this returns.
        if register {
            let secrets = match &result {
                Ok(decoded) => &decoded.secrets,
                Err(failure) => &failure.secrets,
            };
            for secret in secrets {
                crate::secrets::register(secret);
            }
        }
        Ok(result)
    })
}

/// The minimal kubeconfig (one cluster, user and context) for `connection`.
///
/// # Errors
/// A sandbox failure.
pub fn render(runtime: &Runtime, connection: &Connection) -> Result<String, StepError> {
    let step = runtime.builtin("kubeconfig")?;
    runtime.call(&step, &Limits::default(), async |store, instance| {
        KubeconfigStep::new(&mut *store, instance)?
            .kstep_builtin_kubeconfig()
            .call_render(store, connection)
            .await
    })
}

/// The one-line base64 value of a masked GitLab variable for `kubeconfig`, or the rule it breaks.
///
/// # Errors
/// The outer error is a sandbox failure; the inner `Err` says what is wrong.
pub fn encode(
    runtime: &Runtime,
    kubeconfig: &[u8],
) -> Result<Result<String, Diagnostic>, StepError> {
    let step = runtime.builtin("kubeconfig")?;
    runtime.call(&step, &Limits::default(), async |store, instance| {
        KubeconfigStep::new(&mut *store, instance)?
            .kstep_builtin_kubeconfig()
            .call_encode(store, kubeconfig)
            .await
    })
}

/// `SOURCE:LINE:COL: message` (parts that are unknown are left out).
pub fn format_diagnostic(d: &Diagnostic) -> String {
    super::format_diagnostic(d.source.as_deref().unwrap_or(""), d.line, d.column, d)
}
