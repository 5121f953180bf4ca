//! Typed calls into the built-in steps: one module per WIT world, each a thin layer that turns
//! Rust values into a sandboxed component call (see [`crate::runtime`]).

pub mod custom;
pub mod dotenv;
pub mod kubeconfig;
pub mod manifest;
pub mod traefik;
