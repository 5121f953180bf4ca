//! `kstep version`, `kstep components` and `kstep warm`: what is embedded, and precompiling
//! custom steps into the compile cache.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::args::ReportFormat;
use crate::builtins::BUILTINS;
use crate::cli::{CliError, CliResult};
use crate::output;
use crate::runtime::{Runtime, cache::Warmed};

/// Options of `kstep version` and `kstep components`.
#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    output: ReportFormat,
}

#[derive(Serialize)]
struct Component {
    name: &'static str,
    world: &'static str,
    size: usize,
    sha256: &'static str,
}

fn components_list() -> Vec<Component> {
    BUILTINS
        .iter()
        .map(|b| Component {
            name: b.name,
            world: b.world,
            size: b.size,
            sha256: b.sha256,
        })
        .collect()
}

/// `kstep version`.
///
/// # Errors
/// Never, in practice (JSON serialisation of plain data).
pub fn version(args: &VersionArgs) -> CliResult {
    let kstep = env!("CARGO_PKG_VERSION");
    match args.output {
        ReportFormat::Json => {
            let value = serde_json::json!({
                "kstep": kstep,
                "wasmtime": crate::WASMTIME_VERSION,
                "components": components_list(),
            });
            output::stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&value).map_err(anyhow::Error::from)?
            ));
        }
        ReportFormat::Text => {
            let mut text = format!("kstep {kstep}\nwasmtime {}\n", crate::WASMTIME_VERSION);
            for c in components_list() {
                text.push_str(&format!(
                    "{:<11} {:<36} sha256:{}\n",
                    c.name, c.world, c.sha256
                ));
            }
            output::stdout(&text);
        }
    }
    Ok(())
}

/// `kstep components`.
///
/// # Errors
/// Never, in practice.
pub fn components(args: &VersionArgs) -> CliResult {
    let list = components_list();
    match args.output {
        ReportFormat::Json => {
            output::stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&list).map_err(anyhow::Error::from)?
            ));
        }
        ReportFormat::Text => {
            let mut text = format!("{:<11} {:<36} {:>9}  SHA256\n", "NAME", "WORLD", "SIZE");
            for c in list {
                text.push_str(&format!(
                    "{:<11} {:<36} {:>9}  {}\n",
                    c.name, c.world, c.size, c.sha256
                ));
            }
            output::stdout(&text);
        }
    }
    Ok(())
}

/// Arguments of `kstep warm`.
#[derive(Debug, clap::Args)]
pub struct WarmArgs {
    /// Custom steps (`.wasm` components) to precompile into the compile cache.
    #[arg(value_name = "STEP.wasm")]
    steps: Vec<PathBuf>,
}

/// `kstep warm`: precompiles custom steps into the compile cache, and says how the built-in
/// steps load on this machine (they never use the cache: their native code is embedded).
///
/// # Errors
/// When a step cannot be read or does not compile, or the cache cannot be written.
pub fn warm(args: &WarmArgs) -> CliResult {
    let runtime = Runtime::new()?;
    for b in BUILTINS {
        let how = if runtime.builtin(b.name)?.precompiled() {
            "precompiled into the binary"
        } else {
            "compiled in memory (this machine cannot run the code precompiled into the binary)"
        };
        output::stdout(&format!("{:<11} {how}\n", b.name));
    }
    for path in &args.steps {
        let started = Instant::now();
        let wasm = std::fs::read(path)
            .map_err(|e| CliError::invalid(anyhow::anyhow!("{}: {e}", path.display())))?;
        let what = match runtime
            .warm(&wasm)
            .map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?
        {
            Warmed::Hit => "already cached",
            Warmed::Compiled => "compiled",
        };
        output::stdout(&format!(
            "{} {what} in {} ms\n",
            path.display(),
            started.elapsed().as_millis()
        ));
    }
    Ok(())
}
