//! Connecting and the cluster operations: credentials → client ([`load_credentials`],
//! [`Session::connect`]), then [`Session::apply`], [`Session::wait`] and the two together
//! ([`Session::apply_and_wait`]). `kstep apply`, `kstep deploy` and a pipeline's `apply:` and
//! `wait:` all run these, with options of the engine's own types.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::apply::{self as engine, Applied};
use super::error::DeployError;
use super::events::{Event, Reporter};
use super::objects::{NamespacePolicy, Object};
use super::rollout::{self, Finished, Workload};
use super::{DEFAULT_CONCURRENCY, FIELD_MANAGER, watch};
use crate::credentials::{self, Connection, Credentials, PlainHttp};
use crate::runtime::Runtime;

/// Which cluster, as whom.
#[derive(Debug, Clone)]
pub struct Target {
    /// The kubeconfig; default `$KSTEP_KUBECONFIG`, then `$KUBECONFIG`.
    pub kubeconfig: Option<PathBuf>,
    /// The context; default the kubeconfig's current context.
    pub context: Option<String>,
    /// Time allowed for connecting and for each request.
    pub request_timeout: Duration,
    /// Whether credentials may go to a plain `http://` server.
    pub plain_http: PlainHttp,
}

impl Default for Target {
    fn default() -> Self {
        Self {
            kubeconfig: None,
            context: None,
            request_timeout: Duration::from_secs(30),
            plain_http: PlainHttp::Refuse,
        }
    }
}

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// The namespace for objects that name none; default the context's, else `default`.
    pub namespace: Option<String>,
    /// Other namespaces objects may name.
    pub allow_namespaces: Vec<String>,
    /// Allow cluster-scoped objects.
    pub allow_cluster_scoped: bool,
    /// Validate with a server-side dry run and change nothing.
    pub dry_run: bool,
    /// Take over fields other managers own instead of failing on the conflict.
    pub force_conflicts: bool,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// The server-side apply field manager; default `kstep`.
    pub field_manager: String,
    /// Take over objects Helm manages instead of refusing them (`--adopt helm`).
    pub adopt_helm: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            namespace: None,
            allow_namespaces: Vec::new(),
            allow_cluster_scoped: false,
            dry_run: false,
            force_conflicts: false,
            concurrency: DEFAULT_CONCURRENCY,
            field_manager: FIELD_MANAGER.to_owned(),
            adopt_helm: false,
        }
    }
}

/// Whether `name` can be a field manager: what the API server accepts (1 to 128 printable
/// ASCII characters), checked before anything is sent.
///
/// # Errors
/// The reason, naming the value.
pub fn check_field_manager(name: &str) -> Result<(), String> {
    if (1..=128).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        Ok(())
    } else {
        Err(format!(
            "`{name}`: a field manager is 1 to 128 printable ASCII characters"
        ))
    }
}

/// How long to wait for rollouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOptions {
    /// Give up (exit 3) after this long.
    pub timeout: Duration,
    /// A pod stuck in a failure state this long fails the rollout early.
    pub failure_grace: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            failure_grace: Duration::from_secs(30),
        }
    }
}

/// Finds and decodes the kubeconfig of `target`, reads the files it refers to (registering
/// every credential with the masker) and reports which kubeconfig and context it is, then its
/// warnings.
///
/// # Errors
/// A missing or invalid kubeconfig, a sandbox failure.
pub fn load_credentials(
    runtime: &Runtime,
    target: &Target,
    reporter: &dyn Reporter,
) -> Result<Credentials, DeployError> {
    let mut credentials = credentials::load(
        runtime,
        target.kubeconfig.as_deref(),
        target.context.as_deref(),
        target.plain_http,
    )?;
    reporter.report(Event::Kubeconfig(&credentials));
    for warning in &credentials.warnings {
        reporter.report(Event::Warning(warning));
    }
    credentials.connection.read_files()?;
    Ok(credentials)
}

/// Runs `future` to completion on a runtime of its own (see [`crate::kube_client::runtime`]).
///
/// # Errors
/// When the runtime cannot start, or what `future` returns.
pub fn block_on<T>(future: impl Future<Output = Result<T, DeployError>>) -> Result<T, DeployError> {
    let rt = crate::kube_client::runtime()
        .map_err(|e| DeployError::Runtime(format!("cannot start the I/O runtime: {e}")))?;
    rt.block_on(future)
}

/// A connected client and what it applies with.
pub struct Session<'a> {
    connection: &'a Connection,
    client: kube::Client,
    request_timeout: Duration,
}

/// What [`Session::apply_and_wait`] did.
#[derive(Debug, Default)]
pub struct RunSummary {
    /// The applied objects.
    pub applied: Vec<Applied>,
    /// How long the apply took (dry run included).
    pub apply_time: Duration,
    /// The finished rollouts (empty without waiting).
    pub rollouts: Vec<Finished>,
    /// How long the rollout wait took; `None` when not waited for.
    pub rollout_time: Option<Duration>,
}

impl RunSummary {
    /// The Deployments, StatefulSets, DaemonSets and Jobs among the applied objects, once each.
    pub fn workloads(&self) -> Vec<Workload> {
        rollout::workloads_of(self.applied.iter().map(|a| {
            (
                a.object.group.as_str(),
                a.object.kind.as_str(),
                a.object.target_namespace().unwrap_or(""),
                a.object.name.as_str(),
            )
        }))
    }
}

impl<'a> Session<'a> {
    /// Builds the client (no request is made yet).
    ///
    /// # Errors
    /// When the kubeconfig cannot be turned into a client.
    pub async fn connect(
        credentials: &'a Credentials,
        request_timeout: Duration,
    ) -> Result<Session<'a>, DeployError> {
        let connection = &credentials.connection;
        let client = crate::kube_client::client(connection, request_timeout)
            .await
            .map_err(|e| DeployError::Runtime(e.to_string()))?;
        Ok(Session {
            connection,
            client,
            request_timeout,
        })
    }

    /// The kube client.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The connection (server, context, credentials kind).
    pub fn connection(&self) -> &Connection {
        self.connection
    }

    /// The namespace objects without one go to under `options`.
    pub fn namespace(&self, options: &ApplyOptions) -> String {
        options
            .namespace
            .clone()
            .unwrap_or_else(|| self.connection.namespace_or_default().to_owned())
    }

    /// The namespace policy of `options`.
    fn policy(&self, options: &ApplyOptions) -> NamespacePolicy {
        NamespacePolicy {
            default_namespace: self.namespace(options),
            allowed: options
                .allow_namespaces
                .iter()
                .cloned()
                .collect::<BTreeSet<_>>(),
            allow_cluster_scoped: options.allow_cluster_scoped,
        }
    }

    /// Applies `objects` (a dry run of every object first), reporting each outcome.
    /// `establish_timeout` bounds the wait for CRDs of the run to be established.
    ///
    /// # Errors
    /// Refusals, invalid objects and dry-run rejections (nothing changed), apply failures
    /// (with what was applied), an unreachable server.
    pub async fn apply(
        &self,
        objects: Vec<Object>,
        options: &ApplyOptions,
        establish_timeout: Duration,
        reporter: &dyn Reporter,
    ) -> Result<(Vec<Applied>, Duration), DeployError> {
        let policy = self.policy(options);
        let namespace = policy.default_namespace.clone();
        let engine_options = engine::Options {
            policy,
            dry_run: options.dry_run,
            force_conflicts: options.force_conflicts,
            field_manager: options.field_manager.clone(),
            adopt_helm: options.adopt_helm,
            concurrency: options.concurrency,
            establish_timeout,
            watch_timeout: watch::timeout_for(self.request_timeout),
        };
        reporter.report(Event::ApplyStarted {
            objects: objects.len(),
            namespace: &namespace,
            server: &self.connection.server,
            context: &self.connection.context,
            field_manager: &options.field_manager,
            dry_run: options.dry_run,
        });
        let started = Instant::now();
        match engine::apply(&self.client, objects, &engine_options, reporter).await {
            Ok(applied) => {
                let elapsed = started.elapsed();
                reporter.report(Event::ApplyEnded {
                    applied: Some((&applied, elapsed)),
                    dry_run: options.dry_run,
                });
                Ok((applied, elapsed))
            }
            Err(e) => {
                reporter.report(Event::ApplyEnded {
                    applied: None,
                    dry_run: options.dry_run,
                });
                Err(DeployError::apply(&e, self.connection, &namespace))
            }
        }
    }

    /// Waits until `workloads` have rolled out, reporting progress.
    ///
    /// # Errors
    /// A failed or timed-out rollout (with its diagnosis), a watch that could not be kept up.
    pub async fn wait(
        &self,
        workloads: &[Workload],
        options: WaitOptions,
        reporter: &dyn Reporter,
    ) -> Result<(Vec<Finished>, Duration), DeployError> {
        if workloads.is_empty() {
            reporter.report(Event::NothingToWaitFor);
            return Ok((Vec::new(), Duration::ZERO));
        }
        reporter.report(Event::RolloutStarted {
            workloads: workloads.len(),
            timeout: options.timeout,
            failure_grace: options.failure_grace,
        });
        let started = Instant::now();
        let result = rollout::wait(
            &self.client,
            workloads,
            rollout::Options {
                timeout: options.timeout,
                failure_grace: options.failure_grace,
                watch_timeout: watch::timeout_for(self.request_timeout),
            },
            reporter,
        )
        .await;
        let elapsed = started.elapsed();
        match result {
            Ok(finished) => {
                reporter.report(Event::RolloutEnded(Some((finished.len(), elapsed))));
                Ok((finished, elapsed))
            }
            Err(e) => {
                reporter.report(Event::RolloutEnded(None));
                Err(DeployError::rollout(&e, self.connection))
            }
        }
    }

    /// Applies `objects`, then, with `wait` and not in a dry run, waits for the workloads
    /// among them.
    ///
    /// # Errors
    /// As [`Session::apply`] and [`Session::wait`].
    pub async fn apply_and_wait(
        &self,
        objects: Vec<Object>,
        options: &ApplyOptions,
        wait: Option<WaitOptions>,
        reporter: &dyn Reporter,
    ) -> Result<RunSummary, DeployError> {
        let establish_timeout = wait.map_or(Duration::from_secs(60), |w| w.timeout);
        let (applied, apply_time) = self
            .apply(objects, options, establish_timeout, reporter)
            .await?;
        let mut summary = RunSummary {
            applied,
            apply_time,
            ..RunSummary::default()
        };
        let Some(wait) = wait.filter(|_| !options.dry_run) else {
            return Ok(summary);
        };
        let (rollouts, rollout_time) = self.wait(&summary.workloads(), wait, reporter).await?;
        summary.rollouts = rollouts;
        summary.rollout_time = Some(rollout_time);
        Ok(summary)
    }
}
