//! `kstep render`: manifests with YAML-aware placeholders, image overrides and apiVersion
//! upgrades, printed as a YAML stream or a JSON array (see `docs/templating.md`).
//!
//! stdout carries the documents and nothing else; the report (what was substituted, which
//! images changed, which apiVersions were upgraded) and warnings go to stderr. On any error:
//! every diagnostic as `FILE:LINE:COL: message` on stderr, nothing on stdout, exit 2.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cli::{CliError, CliResult};
use crate::output;
use crate::runtime::Runtime;
use crate::steps::dotenv::EnvFileError;
use crate::steps::manifest::{
    self, EnvFileFlavor, ImageOverride, Options, OutputFormat, Rendered, Request, Variables,
};

/// How many lines of each report section are printed before "… and N more".
const REPORT_LINES: usize = 20;

/// Arguments of `kstep render`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Variables: --set wins over --env-file (a later file wins over an \
    earlier one), which wins over the process environment (left out with --no-env).\n\
    Placeholders: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}; \
    $$ is a literal $; a bare $VAR is left as written. An unset variable without a default \
    is an error."
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
    #[arg(short = 'o', long, value_enum, default_value_t = OutputArg::Yaml)]
    output: OutputArg,
    /// Print only warnings and errors on stderr, not the report.
    #[arg(short, long)]
    quiet: bool,
}

/// The manifests to read (shared by `render`, `apply` and `deploy`).
#[derive(Debug, clap::Args)]
pub struct Manifests {
    /// A manifest file, a directory (its *.yaml, *.yml, *.json files, sorted; not recursive)
    /// or `-` for stdin. Repeatable; documents keep the order given.
    #[arg(
        short = 'f',
        long = "filename",
        visible_alias = "file",
        value_name = "FILE|DIR|-",
        required = true
    )]
    pub files: Vec<PathBuf>,
}

/// Variables, image overrides and apiVersion upgrades (shared by `render` and `deploy`).
#[derive(Debug, clap::Args)]
pub struct Template {
    /// Read variables from this dotenv file (e.g. the build job's `artifacts:reports:dotenv`).
    /// Repeatable: a later file wins.
    #[arg(long, value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// How --env-file files are read: `gitlab` (artifacts:reports:dotenv rules) or `compose`.
    #[arg(long, value_enum, default_value_t = FlavorArg::Gitlab, value_name = "FLAVOR")]
    env_file_flavor: FlavorArg,
    /// Set a variable. Repeatable; wins over env files and the environment.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_variable)]
    set: Vec<(String, String)>,
    /// Ignore the process environment: only --set and --env-file define variables.
    #[arg(long)]
    no_env: bool,
    /// Use image REF for every container named NAME or whose image repository is NAME
    /// (registry, port and path, compared exactly). Repeatable.
    #[arg(long = "image", value_name = "NAME=REF", value_parser = parse_image)]
    pub images: Vec<(String, String)>,
    /// Rewrite removed apiVersions to their current replacement where that is mechanical.
    #[arg(long)]
    pub upgrade_api_versions: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FlavorArg {
    Gitlab,
    Compose,
}

impl Template {
    /// Reads the env files (in the sandbox) and gathers the variables with their precedence.
    ///
    /// # Errors
    /// Exit 2 for an unreadable or invalid env file, 1 for a sandbox failure.
    pub fn variables(&self, runtime: &Runtime) -> Result<Variables, CliError> {
        let flavor = match self.env_file_flavor {
            FlavorArg::Gitlab => EnvFileFlavor::Gitlab,
            FlavorArg::Compose => EnvFileFlavor::Compose,
        };
        Variables::collect(runtime, &self.set, &self.env_file, flavor, !self.no_env).map_err(|e| {
            match e {
                EnvFileError::Step(step) => CliError::from(step),
                other => CliError::invalid(other),
            }
        })
    }

    /// The `--image` overrides as the manifest step takes them.
    pub fn image_overrides(&self) -> Vec<ImageOverride> {
        self.images
            .iter()
            .map(|(name, reference)| ImageOverride {
                name: name.clone(),
                reference: reference.clone(),
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputArg {
    /// A multi-document YAML stream.
    Yaml,
    /// One JSON array.
    Json,
}

/// Parses `--set KEY=VALUE` (shared with `kstep deploy`): KEY must be a placeholder name.
pub(crate) fn parse_variable(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}`: expected KEY=VALUE"))?;
    if !manifest::is_name(key) {
        return Err(format!(
            "`{key}` cannot be a placeholder name (letters, digits and `_`, not starting with a digit)"
        ));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// Parses `--image NAME=REF` (shared with `kstep deploy`).
pub(crate) fn parse_image(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, reference)) if !name.is_empty() && !reference.is_empty() => {
            Ok((name.to_owned(), reference.to_owned()))
        }
        _ => Err(format!("`{text}`: expected NAME=REF")),
    }
}

/// Runs `kstep render`.
///
/// # Errors
/// Exit 2 for unreadable or invalid input (diagnostics already printed), exit 1 for a sandbox
/// failure.
pub fn run(args: &Args) -> CliResult {
    let sources = manifest::read_sources(&args.manifests.files).map_err(CliError::invalid)?;
    let runtime = Runtime::new()?;
    let variables = args.template.variables(&runtime)?;
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
                OutputArg::Yaml => OutputFormat::YamlOnly,
                OutputArg::Json => OutputFormat::JsonOnly,
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

/// Renders `request` in the sandbox and prints its diagnostics or its warnings (shared with
/// `kstep apply` and `kstep deploy`).
///
/// # Errors
/// Exit 2 with the diagnostics printed, exit 1 for a sandbox failure.
pub(crate) fn render_reported(runtime: &Runtime, request: &Request) -> Result<Rendered, CliError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        assert_eq!(parse_variable("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert_eq!(parse_variable("A="), Ok(("A".into(), String::new())));
        assert!(parse_variable("A-B=1").is_err());
        assert!(parse_variable("A").is_err());
        assert_eq!(
            parse_image("registry.local:5000/team/app=registry.local:5000/team/app:2.0"),
            Ok((
                "registry.local:5000/team/app".into(),
                "registry.local:5000/team/app:2.0".into()
            ))
        );
        assert!(parse_image("app=").is_err());
    }
}
