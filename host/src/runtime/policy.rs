//! The sandbox policies: which imports a step may have, and the linkers that provide exactly those.
//!
//! A `wasm32-wasip2` Rust guest imports clocks, random, stdio, environment and filesystem even when
//! it never uses them (std's runtime needs them). They are granted, but empty: no environment, no
//! arguments, no preopened directory, stdin closed. Sockets are never linked, so a component that
//! imports `wasi:sockets/*` is refused at load time instead of failing later.
//!
//! Two policies share that base:
//! - the built-in policy ([`check_imports`], [`link_allowed`]), for the embedded steps: WASI base
//!   plus the types-only `kstep:steps/types@0.1.0`;
//! - the custom policy ([`check_custom`], [`link_custom`]), for pluggable steps loaded from a
//!   `.wasm` file (world `kstep:steps/custom-step`): the same, plus `kstep:steps/log`, and the
//!   component must export `kstep:steps/step`. Both kstep interfaces must be of a supported release
//!   ([`SUPPORTED_STEPS_VERSIONS`]); any other release is refused with a message naming both.
//!   A custom step may also get one read-only preopened directory, per call
//!   ([`super::Sandbox`]).

use wasmtime::Engine;
use wasmtime::component::{Component, HasData, Linker, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random};
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi_io::bindings::wasi::io;

use super::StepState;

/// The WASI interfaces (without version) a step may import. Each is linked by [`link_allowed`].
pub const ALLOWED_IMPORTS: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:filesystem/preopens",
    "wasi:filesystem/types",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:random/random",
];

/// The WASI release the linked interfaces implement; imports must be `0.2.x`.
const WASI_VERSION_PREFIX: &str = "0.2.";

/// kstep's own types-only interface: a step that uses shared WIT types imports it. It is linked
/// as an empty instance, so it can never carry a function.
const KSTEP_TYPES: &str = "kstep:steps/types";
/// The `kstep:steps` release this host implements (from `wit/types.wit`, by build.rs).
pub const KSTEP_STEPS_VERSION: &str = env!("KSTEP_STEPS_VERSION");

/// The releases of `kstep:steps` a custom step may be built against: its `MAJOR.MINOR.x`
/// series (the linker answers a `0.1.z` import with the `0.1.0` definitions; a function added in
/// a later patch release would be reported missing at load time).
pub const SUPPORTED_STEPS_VERSIONS: &str = concat!(env!("KSTEP_STEPS_SERIES"), "x");
const SUPPORTED_STEPS_PREFIX: &str = env!("KSTEP_STEPS_SERIES");

/// The interface a custom step imports to log.
pub const KSTEP_LOG: &str = "kstep:steps/log";
/// The interface a custom step exports.
pub const KSTEP_STEP: &str = "kstep:steps/step";

/// Why a custom step is refused at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// It imports something outside the allow-list.
    Forbidden(String),
    /// It imports or exports a `kstep:steps` interface of a release this host does not support.
    Version {
        /// The import or export, with its version (`kstep:steps/step@0.2.0`).
        item: String,
        /// The version it carries.
        found: String,
    },
    /// It does not export `kstep:steps/step`.
    NoStepExport,
}

/// Checks a custom step: imports against the custom policy, `kstep:steps` versions, and the
/// `kstep:steps/step` export.
///
/// # Errors
/// The first reason to refuse it.
pub fn check_custom(engine: &Engine, component: &Component) -> Result<(), Refusal> {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        let (interface, version) = name.split_once('@').unwrap_or((name, ""));
        if interface == KSTEP_TYPES || interface == KSTEP_LOG {
            supported_release(name, version)?;
        } else if !is_allowed(name) {
            return Err(Refusal::Forbidden(name.to_owned()));
        }
    }
    let mut exports_step = false;
    for (name, _) in ty.exports(engine) {
        let (interface, version) = name.split_once('@').unwrap_or((name, ""));
        if interface == KSTEP_STEP {
            supported_release(name, version)?;
            exports_step = true;
        }
    }
    if exports_step {
        Ok(())
    } else {
        Err(Refusal::NoStepExport)
    }
}

/// Refuses a `kstep:steps` import or export (`name`) of a release outside
/// [`SUPPORTED_STEPS_VERSIONS`].
fn supported_release(name: &str, version: &str) -> Result<(), Refusal> {
    if version.starts_with(SUPPORTED_STEPS_PREFIX) {
        Ok(())
    } else {
        Err(Refusal::Version {
            item: name.to_owned(),
            found: version.to_owned(),
        })
    }
}

/// Checks every import of `component` against [`ALLOWED_IMPORTS`].
///
/// # Errors
/// The full name of the first import that is not allowed.
pub fn check_imports(engine: &Engine, component: &Component) -> Result<(), String> {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        if !is_allowed(name) {
            return Err(name.to_owned());
        }
    }
    Ok(())
}

/// `wasi:cli/stdout@0.2.6` is allowed when `wasi:cli/stdout` is listed and the version is 0.2.x.
fn is_allowed(import: &str) -> bool {
    let (interface, version) = import.split_once('@').unwrap_or((import, ""));
    if interface == KSTEP_TYPES {
        return version == KSTEP_STEPS_VERSION;
    }
    ALLOWED_IMPORTS.contains(&interface) && version.starts_with(WASI_VERSION_PREFIX)
}

/// Links what the custom policy grants: everything [`link_allowed`] links, plus
/// `kstep:steps/log` (implemented in [`crate::steps::custom`]).
///
/// # Errors
/// When an interface is linked twice (a bug).
pub fn link_custom(linker: &mut Linker<StepState>) -> wasmtime::Result<()> {
    link_allowed(linker)?;
    crate::steps::custom::link_log(linker)
}

struct HasTable;

impl HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

/// Links exactly [`ALLOWED_IMPORTS`] (nothing from sockets). The functions that can block
/// (filesystem, poll, streams) are the async implementations, so that a blocked guest is a
/// pending future the wall-clock limit can drop ([`super::Runtime::call_captured_in`]).
///
/// # Errors
/// When an interface is linked twice (a bug).
pub fn link_allowed(linker: &mut Linker<StepState>) -> wasmtime::Result<()> {
    linker.instance(&format!("{KSTEP_TYPES}@{KSTEP_STEPS_VERSION}"))?;
    let l = linker;
    cli::environment::add_to_linker::<StepState, WasiCli>(l, StepState::cli)?;
    cli::exit::add_to_linker::<StepState, WasiCli>(l, StepState::cli)?;
    cli::stdin::add_to_linker::<StepState, WasiCli>(l, StepState::cli)?;
    cli::stdout::add_to_linker::<StepState, WasiCli>(l, StepState::cli)?;
    cli::stderr::add_to_linker::<StepState, WasiCli>(l, StepState::cli)?;
    cli::terminal_input::add_to_linker::<StepState, WasiCli>(l, StepState::cli)?;
    cli::terminal_output::add_to_linker::<StepState, WasiCli>(l, StepState::cli)?;
    cli::terminal_stdin::add_to_linker::<StepState, WasiCli>(l, StepState::cli)?;
    cli::terminal_stdout::add_to_linker::<StepState, WasiCli>(l, StepState::cli)?;
    cli::terminal_stderr::add_to_linker::<StepState, WasiCli>(l, StepState::cli)?;
    clocks::monotonic_clock::add_to_linker::<StepState, WasiClocks>(l, StepState::clocks)?;
    clocks::wall_clock::add_to_linker::<StepState, WasiClocks>(l, StepState::clocks)?;
    filesystem::preopens::add_to_linker::<StepState, WasiFilesystem>(l, StepState::filesystem)?;
    filesystem::types::add_to_linker::<StepState, WasiFilesystem>(l, StepState::filesystem)?;
    io::error::add_to_linker::<StepState, HasTable>(l, |t| t.ctx().table)?;
    io::poll::add_to_linker::<StepState, HasTable>(l, |t| t.ctx().table)?;
    io::streams::add_to_linker::<StepState, HasTable>(l, |t| t.ctx().table)?;
    random::random::add_to_linker::<StepState, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure::add_to_linker::<StepState, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<StepState, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_interfaces() {
        assert!(is_allowed("wasi:cli/stdout@0.2.6"));
        assert!(!is_allowed("wasi:cli/stdout@0.3.0"));
        assert!(!is_allowed("wasi:sockets/tcp@0.2.6"));
        assert!(!is_allowed("kstep-test:probe/exfiltrate"));
        assert!(is_allowed("kstep:steps/types@0.1.0"));
        assert!(!is_allowed("kstep:steps/types@0.2.0"));
        // The log import is for custom steps only.
        assert!(!is_allowed("kstep:steps/log@0.1.0"));
    }
}
