//! `kstep step test DIR`: runs a custom step against test cases kept as files, and checks
//! what it found and what it left, like `kyverno test` for policies.
//!
//! A case is a directory holding a `case.yaml` (DIR itself, or each subdirectory of DIR that
//! has one, in name order), with the manifests it names beside it:
//!
//! ```yaml
//! step: ../../deny_latest.wasm      # the step under test (else --step; --step wins)
//! params: {required-limits: [memory]}
//! variables: {CI_COMMIT_SHA: 0123abc}
//! secrets: false                    # the step sees Secret values (else stand-ins)
//! manifests: [deployment.yaml]      # rendered with `variables`, as `kstep step run -f`
//! expect:
//!   refused: true                   # default: true when an error finding is expected
//!   findings:                       # every finding, in any order (left out: not checked)
//!     - severity: error             # error, warning or info
//!       document: Deployment/web    # Kind/name, or the 1-based index of the document
//!       field: /spec/template/spec/containers/0/image
//!       message: floating           # a part of the message
//!   variables: {DEPLOY_TIER: gold}  # set by the step, to these values
//!   documents: expected.yaml        # the documents it leaves, compared as data
//! ```
//!
//! Each case runs the pipeline `kstep step run` runs ([`super::step::OneStep`]): the same
//! sandbox, grants and reports. The result is a pass/fail table; exit 1 when a case fails, 2
//! when a case file is invalid (named `FILE:LINE:COL`). With `--report junit=FILE` each case is
//! a testcase. The step is a local `.wasm` file or an `oci://` reference ([`resolve_step`]),
//! pulled and checked against its digest as `kstep run` does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};
use serde_saphyr::{Location, MessageFormatter as _, Spanned};

use super::step::{LimitArgs, OneStep};
use crate::cli::{CliError, CliResult};
use crate::failure::Failure;
use crate::output;
use crate::pipeline::file::StepSource;
use crate::pipeline::{self, Flow, Options, StepFinding};
use crate::report::{self, Outcome};
use crate::runtime::{Limits, Runtime};
use crate::shell::Shell;
use crate::steps::custom::Severity;

/// The name of a case file.
pub const CASE_FILE: &str = "case.yaml";

/// The largest case file read.
const MAX_CASE_BYTES: u64 = 1 << 20;

/// Arguments of `kstep step test`.
#[derive(Debug, clap::Args)]
pub(crate) struct TestArgs {
    /// The directory of the cases: a `case.yaml`, or subdirectories each with one.
    dir: PathBuf,
    /// The step under test, for every case (else each case's `step:`): a `.wasm` file.
    #[arg(long, value_name = "FILE")]
    step: Option<String>,
    /// The limits of each run.
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    pub(crate) report: report::ReportArgs,
}

// ---- The case file. `Spanned` keeps positions for the errors. ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    step: Option<Spanned<String>>,
    #[serde(default)]
    params: Map<String, Value>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    secrets: bool,
    #[serde(default)]
    manifests: Vec<Spanned<String>>,
    #[serde(default)]
    expect: RawExpect,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    refused: Option<bool>,
    findings: Option<Vec<Spanned<RawFinding>>>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    documents: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFinding {
    severity: Spanned<String>,
    document: Option<DocumentRef>,
    field: Option<String>,
    message: Option<String>,
}

/// `document:` of an expected finding.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(untagged)]
enum DocumentRef {
    /// 1-based index in the documents the step gets.
    Index(usize),
    /// `Kind/name`.
    Object(String),
}

impl std::fmt::Display for DocumentRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Index(i) => write!(f, "document {i}"),
            Self::Object(o) => write!(f, "{o}"),
        }
    }
}

/// One expected finding.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    severity: Severity,
    document: Option<DocumentRef>,
    field: Option<String>,
    message: Option<String>,
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.severity.as_str())?;
        if let Some(d) = &self.document {
            write!(f, " in {d}")?;
        }
        if let Some(p) = &self.field {
            write!(f, " at {p}")?;
        }
        if let Some(m) = &self.message {
            write!(f, " containing \"{m}\"")?;
        }
        Ok(())
    }
}

/// A checked case.
#[derive(Debug)]
struct Case {
    name: String,
    file: String,
    dir: PathBuf,
    step: Option<StepSource>,
    params: Map<String, Value>,
    variables: Vec<(String, String)>,
    secrets: bool,
    manifests: Vec<PathBuf>,
    refused: bool,
    findings: Option<Vec<Expected>>,
    out_variables: Vec<(String, String)>,
    out_documents: Option<Vec<Value>>,
}

/// `FILE:LINE:COL: message` lines of one case file.
type CaseErrors = Vec<String>;

fn at(file: &str, loc: Location) -> String {
    if loc.line() == 0 {
        file.to_owned()
    } else {
        format!("{file}:{}:{}", loc.line(), loc.column())
    }
}

/// `FILE[:LINE:COL]: message` of a YAML error.
fn yaml_error(file: &str, e: &serde_saphyr::Error) -> String {
    let place = e
        .location()
        .map_or_else(|| file.to_owned(), |l| at(file, l));
    format!(
        "{place}: {}",
        serde_saphyr::DefaultMessageFormatter.format_message(e)
    )
}

/// The step a reference names: `oci://REGISTRY/REPO:TAG` (or `@sha256:…`), pulled and
/// checked against its digest as `kstep run` does, or a `.wasm` file relative to `base`.
///
/// # Errors
/// A malformed registry reference, or another scheme.
pub(crate) fn resolve_step(reference: &str, base: &Path) -> Result<StepSource, String> {
    if reference.starts_with("oci://") {
        return reference
            .parse()
            .map(StepSource::Oci)
            .map_err(|e| format!("`{reference}`: {e}"));
    }
    if reference.contains("://") {
        return Err(format!(
            "`{reference}`: a step is a .wasm file or an oci:// reference"
        ));
    }
    Ok(StepSource::File(base.join(reference)))
}

/// Reads and checks the case in `dir`, every problem with its position.
fn load_case(dir: &Path, name: String) -> Result<Case, CaseErrors> {
    let path = dir.join(CASE_FILE);
    let file = pipeline::display_path(&path);
    let whole = |message: String| vec![format!("{file}: {message}")];
    let bytes = crate::fsutil::read_capped(&path, false, MAX_CASE_BYTES)
        .map_err(|e| whole(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| whole("not UTF-8".into()))?;
    let options = serde_saphyr::options! {
        strict_booleans: true,
    };
    let raw: RawCase = serde_saphyr::from_str_with_options(&text, options)
        .map_err(|e| vec![yaml_error(&file, &e)])?;
    let mut errors = Vec::new();
    let step = raw.step.as_ref().and_then(|s| {
        resolve_step(&s.value, dir)
            .map_err(|e| errors.push(format!("{}: {e}", at(&file, s.referenced))))
            .ok()
    });
    let mut existing = |s: &Spanned<String>, what: &str| {
        let p = dir.join(&s.value);
        if p.is_file() {
            Some(p)
        } else {
            errors.push(format!(
                "{}: {what} `{}`: no such file in {}",
                at(&file, s.referenced),
                s.value,
                pipeline::display_path(dir)
            ));
            None
        }
    };
    let manifests: Vec<PathBuf> = raw
        .manifests
        .iter()
        .filter_map(|m| existing(m, "manifest"))
        .collect();
    let documents_file = raw
        .expect
        .documents
        .as_ref()
        .and_then(|d| existing(d, "expected documents").map(|p| (p, d.referenced)));
    let out_documents = documents_file.and_then(|(p, loc)| match read_documents(&p) {
        Ok(docs) => Some(docs),
        Err(e) => {
            errors.push(format!("{}: {e}", at(&file, loc)));
            None
        }
    });
    let findings = raw.expect.findings.as_ref().map(|list| {
        list.iter()
            .filter_map(|f| {
                let severity = match f.value.severity.value.as_str() {
                    "error" => Severity::Error,
                    "warning" => Severity::Warning,
                    "info" => Severity::Info,
                    other => {
                        errors.push(format!(
                            "{}: severity `{other}`: expected error, warning or info",
                            at(&file, f.value.severity.referenced)
                        ));
                        return None;
                    }
                };
                if f.value.document == Some(DocumentRef::Index(0)) {
                    errors.push(format!(
                        "{}: document 0: documents are counted from 1",
                        at(&file, f.referenced)
                    ));
                }
                Some(Expected {
                    severity,
                    document: f.value.document.clone(),
                    field: f.value.field.clone(),
                    message: f.value.message.clone(),
                })
            })
            .collect::<Vec<_>>()
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    let refused = raw.expect.refused.unwrap_or_else(|| {
        findings
            .iter()
            .flatten()
            .any(|f| f.severity == Severity::Error)
    });
    Ok(Case {
        name,
        file,
        dir: dir.to_owned(),
        step,
        params: raw.params,
        variables: raw.variables.into_iter().collect(),
        secrets: raw.secrets,
        manifests,
        refused,
        findings,
        out_variables: raw.expect.variables.into_iter().collect(),
        out_documents,
    })
}

/// The documents of a YAML stream, as data.
fn read_documents(path: &Path) -> Result<Vec<Value>, String> {
    let bytes = crate::fsutil::read_capped(path, false, MAX_CASE_BYTES)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8", path.display()))?;
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
        .map_err(|e| yaml_error(&pipeline::display_path(path), &e))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// The case directories under `dir`: itself when it holds a case file, else its
/// subdirectories that do, by name.
fn case_dirs(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    if dir.join(CASE_FILE).is_file() {
        let name = dir
            .file_name()
            .map_or_else(|| ".".into(), |n| n.to_string_lossy().into_owned());
        return Ok(vec![(name, dir.to_owned())]);
    }
    let mut dirs: Vec<(String, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join(CASE_FILE).is_file())
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, p)
        })
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Runs `kstep step test`.
///
/// # Errors
/// Exit 1 when a case fails, 2 when a case file or the arguments are invalid.
pub(crate) fn run(args: &TestArgs) -> CliResult {
    let dirs = case_dirs(&args.dir)
        .map_err(|e| CliError::invalid(anyhow::anyhow!("{}: {e}", args.dir.display())))?;
    if dirs.is_empty() {
        return Err(CliError::invalid(anyhow::anyhow!(
            "{}: no {CASE_FILE} in this directory or its subdirectories",
            args.dir.display()
        )));
    }
    let cwd = std::env::current_dir()
        .map_err(|e| anyhow::anyhow!("cannot resolve the working directory: {e}"))?;
    let cli_step = args
        .step
        .as_deref()
        .map(|s| resolve_step(s, &cwd))
        .transpose()
        .map_err(|e| CliError::invalid(anyhow::anyhow!("--step {e}")))?;
    // Every case file is checked before any case runs.
    let mut cases = Vec::new();
    let mut invalid = false;
    for (name, dir) in dirs {
        match load_case(&dir, name) {
            Ok(case) if case.step.is_none() && cli_step.is_none() => {
                output::stderr_line(&format!(
                    "{}: no `step:`, and no --step given: which step to test?",
                    case.file
                ));
                invalid = true;
            }
            Ok(case) => cases.push(case),
            Err(lines) => {
                for line in lines {
                    output::stderr_line(&line);
                }
                invalid = true;
            }
        }
    }
    if invalid {
        return Err(CliError::reported_invalid());
    }
    let runtime = Runtime::new()?;
    let limits = args.limits.limits();
    let mut rows = Vec::new();
    for case in &cases {
        output::stderr_line(&format!("case {}: {}", case.name, case.file));
        report::start(&case.name);
        let problems = run_case(&runtime, case, cli_step.as_ref(), &limits);
        report::end(if problems.is_empty() {
            Outcome::Passed
        } else {
            Outcome::Failed(problems.join("\n"))
        });
        rows.push((case.name.clone(), problems));
    }
    output::stdout(&table(&rows));
    if rows.iter().any(|(_, problems)| !problems.is_empty()) {
        Err(CliError::reported())
    } else {
        Ok(())
    }
}

/// The table: one line per case, then why each failed one failed.
fn table(rows: &[(String, Vec<String>)]) -> String {
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(4).max(4);
    let mut out = format!("{:<width$}  RESULT\n", "CASE");
    for (name, problems) in rows {
        let result = if problems.is_empty() { "pass" } else { "FAIL" };
        out.push_str(&format!("{name:<width$}  {result}\n"));
    }
    for (name, problems) in rows.iter().filter(|(_, p)| !p.is_empty()) {
        out.push_str(&format!("\n{name}:\n"));
        for p in problems {
            out.push_str(&format!("  - {p}\n"));
        }
    }
    let failed = rows.iter().filter(|(_, p)| !p.is_empty()).count();
    out.push_str(&format!(
        "\n{} passed, {failed} failed\n",
        rows.len() - failed
    ));
    out
}

/// Runs one case; what did not match (empty: it passed).
fn run_case(
    runtime: &Runtime,
    case: &Case,
    cli_step: Option<&StepSource>,
    limits: &Limits,
) -> Vec<String> {
    let Some(component) = cli_step.or(case.step.as_ref()) else {
        return vec!["no step to test".into()];
    };
    let pipeline = OneStep {
        label: case.file.clone(),
        project: case.dir.clone(),
        component: component.clone(),
        params: case.params.clone(),
        variables: case.variables.clone(),
        files: case.manifests.clone(),
        read: None,
        secrets: case.secrets,
        limits: *limits,
    }
    .pipeline();
    let options = Options {
        dry_run: true,
        keep_documents: true,
        ..Options::default()
    };
    let mut flow = Flow::default();
    let result = pipeline::run_into(runtime, &pipeline, &options, &Shell::new(false), &mut flow);
    let mut problems = Vec::new();
    match (&result, case.refused) {
        (Ok(()), true) => {
            problems.push("the step accepted the documents; expected a refusal".into());
        }
        (Ok(()), false) | (Err(Failure::Invalid), true) => {}
        (Err(Failure::Invalid), false) => {
            problems.push("the step refused the documents (or could not run: see above)".into());
        }
        (Err(_), _) => problems.push("the step did not finish: see its messages above".into()),
    }
    if !case.manifests.is_empty()
        && flow.findings.is_empty()
        && flow.documents.is_empty()
        && result.is_err()
    {
        problems.push("the manifests did not render: see above".into());
    }
    if let Some(expected) = &case.findings {
        problems.extend(compare_findings(expected, &flow.findings));
    }
    if result.is_ok() {
        for (name, value) in &case.out_variables {
            match flow.get(name) {
                Some(v) if v == value.as_str() => {}
                // The values are the test's own, masked on output like all text.
                Some(v) => problems.push(format!("variable {name}: expected `{value}`, got `{v}`")),
                None => problems.push(format!("variable {name}: not set; expected `{value}`")),
            }
        }
        if let Some(expected) = &case.out_documents {
            let actual: Vec<&Value> = flow.documents.iter().map(|d| &d.value).collect();
            if actual.len() != expected.len() {
                problems.push(format!(
                    "documents: expected {}, got {}",
                    expected.len(),
                    actual.len()
                ));
            } else {
                for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
                    if let Some(diff) = first_difference(e, a, String::new()) {
                        problems.push(format!("document {}: {diff}", i + 1));
                    }
                }
            }
        }
    }
    problems
}

/// Matches each expected finding with a distinct actual one; what is left on either side.
fn compare_findings(expected: &[Expected], actual: &[StepFinding]) -> Vec<String> {
    let mut unmatched: Vec<&StepFinding> = actual.iter().collect();
    let mut problems = Vec::new();
    for e in expected {
        match unmatched.iter().position(|a| matches(e, a)) {
            Some(i) => {
                unmatched.remove(i);
            }
            None => problems.push(format!("expected finding not made: {e}")),
        }
    }
    for a in unmatched {
        let f = &a.finding;
        let mut text = format!("unexpected finding: {}", f.severity.as_str());
        if let Some(o) = &a.object {
            text.push_str(&format!(" in {o}"));
        } else if let Some(i) = f.document {
            text.push_str(&format!(" in document {}", i + 1));
        }
        if let Some(p) = &f.field {
            text.push_str(&format!(" at {p}"));
        }
        text.push_str(&format!(": {}", f.message));
        problems.push(text);
    }
    problems
}

fn matches(e: &Expected, a: &StepFinding) -> bool {
    let f = &a.finding;
    e.severity == f.severity
        && e.message
            .as_ref()
            .is_none_or(|m| f.message.contains(m.as_str()))
        && e.field.as_ref().is_none_or(|p| f.field.as_ref() == Some(p))
        && e.document.as_ref().is_none_or(|d| match d {
            DocumentRef::Index(i) => f.document.map(|x| x + 1) == Some(*i),
            DocumentRef::Object(o) => a.object.as_ref() == Some(o),
        })
}

/// Where `actual` first differs from `expected`, as `at /json/pointer: …`.
fn first_difference(expected: &Value, actual: &Value, at: String) -> Option<String> {
    let place = if at.is_empty() {
        "/".to_owned()
    } else {
        at.clone()
    };
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let path = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                match a.get(k) {
                    Some(av) => {
                        if let Some(d) = first_difference(ev, av, path) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("at {path}: missing")),
                }
            }
            a.keys()
                .find(|k| !e.contains_key(*k))
                .map(|k| format!("at {place}: unexpected key `{k}`"))
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => e
            .iter()
            .zip(a)
            .enumerate()
            .find_map(|(i, (ev, av))| first_difference(ev, av, format!("{at}/{i}"))),
        _ if expected == actual => None,
        _ => Some(format!("at {place}: expected {expected}, got {actual}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn differences_are_named_by_their_pointer() {
        let e = json!({"metadata": {"labels": {"a/b": "1"}}, "spec": [1, 2]});
        assert_eq!(first_difference(&e, &e, String::new()), None);
        let a = json!({"metadata": {"labels": {"a/b": "2"}}, "spec": [1, 2]});
        assert_eq!(
            first_difference(&e, &a, String::new()).unwrap(),
            "at /metadata/labels/a~1b: expected \"1\", got \"2\""
        );
        let a = json!({"metadata": {"labels": {"a/b": "1"}}, "spec": [1, 2], "x": 1});
        assert_eq!(
            first_difference(&e, &a, String::new()).unwrap(),
            "at /: unexpected key `x`"
        );
    }

    #[test]
    fn step_references() {
        assert!(matches!(
            resolve_step("oci://registry.example/steps/x:1", Path::new(".")),
            Ok(StepSource::Oci(_))
        ));
        assert!(resolve_step("https://registry.example/x.wasm", Path::new(".")).is_err());
        assert_eq!(
            resolve_step("x.wasm", Path::new("d")).unwrap(),
            StepSource::File(PathBuf::from("d/x.wasm"))
        );
    }
}
