//! Stamping objects with where they came from (`--stamp`, on by default inside GitLab CI):
//! GitLab's deploy-board annotations on workloads and their pod templates, and the pipeline,
//! job and commit on every object. Pure: the values come from a lookup (the CI variables).
//!
//! | annotation | from | on |
//! |---|---|---|
//! | `app.gitlab.com/app` | `CI_PROJECT_PATH_SLUG` | workloads, their pod templates |
//! | `app.gitlab.com/env` | `CI_ENVIRONMENT_SLUG` | workloads, their pod templates |
//! | `kstep.dev/pipeline-id` | `CI_PIPELINE_ID` | every object, pod templates |
//! | `kstep.dev/commit-sha` | `CI_COMMIT_SHA` | every object, pod templates |
//! | `kstep.dev/job-id` | `CI_JOB_ID` | every object |
//! | `kstep.dev/job-url` | `CI_JOB_URL` | every object |
//!
//! Each annotation is written only when its variable is set and not empty. A pod template that
//! changes restarts the pods: with the pipeline and commit on it, every pipeline rolls the
//! workloads (a retried job does not: the job is left off pod templates). [`StampMode::Objects`]
//! leaves pod templates alone. A Job's pod template is never stamped: it is immutable, and a
//! changed one would make the next apply of the same Job fail.

use serde_json::{Map, Value};

use super::objects::Object;

/// What `--stamp` covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampMode {
    /// Objects and the pod templates of workloads.
    All,
    /// Objects only: pod templates stay as rendered (no restart from stamping).
    Objects,
}

/// The annotations to stamp, read from the CI variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    mode: StampMode,
    /// Deploy-board annotations: workloads and pod templates.
    board: Vec<(&'static str, String)>,
    /// Traceability annotations on every object.
    objects: Vec<(&'static str, String)>,
    /// Traceability annotations on pod templates (a subset: what changes per pipeline, not
    /// per job).
    pods: Vec<(&'static str, String)>,
}

/// Deploy-board annotations and their variables.
const BOARD: [(&str, &str); 2] = [
    ("app.gitlab.com/app", "CI_PROJECT_PATH_SLUG"),
    ("app.gitlab.com/env", "CI_ENVIRONMENT_SLUG"),
];
/// Traceability annotations, their variables, and whether pod templates get them.
const TRACE: [(&str, &str, bool); 4] = [
    ("kstep.dev/pipeline-id", "CI_PIPELINE_ID", true),
    ("kstep.dev/commit-sha", "CI_COMMIT_SHA", true),
    ("kstep.dev/job-id", "CI_JOB_ID", false),
    ("kstep.dev/job-url", "CI_JOB_URL", false),
];

impl Stamp {
    /// The stamp `mode` writes with the variables `lookup` gives (empty values count as unset).
    pub fn new(mode: StampMode, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |variable: &str| lookup(variable).filter(|v| !v.is_empty());
        let board = BOARD
            .iter()
            .filter_map(|(key, var)| get(var).map(|v| (*key, v)))
            .collect();
        let mut objects = Vec::new();
        let mut pods = Vec::new();
        for (key, var, on_pods) in TRACE {
            if let Some(value) = get(var) {
                if on_pods {
                    pods.push((key, value.clone()));
                }
                objects.push((key, value));
            }
        }
        Self {
            mode,
            board,
            objects,
            pods,
        }
    }

    /// The stamp from the process environment.
    pub fn from_env(mode: StampMode) -> Self {
        Self::new(mode, |name| std::env::var(name).ok())
    }

    /// Whether there is nothing to write (no CI variable set).
    pub fn is_empty(&self) -> bool {
        self.board.is_empty() && self.objects.is_empty()
    }

    /// Annotates `objects` in place.
    pub fn apply(&self, objects: &mut [Object]) {
        for o in objects {
            annotate(&mut o.value, &self.objects);
            let template = match (o.group.as_str(), o.kind.as_str()) {
                ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") => {
                    Some("/spec/template")
                }
                ("batch", "CronJob") => Some("/spec/jobTemplate/spec/template"),
                ("batch", "Job") | ("", "Pod") => None,
                _ => continue,
            };
            annotate(&mut o.value, &self.board);
            if self.mode == StampMode::All
                && let Some(pod) = template.and_then(|t| o.value.pointer_mut(t))
                && pod.is_object()
            {
                annotate(pod, &self.board);
                annotate(pod, &self.pods);
            }
        }
    }
}

/// Removes every stamp annotation from `object` and its pod template: what a plan leaves out
/// of its comparison, the stamps being the pipeline's and not the manifests'.
pub fn remove_stamps(object: &mut Value) {
    let stamp_keys: Vec<&str> = BOARD
        .iter()
        .map(|(key, _)| *key)
        .chain(TRACE.iter().map(|(key, _, _)| *key))
        .collect();
    for pointer in [
        "/metadata/annotations",
        "/spec/template/metadata/annotations",
        "/spec/jobTemplate/spec/template/metadata/annotations",
    ] {
        if let Some(map) = object.pointer_mut(pointer).and_then(Value::as_object_mut) {
            map.retain(|key, _| !stamp_keys.contains(&key.as_str()));
        }
    }
}

/// Sets `annotations` in `metadata.annotations` of `object` (a JSON object), creating both
/// when missing; a value the manifest already gives is replaced.
fn annotate(object: &mut Value, annotations: &[(&'static str, String)]) {
    if annotations.is_empty() {
        return;
    }
    let Some(object) = object.as_object_mut() else {
        return;
    };
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    let Some(metadata) = metadata.as_object_mut() else {
        return;
    };
    let map = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !map.is_object() {
        *map = Value::Object(Map::new());
    }
    if let Some(map) = map.as_object_mut() {
        for (key, value) in annotations {
            map.insert((*key).to_owned(), Value::String(value.clone()));
        }
    }
}

#[cfg(test)]
mod tests {

    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn stamps_come_off_again() {
        let mut value = serde_json::json!({
            "metadata": {"annotations": {"kstep.dev/job-id": "1", "keep": "x"}},
            "spec": {"template": {"metadata": {"annotations": {"app.gitlab.com/app": "a"}}}},
        });
        super::remove_stamps(&mut value);
        assert_eq!(
            value["metadata"]["annotations"],
            serde_json::json!({"keep": "x"})
        );
        assert_eq!(
            value["spec"]["template"]["metadata"]["annotations"],
            serde_json::json!({})
        );
    }
    use crate::deploy::objects::tests::object;
    use serde_json::json;

    fn ci(name: &str) -> Option<String> {
        Some(
            match name {
                "CI_PROJECT_PATH_SLUG" => "group-blog",
                "CI_ENVIRONMENT_SLUG" => "production",
                "CI_PIPELINE_ID" => "1001",
                "CI_COMMIT_SHA" => "3f2a9c1e",
                "CI_JOB_ID" => "2002",
                "CI_JOB_URL" => "https://gitlab.example.com/group/blog/-/jobs/2002",
                _ => return None,
            }
            .to_owned(),
        )
    }

    fn objects() -> Vec<Object> {
        vec![
            object(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "annotations": {"keep": "me", "app.gitlab.com/env": "old"}},
                "spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {}}}
            })),
            object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})),
            object(json!({
                "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cron"},
                "spec": {"jobTemplate": {"spec": {"template": {"spec": {}}}}}
            })),
            object(json!({
                "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
                "spec": {"template": {"spec": {}}}
            })),
        ]
    }

    #[test]
    fn all_stamps_objects_workloads_and_pod_templates() {
        let mut objects = objects();
        Stamp::new(StampMode::All, ci).apply(&mut objects);
        let deployment = &objects[0].value;
        let a = &deployment["metadata"]["annotations"];
        assert_eq!(a["keep"], "me");
        assert_eq!(a["app.gitlab.com/app"], "group-blog");
        assert_eq!(a["app.gitlab.com/env"], "production");
        assert_eq!(a["kstep.dev/pipeline-id"], "1001");
        assert_eq!(a["kstep.dev/commit-sha"], "3f2a9c1e");
        assert_eq!(a["kstep.dev/job-id"], "2002");
        assert_eq!(
            a["kstep.dev/job-url"],
            "https://gitlab.example.com/group/blog/-/jobs/2002"
        );
        let pod = &deployment["spec"]["template"]["metadata"];
        assert_eq!(pod["labels"]["a"], "b");
        assert_eq!(
            pod["annotations"],
            json!({
                "app.gitlab.com/app": "group-blog", "app.gitlab.com/env": "production",
                "kstep.dev/pipeline-id": "1001", "kstep.dev/commit-sha": "3f2a9c1e"
            })
        );
        // Not a workload: the traceability annotations only.
        let config = &objects[1].value["metadata"]["annotations"];
        assert_eq!(config["kstep.dev/pipeline-id"], "1001");
        assert!(config.get("app.gitlab.com/app").is_none());
        // A CronJob's pod template is mutable; a Job's is not, and stays as rendered.
        let cron = &objects[2].value;
        assert_eq!(
            cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["annotations"]["app.gitlab.com/env"],
            "production"
        );
        let job = &objects[3].value;
        assert_eq!(
            job["metadata"]["annotations"]["app.gitlab.com/app"],
            "group-blog"
        );
        assert!(job["spec"]["template"].get("metadata").is_none());
    }

    #[test]
    fn objects_mode_leaves_pod_templates_alone() {
        let mut objects = objects();
        let before = objects[0].value["spec"].clone();
        Stamp::new(StampMode::Objects, ci).apply(&mut objects);
        assert_eq!(objects[0].value["spec"], before);
        assert_eq!(
            objects[0].value["metadata"]["annotations"]["app.gitlab.com/app"],
            "group-blog"
        );
        assert!(
            objects[2].value["spec"]["jobTemplate"]["spec"]["template"]
                .get("metadata")
                .is_none()
        );
    }

    #[test]
    fn only_set_variables_are_written() {
        let only_pipeline = |name: &str| match name {
            "CI_PIPELINE_ID" => Some("7".to_owned()),
            "CI_ENVIRONMENT_SLUG" => Some(String::new()),
            _ => None,
        };
        let mut objects = objects();
        Stamp::new(StampMode::All, only_pipeline).apply(&mut objects);
        assert_eq!(
            objects[0].value["spec"]["template"]["metadata"]["annotations"],
            json!({"kstep.dev/pipeline-id": "7"})
        );
        assert_eq!(
            objects[1].value["metadata"]["annotations"],
            json!({"kstep.dev/pipeline-id": "7"})
        );
        let nothing = Stamp::new(StampMode::All, |_| None);
        assert!(nothing.is_empty());
        let mut objects = self::objects();
        let before: Vec<Value> = objects.iter().map(|o| o.value.clone()).collect();
        nothing.apply(&mut objects);
        let after: Vec<Value> = objects.iter().map(|o| o.value.clone()).collect();
        assert_eq!(before, after);
    }
}
