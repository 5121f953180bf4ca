//! The manifest step: YAML-aware templating, image overrides and apiVersion upgrades of
//! Kubernetes manifests.
//!
//! The core is plain Rust, unit-tested natively:
//! - [`template`]: the `${VAR}` placeholder language inside one scalar;
//! - [`scalar`]: how plain scalars are typed (as kubectl types them);
//! - [`load`]: YAML/JSON text to document trees, substituting inside scalars only;
//! - [`tree`]: the JSON-shaped tree with source positions; [`locate`]: where a field path
//!   (from an API server's error) is in a source;
//! - [`image`]: image references and `--image` overrides; [`upgrade`]: removed apiVersions;
//! - [`emit`]: YAML output; [`render`]: the whole step, end to end.
//!
//! `wit` is the thin WIT glue, compiled only for wasm32.

pub mod diag;
pub mod emit;
pub mod image;
pub mod load;
pub mod locate;
pub mod render;
pub mod scalar;
pub mod template;
pub mod tree;
pub mod upgrade;

// The WIT glue exists only in the wasm32-wasip2 build; native builds are the core, for tests.
#[cfg(target_arch = "wasm32")]
mod wit;
