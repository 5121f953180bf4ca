//! The custom step kind (`wasm: PATH` or `wasm: oci://…`, see [`crate::oci::resolve`]): hands a component exactly what its entry grants — its
//! parameters, the variables it lists, the documents (Secret values replaced by stand-ins
//! unless it is granted `secrets: true`), at most one read-only directory — and folds its
//! result back into the flow, real Secret values restored where it returned stand-ins.

use crate::oci::cosign::VerifyError;
use crate::oci::resolve::ResolveError;
use crate::output;
use crate::runtime::{LoadedStep, Sandbox, StepError};
use crate::secrets::{StandIns, is_secret_manifest, register_secret_manifest};
use crate::steps::custom::{self, CustomError, Finding, Outcome, Request, Severity};

use super::file::{Pos, StepSource, WasmSpec};
use super::{Context, Document, Failure, Flow, Origin, StepFinding, StepKind, at};

/// A loaded custom step.
pub struct Wasm {
    spec: WasmSpec,
    step: LoadedStep,
}

impl Wasm {
    /// Loads and checks the component (sandbox policy, `kstep:steps` version).
    ///
    /// # Errors
    /// [`Failure::Invalid`], reported with the entry's position.
    pub fn load(cx: &Context<'_>, spec: &WasmSpec) -> Result<Self, Failure> {
        let loaded = match &spec.source {
            StepSource::File(path) => custom::load(cx.runtime, &cx.step.name, path),
            StepSource::Oci(reference) => {
                let lock = crate::oci::lock::path_in(&cx.pipeline.project);
                let key = spec.verify.as_ref().map(|v| v.key.as_path());
                match crate::oci::resolve::resolve(reference, &lock, cx.options.locked, key) {
                    Ok(resolved) => {
                        cx.report(&format!(
                            "{reference} is {} ({})",
                            resolved.digest,
                            resolved.how.join(", ")
                        ));
                        cx.runtime.load_custom(&cx.step.name, &resolved.wasm)
                    }
                    Err(e) => {
                        // A key file that cannot be used is reported where `verify:` names it.
                        let place = match (&e, &spec.verify) {
                            (ResolveError::Verify(VerifyError::Key { .. }), Some(v)) => {
                                at(&cx.pipeline.file, v.pos)
                            }
                            _ => cx.at(),
                        };
                        output::stderr_line(&format!("{place}: step `{}`: {e}", cx.step.name));
                        return Err(if e.is_invalid() {
                            Failure::Invalid
                        } else {
                            Failure::Runtime
                        });
                    }
                }
            }
        };
        match loaded {
            Ok(step) => Ok(Self {
                spec: spec.clone(),
                step,
            }),
            Err(e) => {
                output::stderr_line(&format!("{}: {e}", cx.at()));
                Err(Failure::Invalid)
            }
        }
    }

    /// The variables listed for the step that are set, each checked not to carry a secret.
    fn variables(&self, cx: &Context<'_>, flow: &Flow) -> Result<Vec<(String, String)>, Failure> {
        let mut out = Vec::new();
        let mut secret = false;
        let mut unset: Vec<(&str, Pos)> = Vec::new();
        for (name, pos) in &self.spec.variables {
            let Some(value) = flow.get(name) else {
                unset.push((name, *pos));
                continue;
            };
            // The same rule as for template placeholders: a credential's name, a JWT, or a
            // value holding a secret the masker knows (kubeconfig, tokens…, in every form)
            // never crosses into a step.
            if crate::secrets::is_credential_variable(name, value) {
                output::stderr_line(&format!(
                    "{}: variable `{name}` contains a secret kstep masks; it is never passed to a step",
                    at(&cx.pipeline.file, *pos),
                ));
                secret = true;
                continue;
            }
            out.push((name.clone(), value.to_owned()));
        }
        if let Some((_, pos)) = unset.first() {
            let names: Vec<&str> = unset.iter().map(|(n, _)| *n).collect();
            output::stderr_line(&format!(
                "{}: warning: not set, so not passed to step `{}`: {}",
                at(&cx.pipeline.file, *pos),
                cx.step.name,
                names.join(", ")
            ));
        }
        if secret {
            Err(Failure::Invalid)
        } else {
            Ok(out)
        }
    }
}

impl StepKind for Wasm {
    fn run(&self, cx: &Context<'_>, flow: &mut Flow) -> Result<(), Failure> {
        let variables = self.variables(cx, flow)?;
        let mut values: Vec<serde_json::Value> =
            flow.documents.iter().map(|d| d.value.clone()).collect();
        let stand_ins = if self.spec.secrets {
            let secrets = values.iter().filter(|v| is_secret_manifest(v)).count();
            if secrets > 0 {
                cx.report(&format!(
                    "sees the values of {secrets} Secret(s): it is granted `secrets: true`"
                ));
            }
            StandIns::default()
        } else {
            StandIns::withhold(&mut values)
        };
        let sandbox = Sandbox {
            dir: self.spec.read.clone(),
        };
        let request = Request {
            params: &self.spec.params,
            variables: &variables,
            documents: &values,
            sandbox: &sandbox,
        };
        let outcome = match custom::run(cx.runtime, &self.step, &self.spec.limits, &request) {
            Ok(outcome) => outcome,
            Err(CustomError::Step(
                e @ (StepError::Load { .. }
                | StepError::ForbiddenImport { .. }
                | StepError::IncompatibleVersion { .. }),
            )) => {
                output::stderr_line(&format!("{}: {e}", cx.at()));
                return Err(Failure::Invalid);
            }
            Err(e) => {
                output::stderr_line(&format!("{}: {e}", cx.at()));
                return Err(Failure::Runtime);
            }
        };
        match outcome {
            Outcome::Failed { message, findings } => {
                report_findings(cx, &flow.documents, &findings);
                keep_findings(cx, flow, findings);
                cx.report(&format!("failed: {message}"));
                Err(Failure::Invalid)
            }
            Outcome::Done(mut response) => {
                if let Some(documents) = &mut response.documents {
                    stand_ins.restore(documents);
                    // A Secret value the step wrote or made is as secret as a rendered one:
                    // registered before anything (its findings, `--dry-run`) can print it.
                    for document in documents.iter() {
                        register_secret_manifest(document);
                    }
                }
                report_findings(cx, &flow.documents, &response.findings);
                let errors = response
                    .findings
                    .iter()
                    .filter(|f| f.severity == Severity::Error)
                    .count();
                keep_findings(cx, flow, response.findings);
                if errors > 0 {
                    cx.report(&format!("refused the documents ({errors} error(s))"));
                    return Err(Failure::Invalid);
                }
                for (name, value) in response.variables {
                    flow.set(name, value);
                }
                if let Some(documents) = response.documents {
                    replace_documents(flow, documents, &cx.step.name);
                }
                Ok(())
            }
        }
    }
}

/// Adds the step's findings to the flow's, each with the `Kind/name` of its document.
fn keep_findings(cx: &Context<'_>, flow: &mut Flow, findings: Vec<Finding>) {
    for finding in findings {
        let object = finding
            .document
            .and_then(|i| flow.documents.get(i))
            .and_then(|d| {
                let kind = d.value.get("kind")?.as_str()?;
                let name = d.value.pointer("/metadata/name")?.as_str()?;
                Some(format!("{kind}/{name}"))
            });
        flow.findings.push(StepFinding {
            step: cx.step.name.clone(),
            finding,
            object,
        });
    }
}

/// Replaces the documents. When the step returns as many as it got, each keeps the origin of
/// the one at its place (the common case: a step that edits documents in place); otherwise the
/// new ones are reported as the step's output.
fn replace_documents(flow: &mut Flow, documents: Vec<serde_json::Value>, step: &str) {
    let same_shape = documents.len() == flow.documents.len();
    let new = documents
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let origin = if same_shape {
                flow.documents[i].origin.clone()
            } else {
                Origin {
                    source: format!("output of step `{step}`"),
                    index: u32::try_from(i + 1).unwrap_or(u32::MAX),
                    item: 0,
                    line: 0,
                    column: 0,
                    text: None,
                }
            };
            Document { value, origin }
        })
        .collect();
    flow.documents = new;
}

/// Prints each finding at the document it concerns (else at the step's entry):
/// `ORIGIN: [warning: |note: ]message (at /json/pointer) [step NAME]`; each is recorded for
/// `--report` as a finding of `step/NAME` at the same place.
pub fn report_findings(cx: &Context<'_>, documents: &[Document], findings: &[Finding]) {
    for f in findings {
        let document = f.document.and_then(|i| documents.get(i));
        let place = document.map_or_else(|| cx.at(), |d| d.origin.to_string());
        let (path, line, column) = match document {
            Some(d) => (d.origin.source.clone(), d.origin.line, d.origin.column),
            None => (
                cx.pipeline.file.clone(),
                u32::try_from(cx.step.pos.line).unwrap_or(u32::MAX),
                u32::try_from(cx.step.pos.column).unwrap_or(u32::MAX),
            ),
        };
        let severity = match f.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
            Severity::Info => "note: ",
        };
        let field = f
            .field
            .as_deref()
            .map(|p| format!(" (at {p})"))
            .unwrap_or_default();
        crate::report::record(crate::report::Finding {
            check: format!("step/{}", cx.step.name),
            level: f.severity.into(),
            message: format!("{}{field}", f.message),
            path,
            line,
            column,
        });
        output::stderr_line(&format!(
            "{place}: {severity}{}{field} [step {}]",
            f.message, cx.step.name
        ));
    }
}
