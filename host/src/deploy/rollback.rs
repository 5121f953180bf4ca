//! Rolling an ApplySet back to one of its revisions ([`super::revision`]): the revision's
//! objects are applied again, what they do not contain is pruned, and the rollout is waited
//! for — `kstep rollback`, and `--rollback-on-failure` after a failed rollout.

use super::applyset::ApplySet;
use super::error::DeployError;
use super::events::{Event, Reporter};
use super::load;
use super::objects::Origin;
use super::revision::{self, History};
use super::session::{ApplyOptions, Session, WaitOptions};

impl Session<'_> {
    /// Re-applies revision `to` of `set` (default: the newest that succeeded, older than
    /// `before` when given), prunes what it does not contain, and waits. The rollback is itself
    /// recorded as a new revision. Returns the revision restored.
    ///
    /// # Errors
    /// No such revision or none that succeeded; the apply, prune or wait failing.
    pub async fn rollback(
        &self,
        set: &ApplySet,
        to: Option<u32>,
        before: Option<u32>,
        options: &ApplyOptions,
        wait: WaitOptions,
        reporter: &dyn Reporter,
    ) -> Result<u32, DeployError> {
        let name = format!("{} in namespace {}", set.parent, set.namespace);
        let history = History::new(self.client(), set);
        let revision = match to {
            Some(n) => n,
            None => {
                let list = history
                    .list()
                    .await
                    .map_err(|e| DeployError::revision(&e, self.connection()))?;
                revision::last_good(&list, before)
                    .map(|i| i.revision)
                    .ok_or_else(|| DeployError::Apply {
                        headline: format!(
                            "ApplySet {name} has no earlier revision that succeeded to roll back to"
                        ),
                        details: Vec::new(),
                        invalid: true,
                    })?
            }
        };
        // Read before anything is reported: a revision that is not there changes nothing.
        let (_, values) = history
            .load(revision)
            .await
            .map_err(|e| DeployError::revision(&e, self.connection()))?;
        let source = format!("revision {revision} of ApplySet {}", set.parent);
        let documents = values.into_iter().zip(1..).map(|(value, index)| {
            (
                value,
                Origin {
                    source: source.clone(),
                    index,
                    item: 0,
                    line: 0,
                    column: 0,
                    text: None,
                },
            )
        });
        // Registers the values of its Secrets with the masker, as for any manifest.
        let objects = load::objects(documents, &source)?;
        reporter.report(Event::RollbackStarted {
            set: &name,
            revision,
        });
        let options = ApplyOptions {
            applyset: Some(set.parent.clone()),
            namespace: Some(set.namespace.clone()),
            prune: true,
            rollback_on_failure: false,
            rollback_of: Some(revision),
            ..options.clone()
        };
        let result = Box::pin(self.apply_and_wait(objects, &options, Some(wait), reporter)).await;
        reporter.report(Event::RollbackEnded {
            revision,
            ok: result.is_ok(),
        });
        result.map(|_| revision)
    }
}
