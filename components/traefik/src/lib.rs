//! The Traefik step: rendering a Traefik v3 deployment.
//!
//! `render` holds the plain-Rust core; `wit` is the thin WIT glue.

pub mod render;

// The WIT glue exists only in the wasm32-wasip2 build; native builds are the core, for tests.
#[cfg(target_arch = "wasm32")]
mod wit;
