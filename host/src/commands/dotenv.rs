//! `kstep dotenv parse | check | set`: dotenv files as GitLab and Docker Compose read them.
//!
//! - `parse` prints the variables (JSON object, `export` lines for `eval`, or a normalised
//!   GitLab-valid file);
//! - `check` says whether GitLab will accept a file as an `artifacts:reports:dotenv` report and
//!   lists every problem, not only the first;
//! - `set` adds or replaces variables in a report, atomically, keeping it valid for GitLab: the
//!   replacement for `echo "IMAGE=$X" >> docker.env`.
//!
//! Invalid input exits 2 with `FILE:LINE:COL: message` lines on stderr and nothing on stdout.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cli::{CliError, CliResult};
use crate::output;
use crate::runtime::Runtime;
use crate::steps::dotenv::{
    self as step, Diagnostic, EnvFileError, Flavor, GitlabLimits, Severity, format_diagnostic,
};

/// The subcommands of `kstep dotenv`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Parse a dotenv file as GitLab or Docker Compose would, and print its variables.
    Parse(ParseArgs),
    /// Say whether GitLab will accept a file as an `artifacts:reports:dotenv` report, listing
    /// every problem with its line.
    Check(CheckArgs),
    /// Add or replace variables in a dotenv report so that it stays valid for GitLab (atomic
    /// write; the file is created if missing).
    Set(SetArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FlavorArg {
    /// GitLab's `artifacts:reports:dotenv`: `KEY=value` lines, nothing else.
    Gitlab,
    /// Docker Compose `.env` / `env_file`: quotes, escapes, `export`, comments, `${VAR}`.
    Compose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputArg {
    /// One JSON object `{"KEY": "value", …}` in file order.
    Json,
    /// `export KEY='value'` lines, safe for `eval`.
    Shell,
    /// A normalised GitLab-valid dotenv file.
    Dotenv,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ParseArgs {
    /// The file, or `-` for stdin.
    file: PathBuf,
    /// Whose rules to read the file with.
    #[arg(long, value_enum, default_value_t = FlavorArg::Gitlab)]
    flavor: FlavorArg,
    /// What to print.
    #[arg(long, value_enum, default_value_t = OutputArg::Json)]
    output: OutputArg,
    /// Compose flavor: interpolate without the process environment (only earlier lines).
    #[arg(long)]
    no_environment: bool,
}

#[derive(Debug, clap::Args)]
struct Limit {
    /// The instance's `dotenv_variables` limit: at most this many variables.
    #[arg(long, value_name = "N", default_value_t = 20)]
    max_vars: u32,
    /// The instance's `dotenv_size` limit: the file must be smaller than this many bytes.
    #[arg(long, value_name = "N", default_value_t = 5120)]
    max_bytes: u64,
}

impl Limit {
    fn gitlab(&self) -> GitlabLimits {
        GitlabLimits {
            max_bytes: self.max_bytes,
            max_vars: self.max_vars,
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// The dotenv report.
    file: PathBuf,
    #[command(flatten)]
    limits: Limit,
    #[command(flatten)]
    pub(crate) report: crate::report::ReportArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SetArgs {
    /// The dotenv report (created if it does not exist).
    file: PathBuf,
    /// Variables to add or replace.
    #[arg(required = true, value_name = "KEY=VALUE")]
    assignments: Vec<String>,
    #[command(flatten)]
    limits: Limit,
}

impl Command {
    /// The name and `--report` arguments of `dotenv check`, the subcommand that takes them.
    pub(crate) fn reports(&self) -> Option<(&'static str, &crate::report::ReportArgs)> {
        match self {
            Command::Check(a) => Some(("kstep dotenv check", &a.report)),
            _ => None,
        }
    }
}

/// Runs `kstep dotenv …`.
///
/// # Errors
/// Exit 2 for invalid input (diagnostics already printed), 1 for runtime failures.
pub(crate) fn run(command: &Command) -> CliResult {
    match command {
        Command::Parse(a) => parse(a),
        Command::Check(a) => check(a),
        Command::Set(a) => set(a),
    }
}

fn label(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".into()
    } else {
        path.display().to_string()
    }
}

/// Prints diagnostics on stderr; returns whether any was an error.
fn report(file: &str, diagnostics: &[Diagnostic]) -> bool {
    for d in diagnostics {
        output::stderr_line(&format_diagnostic(file, d));
    }
    diagnostics
        .iter()
        .any(|d| matches!(d.severity, Severity::Error))
}

fn read_input(path: &Path) -> Result<Vec<u8>, CliError> {
    step::read_capped(path, step::MAX_FILE_BYTES).map_err(|e| read_input_error(path, e))
}

fn parse(args: &ParseArgs) -> CliResult {
    let file = label(&args.file);
    let bytes = read_input(&args.file)?;
    let (flavor, environment) = match args.flavor {
        FlavorArg::Gitlab => (Flavor::Gitlab, Vec::new()),
        FlavorArg::Compose if args.no_environment => (Flavor::Compose, Vec::new()),
        FlavorArg::Compose => (Flavor::Compose, step::process_environment()),
    };
    let runtime = Runtime::new()?;
    let parsed = match step::parse_detailed(&runtime, &bytes, flavor, &environment)? {
        Ok(parsed) => parsed,
        Err(diagnostics) => {
            report(&file, &diagnostics);
            return Err(CliError::reported_invalid());
        }
    };
    report(&file, &parsed.warnings);
    let text = match args.output {
        OutputArg::Json => json(&parsed.entries),
        OutputArg::Shell => shell(&parsed.entries).map_err(|diagnostics| {
            report(&file, &diagnostics);
            CliError::reported_invalid()
        })?,
        OutputArg::Dotenv => match step::to_gitlab(&runtime, &parsed.entries)? {
            Ok(text) => text,
            Err(diagnostics) => {
                report(&file, &diagnostics);
                return Err(CliError::reported_invalid());
            }
        },
    };
    output::stdout(&text);
    Ok(())
}

/// `{"KEY": "value", …}` in entry order, on one line.
fn json(entries: &[step::Entry]) -> String {
    let size: usize = entries
        .iter()
        .map(|e| e.key.len() + e.value.len() + 8)
        .sum();
    let mut out = String::with_capacity(size + 3);
    out.push('{');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        json_string(&mut out, &e.key);
        out.push_str(": ");
        json_string(&mut out, &e.value);
    }
    out.push_str("}\n");
    out
}

/// Appends `s` as a JSON string, escaped exactly as serde_json does (`"`, `\\`, and control
/// characters; `\u007f` and non-ASCII as they are). Written by hand because a 1 MiB file is
/// tens of thousands of strings.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// `export KEY='value'` lines: inside single quotes a shell expands nothing, and a `'` is
/// written `'\''`. Names that are not shell identifiers and NUL bytes (which no shell variable
/// can hold) are refused.
fn shell(entries: &[step::Entry]) -> Result<String, Vec<Diagnostic>> {
    let mut out = String::new();
    let mut errors = Vec::new();
    for e in entries {
        let problem = if !crate::steps::manifest::is_name(&e.key) {
            Some(format!("{:?} is not a valid shell variable name", e.key))
        } else if e.value.contains('\0') {
            Some(format!(
                "{}: a shell variable cannot hold a NUL byte",
                e.key
            ))
        } else {
            None
        };
        match problem {
            Some(message) => errors.push(Diagnostic {
                severity: Severity::Error,
                message,
                source: None,
                line: e.line,
                column: 1,
            }),
            None => {
                let _ = writeln!(out, "export {}='{}'", e.key, e.value.replace('\'', r"'\''"));
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn check(args: &CheckArgs) -> CliResult {
    let file = label(&args.file);
    let limits = args.limits.gitlab();
    let bytes = match step::read_capped(&args.file, step::MAX_FILE_BYTES) {
        Ok(bytes) => bytes,
        Err(EnvFileError::TooBig { size, .. }) => {
            // Far beyond any GitLab limit: say so without reading it.
            output::stderr_line(&format!(
                "{file}: the file is {size} bytes: GitLab accepts a dotenv report smaller than {} \
                 bytes (GitLab: \"Dotenv Artifact Too Big. Maximum Allowable Size: {}\")",
                limits.max_bytes, limits.max_bytes
            ));
            return Err(CliError::reported_invalid());
        }
        Err(e) => return Err(read_input_error(&args.file, e)),
    };
    let runtime = Runtime::new()?;
    let result = step::check(&runtime, &bytes, limits)?;
    let refused = report(&file, &result.problems);
    if refused {
        let errors = result
            .problems
            .iter()
            .filter(|d| matches!(d.severity, Severity::Error))
            .count();
        let plural = if errors == 1 { "" } else { "s" };
        output::stderr_line(&match result.gitlab_message.as_deref() {
            Some(answer) => format!(
                "{file}: GitLab will refuse this dotenv report: {errors} problem{plural} (GitLab \
                 would answer: \"{answer}\")"
            ),
            // Only undecodable bytes get here: GitLab would guess an encoding, not refuse.
            None => format!(
                "{file}: refused: {errors} problem{plural}; GitLab would not reject the upload \
                 but would guess the file's encoding, so the values could arrive changed"
            ),
        });
        return Err(CliError::reported_invalid());
    }
    output::stdout(&format!(
        "{file}: GitLab will accept this dotenv report ({} variable{}, {} bytes; limits: {} \
         variables, < {} bytes)\n",
        result.variables,
        if result.variables == 1 { "" } else { "s" },
        result.bytes,
        limits.max_vars,
        limits.max_bytes
    ));
    Ok(())
}

fn read_input_error(path: &Path, e: EnvFileError) -> CliError {
    match e {
        EnvFileError::Io { error, .. } => {
            CliError::invalid(anyhow::anyhow!("{}: {error}", label(path)))
        }
        other => CliError::invalid(other),
    }
}

fn set(args: &SetArgs) -> CliResult {
    let file = label(&args.file);
    let mut assignments = Vec::with_capacity(args.assignments.len());
    for (i, arg) in args.assignments.iter().enumerate() {
        // The value is never echoed: it may be anything.
        let Some((key, value)) = arg.split_once('=') else {
            return Err(CliError::invalid(anyhow::anyhow!(
                "argument {}: expected KEY=VALUE (no \"=\" found){}",
                i + 1,
                reversed_hint(&args.file, arg)
            )));
        };
        assignments.push((key.to_owned(), value.to_owned()));
    }
    let existing = match std::fs::symlink_metadata(&args.file) {
        Ok(_) => Some(read_input(&args.file)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(CliError::invalid(anyhow::anyhow!("{file}: {e}"))),
    };
    let runtime = Runtime::new()?;
    let outcome = match step::set(
        &runtime,
        existing.as_deref(),
        &assignments,
        args.limits.gitlab(),
    )? {
        Ok(outcome) => outcome,
        Err(diagnostics) => {
            report(&file, &diagnostics);
            if diagnostics.iter().any(|d| d.line > 0) {
                output::stderr_line(&format!(
                    "{file}: GitLab would already refuse this file; fix it first (kstep dotenv \
                     check {file})"
                ));
            }
            return Err(CliError::reported_invalid());
        }
    };
    report(&file, &outcome.warnings);
    // Through a symlink, replace the file it points to, not the link.
    let target = match std::fs::canonicalize(&args.file) {
        Ok(real) if existing.is_some() => real,
        _ => args.file.clone(),
    };
    crate::fsutil::write_atomic(&target, outcome.text.as_bytes(), None)
        .with_context(|| format!("writing {file}"))?;
    let mut summary = Vec::new();
    if !outcome.added.is_empty() {
        summary.push(format!("added {}", outcome.added.join(", ")));
    }
    if !outcome.replaced.is_empty() {
        summary.push(format!("replaced {}", outcome.replaced.join(", ")));
    }
    output::stdout(&format!("{file}: {}\n", summary.join("; ")));
    Ok(())
}

/// `kstep dotenv set IMAGE=x docker.env`: the file comes first. Says so when FILE looks like
/// an assignment and the argument without `=` could be the file; shows the key and the file
/// name, never the value.
fn reversed_hint(file: &Path, arg: &str) -> String {
    let Some((key, _)) = file.to_str().and_then(|f| f.split_once('=')) else {
        return String::new();
    };
    if key.is_empty() || key.contains('/') {
        return String::new();
    }
    format!(". The file comes first: kstep dotenv set {arg} {key}=…")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn reversed_arguments_get_a_hint_without_the_value() {
        let hint = reversed_hint(Path::new("IMAGE=registry/app:1"), "docker.env");
        assert_eq!(
            hint,
            ". The file comes first: kstep dotenv set docker.env IMAGE=…"
        );
        assert_eq!(reversed_hint(Path::new("docker.env"), "IMAGE"), "");
        assert_eq!(reversed_hint(Path::new("./a=b/c.env"), "X"), "");
    }

    fn entry(key: &str, value: &str) -> step::Entry {
        step::Entry {
            key: key.into(),
            value: value.into(),
            line: 1,
        }
    }

    #[test]
    fn json_strings_match_serde_json() {
        let mut all = String::new();
        for c in (0u8..0x80).map(char::from).chain(['é', '🛹', '\u{2028}']) {
            all.push(c);
            let mut ours = String::new();
            json_string(&mut ours, &c.to_string());
            assert_eq!(
                ours,
                serde_json::to_string(&c.to_string()).unwrap(),
                "{c:?}"
            );
        }
        let mut ours = String::new();
        json_string(&mut ours, &all);
        assert_eq!(ours, serde_json::to_string(&all).unwrap());
    }

    #[test]
    fn json_keeps_order_and_escapes() {
        let out = json(&[entry("B", "\"q\"\n"), entry("A", "é")]);
        assert_eq!(out, "{\"B\": \"\\\"q\\\"\\n\", \"A\": \"é\"}\n");
        assert_eq!(json(&[]), "{}\n");
    }

    #[test]
    fn shell_quotes_and_refuses() {
        assert_eq!(
            shell(&[entry("A", "it's $(x) `y`")]).unwrap(),
            "export A='it'\\''s $(x) `y`'\n"
        );
        assert_eq!(
            shell(&[entry("1A", "x"), entry("a.b", "y")])
                .unwrap_err()
                .len(),
            2
        );
        assert!(shell(&[entry("A", "x\0y")]).is_err());
    }
}
