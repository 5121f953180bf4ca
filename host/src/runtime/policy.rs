//! The sandbox policy: which imports a step may have, and the linker that provides exactly those.
//!
//! A `wasm32-wasip2` Rust guest imports clocks, random, stdio, environment and filesystem even when
//! it never uses them (std's runtime needs them). They are granted, but empty: no environment, no
//! arguments, no preopened directory, stdin closed. Sockets are never linked, so a component that
//! imports `wasi:sockets/*` is refused at load time instead of failing later.

use wasmtime::Engine;
use wasmtime::component::{Component, HasData, Linker, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random, sync};
use wasmtime_wasi::random::WasiRandom;

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
/// The `kstep:steps` release this host implements.
pub const KSTEP_STEPS_VERSION: &str = "0.1.0";

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

struct HasTable;

impl HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

/// Links the synchronous implementations of exactly [`ALLOWED_IMPORTS`] (nothing from sockets).
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
    sync::filesystem::types::add_to_linker::<StepState, WasiFilesystem>(l, StepState::filesystem)?;
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<StepState, HasTable>(l, |t| {
        t.ctx().table
    })?;
    sync::io::poll::add_to_linker::<StepState, HasTable>(l, |t| t.ctx().table)?;
    sync::io::streams::add_to_linker::<StepState, HasTable>(l, |t| t.ctx().table)?;
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
    }
}
