//! `kstep gc --prefix PREFIX`: the scheduled sweeper of review apps. Finds kstep's ApplySets
//! whose name starts with PREFIX and whose expiry (recorded by `--expires-in`) has passed,
//! lists them, then tears each down as `kstep delete` does; an adapter over
//! [`crate::deploy::gc`] and [`crate::deploy::prune`].
//!
//! Exit codes: 0 (also when nothing expired); 1 when the parents cannot be listed or a set
//! could not be deleted (the others still are; each failure is printed).

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::args::{ReportFormat, TargetArgs, TeardownArgs};
use crate::cli::{CliError, CliResult};
use crate::deploy::DeployError;
use crate::deploy::gc::{Criteria, Found};
use crate::deploy::session::{self, Session};
use crate::output;
use crate::runtime::Runtime;
use crate::shell::Shell;

/// Arguments of `kstep gc`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only ApplySets whose name starts with this (`review-`; `''` for every kstep set that
    /// has an expiry). Sets deployed without `--expires-in` are never deleted.
    #[arg(long, value_name = "PREFIX")]
    prefix: String,
    /// Only ApplySets whose parent also matches this label selector.
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    selector: Option<String>,
    /// Where to look. Default: the kubeconfig context's namespace, else `default`.
    #[arg(
        short = 'n',
        long,
        value_name = "NS",
        conflicts_with = "all_namespaces"
    )]
    namespace: Option<String>,
    /// Look in every namespace (needs an identity that may list Secrets and ConfigMaps there).
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    #[command(flatten)]
    teardown: TeardownArgs,
    /// Which cluster.
    #[command(flatten)]
    target: TargetArgs,
    /// How to report: lines (GitLab sections inside GitLab CI) or JSON lines.
    #[arg(short = 'o', long, value_enum, default_value_t = ReportFormat::Text)]
    output: ReportFormat,
}

/// Runs `kstep gc`.
///
/// # Errors
/// See the module documentation for the exit codes.
pub fn run(args: &Args) -> CliResult {
    let shell = Shell::new(args.output == ReportFormat::Json);
    gc(args, &shell).map_err(|e| {
        shell.error(&e);
        CliError::from(e.failure())
    })
}

fn gc(args: &Args, shell: &Shell) -> Result<(), DeployError> {
    let text = args.output == ReportFormat::Text;
    let runtime = Runtime::new().map_err(|e| DeployError::Runtime(format!("{e:#}")))?;
    let target = args.target.target();
    let credentials = session::load_credentials(&runtime, &target, shell)?;
    let criteria = Criteria {
        namespace: if args.all_namespaces {
            None
        } else {
            Some(
                args.namespace
                    .clone()
                    .unwrap_or_else(|| credentials.connection.namespace_or_default().to_owned()),
            )
        },
        prefix: args.prefix.clone(),
        selector: args.selector.clone(),
    };
    let place = criteria
        .namespace
        .as_deref()
        .map_or("every namespace".to_owned(), |ns| format!("namespace {ns}"));
    let (sweep, failures, kept) = session::block_on(async {
        let session = Session::connect(&credentials, target.request_timeout).await?;
        let now = Timestamp::now();
        let sweep = session.sweep(&criteria, now).await?;
        // The whole list first: nothing is deleted before it is on the log.
        if text {
            output::stdout(&listing(&sweep.expired, &args.prefix, &place, now));
            if let Some(next) = sweep.alive.first() {
                output::stdout(&format!(
                    "Not expired: {} set(s); the next expires at {} ({} in namespace {})\n",
                    sweep.alive.len(),
                    next.expires_at,
                    next.set.parent,
                    next.set.namespace
                ));
            }
            for line in &sweep.unreadable {
                output::stdout(&format!("Left alone: {line}\n"));
            }
        }
        let mut failures = Vec::new();
        let mut kept = 0;
        for found in &sweep.expired {
            match sweep_one(&session, found, now, &args.teardown, shell).await {
                Ok(true) => {}
                Ok(false) => kept += 1,
                Err(e) => {
                    shell.error(&e);
                    failures.push(format!(
                        "  {} in namespace {}: {}",
                        found.set.parent,
                        found.set.namespace,
                        e.headline().unwrap_or_default()
                    ));
                }
            }
        }
        Ok::<_, DeployError>((sweep, failures, kept))
    })?;
    if !failures.is_empty() {
        return Err(DeployError::Apply {
            headline: format!(
                "{} of {} expired ApplySet(s) could not be deleted",
                failures.len(),
                sweep.expired.len()
            ),
            details: failures,
            invalid: false,
        });
    }
    let count = sweep.expired.len() - kept;
    let summary = match (count, args.teardown.dry_run) {
        (0, _) => format!(
            "No expired ApplySet with prefix `{}` in {place}",
            args.prefix
        ),
        (n, true) => format!("Dry run: {n} expired ApplySet(s) would be deleted; nothing was"),
        (n, false) => format!("Deleted {n} expired ApplySet(s)"),
    };
    let sets: Vec<serde_json::Value> = sweep
        .expired
        .iter()
        .map(|f| {
            serde_json::json!({
                "applyset": f.set.parent.to_string(),
                "namespace": f.set.namespace,
                "expired_at": f.expires_at.to_string(),
            })
        })
        .collect();
    shell.outcome(
        &summary,
        serde_json::json!({
            "expired": sets,
            "not_expired": sweep.alive.len(),
            "kept": kept,
            "dry_run": args.teardown.dry_run,
        }),
    );
    Ok(())
}

/// Tears `found` down unless it was deployed again since the sweep listed it; whether it was
/// (or, in a dry run, would be) deleted.
async fn sweep_one(
    session: &Session<'_>,
    found: &Found,
    now: Timestamp,
    teardown: &TeardownArgs,
    shell: &Shell,
) -> Result<bool, DeployError> {
    let set = &found.set;
    if !session.still_expired(found, now).await? {
        output::stdout(&format!(
            "Kept {} in namespace {}: deployed again since it was listed\n",
            set.parent, set.namespace
        ));
        return Ok(false);
    }
    let policy = teardown.policy(&set.namespace);
    // A set deleted since it was listed (a stop job, another sweep) is what was wanted.
    session
        .teardown(set, &policy, teardown.wait(), teardown.dry_run, shell)
        .await
        .map(|_| true)
}

/// The expired sets, one line each, oldest expiry first.
fn listing(expired: &[Found], prefix: &str, place: &str, now: Timestamp) -> String {
    let mut text = format!(
        "{} expired ApplySet(s) with prefix `{prefix}` in {place}{}\n",
        expired.len(),
        if expired.is_empty() { "" } else { ":" }
    );
    for found in expired {
        let ago = now.as_second().saturating_sub(found.expires_at.as_second());
        text.push_str(&format!(
            "  - {} in namespace {} (expired at {}, {} ago)\n",
            found.set.parent,
            found.set.namespace,
            found.expires_at,
            crate::duration::format(Duration::from_secs(u64::try_from(ago).unwrap_or(0)))
        ));
    }
    text
}
