#!/usr/bin/env bash
# Whole-process figures for kstep, side by side with the tools users would otherwise run, in the
# same run on the same machine. Prints a Markdown table (paste into docs/benchmarks.md).
#
#   bench/run.sh            release build, warm and cold runs, binary size, kubectl for reference
#
# Needs hyperfine and GNU time (apt-get install hyperfine time). kubectl comes from the test
# cluster build (tests/cluster/build.sh) when present.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
[[ -x /usr/bin/time ]] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }

rustup target add wasm32-wasip2 >/dev/null
cargo build --release --quiet -p kstep
target="${CARGO_TARGET_DIR:-target}"
KSTEP="$(cd "$target/release" && pwd)/kstep"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export KSTEP_CACHE_DIR="$work/cache"
KUBECTL="${KSTEP_KUBECTL:-$(ls -d "${KSTEP_TESTBIN:-$HOME/.cache/kstep-testbin}"/*/bin/kubectl 2>/dev/null | head -1 || true)}"

printf 'IMAGE=registry.gitlab.com/group/app:0a1b2c3d-1234-5678\nENVIRONMENT=production\n' > "$work/small.env"

# Peak RSS in MiB of one run of "$@".
rss() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1 | awk '{printf "%.1f", $1/1024}'; }
# Mean wall time in ms over hyperfine runs (extra hyperfine options before `--`).
wall() {
  local opts=()
  while [[ $# -gt 0 && "$1" != -- ]]; do opts+=("$1"); shift; done
  [[ "${1:-}" == -- ]] && shift
  hyperfine -N --warmup 5 --runs 50 "${opts[@]}" --export-json "$work/h.json" "$*" >/dev/null 2>&1 \
    && python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.1f ± %.1f" % (r["mean"]*1e3, r["stddev"]*1e3))' "$work/h.json"
}
# The same with an empty compile cache before every run (`cold`).
cold() { KSTEP_CACHE_DIR="$work/cold" wall --prepare "rm -rf $work/cold" -- "$@"; }

kubeconfig=tests/fixtures/kubeconfigs/kind.yaml
rows=()
rows+=("| \`kstep version\` | $(wall "$KSTEP" version) | $(rss "$KSTEP" version) |")
if "$KSTEP" dotenv parse "$work/small.env" >/dev/null 2>&1; then
  rows+=("| \`kstep dotenv parse\` (2 lines, warm cache) | $(wall "$KSTEP" dotenv parse "$work/small.env") | $(rss "$KSTEP" dotenv parse "$work/small.env") |")
  rows+=("| \`kstep dotenv parse\`, cold (empty compile cache) | $(cold "$KSTEP" dotenv parse "$work/small.env") | |")
fi
# The built-in steps are precompiled into the binary: an empty cache costs nothing.
"$KSTEP" kubeconfig show --kubeconfig "$kubeconfig" >/dev/null
rows+=("| \`kstep kubeconfig show\` (warm cache) | $(wall "$KSTEP" kubeconfig show --kubeconfig "$kubeconfig") | $(rss "$KSTEP" kubeconfig show --kubeconfig "$kubeconfig") |")
rows+=("| \`kstep kubeconfig show\`, cold (empty compile cache) | $(cold "$KSTEP" kubeconfig show --kubeconfig "$kubeconfig") | |")
if [[ -x "$KUBECTL" ]]; then
  rows+=("| \`kubectl version --client\` (reference) | $(wall "$KUBECTL" version --client) | $(rss "$KUBECTL" version --client) |")
fi
size=$(stat -c %s "$KSTEP")

echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(date -u +%Y-%m-%d)"
echo
echo "| command | wall ms (mean ± sd) | peak RSS MiB |"
echo "|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "Release binary: $((size / 1024 / 1024)) MiB ($size bytes, stripped)"
