//! `kstep traefik render | migrate`: a Traefik v3 deployment from a values file, and Traefik 1.x
//! configuration brought to v3.
//!
//! - `render` prints the manifests (YAML stream or one JSON `v1/List`) for `kubectl apply -f -`
//!   or `kstep apply`; every problem in the values file is reported at once as
//!   `FILE:LINE:COL: message` on stderr, nothing on stdout, exit 2.
//! - `migrate` prints the v3 static configuration (YAML or TOML) for a v1 `traefik.toml`, and
//!   on stderr every v1 setting it could not carry over (`warning:`) or carried over with a
//!   change (`note:`), each with its position.

use std::path::{Path, PathBuf};

use crate::cli::{CliError, CliResult};
use crate::fsutil::CappedReadError;
use crate::output;
use crate::runtime::Runtime;
use crate::steps::traefik::{self, ConfigFormat, MAX_INPUT_BYTES, ManifestFormat};

/// The subcommands of `kstep traefik`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Print the Kubernetes manifests of a Traefik v3 deployment (values: docs/traefik.md).
    Render(RenderArgs),
    /// Translate a Traefik 1.x traefik.toml into v3 static configuration, listing every
    /// setting that could not be carried over and why.
    Migrate(MigrateArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ManifestOutput {
    /// A YAML stream, each document after `---`.
    Yaml,
    /// One JSON `v1/List`.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ConfigOutput {
    /// traefik.yaml
    Yaml,
    /// traefik.toml
    Toml,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RenderArgs {
    /// The values file (YAML), or `-` for stdin. Without it, every default.
    #[arg(long, value_name = "FILE")]
    values: Option<PathBuf>,
    /// What to print.
    #[arg(long, value_enum, default_value_t = ManifestOutput::Yaml)]
    output: ManifestOutput,
}

#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {
    /// The Traefik 1.x traefik.toml, or `-` for stdin.
    file: PathBuf,
    /// What to print.
    #[arg(long, value_enum, default_value_t = ConfigOutput::Yaml)]
    output: ConfigOutput,
    /// Do not list the settings carried over with a change (`note:` lines); the ones that
    /// could not be carried over are always listed.
    #[arg(long, short)]
    quiet: bool,
}

/// Runs `kstep traefik`.
///
/// # Errors
/// Exit 2 for unreadable or invalid input (diagnostics already printed), exit 1 for a sandbox
/// failure.
pub(crate) fn run(command: &Command) -> CliResult {
    match command {
        Command::Render(a) => render(a),
        Command::Migrate(a) => migrate(a),
    }
}

fn render(args: &RenderArgs) -> CliResult {
    let (name, values) = match &args.values {
        Some(path) => (display(path), read_input(path)?),
        None => ("values".to_owned(), String::new()),
    };
    let format = match args.output {
        ManifestOutput::Yaml => ManifestFormat::Yaml,
        ManifestOutput::Json => ManifestFormat::Json,
    };
    let runtime = Runtime::new()?;
    match traefik::render(&runtime, &values, format)? {
        Ok(rendered) => {
            for w in &rendered.warnings {
                output::stderr_line(&traefik::format_diagnostic(&name, w));
            }
            output::stdout(&rendered.manifests);
            Ok(())
        }
        Err(diagnostics) => {
            for d in &diagnostics {
                output::stderr_line(&traefik::format_diagnostic(&name, d));
            }
            Err(CliError::reported_invalid())
        }
    }
}

fn migrate(args: &MigrateArgs) -> CliResult {
    let name = display(&args.file);
    let text = read_input(&args.file)?;
    let format = match args.output {
        ConfigOutput::Yaml => ConfigFormat::Yaml,
        ConfigOutput::Toml => ConfigFormat::Toml,
    };
    let runtime = Runtime::new()?;
    match traefik::migrate(&runtime, &text, format)? {
        Ok(m) => {
            for n in &m.not_carried {
                output::stderr_line(&traefik::format_note(&name, "warning: not carried over", n));
            }
            if !args.quiet {
                for n in &m.changed {
                    output::stderr_line(&traefik::format_note(&name, "note", n));
                }
            }
            output::stdout(&m.config);
            Ok(())
        }
        Err(diagnostics) => {
            for d in &diagnostics {
                output::stderr_line(&traefik::format_diagnostic(&name, d));
            }
            Err(CliError::reported_invalid())
        }
    }
}

fn display(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    }
}

/// Reads a file or stdin, at most [`MAX_INPUT_BYTES`].
fn read_input(path: &Path) -> Result<String, CliError> {
    let what = display(path);
    let bytes = crate::fsutil::read_capped(path, true, MAX_INPUT_BYTES).map_err(|e| {
        CliError::invalid(match e {
            CappedReadError::Io(error) => anyhow::anyhow!("reading {what}: {error}"),
            CappedReadError::TooBig { .. } => anyhow::anyhow!(
                "{what}: larger than {} KiB; this is not a values file or traefik.toml",
                MAX_INPUT_BYTES >> 10
            ),
        })
    })?;
    String::from_utf8(bytes)
        .map_err(|_| CliError::invalid(anyhow::anyhow!("{what}: not UTF-8 text")))
}
