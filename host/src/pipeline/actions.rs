//! Host actions: what only the host may do, because it needs the cluster credentials — `apply`
//! (server-side apply of the documents) and `wait` (rollout wait for the workloads applied so
//! far), each the deploy engine's own operation ([`crate::deploy::session`]) with options built
//! from the pipeline file. `--dry-run` stops before the first one.
//!
//! The kubeconfig is loaded once per run, before the first step, when the pipeline has a host
//! action: a missing kubeconfig fails the run before anything ran, and every credential is
//! registered with the masker before any step sees a variable (see [`super::wasm`]). The
//! credentials stay in this module; no step kind can reach them.

use std::cell::RefCell;
use std::rc::Rc;

use crate::credentials::Credentials;
use crate::deploy::DeployError;
use crate::deploy::load;
use crate::deploy::rollout::Workload;
use crate::deploy::session::{self, ApplyOptions, Session, Target, WaitOptions};

use super::file::{ApplySpec, WaitSpec};
use super::{Context, Failure, Flow, StepKind};

/// The cluster state one run shares between its host actions.
pub struct Cluster {
    target: Target,
    credentials: RefCell<Option<Credentials>>,
    workloads: RefCell<Vec<Workload>>,
}

impl Cluster {
    /// Nothing loaded yet.
    pub fn new(target: Target) -> Rc<Self> {
        Rc::new(Self {
            target,
            credentials: RefCell::new(None),
            workloads: RefCell::new(Vec::new()),
        })
    }

    /// Loads the kubeconfig (once).
    fn load(&self, cx: &Context<'_>) -> Result<(), Failure> {
        if self.credentials.borrow().is_some() {
            return Ok(());
        }
        let credentials = session::load_credentials(cx.runtime, &self.target, cx.reporter)
            .map_err(|e| cx.fail(&e))?;
        *self.credentials.borrow_mut() = Some(credentials);
        Ok(())
    }

    /// Runs `f` with a connected session, on a runtime of its own.
    fn with_session<T>(
        &self,
        cx: &Context<'_>,
        f: impl AsyncFnOnce(&Session<'_>) -> Result<T, DeployError>,
    ) -> Result<T, Failure> {
        self.load(cx)?;
        let guard = self.credentials.borrow();
        let Some(credentials) = guard.as_ref() else {
            return Err(Failure::Runtime);
        };
        session::block_on(async {
            let session = Session::connect(credentials, self.target.request_timeout).await?;
            f(&session).await
        })
        .map_err(|e| cx.fail(&e))
    }
}

impl From<&ApplySpec> for ApplyOptions {
    fn from(spec: &ApplySpec) -> Self {
        ApplyOptions {
            namespace: spec.namespace.clone(),
            allow_namespaces: spec.allow_namespaces.clone(),
            allow_cluster_scoped: spec.allow_cluster_scoped,
            force_conflicts: spec.force_conflicts,
            field_manager: spec
                .field_manager
                .clone()
                .unwrap_or_else(|| ApplyOptions::default().field_manager),
            applyset: spec.applyset.clone(),
            prune: spec.prune,
            ..ApplyOptions::default()
        }
    }
}

impl From<&WaitSpec> for WaitOptions {
    fn from(spec: &WaitSpec) -> Self {
        WaitOptions {
            timeout: spec.timeout,
            failure_grace: spec.failure_grace,
        }
    }
}

/// `apply:`.
pub struct Apply {
    /// Settings.
    pub spec: ApplySpec,
    /// Shared with the run's other host actions.
    pub cluster: Rc<Cluster>,
}

impl StepKind for Apply {
    fn is_host_action(&self) -> bool {
        true
    }

    fn before_run(&self, cx: &Context<'_>) -> Result<(), Failure> {
        self.cluster.load(cx)
    }

    fn run(&self, cx: &Context<'_>, flow: &mut Flow) -> Result<(), Failure> {
        let documents = flow
            .documents
            .iter()
            .map(|d| (d.value.clone(), d.origin.clone()));
        let objects =
            load::objects(documents, "the documents of the steps before").map_err(|e| match e {
                DeployError::NoObjects(_) => {
                    cx.report("no documents to apply (add a `render` step before `apply`)");
                    Failure::Invalid
                }
                other => cx.fail(&other),
            })?;
        let options = ApplyOptions::from(&self.spec);
        let summary = self.cluster.with_session(cx, async move |session| {
            session
                .apply_and_wait(objects, &options, None, cx.reporter)
                .await
        })?;
        flow.applied += summary.applied.len();
        let mut known = self.cluster.workloads.borrow_mut();
        for w in summary.workloads() {
            if !known.contains(&w) {
                known.push(w);
            }
        }
        Ok(())
    }
}

/// `wait:`.
pub struct Wait {
    /// Settings.
    pub spec: WaitSpec,
    /// Shared with the run's other host actions.
    pub cluster: Rc<Cluster>,
}

impl StepKind for Wait {
    fn is_host_action(&self) -> bool {
        true
    }

    fn before_run(&self, cx: &Context<'_>) -> Result<(), Failure> {
        self.cluster.load(cx)
    }

    fn run(&self, cx: &Context<'_>, _flow: &mut Flow) -> Result<(), Failure> {
        let workloads = self.cluster.workloads.borrow().clone();
        let options = WaitOptions::from(&self.spec);
        self.cluster.with_session(cx, async move |session| {
            session.wait(&workloads, options, cx.reporter).await
        })?;
        Ok(())
    }
}
