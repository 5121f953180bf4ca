//! `kstep demo`: the reference workflow's image and deploy jobs, offline, on an embedded example.
//!
//! It runs the same steps as the real commands — `kstep dotenv set` for the image job's
//! artifact, then `kstep deploy`'s rendering (the dotenv file as variables, `--image`,
//! `--upgrade-api-versions`) — and prints, as one YAML stream, what would be applied and in which
//! order. Nothing touches a cluster or the file system.

use crate::cli::{CliError, CliResult};
use crate::deploy::objects::{Object, Origin, Phase, phase};
use crate::output;
use crate::runtime::Runtime;
use crate::steps::dotenv::{self, Flavor, GitlabLimits};
use crate::steps::manifest::{self, ImageOverride, Options, OutputFormat, Request, Source};

/// The reference workflow's manifest, as its author kept it.
const DEPLOYMENT: &str = include_str!("../../demo/k8s/deployment.yml");
const DEPLOYMENT_NAME: &str = "k8s/deployment.yml";
/// What the image job's `RELEASE_IMAGE` expands to: `$CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA-$CI_PIPELINE_ID-$CI_JOB_ID`.
const RELEASE_IMAGE: &str = "registry.gitlab.com/example/blog:4f2c9e1a-1843-7761";

/// Runs `kstep demo`.
///
/// # Errors
/// Only if a built-in step fails, which would be a bug.
pub fn run() -> CliResult {
    let runtime = Runtime::new()?;
    let mut out =
        String::from("# kstep demo: the reference workflow's image and deploy jobs, offline\n#\n");

    // The image job: `echo "IMAGE=${RELEASE_IMAGE}" >> docker.env` becomes `kstep dotenv set`.
    let assignment = [("IMAGE".to_owned(), RELEASE_IMAGE.to_owned())];
    let docker_env = dotenv::set(&runtime, None, &assignment, GitlabLimits::default())?
        .map_err(|d| bug(&format!("dotenv set refused the demo value: {d:?}")))?
        .text;
    let report = dotenv::check(&runtime, docker_env.as_bytes(), GitlabLimits::default())?;
    out.push_str(&format!(
        "# image job: kstep dotenv set docker.env IMAGE={RELEASE_IMAGE}\n\
         #   docker.env: {} variable(s), {} bytes, {} problem(s): GitLab accepts it as a dotenv report\n#\n",
        report.variables,
        report.bytes,
        report.problems.len()
    ));

    // The deploy job receives the artifact as variables.
    let entries = dotenv::parse(&runtime, docker_env.as_bytes(), Flavor::Gitlab, &[])?
        .map_err(|d| bug(&format!("docker.env does not parse: {d:?}")))?;
    let image = entries
        .iter()
        .find(|e| e.key == "IMAGE")
        .map(|e| e.value.clone())
        .unwrap_or_default();
    out.push_str(
        "# deploy job: kstep deploy -f k8s/ --env-file docker.env --image blog=$IMAGE --upgrade-api-versions\n\
         #   (instead of: sed -i -e \"s|IMAGE|${IMAGE}|g\" deployment.yml && kubectl apply -f deployment.yml)\n",
    );
    let request = Request {
        sources: vec![Source {
            name: DEPLOYMENT_NAME.into(),
            text: DEPLOYMENT.into(),
        }],
        variables: entries
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect(),
        images: vec![ImageOverride {
            name: "blog".into(),
            reference: image,
        }],
        options: Options {
            upgrade_api_versions: true,
            allow_unmatched_images: false,
            literal: false,
            output: OutputFormat::Yaml,
        },
    };
    let rendered = manifest::render(&runtime, &request)?
        .map_err(|d| bug(&format!("the demo manifest does not render: {d:?}")))?;
    for change in &rendered.report.images {
        out.push_str(&format!(
            "#   image: {} {}, container {}: {} -> {}\n",
            change.kind, change.name, change.container, change.old_image, change.new_image
        ));
    }
    for change in &rendered.report.api_versions {
        out.push_str(&format!(
            "#   apiVersion: {} {}: {} (removed in Kubernetes {}) -> {}\n",
            change.kind,
            change.name,
            change.old_api_version,
            change.removed_in,
            change
                .new_api_version
                .as_deref()
                .unwrap_or("no replacement")
        ));
        for note in &change.notes {
            out.push_str(&format!("#     {note}\n"));
        }
    }

    out.push_str("#\n# would apply (server-side apply, field manager kstep), in this order:\n");
    let mut objects = Vec::new();
    for document in &rendered.documents {
        let value = document.value().map_err(anyhow::Error::from)?;
        objects.push(Object::new(value, Origin::from(document)).map_err(|e| bug(&e.to_string()))?);
    }
    for p in Phase::ALL {
        for o in objects.iter().filter(|o| phase(&o.group, &o.kind) == p) {
            let wait = if p == Phase::Workloads {
                ", then wait for its rollout"
            } else {
                ""
            };
            out.push_str(&format!(
                "#   {:<14} {} {}/{} ({}){wait}\n",
                p.label(),
                o.kind,
                o.namespace
                    .as_deref()
                    .unwrap_or("<namespace of the kubeconfig>"),
                o.name,
                o.value
                    .get("apiVersion")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
            ));
        }
    }
    out.push_str("#\n");
    out.push_str(rendered.text.as_deref().unwrap_or_default());
    output::stdout(&out);
    Ok(())
}

fn bug(message: &str) -> CliError {
    CliError::from(anyhow::anyhow!(
        "the embedded demo failed (this is a bug): {message}"
    ))
}
