//! `kstep deploy`: the reference workflow's deploy job in one line, an adapter over
//! [`crate::deploy::job`].
//!
//! ```text
//! kstep deploy -f k8s/ --env-file docker.env --image app=$IMAGE --set ENV=prod --dotenv-out deploy.env
//! ```
//!
//! = read the dotenv files (`--env-file`, GitLab's dialect by default), render the manifests
//! with those variables, `--set` and `--image` overrides (YAML-aware, no `sed`), apply them
//! (dry run of everything first) and wait for the rollout (on by default; `--no-wait`). In a
//! GitLab job the steps are collapsible log sections and a summary closes the log;
//! `--dotenv-out` writes `DEPLOYED_IMAGE`, `DEPLOYED_NAMESPACE`, `DEPLOYED_URL` and
//! `ROLLOUT_SECONDS` for later jobs (`artifacts:reports:dotenv`).

use std::path::PathBuf;

use super::args::{ClusterArgs, Manifests, ReportFormat, StampArgs, Template, WaitArgs};
use crate::cli::{CliError, CliResult};
use crate::deploy::DeployError;
use crate::deploy::job::{self, DeployJob};
use crate::runtime::Runtime;
use crate::shell::Shell;

/// Arguments of `kstep deploy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    manifests: Manifests,
    #[command(flatten)]
    template: Template,
    /// Write `DEPLOYED_IMAGE`, `DEPLOYED_NAMESPACE`, `DEPLOYED_URL` (the one host of the
    /// Ingresses and HTTPRoutes, if there is one) and `ROLLOUT_SECONDS` to this dotenv file
    /// (GitLab's format, merged into the file if it exists) after a successful deploy. An
    /// existing file is checked before anything is applied.
    #[arg(long, value_name = "FILE")]
    dotenv_out: Option<PathBuf>,
    /// The `DEPLOYED_URL` to write with --dotenv-out, instead of the host found in the
    /// manifests (`http://…` or `https://…`).
    #[arg(long, value_name = "URL", requires = "dotenv_out", value_parser = parse_url)]
    environment_url: Option<String>,
    /// Apply only what this plan file (`kstep plan --out`) reviewed: refuse before any change
    /// (exit 2) when the objects, their content or a live object changed since.
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,
    /// Do not wait for the rollout.
    #[arg(long)]
    no_wait: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(flatten)]
    wait: WaitArgs,
    #[command(flatten)]
    stamp: StampArgs,
    /// How to report: lines (GitLab sections inside GitLab CI) or JSON lines.
    #[arg(short = 'o', long, value_enum, default_value_t = ReportFormat::Text)]
    output: ReportFormat,
    #[command(flatten)]
    pub(crate) report: crate::report::ReportArgs,
}

impl Args {
    /// The engine's description of the job.
    fn job(&self) -> DeployJob {
        DeployJob {
            files: self.manifests.files.clone(),
            variables: self.template.variable_sources(),
            images: self.template.image_overrides(),
            upgrade_api_versions: self.template.upgrade_api_versions,
            target: self.cluster.target.target(),
            apply: self.cluster.apply_options(),
            wait: (!self.no_wait).then(|| self.wait.into()),
            dotenv_out: self.dotenv_out.clone(),
            plan: self.plan.clone(),
            environment_url: self.environment_url.clone(),
            stamp: self.stamp.stamp(),
        }
    }
}

/// An environment URL: `http://` or `https://`, then a host, on one line.
fn parse_url(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !text.chars().any(char::is_whitespace) => {
            Ok(text.to_owned())
        }
        _ => Err(format!(
            "`{text}`: expected http://HOST… or https://HOST…, without spaces"
        )),
    }
}

/// Runs `kstep deploy`.
///
/// # Errors
/// Exit 2 for invalid input (env files, manifests, arguments, dry-run rejections, an invalid
/// `--dotenv-out` file), 1 for cluster and credential failures, 3 for a failed or timed-out
/// rollout.
pub fn run(args: &Args) -> CliResult {
    let shell = Shell::new(args.output == ReportFormat::Json);
    let result = Runtime::new()
        .map_err(|e| DeployError::Runtime(format!("{e:#}")))
        .and_then(|runtime| job::run(&runtime, &args.job(), &shell));
    match result {
        Ok(deployed) => {
            shell.deploy_summary(&deployed, args.cluster.dry_run);
            Ok(())
        }
        Err(e) => {
            shell.error(&e);
            Err(CliError::from(e.failure()))
        }
    }
}
