//! Why a deploy operation stopped: [`DeployError`], one type for every engine operation, that
//! knows its [`Failure`] class (the exit code) and the lines a report of it shows.
//!
//! The messages are built when the error is (the client error explanations need the
//! connection), so reporting one needs nothing but the error. No message holds a secret.

use std::path::PathBuf;

use super::apply::{self, ApplyError};
use super::applyset::{ApplySetError, Member};
use super::cancel::Signal;
use super::objects::InvalidObject;
use super::revision::RevisionError;
use super::rollout::RolloutError;
use crate::credentials::{Connection, CredentialError};
use crate::failure::Failure;
use crate::runtime::StepError;
use crate::steps::dotenv::EnvFileError;
use crate::steps::manifest::{self, Diagnostic, SourceError};

/// Why a deploy operation stopped.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A manifest file or directory cannot be read.
    #[error(transparent)]
    Sources(#[from] SourceError),
    /// An env file cannot be read or is invalid.
    #[error(transparent)]
    EnvFile(#[from] EnvFileError),
    /// The manifests have errors (each a `FILE:LINE:COL: message` diagnostic).
    #[error("{} error(s) in the manifests", .0.len())]
    Render(Vec<Diagnostic>),
    /// Rendered documents that are not Kubernetes objects.
    #[error("{} document(s) are not Kubernetes objects", .0.len())]
    InvalidObjects(Vec<InvalidObject>),
    /// Nothing to apply.
    #[error("no objects to apply in {0}")]
    NoObjects(String),
    /// No usable kubeconfig.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// The kubeconfig cannot be turned into a client, the I/O runtime cannot start, or
    /// another failure that is not the input's fault.
    #[error("{0}")]
    Runtime(String),
    /// The sandbox failed.
    #[error(transparent)]
    Step(#[from] StepError),
    /// An output file cannot be written as asked (checked before the cluster is touched).
    #[error("{}", lines.join("\n"))]
    Output {
        /// The file.
        path: PathBuf,
        /// `FILE[:LINE:COL]: message` each.
        lines: Vec<String>,
        /// Whether the file's content is at fault (exit 2) rather than the system (exit 1).
        invalid: bool,
    },
    /// Applying failed.
    #[error("{headline}")]
    Apply {
        /// What happened, explained.
        headline: String,
        /// One line per object concerned, then what was applied before the failure.
        details: Vec<String>,
        /// Whether the input is at fault (exit 2: nothing was changed).
        invalid: bool,
    },
    /// A signal cancelled the operation; no request was sent after it.
    #[error("cancelled by {}: no request was sent after it; the objects reported above as created or configured were applied", .signal.name())]
    Cancelled {
        /// The signal.
        signal: Signal,
        /// What the rollback that followed did, when there was one.
        details: Vec<String>,
    },
    /// A plan file cannot be read, or what would be applied is not what it reviewed (`--plan`);
    /// nothing was changed.
    #[error("{headline}")]
    Plan {
        /// What happened.
        headline: String,
        /// One line per object that differs, naming it and why.
        details: Vec<String>,
    },
    /// A rollout failed or timed out, or watching it failed.
    #[error("{headline}")]
    Rollout {
        /// What happened, explained.
        headline: String,
        /// The diagnosis of every workload that did not roll out.
        details: Vec<String>,
        /// Whether the watch itself failed (exit 1) rather than the rollout (exit 3).
        watch_failed: bool,
    },
}

impl DeployError {
    /// The exit class.
    pub fn failure(&self) -> Failure {
        match self {
            DeployError::Sources(_)
            | DeployError::Render(_)
            | DeployError::InvalidObjects(_)
            | DeployError::NoObjects(_)
            | DeployError::Plan { .. } => Failure::Invalid,
            DeployError::EnvFile(EnvFileError::Step(_))
            | DeployError::Step(_)
            | DeployError::Runtime(_) => Failure::Runtime,
            DeployError::EnvFile(_) => Failure::Invalid,
            DeployError::Credentials(e) if e.is_input_error() => Failure::Invalid,
            DeployError::Credentials(_) => Failure::Runtime,
            DeployError::Output { invalid, .. } | DeployError::Apply { invalid, .. } => {
                if *invalid {
                    Failure::Invalid
                } else {
                    Failure::Runtime
                }
            }
            DeployError::Cancelled { signal, .. } => Failure::Cancelled(signal.exit_code()),
            DeployError::Rollout { watch_failed, .. } => {
                if *watch_failed {
                    Failure::Runtime
                } else {
                    Failure::Rollout
                }
            }
        }
    }

    /// The `error: …` headline, when the error has one beside its detail lines (a list of
    /// diagnostics speaks for itself).
    pub fn headline(&self) -> Option<String> {
        match self {
            DeployError::Render(_)
            | DeployError::InvalidObjects(_)
            | DeployError::Output { .. }
            | DeployError::EnvFile(EnvFileError::Invalid { .. }) => None,
            other => Some(chain(other)),
        }
    }

    /// The lines after the headline: one per diagnostic, object or workload.
    pub fn details(&self) -> Vec<String> {
        match self {
            DeployError::Render(diagnostics) => diagnostics
                .iter()
                .map(manifest::format_diagnostic)
                .collect(),
            DeployError::InvalidObjects(invalid) => {
                invalid.iter().map(ToString::to_string).collect()
            }
            DeployError::EnvFile(EnvFileError::Invalid { lines })
            | DeployError::Output { lines, .. } => lines.clone(),
            DeployError::Apply { details, .. }
            | DeployError::Rollout { details, .. }
            | DeployError::Cancelled { details, .. }
            | DeployError::Plan { details, .. } => details.clone(),
            _ => Vec::new(),
        }
    }

    /// An apply failure, explained with what the connection knows (the server, the kind of
    /// credentials), with the objects applied before it.
    pub fn apply(error: &ApplyError, connection: &Connection, default_namespace: &str) -> Self {
        let headline = match error {
            ApplyError::Api(inner) => {
                crate::kube_client::explain(inner, connection, "reading the API's resources")
            }
            other => other.to_string(),
        };
        let mut details = error.details();
        if let ApplyError::Failed { applied, .. } | ApplyError::Rejected { applied, .. } = error
            && !applied.is_empty()
        {
            details.push("applied before the failure:".to_owned());
            details.extend(applied.iter().map(|a| {
                apply::line(a, default_namespace, false)
                    .trim_end()
                    .to_owned()
            }));
        }
        DeployError::Apply {
            headline,
            details,
            invalid: error.is_invalid_input(),
        }
    }

    /// An ApplySet that cannot be used or read, explained.
    pub fn applyset(error: &ApplySetError, connection: &Connection) -> Self {
        let headline = match error {
            ApplySetError::Api { parent, error } => crate::kube_client::explain(
                error,
                connection,
                &format!("reading or recording ApplySet {parent}"),
            ),
            other => other.to_string(),
        };
        DeployError::Apply {
            headline,
            details: Vec::new(),
            invalid: error.is_invalid_input(),
        }
    }

    /// The set's history that cannot be read or written.
    pub fn revision(error: &RevisionError, connection: &Connection) -> Self {
        let (headline, invalid) = match error {
            RevisionError::Api(inner) => (
                crate::kube_client::explain(inner, connection, "reading or recording revisions"),
                false,
            ),
            other => (
                other.to_string(),
                matches!(
                    other,
                    RevisionError::NotFound { .. } | RevisionError::Dropped { .. }
                ),
            ),
        };
        DeployError::Apply {
            headline,
            details: Vec::new(),
            invalid,
        }
    }

    /// This rollout failure, with the outcome of the rollback that followed it among its
    /// details (the exit code stays the rollout's).
    #[must_use]
    pub fn with_rollback(mut self, rollback: Result<u32, DeployError>) -> Self {
        if let DeployError::Rollout { details, .. } | DeployError::Cancelled { details, .. } =
            &mut self
        {
            match rollback {
                Ok(revision) => details.push(format!(
                    "rolled back to revision {revision}: applied and rolled out"
                )),
                Err(e) => {
                    details.push(format!(
                        "the rollback failed too: {}",
                        e.headline().unwrap_or_else(|| e.to_string())
                    ));
                    details.extend(e.details().into_iter().map(|d| format!("  {d}")));
                }
            }
        }
        self
    }

    /// A deletion that failed (`member`), after `deleted`.
    pub fn delete(
        error: &kube::Error,
        member: &Member,
        deleted: &[Member],
        connection: &Connection,
    ) -> Self {
        let mut details = Vec::new();
        if !deleted.is_empty() {
            details.push("deleted before the failure:".to_owned());
            details.extend(deleted.iter().map(|m| format!("  {m}")));
        }
        DeployError::Apply {
            headline: crate::kube_client::explain(error, connection, &format!("deleting {member}")),
            details,
            invalid: false,
        }
    }

    /// A rollout failure, explained.
    pub fn rollout(error: &RolloutError, connection: &Connection) -> Self {
        let (headline, watch_failed) = match error {
            RolloutError::Api(inner) => (
                crate::kube_client::explain(inner, connection, "watching the rollout"),
                true,
            ),
            other => (other.to_string(), false),
        };
        DeployError::Rollout {
            headline,
            details: error.details(),
            watch_failed,
        }
    }
}

/// `error` and its sources, `: `-joined as anyhow's `{:#}` shows them.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}
