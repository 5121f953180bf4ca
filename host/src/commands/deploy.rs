//! `kstep deploy`: the reference workflow's deploy job in one line.
//!
//! ```text
//! kstep deploy -f k8s/ --env-file docker.env --image app=$IMAGE --set ENV=prod --dotenv-out deploy.env
//! ```
//!
//! = read the dotenv files (`--env-file`, GitLab's dialect by default), render the manifests
//! with those variables, `--set` and `--image` overrides (YAML-aware, no `sed`), apply them
//! (dry run of everything first) and wait for the rollout (on by default; `--no-wait`). In a
//! GitLab job the steps are collapsible log sections and a summary closes the log;
//! `--dotenv-out` writes `DEPLOYED_IMAGE`, `DEPLOYED_NAMESPACE` and `ROLLOUT_SECONDS` for later
//! jobs (`artifacts:reports:dotenv`).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::cli::{CliError, CliResult};
use crate::commands::apply::{
    self as apply_cmd, ClusterArgs, Render, RunSummary, Session, WaitArgs,
};
use crate::commands::render::{Manifests, Template};
use crate::deploy::log::{self, Sections};
use crate::deploy::objects::Object;
use crate::output;
use crate::runtime::Runtime;
use crate::steps::dotenv::{self, GitlabLimits};
use crate::steps::manifest::{self as manifest_step, Variables};

/// Arguments of `kstep deploy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    manifests: Manifests,
    #[command(flatten)]
    template: Template,
    /// Write `DEPLOYED_IMAGE`, `DEPLOYED_NAMESPACE` and `ROLLOUT_SECONDS` to this dotenv file
    /// (GitLab's format, merged into the file if it exists) after a successful deploy.
    #[arg(long, value_name = "FILE")]
    dotenv_out: Option<PathBuf>,
    /// Do not wait for the rollout.
    #[arg(long)]
    no_wait: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(flatten)]
    wait: WaitArgs,
}

/// Runs `kstep deploy`.
///
/// # Errors
/// Exit 2 for invalid input (env files, manifests, arguments, dry-run rejections), 1 for
/// cluster and credential failures, 3 for a failed or timed-out rollout.
pub fn run(args: &Args) -> CliResult {
    let sections = Sections::from_env();
    let runtime = Runtime::new()?;
    let variables = args.template.variables(&runtime)?;
    sections.start(
        "kstep_render",
        &format!(
            "Rendering {} ({} image override(s))",
            args.manifests
                .files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            args.template.images.len()
        ),
        true,
    );
    let render = Render {
        variables: variables.pairs(),
        images: args.template.image_overrides(),
        upgrade_api_versions: args.template.upgrade_api_versions,
        literal: false,
    };
    let loaded = apply_cmd::load_objects(&runtime, &args.manifests.files, &render);
    if let Ok((objects, report)) = &loaded {
        for line in render_lines(objects, report, &variables) {
            output::stdout(&format!("{line}\n"));
        }
    }
    sections.end("kstep_render");
    let (objects, _) = loaded?;
    let deployed_images = deployed_images(&args.template.images, &objects);

    let mut credentials = apply_cmd::load_credentials(&runtime, &args.cluster)?;
    let rt = crate::client::runtime().map_err(anyhow::Error::from)?;
    let wait = (!args.no_wait).then_some(args.wait);
    let (summary, namespace, server) = rt.block_on(async {
        let session = Session::connect(&mut credentials, &args.cluster).await?;
        let summary = session.apply_and_wait(objects, wait, sections).await?;
        Ok::<_, CliError>((
            summary,
            session.namespace.clone(),
            session.server().to_owned(),
        ))
    })?;
    print_summary(
        &summary,
        &namespace,
        &server,
        &deployed_images,
        args.cluster.dry_run,
    );
    if let Some(path) = &args.dotenv_out
        && !args.cluster.dry_run
    {
        write_dotenv(&runtime, path, &summary, &namespace, &deployed_images)?;
    }
    Ok(())
}

/// What the render did, for the collapsed section: variables used (names and origins, never
/// values), image changes, apiVersion upgrades, and the objects.
fn render_lines(
    objects: &[Object],
    report: &manifest_step::Report,
    variables: &Variables,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut used: Vec<&str> = report
        .substitutions
        .iter()
        .map(|s| s.variable.as_str())
        .collect();
    used.sort_unstable();
    used.dedup();
    for name in used {
        let origin = variables
            .origin(name)
            .map_or_else(|| "its default".to_owned(), ToString::to_string);
        lines.push(format!("  ${{{name}}} from {origin}"));
    }
    for c in &report.images {
        lines.push(format!(
            "  {}:{}:{}: {}/{} container {}: image {} -> {}",
            c.source,
            c.line,
            c.column,
            c.kind.to_ascii_lowercase(),
            c.name,
            c.container,
            if c.old_image.is_empty() {
                "(none)"
            } else {
                &c.old_image
            },
            c.new_image
        ));
    }
    for a in report.api_versions.iter().filter(|a| a.upgraded) {
        lines.push(format!(
            "  {}:{}:{}: {} {}: {} -> {}",
            a.source,
            a.line,
            a.column,
            a.kind,
            a.name,
            a.old_api_version,
            a.new_api_version.as_deref().unwrap_or("-")
        ));
    }
    for o in objects {
        lines.push(format!("  {}  ({})", o.display_name(), o.origin));
    }
    lines
}

/// The images this deploy rolls out: the `--image` references, else the distinct container
/// images of the workloads.
fn deployed_images(overrides: &[(String, String)], objects: &[Object]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |image: &str| {
        if !out.iter().any(|i| i == image) {
            out.push(image.to_owned());
        }
    };
    if !overrides.is_empty() {
        for (_, reference) in overrides {
            push(reference);
        }
        return out;
    }
    for o in objects {
        let spec = match (o.group.as_str(), o.kind.as_str()) {
            ("apps", "Deployment" | "StatefulSet" | "DaemonSet") | ("batch", "Job") => {
                o.value.pointer("/spec/template/spec")
            }
            ("batch", "CronJob") => o.value.pointer("/spec/jobTemplate/spec/template/spec"),
            ("", "Pod") => o.value.get("spec"),
            _ => None,
        };
        for containers in ["containers", "initContainers"] {
            for c in spec
                .and_then(|s| s.get(containers))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(image) = c.get("image").and_then(Value::as_str) {
                    push(image);
                }
            }
        }
    }
    out
}

fn print_summary(
    summary: &RunSummary,
    namespace: &str,
    server: &str,
    images: &[String],
    dry_run: bool,
) {
    let mut text = String::from(if dry_run {
        "Summary (dry run: nothing was changed)\n"
    } else {
        "Summary\n"
    });
    text.push_str(&format!("  namespace  {namespace} on {server}\n"));
    text.push_str(&format!(
        "  objects    {} ({}) in {}\n",
        summary.applied.len(),
        crate::deploy::apply::summary(&summary.applied),
        log::seconds(summary.apply_time)
    ));
    match images {
        [] => {}
        [one] => text.push_str(&format!("  image      {one}\n")),
        many => text.push_str(&format!("  images     {}\n", many.join(", "))),
    }
    match summary.rollout_time {
        Some(t) => text.push_str(&format!(
            "  rollout    {} workload(s) rolled out in {}\n",
            summary.rollouts.len(),
            log::seconds(t)
        )),
        None if !dry_run => text.push_str("  rollout    not waited for (--no-wait)\n"),
        None => {}
    }
    output::stdout(&text);
}

/// Merges the deploy's facts into the dotenv file at `path` (GitLab-valid, atomically).
fn write_dotenv(
    runtime: &Runtime,
    path: &std::path::Path,
    summary: &RunSummary,
    namespace: &str,
    images: &[String],
) -> CliResult {
    let mut assignments = vec![("DEPLOYED_NAMESPACE".to_owned(), namespace.to_owned())];
    if let Some(first) = images.first() {
        assignments.push(("DEPLOYED_IMAGE".to_owned(), first.clone()));
    }
    if images.len() > 1 {
        assignments.push(("DEPLOYED_IMAGES".to_owned(), images.join(" ")));
    }
    if let Some(t) = summary.rollout_time {
        assignments.push(("ROLLOUT_SECONDS".to_owned(), rollout_seconds(t)));
    }
    let existing = match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(CliError::from(anyhow::anyhow!(
                "reading {}: {e}",
                path.display()
            )));
        }
    };
    let outcome = match dotenv::set(
        runtime,
        existing.as_deref(),
        &assignments,
        GitlabLimits::default(),
    )? {
        Ok(outcome) => outcome,
        Err(diagnostics) => {
            for d in diagnostics {
                output::stderr_line(&format!("{}: {}", path.display(), d.message));
            }
            return Err(CliError::reported_invalid());
        }
    };
    crate::fsutil::write_atomic(path, outcome.text.as_bytes(), None)
        .map_err(|e| CliError::from(anyhow::anyhow!("writing {}: {e}", path.display())))?;
    output::stdout(&format!(
        "Wrote {} ({})\n",
        path.display(),
        assignments
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(())
}

/// Whole seconds, rounded up: a dotenv value that scripts can compare as an integer.
fn rollout_seconds(d: Duration) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::deploy::objects::Origin;
    use serde_json::json;

    fn object(value: Value) -> Object {
        Object::new(
            value,
            Origin {
                source: "k8s/app.yaml".into(),
                index: 1,
                item: 0,
                line: 1,
                column: 1,
            },
        )
        .unwrap()
    }

    #[test]
    fn deployed_images_prefer_overrides() {
        let d = object(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {
                "initContainers": [{"name": "migrate", "image": "registry.example/app:1"}],
                "containers": [{"name": "app", "image": "registry.example/app:1"},
                               {"name": "proxy", "image": "envoy:1.30"}]
            }}}
        }));
        assert_eq!(
            deployed_images(&[], std::slice::from_ref(&d)),
            ["registry.example/app:1", "envoy:1.30"]
        );
        assert_eq!(
            deployed_images(&[("app".into(), "registry.example/app:2".into())], &[d]),
            ["registry.example/app:2"]
        );
    }

    #[test]
    fn rollout_seconds_round_up() {
        assert_eq!(rollout_seconds(Duration::from_millis(3200)), "4");
        assert_eq!(rollout_seconds(Duration::from_secs(3)), "3");
        assert_eq!(rollout_seconds(Duration::ZERO), "0");
    }
}
