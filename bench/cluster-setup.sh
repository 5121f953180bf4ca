# Sourced by the cluster benchmarks (bench/apply.sh, bench/lifecycle.sh): the test cluster's
# environment, the kubectl built for it, and the kstep to measure (KSTEP_BIN, default a release
# build of this checkout).
: "${KUBECONFIG:?source the cluster env file first (tests/cluster/README.md)}"
KUBECTL="${KSTEP_KUBECTL:?source the cluster env file first}"
if [[ -z "${KSTEP_BIN:-}" ]]; then
  cargo build --release --quiet -p kstep
  KSTEP_BIN="$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)/kstep"
fi
RUNS="${BENCH_RUNS:-10}"
