//! `kstep apply -f FILE|DIR|-`: server-side apply with a dry run of everything first, the
//! namespace policy checked before any request, and an optional rollout wait.
//!
//! The flags shared with `kstep deploy` ([`ClusterArgs`], [`WaitArgs`]) and the common path
//! (credentials → client → [`crate::deploy::apply`] → [`crate::deploy::rollout`]) live here.
//!
//! Exit codes: 2 for documents that cannot be applied, policy refusals and dry-run rejections
//! of invalid objects (nothing was changed); 1 for an unreachable server, refused credentials, a
//! 403 and apply failures; 3 for a failed or timed-out rollout.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cli::{CliError, CliResult, parse_duration};
use crate::commands::render::{Manifests, render_reported};
use crate::credentials::{self, Connection, CredentialError, Credentials, PlainHttp};
use crate::deploy::apply::{self as engine, Applied, ApplyError};
use crate::deploy::objects::{NamespacePolicy, Object, Origin};
use crate::deploy::rollout::{self, Finished, RolloutError, Workload};
use crate::deploy::{DEFAULT_CONCURRENCY, log, watch};
use crate::output;
use crate::runtime::Runtime;
use crate::steps::manifest as manifest_step;

/// Arguments of `kstep apply`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    manifests: Manifests,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Wait until Deployments, StatefulSets, DaemonSets and Jobs have rolled out (exit 3 if
    /// they fail or time out).
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    wait_args: WaitArgs,
}

/// Where and how to apply (shared by `apply` and `deploy`).
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// The kubeconfig file. Default: $KSTEP_KUBECONFIG, then $KUBECONFIG (each may hold the
    /// kubeconfig, its base64 form, or a path).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Use this context instead of the current-context.
    #[arg(long, value_name = "NAME", env = "KSTEP_CONTEXT")]
    pub context: Option<String>,
    /// The namespace for objects that name none. Default: the kubeconfig context's, else
    /// `default`.
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Also allow objects that name this namespace (repeatable). Others are refused before
    /// anything is sent.
    #[arg(long, value_name = "NS")]
    pub allow_namespace: Vec<String>,
    /// Allow cluster-scoped objects (Namespaces, ClusterRoles, CRDs…). Refused by default: a
    /// namespace-scoped CI identity cannot apply them.
    #[arg(long)]
    pub allow_cluster_scoped: bool,
    /// Validate every object with a server-side dry run and report what would change; change
    /// nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Take over fields owned by another field manager instead of failing on the conflict.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CONCURRENCY, value_parser = parse_concurrency)]
    pub concurrency: usize,
    /// Time allowed for connecting and for each request.
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    pub request_timeout: Duration,
    /// Send the kubeconfig's credentials to a plain http:// server, where anyone on the path
    /// reads them (refused by default).
    #[arg(long)]
    pub insecure_plain_http: bool,
}

/// How long to wait for rollouts (shared by `apply --wait` and `deploy`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct WaitArgs {
    /// Give up waiting after this long (exit 3). Never unbounded.
    #[arg(long, value_parser = parse_duration, default_value = "5m", value_name = "DURATION")]
    pub timeout: Duration,
    /// Fail as soon as a pod of a rollout has been in ImagePullBackOff, CrashLoopBackOff or a
    /// similar state for this long, instead of waiting for the timeout.
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    pub failure_grace: Duration,
}

fn parse_concurrency(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n @ 1..=64) => Ok(n),
        _ => Err(format!("`{text}`: expected a number from 1 to 64")),
    }
}

/// Runs `kstep apply`.
///
/// # Errors
/// See the module documentation for the exit codes.
pub fn run(args: &Args) -> CliResult {
    let runtime = Runtime::new()?;
    let render = Render {
        literal: true,
        ..Render::default()
    };
    let (objects, _) = load_objects(&runtime, &args.manifests.files, &render)?;
    let mut credentials = load_credentials(&runtime, &args.cluster)?;
    let rt = crate::kube::runtime().map_err(anyhow::Error::from)?;
    let wait = args.wait.then_some(args.wait_args);
    rt.block_on(async {
        let session = Session::connect(&mut credentials, &args.cluster).await?;
        session
            .apply_and_wait(objects, wait, log::Sections::from_env())
            .await
            .map(|_| ())
    })
}

/// How manifests are turned into documents.
#[derive(Debug, Clone, Default)]
pub struct Render {
    /// Variables for `${NAME}` placeholders (precedence already applied).
    pub variables: Vec<(String, String)>,
    /// `--image NAME=REF` overrides.
    pub images: Vec<manifest_step::ImageOverride>,
    /// Rewrite removed apiVersions that have a mechanical replacement.
    pub upgrade_api_versions: bool,
    /// Take the files literally: `$` is never a placeholder (what `kubectl apply` does, so a
    /// shell script in a ConfigMap keeps its `${HOME}`).
    pub literal: bool,
}

/// Reads and renders manifests (through the manifest step, so positions and checks are the
/// same as `kstep render`'s) into objects. Diagnostics and warnings are printed.
///
/// # Errors
/// Exit 2 with the diagnostics printed, exit 1 for a sandbox failure.
pub fn load_objects(
    runtime: &Runtime,
    files: &[PathBuf],
    render: &Render,
) -> Result<(Vec<Object>, manifest_step::Report), CliError> {
    let sources = manifest_step::read_sources(files).map_err(CliError::invalid)?;
    let request = manifest_step::Request {
        sources,
        variables: render.variables.clone(),
        images: render.images.clone(),
        options: manifest_step::Options {
            upgrade_api_versions: render.upgrade_api_versions,
            allow_unmatched_images: false,
            literal: render.literal,
            output: manifest_step::OutputFormat::None,
        },
    };
    let rendered = render_reported(runtime, &request)?;
    let mut objects = Vec::with_capacity(rendered.documents.len());
    let mut invalid = Vec::new();
    for document in &rendered.documents {
        let value = document.value().map_err(anyhow::Error::from)?;
        match Object::new(value, Origin::from(document)) {
            Ok(o) => objects.push(o),
            Err(e) => invalid.push(e),
        }
    }
    if !invalid.is_empty() {
        for e in invalid {
            output::stderr_line(&e.to_string());
        }
        return Err(CliError::reported_invalid());
    }
    for object in &objects {
        register_secret_values(object);
    }
    if objects.is_empty() {
        return Err(CliError::invalid(anyhow::anyhow!(
            "no objects to apply in {}",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok((objects, rendered.report))
}

/// The values of a Secret manifest never reach the log, even inside a server's error message
/// (the rule is [`crate::secrets::register_secret_manifest`]).
fn register_secret_values(object: &Object) {
    crate::secrets::register_secret_manifest(&object.value);
}

/// Finds and decodes the kubeconfig of `args`, reads the files it refers to, prints its
/// warnings.
///
/// # Errors
/// Exit 2 for a missing or invalid kubeconfig, exit 1 for a sandbox failure.
pub fn load_credentials(runtime: &Runtime, args: &ClusterArgs) -> Result<Credentials, CliError> {
    load_credentials_from(
        runtime,
        args.kubeconfig.as_deref(),
        args.context.as_deref(),
        PlainHttp::allowed_if(args.insecure_plain_http),
    )
}

/// [`load_credentials`] from a `--kubeconfig` flag and a `--context`.
///
/// # Errors
/// As [`load_credentials`].
pub fn load_credentials_from(
    runtime: &Runtime,
    kubeconfig: Option<&std::path::Path>,
    context: Option<&str>,
    plain_http: PlainHttp,
) -> Result<Credentials, CliError> {
    let mut credentials =
        credentials::load(runtime, kubeconfig, context, plain_http).map_err(credential_error)?;
    for warning in &credentials.warnings {
        output::stderr_line(warning);
    }
    credentials
        .connection
        .read_files()
        .map_err(credential_error)?;
    Ok(credentials)
}

fn credential_error(e: CredentialError) -> CliError {
    if e.is_input_error() {
        CliError::invalid(e)
    } else {
        CliError::from(anyhow::Error::from(e))
    }
}

/// A connected client and what the run applies with.
pub struct Session<'a> {
    connection: &'a Connection,
    client: ::kube::Client,
    args: &'a ClusterArgs,
    /// The namespace objects without one go to.
    pub namespace: String,
}

/// What `apply_and_wait` did.
#[derive(Debug, Default)]
pub struct RunSummary {
    /// The applied objects.
    pub applied: Vec<Applied>,
    /// How long the apply took (dry run included).
    pub apply_time: Duration,
    /// The finished rollouts (empty without waiting).
    pub rollouts: Vec<Finished>,
    /// How long the rollout wait took.
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
    /// Exit 1 when the kubeconfig cannot be turned into a client.
    pub async fn connect(
        credentials: &'a mut Credentials,
        args: &'a ClusterArgs,
    ) -> Result<Session<'a>, CliError> {
        let connection = &credentials.connection;
        let client = crate::kube::client(connection, args.request_timeout)
            .await
            .map_err(|e| CliError::from(anyhow::Error::from(e)))?;
        let namespace = args
            .namespace
            .clone()
            .unwrap_or_else(|| connection.namespace_or_default().to_owned());
        Ok(Session {
            connection,
            client,
            args,
            namespace,
        })
    }

    /// The kube client.
    pub fn client(&self) -> &::kube::Client {
        &self.client
    }

    /// The API server URL.
    pub fn server(&self) -> &str {
        &self.connection.server
    }

    /// The namespace policy of this run.
    pub fn policy(&self) -> NamespacePolicy {
        NamespacePolicy {
            default_namespace: self.namespace.clone(),
            allowed: self
                .args
                .allow_namespace
                .iter()
                .cloned()
                .collect::<BTreeSet<_>>(),
            allow_cluster_scoped: self.args.allow_cluster_scoped,
        }
    }

    /// Applies `objects`, then waits for the workloads among them when `wait` is given (not
    /// with `--dry-run`), printing as it goes, inside `sections`.
    ///
    /// # Errors
    /// Exit codes as in the module documentation; details are printed on stderr.
    pub async fn apply_and_wait(
        &self,
        objects: Vec<Object>,
        wait: Option<WaitArgs>,
        sections: log::Sections,
    ) -> Result<RunSummary, CliError> {
        let count = objects.len();
        let options = engine::Options {
            policy: self.policy(),
            dry_run: self.args.dry_run,
            force_conflicts: self.args.force_conflicts,
            concurrency: self.args.concurrency,
            establish_timeout: wait.map_or(Duration::from_secs(60), |w| w.timeout),
            watch_timeout: watch::timeout_for(self.args.request_timeout),
        };
        let verb = if self.args.dry_run {
            "Dry run of"
        } else {
            "Applying"
        };
        sections.start(
            "kstep_apply",
            &format!(
                "{verb} {count} object(s) in namespace {} on {} (context {}, field manager {})",
                self.namespace,
                self.connection.server,
                self.connection.context,
                crate::deploy::FIELD_MANAGER
            ),
            false,
        );
        let started = Instant::now();
        let result = engine::apply(&self.client, objects, &options).await;
        let apply_time = started.elapsed();
        let applied = match result {
            Ok(applied) => applied,
            Err(e) => {
                sections.end("kstep_apply");
                return Err(self.apply_error(&e));
            }
        };
        let what = if self.args.dry_run {
            "Dry run passed for"
        } else {
            "Applied"
        };
        output::stdout(&format!(
            "{what} {} object(s) in {}: {}\n",
            applied.len(),
            log::seconds(apply_time),
            engine::summary(&applied)
        ));
        sections.end("kstep_apply");
        let mut summary = RunSummary {
            applied,
            apply_time,
            ..RunSummary::default()
        };
        let Some(wait) = wait.filter(|_| !self.args.dry_run) else {
            return Ok(summary);
        };
        let workloads = summary.workloads();
        if workloads.is_empty() {
            output::stdout("No Deployment, StatefulSet, DaemonSet or Job to wait for\n");
            summary.rollout_time = Some(Duration::ZERO);
            return Ok(summary);
        }
        sections.start(
            "kstep_rollout",
            &format!(
                "Waiting for {} workload(s) to roll out (timeout {}, failure grace {})",
                workloads.len(),
                log::seconds(wait.timeout),
                log::seconds(wait.failure_grace)
            ),
            false,
        );
        let started = Instant::now();
        let result = rollout::wait(
            &self.client,
            &workloads,
            rollout::Options {
                timeout: wait.timeout,
                failure_grace: wait.failure_grace,
                watch_timeout: watch::timeout_for(self.args.request_timeout),
            },
        )
        .await;
        let rollout_time = started.elapsed();
        sections.end("kstep_rollout");
        match result {
            Ok(finished) => {
                output::stdout(&format!(
                    "Rolled out {} workload(s) in {}\n",
                    finished.len(),
                    log::seconds(rollout_time)
                ));
                summary.rollouts = finished;
                summary.rollout_time = Some(rollout_time);
                Ok(summary)
            }
            Err(e) => Err(self.rollout_error(&e)),
        }
    }

    /// Prints an apply failure and maps it to its exit code.
    pub fn apply_error(&self, e: &ApplyError) -> CliError {
        let headline = match e {
            ApplyError::Api(inner) => {
                crate::kube::explain(inner, self.connection, "reading the API's resources")
            }
            other => other.to_string(),
        };
        output::stderr_line(&format!("error: {headline}"));
        for line in e.details() {
            output::stderr_line(&line);
        }
        if let ApplyError::Failed { applied, .. } | ApplyError::Rejected { applied, .. } = e
            && !applied.is_empty()
        {
            output::stderr_line("applied before the failure:");
            for a in applied {
                output::stderr_line(engine::line(a, &self.namespace, false).trim_end());
            }
        }
        if e.is_invalid_input() {
            CliError::reported_invalid()
        } else {
            CliError::reported()
        }
    }

    /// Prints a rollout failure and maps it to exit 3 (1 when the watch itself failed).
    pub fn rollout_error(&self, e: &RolloutError) -> CliError {
        let headline = match e {
            RolloutError::Api(inner) => {
                crate::kube::explain(inner, self.connection, "watching the rollout")
            }
            other => other.to_string(),
        };
        output::stderr_line(&format!("error: {headline}"));
        for line in e.details() {
            output::stderr_line(&line);
        }
        match e {
            RolloutError::Api(_) => CliError::reported(),
            _ => CliError::reported_rollout(),
        }
    }
}
