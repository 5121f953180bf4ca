//! Component loading and the sandbox every step runs in.
//!
//! One [`Runtime`] per process holds the wasmtime [`Engine`] (settings in [`engine`], shared
//! with build.rs), the [`Linker`]s with exactly the interfaces a step may import ([`policy`]: one
//! for built-in steps, one for custom steps, which may also log), the compile cache of custom
//! steps ([`cache`]) and the epoch ticker. Built-in steps load from native code embedded at build
//! time. Each call gets a fresh [`Store`]: no environment, no arguments, no sockets,
//! stdout/stderr captured in memory, a CPU budget, a wall-clock limit, one memory cap for all
//! memories and tables ([`limiter`]) and a cap on what the guest can make the host allocate; no
//! preopened directory either, except the one read-only directory a pipeline may grant a custom
//! step ([`Sandbox`]).
//!
//! The wall-clock limit is why calls are async: with the async WASI bindings a guest blocked in
//! a host call (a sleep, a poll on a clock) is a pending future, so a timer around the call wins
//! and dropping the call unwinds the guest; and running wasm yields to the timer at every epoch
//! tick. The synchronous bindings block inside the host, where nothing can interrupt them. Each
//! call is driven by a current-thread tokio runtime on a dedicated OS thread, so callers stay
//! synchronous and a call works the same from a tokio worker or a plain thread (a nested
//! `block_on` would panic). Wasm runs on a fiber of [`engine::ASYNC_STACK`] bytes; the thread
//! and the runtime cost about 50 µs per call.

pub mod cache;
mod engine;
pub mod limiter;
pub mod policy;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Instance, InstancePre, Linker, ResourceTable};
use wasmtime::{Engine, Precompiled, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

use crate::output;

/// How often the epoch advances; the CPU budget is counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Stack of the thread a call runs on: host frames only (wasm runs on its fiber), but WASI
/// implementations and the tokio runtime are not frugal.
const CALL_THREAD_STACK: usize = 4 << 20;
/// Bytes of stdout/stderr kept per stream and call; a guest that writes more gets a write error.
pub const CAPTURE_LIMIT: usize = 1 << 20;

/// Resource limits of one step call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time the guest may run (wall-clock time spent in wasm, counted in epoch ticks).
    pub cpu: Duration,
    /// Time the whole call may take, whatever the guest does (blocked in a sleep or a poll
    /// included).
    pub wall: Duration,
    /// Linear memories and tables the guest may grow to, together, in bytes.
    pub memory: usize,
    /// Bytes the guest may make the host allocate in one call (strings, lists it returns).
    pub hostcall: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu: Duration::from_secs(2),
            wall: Duration::from_secs(10),
            memory: 128 << 20,
            hostcall: 64 << 20,
        }
    }
}

/// Why a step could not be loaded or did not complete.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The guest ran past its CPU budget.
    #[error("step `{step}` exceeded its {} CPU budget", human_duration(*budget))]
    CpuBudget {
        /// The step's name.
        step: String,
        /// The budget it had.
        budget: Duration,
    },
    /// The call ran past its wall-clock limit (the guest may have been blocked in a host call).
    #[error("step `{step}` exceeded its {} wall-clock limit", spaced_duration(*limit))]
    WallClock {
        /// The step's name.
        step: String,
        /// The limit it had.
        limit: Duration,
    },
    /// The guest tried to grow its memories and tables past the cap.
    #[error(
        "step `{step}` exceeded its {} MiB memory limit (growing a {what}; all linear memories \
         and tables count together)",
        limit >> 20
    )]
    MemoryLimit {
        /// The step's name.
        step: String,
        /// The cap, in bytes.
        limit: usize,
        /// What grew: `linear memory` or `table`.
        what: &'static str,
    },
    /// The guest tried to create more instances, memories or tables than a step may.
    #[error("step `{step}` exceeded its limit of {limit} {what}")]
    TooMany {
        /// The step's name.
        step: String,
        /// `instances`, `memories` or `tables`.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The guest trapped (panic, stack overflow, unreachable, bad memory access…).
    #[error("step `{step}` trapped: {reason}")]
    Trapped {
        /// The step's name.
        step: String,
        /// What the trap says, with the guest's last words on stderr when it left any.
        reason: String,
    },
    /// The component imports something kstep does not grant.
    #[error("step `{step}` is refused: it imports `{import}`, which kstep does not grant to steps")]
    ForbiddenImport {
        /// The step's name.
        step: String,
        /// The import, as the component names it.
        import: String,
    },
    /// A custom step built against a `kstep:steps` release this host does not support.
    #[error(
        "step `{step}` is built for kstep:steps@{found} (it uses `{item}`), but this kstep \
         implements kstep:steps@{} and runs steps built for kstep:steps@{}; rebuild the step \
         against a supported WIT",
        policy::KSTEP_STEPS_VERSION,
        policy::SUPPORTED_STEPS_VERSIONS
    )]
    IncompatibleVersion {
        /// The step's name.
        step: String,
        /// The import or export that carries the version.
        item: String,
        /// The version the step was built for.
        found: String,
    },
    /// The component does not export what the caller needs, or is not a valid component.
    #[error("step `{step}` could not be loaded: {reason}")]
    Load {
        /// The step's name.
        step: String,
        /// Why.
        reason: String,
    },
}

/// The state of one call's [`Store`].
pub struct StepState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: limiter::StepLimiter,
    /// What the guest logged so far through `kstep:steps/log` (custom steps only).
    pub(crate) log: crate::steps::custom::LogState,
}

impl WasiView for StepState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// What a call may see beyond the empty default sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sandbox {
    /// One directory, preopened read-only; the caller has checked it is one the pipeline grants.
    pub dir: Option<GrantedDir>,
}

/// A host directory a custom step may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantedDir {
    /// The directory on the host (canonical).
    pub host: PathBuf,
    /// Where the guest sees it (`/policies`).
    pub guest: String,
}

/// A loaded, import-checked, pre-linked component.
pub struct LoadedStep {
    name: String,
    pre: InstancePre<StepState>,
    precompiled: bool,
}

impl LoadedStep {
    /// The name the step is reported under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The component, for callers that inspect its types.
    pub fn component(&self) -> &Component {
        self.pre.component()
    }

    /// Whether a built-in step was loaded from the native code embedded at build time (`false`
    /// when this machine could not run it and it was compiled in memory, and for custom steps).
    pub fn precompiled(&self) -> bool {
        self.precompiled
    }
}

/// What a guest wrote on its stdout and stderr during one call.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Captured {
    /// Guest stdout.
    pub stdout: Vec<u8>,
    /// Guest stderr.
    pub stderr: Vec<u8>,
}

/// The engine, linker, compile cache and epoch ticker shared by every call in a process.
pub struct Runtime {
    engine: Engine,
    linker: Linker<StepState>,
    custom_linker: Linker<StepState>,
    cache: Option<cache::CompileCache>,
    ticker_stop: Arc<AtomicBool>,
    builtins: Mutex<HashMap<&'static str, Arc<LoadedStep>>>,
}

impl Runtime {
    /// Creates the runtime with the compile cache in its default place
    /// ([`cache::CompileCache::default_dir`]); caching is skipped when no place is writable.
    ///
    /// # Errors
    /// When the engine or linker cannot be configured (a bug, not a user error).
    pub fn new() -> anyhow::Result<Self> {
        Self::with_cache(cache::CompileCache::default_dir().map(cache::CompileCache::new))
    }

    /// Creates the runtime with an explicit compile cache (or none).
    ///
    /// # Errors
    /// When the engine or linker cannot be configured.
    pub fn with_cache(cache: Option<cache::CompileCache>) -> anyhow::Result<Self> {
        let engine = Engine::new(&engine::config())?;
        let mut linker = Linker::new(&engine);
        policy::link_allowed(&mut linker)?;
        let mut custom_linker = Linker::new(&engine);
        policy::link_custom(&mut custom_linker)?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(&engine, Arc::clone(&ticker_stop))?;
        Ok(Self {
            engine,
            linker,
            custom_linker,
            cache,
            ticker_stop,
            builtins: Mutex::default(),
        })
    }

    /// The engine, for precompilation and type inspection.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles (or loads from the cache) `wasm`, checks its imports against the policy and
    /// pre-links it.
    ///
    /// # Errors
    /// [`StepError::ForbiddenImport`] naming the first import outside the allow-list, or
    /// [`StepError::Load`] when the bytes are not a component wasmtime accepts.
    pub fn load(&self, name: &str, wasm: &[u8]) -> Result<LoadedStep, StepError> {
        let component = self.compile(name, wasm)?;
        self.checked_builtin(name, &component, false)
    }

    fn checked_builtin(
        &self,
        name: &str,
        component: &Component,
        precompiled: bool,
    ) -> Result<LoadedStep, StepError> {
        policy::check_imports(&self.engine, component).map_err(|import| {
            StepError::ForbiddenImport {
                step: name.to_owned(),
                import,
            }
        })?;
        let mut step = self.pre_link(name, &self.linker, component)?;
        step.precompiled = precompiled;
        Ok(step)
    }

    /// Like [`Runtime::load`], for a custom step (world `kstep:steps/custom-step`): checked
    /// against the custom policy ([`policy::check_custom`]) and linked with `kstep:steps/log`.
    ///
    /// # Errors
    /// [`StepError::ForbiddenImport`], [`StepError::IncompatibleVersion`] for a step built
    /// against an unsupported `kstep:steps` release, or [`StepError::Load`] (not a component,
    /// no `kstep:steps/step` export, an import the linker cannot satisfy).
    pub fn load_custom(&self, name: &str, wasm: &[u8]) -> Result<LoadedStep, StepError> {
        let component = self.compile(name, wasm)?;
        policy::check_custom(&self.engine, &component).map_err(|refusal| match refusal {
            policy::Refusal::Forbidden(import) => StepError::ForbiddenImport {
                step: name.to_owned(),
                import,
            },
            policy::Refusal::Version { item, found } => StepError::IncompatibleVersion {
                step: name.to_owned(),
                item,
                found,
            },
            policy::Refusal::NoStepExport => StepError::Load {
                step: name.to_owned(),
                reason: format!(
                    "it does not export `{}@{}`: is it built for the WIT world \
                     `kstep:steps/custom-step`?",
                    policy::KSTEP_STEP,
                    policy::KSTEP_STEPS_VERSION
                ),
            },
        })?;
        self.pre_link(name, &self.custom_linker, &component)
    }

    fn compile(&self, name: &str, wasm: &[u8]) -> Result<Component, StepError> {
        match &self.cache {
            Some(cache) => cache.load(&self.engine, wasm),
            None => Component::new(&self.engine, wasm).map_err(anyhow::Error::from),
        }
        .map_err(|e| StepError::Load {
            step: name.to_owned(),
            reason: format!("{e:#}"),
        })
    }

    fn pre_link(
        &self,
        name: &str,
        linker: &Linker<StepState>,
        component: &Component,
    ) -> Result<LoadedStep, StepError> {
        let pre = linker
            .instantiate_pre(component)
            .map_err(|e| StepError::Load {
                step: name.to_owned(),
                reason: format!("{e:#}"),
            })?;
        Ok(LoadedStep {
            name: name.to_owned(),
            pre,
            precompiled: false,
        })
    }

    /// The embedded step called `name`, loaded once per runtime.
    ///
    /// # Errors
    /// [`StepError::Load`] for an unknown name or a component that fails to load.
    pub fn builtin(&self, name: &str) -> Result<Arc<LoadedStep>, StepError> {
        let builtin = crate::builtins::get(name).ok_or_else(|| StepError::Load {
            step: name.to_owned(),
            reason: "no such built-in step".into(),
        })?;
        let mut loaded = self
            .builtins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(step) = loaded.get(builtin.name) {
            return Ok(Arc::clone(step));
        }
        let step = Arc::new(match self.embedded_native(builtin) {
            Some(component) => self.checked_builtin(builtin.name, &component, true)?,
            None => {
                let load = |reason: String| StepError::Load {
                    step: builtin.name.to_owned(),
                    reason,
                };
                let wasm = builtin.wasm().map_err(|e| load(e.to_string()))?;
                let component =
                    Component::new(&self.engine, wasm).map_err(|e| load(format!("{e:#}")))?;
                self.checked_builtin(builtin.name, &component, false)?
            }
        });
        loaded.insert(builtin.name, Arc::clone(&step));
        Ok(step)
    }

    /// The built-in's native code embedded by build.rs, when this machine can run it: wasmtime
    /// refuses code from another wasmtime version, other engine settings or for CPU features
    /// this machine lacks, and the caller then compiles in memory (never from the cache).
    fn embedded_native(&self, builtin: &crate::builtins::Builtin) -> Option<Component> {
        let native = builtin.native().ok()?;
        if Engine::detect_precompiled(&native) != Some(Precompiled::Component) {
            return None;
        }
        // SAFETY: `native` is `Engine::precompile_component` output that build.rs produced for
        // this very binary (embedded gzip-compressed with `include_bytes!`, read-only in the
        // executable, inflated here), with the engine settings of `engine::config()`, which this
        // engine also uses; wasmtime checks its version, settings and the CPU features it needs
        // and returns an error, not UB, on any mismatch.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(&self.engine, &native) };
        component.ok()
    }

    /// Compiles `wasm` into the cache without instantiating it (for `kstep warm`).
    ///
    /// # Errors
    /// When compilation or the cache write fails.
    pub fn warm(&self, wasm: &[u8]) -> anyhow::Result<cache::Warmed> {
        match &self.cache {
            Some(cache) => cache.warm(&self.engine, wasm),
            None => anyhow::bail!("no compile cache directory is available (set KSTEP_CACHE_DIR)"),
        }
    }

    /// Instantiates `step` in a fresh sandboxed store and runs `f` against the instance on a
    /// dedicated thread. Whatever the guest printed is forwarded, masked, to stderr.
    ///
    /// # Errors
    /// Traps, exhausted budgets and host errors from `f`, as [`StepError`].
    pub fn call<T: Send>(
        &self,
        step: &LoadedStep,
        limits: &Limits,
        f: impl AsyncFnOnce(&mut Store<StepState>, &Instance) -> wasmtime::Result<T> + Send,
    ) -> Result<T, StepError> {
        let (result, captured) = self.call_captured_in(step, limits, &Sandbox::default(), f)?;
        output::guest_output(&step.name, &captured.stdout);
        output::guest_output(&step.name, &captured.stderr);
        result.map_err(|e| classify(&step.name, limits, &e, &captured.stderr))
    }

    /// Like [`Runtime::call`] but hands back what the guest printed instead of forwarding it,
    /// in a sandbox that may see one read-only directory. The outer error is a failure to start
    /// the call; the inner result is the call's. `f` runs with the store's async API
    /// (`call_async`, bindings generated with `exports: { default: async }`).
    ///
    /// # Errors
    /// When the granted directory cannot be opened, or the call thread cannot be spawned or
    /// panics.
    pub fn call_captured_in<T: Send>(
        &self,
        step: &LoadedStep,
        limits: &Limits,
        sandbox: &Sandbox,
        f: impl AsyncFnOnce(&mut Store<StepState>, &Instance) -> wasmtime::Result<T> + Send,
    ) -> Result<(wasmtime::Result<T>, Captured), StepError> {
        let stdout = MemoryOutputPipe::new(CAPTURE_LIMIT);
        let stderr = MemoryOutputPipe::new(CAPTURE_LIMIT);
        let mut wasi = WasiCtx::builder();
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        if let Some(dir) = &sandbox.dir {
            // Read-only at the WASI layer (no write, create, rename, unlink, set-times);
            // cap-std underneath refuses `..` and symlinks that lead out of the directory.
            wasi.preopened_dir(&dir.host, &dir.guest, FsPerms::ReadOnly)
                .map_err(|e| StepError::Load {
                    step: step.name.clone(),
                    reason: format!(
                        "cannot open the granted directory {}: {e:#}",
                        dir.host.display()
                    ),
                })?;
        }
        let wasi = wasi.build();
        let state = StepState {
            wasi,
            log: crate::steps::custom::LogState::new(&step.name),
            table: ResourceTable::new(),
            limits: limiter::StepLimiter::new(limits.memory),
        };
        let (cpu, wall) = (limits.cpu, limits.wall);
        let run = move || -> wasmtime::Result<T> {
            let executor = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()?;
            let result = executor.block_on(async move {
                let mut store = Store::new(&self.engine, state);
                store.limiter(|s| &mut s.limits);
                store.set_hostcall_fuel(limits.hostcall);
                // At every epoch tick: past the CPU budget the guest traps (`Trap::Interrupt`);
                // before it, the guest yields, so the wall-clock timer below gets to run even
                // when wasm spins without calling the host.
                let started = Instant::now();
                store.set_epoch_deadline(1);
                store.epoch_deadline_callback(move |_| {
                    Ok(if started.elapsed() >= cpu {
                        UpdateDeadline::Interrupt
                    } else {
                        UpdateDeadline::Yield(1)
                    })
                });
                let call = async {
                    let instance = step.pre.instantiate_async(&mut store).await?;
                    f(&mut store, &instance).await
                };
                // On timeout the call future is dropped: wasmtime unwinds the guest's fiber,
                // and the store goes with it.
                match tokio::time::timeout(wall, call).await {
                    Ok(result) => result,
                    Err(_elapsed) => Err(wasmtime::Error::new(WallClockExceeded)),
                }
            });
            // Blocking WASI work (a file read) still running cannot hold the call up: it was
            // abandoned with the call, and this does not wait for it.
            executor.shutdown_background();
            result
        };
        let result = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name(format!("step-{}", step.name))
                .stack_size(CALL_THREAD_STACK)
                .spawn_scoped(scope, run)
                .map(|handle| handle.join())
        });
        let result = match result {
            Ok(Ok(result)) => result,
            Ok(Err(_panic)) => {
                return Err(StepError::Trapped {
                    step: step.name.clone(),
                    reason: "the host panicked while running it".into(),
                });
            }
            Err(e) => {
                return Err(StepError::Trapped {
                    step: step.name.clone(),
                    reason: format!("could not start its thread: {e}"),
                });
            }
        };
        let captured = Captured {
            stdout: stdout.contents().to_vec(),
            stderr: stderr.contents().to_vec(),
        };
        Ok((result, captured))
    }

    /// Turns the error of a [`Runtime::call_captured_in`] call into the [`StepError`] a user
    /// should see (the same classification [`Runtime::call`] applies).
    pub fn classify_error(
        &self,
        step: &LoadedStep,
        limits: &Limits,
        error: &wasmtime::Error,
        stderr: &[u8],
    ) -> StepError {
        classify(&step.name, limits, error, stderr)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// The error a call ends with when its wall-clock limit passes.
#[derive(Debug, thiserror::Error)]
#[error("the wall-clock limit passed")]
struct WallClockExceeded;

/// Advances the engine's epoch every [`EPOCH_TICK`] until the runtime is dropped. The thread
/// holds only a weak reference so it never keeps an engine alive.
fn spawn_ticker(engine: &Engine, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })?;
    Ok(())
}

/// Turns a wasmtime error into the message a user should see: the trap or the root cause,
/// without wasm backtraces (they name internal function indices, useless to a user).
fn classify(step: &str, limits: &Limits, error: &wasmtime::Error, stderr: &[u8]) -> StepError {
    let step = step.to_owned();
    if error.is::<WallClockExceeded>() {
        return StepError::WallClock {
            step,
            limit: limits.wall,
        };
    }
    if let Some(over) = error.downcast_ref::<limiter::OverLimit>() {
        return StepError::MemoryLimit {
            step,
            limit: over.limit,
            what: over.what,
        };
    }
    // wasmtime's own refusal: "resource limit exceeded: instance count too high at 65".
    let chain = format!("{error:#}");
    for (desc, what, limit) in [
        ("instance count", "instances", limiter::MAX_INSTANCES),
        ("memory count", "memories", limiter::MAX_MEMORIES),
        ("table count", "tables", limiter::MAX_TABLES),
    ] {
        if chain.contains(&format!("resource limit exceeded: {desc} too high")) {
            return StepError::TooMany { step, what, limit };
        }
    }
    let reason = match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => {
            return StepError::CpuBudget {
                step,
                budget: limits.cpu,
            };
        }
        Some(trap) => trap.to_string(),
        None => error.root_cause().to_string(),
    };
    StepError::Trapped {
        step,
        reason: with_last_words(reason, stderr),
    }
}

/// Appends the last line a guest wrote on stderr (a Rust panic message, typically).
fn with_last_words(reason: String, stderr: &[u8]) -> String {
    // Masked whole before a line is picked, so the last line of a multi-line secret is too.
    let text = crate::secrets::mask(&String::from_utf8_lossy(stderr)).into_owned();
    // Rust's panic hook ends with a hint about RUST_BACKTRACE, useless to a user: the line
    // before it is the panic message.
    match text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
    {
        Some(last) => format!("{reason} ({})", last.trim()),
        None => reason,
    }
}

/// `10 s`, `1500 ms`: the wall-clock limit as users read it.
fn spaced_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

fn human_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
