//! The command line: argument definitions, dispatch, exit codes and error reporting.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 usage or invalid input, 3 failed rollout, 4
//! changes found (`kstep plan --exit-code`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::failure::Failure;
pub use crate::units::{parse_duration, parse_size};
use crate::{commands, output, report};

/// kstep: deploy from GitLab CI to Kubernetes with sandboxed WebAssembly steps.
#[derive(Debug, Parser)]
#[command(
    name = "kstep",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print kstep's version, the wasmtime version and every embedded step.
    Version(commands::info::VersionArgs),
    /// List the embedded steps with their WIT world, size and sha256.
    Components(commands::info::VersionArgs),
    /// Run the reference workflow's image and deploy jobs offline on an embedded example, and
    /// print what would be applied.
    Demo,
    /// Precompile custom steps into the compile cache (for runner images); the built-in steps
    /// are precompiled into the binary.
    Warm(commands::info::WarmArgs),
    /// Call one export of a component inside the sandbox (for step developers and tests).
    #[command(hide = true)]
    Call(commands::call::Args),
    /// Read, check and write dotenv files exactly as GitLab (`artifacts:reports:dotenv`) and
    /// Docker Compose do.
    #[command(subcommand)]
    Dotenv(commands::dotenv::Command),
    /// Encode, inspect, decode and check kubeconfigs without ever printing a credential.
    #[command(subcommand)]
    Kubeconfig(commands::kubeconfig::Command),
    /// Render manifests: YAML-aware ${VAR} placeholders, --image overrides, apiVersion upgrades.
    Render(commands::render::Args),
    /// Run a pipeline file (kstep.yaml): built-in steps, custom WebAssembly steps and host
    /// actions in order; --dry-run stops before the cluster and prints the documents.
    Run(commands::run::Args),
    /// Develop and share custom steps: `kstep step run COMPONENT.wasm` runs one on manifests;
    /// `push`, `pull` and `lock` handle steps in OCI registries.
    #[command(subcommand)]
    Step(commands::step::Command),
    /// Server-side apply manifests: a dry run of every object first, namespace policy checked
    /// before any request, created/configured/unchanged per object, optional rollout wait.
    Apply(commands::apply::Args),
    /// The deploy job in one line: dotenv variables, manifest rendering, apply and rollout wait,
    /// with GitLab log sections and a summary.
    Deploy(commands::deploy::Args),
    /// Tear an ApplySet down: delete every member (listed first), then its parent.
    Delete(commands::delete::Args),
    /// Delete the ApplySets whose expiry (`--expires-in`) has passed, listed first: review
    /// apps whose stop job never ran (for a scheduled pipeline).
    Gc(commands::gc::Args),
    /// List an ApplySet's revisions: number, time, commit, pipeline, job, images, result.
    History(commands::history::Args),
    /// Re-apply a revision of an ApplySet (default: the last good one), prune, and wait.
    Rollback(commands::rollback::Args),
    /// Show what `kstep deploy` would change, object by object (a diff of kstep's fields against
    /// the live objects, Secret values hidden), as text, JSON or a merge request comment;
    /// --out writes a plan file that `deploy --plan` / `apply --plan` apply exactly.
    Plan(commands::plan::Args),
    /// Bootstrap a namespace-scoped ServiceAccount for CI: RoleBinding, token, verified
    /// kubeconfig and masked-variable value.
    #[command(name = "serviceaccount")]
    #[command(subcommand)]
    ServiceAccount(commands::serviceaccount::Command),
    /// Traefik v3: render a deployment from a values file, migrate a Traefik 1.x traefik.toml.
    #[command(subcommand)]
    Traefik(commands::traefik::Command),
}

/// A failure with the exit code it maps to (cargo's `CliError`): `error` is what is left to
/// print, `None` when the failure was reported already (diagnostics, a rollout diagnosis).
#[derive(Debug)]
pub struct CliError {
    error: Option<anyhow::Error>,
    failure: Failure,
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error {
            Some(error) => write!(f, "{error:#}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for CliError {}

impl CliError {
    /// Exit code 2: the user's input (arguments, files) is wrong.
    pub fn invalid(error: impl Into<anyhow::Error>) -> Self {
        Self {
            error: Some(error.into()),
            failure: Failure::Invalid,
        }
    }

    /// Exit code 2 with nothing more to print: diagnostics were already reported.
    pub fn reported_invalid() -> Self {
        Failure::Invalid.into()
    }

    /// Exit code 1 with nothing more to print: the failure was already reported.
    pub fn reported() -> Self {
        Failure::Runtime.into()
    }

    /// The class of the failure.
    pub fn failure(&self) -> Failure {
        self.failure
    }
}

/// A failure that was reported already.
impl From<Failure> for CliError {
    fn from(failure: Failure) -> Self {
        Self {
            error: None,
            failure,
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> Self {
        Self {
            error: Some(error),
            failure: Failure::Runtime,
        }
    }
}

impl From<crate::runtime::StepError> for CliError {
    fn from(error: crate::runtime::StepError) -> Self {
        anyhow::Error::from(error).into()
    }
}

/// What a command returns.
pub type CliResult = Result<(), CliError>;

/// Parses the arguments, runs the command and reports any error (masked) on stderr.
pub fn main() -> ExitCode {
    install_panic_hook();
    if let Some(code) = entrypoint::exec_if_command() {
        return code;
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let reports = cli
        .command
        .reports()
        .filter(|(_, args)| !args.requests.is_empty())
        .map(|(name, args)| (name, args.clone()));
    let mut result = run(cli);
    if let Some((name, args)) = reports {
        result = write_reports(name, &args, result);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(error) = &e.error {
                output::stderr_line(&format!("error: {error:#}"));
            }
            ExitCode::from(e.failure.exit_code())
        }
    }
}

impl Command {
    /// The command's name and its `--report` arguments, for the commands that take them.
    fn reports(&self) -> Option<(&'static str, &report::ReportArgs)> {
        match self {
            Command::Render(a) => Some(("kstep render", &a.report)),
            Command::Run(a) => Some(("kstep run", &a.report)),
            Command::Deploy(a) => Some(("kstep deploy", &a.report)),
            Command::Step(c) => c.reports(),
            Command::Dotenv(c) => c.reports(),
            _ => None,
        }
    }
}

/// Writes the `--report`s of a command that ended with `result`, also (above all) when it
/// failed; a report that cannot be written fails a command that succeeded.
fn write_reports(name: &str, args: &report::ReportArgs, result: CliResult) -> CliResult {
    let failure = result.as_ref().err().map(ToString::to_string);
    let collected = report::collected(name, failure.as_deref());
    match (args.write(&collected), result) {
        (Err(e), Ok(())) => Err(e.into()),
        (Err(e), Err(failed)) => {
            output::stderr_line(&format!("error: {e:#}"));
            Err(failed)
        }
        (Ok(()), result) => result,
    }
}

fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Version(args) => commands::info::version(&args),
        Command::Components(args) => commands::info::components(&args),
        Command::Warm(args) => commands::info::warm(&args),
        Command::Demo => commands::demo::run(),
        Command::Call(args) => commands::call::run(&args),
        Command::Dotenv(args) => commands::dotenv::run(&args),
        Command::Kubeconfig(args) => commands::kubeconfig::run(&args),
        Command::Render(args) => commands::render::run(&args),
        Command::Run(args) => commands::run::run(&args),
        Command::Step(args) => commands::step::run(&args),
        Command::Apply(args) => commands::apply::run(&args),
        Command::Deploy(args) => commands::deploy::run(&args),
        Command::Delete(args) => commands::delete::run(&args),
        Command::Gc(args) => commands::gc::run(&args),
        Command::History(args) => commands::history::run(&args),
        Command::Rollback(args) => commands::rollback::run(&args),
        Command::Plan(args) => commands::plan::run(&args),
        Command::ServiceAccount(args) => commands::serviceaccount::run(&args),
        Command::Traefik(args) => commands::traefik::run(&args),
    }
}

/// Behaviour as a container entrypoint (the runner image sets `KSTEP_ENTRYPOINT=1`).
///
/// GitLab's docker executor starts a job's container with a shell command (`sh -c …`) as its
/// arguments. So that jobs work without `entrypoint: [""]`, a first argument that is a shell or
/// an absolute path is executed as-is; anything else is a kstep command (`docker run IMAGE deploy`).
/// Outside the image (variable unset) kstep never executes its arguments.
mod entrypoint {
    use std::ffi::OsString;
    use std::process::ExitCode;

    use crate::output;

    const SHELLS: &[&str] = &["sh", "bash", "ash", "dash", "zsh"];

    /// Replaces the process with the command when running as the entrypoint and the first
    /// argument is one; returns the exit code only when that fails.
    pub fn exec_if_command() -> Option<ExitCode> {
        if std::env::var_os("KSTEP_ENTRYPOINT").is_none_or(|v| v != "1") {
            return None;
        }
        let mut args = std::env::args_os().skip(1);
        let program = args.next()?;
        if !is_command(&program) {
            return None;
        }
        let rest: Vec<OsString> = args.collect();
        let error = exec(&program, &rest);
        output::stderr_line(&format!(
            "error: cannot execute {}: {error}",
            program.to_string_lossy()
        ));
        Some(ExitCode::from(
            if error.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            },
        ))
    }

    fn is_command(program: &OsString) -> bool {
        let text = program.to_string_lossy();
        text.starts_with('/') || SHELLS.contains(&text.as_ref())
    }

    #[cfg(unix)]
    fn exec(program: &OsString, args: &[OsString]) -> std::io::Error {
        use std::os::unix::process::CommandExt;
        std::process::Command::new(program).args(args).exec()
    }

    #[cfg(not(unix))]
    fn exec(_: &OsString, _: &[OsString]) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::Unsupported, "only on unix")
    }
}

/// Panic messages can carry data; they go through the masker like everything else.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        output::stderr_line(&format!("kstep panicked (this is a bug): {info}"));
    }));
}
