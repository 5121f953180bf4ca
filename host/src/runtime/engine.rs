//! The one wasmtime [`Config`](wasmtime::Config) kstep runs steps with.
//!
//! Shared by the runtime ([`super::Runtime`]) and by `host/build.rs`, which includes this file
//! by path to precompile the built-in steps: wasmtime only loads native code compiled with
//! compatible settings, so both sides must build their engine from the same function.
//! Keep this file free of crate-internal references for that reason.

/// The deepest wasm stack a guest may use.
pub const MAX_WASM_STACK: usize = 1 << 20;

/// Stack of the fiber each call runs on: the guest's wasm stack plus room for the host
/// functions (WASI) it calls, which run on the same stack.
pub const ASYNC_STACK: usize = MAX_WASM_STACK + (2 << 20);

/// The engine settings: epoch interruption (CPU budget, and the periodic yield that lets the
/// wall-clock timer win), the stack sizes above, the component model. Native unwind tables
/// and the native-to-wasm address map are left out: they only serve native debuggers and the
/// wasm offsets of backtraces, which kstep never shows, and they would make the embedded
/// built-in steps (and every cache entry) bigger and slower to load.
pub fn config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK)
        .native_unwind_info(false)
        .generate_address_map(false)
        .wasm_component_model(true);
    config
}
