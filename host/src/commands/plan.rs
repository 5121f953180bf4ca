//! `kstep plan`: what `kstep deploy` with the same flags would change, an adapter over
//! [`crate::deploy::plan`].
//!
//! ```text
//! kstep plan -f k8s/ --env-file docker.env --image app=$IMAGE --output markdown --out plan.json > plan.md
//! ```
//!
//! stdout carries the plan only (text, JSON or Markdown), so it can be redirected into an
//! artifact; warnings and errors go to stderr. Exit codes: 0, or with `--exit-code` 4 when
//! something would change; errors keep theirs (2 invalid input, 1 cluster or credentials).

use std::path::PathBuf;

use super::args::{ClusterArgs, Manifests, Template};
use crate::cli::{CliError, CliResult};
use crate::deploy::DeployError;
use crate::deploy::events::{Event, Reporter};
use crate::deploy::job::{self, DeployJob};
use crate::deploy::plan::{self, Plan};
use crate::deploy::session::{self, Session};
use crate::failure::Failure;
use crate::output;
use crate::runtime::Runtime;
use crate::shell::Shell;

/// Arguments of `kstep plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    manifests: Manifests,
    #[command(flatten)]
    template: Template,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// How to show the plan: lines for a log, one JSON document, or Markdown for a merge request
    /// comment (counts, then each diff in a collapsed block).
    #[arg(short = 'o', long, value_enum, default_value_t = PlanFormat::Text)]
    output: PlanFormat,
    /// Also write the plan file (object identities, content digests, live resourceVersions; no
    /// values) for `kstep deploy --plan FILE`.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Exit with 4 when something would change (0 when nothing would).
    #[arg(long)]
    exit_code: bool,
}

/// How `kstep plan` shows the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// Lines for a job log.
    Text,
    /// One JSON document.
    Json,
    /// A merge request comment or an `expose_as` artifact.
    Markdown,
}

/// Runs `kstep plan`.
///
/// # Errors
/// See the module documentation for the exit codes.
pub fn run(args: &Args) -> CliResult {
    // Errors as lines on stderr in every format: stdout is the plan document's alone.
    let shell = Shell::new(false);
    let plan = Runtime::new()
        .map_err(|e| DeployError::Runtime(format!("{e:#}")))
        .and_then(|runtime| compute(&runtime, args))
        .map_err(|e| {
            shell.error(&e);
            CliError::from(e.failure())
        })?;
    if let Some(path) = &args.out {
        crate::fsutil::write_atomic(path, plan.file().to_json().as_bytes(), None).map_err(|e| {
            CliError::from(anyhow::anyhow!(
                "writing the plan file {}: {e}",
                path.display()
            ))
        })?;
    }
    output::stdout(&match args.output {
        PlanFormat::Text => plan.text(),
        PlanFormat::Json => format!("{:#}\n", plan.json()),
        PlanFormat::Markdown => plan.markdown(),
    });
    if args.exit_code && plan.has_changes() {
        return Err(Failure::Changes.into());
    }
    Ok(())
}

fn compute(runtime: &Runtime, args: &Args) -> Result<Plan, DeployError> {
    let job = DeployJob {
        files: args.manifests.files.clone(),
        variables: args.template.variable_sources(),
        images: args.template.image_overrides(),
        upgrade_api_versions: args.template.upgrade_api_versions,
        target: args.cluster.target.target(),
        apply: args.cluster.apply_options(),
        wait: None,
        dotenv_out: None,
        plan: None,
        environment_url: None,
        // The plan reviews the manifests; the deploy stamps after checking it.
        stamp: None,
    };
    let notes = Notes;
    // Credentials first, as for a deploy: every secret they hold is registered before a
    // variable is read or a template rendered.
    let credentials = session::load_credentials(runtime, &job.target, &notes)?;
    let objects = job::render_objects(runtime, &job, &notes)?;
    session::block_on(async {
        let session = Session::connect(&credentials, job.target.request_timeout).await?;
        plan::compute(&session, objects, &job.apply, &notes).await
    })
}

/// Shows warnings and would-be takeovers on stderr; the plan itself is the output.
struct Notes;

impl Reporter for Notes {
    fn report(&self, event: Event<'_>) {
        match event {
            Event::Warning(text) => output::stderr_line(text),
            Event::Adopted {
                object,
                managers,
                helm_release,
                field_manager,
                ..
            } => output::stderr_line(&format!(
                "note: {}: applying would take over the fields of {} for field manager {field_manager}{}",
                object.display_name(),
                managers.join(", "),
                helm_release.map_or(String::new(), |r| format!(
                    " and remove the label and annotations of Helm release {r}"
                )),
            )),
            Event::AdoptedIntoSet { object, set, .. } => output::stderr_line(&format!(
                "note: {}: applying would adopt it into ApplySet {set} (it is in no set)",
                object.display_name()
            )),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use clap::Parser as _;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn flags() {
        let cli = Cli::try_parse_from([
            "kstep",
            "-f",
            "k8s/",
            "--image",
            "app=r/app:2",
            "-n",
            "ns",
            "-o",
            "markdown",
            "--out",
            "plan.json",
            "--exit-code",
        ])
        .unwrap();
        assert_eq!(cli.args.output, PlanFormat::Markdown);
        assert_eq!(cli.args.out, Some(PathBuf::from("plan.json")));
        assert!(cli.args.exit_code);
        assert_eq!(cli.args.cluster.namespace.as_deref(), Some("ns"));
        assert!(Cli::try_parse_from(["kstep", "-f", "k8s/", "-o", "yaml"]).is_err());
    }
}
