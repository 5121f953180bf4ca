//! Calls into the built-in dotenv step (`kstep:builtin/dotenv`), and [`read_env_file`], the one
//! way kstep commands read a `--env-file`.
//!
//! For command authors (`--env-file` on templating, deploy…):
//!
//! ```no_run
//! # fn demo(runtime: &kstep::runtime::Runtime) -> Result<(), kstep::steps::dotenv::EnvFileError> {
//! use kstep::steps::dotenv::{Flavor, read_env_file};
//! let vars = read_env_file(runtime, std::path::Path::new("docker.env"), Flavor::Gitlab)?;
//! for (key, value) in &vars { /* … */ }
//! # Ok(()) }
//! ```
//!
//! The file is refused before it is read when it is larger than [`MAX_FILE_BYTES`]; parse
//! errors come back as `FILE:LINE:COL: message` lines ([`EnvFileError::Invalid`], which a
//! command maps to exit code 2). Values are never part of an error message.

use std::path::{Path, PathBuf};

use crate::fsutil::CappedReadError;
use crate::runtime::{Limits, Runtime, StepError};

#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/builtin",
        world: "dotenv-step",
        with: { "kstep:steps/types": crate::steps::types::kstep::steps::types },
        exports: { default: async },
    });
}

pub use crate::steps::{Diagnostic, Severity};
use bindings::DotenvStep;
pub use bindings::exports::kstep::builtin::dotenv::{
    Entry, Flavor, Limits as GitlabLimits, Parsed, Report, SetOutcome,
};

/// The largest file kstep reads as an env file or dotenv report (16 MiB). GitLab itself takes
/// reports of less than 5 KiB; Compose files are rarely above a few KiB.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

impl Default for GitlabLimits {
    /// GitLab's defaults on a self-managed instance: `dotenv_size` 5120, `dotenv_variables` 20.
    fn default() -> Self {
        Self {
            max_bytes: 5120,
            max_vars: 20,
        }
    }
}

/// Parses a dotenv file inside the sandbox: the variables, in the order of their first
/// definition (see [`parse_detailed`] for the warnings too).
///
/// # Errors
/// The outer error is a sandbox failure; the inner `Err` holds the file's diagnostics.
pub fn parse(
    runtime: &Runtime,
    text: &[u8],
    flavor: Flavor,
    environment: &[(String, String)],
) -> Result<Result<Vec<Entry>, Vec<Diagnostic>>, StepError> {
    Ok(parse_detailed(runtime, text, flavor, environment)?.map(|parsed| parsed.entries))
}

/// [`parse`], with the warnings (quotes GitLab keeps, unset variables in interpolation…).
///
/// # Errors
/// The outer error is a sandbox failure; the inner `Err` holds the file's diagnostics.
pub fn parse_detailed(
    runtime: &Runtime,
    text: &[u8],
    flavor: Flavor,
    environment: &[(String, String)],
) -> Result<Result<Parsed, Vec<Diagnostic>>, StepError> {
    let step = runtime.builtin("dotenv")?;
    // The WIT `pairs` typedef binds as `&Vec`; the copy is small next to the call.
    let environment = environment.to_vec();
    runtime.call(&step, &Limits::default(), async |store, instance| {
        DotenvStep::new(&mut *store, instance)?
            .kstep_builtin_dotenv()
            .call_parse(store, text, flavor, &environment)
            .await
    })
}

/// Checks a file against GitLab's dotenv upload rules and `limits`.
///
/// # Errors
/// A sandbox failure.
pub fn check(runtime: &Runtime, text: &[u8], limits: GitlabLimits) -> Result<Report, StepError> {
    let step = runtime.builtin("dotenv")?;
    runtime.call(&step, &Limits::default(), async |store, instance| {
        DotenvStep::new(&mut *store, instance)?
            .kstep_builtin_dotenv()
            .call_check(store, text, limits)
            .await
    })
}

/// Adds or replaces `assignments` in `existing` (`None`: no file yet), keeping it GitLab-valid.
///
/// # Errors
/// The outer error is a sandbox failure; the inner `Err` holds the diagnostics.
pub fn set(
    runtime: &Runtime,
    existing: Option<&[u8]>,
    assignments: &[(String, String)],
    limits: GitlabLimits,
) -> Result<Result<SetOutcome, Vec<Diagnostic>>, StepError> {
    let step = runtime.builtin("dotenv")?;
    let assignments = assignments.to_vec();
    runtime.call(&step, &Limits::default(), async |store, instance| {
        DotenvStep::new(&mut *store, instance)?
            .kstep_builtin_dotenv()
            .call_set(store, existing, &assignments, limits)
            .await
    })
}

/// Writes `entries` as a GitLab-valid dotenv file.
///
/// # Errors
/// The outer error is a sandbox failure; the inner `Err` names the entries GitLab cannot carry.
pub fn to_gitlab(
    runtime: &Runtime,
    entries: &[Entry],
) -> Result<Result<String, Vec<Diagnostic>>, StepError> {
    let step = runtime.builtin("dotenv")?;
    runtime.call(&step, &Limits::default(), async |store, instance| {
        DotenvStep::new(&mut *store, instance)?
            .kstep_builtin_dotenv()
            .call_to_gitlab(store, entries)
            .await
    })
}

/// Why an env file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    /// The file could not be opened or read.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error: part of the message, not a `source`, so that a report of the error
        /// chain says it once.
        error: std::io::Error,
    },
    /// The file is larger than the limit; it was not read.
    #[error("{}: the file is {size} bytes or more; kstep reads files of at most {limit} bytes", path.display())]
    TooBig {
        /// The file.
        path: PathBuf,
        /// Its size (or a lower bound, for a stream).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file is not valid in the flavor asked for: one `FILE:LINE:COL: message` per line.
    #[error("{}", lines.join("\n"))]
    Invalid {
        /// The formatted diagnostics.
        lines: Vec<String>,
    },
    /// The sandbox failed.
    #[error(transparent)]
    Step(#[from] StepError),
}

/// Reads `path` (at most [`MAX_FILE_BYTES`], checked before reading) and parses it in `flavor`.
/// The compose flavor interpolates with the process environment, as `docker compose` does.
/// Warnings (quotes GitLab keeps, unset variables…) are printed on stderr.
///
/// # Errors
/// [`EnvFileError`]: unreadable, too big, invalid (with positions) or a sandbox failure.
pub fn read_env_file(
    runtime: &Runtime,
    path: &Path,
    flavor: Flavor,
) -> Result<Vec<(String, String)>, EnvFileError> {
    let environment = match flavor {
        Flavor::Compose => process_environment(),
        Flavor::Gitlab => Vec::new(),
    };
    read_env_file_with(runtime, path, flavor, &environment)
}

/// [`read_env_file`] with an explicit environment for the compose flavor.
///
/// # Errors
/// As [`read_env_file`].
pub fn read_env_file_with(
    runtime: &Runtime,
    path: &Path,
    flavor: Flavor,
    environment: &[(String, String)],
) -> Result<Vec<(String, String)>, EnvFileError> {
    let bytes = read_capped(path, MAX_FILE_BYTES)?;
    let label = path.display().to_string();
    match parse_detailed(runtime, &bytes, flavor, environment)? {
        Ok(parsed) => {
            for warning in &parsed.warnings {
                crate::output::stderr_line(&format_diagnostic(&label, warning));
            }
            Ok(parsed
                .entries
                .into_iter()
                .map(|e| (e.key, e.value))
                .collect())
        }
        Err(diagnostics) => Err(EnvFileError::Invalid {
            lines: diagnostics
                .iter()
                .map(|d| format_diagnostic(&label, d))
                .collect(),
        }),
    }
}

/// The process environment as UTF-8 pairs (variables that are not UTF-8 are skipped).
pub fn process_environment() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Reads `path` (`-` is stdin) without ever holding more than `limit` + 1 bytes: a regular file
/// whose metadata says it is larger is refused before any read, and any other stream is cut
/// off one byte past the limit.
///
/// # Errors
/// [`EnvFileError::Io`] or [`EnvFileError::TooBig`].
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, EnvFileError> {
    crate::fsutil::read_capped(path, true, limit).map_err(|e| match e {
        CappedReadError::Io(error) => EnvFileError::Io {
            path: path.to_owned(),
            error,
        },
        CappedReadError::TooBig { size, limit } => EnvFileError::TooBig {
            path: path.to_owned(),
            size,
            limit,
        },
    })
}

/// `FILE:LINE:COL: message` (`FILE:LINE:` without a column, `FILE:` without a line,
/// `argument N:` for problems about a command-line argument); warnings say so.
pub fn format_diagnostic(file: &str, d: &Diagnostic) -> String {
    match (&d.source, d.line) {
        (Some(source), 0) => super::recorded("kstep/dotenv", source, 0, 0, d),
        _ => super::recorded("kstep/dotenv", file, d.line, d.column, d),
    }
}
