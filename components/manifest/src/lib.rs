//! The manifest step: parsing manifests into documents.
//!
//! `documents` holds the plain-Rust core; `wit` is the thin WIT glue.

pub mod documents;

// The WIT glue exists only in the wasm32-wasip2 build; native builds are the core, for tests.
#[cfg(target_arch = "wasm32")]
mod wit;
