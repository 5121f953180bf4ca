//! The deploy engine: everything between rendered manifests and a rolled-out cluster. The
//! command line (`kstep apply`, `deploy`, `serviceaccount create`) and the pipeline's `apply:`
//! and `wait:` are thin adapters over it; it never prints, it reports [`events`].
//!
//! - [`load`]: manifests → rendered documents → [`objects::Object`]s, with every Secret value
//!   registered with the masker;
//! - [`session`]: credentials → client, and the operations: apply, wait, both;
//! - [`job`]: `kstep deploy` as one operation (variables, render, apply, wait, dotenv out);
//! - [`events`]: what the engine reports while it works, and the [`events::Reporter`] trait;
//! - [`error`]: [`error::DeployError`], every way an operation stops, with its exit class;
//! - [`objects`]: what is applied, its identity, its apply phase and the namespace policy;
//!   pure, unit-tested;
//! - [`discovery`]: apiVersion/kind → REST resource and scope, cached for the run;
//! - [`adopt`]: taking over what client-side `kubectl apply` or Helm applied (pure);
//! - [`in_sync`]: whether an apply would change nothing, proven from the live object and its
//!   managedFields (pure), so that an unchanged object costs one read;
//! - [`apply`]: server-side dry-run of every object, then phased, bounded-concurrency
//!   server-side apply with created/configured/unchanged outcomes;
//! - [`applyset`]: ApplySets (KEP-3659), kubectl's inventory: parent, id, member labels,
//!   listing members;
//! - [`cancel`]: SIGTERM/SIGINT during an operation: stop sending, exit 128 + signal;
//! - [`gc`]: finding the ApplySets whose expiry (`--expires-in`) has passed, for `kstep gc`;
//! - [`prune`]: deleting members: pruning what an apply no longer contains, teardown;
//! - [`revision`]: an ApplySet's numbered revisions (what each apply applied), for history
//!   and rollback;
//! - [`rollback`]: re-applying a revision (`kstep rollback`, `--rollback-on-failure`);
//! - [`plan`]: what an apply would change (dry run vs live, Secret values hidden) and plan
//!   files that `--plan` checks before applying;
//! - [`rollout`]: rollout status (pure) and the watch-based wait, with failure diagnosis;
//! - [`serviceaccount`]: the namespace-scoped CI identity bootstrap (ServiceAccount, RoleBinding,
//!   token, kubeconfig, verification);
//! - [`api_error`]: turning API server errors into messages a CI log reader can act on;
//! - [`watch`]: list-then-watch streams and wait-until-condition, instead of polling;
//! - [`log`]: GitLab collapsible sections and the other job-log conventions;
//! - [`stamp`]: GitLab deploy-board and pipeline/job/commit annotations (`--stamp`; pure).

pub mod adopt;
pub mod api_error;
pub mod apply;
pub mod applyset;
pub mod cancel;
pub mod discovery;
pub mod error;
pub mod events;
pub mod gc;
pub mod in_sync;
pub mod job;
pub mod load;
pub mod log;
pub mod objects;
pub mod plan;
pub mod prune;
pub mod revision;
pub mod rollback;
pub mod rollout;
pub mod serviceaccount;
pub mod session;
pub mod stamp;
pub mod watch;

pub use error::DeployError;
pub use events::{Event, Reporter};

/// The field manager kstep applies with by default (server-side apply ownership).
pub const FIELD_MANAGER: &str = "kstep";

/// How many requests kstep keeps in flight at once against the API server.
pub const DEFAULT_CONCURRENCY: usize = 8;
