//! Calls into the built-in manifest step (`kstep:builtin/manifest`): [`render`] is the one way
//! kstep renders manifests (`kstep render`, and [`crate::deploy::load`] before it applies them).
//!
//! For command authors:
//!
//! ```no_run
//! # fn demo(runtime: &kstep::runtime::Runtime) -> anyhow::Result<()> {
//! use kstep::steps::dotenv::Flavor;
//! use kstep::steps::manifest::{self, OutputFormat, Request, VariableSources};
//! let sources = manifest::read_sources(&["k8s/".into()])?;
//! let variables = VariableSources {
//!     set: vec![],
//!     env_files: vec![],
//!     flavor: Flavor::Gitlab,
//!     use_environment: true,
//! }
//! .collect(runtime)?;
//! let request = Request {
//!     sources,
//!     variables: variables.pairs(),
//!     images: vec![],
//!     options: manifest::Options {
//!         upgrade_api_versions: true,
//!         allow_unmatched_images: false,
//!         literal: false,
//!         output: OutputFormat::None,
//!     },
//! };
//! match manifest::render(runtime, &request)? {
//!     Ok(rendered) => {
//!         for document in &rendered.documents {
//!             let object: serde_json::Value = document.value()?; // ready to apply
//!         }
//!     }
//!     Err(diagnostics) => {
//!         for d in &diagnostics {
//!             kstep::output::stderr_line(&manifest::format_diagnostic(d));
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! The templating rules are in `docs/templating.md`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fsutil::CappedReadError;
use crate::runtime::{Limits, Runtime, StepError};
use crate::secrets;
use crate::steps::dotenv::{self, EnvFileError, Flavor};

#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/builtin",
        world: "manifest-step",
        with: { "kstep:steps/types": crate::steps::types::kstep::steps::types },
        exports: { default: async },
    });
}

pub use crate::steps::{Diagnostic, Severity};
use bindings::ManifestStep;
pub use bindings::exports::kstep::builtin::manifest::{
    ApiVersionChange, Document, ImageChange, ImageOverride, Options, OutputFormat, Rendered,
    Report, Request, Source, Substitution,
};

/// The largest manifest file kstep reads (64 MiB).
pub const MAX_SOURCE_BYTES: u64 = 64 << 20;

impl Document {
    /// The document as a JSON value, ready to apply.
    ///
    /// # Errors
    /// Never for a document the step produced (its JSON is canonical); kept for robustness.
    pub fn value(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_str(&self.json)
    }
}

/// Renders `request` inside the sandbox. CPU time and memory grow with the input size.
///
/// A placeholder fed by a credential ([`secrets::is_credential_variable`]: the kubeconfig,
/// GitLab's tokens and passwords, a value kstep masks) is an error at its position: the
/// rendered manifests would carry the credential to the cluster, readable by anyone who can
/// read the object. Every command and pipeline step renders through here, so this is the one
/// place the rule is enforced.
///
/// # Errors
/// The outer error is a sandbox failure; the inner `Err` holds every diagnostic (errors and
/// warnings, ordered by source and position).
pub fn render(
    runtime: &Runtime,
    request: &Request,
) -> Result<Result<Rendered, Vec<Diagnostic>>, StepError> {
    let step = runtime.builtin("manifest")?;
    let input: usize = request.sources.iter().map(|s| s.text.len()).sum();
    let rendered = runtime.call(&step, &limits_for(input), async |store, instance| {
        ManifestStep::new(&mut *store, instance)?
            .kstep_builtin_manifest()
            .call_render(store, request)
            .await
    })?;
    let rendered = rendered.and_then(|rendered| refuse_credentials(request, rendered));
    if let Ok(rendered) = &rendered {
        record_upgrades(rendered);
    }
    Ok(rendered)
}

/// Each removed apiVersion `--upgrade-api-versions` rewrote, recorded for `--report` as a
/// note at its document (one not rewritten is a warning of the step already).
fn record_upgrades(rendered: &Rendered) {
    for a in rendered.report.api_versions.iter().filter(|a| a.upgraded) {
        crate::report::record(crate::report::Finding {
            check: "kstep/render".into(),
            level: crate::report::Level::Info,
            message: format!(
                "{} `{}`: {} was removed in Kubernetes {}; upgraded to {}",
                a.kind,
                a.name,
                a.old_api_version,
                a.removed_in,
                a.new_api_version.as_deref().unwrap_or("-")
            ),
            path: a.source.clone(),
            line: a.line,
            column: a.column,
        });
    }
}

/// `rendered`, or an error at each placeholder a credential fed (with the warnings), naming
/// the variable and never its value.
fn refuse_credentials(request: &Request, rendered: Rendered) -> Result<Rendered, Vec<Diagnostic>> {
    let values: HashMap<&str, &str> = request
        .variables
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut diagnostics: Vec<Diagnostic> = rendered
        .report
        .substitutions
        .iter()
        .filter(|s| {
            let value = values.get(s.variable.as_str()).copied().unwrap_or_default();
            secrets::is_credential_variable(&s.variable, value)
        })
        .map(|s| Diagnostic {
            severity: Severity::Error,
            message: format!(
                "`${{{name}}}`: {name} holds a credential (the kubeconfig, a CI token or \
                 password, an ID token, or a value kstep masks) and is never substituted into \
                 manifests: the cluster would store it where anyone who can read the object \
                 sees it",
                name = s.variable
            ),
            source: Some(s.source.clone()),
            line: s.line,
            column: s.column,
        })
        .collect();
    if diagnostics.is_empty() {
        return Ok(rendered);
    }
    diagnostics.extend(rendered.report.warnings);
    // In source order, then by position, as the step orders its own diagnostics.
    diagnostics.sort_by_key(|d| {
        let source = request
            .sources
            .iter()
            .position(|s| d.source.as_deref() == Some(s.name.as_str()));
        (source, d.line, d.column)
    });
    Err(diagnostics)
}

/// Limits of a render of `input` bytes: the defaults cover several MiB; beyond that the budget
/// grows with the input, with a wide margin over what a render uses (measured on 1 and 8 MiB
/// of Deployments: 0.1–0.2 s of CPU and ~13 MiB of process memory per MiB of input).
fn limits_for(input: usize) -> Limits {
    let base = Limits::default();
    let mib = u32::try_from(input >> 20).unwrap_or(u32::MAX);
    Limits {
        cpu: base.cpu + Duration::from_millis(500) * mib,
        wall: base.wall + Duration::from_millis(500) * mib,
        memory: base.memory.max(input.saturating_mul(64)),
        hostcall: base.hostcall.max(input.saturating_mul(8)),
    }
}

/// `SOURCE:LINE:COL: message` (`warning: ` before the message of a warning), the way every
/// kstep diagnostic is printed.
pub fn format_diagnostic(d: &Diagnostic) -> String {
    match &d.source {
        Some(source) => super::recorded("kstep/render", source, d.line, d.column, d),
        None => super::recorded("kstep/render", "kstep render", 0, 0, d),
    }
}

/// Why manifests could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file or directory could not be read.
    #[error("{}: {error}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error: part of the message, not a `source`, so that a report of the error
        /// chain says it once.
        error: std::io::Error,
    },
    /// A file is larger than [`MAX_SOURCE_BYTES`].
    #[error("{}: larger than {} MiB", path.display(), MAX_SOURCE_BYTES >> 20)]
    TooBig {
        /// The file.
        path: PathBuf,
    },
    /// A file is not UTF-8.
    #[error(
        "{}:{line}:{column}: not valid UTF-8 (byte {offset}): save the file as UTF-8",
        path.display()
    )]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Where the first invalid byte is (1-based).
        offset: usize,
        /// Its line.
        line: u32,
        /// Its column, in characters.
        column: u32,
    },
    /// A directory holds no manifest.
    #[error("{}: no *.yaml, *.yml or *.json file in this directory", path.display())]
    EmptyDirectory {
        /// The directory.
        path: PathBuf,
    },
    /// `-` was given twice.
    #[error("`-` (stdin) can be given only once")]
    StdinTwice,
}

/// Reads the manifests named by `inputs`: files, directories (their `*.yaml`, `*.yml` and
/// `*.json` files, sorted by name, not recursive, as `kubectl apply -f DIR`) and `-` (stdin,
/// reported as `<stdin>`).
///
/// # Errors
/// [`SourceError`] for the first input that cannot be read.
pub fn read_sources(inputs: &[PathBuf]) -> Result<Vec<Source>, SourceError> {
    let mut sources = Vec::new();
    let mut stdin_read = false;
    for input in inputs {
        if input.as_os_str() == "-" {
            if stdin_read {
                return Err(SourceError::StdinTwice);
            }
            stdin_read = true;
            sources.push(read_source(input, true, "<stdin>")?);
            continue;
        }
        let io = |error| SourceError::Io {
            path: input.clone(),
            error,
        };
        if std::fs::metadata(input).map_err(io)?.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(io)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && p.extension()
                            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
                })
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(SourceError::EmptyDirectory {
                    path: input.clone(),
                });
            }
            for file in files {
                sources.push(read_source(&file, false, &file.display().to_string())?);
            }
        } else {
            sources.push(read_source(input, false, &input.display().to_string())?);
        }
    }
    Ok(sources)
}

/// One source (`stdin`: `path` is `-` for standard input), reported as `name`.
fn read_source(path: &Path, stdin: bool, name: &str) -> Result<Source, SourceError> {
    let bytes = crate::fsutil::read_capped(path, stdin, MAX_SOURCE_BYTES).map_err(|e| match e {
        CappedReadError::Io(error) => SourceError::Io {
            path: path.to_owned(),
            error,
        },
        CappedReadError::TooBig { .. } => SourceError::TooBig {
            path: path.to_owned(),
        },
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let (line, column) = kstep_kubeconfig::input::line_column(e.as_bytes(), offset);
        SourceError::NotUtf8 {
            path: path.to_owned(),
            offset: offset + 1,
            line,
            column,
        }
    })?;
    Ok(Source {
        name: name.to_owned(),
        text,
    })
}

/// Where a variable's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariableOrigin {
    /// `--set KEY=VALUE`.
    Set,
    /// An `--env-file`.
    EnvFile(PathBuf),
    /// The process environment.
    Environment,
}

impl std::fmt::Display for VariableOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Set => f.write_str("--set"),
            Self::EnvFile(p) => write!(f, "--env-file {}", p.display()),
            Self::Environment => f.write_str("the environment"),
        }
    }
}

/// The variables of a render, with where each one came from.
///
/// Precedence, highest first: `--set`, then env files (a later file wins over an earlier one),
/// then the process environment (unless it is left out).
#[derive(Debug, Clone, Default)]
pub struct Variables {
    values: HashMap<String, (String, VariableOrigin)>,
}

/// Where the variables of a render come from (`--set`, `--env-file`, the environment).
#[derive(Debug, Clone)]
pub struct VariableSources {
    /// `--set KEY=VALUE`, in order.
    pub set: Vec<(String, String)>,
    /// Env files, a later one winning.
    pub env_files: Vec<PathBuf>,
    /// How the env files are read.
    pub flavor: Flavor,
    /// Whether the process environment is a source (names that cannot be placeholders are
    /// skipped).
    pub use_environment: bool,
}

impl VariableSources {
    /// Reads the env files (with the dotenv step) and gathers the variables.
    ///
    /// # Errors
    /// An env file that cannot be read or is invalid.
    pub fn collect(&self, runtime: &Runtime) -> Result<Variables, EnvFileError> {
        let mut values = HashMap::new();
        let environment = if self.use_environment {
            dotenv::process_environment()
        } else {
            Vec::new()
        };
        for (k, v) in &environment {
            if is_name(k) {
                values.insert(k.clone(), (v.clone(), VariableOrigin::Environment));
            }
        }
        // The compose flavor interpolates with the environment, as `docker compose` does.
        let interpolate: &[(String, String)] = match self.flavor {
            Flavor::Gitlab => &[],
            Flavor::Compose => &environment,
        };
        for path in &self.env_files {
            for (k, v) in dotenv::read_env_file_with(runtime, path, self.flavor, interpolate)? {
                values.insert(k, (v, VariableOrigin::EnvFile(path.clone())));
            }
        }
        for (k, v) in &self.set {
            values.insert(k.clone(), (v.clone(), VariableOrigin::Set));
        }
        Ok(Variables { values })
    }
}

impl Variables {
    /// The name/value pairs to hand to the step.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.values
            .iter()
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }

    /// Where `name` came from.
    pub fn origin(&self, name: &str) -> Option<&VariableOrigin> {
        self.values.get(name).map(|(_, o)| o)
    }
}

/// Whether `name` can appear in a placeholder: `[A-Za-z_][A-Za-z0-9_]*` (the manifest
/// step's own rule, linked natively).
pub use kstep_manifest::template::is_name;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_name("IMAGE") && is_name("_a1"));
        assert!(!is_name("1A") && !is_name("A-B") && !is_name(""));
    }

    #[test]
    fn limits_grow_with_the_input() {
        assert_eq!(limits_for(1000), Limits::default());
        let big = limits_for(32 << 20);
        assert_eq!(big.memory, 2 << 30);
        assert_eq!(big.cpu, Duration::from_secs(18));
    }

    #[test]
    fn numbers_reach_the_api_server_as_written() {
        // The step prints the shortest digits of each f64; serde_json's default parser may be
        // one ULP off on them (29 % of random 17-digit values in a probe), which changes the
        // digits sent to the API server. The workspace enables its `float_roundtrip` feature.
        let runtime = Runtime::new().unwrap();
        let numbers = ["1.1362275116276523e-8", "1.862392953319225e-60", "0.1"];
        let request = Request {
            sources: vec![Source {
                name: "t.yaml".into(),
                text: format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: numbers\nx: [{}]\n",
                    numbers.join(", ")
                ),
            }],
            variables: vec![],
            images: vec![],
            options: Options {
                upgrade_api_versions: false,
                allow_unmatched_images: false,
                literal: false,
                output: OutputFormat::None,
            },
        };
        let rendered = render(&runtime, &request).unwrap().unwrap();
        let value = rendered.documents[0].value().unwrap();
        let sent: Vec<String> = value["x"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| serde_json::to_string(n).unwrap())
            .collect();
        assert_eq!(sent, numbers);
    }

    #[test]
    fn an_unreadable_file_says_its_os_error_once() {
        let missing = std::env::temp_dir().join("kstep-no-such-file.yaml");
        let errors = [
            anyhow::Error::from(read_sources(std::slice::from_ref(&missing)).unwrap_err()),
            anyhow::Error::from(dotenv::read_capped(&missing, 10).unwrap_err()),
        ];
        for error in errors {
            // What the CLI prints: the whole chain.
            let report = format!("{error:#}");
            assert_eq!(report.matches("No such file").count(), 1, "{report}");
        }
    }

    #[test]
    fn diagnostics_are_positioned() {
        let d = Diagnostic {
            severity: Severity::Warning,
            message: "m".into(),
            source: Some("a.yaml".into()),
            line: 3,
            column: 4,
        };
        assert_eq!(format_diagnostic(&d), "a.yaml:3:4: warning: m");
    }
}
