//! `ci-labels`, an example custom step: stamps every manifest with the GitLab CI metadata of the
//! job that deploys it (commit, pipeline, project…), from the variables the pipeline passes.
//!
//! The step only sees the variables its `kstep.yaml` entry lists (`variables: [CI_COMMIT_SHA, …]`);
//! each one it knows becomes a label (when the value is a valid label value) or an annotation:
//!
//! | variable               | key                        | as                       |
//! |------------------------|----------------------------|--------------------------|
//! | `CI_COMMIT_SHA`        | `<prefix>commit-sha`       | label                    |
//! | `CI_PIPELINE_ID`       | `<prefix>pipeline-id`      | label                    |
//! | `CI_COMMIT_REF_NAME`   | `<prefix>ref`              | annotation               |
//! | `CI_PROJECT_PATH`      | `<prefix>project`          | annotation               |
//! | `CI_PIPELINE_URL`      | `<prefix>pipeline-url`     | annotation               |
//! | `CI_JOB_URL`           | `<prefix>job-url`          | annotation               |
//! | `CI_PROJECT_PATH_SLUG` | `app.gitlab.com/app`       | annotation (GitLab's own)|
//! | `CI_ENVIRONMENT_SLUG`  | `app.gitlab.com/env`       | annotation (GitLab's own)|
//!
//! Parameters (`with:`, all optional): `prefix` (default `ci.gitlab.com/`; use a domain you
//! own) and `pod-templates` (default `false`): also stamp pod templates, so the pods carry the
//! metadata — which changes the template, hence rolls the pods, on every pipeline.
//!
//! Plain Rust over `serde_json` values, unit-tested natively; `wit` is the wasm32-only glue.

use serde_json::{Map, Value};

// The WIT glue exists only in the wasm32-wasip2 build; native builds are the core, for tests.
#[cfg(target_arch = "wasm32")]
mod wit;

/// The step's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Prefix of the keys kstep owns (`ci.gitlab.com/` by default).
    pub prefix: String,
    /// Whether pod templates are stamped too.
    pub pod_templates: bool,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            prefix: "ci.gitlab.com/".into(),
            pod_templates: false,
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
                "prefix" => {
                    let prefix = value.as_str().ok_or("`prefix` must be a string")?;
                    if !prefix.is_empty() && !prefix.ends_with('/') {
                        return Err(format!("`prefix` must end with `/` (got `{prefix}`)"));
                    }
                    params.prefix = prefix.to_owned();
                }
                "pod-templates" => {
                    params.pod_templates = value
                        .as_bool()
                        .ok_or("`pod-templates` must be true or false")?;
                }
                other => {
                    return Err(format!(
                        "unknown parameter `{other}` (known: prefix, pod-templates)"
                    ));
                }
            }
        }
        Ok(params)
    }
}

/// Where one CI variable goes.
struct Rule {
    variable: &'static str,
    /// The key, `{}` standing for the prefix.
    key: &'static str,
    label: bool,
}

const RULES: &[Rule] = &[
    Rule {
        variable: "CI_COMMIT_SHA",
        key: "{}commit-sha",
        label: true,
    },
    Rule {
        variable: "CI_PIPELINE_ID",
        key: "{}pipeline-id",
        label: true,
    },
    Rule {
        variable: "CI_COMMIT_REF_NAME",
        key: "{}ref",
        label: false,
    },
    Rule {
        variable: "CI_PROJECT_PATH",
        key: "{}project",
        label: false,
    },
    Rule {
        variable: "CI_PIPELINE_URL",
        key: "{}pipeline-url",
        label: false,
    },
    Rule {
        variable: "CI_JOB_URL",
        key: "{}job-url",
        label: false,
    },
    Rule {
        variable: "CI_PROJECT_PATH_SLUG",
        key: "app.gitlab.com/app",
        label: false,
    },
    Rule {
        variable: "CI_ENVIRONMENT_SLUG",
        key: "app.gitlab.com/env",
        label: false,
    },
];

/// The labels and annotations to stamp, computed once from the variables.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// `metadata.labels` entries.
    pub labels: Vec<(String, String)>,
    /// `metadata.annotations` entries.
    pub annotations: Vec<(String, String)>,
}

impl Stamp {
    /// Builds the stamp from the variables the step was given.
    pub fn new(params: &Params, variables: &[(String, String)]) -> Self {
        let mut stamp = Self::default();
        for rule in RULES {
            let Some((_, value)) = variables.iter().rev().find(|(k, _)| k == rule.variable) else {
                continue;
            };
            let key = rule.key.replace("{}", &params.prefix);
            if rule.label && is_label_value(value) {
                stamp.labels.push((key, value.clone()));
            } else {
                stamp.annotations.push((key, value.clone()));
            }
        }
        stamp
    }

    /// Whether there is nothing to stamp.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }
}

/// Pod templates inside workload objects.
const TEMPLATE_POINTERS: &[&str] = &["/spec/template", "/spec/jobTemplate/spec/template"];

/// Stamps every document (and, when asked, its pod template). Returns how many objects changed.
pub fn apply(params: &Params, stamp: &Stamp, documents: &mut [Value]) -> usize {
    let mut stamped = 0;
    for doc in documents.iter_mut() {
        if !doc.is_object() {
            continue;
        }
        stamp_metadata(doc, stamp);
        stamped += 1;
        if params.pod_templates {
            for pointer in TEMPLATE_POINTERS {
                if let Some(template) = doc.pointer_mut(pointer).filter(|t| t.is_object()) {
                    stamp_metadata(template, stamp);
                    stamped += 1;
                }
            }
        }
    }
    stamped
}

fn stamp_metadata(object: &mut Value, stamp: &Stamp) {
    let Some(object) = object.as_object_mut() else {
        return;
    };
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(metadata) = metadata.as_object_mut() else {
        return;
    };
    for (field, entries) in [
        ("labels", &stamp.labels),
        ("annotations", &stamp.annotations),
    ] {
        if entries.is_empty() {
            continue;
        }
        let map = metadata
            .entry(field)
            .or_insert_with(|| Value::Object(Map::new()));
        if !map.is_object() {
            *map = Value::Object(Map::new());
        }
        if let Some(map) = map.as_object_mut() {
            for (k, v) in entries {
                map.insert(k.clone(), Value::String(v.clone()));
            }
        }
    }
}

/// A Kubernetes label value: at most 63 characters, alphanumerics with `-`, `_`, `.` inside.
pub fn is_label_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    let edge = |b: &u8| b.is_ascii_alphanumeric();
    value.is_empty()
        || (bytes.len() <= 63
            && bytes.first().is_some_and(edge)
            && bytes.last().is_some_and(edge)
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
}

/// The variables this step reads, for the "nothing passed" hint.
pub fn known_variables() -> impl Iterator<Item = &'static str> {
    RULES.iter().map(|r| r.variable)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn labels_when_valid_annotations_otherwise() {
        let stamp = Stamp::new(
            &Params::default(),
            &vars(&[
                ("CI_COMMIT_SHA", "0123456789abcdef0123456789abcdef01234567"),
                (
                    "CI_PIPELINE_URL",
                    "https://gitlab.example/g/p/-/pipelines/42",
                ),
                ("CI_PROJECT_PATH", "g/p"),
                ("CI_ENVIRONMENT_SLUG", "production"),
                ("UNRELATED", "x"),
            ]),
        );
        assert_eq!(
            stamp.labels,
            vars(&[(
                "ci.gitlab.com/commit-sha",
                "0123456789abcdef0123456789abcdef01234567"
            )])
        );
        assert_eq!(
            stamp.annotations,
            vars(&[
                ("ci.gitlab.com/project", "g/p"),
                (
                    "ci.gitlab.com/pipeline-url",
                    "https://gitlab.example/g/p/-/pipelines/42"
                ),
                ("app.gitlab.com/env", "production"),
            ])
        );
    }

    #[test]
    fn an_invalid_label_value_becomes_an_annotation() {
        let stamp = Stamp::new(
            &Params::default(),
            &vars(&[("CI_COMMIT_SHA", "not a sha!")]),
        );
        assert!(stamp.labels.is_empty());
        assert_eq!(
            stamp.annotations,
            vars(&[("ci.gitlab.com/commit-sha", "not a sha!")])
        );
    }

    #[test]
    fn stamps_objects_and_optionally_pod_templates() {
        let stamp = Stamp::new(
            &Params::default(),
            &vars(&[("CI_PIPELINE_ID", "42"), ("CI_JOB_URL", "https://j")]),
        );
        let mut docs = vec![
            json!({"kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
                   "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {}}}}),
            json!({"kind": "ConfigMap"}),
        ];
        assert_eq!(apply(&Params::default(), &stamp, &mut docs), 2);
        assert_eq!(
            docs[0]["metadata"]["labels"],
            json!({"app": "web", "ci.gitlab.com/pipeline-id": "42"})
        );
        assert_eq!(
            docs[1]["metadata"],
            json!({"labels": {"ci.gitlab.com/pipeline-id": "42"}, "annotations": {"ci.gitlab.com/job-url": "https://j"}})
        );
        // The selector and (by default) the pod template are left alone.
        assert_eq!(
            docs[0]["spec"]["selector"],
            json!({"matchLabels": {"app": "web"}})
        );
        assert_eq!(
            docs[0]["spec"]["template"]["metadata"],
            json!({"labels": {"app": "web"}})
        );

        let params = Params {
            pod_templates: true,
            ..Params::default()
        };
        assert_eq!(apply(&params, &stamp, &mut docs), 3);
        assert_eq!(
            docs[0]["spec"]["template"]["metadata"]["labels"]["ci.gitlab.com/pipeline-id"],
            "42"
        );
    }

    #[test]
    fn parameters() {
        let p = Params::from_json(r#"{"prefix": "example.com/", "pod-templates": true}"#).unwrap();
        assert_eq!(
            p,
            Params {
                prefix: "example.com/".into(),
                pod_templates: true
            }
        );
        assert!(
            Params::from_json(r#"{"prefix": "example.com"}"#)
                .unwrap_err()
                .contains("must end with `/`")
        );
        assert!(
            Params::from_json(r#"{"labels": {}}"#)
                .unwrap_err()
                .contains("unknown parameter `labels`")
        );
    }

    #[test]
    fn label_values() {
        assert!(is_label_value("0123abc"));
        assert!(is_label_value(""));
        assert!(!is_label_value("-x"));
        assert!(!is_label_value(&"a".repeat(64)));
        assert!(!is_label_value("a/b"));
    }
}
