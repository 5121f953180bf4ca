#!/usr/bin/env bash
# Runs kstep's main job on an embedded default: the reference workflow's deploy job, offline.
# It installs the one thing a fresh machine lacks (the wasm32-wasip2 target), builds kstep in
# release mode and runs `kstep demo`, which renders the embedded example and prints what would be
# applied. No cluster is needed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rustup target add wasm32-wasip2 >/dev/null
cargo build --release --quiet -p kstep
exec "${CARGO_TARGET_DIR:-target}/release/kstep" demo "$@"
