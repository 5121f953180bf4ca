//! kstep: deploy from GitLab CI to Kubernetes with sandboxed WebAssembly steps.
//!
//! The layers, from the bottom (see `docs/architecture.md`):
//! - [`runtime`]: component loading, the sandbox policy and limits, the compile cache;
//! - [`secrets`]: what is secret, in which forms, and the masker;
//! - [`builtins`] and [`steps`]: the embedded steps and typed calls into them;
//! - [`output`]: every byte the user sees, with secret masking; [`fsutil`]: file reading and
//!   atomic writes;
//! - [`credentials`] (kubeconfig → connection) and [`kube_client`] (connection → kube-rs client);
//! - [`deploy`]: the deploy engine (manifests → objects → apply → rollout), which reports
//!   events and never prints;
//! - [`pipeline`]: `kstep.yaml` runs, whose host actions are deploy engine operations;
//! - [`oci`]: custom steps in OCI registries (push, pull, `kstep.lock`, cosign signatures);
//! - [`failure`]: the exit classes every layer shares; [`units`]: durations and sizes;
//! - [`report`]: findings and checks collected for GitLab's Code Quality and JUnit reports;
//! - [`shell`], [`cli`] and [`commands`]: the command line, thin adapters over the engines.

pub mod builtins;
pub mod cli;
pub mod commands;
pub mod credentials;
pub mod deploy;
pub mod duration;
pub mod failure;
pub mod fsutil;
pub mod kube_client;
pub mod oci;
pub mod output;
pub mod pipeline;
pub mod report;
pub mod runtime;
pub mod secrets;
pub mod shell;
pub mod steps;
pub mod units;

/// The wasmtime release kstep embeds (read from Cargo.lock at build time).
pub const WASMTIME_VERSION: &str = env!("KSTEP_WASMTIME_VERSION");
