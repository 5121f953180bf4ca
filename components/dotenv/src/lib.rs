//! The dotenv step: GitLab-exact parsing of dotenv artifacts.
//!
//! `gitlab` holds the plain-Rust core (unit-tested natively); `wit` is the thin
//! WIT glue that exports it as the `kstep:steps/dotenv` interface.

pub mod gitlab;

// The WIT glue exists only in the wasm32-wasip2 build; native builds are the core, for tests.
#[cfg(target_arch = "wasm32")]
mod wit;
