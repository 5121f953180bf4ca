//! `deny-latest`, an example custom step: a policy check that refuses manifests whose containers
//! run a floating image (no tag, or the `latest` tag, without a digest) or have no resource
//! limits.
//!
//! Parameters (`with:` in `kstep.yaml`, all optional):
//! - `required-limits`: the resources every container must limit, default `["cpu", "memory"]`
//!   (`[]` turns the check off);
//! - `require-digest`: every image must be pinned by digest (`@sha256:…`), default `false`.
//!
//! Everything here is plain Rust over `serde_json` values, unit-tested natively
//! (`cargo test -p kstep-example-deny-latest`); `wit` is the WIT glue, built for wasm32 only.

use serde_json::Value;

// The WIT glue exists only in the wasm32-wasip2 build; native builds are the core, for tests.
#[cfg(target_arch = "wasm32")]
mod wit;

/// The step's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Resource names that must appear under `resources.limits` of every container.
    pub required_limits: Vec<String>,
    /// Whether every image must carry a digest.
    pub require_digest: bool,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            required_limits: vec!["cpu".into(), "memory".into()],
            require_digest: false,
        }
    }
}

impl Params {
    /// Reads the parameters from the JSON object the host passes.
    ///
    /// # Errors
    /// A message naming the parameter that is unknown or has the wrong type.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("parameters are not JSON: {e}"))?;
        let Value::Object(map) = value else {
            return Err("parameters must be a mapping".into());
        };
        let mut params = Self::default();
        for (key, value) in map {
            match key.as_str() {
                "required-limits" => {
                    let list = value
                        .as_array()
                        .ok_or("`required-limits` must be a list of resource names")?;
                    params.required_limits = list
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_owned)
                                .ok_or("`required-limits` must be a list of resource names")
                        })
                        .collect::<Result<_, _>>()?;
                }
                "require-digest" => {
                    params.require_digest = value
                        .as_bool()
                        .ok_or("`require-digest` must be true or false")?;
                }
                other => {
                    return Err(format!(
                        "unknown parameter `{other}` (known: required-limits, require-digest)"
                    ));
                }
            }
        }
        Ok(params)
    }
}

/// How serious a [`Finding`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The manifest is refused.
    Error,
    /// Worth a look.
    Warning,
}

/// One problem, tied to a document and a field in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, for a human.
    pub message: String,
    /// 0-based index of the document.
    pub document: u32,
    /// JSON pointer to the field.
    pub field: String,
}

/// What [`check`] looked at, for the step's log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Documents that carry a pod spec.
    pub workloads: usize,
    /// Containers checked (init containers included).
    pub containers: usize,
}

/// An image reference split the way docker/distribution does: the tag is after the last `:`
/// that follows the last `/` (so a registry port is not a tag), the digest after `@`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// Registry and repository.
    pub name: &'a str,
    /// The tag, if any.
    pub tag: Option<&'a str>,
    /// The digest (`sha256:…`), if any.
    pub digest: Option<&'a str>,
}

impl<'a> ImageRef<'a> {
    /// Splits `image`.
    pub fn parse(image: &'a str) -> Self {
        let (rest, digest) = match image.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (image, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        match rest[last_slash..].rfind(':') {
            Some(colon) => {
                let colon = last_slash + colon;
                Self {
                    name: &rest[..colon],
                    tag: Some(&rest[colon + 1..]),
                    digest,
                }
            }
            None => Self {
                name: rest,
                tag: None,
                digest,
            },
        }
    }
}

/// Where a pod spec lives in the objects that embed one (Pod, workload controllers, CronJob,
/// PodTemplate and look-alike custom resources).
const POD_SPEC_POINTERS: &[&str] = &[
    "/spec/template/spec",
    "/spec/jobTemplate/spec/template/spec",
    "/template/spec",
];

/// Checks every container of every document.
pub fn check(params: &Params, documents: &[Value]) -> (Vec<Finding>, Summary) {
    let mut findings = Vec::new();
    let mut summary = Summary::default();
    for (index, doc) in documents.iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let Some((pointer, spec)) = pod_spec(doc) else {
            continue;
        };
        summary.workloads += 1;
        let what = describe(doc);
        for list in ["initContainers", "containers"] {
            let Some(containers) = spec.get(list).and_then(Value::as_array) else {
                continue;
            };
            for (i, container) in containers.iter().enumerate() {
                summary.containers += 1;
                let at = format!("{pointer}/{list}/{i}");
                let name = container
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("(unnamed)");
                let mut report = |field: String, message: String| {
                    findings.push(Finding {
                        severity: Severity::Error,
                        message: format!("{what}: container `{name}`: {message}"),
                        document: index,
                        field,
                    });
                };
                check_image(params, container, &at, &mut report);
                check_limits(params, container, &at, &mut report);
            }
        }
    }
    (findings, summary)
}

fn check_image(
    params: &Params,
    container: &Value,
    at: &str,
    report: &mut impl FnMut(String, String),
) {
    let field = format!("{at}/image");
    let Some(image) = container.get("image").and_then(Value::as_str) else {
        report(field, "has no image".into());
        return;
    };
    let image_ref = ImageRef::parse(image);
    if image_ref.digest.is_some() {
        return;
    }
    match image_ref.tag {
        None => report(
            field,
            format!("image `{image}` has no tag, which means `latest`; pin a version or a digest"),
        ),
        Some("latest") => report(
            field,
            format!("image `{image}` uses the floating tag `latest`; pin a version or a digest"),
        ),
        Some(_) if params.require_digest => report(
            field,
            format!(
                "image `{image}` is not pinned by digest (`@sha256:…`), which this pipeline requires"
            ),
        ),
        Some(_) => {}
    }
}

fn check_limits(
    params: &Params,
    container: &Value,
    at: &str,
    report: &mut impl FnMut(String, String),
) {
    let limits = container.pointer("/resources/limits");
    let missing: Vec<&str> = params
        .required_limits
        .iter()
        .map(String::as_str)
        .filter(|r| limits.and_then(|l| l.get(*r)).is_none_or(Value::is_null))
        .collect();
    if !missing.is_empty() {
        report(
            format!("{at}/resources/limits"),
            format!("has no {} limit (resources.limits)", missing.join(" or ")),
        );
    }
}

/// The pod spec of `doc` and its JSON pointer, if it has one.
fn pod_spec(doc: &Value) -> Option<(&'static str, &Value)> {
    if doc.get("kind").and_then(Value::as_str) == Some("Pod") {
        return doc.get("spec").map(|s| ("/spec", s));
    }
    POD_SPEC_POINTERS.iter().find_map(|p| {
        doc.pointer(p)
            .filter(|spec| spec.get("containers").is_some())
            .map(|spec| (*p, spec))
    })
}

/// `Deployment web` for messages.
fn describe(doc: &Value) -> String {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("object");
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)");
    format!("{kind} `{name}`")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn deployment(image: &str, limits: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": image, "resources": {"limits": limits}}
            ]}}}
        })
    }

    #[test]
    fn image_references_split_like_distribution() {
        let r = ImageRef::parse("registry.local:5000/team/app");
        assert_eq!(
            (r.name, r.tag, r.digest),
            ("registry.local:5000/team/app", None, None)
        );
        let r = ImageRef::parse("registry.local:5000/team/app:2.0");
        assert_eq!(
            (r.name, r.tag),
            ("registry.local:5000/team/app", Some("2.0"))
        );
        let r = ImageRef::parse("ghcr.io/org/app:1.0@sha256:abc");
        assert_eq!((r.tag, r.digest), (Some("1.0"), Some("sha256:abc")));
        assert_eq!(ImageRef::parse("nginx").tag, None);
    }

    #[test]
    fn pinned_and_limited_containers_pass() {
        let docs = [
            deployment("nginx:1.27", json!({"cpu": "1", "memory": "64Mi"})),
            deployment("nginx@sha256:abc", json!({"cpu": "1", "memory": "64Mi"})),
            deployment(
                "registry.local:5000/app:latest@sha256:abc",
                json!({"cpu": "1", "memory": "64Mi"}),
            ),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}),
        ];
        let (findings, summary) = check(&Params::default(), &docs);
        assert_eq!(findings, []);
        assert_eq!(
            summary,
            Summary {
                workloads: 3,
                containers: 3
            }
        );
    }

    #[test]
    fn floating_tags_and_missing_limits_are_errors_with_their_field() {
        let docs = [
            json!({"kind": "Service"}),
            deployment("nginx:latest", json!({"memory": "64Mi"})),
            deployment(
                "registry.local:5000/app",
                json!({"cpu": "1", "memory": "1Gi"}),
            ),
        ];
        let (findings, _) = check(&Params::default(), &docs);
        assert_eq!(findings.len(), 3, "{findings:#?}");
        assert_eq!(findings[0].document, 1);
        assert_eq!(findings[0].field, "/spec/template/spec/containers/0/image");
        assert!(findings[0].message.contains(
            "Deployment `web`: container `app`: image `nginx:latest` uses the floating tag `latest`"
        ));
        assert_eq!(
            findings[1].field,
            "/spec/template/spec/containers/0/resources/limits"
        );
        assert!(
            findings[1]
                .message
                .ends_with("has no cpu limit (resources.limits)"),
            "{}",
            findings[1].message
        );
        assert!(
            findings[2]
                .message
                .contains("has no tag, which means `latest`")
        );
    }

    #[test]
    fn cronjobs_pods_and_init_containers_are_checked() {
        let cron = json!({"kind": "CronJob", "metadata": {"name": "nightly"}, "spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "run", "image": "busybox:1.36", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]
        }}}}}});
        let pod = json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}});
        let (findings, summary) = check(&Params::default(), &[cron, pod]);
        assert_eq!(summary.containers, 3);
        let fields: Vec<_> = findings
            .iter()
            .map(|f| (f.document, f.field.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                (
                    0,
                    "/spec/jobTemplate/spec/template/spec/initContainers/0/image"
                ),
                (
                    0,
                    "/spec/jobTemplate/spec/template/spec/initContainers/0/resources/limits"
                ),
                (1, "/spec/containers/0/resources/limits"),
            ]
        );
    }

    #[test]
    fn parameters_tune_the_policy() {
        let params =
            Params::from_json(r#"{"required-limits": ["memory"], "require-digest": true}"#)
                .unwrap();
        let (findings, _) = check(
            &params,
            &[deployment("nginx:1.27", json!({"memory": "1Gi"}))],
        );
        assert_eq!(findings.len(), 1);
        assert!(findings[0].message.contains("not pinned by digest"));
        let params = Params::from_json(r#"{"required-limits": []}"#).unwrap();
        assert_eq!(
            check(&params, &[deployment("nginx:1.27", Value::Null)]).0,
            []
        );
        assert!(
            Params::from_json(r#"{"required-limit": []}"#)
                .unwrap_err()
                .contains("unknown parameter `required-limit`")
        );
        assert!(Params::from_json(r#"{"require-digest": "yes"}"#).is_err());
        assert_eq!(Params::from_json("{}").unwrap(), Params::default());
    }
}
