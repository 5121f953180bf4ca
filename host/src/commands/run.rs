//! `kstep run [FILE]`: runs a pipeline file (`kstep.yaml` by default) — built-in steps, custom
//! steps and host actions in order, variables and documents flowing from one to the next.
//!
//! Exit codes: 2 for an invalid pipeline file, a refused component, a file a step cannot read
//! or a step that refuses the documents (nothing after it ran); 1 for a step stopped by the
//! sandbox or a cluster that cannot be reached; 3 for a failed rollout.

use std::path::PathBuf;

use super::args::{DocumentFormat, TargetArgs};
use crate::cli::{CliError, CliResult};
use crate::output;
use crate::pipeline::{self, Options, file};
use crate::runtime::Runtime;
use crate::shell::Shell;

/// Arguments of `kstep run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline file. Relative paths in it start from its directory (the project).
    #[arg(default_value = "kstep.yaml", value_name = "FILE")]
    file: PathBuf,
    /// Run every step up to the first host action (`apply`, `wait`), then print the documents
    /// it would get on stdout instead of contacting the cluster.
    #[arg(long)]
    dry_run: bool,
    /// How --dry-run prints the documents.
    #[arg(short = 'o', long, value_enum, default_value_t = DocumentFormat::Yaml)]
    output: DocumentFormat,
    /// Steps by reference (`wasm: oci://…`) must be in kstep.lock and their tags must still
    /// point to the locked digests. Default: on when CI is set; `--locked=false` turns it off.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    locked: Option<bool>,
    /// The cluster of `apply` and `wait`.
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    pub(crate) report: crate::report::ReportArgs,
}

/// Runs `kstep run`.
///
/// # Errors
/// See the module documentation for the exit codes; messages are printed before returning.
pub fn run(args: &Args) -> CliResult {
    let pipeline = file::load(&args.file).map_err(|e| {
        for error in &e.errors {
            crate::report::record(crate::report::Finding {
                check: "kstep/pipeline".into(),
                level: crate::report::Level::Error,
                message: error.message.clone(),
                path: e.file.clone(),
                line: u32::try_from(error.pos.line).unwrap_or(u32::MAX),
                column: u32::try_from(error.pos.column).unwrap_or(u32::MAX),
            });
        }
        output::stderr_line(&e.to_string());
        CliError::reported_invalid()
    })?;
    let runtime = Runtime::new()?;
    let options = Options {
        dry_run: args.dry_run,
        json: args.output == DocumentFormat::Json,
        cluster: args.target.target(),
        locked: args
            .locked
            .unwrap_or_else(|| std::env::var_os("CI").is_some_and(|v| !v.is_empty())),
        keep_documents: false,
    };
    pipeline::run(&runtime, &pipeline, &options, &Shell::new(false))
        .map(|_| ())
        .map_err(CliError::from)
}
