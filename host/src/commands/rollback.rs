//! `kstep rollback --applyset NAME [--to N]`: re-apply a revision of a set (default: the last
//! one that succeeded, before the newest), prune what it does not contain, and wait for the
//! rollout; an adapter over [`crate::deploy::rollback`].
//!
//! Exit codes: 2 for no such revision (nothing changed), 1 for a failed request, 3 for a
//! failed or timed-out rollout.

use super::args::{ReportFormat, SetArgs, WaitArgs};
use crate::cli::{CliError, CliResult};
use crate::deploy::DeployError;
use crate::deploy::revision::History;
use crate::deploy::session::{self, ApplyOptions, Session};
use crate::runtime::Runtime;
use crate::shell::Shell;

/// Arguments of `kstep rollback`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    set: SetArgs,
    /// The revision to restore (`kstep history` lists them). Default: the newest that
    /// succeeded, other than the newest revision itself.
    #[arg(long, value_name = "N")]
    to: Option<u32>,
    /// Validate with a server-side dry run and list what would be pruned; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also allow objects in this other namespace (repeatable), as `kstep apply`.
    #[arg(long, value_name = "NS")]
    allow_namespace: Vec<String>,
    /// Allow cluster-scoped objects, as `kstep apply`.
    #[arg(long)]
    allow_cluster_scoped: bool,
    #[command(flatten)]
    wait: WaitArgs,
    /// How to report: lines (GitLab sections inside GitLab CI) or JSON lines.
    #[arg(short = 'o', long, value_enum, default_value_t = ReportFormat::Text)]
    output: ReportFormat,
}

/// Runs `kstep rollback`.
///
/// # Errors
/// See the module documentation for the exit codes.
pub fn run(args: &Args) -> CliResult {
    let shell = Shell::new(args.output == ReportFormat::Json);
    rollback(args, &shell).map_err(|e| {
        shell.error(&e);
        CliError::from(e.failure())
    })
}

fn rollback(args: &Args, shell: &Shell) -> Result<(), DeployError> {
    let runtime = Runtime::new().map_err(|e| DeployError::Runtime(format!("{e:#}")))?;
    let target = args.set.target.target();
    let credentials = session::load_credentials(&runtime, &target, shell)?;
    let set = args.set.applyset(&credentials.connection);
    let options = ApplyOptions {
        dry_run: args.dry_run,
        allow_namespaces: args.allow_namespace.clone(),
        allow_cluster_scoped: args.allow_cluster_scoped,
        ..ApplyOptions::default()
    };
    session::block_on(async {
        let session = Session::connect(&credentials, target.request_timeout).await?;
        // Without --to: not the newest revision (what is running, or what just failed).
        let before = match args.to {
            Some(_) => None,
            None => History::new(session.client(), &set)
                .list()
                .await
                .map_err(|e| DeployError::revision(&e, session.connection()))?
                .last()
                .map(|newest| newest.revision),
        };
        session
            .rollback(&set, args.to, before, &options, args.wait.into(), shell)
            .await
            .map(drop)
    })?;
    Ok(())
}
