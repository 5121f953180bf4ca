//! Connecting and the cluster operations: credentials → client ([`load_credentials`],
//! [`Session::connect`]), then [`Session::apply`], [`Session::wait`] and the two together
//! ([`Session::apply_and_wait`]). `kstep apply`, `kstep deploy` and a pipeline's `apply:` and
//! `wait:` all run these, with options of the engine's own types.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::apply::{self as engine, Applied};
use super::applyset::{ApplySet, Claim, Inventory, ParentRef};
use super::cancel;
use super::error::DeployError;
use super::events::{Event, Reporter};
use super::objects::{NamespacePolicy, Object};
use super::revision::{self, History, Info, Status};
use super::rollout::{self, Finished, Workload};
use super::{DEFAULT_CONCURRENCY, FIELD_MANAGER, watch};
use crate::credentials::{self, Connection, Credentials, PlainHttp};
use crate::failure::Failure;
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
    /// The ApplySet the objects belong to (`--applyset`): its parent lives in the target
    /// namespace.
    pub applyset: Option<ParentRef>,
    /// Delete the set's members this apply no longer contains, once it (and the rollout wait)
    /// succeeded (`--prune`; needs `applyset`).
    pub prune: bool,
    /// How many revisions of the set to keep (`--history-limit`).
    pub history_limit: usize,
    /// When the rollout fails, re-apply the set's last good revision and wait for it
    /// (`--rollback-on-failure`; needs `applyset`).
    pub rollback_on_failure: bool,
    /// The revision this apply restores (`kstep rollback`), for the history.
    pub rollback_of: Option<u32>,
    /// How long after this apply `kstep gc` may delete the set (`--expires-in`; needs
    /// `applyset`).
    pub expires_in: Option<Duration>,
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
            applyset: None,
            prune: false,
            history_limit: revision::DEFAULT_HISTORY_LIMIT,
            rollback_on_failure: false,
            rollback_of: None,
            expires_in: None,
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
/// SIGTERM or SIGINT drops it — no request is sent after — and ends with
/// [`DeployError::Cancelled`]; while an operation rolls back a cancelled deploy
/// ([`cancel::Graceful`]), it gets [`cancel::GRACE`] to finish first.
///
/// # Errors
/// When the runtime cannot start, or what `future` returns.
pub fn block_on<T>(future: impl Future<Output = Result<T, DeployError>>) -> Result<T, DeployError> {
    let rt = crate::kube_client::runtime()
        .map_err(|e| DeployError::Runtime(format!("cannot start the I/O runtime: {e}")))?;
    rt.block_on(async {
        let mut future = std::pin::pin!(future);
        tokio::select! {
            biased;
            result = &mut future => result,
            signal = cancel::signalled() => {
                let cancelled = DeployError::Cancelled { signal, details: Vec::new() };
                if !cancel::graceful() {
                    return Err(cancelled);
                }
                // A margin over the rollback's own bound, so that it reports how it ended.
                tokio::time::timeout(cancel::GRACE + Duration::from_secs(5), &mut future)
                    .await
                    .unwrap_or(Err(cancelled))
            }
        }
    })
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
    pub fn policy(&self, options: &ApplyOptions) -> NamespacePolicy {
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

    /// The ApplySet of `options`, if any, in the target namespace.
    pub fn applyset(&self, options: &ApplyOptions) -> Option<ApplySet> {
        options.applyset.clone().map(|parent| ApplySet {
            expires_at: options.expires_in.map(super::gc::expiry),
            ..ApplySet::new(parent, &self.namespace(options))
        })
    }

    /// Applies `objects`, then, with `wait` and not in a dry run, waits for the workloads
    /// among them.
    ///
    /// With an ApplySet, the objects are labelled as its members and its parent records them
    /// before anything is applied (so that an interrupted run leaks nothing); with `prune`,
    /// once everything succeeded, the members no longer applied are deleted; and the run is
    /// recorded as the set's next revision. With `rollback_on_failure`, a failed rollout
    /// re-applies the last good revision and waits for it; the error stays the rollout's, with
    /// the rollback's outcome among its details.
    ///
    /// # Errors
    /// As [`Session::apply`] and [`Session::wait`]; another tool's ApplySet; a failed prune.
    pub async fn apply_and_wait(
        &self,
        mut objects: Vec<Object>,
        options: &ApplyOptions,
        wait: Option<WaitOptions>,
        reporter: &dyn Reporter,
    ) -> Result<RunSummary, DeployError> {
        let Some(set) = self.applyset(options) else {
            return self
                .apply_then_wait(objects, options, wait, reporter)
                .await
                .map_err(|f| f.error);
        };
        let (before, parent_uid) = self
            .open_set(&set, &mut objects, options.dry_run, reporter)
            .await?;
        let result = if options.rollback_on_failure && !options.dry_run {
            let _grace = cancel::Graceful::arm();
            tokio::select! {
                result = self.apply_then_wait(objects, options, wait, reporter) => result,
                signal = cancel::signalled() => {
                    // Cancelled mid-deploy: back to the last good revision, within the grace.
                    let rollback = tokio::time::timeout(
                        cancel::GRACE,
                        self.rollback(&set, None, None, options, wait.unwrap_or_default(), reporter),
                    )
                    .await
                    .unwrap_or_else(|_| Err(DeployError::Runtime(format!(
                        "the rollback did not finish within the {}s grace period",
                        cancel::GRACE.as_secs()
                    ))));
                    let cancelled = DeployError::Cancelled { signal, details: Vec::new() };
                    return Err(cancelled.with_rollback(rollback));
                }
            }
        } else {
            self.apply_then_wait(objects, options, wait, reporter).await
        };
        let summary = match result {
            Ok(summary) => summary,
            Err(Failed { error, applied }) => {
                if options.dry_run || error.failure() != Failure::Rollout {
                    return Err(error);
                }
                let failed = self
                    .record_revision(
                        &set,
                        &parent_uid,
                        &applied,
                        Status::Failed,
                        options,
                        reporter,
                    )
                    .await?;
                if !options.rollback_on_failure {
                    return Err(error);
                }
                let wait = wait.unwrap_or_default();
                let outcome = self
                    .rollback(&set, None, Some(failed), options, wait, reporter)
                    .await;
                return Err(error.with_rollback(outcome));
            }
        };
        if options.prune {
            let policy = self.policy(options);
            self.prune(
                &set,
                &before,
                &summary.applied,
                &policy,
                options.dry_run,
                reporter,
            )
            .await?;
        }
        if !options.dry_run {
            self.record_revision(
                &set,
                &parent_uid,
                &summary.applied,
                Status::Succeeded,
                options,
                reporter,
            )
            .await?;
        }
        Ok(summary)
    }

    /// Applies `objects` and, unless a dry run, waits; on failure, what was applied.
    async fn apply_then_wait(
        &self,
        objects: Vec<Object>,
        options: &ApplyOptions,
        wait: Option<WaitOptions>,
        reporter: &dyn Reporter,
    ) -> Result<RunSummary, Failed> {
        let establish_timeout = wait.map_or(Duration::from_secs(60), |w| w.timeout);
        let (applied, apply_time) = self
            .apply(objects, options, establish_timeout, reporter)
            .await
            .map_err(Failed::from)?;
        let mut summary = RunSummary {
            applied,
            apply_time,
            ..RunSummary::default()
        };
        if let Some(wait) = wait.filter(|_| !options.dry_run) {
            match self.wait(&summary.workloads(), wait, reporter).await {
                Ok((rollouts, rollout_time)) => {
                    summary.rollouts = rollouts;
                    summary.rollout_time = Some(rollout_time);
                }
                Err(error) => {
                    return Err(Failed {
                        error,
                        applied: summary.applied,
                    });
                }
            }
        }
        Ok(summary)
    }

    /// Checks that `set` is kstep's (or new) and that no object belongs to another set,
    /// reports the existing objects it adopts, labels `objects` as its members and records
    /// them in its parent on top of what it held. Returns what it held, and the parent's uid
    /// (empty in a dry run).
    pub(super) async fn open_set(
        &self,
        set: &ApplySet,
        objects: &mut [Object],
        dry_run: bool,
        reporter: &dyn Reporter,
    ) -> Result<(Inventory, String), DeployError> {
        let before = set
            .fetch(&self.client)
            .await
            .map_err(|e| DeployError::applyset(&e, self.connection))?
            .unwrap_or_default();
        let claims = set
            .claims(&self.client, objects)
            .await
            .map_err(|e| DeployError::applyset(&e, self.connection))?;
        let foreign: Vec<String> = objects
            .iter()
            .zip(&claims)
            .filter_map(|(object, claim)| match claim {
                Claim::Foreign { id, parent } => Some(format!(
                    "{}: {}: a member of another ApplySet, {} ({id}); remove it from that set \
                     first (or delete that set)",
                    object.origin,
                    object.display_name(),
                    parent
                        .as_deref()
                        .unwrap_or("whose parent is not in its namespace"),
                )),
                _ => None,
            })
            .collect();
        if !foreign.is_empty() {
            return Err(DeployError::Apply {
                headline: format!(
                    "{} object(s) belong to another ApplySet; nothing was changed",
                    foreign.len()
                ),
                details: foreign,
                invalid: true,
            });
        }
        let name = format!("{} in namespace {}", set.parent, set.namespace);
        for (object, claim) in objects.iter().zip(&claims) {
            if *claim == Claim::Adopted {
                reporter.report(Event::AdoptedIntoSet {
                    object,
                    set: &name,
                    dry_run,
                });
            }
        }
        set.label(objects);
        let mut uid = String::new();
        if !dry_run {
            let superset = before.union(&Inventory::of(objects.iter(), &set.namespace));
            uid = set
                .record(&self.client, &superset, false)
                .await
                .map_err(|e| DeployError::applyset(&e, self.connection))?;
        }
        Ok((before, uid))
    }

    /// Records `applied` as the next revision of `set`; returns its number.
    async fn record_revision(
        &self,
        set: &ApplySet,
        parent_uid: &str,
        applied: &[Applied],
        status: Status,
        options: &ApplyOptions,
        reporter: &dyn Reporter,
    ) -> Result<u32, DeployError> {
        let history = History::new(&self.client, set);
        let objects: Vec<Object> = applied.iter().map(|a| a.object.clone()).collect();
        let result = async {
            let number = revision::next(&history.list().await?);
            let info = Info::new(number, status, &objects, options.rollback_of);
            history
                .record(parent_uid, info, &objects, options.history_limit)
                .await
        }
        .await;
        let info = result.map_err(|e| DeployError::revision(&e, self.connection))?;
        reporter.report(Event::RevisionRecorded {
            set: &format!("{} in namespace {}", set.parent, set.namespace),
            info: &info,
        });
        Ok(info.revision)
    }
}

/// A failed apply or wait, with what was applied before it failed.
pub(super) struct Failed {
    pub(super) error: DeployError,
    pub(super) applied: Vec<Applied>,
}

impl From<DeployError> for Failed {
    fn from(error: DeployError) -> Self {
        Self {
            error,
            applied: Vec::new(),
        }
    }
}
