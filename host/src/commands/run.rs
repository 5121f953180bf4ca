//! `kstep run [FILE]`: runs a pipeline file (`kstep.yaml` by default) — built-in steps, custom
//! steps and host actions in order, variables and documents flowing from one to the next.
//!
//! Exit codes: 2 for an invalid pipeline file, a refused component, a file a step cannot read
//! or a step that refuses the documents (nothing after it ran); 1 for a step stopped by the
//! sandbox or a cluster that cannot be reached; 3 for a failed rollout.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{CliError, CliResult, parse_duration};
use crate::output;
use crate::pipeline::actions::ClusterOptions;
use crate::pipeline::{self, Failure, Options, file};
use crate::runtime::Runtime;

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
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Yaml)]
    output: Format,
    /// The kubeconfig for `apply` and `wait`. Default: $KSTEP_KUBECONFIG, then $KUBECONFIG
    /// (each may hold the kubeconfig, its base64 form, or a path). Steps never see it.
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Use this context instead of the current-context.
    #[arg(long, value_name = "NAME", env = "KSTEP_CONTEXT")]
    context: Option<String>,
    /// Time allowed for connecting and for each request.
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    request_timeout: Duration,
    /// Send the kubeconfig's credentials to a plain http:// server, where anyone on the path
    /// reads them (refused by default).
    #[arg(long)]
    insecure_plain_http: bool,
}

/// How documents are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A YAML stream, `---` before each document.
    Yaml,
    /// One JSON array.
    Json,
}

/// Runs `kstep run`.
///
/// # Errors
/// See the module documentation for the exit codes; messages are printed before returning.
pub fn run(args: &Args) -> CliResult {
    let pipeline = file::load(&args.file).map_err(|e| {
        output::stderr_line(&e.to_string());
        CliError::reported_invalid()
    })?;
    let runtime = Runtime::new()?;
    let options = Options {
        dry_run: args.dry_run,
        json: args.output == Format::Json,
        cluster: ClusterOptions {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
            request_timeout: Some(args.request_timeout),
            insecure_plain_http: args.insecure_plain_http,
        },
    };
    pipeline::run(&runtime, &pipeline, &options)
        .map(|_| ())
        .map_err(failure)
}

/// The exit code of a pipeline failure (already reported).
pub fn failure(failure: Failure) -> CliError {
    match failure {
        Failure::Invalid => CliError::reported_invalid(),
        Failure::Runtime => CliError::reported(),
        Failure::Rollout => CliError::reported_rollout(),
    }
}
