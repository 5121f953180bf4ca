//! Manifests → objects: reading and rendering the manifests through the manifest step, and
//! turning documents (rendered here, or handed over by a pipeline's steps) into [`Object`]s.
//!
//! Every path that applies goes through [`objects`], and every render through [`render`], so
//! the values of a Secret manifest are registered with the masker before anything (a server's
//! error message, a custom step's log) could print them.

use std::path::PathBuf;

use serde_json::Value;

use super::error::DeployError;
use super::events::{Event, Reporter};
use super::objects::{Object, Origin};
use crate::runtime::Runtime;
use crate::steps::manifest::{self, ImageOverride, Options, OutputFormat, Report, Request};

/// How manifests are turned into documents.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Variables for `${NAME}` placeholders (precedence already applied).
    pub variables: Vec<(String, String)>,
    /// `--image NAME=REF` overrides.
    pub images: Vec<ImageOverride>,
    /// Rewrite removed apiVersions that have a mechanical replacement.
    pub upgrade_api_versions: bool,
    /// Take the files literally: `$` is never a placeholder (what `kubectl apply` does, so a
    /// shell script in a ConfigMap keeps its `${HOME}`).
    pub literal: bool,
}

/// Rendered documents, each with where it came from, and what the render did.
#[derive(Debug)]
pub struct Rendered {
    /// The documents, in order.
    pub documents: Vec<(Value, Origin)>,
    /// Substitutions, image changes, apiVersion upgrades.
    pub report: Report,
    /// How many sources were read.
    pub sources: usize,
}

/// Reads and renders the manifests `files` (files, directories, `-`) with the manifest step,
/// so positions and checks are those of `kstep render`. Warnings are reported; the values of
/// Secret manifests are registered with the masker.
///
/// # Errors
/// Unreadable inputs, the step's diagnostics, a sandbox failure.
pub fn render(
    runtime: &Runtime,
    files: &[PathBuf],
    options: &RenderOptions,
    reporter: &dyn Reporter,
) -> Result<Rendered, DeployError> {
    let sources = manifest::read_sources(files)?;
    let count = sources.len();
    let request = Request {
        sources,
        variables: options.variables.clone(),
        images: options.images.clone(),
        options: Options {
            upgrade_api_versions: options.upgrade_api_versions,
            allow_unmatched_images: false,
            literal: options.literal,
            output: OutputFormat::None,
        },
    };
    let rendered = manifest::render(runtime, &request)?.map_err(DeployError::Render)?;
    for warning in &rendered.report.warnings {
        reporter.report(Event::Warning(&manifest::format_diagnostic(warning)));
    }
    let mut documents = Vec::with_capacity(rendered.documents.len());
    for document in &rendered.documents {
        let value = document.value().map_err(|e| {
            DeployError::Runtime(format!(
                "{}: the manifest step's output: {e}",
                document.source
            ))
        })?;
        register_secret_values(&value);
        documents.push((value, Origin::from(document)));
    }
    Ok(Rendered {
        documents,
        report: rendered.report,
        sources: count,
    })
}

/// Turns documents into objects, checking each is a Kubernetes object, and registers the
/// values of Secret manifests with the masker (documents a pipeline step made included).
///
/// # Errors
/// Every document that is not an object; none at all (`what` names the input).
pub fn objects(
    documents: impl IntoIterator<Item = (Value, Origin)>,
    what: &str,
) -> Result<Vec<Object>, DeployError> {
    let mut objects = Vec::new();
    let mut invalid = Vec::new();
    for (value, origin) in documents {
        register_secret_values(&value);
        match Object::new(value, origin) {
            Ok(o) => objects.push(o),
            Err(e) => invalid.push(e),
        }
    }
    if !invalid.is_empty() {
        return Err(DeployError::InvalidObjects(invalid));
    }
    if objects.is_empty() {
        return Err(DeployError::NoObjects(what.to_owned()));
    }
    Ok(objects)
}

/// The values of a Secret manifest never reach the log, even inside a server's error message:
/// `stringData` values, and `data` values both as written (base64) and decoded. Values shorter
/// than GitLab's masking minimum (8) are left alone, so ordinary words are not blanked out.
fn register_secret_values(value: &Value) {
    use base64::Engine as _;
    const MIN: usize = 8;
    let is_secret = value.get("kind").and_then(Value::as_str) == Some("Secret")
        && value.get("apiVersion").and_then(Value::as_str) == Some("v1");
    if !is_secret {
        return;
    }
    let values = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(Value::as_str)
    };
    for value in values("stringData").filter(|v| v.len() >= MIN) {
        crate::output::register_secret(value);
    }
    for encoded in values("data") {
        if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded)
            && decoded.len() >= MIN
        {
            crate::output::register_secret(&String::from_utf8_lossy(&decoded));
        }
        if encoded.len() >= MIN {
            crate::output::register_secret(encoded);
        }
    }
}
