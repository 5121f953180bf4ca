//! kstep: deploy from GitLab CI to Kubernetes with sandboxed WebAssembly steps.
//!
//! - [`runtime`]: component loading and the sandbox policy;
//! - [`output`]: everything the user sees, masked;
//! - [`secrets`]: what is secret, in which forms, and the masker;
//! - [`builtins`] and [`steps`]: the embedded steps and typed calls into them;
//! - [`cli`] and [`commands`]: the command line.

pub mod builtins;
pub mod cli;
pub mod commands;
pub mod credentials;
pub mod deploy;
pub mod fsutil;
pub mod kube;
pub mod output;
pub mod pipeline;
pub mod runtime;
pub mod secrets;
pub mod steps;

/// The wasmtime release kstep embeds (read from Cargo.lock at build time).
pub const WASMTIME_VERSION: &str = env!("KSTEP_WASMTIME_VERSION");
