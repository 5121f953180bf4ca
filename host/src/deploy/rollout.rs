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
//!
//! - [`status`]: pure evaluation (unit-tested without a cluster);
//! - [`wait`](mod@wait): the watch loop, reporting progress to a [`super::events::Reporter`].

mod status;
mod wait;

pub use status::{
    Diagnosis, Finished, PodProblem, Progress, Workload, WorkloadKind, evaluate, pod_problems,
    selector_matches, workloads_of,
};
pub use wait::{Options, RolloutError, wait};
