//! Manifests → objects: reading and rendering the manifests through the manifest step, and
//! turning documents (rendered here, or handed over by a pipeline's steps) into [`Object`]s.
//!
//! Every path that applies goes through [`objects`], and every render through [`render`], so
//! the values of a Secret manifest are registered with the masker before anything (a server's
//! error message, a custom step's log) could print them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::error::DeployError;
use super::events::{Event, Reporter};
use super::objects::{Object, Origin, SourceText};
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
    // Each document keeps its source's text: the server names the fields it refuses, and they
    // are reported where they are written.
    let texts: HashMap<String, SourceText> = request
        .sources
        .into_iter()
        .map(|s| (s.name, SourceText(Arc::from(s.text))))
        .collect();
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
        crate::secrets::register_secret_manifest(&value);
        let origin = Origin {
            text: texts.get(&document.source).cloned(),
            ..Origin::from(document)
        };
        documents.push((value, origin));
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
        crate::secrets::register_secret_manifest(&value);
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
