//! kstep's integration tests: one binary (it links once), one module per area.
//!
//! Tests that need the real Kubernetes control plane are `#[ignore = "needs a cluster …"]`;
//! `.ci/run` starts the cluster and runs them with `--include-ignored`. Tests that need the test
//! OCI registry (`tests/registry/up.sh`) are ignored the same way.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod adopt;
mod applyset;
mod cluster;
mod deploy;
mod docs;
mod dotenv;
mod e2e;
mod gc;
mod kubeconfig;
mod leak_hunt;
mod pipeline;
mod plan;
mod reapply;
mod registry;
mod render;
mod report;
mod sandbox;
mod secrets;
mod serviceaccount;
mod step_test;
mod support;
mod traefik;
