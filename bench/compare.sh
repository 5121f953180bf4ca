#!/usr/bin/env bash
# Two kstep binaries side by side, same run, same machine, same cluster: release binary size,
# process start-up, a warm `dotenv parse`, a cold `kubeconfig show`, and the apply of the 100
# objects of bench/objects.py into fresh namespaces, interleaved. For "no worse than before"
# checks of a change (build the old commit's release binary in a worktree first).
#
#   . target/test-cluster/env
#   bash bench/compare.sh OLD_KSTEP NEW_KSTEP
#
#   BENCH_RUNS      apply runs per binary (default 10)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
old="${1:?usage: bench/compare.sh OLD_KSTEP NEW_KSTEP}"
new="${2:?usage: bench/compare.sh OLD_KSTEP NEW_KSTEP}"
KSTEP_BIN="$new"
# shellcheck source=bench/cluster-setup.sh
. bench/cluster-setup.sh
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
work="$(mktemp -d)"
prefix="kstep-bench-cmp-$$"
cleanup() {
  "$KUBECTL" get ns -o name | grep "^namespace/$prefix-" | xargs -r "$KUBECTL" delete --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
cut -d' ' -f1 /proc/loadavg > "$work/load-start"
python3 bench/objects.py "$work/objects.yaml"
printf 'IMAGE=registry.gitlab.com/group/app:0a1b2c3d-1234-5678\nENVIRONMENT=production\n' > "$work/small.env"
kubeconfig=tests/fixtures/kubeconfigs/kind.yaml

# hyperfine's mean ± sd in ms of each command, one JSON per row.
pair() {
  local name="$1" prepare="$2"; shift 2
  local args=(-N --warmup 3 --runs 30 --export-json "$work/h.json")
  [[ -n "$prepare" ]] && args+=(--prepare "$prepare")
  hyperfine "${args[@]}" "$old $*" "$new $*" >/dev/null 2>&1
  python3 - "$work/h.json" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print(f"| {sys.argv[2]} | {r[0]['mean']*1e3:.1f} ± {r[0]['stddev']*1e3:.1f} | {r[1]['mean']*1e3:.1f} ± {r[1]['stddev']*1e3:.1f} | {r[1]['mean']/r[0]['mean']:.2f}× |")
PY
}

{
  echo "| what | old ms (mean ± sd) | new ms (mean ± sd) | new ÷ old |"
  echo "|---|---|---|---|"
  mib() { python3 -c "import os,sys; print('%.1f' % (os.path.getsize(sys.argv[1]) / 1048576))" "$1"; }
  echo "| release binary, MiB | $(mib "$old") | $(mib "$new") | |"
  export KSTEP_CACHE_DIR="$work/warm"
  "$old" dotenv parse "$work/small.env" >/dev/null; "$new" dotenv parse "$work/small.env" >/dev/null
  pair '`kstep version`' "" version
  pair '`kstep dotenv parse` (2 lines, warm cache)' "" dotenv parse "$work/small.env"
  KSTEP_CACHE_DIR="$work/cold" pair '`kstep kubeconfig show`, cold (empty cache)' "rm -rf $work/cold" kubeconfig show --kubeconfig "$kubeconfig"
} > "$work/startup.md"

python3 - "$old" "$new" "$KUBECTL" "$work" "$RUNS" "$prefix" > "$work/apply.md" <<'PY'
import statistics, subprocess, sys, time
old, new, kubectl, work, runs, prefix = sys.argv[1:7]
runs = int(runs)
times = {"old": [], "new": []}
n = 0
previous = None
for r in range(runs + 1):
    for name in (["old", "new"] if r % 2 == 0 else ["new", "old"]):
        if previous:
            subprocess.run([kubectl, "delete", "namespace", previous, "--timeout=120s"], capture_output=True)
        n += 1
        ns = f"{prefix}-{n}"
        subprocess.run([kubectl, "create", "namespace", ns], check=True, capture_output=True)
        for _ in range(100):
            if subprocess.run([kubectl, "get", "serviceaccount", "default", "-n", ns], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        binary = old if name == "old" else new
        t = time.perf_counter()
        subprocess.run([binary, "apply", "-f", f"{work}/objects.yaml", "-n", ns], check=True, capture_output=True)
        if r > 0:
            times[name].append(time.perf_counter() - t)
        previous = ns
o, w = statistics.mean(times["old"]), statistics.mean(times["new"])
print(f"| `kstep apply`, 100 objects into a fresh namespace ({runs} runs each, interleaved) | "
      f"{o*1e3:.0f} ± {statistics.stdev(times['old'])*1e3:.0f} | {w*1e3:.0f} ± {statistics.stdev(times['new'])*1e3:.0f} | {w/o:.2f}× |")
PY
echo "Machine: $(nproc) cores, load average $(cat "$work/load-start") at the start and $(cut -d' ' -f1 /proc/loadavg) at the end; $(date +%F)"
echo
cat "$work/startup.md" "$work/apply.md"
