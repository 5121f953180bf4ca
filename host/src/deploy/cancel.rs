//! Cancellation: SIGTERM (GitLab cancelling a job, a runner stopping) and SIGINT (Ctrl-C)
//! during a cluster operation. The operation's future is dropped, so no new request is sent,
//! and the run ends with the conventional exit code (128 + the signal's number). A deploy
//! with `--rollback-on-failure` first rolls back, within [`GRACE`]: it arms a
//! [`Graceful`] guard so that [`super::session::block_on`] lets it finish.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

/// How long a cancelled deploy with `--rollback-on-failure` may spend rolling back. GitLab
/// Runner gives a cancelled job's processes some seconds after SIGTERM before it kills them;
/// this stays well inside the shortest usual setting.
pub const GRACE: Duration = Duration::from_secs(20);

/// The signal that cancelled the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (a cancelled GitLab job).
    Terminate,
}

impl Signal {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The shell's exit code for a process it ended: 128 + its number.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

/// Resolves when the process receives SIGTERM or SIGINT (never, when they cannot be
/// listened to: the run then ends as the default handlers end it).
pub async fn signalled() -> Signal {
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => Signal::Terminate,
            _ = int.recv() => Signal::Interrupt,
        },
        _ => std::future::pending().await,
    }
}

/// How many operations are rolling back a cancelled run right now.
static GRACEFUL: AtomicUsize = AtomicUsize::new(0);

/// While alive, a signal gives the running operation [`GRACE`] (plus a margin) to finish.
pub struct Graceful(());

impl Graceful {
    /// Arms the grace period.
    pub fn arm() -> Self {
        GRACEFUL.fetch_add(1, Ordering::SeqCst);
        Self(())
    }
}

impl Drop for Graceful {
    fn drop(&mut self) {
        GRACEFUL.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether an operation asked for the grace period.
pub fn graceful() -> bool {
    GRACEFUL.load(Ordering::SeqCst) > 0
}
