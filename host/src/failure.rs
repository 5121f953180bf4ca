//! Why a run failed, as the one classification that the engines (deploy, pipeline) and the
//! command line share: each class is one exit code, and the mapping lives here only.

/// The class of a failure; the exit code follows from it ([`Failure::exit_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Something broke: a sandbox limit, a cluster that cannot be reached, refused credentials
    /// (exit 1).
    Runtime,
    /// The input is wrong: arguments, files, manifests, a step's findings; nothing was changed
    /// (exit 2).
    Invalid,
    /// A rollout failed or timed out (exit 3).
    Rollout,
    /// A signal cancelled the run (exit 128 + its number: 130 for SIGINT, 143 for SIGTERM).
    Cancelled(u8),
    /// `kstep plan --exit-code` found changes: not a failure of the run, a signal for scripts
    /// (exit 4), kept apart from errors (`kubectl diff`'s exit 1 means both).
    Changes,
}

impl Failure {
    /// The process exit code of this class.
    pub fn exit_code(self) -> u8 {
        match self {
            Failure::Runtime => 1,
            Failure::Invalid => 2,
            Failure::Rollout => 3,
            Failure::Cancelled(code) => code,
            Failure::Changes => 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(Failure::Runtime.exit_code(), 1);
        assert_eq!(Failure::Invalid.exit_code(), 2);
        assert_eq!(Failure::Rollout.exit_code(), 3);
        assert_eq!(Failure::Cancelled(143).exit_code(), 143);
        assert_eq!(Failure::Changes.exit_code(), 4);
    }
}
