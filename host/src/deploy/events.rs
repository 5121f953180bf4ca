//! What the deploy engine tells its caller while it works: [`Event`]s sent to a [`Reporter`].
//!
//! The engine never prints. The command line renders events as plain lines, GitLab
//! collapsible sections or JSON lines (`crate::shell`); a test can collect them.

use std::path::Path;
use std::time::Duration;

use super::apply::Applied;
use super::applyset::Member;
use super::objects::Object;
use super::revision::Info;
use super::rollout::{Finished, Workload};
use crate::credentials::Credentials;
use crate::steps::manifest::{Report, Variables};

/// One thing that happened, in the order it happened.
#[derive(Debug)]
pub enum Event<'a> {
    /// The kubeconfig was found and decoded: which one and which context (never a credential).
    /// The first event of every command that talks to a cluster.
    Kubeconfig(&'a Credentials),
    /// A problem that does not stop the run (`FILE:LINE:COL: warning: …` or a plain text).
    Warning(&'a str),
    /// Rendering manifests starts (`kstep deploy`).
    RenderStarted {
        /// The manifest inputs as given.
        files: &'a [std::path::PathBuf],
        /// How many `--image` overrides apply.
        images: usize,
    },
    /// The manifests were rendered into these objects.
    Rendered {
        /// The objects, in document order.
        objects: &'a [Object],
        /// What the render did: substitutions, image changes, apiVersion upgrades.
        report: &'a Report,
        /// Where each variable came from.
        variables: &'a Variables,
    },
    /// Rendering ended (successfully or not).
    RenderEnded,
    /// Applying starts.
    ApplyStarted {
        /// How many objects.
        objects: usize,
        /// The namespace objects without one go to.
        namespace: &'a str,
        /// The API server.
        server: &'a str,
        /// The kubeconfig context.
        context: &'a str,
        /// The server-side apply field manager.
        field_manager: &'a str,
        /// Only a dry run.
        dry_run: bool,
    },
    /// The server's dry run accepted every object that can be validated now.
    DryRunAccepted {
        /// Objects validated.
        accepted: usize,
        /// Objects validated once the CRDs/Namespaces of the run they need are applied.
        deferred: usize,
    },
    /// One object was applied (or, in a dry run, would be).
    ObjectApplied {
        /// What happened.
        applied: &'a Applied,
        /// The run's default namespace (objects elsewhere name theirs).
        default_namespace: &'a str,
        /// Only a dry run.
        dry_run: bool,
    },
    /// The fields other managers own in an existing object were taken over (or, in a dry run,
    /// would be) before applying it.
    Adopted {
        /// The object.
        object: &'a Object,
        /// The managers whose fields moved (`kubectl-client-side-apply`, `helm`…).
        managers: &'a [String],
        /// The Helm release whose label and annotations were removed, if any.
        helm_release: Option<&'a str>,
        /// The field manager that owns them now.
        field_manager: &'a str,
        /// Only a dry run.
        dry_run: bool,
    },
    /// A dry run could not validate this object before what it needs exists.
    ObjectDeferred {
        /// The object.
        object: &'a Object,
        /// What it waits for (`CustomResourceDefinition x`, `Namespace y`).
        needs: &'a str,
    },
    /// Applying ended: with what was applied and how long it took, or after a failure.
    ApplyEnded {
        /// The applied objects and the time taken; `None` after a failure.
        applied: Option<(&'a [Applied], Duration)>,
        /// Only a dry run.
        dry_run: bool,
    },
    /// Nothing among the applied objects has a rollout to wait for.
    NothingToWaitFor,
    /// Waiting for rollouts starts.
    RolloutStarted {
        /// How many workloads.
        workloads: usize,
        /// The bound of the wait.
        timeout: Duration,
        /// How long a pod may stay in a failure state.
        failure_grace: Duration,
    },
    /// A workload's rollout status or one of its pods' problems changed.
    RolloutProgress {
        /// The workload.
        workload: &'a Workload,
        /// What changed, one line.
        message: &'a str,
    },
    /// One workload rolled out.
    RolloutDone(&'a Finished),
    /// Waiting ended: every workload rolled out in the given time, or `None` after a failure.
    RolloutEnded(Option<(usize, Duration)>),
    /// Deleting starts: every object about to be deleted, listed before the first deletion
    /// (pruning what an apply no longer contains, or tearing a set down).
    DeleteStarted {
        /// The ApplySet (`secrets/NAME in namespace NS`).
        set: &'a str,
        /// What will be deleted, in order.
        members: &'a [Member],
        /// Why: `prune` or `teardown`.
        reason: DeleteReason,
        /// Only a dry run.
        dry_run: bool,
    },
    /// One object was deleted (or, in a dry run, would be).
    Deleted {
        /// The object.
        member: &'a Member,
        /// Only a dry run.
        dry_run: bool,
    },
    /// Deleting ended: how many objects were deleted, or `None` after a failure.
    DeleteEnded {
        /// How many.
        deleted: Option<usize>,
        /// Only a dry run.
        dry_run: bool,
    },
    /// An existing object outside any ApplySet joins the run's set (or, in a dry run, would).
    AdoptedIntoSet {
        /// The object.
        object: &'a Object,
        /// The ApplySet (`secrets/NAME in namespace NS`).
        set: &'a str,
        /// Only a dry run.
        dry_run: bool,
    },
    /// A run was recorded as a revision of its ApplySet.
    RevisionRecorded {
        /// The ApplySet (`secrets/NAME in namespace NS`).
        set: &'a str,
        /// The revision.
        info: &'a Info,
    },
    /// Rolling back to a revision starts.
    RollbackStarted {
        /// The ApplySet.
        set: &'a str,
        /// The revision restored.
        revision: u32,
    },
    /// Rolling back ended.
    RollbackEnded {
        /// The revision restored.
        revision: u32,
        /// Whether it was applied and rolled out.
        ok: bool,
    },
    /// What is about to be applied is what the plan file reviewed (`--plan`).
    PlanMatched {
        /// The plan file.
        path: &'a Path,
        /// How many objects it lists.
        objects: usize,
    },
    /// A deploy's facts were written to a dotenv file.
    DotenvWritten {
        /// The file.
        path: &'a Path,
        /// The variables written.
        names: &'a [String],
        /// The variables left out, each with why (`DEPLOYED_URL: 2 hosts …`).
        left_out: &'a [String],
    },
}

/// Why objects are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// Members of the set the apply no longer contains (`--prune`).
    Prune,
    /// The whole set (`kstep delete`).
    Teardown,
}

impl DeleteReason {
    /// `prune` or `teardown`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeleteReason::Prune => "prune",
            DeleteReason::Teardown => "teardown",
        }
    }
}

/// Receives the engine's events. Implementations decide what to show and where.
pub trait Reporter: Sync {
    /// Called for every event, in order.
    fn report(&self, event: Event<'_>);
}
