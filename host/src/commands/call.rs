//! `kstep call`: invoke one export of any component inside the sandbox, with arguments given as
//! text. A development aid (hidden from `--help`), and how the sandbox tests drive hostile
//! components through the real binary.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::{Type, Val};

use crate::cli::{CliError, CliResult, parse_duration, parse_size};
use crate::output;
use crate::runtime::{Limits, Runtime, StepError};

/// Arguments of `kstep call`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The component (.wasm).
    component: PathBuf,
    /// The export: `interface#function` (e.g. `kstep-test:probe/probe#spin`) or `function`.
    export: String,
    /// Arguments, converted to the function's parameter types (strings, integers, booleans).
    args: Vec<String>,
    /// CPU budget.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    cpu: Duration,
    /// Memory limit.
    #[arg(long, value_parser = parse_size, default_value = "128MiB")]
    memory: usize,
    /// Register the value of this environment variable as a secret (tests masking).
    #[arg(long, value_name = "VAR")]
    mask_env: Vec<String>,
}

/// Runs `kstep call`.
///
/// # Errors
/// Exit 2 for a component that cannot be loaded or arguments that do not fit; exit 1 for traps
/// and exhausted budgets.
pub fn run(args: &Args) -> CliResult {
    for var in &args.mask_env {
        if let Ok(value) = std::env::var(var) {
            output::register_secret(&value);
        }
    }
    let wasm = std::fs::read(&args.component)
        .with_context(|| format!("reading {}", args.component.display()))
        .map_err(CliError::invalid)?;
    let runtime = Runtime::new()?;
    let name = args
        .component
        .file_stem()
        .map_or_else(|| "component".into(), |s| s.to_string_lossy().into_owned());
    let step = runtime.load(&name, &wasm).map_err(CliError::invalid)?;
    let limits = Limits {
        cpu: args.cpu,
        memory: args.memory,
        ..Limits::default()
    };
    let (interface, function) = match args.export.split_once('#') {
        Some((i, f)) => (Some(i), f),
        None => (None, args.export.as_str()),
    };
    let results = runtime.call(&step, &limits, async |store, instance| {
        let parent = interface
            .map(|i| {
                instance
                    .get_export_index(&mut *store, None, i)
                    .ok_or_else(|| {
                        wasmtime::format_err!("the component exports no interface `{i}`")
                    })
            })
            .transpose()?;
        let index = instance
            .get_export_index(&mut *store, parent.as_ref(), function)
            .ok_or_else(|| {
                wasmtime::format_err!("the component exports no function `{}`", args.export)
            })?;
        let func = instance
            .get_func(&mut *store, index)
            .ok_or_else(|| wasmtime::format_err!("`{}` is not a function", args.export))?;
        let ty = func.ty(&*store);
        let params: Vec<Type> = ty.params().map(|(_, t)| t).collect();
        wasmtime::ensure!(
            params.len() == args.args.len(),
            "`{}` takes {} argument(s), {} given",
            args.export,
            params.len(),
            args.args.len()
        );
        let vals = params
            .iter()
            .zip(&args.args)
            .map(|(t, a)| to_val(t, a))
            .collect::<Result<Vec<_>, String>>()
            .map_err(wasmtime::Error::msg)?;
        let mut results = vec![Val::Bool(false); ty.results().len()];
        func.call_async(&mut *store, &vals, &mut results).await?;
        Ok(results)
    });
    let results = results.map_err(|e| match e {
        StepError::Load { .. } | StepError::ForbiddenImport { .. } => CliError::invalid(e),
        other => CliError::from(other),
    })?;
    for value in results {
        output::stdout(&format!("{}\n", render(&value)));
    }
    Ok(())
}

fn to_val(ty: &Type, arg: &str) -> Result<Val, String> {
    let bad = || format!("`{arg}` is not a valid {ty:?}");
    Ok(match ty {
        Type::String => Val::String(arg.to_owned()),
        Type::Bool => Val::Bool(arg.parse().map_err(|_| bad())?),
        Type::U32 => Val::U32(arg.parse().map_err(|_| bad())?),
        Type::U64 => Val::U64(arg.parse().map_err(|_| bad())?),
        Type::S32 => Val::S32(arg.parse().map_err(|_| bad())?),
        Type::S64 => Val::S64(arg.parse().map_err(|_| bad())?),
        _ => {
            return Err(format!(
                "parameters of type {ty:?} cannot be given on the command line"
            ));
        }
    })
}

/// A readable rendering of a result value (strings unquoted at the top level).
fn render(value: &Val) -> String {
    match value {
        Val::String(s) => s.clone(),
        Val::List(items) => items.iter().map(render).collect::<Vec<_>>().join("\n"),
        other => format!("{other:?}"),
    }
}
