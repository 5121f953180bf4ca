//! The one proptest configuration of the components' property tests (`tests/properties.rs` of
//! each component includes this file with `#[path]`).
//!
//! A plain `cargo test` runs a bounded number of cases from a fixed seed, so CI stays fast and
//! reproducible; `PROPTEST_CASES=N` runs N cases from a random seed (`PROPTEST_RNG_SEED` fixes
//! it to replay a run). docs/testing.md ("Fuzzing") has the command.

use proptest::test_runner::{Config, RngSeed};

/// Seed of the bounded default run.
const SEED: u64 = 0x6b73_7465_7066_757a;

/// Each case must finish within this many milliseconds (the test then runs in a child process
/// that proptest kills when a case hangs); unless `PROPTEST_TIMEOUT` says otherwise.
const TIMEOUT_MS: u32 = 10_000;

/// The configuration of a property test that runs `cases` cases by default.
pub fn config(cases: u32) -> Config {
    // Config::default() reads the PROPTEST_* environment variables.
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
        if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
            config.rng_seed = RngSeed::Fixed(SEED);
        }
    }
    if std::env::var_os("PROPTEST_TIMEOUT").is_none() {
        config.timeout = TIMEOUT_MS;
    }
    // A failure prints the minimal input: it becomes a unit test next to the code it breaks,
    // not a file proptest writes into the source tree.
    config.failure_persistence = None;
    config
}
