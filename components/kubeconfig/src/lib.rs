//! The kubeconfig step: decoding, checking, rendering and encoding kubeconfigs.
//!
//! Pure functions over bytes the host hands in: the component holds credential material only
//! for the duration of a call and has no capability to send it anywhere but back to the host.
//!
//! - [`input`]: what an input is (base64 one-line or wrapped, YAML, JSON), base64 with positions;
//! - [`model`]: the kubeconfig file format, parsed with positions;
//! - [`decode`]: merging inputs, selecting the context, checks and warnings;
//! - [`pem`]: checking certificate and key data, CA fingerprints;
//! - [`render`]: the minimal kubeconfig of one connection;
//! - [`masked`]: GitLab's masked-variable rules and the one-line encoding;
//! - [`connection`]: the result types; `wit` is the thin WIT glue.

pub mod connection;
pub mod decode;
pub mod input;
pub mod masked;
pub mod model;
pub mod pem;
pub mod render;

// The WIT glue exists only in the wasm32-wasip2 build; native builds are the core, for tests.
#[cfg(target_arch = "wasm32")]
mod wit;
