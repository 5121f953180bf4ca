//! Host actions: what only the host may do, because it needs the cluster credentials — `apply`
//! (server-side apply of the documents, through the deploy engine of `kstep apply`) and `wait`
//! (rollout wait for the workloads applied so far). `--dry-run` stops before the first one.
//!
//! The kubeconfig is loaded once per run, before the first step, when the pipeline has a host
//! action: a missing kubeconfig fails the run before anything ran, and every credential is
//! registered with the masker before any step sees a variable (see [`super::wasm`]). The
//! credentials stay in this module; no step kind can reach them.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use crate::cli::CliError;
use crate::commands::apply::{ClusterArgs, Session, load_credentials};
use crate::credentials::Credentials;
use crate::deploy::objects::Object;
use crate::deploy::rollout::{self, Workload};
use crate::deploy::{DEFAULT_CONCURRENCY, log, watch};
use crate::output;

use super::file::{ApplySpec, WaitSpec};
use super::{Context, Failure, Flow, StepKind};

/// Where the cluster is, from the command line (`kstep run --kubeconfig … --context …`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterOptions {
    /// The kubeconfig; default `$KSTEP_KUBECONFIG`, then `$KUBECONFIG`.
    pub kubeconfig: Option<PathBuf>,
    /// The context; default the kubeconfig's current context.
    pub context: Option<String>,
    /// Time allowed for connecting and each request (default 30 s).
    pub request_timeout: Option<Duration>,
    /// Send credentials to a plain http:// server (`--insecure-plain-http`).
    pub insecure_plain_http: bool,
}

/// The cluster state one run shares between its host actions.
pub struct Cluster {
    options: ClusterOptions,
    credentials: RefCell<Option<Credentials>>,
    workloads: RefCell<Vec<Workload>>,
}

impl Cluster {
    /// Nothing loaded yet.
    pub fn new(options: ClusterOptions) -> Rc<Self> {
        Rc::new(Self {
            options,
            credentials: RefCell::new(None),
            workloads: RefCell::new(Vec::new()),
        })
    }

    fn args(&self, spec: &ApplySpec) -> ClusterArgs {
        ClusterArgs {
            kubeconfig: self.options.kubeconfig.clone(),
            context: self.options.context.clone(),
            namespace: spec.namespace.clone(),
            allow_namespace: spec.allow_namespaces.clone(),
            allow_cluster_scoped: spec.allow_cluster_scoped,
            dry_run: false,
            force_conflicts: spec.force_conflicts,
            concurrency: DEFAULT_CONCURRENCY,
            request_timeout: self
                .options
                .request_timeout
                .unwrap_or(Duration::from_secs(30)),
            insecure_plain_http: self.options.insecure_plain_http,
        }
    }

    /// Loads the kubeconfig (once).
    fn load(&self, cx: &Context<'_>) -> Result<(), Failure> {
        if self.credentials.borrow().is_some() {
            return Ok(());
        }
        let credentials = load_credentials(cx.runtime, &self.args(&ApplySpec::default()))
            .map_err(|e| report_cli_error(cx, &e))?;
        *self.credentials.borrow_mut() = Some(credentials);
        Ok(())
    }

    /// Runs `f` with a connected session, on a tokio runtime of its own.
    fn with_session<T>(
        &self,
        cx: &Context<'_>,
        args: &ClusterArgs,
        f: impl AsyncFnOnce(&Session<'_>) -> Result<T, CliError>,
    ) -> Result<T, Failure> {
        self.load(cx)?;
        let mut guard = self.credentials.borrow_mut();
        let Some(credentials) = guard.as_mut() else {
            return Err(Failure::Runtime);
        };
        let rt = crate::kube::runtime().map_err(|e| {
            cx.report(&format!("cannot start the I/O runtime: {e}"));
            Failure::Runtime
        })?;
        rt.block_on(async {
            let session = Session::connect(credentials, args).await?;
            f(&session).await
        })
        .map_err(|e| report_cli_error(cx, &e))
    }
}

/// Prints a command error (unless already printed) and maps its exit code.
fn report_cli_error(cx: &Context<'_>, e: &CliError) -> Failure {
    let message = e.to_string();
    if !message.is_empty() {
        cx.report(&message);
    }
    match e.exit_code() {
        2 => Failure::Invalid,
        3 => Failure::Rollout,
        _ => Failure::Runtime,
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
        let mut objects = Vec::with_capacity(flow.documents.len());
        let mut invalid = false;
        for doc in &flow.documents {
            match Object::new(doc.value.clone(), doc.origin.clone()) {
                Ok(object) => objects.push(object),
                Err(e) => {
                    output::stderr_line(&e.to_string());
                    invalid = true;
                }
            }
        }
        if invalid {
            return Err(Failure::Invalid);
        }
        if objects.is_empty() {
            cx.report("no documents to apply (add a `render` step before `apply`)");
            return Err(Failure::Invalid);
        }
        let args = self.cluster.args(&self.spec);
        let summary = self.cluster.with_session(cx, &args, async move |session| {
            session
                .apply_and_wait(objects, None, log::Sections::from_env())
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
        if workloads.is_empty() {
            output::stdout(
                "No Deployment, StatefulSet, DaemonSet or Job applied so far: nothing to wait for\n",
            );
            return Ok(());
        }
        let args = self.cluster.args(&ApplySpec::default());
        let options = rollout::Options {
            timeout: self.spec.timeout,
            failure_grace: self.spec.failure_grace,
            watch_timeout: watch::timeout_for(args.request_timeout),
        };
        let sections = log::Sections::from_env();
        sections.start(
            "kstep_rollout",
            &format!(
                "Waiting for {} workload(s) to roll out (timeout {}, failure grace {})",
                workloads.len(),
                log::seconds(options.timeout),
                log::seconds(options.failure_grace)
            ),
            false,
        );
        let started = std::time::Instant::now();
        let result = self.cluster.with_session(cx, &args, async move |session| {
            rollout::wait(session.client(), &workloads, options)
                .await
                .map_err(|e| session.rollout_error(&e))
        });
        sections.end("kstep_rollout");
        let finished = result?;
        output::stdout(&format!(
            "Rolled out {} workload(s) in {}\n",
            finished.len(),
            log::seconds(started.elapsed())
        ));
        Ok(())
    }
}
