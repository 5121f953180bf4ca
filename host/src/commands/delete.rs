//! `kstep delete --applyset NAME`: tear a deployed set down — every member, then the parent
//! (kstep's revisions go with it) — listing what it deletes first; an adapter over
//! [`crate::deploy::prune`]. A set that does not exist is not an error (stop jobs are
//! retried).
//!
//! Exit codes: 2 for another tool's set or members outside the namespace policy (nothing
//! deleted); 1 for a failed request or objects still there after `--wait --timeout`.

use super::args::{ReportFormat, SetArgs, TeardownArgs};
use crate::cli::{CliError, CliResult};
use crate::deploy::DeployError;
use crate::deploy::prune::Teardown;
use crate::deploy::session::{self, Session};
use crate::runtime::Runtime;
use crate::shell::Shell;

/// Arguments of `kstep delete`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    set: SetArgs,
    #[command(flatten)]
    teardown: TeardownArgs,
    /// How to report: lines (GitLab sections inside GitLab CI) or JSON lines.
    #[arg(short = 'o', long, value_enum, default_value_t = ReportFormat::Text)]
    output: ReportFormat,
}

/// Runs `kstep delete`.
///
/// # Errors
/// See the module documentation for the exit codes.
pub fn run(args: &Args) -> CliResult {
    let shell = Shell::new(args.output == ReportFormat::Json);
    delete(args, &shell).map_err(|e| {
        shell.error(&e);
        CliError::from(e.failure())
    })
}

fn delete(args: &Args, shell: &Shell) -> Result<(), DeployError> {
    let runtime = Runtime::new().map_err(|e| DeployError::Runtime(format!("{e:#}")))?;
    let target = args.set.target.target();
    let credentials = session::load_credentials(&runtime, &target, shell)?;
    let set = args.set.applyset(&credentials.connection);
    let policy = args.teardown.policy(&set.namespace);
    let outcome = session::block_on(async {
        let session = Session::connect(&credentials, target.request_timeout).await?;
        session
            .teardown(
                &set,
                &policy,
                args.teardown.wait(),
                args.teardown.dry_run,
                shell,
            )
            .await
    })?;
    let name = format!("ApplySet {} in namespace {}", set.parent, set.namespace);
    let (text, deleted) = match &outcome {
        Teardown::NoSuchSet => (format!("{name} does not exist: nothing to delete"), None),
        Teardown::Deleted(m) if args.teardown.dry_run => (
            format!("Dry run: {name} would be deleted; nothing was deleted"),
            Some(m.len()),
        ),
        Teardown::Deleted(m) if args.teardown.wait().is_some() => {
            (format!("Deleted {name}: everything is gone"), Some(m.len()))
        }
        Teardown::Deleted(m) => (format!("Deleted {name}"), Some(m.len())),
    };
    shell.outcome(
        &text,
        serde_json::json!({
            "applyset": set.parent.to_string(),
            "namespace": set.namespace,
            "existed": deleted.is_some(),
            "members": deleted,
            "dry_run": args.teardown.dry_run,
        }),
    );
    Ok(())
}
