//! WIT glue: exports the core as the `kstep:builtin/traefik` interface.

// wit-bindgen emits the canonical-ABI exports as `unsafe extern` functions.
#[allow(unsafe_code, missing_docs)]
mod bindings {
    // `generate_all`: the shared `kstep:steps/types` come from the public package.
    wit_bindgen::generate!({ path: "../../wit/builtin", world: "traefik-step", generate_all });
    use super::Step;
    export!(Step);
}

use bindings::exports::kstep::builtin::traefik::{
    ConfigFormat, Guest, ManifestFormat, Migration, Rendered, SettingNote,
};
use bindings::kstep::steps::types::{Diagnostic, Severity};

use crate::problem::{Level, Problem};

struct Step;

impl Guest for Step {
    fn render(values: String, format: ManifestFormat) -> Result<Rendered, Vec<Diagnostic>> {
        let format = match format {
            ManifestFormat::Yaml => crate::render::Format::Yaml,
            ManifestFormat::Json => crate::render::Format::Json,
        };
        crate::render::render(&values, format)
            .map(|r| Rendered {
                manifests: r.manifests,
                warnings: r.warnings.into_iter().map(diagnostic).collect(),
            })
            .map_err(|problems| problems.into_iter().map(diagnostic).collect())
    }

    fn migrate(traefik_toml: String, format: ConfigFormat) -> Result<Migration, Vec<Diagnostic>> {
        let format = match format {
            ConfigFormat::Yaml => crate::migrate::Format::Yaml,
            ConfigFormat::Toml => crate::migrate::Format::Toml,
        };
        let (config, m) =
            crate::migrate::migrate_to(&traefik_toml, format).map_err(|p| vec![diagnostic(p)])?;
        Ok(Migration {
            config,
            not_carried: m.dropped.into_iter().map(note).collect(),
            changed: m.changed.into_iter().map(note).collect(),
        })
    }
}

fn diagnostic(p: Problem) -> Diagnostic {
    Diagnostic {
        severity: match p.level {
            Level::Error => Severity::Error,
            Level::Warning => Severity::Warning,
        },
        message: p.message,
        source: None,
        line: p.line,
        column: p.column,
    }
}

fn note(n: crate::migrate::Note) -> SettingNote {
    SettingNote {
        key: n.key,
        line: n.line,
        column: n.column,
        reason: n.reason,
    }
}
