//! One module per `kstep` subcommand (or group of subcommands).

pub mod apply;
pub mod args;
pub mod call;
pub mod delete;
pub mod demo;
pub mod deploy;
pub mod dotenv;
pub mod gc;
pub mod history;
pub mod info;
pub mod kubeconfig;
pub mod plan;
pub mod render;
pub mod rollback;
pub mod run;
pub mod serviceaccount;
pub mod step;
pub mod step_new;
pub mod step_oci;
pub mod step_test;
pub mod traefik;
