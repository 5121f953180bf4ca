//! The pipeline engine behind `kstep run`: ordered steps, with variables and documents flowing
//! from one to the next.
//!
//! - [`file`]: the pipeline file (`kstep.yaml`), parsed and checked with positions;
//! - one module per step kind, each implementing [`StepKind`]: [`builtin`] (`dotenv`, `render`,
//!   `traefik`: the embedded steps, through their host APIs), [`wasm`] (custom steps, see
//!   [`crate::steps::custom`]) and [`actions`] (`apply`, `wait`: what only the host may do, with
//!   the cluster credentials).
//!
//! A run has two phases. Preparation builds every step (custom components are compiled and
//! checked against the sandbox policy and the `kstep:steps` version), so a refused component
//! stops the pipeline before any step ran. Execution then runs the steps in order; the first
//! failure stops it, and the report says whether anything was applied by then. `--dry-run`
//! stops before the first host action and prints the documents that would be applied.

pub mod actions;
pub mod builtin;
pub mod file;
pub mod wasm;

use std::path::Path;
use std::rc::Rc;

use serde_json::Value;

use crate::deploy::session::Target;
use crate::deploy::{DeployError, Reporter};
use crate::output;
use crate::runtime::Runtime;
use file::{KindSpec, Pipeline, Pos, StepSpec};

/// Where a document came from: the `apply` action's own type, so a document keeps its origin
/// from the step that made it to the object sent (`item` is always 0 in a pipeline).
pub use crate::deploy::objects::Origin;

/// One manifest flowing through the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The object (a JSON value; a Kubernetes resource).
    pub value: Value,
    /// Where it came from.
    pub origin: Origin,
}

/// What flows from step to step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flow {
    /// Variables, in definition order, each name once.
    pub variables: Vec<(String, String)>,
    /// The documents, in order.
    pub documents: Vec<Document>,
    /// How many objects host actions have applied so far.
    pub applied: usize,
    /// What custom steps found.
    pub findings: Vec<StepFinding>,
}

/// A finding of a custom step, kept in the flow (`kstep step test` checks them).
#[derive(Debug, Clone, PartialEq)]
pub struct StepFinding {
    /// The step's name.
    pub step: String,
    /// The finding; its document is an index into the documents the step was given.
    pub finding: crate::steps::custom::Finding,
    /// That document's `Kind/name`, when it has both.
    pub object: Option<String>,
}

impl Flow {
    /// Sets `name` (replacing its value in place when it exists).
    pub fn set(&mut self, name: String, value: String) {
        match self.variables.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.variables.push((name, value)),
        }
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.variables
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a run stopped. The messages have been printed already; this carries the exit code.
pub use crate::failure::Failure;

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Stop before the first host action and print the documents.
    pub dry_run: bool,
    /// Print the documents as JSON instead of YAML (with `dry_run`).
    pub json: bool,
    /// With `dry_run`, print nothing of the documents: the caller checks them in the flow
    /// (`kstep step test`).
    pub keep_documents: bool,
    /// Where the cluster is, for host actions.
    pub cluster: Target,
    /// Steps by reference must be in `kstep.lock`, their tags unmoved (`kstep run --locked`).
    pub locked: bool,
}

/// One kind of step: `dotenv`, `render`, `traefik`, a custom step, `apply`, `wait`.
pub trait StepKind {
    /// Whether only the host can do it (it talks to the cluster): `--dry-run` stops before.
    fn is_host_action(&self) -> bool {
        false
    }

    /// Called for every step, in order, before the first one runs (not with `--dry-run`):
    /// what must be ready before anything happens (the kubeconfig, for host actions).
    ///
    /// # Errors
    /// The exit class of the failure, already reported.
    fn before_run(&self, _cx: &Context<'_>) -> Result<(), Failure> {
        Ok(())
    }

    /// Runs the step on `flow`. Problems are reported through `cx` before returning `Err`.
    ///
    /// # Errors
    /// The exit class of the failure, already reported.
    fn run(&self, cx: &Context<'_>, flow: &mut Flow) -> Result<(), Failure>;
}

/// What a running step knows about the pipeline and where it is in it.
pub struct Context<'a> {
    /// The sandbox runtime.
    pub runtime: &'a Runtime,
    /// The pipeline.
    pub pipeline: &'a Pipeline,
    /// The step being run.
    pub step: &'a StepSpec,
    /// The run's options.
    pub options: &'a Options,
    /// Where the deploy engine's events go.
    pub reporter: &'a dyn Reporter,
}

impl Context<'_> {
    /// `kstep.yaml:LINE:COL` of the step's entry.
    pub fn at(&self) -> String {
        at(&self.pipeline.file, self.step.pos)
    }

    /// Prints `kstep.yaml:LINE:COL: step `NAME`: message`.
    pub fn report(&self, message: &str) {
        output::stderr_line(&format!(
            "{}: step `{}`: {message}",
            self.at(),
            self.step.name
        ));
    }

    /// Reports a deploy engine error as the step's (the headline with the step's position,
    /// then the details) and returns its class.
    pub fn fail(&self, error: &DeployError) -> Failure {
        if let Some(headline) = error.headline() {
            self.report(&headline);
        }
        for line in error.details() {
            output::stderr_line(&line);
        }
        error.failure()
    }
}

/// How a stop is explained: whether the cluster was touched.
fn stop_note(flow: &Flow) -> String {
    if flow.applied == 0 {
        "the pipeline stops here; nothing was applied".into()
    } else {
        format!(
            "the pipeline stops here; {} object(s) were applied by earlier steps",
            flow.applied
        )
    }
}

/// `FILE:LINE:COL`.
pub fn at(file: &str, pos: Pos) -> String {
    if pos.line == 0 {
        // Not from a file (`kstep step run`): the label alone.
        file.to_owned()
    } else {
        format!("{file}:{}:{}", pos.line, pos.column)
    }
}

/// `path` relative to the working directory when it is below it, else as is.
pub fn display_path(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            let cwd = cwd.canonicalize().unwrap_or(cwd);
            path.strip_prefix(&cwd).ok().map(Path::to_path_buf)
        })
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// Builds the kind of `spec`: loads custom components, resolves what each kind needs.
///
/// # Errors
/// Reported with the step's position (a refused component, an unavailable kind).
fn prepare(cx: &Context<'_>, cluster: &Rc<actions::Cluster>) -> Result<Box<dyn StepKind>, Failure> {
    Ok(match &cx.step.kind {
        KindSpec::Dotenv(s) => Box::new(builtin::Dotenv(s.clone())),
        KindSpec::Render(s) => Box::new(builtin::Render(s.clone())),
        KindSpec::Traefik(s) => Box::new(builtin::Traefik(s.clone())),
        KindSpec::Wasm(s) => Box::new(wasm::Wasm::load(cx, s)?),
        KindSpec::Apply(s) => Box::new(actions::Apply {
            spec: s.clone(),
            cluster: Rc::clone(cluster),
        }),
        KindSpec::Wait(s) => Box::new(actions::Wait {
            spec: s.clone(),
            cluster: Rc::clone(cluster),
        }),
    })
}

/// Runs `pipeline`.
///
/// # Errors
/// The exit class of the first failure; every message has been printed.
pub fn run(
    runtime: &Runtime,
    pipeline: &Pipeline,
    options: &Options,
    reporter: &dyn Reporter,
) -> Result<Flow, Failure> {
    let mut flow = Flow::default();
    run_into(runtime, pipeline, options, reporter, &mut flow)?;
    Ok(flow)
}

/// [`run`] on `flow`, which holds what the steps did also when one failed (what the findings
/// of a refusing step are, for `kstep step test`).
///
/// # Errors
/// As [`run`].
pub fn run_into(
    runtime: &Runtime,
    pipeline: &Pipeline,
    options: &Options,
    reporter: &dyn Reporter,
    flow: &mut Flow,
) -> Result<(), Failure> {
    let cx = |step| Context {
        runtime,
        pipeline,
        step,
        options,
        reporter,
    };
    // Every component is loaded and checked, and the kubeconfig read, before the first step
    // runs: a refusal leaves nothing half done.
    let cluster = actions::Cluster::new(options.cluster.clone());
    let mut kinds = Vec::with_capacity(pipeline.steps.len());
    let mut refused = None;
    for spec in &pipeline.steps {
        match prepare(&cx(spec), &cluster) {
            Ok(kind) => kinds.push(kind),
            Err(failure) => refused = refused.or(Some(failure)),
        }
    }
    if !options.dry_run && refused.is_none() {
        for (spec, kind) in pipeline.steps.iter().zip(&kinds) {
            if let Err(failure) = kind.before_run(&cx(spec)) {
                refused = Some(failure);
                break;
            }
        }
    }
    if let Some(failure) = refused {
        output::stderr_line("the pipeline did not start; nothing was run or applied");
        return Err(failure);
    }

    for name in &pipeline.env {
        if let Ok(value) = std::env::var(name) {
            flow.set(name.clone(), value);
        }
    }
    for (name, value) in &pipeline.variables {
        flow.set(name.clone(), value.clone());
    }

    let total = pipeline.steps.len();
    // Each step is a check of the reports (`--report junit=FILE`); those that do not run are
    // reported skipped, with why.
    let skip_rest = |from: usize, why: &str| {
        for spec in &pipeline.steps[from..] {
            crate::report::skip(&spec.name, why);
        }
    };
    for (i, (spec, kind)) in pipeline.steps.iter().zip(&kinds).enumerate() {
        if options.dry_run && kind.is_host_action() {
            output::stderr_line(&format!(
                "{}: dry run: stopping before `{}`; the documents it would get follow",
                at(&pipeline.file, spec.pos),
                spec.name
            ));
            skip_rest(i, "dry run: not run");
            if !options.keep_documents {
                print_documents(&flow.documents, options.json);
            }
            return Ok(());
        }
        output::stderr_line(&format!("step {}/{total}: {}", i + 1, spec.name));
        let reported = crate::report::start(&spec.name);
        let result = kind.run(&cx(spec), flow);
        if reported {
            crate::report::end(match &result {
                Ok(()) => crate::report::Outcome::Passed,
                Err(_) => crate::report::Outcome::Failed(String::new()),
            });
        }
        if let Err(failure) = result {
            output::stderr_line(&stop_note(flow));
            skip_rest(i + 1, "an earlier step failed");
            return Err(failure);
        }
    }
    if options.dry_run {
        if !options.keep_documents {
            output::stderr_line("dry run: the documents after the last step follow");
            print_documents(&flow.documents, options.json);
        }
    } else if !kinds.iter().any(|k| k.is_host_action()) && !flow.documents.is_empty() {
        output::stderr_line(&format!(
            "the pipeline has no `apply`: its {} document(s) were not applied (`--dry-run` prints them)",
            flow.documents.len()
        ));
    }
    Ok(())
}

/// Prints `documents` on stdout: a YAML stream (`---` before each), or one JSON array.
pub fn print_documents(documents: &[Document], json: bool) {
    if json {
        let values: Vec<&Value> = documents.iter().map(|d| &d.value).collect();
        match serde_json::to_string_pretty(&values) {
            Ok(text) => output::stdout(&format!("{text}\n")),
            Err(e) => output::stderr_line(&format!("error: cannot write the documents: {e}")),
        }
        return;
    }
    let mut text = String::new();
    for doc in documents {
        match serde_saphyr::to_string(&doc.value) {
            Ok(yaml) => {
                text.push_str("---\n");
                text.push_str(&yaml);
                if !yaml.ends_with('\n') {
                    text.push('\n');
                }
            }
            Err(e) => output::stderr_line(&format!(
                "error: {}: cannot write the document as YAML: {e}",
                doc.origin
            )),
        }
    }
    output::stdout(&text);
}
