//! `kstep delete --applyset NAME`: tear a deployed set down — every member, then the parent
//! (kstep's revisions go with it) — listing what it deletes first; an adapter over
//! [`crate::deploy::prune`]. A set that does not exist is not an error (stop jobs are
//! retried).
//!
//! Exit codes: 2 for another tool's set or members outside the namespace policy (nothing
//! deleted); 1 for a failed request or objects still there after `--wait --timeout`.

use std::collections::BTreeSet;
use std::time::Duration;

use super::args::{ReportFormat, SetArgs};
use crate::cli::{CliError, CliResult, parse_duration};
use crate::deploy::DeployError;
use crate::deploy::objects::NamespacePolicy;
use crate::deploy::prune::Teardown;
use crate::deploy::session::{self, Session};
use crate::runtime::Runtime;
use crate::shell::Shell;

/// Arguments of `kstep delete`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    set: SetArgs,
    /// Also delete members in this other namespace (repeatable); a set with members in
    /// namespaces not allowed is refused before anything is deleted.
    #[arg(long, value_name = "NS")]
    allow_namespace: Vec<String>,
    /// Also delete cluster-scoped members.
    #[arg(long)]
    allow_cluster_scoped: bool,
    /// List what would be deleted (the server validates each deletion); delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Return once every member and the parent are gone (finalizers included).
    #[arg(long)]
    wait: bool,
    /// How long `--wait` waits (exit 1 after that).
    #[arg(long, value_parser = parse_duration, default_value = "5m", value_name = "DURATION")]
    timeout: Duration,
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
    let policy = NamespacePolicy {
        default_namespace: set.namespace.clone(),
        allowed: args
            .allow_namespace
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>(),
        allow_cluster_scoped: args.allow_cluster_scoped,
    };
    let outcome = session::block_on(async {
        let session = Session::connect(&credentials, target.request_timeout).await?;
        let wait = args.wait.then_some(args.timeout);
        session
            .teardown(&set, &policy, wait, args.dry_run, shell)
            .await
    })?;
    let name = format!("ApplySet {} in namespace {}", set.parent, set.namespace);
    let (text, deleted) = match &outcome {
        Teardown::NoSuchSet => (format!("{name} does not exist: nothing to delete"), None),
        Teardown::Deleted(m) if args.dry_run => (
            format!("Dry run: {name} would be deleted; nothing was deleted"),
            Some(m.len()),
        ),
        Teardown::Deleted(m) if args.wait => {
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
            "dry_run": args.dry_run,
        }),
    );
    Ok(())
}
