//! `kstep step run COMPONENT.wasm`: runs one custom step by itself, for its developer — the
//! same sandbox, checks and reports as inside `kstep run`, without writing a pipeline file.
//!
//! The step gets the `--param`s, every variable of the `--env-file`s, the documents of the
//! `-f` manifests (rendered with those variables) and, with `--read`, one read-only directory.
//! The documents it leaves are printed on stdout; the variables it sets, its findings and its
//! log on stderr. `kstep step test` (`step_test.rs`) runs the same pipeline ([`OneStep`]) per
//! test case.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use super::args::DocumentFormat;
use crate::cli::{CliError, CliResult, parse_duration, parse_size};
use crate::output;
use crate::pipeline::file::{
    KindSpec, Pipeline, Pos, RenderSpec, StepSource, StepSpec, WasmSpec, check_grant,
};
use crate::pipeline::{self, Options};
use crate::runtime::{GrantedDir, Limits, Runtime};
use crate::shell::Shell;
use crate::steps::dotenv::{self, EnvFileError, Flavor};

/// The subcommands of `kstep step`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Run one custom step (a `kstep:steps/custom-step` component) on manifests and variables.
    Run(RunArgs),
    /// Push a step to an OCI registry (CNCF wasm layout); prints its `oci://…@sha256:…`.
    Push(super::step_oci::PushArgs),
    /// Pull a step from an OCI registry, checked against its digest.
    Pull(super::step_oci::PullArgs),
    /// Resolve the `wasm: oci://…` steps of a pipeline file and write kstep.lock beside it.
    Lock(super::step_oci::LockArgs),
    /// Run a step against test cases (`case.yaml` files): expected findings, variables and
    /// documents; a pass/fail table, exit 1 when a case fails.
    Test(super::step_test::TestArgs),
    /// Scaffold a step: WIT, build script, test cases and a CI job that tests, pushes and
    /// signs it.
    New(super::step_new::NewArgs),
}

/// Arguments of `kstep step run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The component.
    component: PathBuf,
    /// A parameter, VALUE read as it would be written under `with:` in kstep.yaml: `true`,
    /// `3`, `[memory, cpu]`, `"1.10"` (quoted: a string) or plain text (repeatable).
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    params: Vec<(String, Value)>,
    /// Manifests: a file, a directory or `-` (repeatable), rendered with the variables.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-")]
    files: Vec<PathBuf>,
    /// Variables from a GitLab dotenv file (repeatable; a later file wins). All are passed.
    #[arg(long, value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// Grant read-only access to this subdirectory of the working directory.
    #[arg(long, value_name = "DIR")]
    read: Option<String>,
    /// Give the step the values of Secret manifests (`secrets: true` in kstep.yaml); without
    /// it, each value is a stand-in.
    #[arg(long)]
    secrets: bool,
    #[command(flatten)]
    limits: LimitArgs,
    /// How the documents are printed.
    #[arg(short = 'o', long, value_enum, default_value_t = DocumentFormat::Yaml)]
    output: DocumentFormat,
    #[command(flatten)]
    pub(crate) report: crate::report::ReportArgs,
}

/// The limits of a step call, for `step run` and `step test`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LimitArgs {
    /// CPU budget.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    cpu: Duration,
    /// Wall-clock limit of the step call, whatever the step does (sleeping included).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    wall: Duration,
    /// Memory limit.
    #[arg(long, value_parser = parse_size, default_value = "128MiB")]
    memory: usize,
}

impl LimitArgs {
    /// The limits.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            cpu: self.cpu,
            wall: self.wall,
            memory: self.memory,
            ..Limits::default()
        }
    }
}

fn parse_param(text: &str) -> Result<(String, Value), String> {
    let (key, value) = text
        .split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{text}`: expected KEY=VALUE"))?;
    if value.trim().is_empty() {
        return Ok((key.to_owned(), Value::String(value.to_owned())));
    }
    // The same YAML reading as the pipeline file (YAML 1.2 booleans only).
    let options = serde_saphyr::options! {
        strict_booleans: true,
    };
    let value = serde_saphyr::from_str_with_options(value, options)
        .map_err(|e| format!("`{key}`: not a YAML value: {}", e.without_snippet()))?;
    Ok((key.to_owned(), value))
}

impl Command {
    /// The name and `--report` arguments of the subcommands that take them.
    pub(crate) fn reports(&self) -> Option<(&'static str, &crate::report::ReportArgs)> {
        match self {
            Command::Run(a) => Some(("kstep step run", &a.report)),
            Command::Test(a) => Some(("kstep step test", &a.report)),
            Command::New(_) | Command::Push(_) | Command::Pull(_) | Command::Lock(_) => None,
        }
    }
}

/// Runs `kstep step`.
///
/// # Errors
/// Exit 2 for invalid input or a step that refuses the documents, 1 when the sandbox stops it.
pub(crate) fn run(command: &Command) -> CliResult {
    match command {
        Command::Run(args) => run_step(args),
        Command::Push(args) => super::step_oci::push(args),
        Command::Pull(args) => super::step_oci::pull(args),
        Command::Lock(args) => super::step_oci::lock(args),
        Command::Test(args) => super::step_test::run(args),
        Command::New(args) => super::step_new::run(args),
    }
}

fn run_step(args: &RunArgs) -> CliResult {
    let label = "kstep step run".to_owned();
    let project = std::env::current_dir()
        .and_then(|d| d.canonicalize())
        .map_err(|e| anyhow::anyhow!("cannot resolve the working directory: {e}"))?;
    let read = args
        .read
        .as_deref()
        .map(|dir| check_grant(&project, dir))
        .transpose()
        .map_err(|e| CliError::invalid(anyhow::anyhow!("--read: {e}")))?;
    let runtime = Runtime::new()?;

    let mut variables: Vec<(String, String)> = Vec::new();
    for path in &args.env_file {
        let pairs = dotenv::read_env_file(&runtime, path, Flavor::Gitlab).map_err(|e| match e {
            EnvFileError::Invalid { lines } => {
                for line in lines {
                    output::stderr_line(&line);
                }
                CliError::reported_invalid()
            }
            EnvFileError::Step(e) => CliError::from(e),
            other => CliError::invalid(other),
        })?;
        for (k, v) in pairs {
            match variables.iter_mut().find(|(name, _)| *name == k) {
                Some(slot) => slot.1 = v,
                None => variables.push((k, v)),
            }
        }
    }

    let mut params = Map::new();
    for (k, v) in &args.params {
        params.insert(k.clone(), v.clone());
    }
    let pipeline = OneStep {
        label,
        project,
        component: StepSource::File(args.component.clone()),
        params,
        variables: variables.clone(),
        files: args.files.clone(),
        read,
        secrets: args.secrets,
        limits: args.limits.limits(),
    }
    .pipeline();
    let options = Options {
        dry_run: true,
        json: args.output == DocumentFormat::Json,
        ..Options::default()
    };
    let flow = pipeline::run(&runtime, &pipeline, &options, &Shell::new(false))?;
    for (k, v) in &flow.variables {
        if !variables
            .iter()
            .any(|(name, value)| name == k && value == v)
        {
            output::stderr_line(&format!("sets {k}={v}"));
        }
    }
    Ok(())
}

/// What `kstep step run` runs, and each case of `kstep step test`: the manifests rendered with
/// the variables (when there are any), then the step, given every variable.
pub(crate) struct OneStep {
    /// The pipeline's label in messages (`kstep step run`, a case file).
    pub label: String,
    /// The project directory (grants are checked against it).
    pub project: PathBuf,
    /// The component: a file, or a registry reference.
    pub component: StepSource,
    /// Its parameters.
    pub params: Map<String, Value>,
    /// The variables, all passed to the step.
    pub variables: Vec<(String, String)>,
    /// Manifests to render first.
    pub files: Vec<PathBuf>,
    /// The read-only directory granted.
    pub read: Option<GrantedDir>,
    /// Whether it sees Secret values.
    pub secrets: bool,
    /// Its limits.
    pub limits: Limits,
}

impl OneStep {
    /// The pipeline.
    pub(crate) fn pipeline(self) -> Pipeline {
        let name = match &self.component {
            StepSource::File(path) => path
                .file_stem()
                .map_or_else(|| "step".into(), |s| s.to_string_lossy().into_owned()),
            StepSource::Oci(reference) => reference.name().to_owned(),
        };
        let mut steps = Vec::new();
        if !self.files.is_empty() {
            steps.push(StepSpec {
                name: "render".into(),
                pos: Pos::default(),
                kind: KindSpec::Render(RenderSpec {
                    files: self.files,
                    images: Vec::new(),
                    upgrade_api_versions: false,
                }),
            });
        }
        steps.push(StepSpec {
            name,
            pos: Pos::default(),
            kind: KindSpec::Wasm(WasmSpec {
                source: self.component,
                verify: None,
                params: self.params,
                variables: self
                    .variables
                    .iter()
                    .map(|(k, _)| (k.clone(), Pos::default()))
                    .collect(),
                read: self.read,
                secrets: self.secrets,
                limits: self.limits,
            }),
        });
        Pipeline {
            file: self.label,
            project: self.project,
            env: Vec::new(),
            variables: self.variables,
            steps,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn params_read_like_the_pipeline_file() {
        let p = |t: &str| parse_param(t).unwrap().1;
        assert_eq!(p("a=true"), Value::Bool(true));
        assert_eq!(p("a=on"), Value::String("on".into()));
        assert_eq!(p("a=3"), serde_json::json!(3));
        assert_eq!(p("a=[memory, cpu]"), serde_json::json!(["memory", "cpu"]));
        assert_eq!(p("a=\"1.10\""), Value::String("1.10".into()));
        assert_eq!(p("a=nginx:1.27"), Value::String("nginx:1.27".into()));
        assert_eq!(p("a="), Value::String(String::new()));
        assert!(parse_param("=x").is_err());
        assert!(parse_param("novalue").is_err());
    }
}
