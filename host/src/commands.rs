//! One module per `kstep` subcommand (or group of subcommands).

pub mod call;
pub mod dotenv;
pub mod info;
