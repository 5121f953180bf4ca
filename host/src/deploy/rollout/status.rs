//! Rollout status, evaluated without a cluster: which workloads kstep waits for, where one
//! stands ([`evaluate`], `kubectl rollout status`'s rules), what is wrong with a pod
//! ([`pod_problems`]), which pods a selector picks, and the diagnosis of a failure.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt as _;
use kube::api::DynamicObject;
use kube::discovery::ApiResource;
use serde_json::Value;

/// The kinds kstep waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 DaemonSet.
    DaemonSet,
    /// batch/v1 Job.
    Job,
}

impl WorkloadKind {
    /// The kind of an object, if kstep waits for it.
    pub fn of(group: &str, kind: &str) -> Option<Self> {
        Some(match (group, kind) {
            ("apps", "Deployment") => Self::Deployment,
            ("apps", "StatefulSet") => Self::StatefulSet,
            ("apps", "DaemonSet") => Self::DaemonSet,
            ("batch", "Job") => Self::Job,
            _ => return None,
        })
    }

    pub(super) fn resource(self) -> ApiResource {
        match self {
            Self::Deployment => ApiResource::erase::<Deployment>(&()),
            Self::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
            Self::DaemonSet => ApiResource::erase::<DaemonSet>(&()),
            Self::Job => ApiResource::erase::<Job>(&()),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Deployment => "deployment.apps",
            Self::StatefulSet => "statefulset.apps",
            Self::DaemonSet => "daemonset.apps",
            Self::Job => "job.batch",
        }
    }
}

/// One workload to wait for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Workload {
    /// Its kind.
    pub kind: WorkloadKind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.label(), self.name)
    }
}

/// Where one workload's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Still rolling out: what it waits for.
    Pending(String),
    /// Rolled out.
    Done(String),
    /// Failed for good.
    Failed(String),
}

fn int(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

pub(super) fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn condition<'a>(data: &'a Value, kind: &str) -> Option<&'a Value> {
    data.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

/// Evaluates one workload's status, as `kubectl rollout status` does.
pub fn evaluate(kind: WorkloadKind, object: &DynamicObject) -> Progress {
    let data = &object.data;
    let generation = object.metadata.generation.unwrap_or(0);
    let observed = int(data, "/status/observedGeneration").unwrap_or(0);
    let waiting_observed =
        || Progress::Pending("waiting for the controller to observe the new spec".into());
    match kind {
        WorkloadKind::Deployment => {
            if data.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
                return Progress::Done("paused: the rollout was not waited for".into());
            }
            if generation > observed {
                return waiting_observed();
            }
            if let Some(c) = condition(data, "Progressing")
                && c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
            {
                let message = c.get("message").and_then(Value::as_str).unwrap_or("");
                return Progress::Failed(format!("progress deadline exceeded: {message}"));
            }
            let replicas = int(data, "/spec/replicas").unwrap_or(1);
            let updated = int(data, "/status/updatedReplicas").unwrap_or(0);
            let total = int(data, "/status/replicas").unwrap_or(0);
            let available = int(data, "/status/availableReplicas").unwrap_or(0);
            if updated < replicas {
                Progress::Pending(format!("{updated} of {replicas} new replicas updated"))
            } else if total > updated {
                Progress::Pending(format!(
                    "{} old replica(s) pending termination",
                    total - updated
                ))
            } else if available < updated {
                Progress::Pending(format!(
                    "{available} of {updated} updated replicas available"
                ))
            } else {
                Progress::Done(format!("rolled out, {available}/{replicas} available"))
            }
        }
        WorkloadKind::StatefulSet => {
            if text(data, "/spec/updateStrategy/type").is_some_and(|t| t != "RollingUpdate") {
                return Progress::Done("update strategy OnDelete: not waited for".into());
            }
            if observed == 0 || generation > observed {
                return waiting_observed();
            }
            let replicas = int(data, "/spec/replicas").unwrap_or(1);
            let ready = int(data, "/status/readyReplicas").unwrap_or(0);
            let updated = int(data, "/status/updatedReplicas").unwrap_or(0);
            if ready < replicas {
                return Progress::Pending(format!("{ready} of {replicas} pods ready"));
            }
            if let Some(partition) = int(data, "/spec/updateStrategy/rollingUpdate/partition")
                && partition > 0
            {
                let wanted = (replicas - partition).max(0);
                return if updated < wanted {
                    Progress::Pending(format!(
                        "partitioned rollout: {updated} of {wanted} new pods updated"
                    ))
                } else {
                    Progress::Done(format!(
                        "rolled out up to the partition, {updated} new pods updated"
                    ))
                };
            }
            let current = text(data, "/status/currentRevision");
            let update = text(data, "/status/updateRevision");
            if update.is_some() && current != update {
                return Progress::Pending(format!(
                    "{updated} of {replicas} pods at the new revision"
                ));
            }
            Progress::Done(format!("rolled out, {ready}/{replicas} ready"))
        }
        WorkloadKind::DaemonSet => {
            if text(data, "/spec/updateStrategy/type").is_some_and(|t| t != "RollingUpdate") {
                return Progress::Done("update strategy OnDelete: not waited for".into());
            }
            if generation > observed {
                return waiting_observed();
            }
            let desired = int(data, "/status/desiredNumberScheduled").unwrap_or(0);
            let updated = int(data, "/status/updatedNumberScheduled").unwrap_or(0);
            let available = int(data, "/status/numberAvailable").unwrap_or(0);
            if updated < desired {
                Progress::Pending(format!("{updated} of {desired} new pods updated"))
            } else if available < desired {
                Progress::Pending(format!("{available} of {desired} updated pods available"))
            } else {
                Progress::Done(format!("rolled out, {available}/{desired} available"))
            }
        }
        WorkloadKind::Job => {
            if let Some(c) = condition(data, "Failed")
                && c.get("status").and_then(Value::as_str) == Some("True")
            {
                let reason = c.get("reason").and_then(Value::as_str).unwrap_or("Failed");
                let message = c.get("message").and_then(Value::as_str).unwrap_or("");
                return Progress::Failed(format!("job failed: {reason}: {message}"));
            }
            let succeeded = int(data, "/status/succeeded").unwrap_or(0);
            let completions = int(data, "/spec/completions").unwrap_or(1);
            if let Some(c) = condition(data, "Complete")
                && c.get("status").and_then(Value::as_str) == Some("True")
            {
                return Progress::Done(format!("complete, {succeeded}/{completions} succeeded"));
            }
            if data.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
                return Progress::Done("suspended: not waited for".into());
            }
            let active = int(data, "/status/active").unwrap_or(0);
            Progress::Pending(format!(
                "{succeeded} of {completions} completions, {active} active"
            ))
        }
    }
}

/// Container waiting reasons that mean the pod will not start without a change.
const FAILURE_REASONS: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// Why one pod of a rollout is not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    /// The pod.
    pub pod: String,
    /// The container (`init:NAME` for an init container), empty for pod-level problems.
    pub container: String,
    /// The reason (`ImagePullBackOff`, `Unschedulable`…).
    pub reason: String,
    /// The kubelet's or scheduler's message.
    pub message: String,
    /// Whether the reason is a failure kstep does not wait out.
    pub failure: bool,
}

impl fmt::Display for PodProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pod {}", self.pod)?;
        if !self.container.is_empty() {
            write!(f, " container {}", self.container)?;
        }
        write!(f, ": {}", self.reason)?;
        if !self.message.is_empty() {
            write!(f, ": {}", one_line(&self.message))?;
        }
        Ok(())
    }
}

pub(super) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What keeps `pod` from being ready: waiting containers (with restart counts for crash
/// loops), or the scheduler's reason. Empty for a ready or finished pod.
pub fn pod_problems(pod: &DynamicObject) -> Vec<PodProblem> {
    let data = &pod.data;
    let name = pod.name_any();
    if pod.metadata.deletion_timestamp.is_some()
        || matches!(text(data, "/status/phase"), Some("Succeeded"))
    {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (list, prefix) in [
        ("/status/initContainerStatuses", "init:"),
        ("/status/containerStatuses", ""),
    ] {
        for status in data
            .pointer(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(waiting) = status.pointer("/state/waiting") else {
                continue;
            };
            let reason = waiting
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("Waiting");
            if reason == "ContainerCreating" || reason == "PodInitializing" {
                continue;
            }
            let mut message = waiting
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let restarts = status
                .get("restartCount")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if restarts > 0 {
                let exit = status
                    .pointer("/lastState/terminated/exitCode")
                    .and_then(Value::as_i64)
                    .map(|c| format!(", last exit code {c}"))
                    .unwrap_or_default();
                let sep = if message.is_empty() { "" } else { "; " };
                message = format!("{message}{sep}restarted {restarts} time(s){exit}");
            }
            out.push(PodProblem {
                pod: name.clone(),
                container: format!(
                    "{prefix}{}",
                    status.get("name").and_then(Value::as_str).unwrap_or("?")
                ),
                reason: reason.to_owned(),
                message,
                failure: FAILURE_REASONS.contains(&reason),
            });
        }
    }
    if out.is_empty()
        && let Some(c) = condition(data, "PodScheduled")
        && c.get("status").and_then(Value::as_str) == Some("False")
    {
        out.push(PodProblem {
            pod: name,
            container: String::new(),
            reason: c
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("Unschedulable")
                .to_owned(),
            message: c
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            failure: false,
        });
    }
    out
}

/// Whether `labels` satisfy a Kubernetes label selector (`matchLabels` + `matchExpressions`).
/// A missing or empty selector selects nothing here: kstep never attributes every pod of a
/// namespace to one workload.
pub fn selector_matches(selector: Option<&Value>, labels: &BTreeMap<String, String>) -> bool {
    let Some(selector) = selector else {
        return false;
    };
    let match_labels = selector.get("matchLabels").and_then(Value::as_object);
    let expressions = selector.get("matchExpressions").and_then(Value::as_array);
    if match_labels.is_none_or(|m| m.is_empty()) && expressions.is_none_or(|e| e.is_empty()) {
        return false;
    }
    let labels_ok = match_labels.is_none_or(|m| {
        m.iter()
            .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
    });
    let expressions_ok = expressions.is_none_or(|es| {
        es.iter().all(|e| {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|vs| vs.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let value = labels.get(key).map(String::as_str);
            match e.get("operator").and_then(Value::as_str) {
                Some("In") => value.is_some_and(|v| values.contains(&v)),
                Some("NotIn") => value.is_none_or(|v| !values.contains(&v)),
                Some("Exists") => value.is_some(),
                Some("DoesNotExist") => value.is_none(),
                _ => false,
            }
        })
    });
    labels_ok && expressions_ok
}

/// A finished rollout.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The workload.
    pub workload: Workload,
    /// Its final status line.
    pub message: String,
    /// From the start of the wait.
    pub elapsed: Duration,
}

/// Why one workload did not roll out, with the evidence.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    /// The workload.
    pub workload: Workload,
    /// Its last status line.
    pub status: String,
    /// Why it failed (empty on timeout: see `status`).
    pub reason: String,
    /// Pods of the rollout that are not ready, and why.
    pub pods: Vec<PodProblem>,
    /// Recent Warning events of the workload and its pods, newest last.
    pub events: Vec<String>,
}

impl Diagnosis {
    /// The report lines (indented, for a job log).
    pub fn lines(&self) -> Vec<String> {
        let mut out = if self.reason.is_empty() {
            vec![format!("{}: {}", self.workload, self.status)]
        } else {
            vec![
                format!("{}: failed: {}", self.workload, self.reason),
                format!("  status: {}", self.status),
            ]
        };
        for p in &self.pods {
            out.push(format!("  {p}"));
        }
        if !self.events.is_empty() {
            out.push("  recent warning events:".into());
            for e in &self.events {
                out.push(format!("    {e}"));
            }
        }
        out
    }
}

/// Workloads among applied objects, in order, without repeats.
pub fn workloads_of<'a, I>(objects: I) -> Vec<Workload>
where
    I: IntoIterator<Item = (&'a str, &'a str, &'a str, &'a str)>,
{
    let mut out: Vec<Workload> = Vec::new();
    for (group, kind, namespace, name) in objects {
        if let Some(kind) = WorkloadKind::of(group, kind) {
            let w = Workload {
                kind,
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            };
            if !out.contains(&w) {
                out.push(w);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> DynamicObject {
        serde_json::from_value(v).unwrap()
    }

    fn deployment(generation: i64, status: Value) -> DynamicObject {
        obj(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "generation": generation},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
            "status": status,
        }))
    }

    #[test]
    fn workload_resources_are_the_v1_rest_paths() {
        let r = |k: WorkloadKind| {
            let r = k.resource();
            (r.group, r.version, r.api_version, r.kind, r.plural)
        };
        assert_eq!(
            r(WorkloadKind::Deployment),
            (
                "apps".into(),
                "v1".into(),
                "apps/v1".into(),
                "Deployment".into(),
                "deployments".into()
            )
        );
        assert_eq!(r(WorkloadKind::StatefulSet).4, "statefulsets");
        assert_eq!(r(WorkloadKind::DaemonSet).4, "daemonsets");
        assert_eq!(
            r(WorkloadKind::Job),
            (
                "batch".into(),
                "v1".into(),
                "batch/v1".into(),
                "Job".into(),
                "jobs".into()
            )
        );
    }

    #[test]
    fn deployment_progress_like_kubectl() {
        use Progress::*;
        let d = |g, s| evaluate(WorkloadKind::Deployment, &deployment(g, s));
        assert!(
            matches!(d(2, json!({"observedGeneration": 1})), Pending(m) if m.contains("observe"))
        );
        assert_eq!(
            d(
                2,
                json!({"observedGeneration": 2, "updatedReplicas": 1, "replicas": 3})
            ),
            Pending("1 of 3 new replicas updated".into())
        );
        assert_eq!(
            d(
                2,
                json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 4})
            ),
            Pending("1 old replica(s) pending termination".into())
        );
        assert_eq!(
            d(
                2,
                json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 2})
            ),
            Pending("2 of 3 updated replicas available".into())
        );
        assert_eq!(
            d(
                2,
                json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 3})
            ),
            Done("rolled out, 3/3 available".into())
        );
        let failed = d(
            2,
            json!({"observedGeneration": 2, "conditions": [{"type": "Progressing", "status": "False",
                "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"web-1\" has timed out progressing."}]}),
        );
        assert!(matches!(failed, Failed(m) if m.starts_with("progress deadline exceeded")));
    }

    #[test]
    fn statefulset_daemonset_job() {
        let sts = obj(json!({
            "metadata": {"name": "db", "generation": 1},
            "spec": {"replicas": 2, "updateStrategy": {"type": "RollingUpdate"}},
            "status": {"observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 1,
                       "currentRevision": "db-1", "updateRevision": "db-2"}
        }));
        assert!(
            matches!(evaluate(WorkloadKind::StatefulSet, &sts), Progress::Pending(m) if m.contains("new revision"))
        );
        let ds = obj(json!({
            "metadata": {"name": "agent", "generation": 3},
            "spec": {"updateStrategy": {"type": "RollingUpdate"}},
            "status": {"observedGeneration": 3, "desiredNumberScheduled": 1, "updatedNumberScheduled": 1, "numberAvailable": 1}
        }));
        assert_eq!(
            evaluate(WorkloadKind::DaemonSet, &ds),
            Progress::Done("rolled out, 1/1 available".into())
        );
        let job = obj(json!({
            "metadata": {"name": "migrate"},
            "spec": {"completions": 1},
            "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}
        }));
        assert!(
            matches!(evaluate(WorkloadKind::Job, &job), Progress::Failed(m) if m.contains("BackoffLimitExceeded"))
        );
        let done = obj(json!({
            "metadata": {"name": "migrate"},
            "spec": {"completions": 1},
            "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
        }));
        assert_eq!(
            evaluate(WorkloadKind::Job, &done),
            Progress::Done("complete, 1/1 succeeded".into())
        );
    }

    #[test]
    fn pod_problems_name_container_and_reason() {
        let pod = obj(json!({
            "metadata": {"name": "web-abc"},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
                 "lastState": {"terminated": {"exitCode": 1}}},
                {"name": "sidecar", "restartCount": 0, "state": {"running": {}}}
            ]}
        }));
        let problems = pod_problems(&pod);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].failure);
        assert_eq!(
            problems[0].to_string(),
            "pod web-abc container app: CrashLoopBackOff: back-off 40s restarting failed container; restarted 3 time(s), last exit code 1"
        );
        let pending = obj(json!({
            "metadata": {"name": "web-def"},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available"}]}
        }));
        let p = pod_problems(&pending);
        assert_eq!(p[0].reason, "Unschedulable");
        assert!(!p[0].failure);
    }

    #[test]
    fn label_selectors() {
        let labels: BTreeMap<String, String> = [
            ("app".to_owned(), "web".to_owned()),
            ("tier".to_owned(), "fe".to_owned()),
        ]
        .into();
        let sel = json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["fe", "be"]},
            {"key": "canary", "operator": "DoesNotExist"}
        ]});
        assert!(selector_matches(Some(&sel), &labels));
        let other = json!({"matchLabels": {"app": "api"}});
        assert!(!selector_matches(Some(&other), &labels));
        assert!(
            !selector_matches(Some(&json!({})), &labels),
            "empty selects nothing"
        );
        assert!(!selector_matches(None, &labels));
    }

    #[test]
    fn workloads_are_picked_and_deduplicated() {
        let w = workloads_of([
            ("apps", "Deployment", "app", "web"),
            ("", "Service", "app", "web"),
            ("batch", "Job", "app", "migrate"),
            ("apps", "Deployment", "app", "web"),
        ]);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].to_string(), "deployment.apps/web");
    }
}
