//! Waiting for Deployments, StatefulSets, DaemonSets and Jobs to roll out, by watching them.
//!
//! The completion rules are `kubectl rollout status`'s (observedGeneration first, then updated,
//! ready/available counts; a Deployment's `Progressing` condition with reason
//! `ProgressDeadlineExceeded` fails at once; a Job completes or fails by its conditions). Unlike
//! kubectl, kstep also watches the pods of the rollout: a pod whose container has been stuck in a
//! failure state (ImagePullBackOff, CrashLoopBackOff…) for longer than the failure grace fails
//! the rollout without waiting for the timeout, and every failure or timeout is explained with the
//! pods' waiting reasons and the recent Warning events.
//!
//! One watch per kind and namespace, one pod watch per namespace; progress lines are printed
//! only when they change.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::{BoxStream, SelectAll};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use kube::{Client, ResourceExt as _};
use serde_json::Value;
use tokio::time::Instant;

use super::watch::{self, Change};
use super::{api_error, log};
use crate::output;

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

    fn resource(self) -> ApiResource {
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

/// How to wait.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Give up (exit 3) after this long.
    pub timeout: Duration,
    /// A rollout pod stuck in a failure state this long fails the rollout before the timeout.
    pub failure_grace: Duration,
    /// Bound of each watch request (see [`watch::timeout_for`]).
    pub watch_timeout: Duration,
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

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
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

fn one_line(s: &str) -> String {
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

/// Why waiting ended without every workload rolled out.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// A workload failed (the others are reported as they stood).
    #[error("rollout failed: {}", .failed.iter().map(|d| d.workload.to_string()).collect::<Vec<_>>().join(", "))]
    Failed {
        /// The failed workloads.
        failed: Vec<Diagnosis>,
        /// Workloads still rolling out at that moment.
        pending: Vec<Diagnosis>,
    },
    /// The timeout passed.
    #[error("rollout not finished after {}: {}", log::seconds(*.timeout), .pending.iter().map(|d| d.workload.to_string()).collect::<Vec<_>>().join(", "))]
    TimedOut {
        /// The bound that passed.
        timeout: Duration,
        /// What had not rolled out.
        pending: Vec<Diagnosis>,
    },
    /// Watching failed (forbidden, unreachable server).
    #[error("watching the rollout failed: {}", api_error::describe(.0))]
    Api(#[from] kube::Error),
}

impl RolloutError {
    /// Every report line.
    pub fn details(&self) -> Vec<String> {
        match self {
            RolloutError::Failed { failed, pending } => {
                let mut out: Vec<String> = failed.iter().flat_map(Diagnosis::lines).collect();
                if !pending.is_empty() {
                    out.push("still rolling out when it failed:".into());
                    out.extend(pending.iter().flat_map(Diagnosis::lines));
                }
                out
            }
            RolloutError::TimedOut { pending, .. } => {
                pending.iter().flat_map(Diagnosis::lines).collect()
            }
            RolloutError::Api(_) => Vec::new(),
        }
    }
}

enum Message {
    Workloads(WorkloadKind, String, Result<Change, kube::Error>),
    Pods(String, Result<Change, kube::Error>),
}

#[derive(Debug, Default)]
struct Tracked {
    object: Option<DynamicObject>,
    last_line: Option<String>,
    last_problems: Vec<PodProblem>,
    done: Option<Finished>,
    /// Since when a pod of the rollout is in a failure state.
    failing_since: Option<Instant>,
    deleted: bool,
    /// Reported as failed (not pending).
    failed: bool,
}

/// Waits until every workload has rolled out, printing progress lines when they change.
///
/// # Errors
/// [`RolloutError`]: a failure (exit 3), the timeout (exit 3), or a watch that could not be
/// kept up.
pub async fn wait(
    client: &Client,
    workloads: &[Workload],
    options: Options,
) -> Result<Vec<Finished>, RolloutError> {
    let started = Instant::now();
    let deadline = started + options.timeout;
    let mut tracked: BTreeMap<Workload, Tracked> = workloads
        .iter()
        .cloned()
        .map(|w| (w, Tracked::default()))
        .collect();
    if tracked.is_empty() {
        return Ok(Vec::new());
    }
    let mut streams: SelectAll<BoxStream<'static, Message>> = SelectAll::new();
    let kinds: BTreeSet<(WorkloadKind, String)> = tracked
        .keys()
        .map(|w| (w.kind, w.namespace.clone()))
        .collect();
    for (kind, ns) in &kinds {
        let api = Api::namespaced_with(client.clone(), ns, &kind.resource());
        let (kind, ns) = (*kind, ns.clone());
        streams.push(
            watch::collection(api, None, options.watch_timeout)
                .map(move |c| Message::Workloads(kind, ns.clone(), c))
                .boxed(),
        );
    }
    let namespaces: BTreeSet<String> = tracked.keys().map(|w| w.namespace.clone()).collect();
    let pod_resource = ApiResource::erase::<Pod>(&());
    for ns in &namespaces {
        let api = Api::namespaced_with(client.clone(), ns, &pod_resource);
        let ns = ns.clone();
        streams.push(
            watch::collection(api, None, options.watch_timeout)
                .map(move |c| Message::Pods(ns.clone(), c))
                .boxed(),
        );
    }
    let mut pods: HashMap<String, BTreeMap<String, DynamicObject>> = HashMap::new();
    let mut templates = TemplateHashes::default();
    let mut pods_unavailable: BTreeSet<String> = BTreeSet::new();

    loop {
        let grace_deadline = tracked
            .values()
            .filter(|t| t.done.is_none())
            .filter_map(|t| t.failing_since)
            .map(|s| s + options.failure_grace)
            .min();
        let wake = grace_deadline.map_or(deadline, |g| g.min(deadline));
        let message = tokio::select! {
            m = streams.next(), if !streams.is_empty() => m,
            () = tokio::time::sleep_until(wake) => None,
        };
        let touched: Option<String> = match message {
            Some(Message::Workloads(kind, ns, change)) => {
                apply_workload_change(&mut tracked, kind, &ns, change?);
                Some(ns)
            }
            Some(Message::Pods(ns, Ok(change))) => {
                let map = pods.entry(ns.clone()).or_default();
                match change {
                    Change::Reset(list) => {
                        *map = list.into_iter().map(|p| (p.name_any(), p)).collect();
                    }
                    Change::Applied(p) => {
                        map.insert(p.name_any(), p);
                    }
                    Change::Deleted(p) => {
                        map.remove(&p.name_any());
                    }
                }
                Some(ns)
            }
            Some(Message::Pods(ns, Err(e))) => {
                // Diagnosis is a bonus: without pod access, keep waiting on the workloads.
                if pods_unavailable.insert(ns.clone()) {
                    output::stderr_line(&format!(
                        "warning: cannot watch pods in namespace {ns} ({}); failures will be \
                         reported without pod details",
                        api_error::describe(&e)
                    ));
                }
                None
            }
            None => None,
        };
        let now = Instant::now();
        let mut failed = Vec::new();
        for (workload, t) in tracked.iter_mut() {
            if t.done.is_some() || touched.as_ref().is_some_and(|ns| *ns != workload.namespace) {
                continue;
            }
            if t.deleted {
                failed.push((
                    workload.clone(),
                    "was deleted during the rollout".to_owned(),
                ));
                continue;
            }
            let Some(object) = &t.object else { continue };
            let progress = evaluate(workload.kind, object);
            let problems = match &progress {
                Progress::Done(_) => Vec::new(),
                _ => {
                    let selected =
                        rollout_pods(client, workload, object, &pods, &mut templates).await;
                    selected.iter().flat_map(|p| pod_problems(p)).collect()
                }
            };
            match progress {
                Progress::Done(message) => {
                    let elapsed = now.duration_since(started);
                    output::stdout(&format!(
                        "  {workload}: {message} in {}\n",
                        log::seconds(elapsed)
                    ));
                    t.done = Some(Finished {
                        workload: workload.clone(),
                        message,
                        elapsed,
                    });
                }
                Progress::Failed(reason) => failed.push((workload.clone(), reason)),
                Progress::Pending(line) => {
                    if t.last_line.as_ref() != Some(&line) {
                        output::stdout(&format!("  {workload}: {line}\n"));
                        t.last_line = Some(line);
                    }
                    if problems != t.last_problems {
                        for p in problems.iter().filter(|p| !t.last_problems.contains(p)) {
                            output::stdout(&format!("  {workload}: {p}\n"));
                        }
                    }
                    let failing = problems.iter().find(|p| p.failure).cloned();
                    t.last_problems = problems;
                    match (failing, t.failing_since) {
                        (None, _) => t.failing_since = None,
                        (Some(_), None) => t.failing_since = Some(now),
                        (Some(p), Some(since)) if now >= since + options.failure_grace => {
                            let container = if p.container.is_empty() {
                                String::new()
                            } else {
                                format!(" container {}", p.container)
                            };
                            failed.push((
                                workload.clone(),
                                format!(
                                    "pod {}{container} in {} for {} (failure grace {})",
                                    p.pod,
                                    p.reason,
                                    log::seconds(now.duration_since(since)),
                                    log::seconds(options.failure_grace)
                                ),
                            ));
                        }
                        (Some(_), Some(_)) => {}
                    }
                }
            }
        }
        if !failed.is_empty() {
            let mut diagnoses = Vec::new();
            for (workload, reason) in failed {
                diagnoses.push(
                    diagnose(client, &workload, &tracked, &pods, &mut templates, reason).await,
                );
            }
            for d in &diagnoses {
                if let Some(t) = tracked.get_mut(&d.workload) {
                    t.failed = true;
                }
            }
            let pending = pending_diagnoses(client, &tracked, &pods, &mut templates, false).await;
            return Err(RolloutError::Failed {
                failed: diagnoses,
                pending,
            });
        }
        if tracked.values().all(|t| t.done.is_some()) {
            return Ok(tracked.into_values().filter_map(|t| t.done).collect());
        }
        if Instant::now() >= deadline {
            let pending = pending_diagnoses(client, &tracked, &pods, &mut templates, true).await;
            return Err(RolloutError::TimedOut {
                timeout: options.timeout,
                pending,
            });
        }
    }
}

fn apply_workload_change(
    tracked: &mut BTreeMap<Workload, Tracked>,
    kind: WorkloadKind,
    ns: &str,
    change: Change,
) {
    let key = |name: String| Workload {
        kind,
        namespace: ns.to_owned(),
        name,
    };
    match change {
        Change::Reset(list) => {
            for o in list {
                if let Some(t) = tracked.get_mut(&key(o.name_any())) {
                    t.object = Some(o);
                }
            }
        }
        Change::Applied(o) => {
            if let Some(t) = tracked.get_mut(&key(o.name_any())) {
                t.object = Some(o);
            }
        }
        Change::Deleted(o) => {
            if let Some(t) = tracked.get_mut(&key(o.name_any())) {
                t.deleted = true;
            }
        }
    }
}

/// Pod-template hashes of Deployments' current ReplicaSets, looked up on the failure path only.
#[derive(Debug, Default)]
struct TemplateHashes {
    /// (namespace, deployment, revision) → pod-template-hash (None: could not be told).
    known: HashMap<(String, String, String), Option<String>>,
}

impl TemplateHashes {
    async fn current(
        &mut self,
        client: &Client,
        workload: &Workload,
        deployment: &DynamicObject,
    ) -> Option<String> {
        let revision = deployment
            .annotations()
            .get("deployment.kubernetes.io/revision")?
            .clone();
        let key = (
            workload.namespace.clone(),
            workload.name.clone(),
            revision.clone(),
        );
        if let Some(known) = self.known.get(&key) {
            return known.clone();
        }
        let resource = ApiResource::erase::<ReplicaSet>(&());
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &workload.namespace, &resource);
        let uid = deployment.uid();
        let hash = api
            .list(&ListParams::default())
            .await
            .ok()
            .and_then(|list| {
                list.items
                    .into_iter()
                    .filter(|rs| {
                        rs.owner_references()
                            .iter()
                            .any(|o| Some(&o.uid) == uid.as_ref())
                    })
                    .find(|rs| {
                        rs.annotations().get("deployment.kubernetes.io/revision") == Some(&revision)
                    })
                    .and_then(|rs| rs.labels().get("pod-template-hash").cloned())
            });
        self.known.insert(key, hash.clone());
        hash
    }
}

/// The pods of `workload`'s current rollout.
async fn rollout_pods<'a>(
    client: &Client,
    workload: &Workload,
    object: &DynamicObject,
    pods: &'a HashMap<String, BTreeMap<String, DynamicObject>>,
    templates: &mut TemplateHashes,
) -> Vec<&'a DynamicObject> {
    let Some(in_ns) = pods.get(&workload.namespace) else {
        return Vec::new();
    };
    let selector = object.data.pointer("/spec/selector");
    let selected: Vec<&DynamicObject> = in_ns
        .values()
        .filter(|p| selector_matches(selector, p.labels()))
        .collect();
    let revision_label = match workload.kind {
        WorkloadKind::Deployment => {
            // Only worth a ReplicaSet lookup when some selected pod has a problem.
            if selected.iter().all(|p| pod_problems(p).is_empty()) {
                return selected;
            }
            templates
                .current(client, workload, object)
                .await
                .map(|h| ("pod-template-hash", h))
        }
        WorkloadKind::StatefulSet => text(&object.data, "/status/updateRevision")
            .map(|r| ("controller-revision-hash", r.to_owned())),
        WorkloadKind::DaemonSet | WorkloadKind::Job => None,
    };
    match revision_label {
        Some((label, value)) => selected
            .into_iter()
            .filter(|p| p.labels().get(label) == Some(&value))
            .collect(),
        None => selected,
    }
}

async fn pending_diagnoses(
    client: &Client,
    tracked: &BTreeMap<Workload, Tracked>,
    pods: &HashMap<String, BTreeMap<String, DynamicObject>>,
    templates: &mut TemplateHashes,
    with_events: bool,
) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for w in tracked
        .iter()
        .filter(|(_, t)| t.done.is_none() && !t.failed)
        .map(|(w, _)| w)
    {
        let mut d = diagnose(client, w, tracked, pods, templates, String::new()).await;
        if !with_events {
            d.events.clear();
        }
        out.push(d);
    }
    out
}

/// Gathers the evidence about one workload: its status, its rollout pods' problems, and the
/// recent Warning events about it, its ReplicaSets and its pods.
async fn diagnose(
    client: &Client,
    workload: &Workload,
    tracked: &BTreeMap<Workload, Tracked>,
    pods: &HashMap<String, BTreeMap<String, DynamicObject>>,
    templates: &mut TemplateHashes,
    reason: String,
) -> Diagnosis {
    let t = tracked.get(workload);
    let object = t.and_then(|t| t.object.as_ref());
    let status = match object.map(|o| evaluate(workload.kind, o)) {
        Some(Progress::Pending(s) | Progress::Done(s) | Progress::Failed(s)) => s,
        None => "not found".into(),
    };
    let (problems, pod_names) = match object {
        Some(o) => {
            let selected = rollout_pods(client, workload, o, pods, templates).await;
            let names: BTreeSet<String> = selected.iter().map(|p| p.name_any()).collect();
            (
                selected.iter().flat_map(|p| pod_problems(p)).collect(),
                names,
            )
        }
        None => (Vec::new(), BTreeSet::new()),
    };
    let events = warning_events(client, workload, &pod_names).await;
    Diagnosis {
        workload: workload.clone(),
        status,
        reason,
        pods: problems,
        events,
    }
}

/// The last Warning events (core/v1) in the workload's namespace that are about the workload,
/// a ReplicaSet of it (`NAME-hash`) or one of `pods`.
async fn warning_events(
    client: &Client,
    workload: &Workload,
    pods: &BTreeSet<String>,
) -> Vec<String> {
    const KEEP: usize = 6;
    let api: Api<Event> = Api::namespaced(client.clone(), &workload.namespace);
    let Ok(list) = api
        .list(&ListParams::default().fields("type=Warning"))
        .await
    else {
        return Vec::new();
    };
    let prefix = format!("{}-", workload.name);
    let mut events: Vec<(String, String)> = list
        .items
        .into_iter()
        .filter(|e| {
            let name = e.involved_object.name.as_deref().unwrap_or("");
            let kind = e.involved_object.kind.as_deref().unwrap_or("");
            match kind {
                "Pod" => pods.contains(name),
                "ReplicaSet" => name.starts_with(&prefix),
                _ => name == workload.name,
            }
        })
        .map(|e| {
            let when = e
                .last_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
                .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
                .unwrap_or_default();
            let count = e
                .count
                .filter(|c| *c > 1)
                .map(|c| format!(" (x{c})"))
                .unwrap_or_default();
            let line = format!(
                "{}/{}: {}: {}{count}",
                e.involved_object
                    .kind
                    .as_deref()
                    .unwrap_or("?")
                    .to_ascii_lowercase(),
                e.involved_object.name.as_deref().unwrap_or("?"),
                e.reason.as_deref().unwrap_or("Warning"),
                one_line(e.message.as_deref().unwrap_or("")),
            );
            (when, line)
        })
        .collect();
    events.sort();
    let skip = events.len().saturating_sub(KEEP);
    events.into_iter().skip(skip).map(|(_, l)| l).collect()
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
