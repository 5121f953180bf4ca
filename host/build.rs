//! Builds the built-in steps (and the sandbox test fixtures) for `wasm32-wasip2`, precompiles
//! the built-in steps to native code with the runtime's engine settings
//! (`src/runtime/engine.rs`, included below), and generates `builtins.rs`, which embeds both, so
//! the `kstep` binary is self-contained and never loads a built-in step from a writable cache.
//!
//! The nested cargo uses its own target directory: sharing the outer one deadlocks on cargo's
//! build lock. Its profile `component` (root Cargo.toml) optimises for size with LTO without
//! slowing down host builds.

use std::error::Error;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// The runtime's engine settings, shared so the precompiled code matches the engine that loads
/// it.
#[allow(dead_code)]
#[path = "src/runtime/engine.rs"]
mod engine;

/// (step name, crate, WIT world) of every built-in step.
const BUILTINS: &[(&str, &str, &str)] = &[
    ("dotenv", "kstep-dotenv", "dotenv-step"),
    ("kubeconfig", "kstep-kubeconfig", "kubeconfig-step"),
    ("manifest", "kstep-manifest", "manifest-step"),
    ("traefik", "kstep-traefik", "traefik-step"),
];

/// Components built alongside but not embedded: ones that misbehave on purpose (used only by
/// tests) and the example custom steps (`components/examples/`, loaded from disk by `kstep run`).
const FIXTURES: &[&str] = &[
    "kstep-fixture-hostile",
    "kstep-fixture-forbidden-import",
    "kstep-fixture-step-hostile",
    "kstep-fixture-step-socket",
    "kstep-fixture-step-future-version",
    "kstep-example-deny-latest",
    "kstep-example-ci-labels",
];

const WASM_TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "component";

fn main() -> Result<(), Box<dyn Error>> {
    let host_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = host_dir
        .parent()
        .ok_or("host/ has no parent")?
        .to_path_buf();
    for watched in [
        "host/src/runtime/engine.rs",
        "components",
        "wit",
        "tests/fixtures",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=KSTEP_WASM_TARGET_DIR");

    println!(
        "cargo:rustc-env=KSTEP_WASMTIME_VERSION={}",
        locked_version(&root, "wasmtime")?
    );
    // The WIT packages' versions are written once, in the WIT files; the host reads them here.
    let steps_version = wit_version(&root.join("wit/types.wit"), "kstep:steps")?;
    let builtin_version = wit_version(&root.join("wit/builtin/dotenv.wit"), "kstep:builtin")?;
    let series = steps_version
        .rsplit_once('.')
        .map(|(major_minor, _)| major_minor)
        .ok_or("kstep:steps version without a patch number")?;
    println!("cargo:rustc-env=KSTEP_STEPS_VERSION={steps_version}");
    println!("cargo:rustc-env=KSTEP_STEPS_SERIES={series}.");

    let target_dir = wasm_target_dir(&root);
    build_components(&root, &target_dir)?;
    let out_wasm = target_dir.join(WASM_TARGET).join(PROFILE);
    println!("cargo:rustc-env=KSTEP_FIXTURES_DIR={}", out_wasm.display());

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // A target this wasmtime cannot compile for (another architecture than the build
    // machine's) gets no native code: the runtime then compiles the steps in memory.
    let engine = precompiling_engine()
        .inspect_err(|e| println!("cargo:warning=the built-in steps are not precompiled: {e}"))
        .ok();
    let mut code = String::from(
        "/// Every built-in step, embedded at build time.\npub static BUILTINS: &[Builtin] = &[\n",
    );
    for (name, krate, world) in BUILTINS {
        let path = out_wasm.join(format!("{}.wasm", krate.replace('-', "_")));
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let native = match &engine {
            Some(engine) => engine
                .precompile_component(&bytes)
                .map_err(|e| format!("precompiling {}: {e:#}", path.display()))?,
            None => Vec::new(),
        };
        // Both compressed: the native code is a third of its size gzipped (and inflates in a
        // few milliseconds), which keeps the binary under 40 MiB.
        let cwasm = out_dir.join(format!("{}.cwasm.gz", krate.replace('-', "_")));
        let native_size = native.len();
        std::fs::write(
            &cwasm,
            if native.is_empty() {
                native
            } else {
                gzip(&native)?
            },
        )?;
        let gz = out_dir.join(format!("{}.wasm.gz", krate.replace('-', "_")));
        std::fs::write(&gz, gzip(&bytes)?)?;
        let sha256 = Sha256::digest(&bytes)
            .iter()
            .fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            });
        writeln!(
            code,
            "    Builtin {{ name: {name:?}, world: \"kstep:builtin/{world}@{builtin_version}\", sha256: {sha256:?}, \
             size: {size}, wasm_gz: include_bytes!({gz:?}), native_size: {native_size}, \
             native_gz: include_bytes!({cwasm:?}) }},",
            size = bytes.len(),
            gz = gz.display().to_string(),
            cwasm = cwasm.display().to_string()
        )?;
    }
    code.push_str("];\n");
    std::fs::write(out_dir.join("builtins.rs"), code)?;
    Ok(())
}

/// The version of `package NAME@VERSION;` at the top of the WIT file `path`.
fn wit_version(path: &Path, name: &str) -> Result<String, Box<dyn Error>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("package {name}@")))
        .and_then(|rest| rest.strip_suffix(';'))
        .map(str::to_owned)
        .ok_or_else(|| format!("{}: no `package {name}@…;` line", path.display()).into())
}

/// The runtime's engine, for the binary's target: `Config::target` also leaves out the build
/// machine's optional CPU features, so the embedded code runs on any CPU of the architecture (a
/// runner older than the build machine included; the runtime compiles in memory when it cannot
/// load it all the same).
fn precompiling_engine() -> Result<wasmtime::Engine, Box<dyn Error>> {
    let mut config = engine::config();
    config
        .target(&std::env::var("TARGET")?)
        .map_err(|e| format!("{e:#}"))?;
    wasmtime::Engine::new(&config).map_err(|e| format!("{e:#}").into())
}

/// `$KSTEP_WASM_TARGET_DIR`, else `<cargo target dir>/wasm-components`: stable across host
/// profiles (debug, release, clippy), so the components build once.
fn wasm_target_dir(root: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("KSTEP_WASM_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let outer =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let outer = if outer.is_relative() {
        root.join(outer)
    } else {
        outer
    };
    outer.join("wasm-components")
}

fn build_components(root: &Path, target_dir: &Path) -> Result<(), Box<dyn Error>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--quiet",
            "--target",
            WASM_TARGET,
            "--profile",
            PROFILE,
        ])
        .env("CARGO_TARGET_DIR", target_dir);
    for krate in BUILTINS.iter().map(|(_, krate, _)| krate).chain(FIXTURES) {
        cmd.args(["-p", krate]);
    }
    // Flags and wrappers meant for the host build (clippy, coverage, sanitizers) must not leak
    // into the wasm build, or every host build would rebuild the components.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status()?;
    if !status.success() {
        return Err(format!(
            "building the built-in steps for {WASM_TARGET} failed ({status}); \
             is the target installed? `rustup target add {WASM_TARGET}`"
        )
        .into());
    }
    Ok(())
}

/// The version of `package` recorded in Cargo.lock.
fn locked_version(root: &Path, package: &str) -> Result<String, Box<dyn Error>> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock"))?;
    let needle = format!("name = \"{package}\"\nversion = \"");
    let start = lock
        .find(&needle)
        .ok_or_else(|| format!("{package} is not in Cargo.lock"))?
        + needle.len();
    let len = lock[start..].find('"').ok_or("malformed Cargo.lock")?;
    Ok(lock[start..start + len].to_owned())
}

/// `bytes` gzip-compressed, as `builtins.rs` inflates them.
fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes)?;
    encoder.finish()
}
