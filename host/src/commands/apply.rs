//! `kstep apply -f FILE|DIR|-`: server-side apply with a dry run of everything first, the
//! namespace policy checked before any request, and an optional rollout wait — an adapter
//! over [`crate::deploy`] (`load`, then `session`).
//!
//! Exit codes: 2 for documents that cannot be applied, policy refusals and dry-run rejections
//! of invalid objects (nothing was changed); 1 for an unreachable server, refused credentials, a
//! 403 and apply failures; 3 for a failed or timed-out rollout; 2 when `--plan FILE` does not
//! match what would be applied (nothing was changed).

use std::path::PathBuf;

use super::args::{ClusterArgs, Manifests, ReportFormat, StampArgs, WaitArgs};
use crate::cli::{CliError, CliResult};
use crate::deploy::DeployError;
use crate::deploy::job::files_label;
use crate::deploy::load::{self, RenderOptions};
use crate::deploy::plan;
use crate::deploy::session::{self, Session};
use crate::runtime::Runtime;
use crate::shell::Shell;

/// Arguments of `kstep apply`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    manifests: Manifests,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Wait until Deployments, StatefulSets, DaemonSets and Jobs have rolled out (exit 3 if
    /// they fail or time out).
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    wait_args: WaitArgs,
    #[command(flatten)]
    stamp: StampArgs,
    /// Apply only what this plan file (`kstep plan --out`) reviewed: refuse before any change
    /// (exit 2) when the objects, their content or a live object changed since.
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,
    /// How to report: lines (GitLab sections inside GitLab CI) or JSON lines.
    #[arg(short = 'o', long, value_enum, default_value_t = ReportFormat::Text)]
    output: ReportFormat,
}

/// Runs `kstep apply`.
///
/// # Errors
/// See the module documentation for the exit codes.
pub fn run(args: &Args) -> CliResult {
    let shell = Shell::new(args.output == ReportFormat::Json);
    apply(args, &shell).map_err(|e| {
        shell.error(&e);
        CliError::from(e.failure())
    })
}

fn apply(args: &Args, shell: &Shell) -> Result<(), DeployError> {
    let runtime = Runtime::new().map_err(|e| DeployError::Runtime(format!("{e:#}")))?;
    // `kubectl apply` semantics: the files are taken literally, `$` is never a placeholder, so
    // no variable (no credential) can enter them and they can be checked before the kubeconfig.
    let render = RenderOptions {
        literal: true,
        ..RenderOptions::default()
    };
    let rendered = load::render(&runtime, &args.manifests.files, &render, shell)?;
    let mut objects = load::objects(rendered.documents, &files_label(&args.manifests.files))?;
    let planned = args.plan.as_deref().map(plan::load).transpose()?;
    let target = args.cluster.target.target();
    let credentials = session::load_credentials(&runtime, &target, shell)?;
    let options = args.cluster.apply_options();
    let wait = args.wait.then(|| args.wait_args.into());
    session::block_on(async {
        let session = Session::connect(&credentials, target.request_timeout).await?;
        if let (Some(planned), Some(path)) = (&planned, &args.plan) {
            plan::verify(&session, &objects, &options, planned, path, shell).await?;
        }
        // After the plan check, as `kstep deploy` does.
        if let Some(stamp) = args.stamp.stamp() {
            stamp.apply(&mut objects);
        }
        session
            .apply_and_wait(objects, &options, wait, shell)
            .await
            .map(|_| ())
    })
}
