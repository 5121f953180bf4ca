//! Waiting for rollouts by watching them: one watch per kind and namespace, one pod watch per
//! namespace; progress is reported only when it changes, and a failure or timeout is diagnosed
//! with the rollout pods' problems and the recent Warning events.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::{BoxStream, SelectAll};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use kube::{Client, ResourceExt as _};
use tokio::time::Instant;

use super::status::{
    Diagnosis, Finished, PodProblem, Progress, Workload, WorkloadKind, evaluate, one_line,
    pod_problems, selector_matches, text,
};
use crate::deploy::events::{self, Reporter};
use crate::deploy::watch::{self, Change};
use crate::deploy::{api_error, log};

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
    reporter: &dyn Reporter,
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
                    reporter.report(events::Event::Warning(&format!(
                        "warning: cannot watch pods in namespace {ns} ({}); failures will be \
                         reported without pod details",
                        api_error::describe(&e)
                    )));
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
                    let finished = Finished {
                        workload: workload.clone(),
                        message,
                        elapsed: now.duration_since(started),
                    };
                    reporter.report(events::Event::RolloutDone(&finished));
                    t.done = Some(finished);
                }
                Progress::Failed(reason) => failed.push((workload.clone(), reason)),
                Progress::Pending(line) => {
                    if t.last_line.as_ref() != Some(&line) {
                        reporter.report(events::Event::RolloutProgress {
                            workload,
                            message: &line,
                        });
                        t.last_line = Some(line);
                    }
                    for p in problems.iter().filter(|p| !t.last_problems.contains(p)) {
                        reporter.report(events::Event::RolloutProgress {
                            workload,
                            message: &p.to_string(),
                        });
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
