//! `kstep deploy` as one engine operation, the reference workflow's deploy job: credentials
//! (read and registered first), variables (env files, `--set`, the environment), rendering,
//! apply (dry run first), rollout wait, and the deploy's facts for later jobs in a dotenv file
//! (`DEPLOYED_IMAGE`, `DEPLOYED_NAMESPACE`, `DEPLOYED_URL`, `ROLLOUT_SECONDS`).
//!
//! Every input and output is checked before the cluster is touched: an existing `--dotenv-out`
//! file that GitLab would refuse stops the job before anything is applied.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::error::DeployError;
use super::events::{Event, Reporter};
use super::load::{self, RenderOptions};
use super::objects::Object;
use super::plan;
use super::session::{self, ApplyOptions, RunSummary, Session, Target, WaitOptions};
use super::stamp::Stamp;
use crate::runtime::Runtime;
use crate::steps::dotenv::{self, GitlabLimits};
use crate::steps::manifest::{ImageOverride, VariableSources};

/// What to deploy, where and how.
#[derive(Debug, Clone)]
pub struct DeployJob {
    /// The manifest inputs (files, directories, `-`).
    pub files: Vec<PathBuf>,
    /// Where the variables come from.
    pub variables: VariableSources,
    /// `--image NAME=REF` overrides.
    pub images: Vec<ImageOverride>,
    /// Rewrite removed apiVersions.
    pub upgrade_api_versions: bool,
    /// The cluster.
    pub target: Target,
    /// How to apply.
    pub apply: ApplyOptions,
    /// How to wait; `None`: do not wait.
    pub wait: Option<WaitOptions>,
    /// Where to write the deploy's facts (merged into the file if it exists).
    pub dotenv_out: Option<PathBuf>,
    /// A plan file (`kstep plan --out`): apply only if what would be applied is what it reviewed.
    pub plan: Option<PathBuf>,
    /// `DEPLOYED_URL` as given (`--environment-url`), instead of the manifests' host.
    pub environment_url: Option<String>,
    /// Annotations stamped on the objects once the plan (if any) is verified (`--stamp`).
    pub stamp: Option<Stamp>,
}

/// What a deploy did.
#[derive(Debug)]
pub struct Deployed {
    /// The apply and the wait.
    pub run: RunSummary,
    /// The namespace objects without one went to.
    pub namespace: String,
    /// The API server.
    pub server: String,
    /// The images rolled out: the `--image` references, else the workloads' images.
    pub images: Vec<String>,
    /// The environment URL from the rendered Ingress or HTTPRoute, or why there is none.
    pub url: Result<String, String>,
}

/// Runs the deploy job.
///
/// # Errors
/// Every [`DeployError`]: invalid inputs and outputs before any change, then apply and rollout
/// failures.
pub fn run(
    runtime: &Runtime,
    job: &DeployJob,
    reporter: &dyn Reporter,
) -> Result<Deployed, DeployError> {
    // Credentials first: every secret they hold is registered before a variable is read or a
    // template rendered, so none can reach a log or a manifest unnoticed.
    let credentials = session::load_credentials(runtime, &job.target, reporter)?;
    let existing_dotenv = match &job.dotenv_out {
        Some(path) => Some(check_dotenv_out(runtime, path)?),
        None => None,
    };
    let planned = job.plan.as_deref().map(plan::load).transpose()?;
    let mut objects = render_objects(runtime, job, reporter)?;
    let images = deployed_images(&job.images, &objects);
    let url = match &job.environment_url {
        Some(url) => Ok(url.clone()),
        None => deployed_url(&objects),
    };

    let (run, namespace) = session::block_on(async {
        let session = Session::connect(&credentials, job.target.request_timeout).await?;
        if let (Some(planned), Some(path)) = (&planned, &job.plan) {
            plan::verify(&session, &objects, &job.apply, planned, path, reporter).await?;
        }
        // After the plan check: a plan made in another pipeline reviewed the manifests, not
        // this job's pipeline and job ids.
        if let Some(stamp) = &job.stamp {
            stamp.apply(&mut objects);
        }
        let run = session
            .apply_and_wait(objects, &job.apply, job.wait, reporter)
            .await?;
        Ok((run, session.namespace(&job.apply)))
    })?;
    let deployed = Deployed {
        run,
        namespace,
        server: credentials.connection.server.clone(),
        images,
        url,
    };
    if let (Some(path), Some(existing)) = (&job.dotenv_out, existing_dotenv)
        && !job.apply.dry_run
    {
        write_dotenv(runtime, path, existing.as_deref(), &deployed, reporter)?;
    }
    Ok(deployed)
}

/// Collects the variables of `job` and renders its manifests with them into objects, reporting
/// the render (`kstep deploy`, `kstep plan`). Load the credentials first, so that no template
/// can carry one unnoticed.
///
/// # Errors
/// Unreadable or invalid env files and manifests, documents that are not objects.
pub fn render_objects(
    runtime: &Runtime,
    job: &DeployJob,
    reporter: &dyn Reporter,
) -> Result<Vec<Object>, DeployError> {
    let variables = job.variables.collect(runtime)?;
    reporter.report(Event::RenderStarted {
        files: &job.files,
        images: job.images.len(),
    });
    let rendered = load::render(
        runtime,
        &job.files,
        &RenderOptions {
            variables: variables.pairs(),
            images: job.images.clone(),
            upgrade_api_versions: job.upgrade_api_versions,
            literal: false,
        },
        reporter,
    )
    .and_then(|rendered| {
        let objects = load::objects(rendered.documents, &files_label(&job.files))?;
        Ok((objects, rendered.report))
    });
    if let Ok((objects, report)) = &rendered {
        reporter.report(Event::Rendered {
            objects,
            report,
            variables: &variables,
        });
    }
    reporter.report(Event::RenderEnded);
    rendered.map(|(objects, _)| objects)
}

/// The inputs as a user names them: `k8s/, extra.yaml`.
pub fn files_label(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the dotenv output file if it exists and checks GitLab would take it, so a bad file
/// stops the job before the cluster changes.
fn check_dotenv_out(runtime: &Runtime, path: &Path) -> Result<Option<Vec<u8>>, DeployError> {
    let existing = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(DeployError::Output {
                path: path.to_owned(),
                lines: vec![format!("{}: {e}", path.display())],
                invalid: false,
            });
        }
    };
    let report = dotenv::check(runtime, &existing, GitlabLimits::default())?;
    let errors: Vec<dotenv::Diagnostic> = report
        .problems
        .into_iter()
        .filter(|d| d.severity == dotenv::Severity::Error)
        .collect();
    if errors.is_empty() {
        Ok(Some(existing))
    } else {
        Err(DeployError::Output {
            path: path.to_owned(),
            lines: diagnostic_lines(path, &errors, "--dotenv-out"),
            invalid: true,
        })
    }
}

fn diagnostic_lines(path: &Path, diagnostics: &[dotenv::Diagnostic], flag: &str) -> Vec<String> {
    let label = path.display().to_string();
    let mut lines: Vec<String> = diagnostics
        .iter()
        .map(|d| dotenv::format_diagnostic(&label, d))
        .collect();
    lines.push(format!(
        "{label}: {flag} merges into this file, and GitLab would refuse it as it is; nothing was applied"
    ));
    lines
}

/// The images this deploy rolls out: the `--image` references, else the distinct container
/// images of the workloads.
fn deployed_images(overrides: &[ImageOverride], objects: &[Object]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |image: &str| {
        if !out.iter().any(|i| i == image) {
            out.push(image.to_owned());
        }
    };
    if !overrides.is_empty() {
        for o in overrides {
            push(&o.reference);
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

/// The one obvious URL of what this deploy exposes, for GitLab's `environment:url` (via
/// `DEPLOYED_URL`), or why there is none: the single non-wildcard host named by the rendered
/// Ingresses (`spec.rules[].host`) and Gateway API HTTPRoutes (`spec.hostnames`). `https` when
/// an Ingress lists the host under `spec.tls` or asks Traefik for TLS (its `router.tls` or
/// `router.tls.certresolver` annotation), or a rendered Gateway has an HTTPS listener for it
/// (an HTTPRoute alone does not say how its Gateway serves it: `http`). Several hosts are not
/// guessed between.
fn deployed_url(objects: &[Object]) -> Result<String, String> {
    let mut routes = 0;
    let mut hosts: Vec<&str> = Vec::new();
    let mut wildcards: Vec<&str> = Vec::new();
    let mut tls: Vec<&str> = Vec::new();
    for o in objects {
        let spec = o.value.get("spec");
        let named = match (o.group.as_str(), o.kind.as_str()) {
            ("networking.k8s.io" | "extensions", "Ingress") => {
                for t in spec
                    .and_then(|s| s.get("tls"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    tls.extend(strings(t.get("hosts")));
                }
                let named: Vec<&str> = spec
                    .and_then(|s| s.get("rules"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r.get("host").and_then(Value::as_str))
                    .filter(|h| !h.is_empty())
                    .collect();
                if traefik_tls(&o.value) {
                    tls.extend(&named);
                }
                named
            }
            ("gateway.networking.k8s.io", "HTTPRoute") => {
                strings(spec.and_then(|s| s.get("hostnames")))
            }
            ("gateway.networking.k8s.io", "Gateway") => {
                for l in spec
                    .and_then(|s| s.get("listeners"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|l| l.get("protocol").and_then(Value::as_str) == Some("HTTPS"))
                {
                    // A listener without a hostname serves every host.
                    tls.push(l.get("hostname").and_then(Value::as_str).unwrap_or("*"));
                }
                continue;
            }
            _ => continue,
        };
        routes += 1;
        for host in named {
            let list = if host.starts_with('*') {
                &mut wildcards
            } else {
                &mut hosts
            };
            if !list.contains(&host) {
                list.push(host);
            }
        }
    }
    match hosts.as_slice() {
        [host] => {
            let scheme = if tls.iter().any(|pattern| covers(pattern, host)) {
                "https"
            } else {
                "http"
            };
            Ok(format!("{scheme}://{host}"))
        }
        [] if routes == 0 => Err("no Ingress or HTTPRoute in the manifests".to_owned()),
        [] if !wildcards.is_empty() => {
            Err(format!("only wildcard hosts ({})", wildcards.join(", ")))
        }
        [] => Err("no Ingress or HTTPRoute names a host".to_owned()),
        several => Err(format!(
            "{} hosts ({}): no single obvious one, set environment:url in the job",
            several.len(),
            several.join(", ")
        )),
    }
}

/// The non-empty strings of a JSON array (absent: none).
fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|h| !h.is_empty())
        .collect()
}

/// Whether an Ingress asks Traefik to serve its routers over TLS (annotation `router.tls:
/// "true"`, or a certificate resolver, which implies it).
fn traefik_tls(ingress: &Value) -> bool {
    let annotation = |name: &str| {
        ingress
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(format!("traefik.ingress.kubernetes.io/{name}")))
            .and_then(Value::as_str)
    };
    annotation("router.tls") == Some("true")
        || annotation("router.tls.certresolver").is_some_and(|r| !r.is_empty())
}

/// Whether a TLS host or listener hostname `pattern` covers `host` (`*` alone: every host;
/// `*.example.com`: exactly one more label).
fn covers(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        None => pattern == host,
        Some("") => true,
        Some(suffix) => host
            .strip_suffix(suffix)
            .is_some_and(|label| !label.is_empty() && !label.contains('.')),
    }
}

/// Merges the deploy's facts into the dotenv file at `path` (GitLab-valid, atomically).
fn write_dotenv(
    runtime: &Runtime,
    path: &Path,
    existing: Option<&[u8]>,
    deployed: &Deployed,
    reporter: &dyn Reporter,
) -> Result<(), DeployError> {
    let mut assignments = vec![("DEPLOYED_NAMESPACE".to_owned(), deployed.namespace.clone())];
    if let Some(first) = deployed.images.first() {
        assignments.push(("DEPLOYED_IMAGE".to_owned(), first.clone()));
    }
    if deployed.images.len() > 1 {
        assignments.push(("DEPLOYED_IMAGES".to_owned(), deployed.images.join(" ")));
    }
    let mut left_out = Vec::new();
    match &deployed.url {
        Ok(url) => assignments.push(("DEPLOYED_URL".to_owned(), url.clone())),
        Err(why) => left_out.push(format!("DEPLOYED_URL: {why}")),
    }
    if let Some(t) = deployed.run.rollout_time {
        assignments.push(("ROLLOUT_SECONDS".to_owned(), rollout_seconds(t)));
    }
    let outcome = dotenv::set(runtime, existing, &assignments, GitlabLimits::default())?.map_err(
        |diagnostics| DeployError::Output {
            path: path.to_owned(),
            lines: diagnostic_lines(path, &diagnostics, "--dotenv-out"),
            invalid: true,
        },
    )?;
    crate::fsutil::write_atomic(path, outcome.text.as_bytes(), None).map_err(|e| {
        DeployError::Output {
            path: path.to_owned(),
            lines: vec![format!("writing {}: {e}", path.display())],
            invalid: false,
        }
    })?;
    let names: Vec<String> = assignments.into_iter().map(|(k, _)| k).collect();
    reporter.report(Event::DotenvWritten {
        path,
        names: &names,
        left_out: &left_out,
    });
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
    use crate::deploy::objects::tests::object;
    use serde_json::json;

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
        let app2 = ImageOverride {
            name: "app".into(),
            reference: "registry.example/app:2".into(),
        };
        assert_eq!(deployed_images(&[app2], &[d]), ["registry.example/app:2"]);
    }

    fn url(docs: &[Value]) -> Result<String, String> {
        let objects: Vec<Object> = docs.iter().cloned().map(object).collect();
        deployed_url(&objects)
    }

    fn ingress(name: &str, hosts: &[&str], tls: &[&str]) -> Value {
        let rules: Vec<Value> = hosts.iter().map(|h| json!({"host": h})).collect();
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
            "spec": {"rules": rules, "tls": [{"hosts": tls, "secretName": "cert"}]}
        })
    }

    fn route(hostnames: &[&str]) -> Value {
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r"}, "spec": {"hostnames": hostnames}
        })
    }

    #[test]
    fn deployed_url_from_one_obvious_host() {
        let deployment =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}});
        // The example's Ingress: one host, no TLS.
        assert_eq!(
            url(&[
                deployment.clone(),
                ingress("blog", &["blog.example.com"], &[])
            ]),
            Ok("http://blog.example.com".into())
        );
        // TLS for the host, directly or by a wildcard of one label.
        assert_eq!(
            url(&[ingress("a", &["a.example.com"], &["a.example.com"])]),
            Ok("https://a.example.com".into())
        );
        assert_eq!(
            url(&[ingress("a", &["a.example.com"], &["*.example.com"])]),
            Ok("https://a.example.com".into())
        );
        assert_eq!(
            url(&[ingress("a", &["a.b.example.com"], &["*.example.com"])]),
            Ok("http://a.b.example.com".into())
        );
        // Traefik's TLS annotations (the example's blog Ingress uses a certificate resolver).
        let mut traefik = ingress("blog", &["blog.example.com"], &[]);
        traefik["metadata"]["annotations"] = json!({
            "traefik.ingress.kubernetes.io/router.entrypoints": "websecure",
            "traefik.ingress.kubernetes.io/router.tls.certresolver": "letsencrypt"
        });
        assert_eq!(
            url(&[traefik.clone()]),
            Ok("https://blog.example.com".into())
        );
        traefik["metadata"]["annotations"] =
            json!({"traefik.ingress.kubernetes.io/router.tls": "true"});
        assert_eq!(
            url(&[traefik.clone()]),
            Ok("https://blog.example.com".into())
        );
        traefik["metadata"]["annotations"] =
            json!({"traefik.ingress.kubernetes.io/router.tls": "false"});
        assert_eq!(url(&[traefik]), Ok("http://blog.example.com".into()));
        // The same host in two rules and two Ingresses is still one host.
        assert_eq!(
            url(&[
                ingress("a", &["x.example.com", "x.example.com"], &[]),
                ingress("b", &["x.example.com"], &["x.example.com"]),
            ]),
            Ok("https://x.example.com".into())
        );
        // An HTTPRoute: http, unless a rendered Gateway serves the host over HTTPS.
        assert_eq!(
            url(&[route(&["r.example.com"])]),
            Ok("http://r.example.com".into())
        );
        let gateway = |hostname: Option<&str>, protocol: &str| {
            let mut listener = json!({"name": "l", "port": 443, "protocol": protocol});
            if let Some(h) = hostname {
                listener["hostname"] = json!(h);
            }
            json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                "metadata": {"name": "g"}, "spec": {"listeners": [listener]}
            })
        };
        assert_eq!(
            url(&[route(&["r.example.com"]), gateway(None, "HTTPS")]),
            Ok("https://r.example.com".into())
        );
        assert_eq!(
            url(&[
                route(&["r.example.com"]),
                gateway(Some("*.example.com"), "HTTPS")
            ]),
            Ok("https://r.example.com".into())
        );
        assert_eq!(
            url(&[
                route(&["r.example.com"]),
                gateway(Some("other.example.com"), "HTTPS")
            ]),
            Ok("http://r.example.com".into())
        );
        assert_eq!(
            url(&[route(&["r.example.com"]), gateway(None, "HTTP")]),
            Ok("http://r.example.com".into())
        );
    }

    #[test]
    fn no_deployed_url_without_one_obvious_host() {
        let deployment =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}});
        assert_eq!(
            url(&[deployment]),
            Err("no Ingress or HTTPRoute in the manifests".into())
        );
        assert_eq!(
            url(&[ingress("a", &[], &[])]),
            Err("no Ingress or HTTPRoute names a host".into())
        );
        assert_eq!(
            url(&[route(&["*.example.com"])]),
            Err("only wildcard hosts (*.example.com)".into())
        );
        assert_eq!(
            url(&[ingress("a", &["a.example.com"], &[]), route(&["b.example.com"])]),
            Err("2 hosts (a.example.com, b.example.com): no single obvious one, set environment:url in the job".into())
        );
        // A wildcard next to one real host does not hide it.
        assert_eq!(
            url(&[ingress("a", &["a.example.com", "*.example.com"], &[])]),
            Ok("http://a.example.com".into())
        );
    }

    #[test]
    fn rollout_seconds_round_up() {
        assert_eq!(rollout_seconds(Duration::from_millis(3200)), "4");
        assert_eq!(rollout_seconds(Duration::from_secs(3)), "3");
        assert_eq!(rollout_seconds(Duration::ZERO), "0");
    }
}
