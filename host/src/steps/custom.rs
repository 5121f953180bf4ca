//! Custom (pluggable) steps: components of the WIT world `kstep:steps/custom-step` loaded from a
//! `.wasm` file, and the host side of the one interface they may import, `kstep:steps/log`.
//!
//! What a custom step gets is exactly its [`Request`]: parameters, the variables the pipeline
//! lists for it, the documents, and at most one read-only directory. Everything it returns is
//! checked before the pipeline uses it ([`Response`]): documents must be JSON objects, variable
//! names must be names, findings must point at documents that exist, and the whole result is
//! capped in size. Its log lines, stdout and stderr reach the user masked, prefixed with the
//! step's name, stripped of control characters and capped.

use std::path::Path;

use serde_json::Value;
use wasmtime::component::{HasSelf, Linker};

use crate::output;
use crate::runtime::{CAPTURE_LIMIT, Limits, LoadedStep, Runtime, Sandbox, StepError, StepState};

#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "custom-step",
        with: { "kstep:steps/types": crate::steps::types::kstep::steps::types },
        exports: { default: async },
    });
}

use crate::steps::Severity as WitSeverity;
use bindings::CustomStep;
use bindings::exports::kstep::steps::step as wit;
use bindings::kstep::steps::log::Level;

/// Log lines one `run` call may write; the rest is dropped.
pub const MAX_LOG_LINES: usize = 1000;
/// Log bytes one `run` call may write; the rest is dropped.
pub const MAX_LOG_BYTES: usize = 256 << 10;
/// A longer log line, finding message or guest output line is cut here.
const MAX_LINE_CHARS: usize = 2000;
/// Lines of guest stdout/stderr forwarded per stream and call.
const MAX_FORWARDED_LINES: usize = 100;
/// Bytes of guest stdout/stderr forwarded per stream and call.
const MAX_FORWARDED_BYTES: usize = 16 << 10;
/// Bytes of documents and variables a step may return.
pub const MAX_OUTPUT_BYTES: usize = 32 << 20;
/// Findings shown per step; the rest are counted.
const MAX_FINDINGS: usize = 1000;

/// How much a custom step has logged during the current call.
#[derive(Debug, Default)]
pub struct LogState {
    step: String,
    lines: usize,
    bytes: usize,
    capped: bool,
}

impl LogState {
    /// Accounting for one call of `step`.
    pub fn new(step: &str) -> Self {
        Self {
            step: step.to_owned(),
            ..Self::default()
        }
    }

    fn write(&mut self, level: Level, message: &str) {
        let label = match level {
            Level::Debug => "debug: ",
            Level::Info => "",
            Level::Warning => "warning: ",
            Level::Error => "error: ",
        };
        // Masked whole before it is split, so a multi-line secret is matched as one.
        let message = output::mask(message);
        for line in message.lines() {
            if self.capped {
                return;
            }
            let line = clean_line(line);
            if self.lines >= MAX_LOG_LINES || self.bytes + line.len() > MAX_LOG_BYTES {
                self.capped = true;
                output::stderr_line(&format!(
                    "[{}] log limit reached ({MAX_LOG_LINES} lines or {} KiB per run): \
                     further log lines are dropped",
                    self.step,
                    MAX_LOG_BYTES >> 10
                ));
                return;
            }
            self.lines += 1;
            self.bytes += line.len();
            output::stderr_line(&format!("[{}] {label}{line}", self.step));
        }
    }
}

impl bindings::kstep::steps::log::Host for StepState {
    fn log(&mut self, level: Level, message: String) {
        self.log.write(level, &message);
    }
}

/// Links the host's `kstep:steps/log` (for [`crate::runtime::policy::link_custom`]).
///
/// # Errors
/// When the interface is already linked.
pub fn link_log(linker: &mut Linker<StepState>) -> wasmtime::Result<()> {
    bindings::kstep::steps::log::add_to_linker::<StepState, HasSelf<StepState>>(linker, |s| s)
}

/// Reads and loads the custom step at `path`, reported as `name`.
///
/// # Errors
/// [`StepError::Load`] when the file cannot be read or is not a component; the refusals of
/// [`Runtime::load_custom`].
pub fn load(runtime: &Runtime, name: &str, path: &Path) -> Result<LoadedStep, StepError> {
    let wasm = std::fs::read(path).map_err(|e| StepError::Load {
        step: name.to_owned(),
        reason: format!("cannot read {}: {e}", path.display()),
    })?;
    runtime.load_custom(name, &wasm)
}

/// What a custom step is given.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `with:` from the pipeline file, a JSON object.
    pub params: &'a serde_json::Map<String, Value>,
    /// Only the variables the pipeline lists for the step.
    pub variables: &'a [(String, String)],
    /// The documents flowing through the pipeline.
    pub documents: &'a [Value],
    /// The directory it may read, if the pipeline grants one.
    pub sandbox: &'a Sandbox,
}

/// How serious a [`Finding`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Stops the pipeline before anything is applied.
    Error,
    /// Reported, the pipeline goes on.
    Warning,
    /// Reported, the pipeline goes on.
    Info,
}

impl From<Severity> for crate::report::Level {
    fn from(s: Severity) -> Self {
        match s {
            Severity::Error => Self::Error,
            Severity::Warning => Self::Warning,
            Severity::Info => Self::Info,
        }
    }
}

impl Severity {
    /// `error`, `warning`, `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Info => "info",
        }
    }
}

/// One finding of a step, checked and cleaned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Error, warning or info.
    pub severity: Severity,
    /// One line (control characters replaced, length capped).
    pub message: String,
    /// 0-based index into the request's documents, when it points at one that exists.
    pub document: Option<usize>,
    /// JSON pointer into that document.
    pub field: Option<String>,
}

/// A successful run, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    /// Variables to add or overwrite.
    pub variables: Vec<(String, String)>,
    /// The documents that replace the set, if the step replaced it.
    pub documents: Option<Vec<Value>>,
    /// What the step found (at most [`MAX_FINDINGS`], then one info saying how many were left out).
    pub findings: Vec<Finding>,
}

/// What `run` returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The step did its job (its findings may still contain errors).
    Done(Response),
    /// The step says it could not do its job.
    Failed {
        /// Its message.
        message: String,
        /// Details.
        findings: Vec<Finding>,
    },
}

/// Why a custom step call did not produce a usable outcome.
#[derive(Debug, thiserror::Error)]
pub enum CustomError {
    /// The sandbox stopped it (budget, memory, trap) or it could not be instantiated.
    #[error(transparent)]
    Step(#[from] StepError),
    /// What it returned breaks the contract (not JSON, too big, bad variable name…).
    #[error("step `{step}` returned an unusable result: {reason}")]
    InvalidOutput {
        /// The step's name.
        step: String,
        /// What is wrong.
        reason: String,
    },
}

/// Runs `step` once on `request` inside the sandbox.
///
/// # Errors
/// [`CustomError::Step`] when the sandbox stops the step, [`CustomError::InvalidOutput`] when
/// its result is unusable.
pub fn run(
    runtime: &Runtime,
    step: &LoadedStep,
    limits: &Limits,
    request: &Request<'_>,
) -> Result<Outcome, CustomError> {
    let input = wit::Input {
        params: Value::Object(request.params.clone()).to_string(),
        variables: request.variables.to_vec(),
        documents: request.documents.iter().map(Value::to_string).collect(),
        directory: request.sandbox.dir.as_ref().map(|d| d.guest.clone()),
    };
    let (result, captured) =
        runtime.call_captured_in(step, limits, request.sandbox, async |store, instance| {
            CustomStep::new(&mut *store, instance)?
                .kstep_steps_step()
                .call_run(store, &input)
                .await
        })?;
    forward(step.name(), "stdout", &captured.stdout);
    forward(step.name(), "stderr", &captured.stderr);
    let result = result.map_err(|e| {
        let mut error = runtime.classify_error(step, limits, &e, &captured.stderr);
        if let StepError::Trapped { reason, .. } = &mut error {
            for (stream, bytes) in [("stdout", &captured.stdout), ("stderr", &captured.stderr)] {
                if bytes.len() >= CAPTURE_LIMIT {
                    reason.push_str(&format!(
                        "; it wrote {} MiB or more on {stream}, where kstep stops capturing",
                        CAPTURE_LIMIT >> 20
                    ));
                }
            }
        }
        CustomError::Step(error)
    })?;
    let invalid = |reason: String| CustomError::InvalidOutput {
        step: step.name().to_owned(),
        reason,
    };
    match result {
        Ok(output) => check_output(output, request.documents.len()).map_err(invalid),
        Err(error) => Ok(Outcome::Failed {
            message: clean_line(&error.message),
            findings: check_findings(error.findings, request.documents.len()),
        }),
    }
}

fn check_output(output: wit::Output, documents_in: usize) -> Result<Outcome, String> {
    let size = output
        .variables
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum::<usize>()
        + output
            .documents
            .iter()
            .flatten()
            .map(String::len)
            .sum::<usize>();
    if size > MAX_OUTPUT_BYTES {
        return Err(format!(
            "{} MiB of documents and variables, more than the {} MiB a step may return",
            size >> 20,
            MAX_OUTPUT_BYTES >> 20
        ));
    }
    for (name, _) in &output.variables {
        if !is_variable_name(name) {
            return Err(format!(
                "`{}` is not a variable name (letters, digits and `_`, not starting with a digit)",
                clean_line(name)
            ));
        }
    }
    let documents = output
        .documents
        .map(|docs| {
            docs.iter()
                .enumerate()
                .map(|(i, text)| match serde_json::from_str::<Value>(text) {
                    Ok(value @ Value::Object(_)) => Ok(value),
                    Ok(_) => Err(format!("document {i} is not a JSON object")),
                    Err(e) => Err(format!("document {i} is not JSON: {e}")),
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    Ok(Outcome::Done(Response {
        variables: output.variables,
        documents,
        findings: check_findings(output.findings, documents_in),
    }))
}

fn check_findings(findings: Vec<wit::Finding>, documents: usize) -> Vec<Finding> {
    let total = findings.len();
    let mut out: Vec<Finding> = findings
        .into_iter()
        .take(MAX_FINDINGS)
        .map(|f| {
            let document = f
                .document
                .and_then(|d| usize::try_from(d).ok())
                .filter(|d| *d < documents);
            Finding {
                severity: match f.severity {
                    WitSeverity::Error => Severity::Error,
                    WitSeverity::Warning => Severity::Warning,
                    WitSeverity::Info => Severity::Info,
                },
                message: clean_line(&f.message),
                document,
                field: f
                    .field
                    .filter(|_| document.is_some())
                    .map(|p| clean_line(&p)),
            }
        })
        .collect();
    if total > MAX_FINDINGS {
        out.push(Finding {
            severity: Severity::Info,
            message: format!("{} more finding(s) not shown", total - MAX_FINDINGS),
            document: None,
            field: None,
        });
    }
    out
}

/// Forwards what the guest printed, masked and capped.
fn forward(step: &str, stream: &str, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let text = String::from_utf8_lossy(bytes);
    // Masked whole before it is split or cut, so a multi-line secret is matched as one.
    let text = output::mask(&text);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let (mut count, mut bytes_shown) = (0, 0);
    for line in lines.by_ref() {
        let line = clean_line(line);
        output::stderr_line(&format!("[{step}] {line}"));
        count += 1;
        bytes_shown += line.len();
        if count >= MAX_FORWARDED_LINES || bytes_shown >= MAX_FORWARDED_BYTES {
            break;
        }
    }
    let rest = lines.count();
    if rest > 0 {
        output::stderr_line(&format!(
            "[{step}] … {rest} more line(s) on its {stream} not shown"
        ));
    }
}

/// `line` masked, with control characters made visible and its length capped, so a step can
/// neither forge lines nor drive the terminal. Masking comes first: a secret cut at the cap or
/// with its control characters rewritten would no longer match.
pub fn clean_line(line: &str) -> String {
    let line = output::mask(line);
    let mut out = String::with_capacity(line.len().min(MAX_LINE_CHARS));
    for (i, c) in line.chars().enumerate() {
        if i == MAX_LINE_CHARS {
            out.push('…');
            break;
        }
        match c {
            '\t' => out.push(' '),
            c if c.is_control() => out.push_str(&c.escape_default().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// A shell-style variable name: the rule of template placeholders.
pub use crate::steps::manifest::is_name as is_variable_name;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn lines_are_cleaned() {
        assert_eq!(clean_line("a\u{1b}[2Jb\tc\r"), "a\\u{1b}[2Jb c\\r");
        assert_eq!(
            clean_line(&"x".repeat(5000)).chars().count(),
            MAX_LINE_CHARS + 1
        );
    }

    #[test]
    fn variable_names() {
        assert!(is_variable_name("CI_COMMIT_SHA"));
        assert!(is_variable_name("_x1"));
        assert!(!is_variable_name("1X"));
        assert!(!is_variable_name("A-B"));
        assert!(!is_variable_name(""));
    }

    #[test]
    fn findings_point_only_at_documents_that_exist() {
        let f = |document| wit::Finding {
            severity: WitSeverity::Error,
            message: "m".into(),
            document,
            field: Some("/a".into()),
        };
        let out = check_findings(vec![f(Some(1)), f(Some(7)), f(None)], 2);
        assert_eq!(out[0].document, Some(1));
        assert_eq!(out[0].field.as_deref(), Some("/a"));
        assert_eq!((out[1].document, out[1].field.as_deref()), (None, None));
        let many = (0..MAX_FINDINGS + 5).map(|_| f(None)).collect();
        let out = check_findings(many, 0);
        assert_eq!(out.len(), MAX_FINDINGS + 1);
        assert_eq!(out[MAX_FINDINGS].message, "5 more finding(s) not shown");
    }

    #[test]
    fn output_is_checked() {
        let output = |documents: Option<Vec<&str>>, variables: Vec<(&str, &str)>| wit::Output {
            variables: variables
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            documents: documents.map(|d| d.into_iter().map(Into::into).collect()),
            findings: Vec::new(),
        };
        assert!(
            check_output(output(Some(vec!["[1]"]), vec![]), 0)
                .unwrap_err()
                .contains("document 0 is not a JSON object")
        );
        assert!(
            check_output(output(Some(vec!["{", "{}"]), vec![]), 0)
                .unwrap_err()
                .contains("document 0 is not JSON")
        );
        assert!(
            check_output(output(None, vec![("A B", "x")]), 0)
                .unwrap_err()
                .contains("`A B` is not a variable name")
        );
        let Outcome::Done(r) =
            check_output(output(Some(vec!["{\"a\":1}"]), vec![("A", "1")]), 0).unwrap()
        else {
            panic!()
        };
        assert_eq!(r.documents, Some(vec![serde_json::json!({"a": 1})]));
    }
}
