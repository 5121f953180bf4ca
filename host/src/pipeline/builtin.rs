//! The built-in step kinds of a pipeline, each a thin adapter over the host API of an embedded
//! step: `dotenv` ([`crate::steps::dotenv::read_env_file_with`]), `render`
//! ([`crate::steps::manifest::render`]) and `traefik` ([`crate::steps::traefik::render`]).

use std::path::PathBuf;

use serde_json::Value;

use crate::deploy::load::{self, RenderOptions};
use crate::output;
use crate::steps::dotenv::{self, EnvFileError, Flavor};
use crate::steps::manifest::ImageOverride;
use crate::steps::traefik::{self, ManifestFormat};

use super::file::{DotenvSpec, RenderSpec, TraefikSpec};
use super::{Context, Document, Failure, Flow, Origin, StepKind, display_path};

/// `dotenv: FILE`: adds the file's variables (a later definition wins over an earlier one).
pub struct Dotenv(pub DotenvSpec);

impl StepKind for Dotenv {
    fn run(&self, cx: &Context<'_>, flow: &mut Flow) -> Result<(), Failure> {
        let path = PathBuf::from(display_path(&self.0.file));
        // The compose flavor interpolates `${VAR}` with the pipeline's variables, never with
        // the job's whole environment.
        let (flavor, environment) = if self.0.compose {
            (Flavor::Compose, flow.variables.clone())
        } else {
            (Flavor::Gitlab, Vec::new())
        };
        match dotenv::read_env_file_with(cx.runtime, &path, flavor, &environment) {
            Ok(pairs) => {
                let count = pairs.len();
                for (name, value) in pairs {
                    flow.set(name, value);
                }
                output::stderr_line(&format!("{count} variable(s) from {}", path.display()));
                Ok(())
            }
            Err(EnvFileError::Invalid { lines }) => {
                for line in lines {
                    output::stderr_line(&line);
                }
                Err(Failure::Invalid)
            }
            Err(EnvFileError::Step(e)) => {
                cx.report(&e.to_string());
                Err(Failure::Runtime)
            }
            Err(e) => {
                cx.report(&e.to_string());
                Err(Failure::Invalid)
            }
        }
    }
}

/// `render: FILES`: renders the manifests with the pipeline's variables and appends the
/// documents.
pub struct Render(pub RenderSpec);

impl StepKind for Render {
    fn run(&self, cx: &Context<'_>, flow: &mut Flow) -> Result<(), Failure> {
        let fail = |message: String, failure| {
            cx.report(&message);
            Err(failure)
        };
        let files: Vec<PathBuf> = self
            .0
            .files
            .iter()
            .map(|f| PathBuf::from(display_path(f)))
            .collect();
        let mut images = Vec::new();
        for (name, reference) in &self.0.images {
            match expand(reference, flow) {
                Ok(reference) => images.push(ImageOverride {
                    name: name.clone(),
                    reference,
                }),
                Err(missing) => {
                    return fail(
                        format!("image `{name}`: variable `{missing}` is not set"),
                        Failure::Invalid,
                    );
                }
            }
        }
        let options = RenderOptions {
            variables: flow.variables.clone(),
            images,
            upgrade_api_versions: self.0.upgrade_api_versions,
            literal: false,
        };
        let rendered =
            load::render(cx.runtime, &files, &options, cx.reporter).map_err(|e| cx.fail(&e))?;
        let count = rendered.documents.len();
        flow.documents.extend(
            rendered
                .documents
                .into_iter()
                .map(|(value, origin)| Document { value, origin }),
        );
        output::stderr_line(&format!(
            "{count} document(s) from {} file(s), {} substitution(s), {} image override(s)",
            rendered.sources,
            rendered.report.substitutions.len(),
            rendered.report.images.len()
        ));
        Ok(())
    }
}

/// `${NAME}` in an image reference, from the pipeline's variables.
///
/// # Errors
/// The first name that is not set.
fn expand(text: &str, flow: &Flow) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        out.push_str(flow.get(name).ok_or_else(|| name.to_owned())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `traefik: VALUES`: appends the manifests of a Traefik v3 deployment rendered from a values
/// file.
pub struct Traefik(pub TraefikSpec);

impl StepKind for Traefik {
    fn run(&self, cx: &Context<'_>, flow: &mut Flow) -> Result<(), Failure> {
        let label = display_path(&self.0.values);
        let bytes =
            match crate::fsutil::read_capped(&self.0.values, false, traefik::MAX_INPUT_BYTES) {
                Ok(bytes) => bytes,
                Err(e) => {
                    cx.report(&format!("{label}: {e}"));
                    return Err(Failure::Invalid);
                }
            };
        let Ok(values) = String::from_utf8(bytes) else {
            cx.report(&format!("{label}: not UTF-8"));
            return Err(Failure::Invalid);
        };
        let rendered = match traefik::render(cx.runtime, &values, ManifestFormat::Json) {
            Ok(Ok(rendered)) => rendered,
            Ok(Err(diagnostics)) => {
                for d in &diagnostics {
                    output::stderr_line(&traefik::format_diagnostic(&label, d));
                }
                return Err(Failure::Invalid);
            }
            Err(e) => {
                cx.report(&e.to_string());
                return Err(Failure::Runtime);
            }
        };
        for w in &rendered.warnings {
            output::stderr_line(&traefik::format_diagnostic(&label, w));
        }
        // ManifestFormat::Json is one `v1/List`.
        let items = match serde_json::from_str::<Value>(&rendered.manifests) {
            Ok(Value::Object(mut list)) => match list.remove("items") {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        if items.is_empty() {
            cx.report("the Traefik step returned no manifests");
            return Err(Failure::Runtime);
        }
        let count = items.len();
        for (i, value) in items.into_iter().enumerate() {
            flow.documents.push(Document {
                value,
                origin: Origin {
                    source: format!("{label} (traefik)"),
                    index: u32::try_from(i + 1).unwrap_or(u32::MAX),
                    item: 0,
                    line: 0,
                    column: 0,
                    text: None,
                },
            });
        }
        output::stderr_line(&format!("{count} Traefik manifest(s) from {label}"));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn image_references_expand_pipeline_variables() {
        let mut flow = Flow::default();
        flow.set("IMAGE".into(), "registry.local:5000/app".into());
        flow.set("TAG".into(), "1.2".into());
        assert_eq!(
            expand("${IMAGE}:${TAG}", &flow).unwrap(),
            "registry.local:5000/app:1.2"
        );
        assert_eq!(expand("plain:1", &flow).unwrap(), "plain:1");
        assert_eq!(expand("${NOPE}", &flow).unwrap_err(), "NOPE");
    }
}
