//! The deploy engine behind `kstep apply`, `kstep deploy` and `kstep serviceaccount create`.
//!
//! - [`objects`]: what is applied (a rendered document and where it came from), its identity,
//!   its apply phase and the namespace policy; pure, unit-tested;
//! - [`discovery`]: apiVersion/kind → REST resource and scope, cached for the run;
//! - [`apply`]: server-side dry-run of every object, then phased, bounded-concurrency
//!   server-side apply with created/configured/unchanged outcomes;
//! - [`rollout`]: watch-based rollout wait for Deployments, StatefulSets, DaemonSets and Jobs,
//!   with failure diagnosis (container waiting reasons, warning events);
//! - [`serviceaccount`]: the namespace-scoped CI identity bootstrap (ServiceAccount, RoleBinding,
//!   token, kubeconfig, verification);
//! - [`api_error`]: turning API server errors into messages a CI log reader can act on;
//! - [`watch`]: list-then-watch streams and wait-until-condition, instead of polling;
//! - [`log`]: GitLab collapsible sections and the other job-log conventions.

pub mod api_error;
pub mod apply;
pub mod discovery;
pub mod log;
pub mod objects;
pub mod rollout;
pub mod serviceaccount;
pub mod watch;

/// The field manager kstep applies with (server-side apply ownership).
pub const FIELD_MANAGER: &str = "kstep";

/// How many requests kstep keeps in flight at once against the API server.
pub const DEFAULT_CONCURRENCY: usize = 8;
