//! Deleting the members of an ApplySet ([`super::applyset`]): pruning what an apply no longer
//! contains ([`Session::prune`]) and tearing a whole set down ([`Session::teardown`]).
//!
//! Both list what they will delete before the first deletion, delete in the reverse of the
//! apply order, stay inside the namespace policy (members elsewhere are named and left), and
//! only ever touch objects that carry the set's `part-of` label, with the uid they were listed
//! with.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use kube::discovery::{ApiResource, Scope};

use super::apply::Applied;
use super::applyset::{self, ApplySet, Inventory, Member};
use super::error::DeployError;
use super::events::{DeleteReason, Event, Reporter};
use super::objects::NamespacePolicy;
use super::session::Session;

/// How often `kstep delete --wait` looks whether the deleted objects are gone.
const GONE_POLL: Duration = Duration::from_millis(250);

/// What [`Session::teardown`] found.
#[derive(Debug)]
pub enum Teardown {
    /// The set's parent does not exist: nothing to delete.
    NoSuchSet,
    /// The members (and the parent) were deleted.
    Deleted(Vec<Member>),
}

impl Session<'_> {
    /// After an apply of `applied` to `set` (whose parent recorded `before`): deletes the
    /// members the apply no longer contains, then records the applied set as the parent's
    /// inventory. With `dry_run`, lists what would be deleted and changes nothing.
    ///
    /// # Errors
    /// A failed listing or deletion (the parent then keeps the wider inventory, so that the
    /// next prune finds what is left).
    pub async fn prune(
        &self,
        set: &ApplySet,
        before: &Inventory,
        applied: &[Applied],
        policy: &NamespacePolicy,
        dry_run: bool,
        reporter: &dyn Reporter,
    ) -> Result<(), DeployError> {
        let (stale, outside) = self.stale_members(set, before, applied, policy).await?;
        for member in &outside {
            reporter.report(Event::Warning(&format!(
                "not pruned: {member} is outside the namespace policy (allow its namespace, or \
                 cluster-scoped objects, to prune it)"
            )));
        }
        self.delete_members(set, stale, DeleteReason::Prune, dry_run, reporter)
            .await?;
        if !dry_run {
            // What is left outside the policy stays recorded, so that it is not orphaned.
            let now = Inventory::of(applied.iter().map(|a| &a.object), &set.namespace);
            let kept = Inventory::of_members(&outside, &set.namespace);
            set.record(self.client(), &now.union(&kept), false)
                .await
                .map_err(|e| DeployError::applyset(&e, self.connection()))?;
        }
        Ok(())
    }

    /// The members of `set` (whose parent recorded `before`) that `applied` no longer
    /// contains: those the namespace policy lets this run delete, and the others.
    ///
    /// # Errors
    /// A failed listing.
    pub async fn stale_members(
        &self,
        set: &ApplySet,
        before: &Inventory,
        applied: &[Applied],
        policy: &NamespacePolicy,
    ) -> Result<(Vec<Member>, Vec<Member>), DeployError> {
        let now = Inventory::of(applied.iter().map(|a| &a.object), &set.namespace);
        let known: Vec<(ApiResource, Scope)> = applied
            .iter()
            .map(|a| {
                let scope = if a.object.target_namespace().is_some() {
                    Scope::Namespaced
                } else {
                    Scope::Cluster
                };
                (a.resource.clone(), scope)
            })
            .collect();
        let members = set
            .members(self.client(), &before.union(&now), &known)
            .await
            .map_err(|e| DeployError::applyset(&e, self.connection()))?;
        let keep: HashSet<&str> = applied
            .iter()
            .filter_map(|a| a.result.metadata.uid.as_deref())
            .collect();
        let stale: Vec<Member> = members
            .into_iter()
            .filter(|m| !keep.contains(m.uid.as_str()))
            .collect();
        let (stale, outside) = applyset::within_policy(stale, policy);
        Ok((applyset::deletion_order(stale), outside))
    }

    /// Deletes every member of `set` and then its parent; with `wait`, returns once they are
    /// gone (finalizers included) or fails after that long. A set that does not exist is
    /// [`Teardown::NoSuchSet`], not an error: stop jobs are retried.
    ///
    /// # Errors
    /// Another tool's set, members outside the namespace policy (nothing deleted), a failed
    /// request, objects still there after `wait`.
    pub async fn teardown(
        &self,
        set: &ApplySet,
        policy: &NamespacePolicy,
        wait: Option<Duration>,
        dry_run: bool,
        reporter: &dyn Reporter,
    ) -> Result<Teardown, DeployError> {
        let inventory = set
            .fetch(self.client())
            .await
            .map_err(|e| DeployError::applyset(&e, self.connection()))?;
        let Some(inventory) = inventory else {
            return Ok(Teardown::NoSuchSet);
        };
        let members = set
            .members(self.client(), &inventory, &[])
            .await
            .map_err(|e| DeployError::applyset(&e, self.connection()))?;
        let (members, outside) = applyset::within_policy(members, policy);
        if !outside.is_empty() {
            return Err(DeployError::Apply {
                headline: format!(
                    "{} member(s) of the set are outside the namespace policy; nothing was \
                     deleted (pass --allow-namespace NS or --allow-cluster-scoped to delete them)",
                    outside.len()
                ),
                details: outside.iter().map(|m| format!("  {m}")).collect(),
                invalid: true,
            });
        }
        let members = self
            .delete_members(set, members, DeleteReason::Teardown, dry_run, reporter)
            .await?;
        if dry_run {
            return Ok(Teardown::Deleted(members));
        }
        set.delete_parent(self.client())
            .await
            .map_err(|e| DeployError::applyset(&e, self.connection()))?;
        if let Some(timeout) = wait {
            self.wait_gone(&members, timeout).await?;
        }
        Ok(Teardown::Deleted(members))
    }

    /// Lists `members` (in deletion order), then deletes them one by one.
    async fn delete_members(
        &self,
        set: &ApplySet,
        members: Vec<Member>,
        reason: DeleteReason,
        dry_run: bool,
        reporter: &dyn Reporter,
    ) -> Result<Vec<Member>, DeployError> {
        let members = applyset::deletion_order(members);
        if members.is_empty() && reason == DeleteReason::Prune {
            return Ok(members);
        }
        let name = format!("{} in namespace {}", set.parent, set.namespace);
        reporter.report(Event::DeleteStarted {
            set: &name,
            members: &members,
            reason,
            dry_run,
        });
        for (i, member) in members.iter().enumerate() {
            if let Err(e) = applyset::delete(self.client(), member, dry_run).await {
                reporter.report(Event::DeleteEnded {
                    deleted: None,
                    dry_run,
                });
                return Err(DeployError::delete(
                    &e,
                    member,
                    &members[..i],
                    self.connection(),
                ));
            }
            reporter.report(Event::Deleted { member, dry_run });
        }
        reporter.report(Event::DeleteEnded {
            deleted: Some(members.len()),
            dry_run,
        });
        Ok(members)
    }

    /// Waits until none of `members` exists any more.
    async fn wait_gone(&self, members: &[Member], timeout: Duration) -> Result<(), DeployError> {
        let started = Instant::now();
        let mut left: Vec<&Member> = members.iter().collect();
        while !left.is_empty() {
            let mut still = Vec::new();
            for member in left {
                match applyset::exists(self.client(), member).await {
                    Ok(false) => {}
                    Ok(true) => still.push(member),
                    Err(e) => {
                        return Err(DeployError::Runtime(crate::kube_client::explain(
                            &e,
                            self.connection(),
                            &format!("waiting for {member} to be gone"),
                        )));
                    }
                }
            }
            left = still;
            if left.is_empty() {
                break;
            }
            if started.elapsed() >= timeout {
                return Err(DeployError::Apply {
                    headline: format!(
                        "{} object(s) still exist after {}s (finalizers not done?)",
                        left.len(),
                        timeout.as_secs()
                    ),
                    details: left.iter().map(|m| format!("  {m}")).collect(),
                    invalid: false,
                });
            }
            tokio::time::sleep(GONE_POLL).await;
        }
        Ok(())
    }
}
