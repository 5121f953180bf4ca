//! The Traefik step: rendering a Traefik v3 deployment and migrating Traefik 1.x configuration.
//!
//! Plain-Rust core, unit-tested natively: [`values`] (the YAML values), [`check`] (what the
//! schema cannot say), [`extra_args`] (flags merged into the static file), [`render`] (the
//! Kubernetes manifests), [`migrate`] (Traefik 1.x traefik.toml → v3), [`node`] (the ordered document tree), [`problem`] (diagnostics).
//! `wit` is the thin WIT glue.

pub mod check;
pub mod extra_args;
pub mod migrate;
pub mod node;
pub mod problem;
pub mod render;
pub mod values;

// The WIT glue exists only in the wasm32-wasip2 build; native builds are the core, for tests.
#[cfg(target_arch = "wasm32")]
mod wit;
