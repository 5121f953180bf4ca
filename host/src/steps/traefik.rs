//! Calls into the built-in Traefik step (`kstep:builtin/traefik`): [`render`] turns a values file
//! into the Kubernetes manifests of a Traefik v3 deployment, [`migrate`] turns a Traefik 1.x
//! `traefik.toml` into v3 static configuration. Both are pure functions of their text input.
//!
//! ```no_run
//! # fn demo(runtime: &kstep::runtime::Runtime) -> anyhow::Result<()> {
//! use kstep::steps::traefik::{self, ManifestFormat};
//! let values = std::fs::read_to_string("traefik-values.yaml")?;
//! match traefik::render(runtime, &values, ManifestFormat::Json)? {
//!     Ok(rendered) => {
//!         let list: serde_json::Value = serde_json::from_str(&rendered.manifests)?;
//!         // list["items"]: the manifests, ready to apply
//!     }
//!     Err(diagnostics) => {
//!         for d in &diagnostics {
//!             kstep::output::stderr_line(&traefik::format_diagnostic("traefik-values.yaml", d));
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Values, defaults and design: `docs/traefik.md`.

use crate::runtime::{Limits, Runtime, StepError};

#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/builtin",
        world: "traefik-step",
        with: { "kstep:steps/types": crate::steps::types::kstep::steps::types },
        exports: { default: async },
    });
}

pub use crate::steps::{Diagnostic, Severity};
use bindings::TraefikStep;
pub use bindings::exports::kstep::builtin::traefik::{
    ConfigFormat, ManifestFormat, Migration, Rendered, SettingNote,
};

/// The largest values file or traefik.toml kstep reads (1 MiB: both are a few hundred bytes).
pub const MAX_INPUT_BYTES: u64 = 1 << 20;

/// Renders the manifests for `values` (YAML text; empty means every default).
///
/// # Errors
/// The outer error is a sandbox failure; the inner `Err` holds every problem in the values.
pub fn render(
    runtime: &Runtime,
    values: &str,
    format: ManifestFormat,
) -> Result<Result<Rendered, Vec<Diagnostic>>, StepError> {
    let step = runtime.builtin("traefik")?;
    runtime.call(&step, &Limits::default(), async |store, instance| {
        TraefikStep::new(&mut *store, instance)?
            .kstep_builtin_traefik()
            .call_render(store, values, format)
            .await
    })
}

/// Migrates a Traefik 1.x `traefik.toml` to v3 static configuration.
///
/// # Errors
/// The outer error is a sandbox failure; the inner `Err` holds the TOML syntax error.
pub fn migrate(
    runtime: &Runtime,
    traefik_toml: &str,
    format: ConfigFormat,
) -> Result<Result<Migration, Vec<Diagnostic>>, StepError> {
    let step = runtime.builtin("traefik")?;
    runtime.call(&step, &Limits::default(), async |store, instance| {
        TraefikStep::new(&mut *store, instance)?
            .kstep_builtin_traefik()
            .call_migrate(store, traefik_toml, format)
            .await
    })
}

/// `FILE:LINE:COL: [warning: ]message`, the form every kstep diagnostic takes.
pub fn format_diagnostic(file: &str, d: &Diagnostic) -> String {
    super::recorded("kstep/traefik", file, d.line, d.column, d)
}

/// `FILE:LINE:COL: warning|note: KEY: reason` for a migration note.
pub fn format_note(file: &str, label: &str, n: &SettingNote) -> String {
    format!(
        "{}: {label}: {}: {}",
        super::place(file, n.line, n.column),
        n.key,
        n.reason
    )
}
