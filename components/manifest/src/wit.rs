//! WIT glue: exports the core as the `kstep:builtin/manifest` interface.

// wit-bindgen emits the canonical-ABI exports as `unsafe extern` functions.
#[allow(unsafe_code, missing_docs)]
mod bindings {
    // `generate_all`: the shared `kstep:steps/types` come from the public package.
    wit_bindgen::generate!({ path: "../../wit/builtin", world: "manifest-step", generate_all });
    use super::Step;
    export!(Step);
}

use bindings::exports::kstep::builtin::manifest as wit;
use bindings::kstep::steps::types::{Diagnostic, Severity};

use crate::diag;
use crate::render;

struct Step;

impl wit::Guest for Step {
    fn render(request: wit::Request) -> Result<wit::Rendered, Vec<Diagnostic>> {
        let request = render::Request {
            sources: request
                .sources
                .into_iter()
                .map(|s| render::Source {
                    name: s.name,
                    text: s.text,
                })
                .collect(),
            variables: request.variables,
            images: request
                .images
                .into_iter()
                .map(|i| render::ImageOverride {
                    name: i.name,
                    reference: i.reference,
                })
                .collect(),
            options: render::Options {
                upgrade_api_versions: request.options.upgrade_api_versions,
                allow_unmatched_images: request.options.allow_unmatched_images,
                literal: request.options.literal,
                output: match request.options.output {
                    wit::OutputFormat::None => render::OutputFormat::None,
                    wit::OutputFormat::Yaml => render::OutputFormat::Yaml,
                    wit::OutputFormat::Json => render::OutputFormat::Json,
                    wit::OutputFormat::YamlOnly => render::OutputFormat::Yaml,
                    wit::OutputFormat::JsonOnly => render::OutputFormat::Json,
                },
                document_json: !matches!(
                    request.options.output,
                    wit::OutputFormat::YamlOnly | wit::OutputFormat::JsonOnly
                ),
            },
        };
        let rendered = render::render(&request)
            .map_err(|errors| errors.into_iter().map(diagnostic).collect::<Vec<_>>())?;
        let report = rendered.report;
        Ok(wit::Rendered {
            documents: rendered
                .documents
                .into_iter()
                .map(|d| wit::Document {
                    json: d.json,
                    source: d.source,
                    index: d.index,
                    item: d.item,
                    line: d.pos.line,
                    column: d.pos.column,
                    api_version: d.api_version,
                    kind: d.kind,
                    namespace: d.namespace,
                    name: d.name,
                })
                .collect(),
            text: rendered.text,
            report: wit::Report {
                substitutions: report
                    .substitutions
                    .into_iter()
                    .map(|s| wit::Substitution {
                        variable: s.variable,
                        source: s.source,
                        line: s.pos.line,
                        column: s.pos.column,
                        defaulted: s.defaulted,
                    })
                    .collect(),
                images: report
                    .images
                    .into_iter()
                    .map(|c| wit::ImageChange {
                        source: c.source,
                        line: c.pos.line,
                        column: c.pos.column,
                        kind: c.kind,
                        name: c.name,
                        container: c.container,
                        init: c.init,
                        old_image: c.old,
                        new_image: c.new,
                        by: c.by,
                    })
                    .collect(),
                api_versions: report
                    .api_versions
                    .into_iter()
                    .map(|a| wit::ApiVersionChange {
                        source: a.source,
                        line: a.pos.line,
                        column: a.pos.column,
                        kind: a.kind,
                        name: a.name,
                        old_api_version: a.old,
                        new_api_version: a.new,
                        removed_in: a.removed_in,
                        upgraded: a.upgraded,
                        notes: a.notes,
                    })
                    .collect(),
                warnings: report.warnings.into_iter().map(diagnostic).collect(),
            },
        })
    }
}

fn diagnostic(d: diag::Diagnostic) -> Diagnostic {
    Diagnostic {
        severity: match d.severity {
            diag::Severity::Error => Severity::Error,
            diag::Severity::Warning => Severity::Warning,
        },
        message: d.message,
        source: (!d.source.is_empty()).then_some(d.source),
        line: d.pos.line,
        column: d.pos.column,
    }
}
