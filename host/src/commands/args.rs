//! Flags shared by several commands, and their conversion into the engines' own option types
//! (the low-level arguments → high-level configuration split): the rest of the program never
//! sees a clap struct.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::parse_duration;
use crate::credentials::{Connection, PlainHttp};
use crate::deploy::applyset::{ApplySet, ParentRef};
use crate::deploy::objects::NamespacePolicy;
use crate::deploy::revision;
use crate::deploy::session::{ApplyOptions, Target, WaitOptions, check_field_manager};
use crate::deploy::stamp::{Stamp, StampMode};
use crate::deploy::{DEFAULT_CONCURRENCY, FIELD_MANAGER};
use crate::steps::dotenv::Flavor;
use crate::steps::manifest::{self, ImageOverride, VariableSources};

/// The manifests to read (`render`, `apply`, `deploy`).
#[derive(Debug, clap::Args)]
pub struct Manifests {
    /// A manifest file, a directory (its *.yaml, *.yml, *.json files, sorted; not recursive)
    /// or `-` for stdin. Repeatable; documents keep the order given.
    #[arg(
        short = 'f',
        long = "filename",
        visible_alias = "file",
        value_name = "FILE|DIR|-",
        required = true
    )]
    pub files: Vec<PathBuf>,
}

/// Variables, image overrides and apiVersion upgrades (`render`, `deploy`).
#[derive(Debug, clap::Args)]
pub struct Template {
    /// Read variables from this dotenv file (e.g. the build job's `artifacts:reports:dotenv`).
    /// Repeatable: a later file wins.
    #[arg(long, value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// How --env-file files are read: `gitlab` (artifacts:reports:dotenv rules) or `compose`.
    #[arg(long, value_enum, default_value_t = FlavorArg::Gitlab, value_name = "FLAVOR")]
    env_file_flavor: FlavorArg,
    /// Set a variable. Repeatable; wins over env files and the environment.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_variable)]
    set: Vec<(String, String)>,
    /// Ignore the process environment: only --set and --env-file define variables.
    #[arg(long)]
    no_env: bool,
    /// Use image REF for every container named NAME or whose image repository is NAME
    /// (registry, port and path, compared exactly). Repeatable.
    #[arg(long = "image", value_name = "NAME=REF", value_parser = parse_image)]
    images: Vec<(String, String)>,
    /// Rewrite removed apiVersions to their current replacement where that is mechanical.
    #[arg(long)]
    pub upgrade_api_versions: bool,
}

impl Template {
    /// Where the variables come from, with their precedence.
    pub fn variable_sources(&self) -> VariableSources {
        VariableSources {
            set: self.set.clone(),
            env_files: self.env_file.clone(),
            flavor: self.env_file_flavor.into(),
            use_environment: !self.no_env,
        }
    }

    /// The `--image` overrides as the manifest step takes them.
    pub fn image_overrides(&self) -> Vec<ImageOverride> {
        self.images
            .iter()
            .map(|(name, reference)| ImageOverride {
                name: name.clone(),
                reference: reference.clone(),
            })
            .collect()
    }
}

/// Which dialect a dotenv file is read in (`--env-file-flavor`, `dotenv --flavor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FlavorArg {
    /// GitLab's `artifacts:reports:dotenv`: `KEY=value` lines, nothing else.
    Gitlab,
    /// Docker Compose `.env` / `env_file`: quotes, escapes, `export`, comments, `${VAR}`.
    Compose,
}

impl From<FlavorArg> for Flavor {
    fn from(arg: FlavorArg) -> Self {
        match arg {
            FlavorArg::Gitlab => Flavor::Gitlab,
            FlavorArg::Compose => Flavor::Compose,
        }
    }
}

/// How documents are printed (`render`, `run --dry-run`, `step run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DocumentFormat {
    /// A YAML stream, `---` before each document.
    Yaml,
    /// One JSON array.
    Json,
}

/// How a command reports (`apply`, `deploy`, `version`, `kubeconfig show`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Lines for people (GitLab sections inside GitLab CI).
    Text,
    /// JSON for machines.
    Json,
}

/// Where and how to apply (`apply`, `deploy`).
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Which cluster.
    #[command(flatten)]
    pub target: TargetArgs,
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
    /// Report what would change, each object validated with a server-side dry run (those
    /// proven unchanged from their live version are not sent); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Take over fields owned by another field manager instead of failing on the conflict.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CONCURRENCY, value_parser = parse_concurrency)]
    pub concurrency: usize,
    /// The server-side apply field manager: keep the one an earlier tool used (`kubectl` for
    /// `kubectl apply --server-side`) to apply without conflicts.
    #[arg(long, value_name = "NAME", default_value = FIELD_MANAGER, value_parser = parse_field_manager)]
    pub field_manager: String,
    /// Take over objects another tool manages instead of refusing them: `helm` (Helm, GitLab
    /// Auto Deploy) moves their field ownership to kstep and removes Helm's label and
    /// annotations; the release's records are left alone.
    #[arg(long, value_enum, value_name = "TOOL")]
    pub adopt: Vec<AdoptArg>,
    /// Make the objects members of this ApplySet (KEP-3659, as `kubectl apply --applyset`):
    /// `NAME` (its parent is the Secret NAME in the target namespace) or `configmaps/NAME`.
    #[arg(long, value_name = "NAME", value_parser = parse_applyset)]
    pub applyset: Option<ParentRef>,
    /// Once the apply (and the rollout wait) succeeded, delete the members of the ApplySet
    /// that this apply no longer contains, listing them first. Never touches an object
    /// without the set's label.
    #[arg(long, requires = "applyset")]
    pub prune: bool,
    /// When the rollout fails or times out, re-apply the ApplySet's last good revision and
    /// wait for it (the exit code stays 3; the log says whether the rollback succeeded).
    #[arg(long, requires = "applyset")]
    pub rollback_on_failure: bool,
    /// How many revisions of the ApplySet to keep (`kstep history`, `kstep rollback`).
    #[arg(long, value_name = "N", default_value_t = revision::DEFAULT_HISTORY_LIMIT, value_parser = parse_history_limit)]
    pub history_limit: usize,
    /// Let `kstep gc` delete the ApplySet once this long has passed since this apply (a review
    /// app's time to live, e.g. `168h`): recorded on its parent, renewed by every apply.
    #[arg(long, requires = "applyset", value_parser = parse_duration, value_name = "DURATION")]
    pub expires_in: Option<Duration>,
}

/// What `--adopt` takes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AdoptArg {
    /// Objects a Helm release manages.
    Helm,
}

impl ClusterArgs {
    /// The engine's apply options.
    pub fn apply_options(&self) -> ApplyOptions {
        ApplyOptions {
            namespace: self.namespace.clone(),
            allow_namespaces: self.allow_namespace.clone(),
            allow_cluster_scoped: self.allow_cluster_scoped,
            dry_run: self.dry_run,
            force_conflicts: self.force_conflicts,
            concurrency: self.concurrency,
            field_manager: self.field_manager.clone(),
            adopt_helm: self.adopt.contains(&AdoptArg::Helm),
            applyset: self.applyset.clone(),
            prune: self.prune,
            history_limit: self.history_limit,
            rollback_on_failure: self.rollback_on_failure,
            rollback_of: None,
            expires_in: self.expires_in,
        }
    }
}

/// Which ApplySet, where (`delete`, `history`, `rollback`).
#[derive(Debug, Clone, clap::Args)]
pub struct SetArgs {
    /// The ApplySet: `NAME` (its parent is the Secret NAME in the namespace) or
    /// `configmaps/NAME`.
    #[arg(long, value_name = "NAME", value_parser = parse_applyset)]
    pub applyset: ParentRef,
    /// The set's namespace. Default: the kubeconfig context's, else `default`.
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Which cluster.
    #[command(flatten)]
    pub target: TargetArgs,
}

impl SetArgs {
    /// The set, in `--namespace` or else the namespace of `connection`'s context.
    pub fn applyset(&self, connection: &Connection) -> ApplySet {
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| connection.namespace_or_default().to_owned());
        ApplySet::new(self.applyset.clone(), &namespace)
    }
}

/// How a teardown deletes (`delete`, `gc`).
#[derive(Debug, Clone, clap::Args)]
pub struct TeardownArgs {
    /// Also delete members in this other namespace (repeatable); a set with members in
    /// namespaces not allowed is refused before anything of it is deleted.
    #[arg(long, value_name = "NS")]
    pub allow_namespace: Vec<String>,
    /// Also delete cluster-scoped members.
    #[arg(long)]
    pub allow_cluster_scoped: bool,
    /// List what would be deleted (the server validates each deletion); delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Return once every member and the parent are gone (finalizers included).
    #[arg(long)]
    wait: bool,
    /// How long `--wait` waits (exit 1 after that).
    #[arg(long, value_parser = parse_duration, default_value = "5m", value_name = "DURATION")]
    timeout: Duration,
}

impl TeardownArgs {
    /// The namespace policy for a set whose parent is in `namespace`.
    pub fn policy(&self, namespace: &str) -> NamespacePolicy {
        NamespacePolicy {
            default_namespace: namespace.to_owned(),
            allowed: self.allow_namespace.iter().cloned().collect(),
            allow_cluster_scoped: self.allow_cluster_scoped,
        }
    }

    /// How long to wait for the deleted objects to be gone, when waiting.
    pub fn wait(&self) -> Option<Duration> {
        self.wait.then_some(self.timeout)
    }
}

/// Which cluster (`apply`, `deploy`, `run`).
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// The kubeconfig file. Default: $KSTEP_KUBECONFIG, then $KUBECONFIG (each may hold the
    /// kubeconfig, its base64 form, or a path). Steps never see it.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Use this context instead of the current-context.
    #[arg(long, value_name = "NAME", env = "KSTEP_CONTEXT")]
    pub context: Option<String>,
    /// Time allowed for connecting and for each request.
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    pub request_timeout: Duration,
    /// Send the kubeconfig's credentials to a plain http:// server, where anyone on the path
    /// reads them (refused by default).
    #[arg(long)]
    pub insecure_plain_http: bool,
}

impl TargetArgs {
    /// The engine's target.
    pub fn target(&self) -> Target {
        Target {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            request_timeout: self.request_timeout,
            plain_http: PlainHttp::allowed_if(self.insecure_plain_http),
        }
    }
}

/// How long to wait for rollouts (`apply --wait`, `deploy`).
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

impl From<WaitArgs> for WaitOptions {
    fn from(args: WaitArgs) -> Self {
        WaitOptions {
            timeout: args.timeout,
            failure_grace: args.failure_grace,
        }
    }
}

/// Stamping objects with their GitLab pipeline (`apply`, `deploy`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct StampArgs {
    /// Annotate every object with the pipeline, job and commit (`kstep.dev/…`), and workloads
    /// with GitLab's deploy-board annotations (`app.gitlab.com/app`, `app.gitlab.com/env`), from
    /// the CI variables that are set. `all` also stamps the workloads' pod templates, which
    /// restarts their pods on every pipeline; `objects` leaves pod templates alone. Default:
    /// `all` inside GitLab CI ($GITLAB_CI), else none.
    #[arg(
        long,
        value_enum,
        value_name = "WHAT",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "all"
    )]
    pub stamp: Option<StampArg>,
    /// Stamp nothing, even inside GitLab CI.
    #[arg(long, conflicts_with = "stamp")]
    pub no_stamp: bool,
}

/// What `--stamp` covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StampArg {
    /// Objects, workloads and their pod templates.
    All,
    /// Objects and workloads, not pod templates (no restart from stamping).
    Objects,
}

impl StampArgs {
    /// The stamp to write, read from the CI variables; `None` when off or nothing is set.
    pub fn stamp(&self) -> Option<Stamp> {
        let mode = match (self.no_stamp, self.stamp) {
            (true, _) => return None,
            (false, Some(StampArg::All)) => StampMode::All,
            (false, Some(StampArg::Objects)) => StampMode::Objects,
            (false, None) if crate::deploy::log::in_gitlab_ci() => StampMode::All,
            (false, None) => return None,
        };
        Some(Stamp::from_env(mode)).filter(|s| !s.is_empty())
    }
}

fn parse_concurrency(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n @ 1..=64) => Ok(n),
        _ => Err(format!("`{text}`: expected a number from 1 to 64")),
    }
}

fn parse_history_limit(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n @ 1..=100) => Ok(n),
        _ => Err(format!("`{text}`: expected a number from 1 to 100")),
    }
}

/// Parses `--applyset NAME`.
pub fn parse_applyset(text: &str) -> Result<ParentRef, String> {
    text.parse()
}

/// Parses `--field-manager NAME`.
fn parse_field_manager(text: &str) -> Result<String, String> {
    check_field_manager(text).map(|()| text.to_owned())
}

/// Parses `--set KEY=VALUE`: KEY must be a placeholder name.
pub fn parse_variable(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}`: expected KEY=VALUE"))?;
    if !manifest::is_name(key) {
        return Err(format!(
            "`{key}` cannot be a placeholder name (letters, digits and `_`, not starting with a digit)"
        ));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// Parses `--image NAME=REF`.
pub fn parse_image(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, reference)) if !name.is_empty() && !reference.is_empty() => {
            Ok((name.to_owned(), reference.to_owned()))
        }
        // `--image web=$IMAGE` in a job where IMAGE is unset or empty.
        Some((name, "")) if !name.is_empty() => Err(format!(
            "`{text}`: the image reference is empty: is the variable it comes from (as in \
             `--image {name}=$IMAGE`) unset or empty in this job?"
        )),
        _ => Err(format!("`{text}`: expected NAME=REF")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        assert_eq!(parse_variable("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert_eq!(parse_variable("A="), Ok(("A".into(), String::new())));
        assert!(parse_variable("A-B=1").is_err());
        assert!(parse_variable("A").is_err());
        assert_eq!(
            parse_image("registry.local:5000/team/app=registry.local:5000/team/app:2.0"),
            Ok((
                "registry.local:5000/team/app".into(),
                "registry.local:5000/team/app:2.0".into()
            ))
        );
        assert!(parse_image("app=").is_err());
        assert_eq!(parse_concurrency("8"), Ok(8));
        assert!(parse_concurrency("0").is_err());
        assert_eq!(parse_field_manager("kubectl"), Ok("kubectl".into()));
        assert!(parse_field_manager("").is_err());
        assert!(parse_field_manager("caf\u{e9}").is_err());
        assert!(parse_field_manager(&"m".repeat(129)).is_err());
    }
}
