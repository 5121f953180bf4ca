//! `kstep history --applyset NAME`: the revisions of a set — number, time, CI commit, pipeline
//! and job, images, result — read from their annotations (no object content is fetched); an
//! adapter over [`crate::deploy::revision`].

use super::args::{ReportFormat, SetArgs};
use crate::cli::{CliError, CliResult};
use crate::deploy::DeployError;
use crate::deploy::revision::{History, Info};
use crate::deploy::session::{self, Session};
use crate::output;
use crate::runtime::Runtime;
use crate::shell::Shell;

/// Arguments of `kstep history`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    set: SetArgs,
    /// Lines for people, or one JSON array.
    #[arg(short = 'o', long, value_enum, default_value_t = ReportFormat::Text)]
    output: ReportFormat,
}

/// Runs `kstep history`.
///
/// # Errors
/// Exit 1 when the cluster cannot be read.
pub fn run(args: &Args) -> CliResult {
    let shell = Shell::new(false);
    history(args, &shell).map_err(|e| {
        shell.error(&e);
        CliError::from(e.failure())
    })
}

fn history(args: &Args, shell: &Shell) -> Result<(), DeployError> {
    let runtime = Runtime::new().map_err(|e| DeployError::Runtime(format!("{e:#}")))?;
    let target = args.set.target.target();
    let credentials = session::load_credentials(&runtime, &target, shell)?;
    let set = args.set.applyset(&credentials.connection);
    let revisions = session::block_on(async {
        let session = Session::connect(&credentials, target.request_timeout).await?;
        History::new(session.client(), &set)
            .list()
            .await
            .map_err(|e| DeployError::revision(&e, session.connection()))
    })?;
    match args.output {
        ReportFormat::Json => output::stdout(&format!(
            "{}\n",
            serde_json::to_string(&revisions.iter().map(json).collect::<Vec<_>>())
                .map_err(|e| DeployError::Runtime(e.to_string()))?
        )),
        ReportFormat::Text if revisions.is_empty() => output::stdout(&format!(
            "ApplySet {} in namespace {} has no revisions\n",
            set.parent, set.namespace
        )),
        ReportFormat::Text => output::stdout(&table(&revisions)),
    }
    Ok(())
}

fn json(info: &Info) -> serde_json::Value {
    let mut value = serde_json::to_value(info).unwrap_or_default();
    value["time"] = info.time.clone().into();
    value
}

/// One line per revision, aligned.
fn table(revisions: &[Info]) -> String {
    let dash = || "-".to_owned();
    let rows: Vec<[String; 7]> = revisions
        .iter()
        .map(|i| {
            [
                i.revision.to_string(),
                i.time.clone().unwrap_or_else(dash),
                format!(
                    "{}{}{}",
                    i.result,
                    i.rollback_of
                        .map_or(String::new(), |n| format!(" (rollback to {n})")),
                    if i.objects_dropped {
                        " (objects not kept)"
                    } else {
                        ""
                    }
                ),
                i.commit
                    .as_deref()
                    .map_or_else(dash, |c| c.chars().take(12).collect()),
                i.pipeline.clone().unwrap_or_else(dash),
                i.job.clone().unwrap_or_else(dash),
                if i.images.is_empty() {
                    dash()
                } else {
                    i.images.join(", ")
                },
            ]
        })
        .collect();
    let header = [
        "REVISION", "TIME", "RESULT", "COMMIT", "PIPELINE", "JOB", "IMAGES",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        text.push('\n');
        text
    };
    let mut text = line(header.to_vec());
    for row in &rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}
