//! `kstep render`: manifests with YAML-aware placeholders, image overrides and apiVersion
//! upgrades, printed as a YAML stream or a JSON array (see `docs/templating.md`).
//!
//! stdout carries the documents and nothing else; the report (what was substituted, which
//! images changed, which apiVersions were upgraded) and warnings go to stderr. On any error:
//! every diagnostic as `FILE:LINE:COL: message` on stderr, nothing on stdout, exit 2.

use std::collections::BTreeMap;

use super::args::{DocumentFormat, Manifests, Template};
use crate::cli::{CliError, CliResult};
use crate::output;
use crate::runtime::Runtime;
use crate::steps::dotenv::EnvFileError;
use crate::steps::manifest::{self, Options, OutputFormat, Rendered, Request, Variables};

/// How many lines of each report section are printed before "… and N more".
const REPORT_LINES: usize = 20;

/// Arguments of `kstep render`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Variables: --set wins over --env-file (a later file wins over an \
    earlier one), which wins over the process environment (left out with --no-env).\n\
    Placeholders: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}; \
    $${ is a literal ${; any other $ is left as written ($VAR, $$, Kubernetes' $(VAR) and \
    $$(VAR)). An unset variable without a default is an error."
)]
pub struct Args {
    #[command(flatten)]
    manifests: Manifests,
    #[command(flatten)]
    template: Template,
    /// An --image that matches no container is a warning instead of an error.
    #[arg(long)]
    allow_unmatched: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = DocumentFormat::Yaml)]
    output: DocumentFormat,
    /// Print only warnings and errors on stderr, not the report.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    pub(crate) report: crate::report::ReportArgs,
}

/// Runs `kstep render`.
///
/// # Errors
/// Exit 2 for unreadable or invalid input (diagnostics already printed), exit 1 for a sandbox
/// failure.
pub fn run(args: &Args) -> CliResult {
    let sources = manifest::read_sources(&args.manifests.files).map_err(CliError::invalid)?;
    let runtime = Runtime::new()?;
    let variables = args
        .template
        .variable_sources()
        .collect(&runtime)
        .map_err(|e| match e {
            EnvFileError::Step(step) => CliError::from(step),
            other => CliError::invalid(other),
        })?;
    let request = Request {
        sources,
        variables: variables.pairs(),
        images: args.template.image_overrides(),
        options: Options {
            upgrade_api_versions: args.template.upgrade_api_versions,
            allow_unmatched_images: args.allow_unmatched,
            literal: false,
            output: match args.output {
                // Only `text` is printed: the documents' JSON is not needed.
                DocumentFormat::Yaml => OutputFormat::YamlOnly,
                DocumentFormat::Json => OutputFormat::JsonOnly,
            },
        },
    };
    let rendered = render_reported(&runtime, &request)?;
    if !args.quiet {
        for line in report_lines(&rendered, &variables) {
            output::stderr_line(&line);
        }
    }
    if let Some(text) = &rendered.text {
        output::stdout(text);
    }
    Ok(())
}

/// Renders `request` in the sandbox and prints its diagnostics or its warnings.
///
/// # Errors
/// Exit 2 with the diagnostics printed, exit 1 for a sandbox failure.
fn render_reported(runtime: &Runtime, request: &Request) -> Result<Rendered, CliError> {
    let rendered = match manifest::render(runtime, request)? {
        Ok(rendered) => rendered,
        Err(diagnostics) => {
            for d in &diagnostics {
                output::stderr_line(&manifest::format_diagnostic(d));
            }
            return Err(CliError::reported_invalid());
        }
    };
    for w in &rendered.report.warnings {
        output::stderr_line(&manifest::format_diagnostic(w));
    }
    Ok(rendered)
}

/// The human report: one line per variable (not per placeholder), per image change and per
/// removed apiVersion. Values are never printed.
fn report_lines(rendered: &Rendered, variables: &Variables) -> Vec<String> {
    let report = &rendered.report;
    let mut lines = Vec::new();
    let sources: std::collections::BTreeSet<&str> = rendered
        .documents
        .iter()
        .map(|d| d.source.as_str())
        .collect();
    lines.push(format!(
        "kstep render: {} document(s) from {} source(s)",
        rendered.documents.len(),
        sources.len()
    ));
    let mut by_variable: BTreeMap<&str, Vec<&manifest::Substitution>> = BTreeMap::new();
    for s in &report.substitutions {
        by_variable.entry(&s.variable).or_default().push(s);
    }
    for (name, uses) in by_variable {
        let defaulted = uses.iter().filter(|u| u.defaulted).count();
        let origin = match (variables.origin(name), defaulted == uses.len()) {
            (_, true) => "its default".to_owned(),
            (Some(origin), _) => origin.to_string(),
            (None, _) => "its default".to_owned(),
        };
        let first = uses[0];
        lines.push(format!(
            "  ${{{name}}} from {origin}: {} placeholder(s), first at {}:{}:{}",
            uses.len(),
            first.source,
            first.line,
            first.column
        ));
    }
    for (i, c) in report.images.iter().enumerate() {
        if i == REPORT_LINES {
            lines.push(format!(
                "  … and {} more image change(s)",
                report.images.len() - i
            ));
            break;
        }
        lines.push(format!(
            "  {}:{}:{}: {} `{}` {} `{}`: image {} -> {} (--image {})",
            c.source,
            c.line,
            c.column,
            c.kind,
            c.name,
            if c.init {
                "init container"
            } else {
                "container"
            },
            c.container,
            if c.old_image.is_empty() {
                "(none)"
            } else {
                &c.old_image
            },
            c.new_image,
            c.by
        ));
    }
    for (i, a) in report
        .api_versions
        .iter()
        .filter(|a| a.upgraded)
        .enumerate()
    {
        if i == REPORT_LINES {
            lines.push("  … and more upgraded document(s)".to_owned());
            break;
        }
        lines.push(format!(
            "  {}:{}:{}: {} `{}`: {} -> {} (removed in Kubernetes {})",
            a.source,
            a.line,
            a.column,
            a.kind,
            a.name,
            a.old_api_version,
            a.new_api_version.as_deref().unwrap_or("-"),
            a.removed_in
        ));
        for note in &a.notes {
            lines.push(format!("      {note}"));
        }
    }
    lines
}
