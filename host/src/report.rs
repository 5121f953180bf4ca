//! The findings and checks of one kstep process, collected for `--report codequality=FILE` and
//! `--report junit=FILE` (GitLab's `artifacts:reports:codequality` and `artifacts:reports:junit`).
//!
//! One collector for the whole process, fed where kstep already reports: every positioned
//! diagnostic of a step becomes a [`Finding`] when it is turned into its printed line
//! (`crate::steps`), custom-step findings when the pipeline prints them, and the checks (a
//! pipeline's steps, `deploy`'s render/apply/rollout) open and close [`case`]s. The command line
//! writes the requested reports once the command is over, whether it succeeded or not: a failed
//! job is when the reports matter. Everything written is masked like the log
//! ([`crate::output::mask`]), so a report never holds a secret the log would hide.
//!
//! - [`codequality`]: the Code Quality JSON (findings in files of the project only);
//! - [`junit`]: the JUnit XML (one testcase per step or check, failures with their messages).

pub mod codequality;
pub mod junit;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// How serious a finding is (the steps' three levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Informational.
    Info,
    /// A problem that does not stop the run.
    Warning,
    /// A problem that stops the run.
    Error,
}

/// One diagnostic with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What produced it: `kstep/render`, `kstep/dotenv`, `step/NAME`…
    pub check: String,
    /// How serious.
    pub level: Level,
    /// The message, as printed after the position.
    pub message: String,
    /// The file as printed (relative to the working directory, or absolute); a label such as
    /// `<stdin>` for input that is no file.
    pub path: String,
    /// 1-based line, 0 when unknown.
    pub line: u32,
    /// 1-based column, 0 when unknown.
    pub column: u32,
}

impl Finding {
    /// `PATH[:LINE[:COL]]: [warning: |note: ]message`, the way kstep prints a diagnostic.
    pub fn line_text(&self) -> String {
        let level = match self.level {
            Level::Error => "",
            Level::Warning => "warning: ",
            Level::Info => "note: ",
        };
        let place = match (self.line, self.column) {
            (0, _) => self.path.clone(),
            (line, 0) => format!("{}:{line}", self.path),
            (line, column) => format!("{}:{line}:{column}", self.path),
        };
        if place.is_empty() {
            format!("{level}{}", self.message)
        } else {
            format!("{place}: {level}{}", self.message)
        }
    }
}

/// How a check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It passed.
    Passed,
    /// It failed: why (the error findings recorded while it ran come first in the report).
    Failed(String),
    /// It did not run: why.
    Skipped(String),
}

/// One step or check, a JUnit testcase.
#[derive(Debug, Clone)]
pub struct Case {
    /// The step's or check's name.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it ran.
    pub time: Duration,
    /// The findings recorded while it ran (indexes into the findings).
    pub findings: Vec<usize>,
    /// The last [`MAX_LOG_LINES`] lines kstep wrote on stderr while it ran (masked).
    pub log: Vec<String>,
}

/// How many lines of stderr a case keeps: the end of a log says why a step failed.
pub const MAX_LOG_LINES: usize = 50;

fn keep(log: &mut Vec<String>, line: &str) {
    if log.len() == MAX_LOG_LINES {
        log.remove(0);
    }
    log.push(line.to_owned());
}

#[derive(Default)]
struct Collector {
    findings: Vec<Finding>,
    cases: Vec<Case>,
    /// The case running, and when it started.
    open: Option<(usize, Instant)>,
    /// What was written on stderr outside any case.
    log: Vec<String>,
}

static COLLECTOR: Mutex<Option<Collector>> = Mutex::new(None);

fn collector() -> MutexGuard<'static, Option<Collector>> {
    COLLECTOR.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records `finding` (a finding equal to one recorded already is not recorded twice: the same
/// diagnostic may be printed by two layers).
pub fn record(finding: Finding) {
    let mut guard = collector();
    let c = guard.get_or_insert_with(Collector::default);
    if c.findings.contains(&finding) {
        return;
    }
    c.findings.push(finding);
    let index = c.findings.len() - 1;
    if let Some((case, _)) = c.open {
        c.cases[case].findings.push(index);
    }
}

/// Keeps `line`, written on stderr (masked), for the report of the check running (or of the
/// command, outside any check): [`crate::output`] calls it for every line.
pub fn log(line: &str) {
    let mut guard = collector();
    let c = guard.get_or_insert_with(Collector::default);
    match c.open {
        Some((case, _)) => keep(&mut c.cases[case].log, line),
        None => keep(&mut c.log, line),
    }
}

/// Starts the check `name` and returns true, unless one is running already (a check inside a
/// step belongs to the step): then returns false and [`end`] must not be called for it.
pub fn start(name: &str) -> bool {
    let mut guard = collector();
    let c = guard.get_or_insert_with(Collector::default);
    if c.open.is_some() {
        return false;
    }
    c.cases.push(Case {
        name: name.to_owned(),
        outcome: Outcome::Passed,
        time: Duration::ZERO,
        findings: Vec::new(),
        log: Vec::new(),
    });
    c.open = Some((c.cases.len() - 1, Instant::now()));
    true
}

/// Ends the running check with `outcome`.
pub fn end(outcome: Outcome) {
    let mut guard = collector();
    let c = guard.get_or_insert_with(Collector::default);
    if let Some((index, started)) = c.open.take() {
        let case = &mut c.cases[index];
        case.time = started.elapsed();
        case.outcome = outcome;
    }
}

/// Records a check that did not run.
pub fn skip(name: &str, why: &str) {
    let mut guard = collector();
    let c = guard.get_or_insert_with(Collector::default);
    c.cases.push(Case {
        name: name.to_owned(),
        outcome: Outcome::Skipped(why.to_owned()),
        time: Duration::ZERO,
        findings: Vec::new(),
        log: Vec::new(),
    });
}

/// What was collected, closed: a check still running failed with `failure` (the command's
/// error), and a command that recorded no check is one check named `command`.
#[derive(Debug, Clone)]
pub struct Collected {
    /// The command (`kstep deploy`), the test suite's name.
    pub command: String,
    /// Every finding, in the order recorded.
    pub findings: Vec<Finding>,
    /// Every check, in the order started.
    pub cases: Vec<Case>,
}

/// Closes the collection: see [`Collected`]. `failure` is what the command failed with, when
/// it did (the message of its `error:` line, or empty when its diagnostics said it all).
pub fn collected(command: &str, failure: Option<&str>) -> Collected {
    let mut guard = collector();
    let mut c = guard.take().unwrap_or_default();
    let failed = |why: Option<&str>| Outcome::Failed(why.unwrap_or_default().to_owned());
    if let Some((index, started)) = c.open.take() {
        c.cases[index].time = started.elapsed();
        c.cases[index].outcome = failed(failure.or(Some("did not finish")));
    } else if let Some(why) = failure
        && !c
            .cases
            .iter()
            .any(|case| matches!(case.outcome, Outcome::Failed(_)))
    {
        // The command failed outside any check (its arguments, a file it reads first).
        c.cases.push(Case {
            name: command.to_owned(),
            outcome: failed(Some(why)),
            time: Duration::ZERO,
            findings: (0..c.findings.len()).collect(),
            log: std::mem::take(&mut c.log),
        });
    }
    if c.cases.is_empty() {
        c.cases.push(Case {
            name: command.to_owned(),
            outcome: Outcome::Passed,
            time: Duration::ZERO,
            findings: (0..c.findings.len()).collect(),
            log: std::mem::take(&mut c.log),
        });
    }
    Collected {
        command: command.to_owned(),
        findings: c.findings,
        cases: c.cases,
    }
}

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// GitLab Code Quality (JSON).
    CodeQuality,
    /// JUnit XML.
    Junit,
}

/// `--report KIND=FILE`, repeatable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReportArgs {
    /// Write a report when the command ends, also when it fails: `codequality=FILE` (GitLab
    /// Code Quality: every positioned finding) or `junit=FILE` (a testcase per step or check).
    /// Repeatable.
    #[arg(long = "report", value_name = "KIND=FILE", value_parser = parse_request)]
    pub requests: Vec<(Kind, PathBuf)>,
}

fn parse_request(text: &str) -> Result<(Kind, PathBuf), String> {
    let (kind, file) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}`: expected codequality=FILE or junit=FILE"))?;
    let kind = match kind {
        "codequality" => Kind::CodeQuality,
        "junit" => Kind::Junit,
        other => {
            return Err(format!("`{other}`: unknown report (codequality or junit)"));
        }
    };
    if file.is_empty() {
        return Err(format!("`{text}`: the file is missing"));
    }
    Ok((kind, PathBuf::from(file)))
}

impl ReportArgs {
    /// Writes every requested report (atomically) from what was collected.
    ///
    /// # Errors
    /// A report that cannot be written (the others are still written).
    pub fn write(&self, collected: &Collected) -> anyhow::Result<()> {
        let project = project_dir();
        let mut first_error = None;
        for (kind, path) in &self.requests {
            let text = match kind {
                Kind::CodeQuality => codequality::render(collected, &project),
                Kind::Junit => junit::render(collected),
            };
            let written = crate::fsutil::write_atomic(path, text.as_bytes(), None)
                .with_context(|| format!("cannot write the report {}", path.display()));
            if let Err(e) = written {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The project whose files the findings are in: `$CI_PROJECT_DIR` in a GitLab job, else the
/// working directory (canonical when it can be).
pub fn project_dir() -> PathBuf {
    let dir = std::env::var_os("CI_PROJECT_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."));
    dir.canonicalize().unwrap_or(dir)
}

/// `path` (as printed: relative to the working directory, or absolute) relative to `project`,
/// when it is a file inside it.
pub fn relative_to(project: &Path, path: &str) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    let path = Path::new(path);
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    let absolute = absolute.canonicalize().ok()?;
    if !absolute.is_file() {
        return None;
    }
    let relative = absolute.strip_prefix(project).ok()?;
    Some(relative.to_str()?.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn requests_name_a_kind_and_a_file() {
        assert_eq!(
            parse_request("codequality=gl-code-quality.json").unwrap(),
            (Kind::CodeQuality, PathBuf::from("gl-code-quality.json"))
        );
        assert_eq!(
            parse_request("junit=a=b.xml").unwrap(),
            (Kind::Junit, PathBuf::from("a=b.xml"))
        );
        assert!(parse_request("sarif=x").is_err());
        assert!(parse_request("junit=").is_err());
        assert!(parse_request("junit").is_err());
    }

    #[test]
    fn a_finding_prints_like_a_diagnostic() {
        let f = |line, column, level| Finding {
            check: "kstep/render".into(),
            level,
            message: "m".into(),
            path: "a.yaml".into(),
            line,
            column,
        };
        assert_eq!(f(3, 4, Level::Error).line_text(), "a.yaml:3:4: m");
        assert_eq!(f(3, 0, Level::Warning).line_text(), "a.yaml:3: warning: m");
        assert_eq!(f(0, 0, Level::Info).line_text(), "a.yaml: note: m");
    }
}
