#!/usr/bin/env bash
# Re-applying what is already there, kstep against `kubectl apply --server-side`, same run, same
# cluster, interleaved: the 100 objects of bench/objects.py unchanged (plain, and as an ApplySet
# with --prune), and a third-party bundle of large CRDs (each over 256 KiB, several MB in all,
# which client-side `kubectl apply` cannot apply: its last-applied annotation is limited to
# 256 KiB), first apply and unchanged re-apply. Prints Markdown (docs/benchmarks.md).
#
#   . target/test-cluster/env
#   bash bench/lifecycle.sh
#
#   KSTEP_BIN       kstep to measure (default: cargo build --release, target/release/kstep)
#   BENCH_RUNS      timed runs per tool (default 10)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=bench/cluster-setup.sh
. bench/cluster-setup.sh
work="$(mktemp -d)"
prefix="kstep-bench-lc-$$"
cleanup() {
  "$KUBECTL" delete namespace "$prefix-kstep" "$prefix-set" "$prefix-kubectl" --wait=false >/dev/null 2>&1 || true
  "$KUBECTL" delete crd -l "kstep-bench=$prefix" --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
export KSTEP_CACHE_DIR="$work/cache"
cut -d' ' -f1 /proc/loadavg > "$work/load-start"

python3 bench/objects.py "$work/objects.yaml"

# Four CRDs of ~400 KiB each: wide schemas with long descriptions, as large operators ship them.
python3 - "$work/crds.yaml" "$prefix" <<'PY'
import json, sys
out, label = sys.argv[1], sys.argv[2]
docs = []
for c in range(4):
    props = {}
    for p in range(400):
        props[f"field{p}"] = {
            "type": "object",
            "description": f"Field {p} of widget {c}. " + "Operators document every knob at length. " * 18,
            "properties": {f"sub{s}": {"type": "string", "description": "A nested setting. " * 3} for s in range(4)},
        }
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widget{c}s.bench.kstep.dev", "labels": {"kstep-bench": label}},
        "spec": {
            "group": "bench.kstep.dev",
            "names": {"kind": f"Widget{c}", "plural": f"widget{c}s", "singular": f"widget{c}", "listKind": f"Widget{c}List"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": props}}}}}],
        },
    }
    docs.append(json.dumps(crd))
open(out, "w").write("\n---\n".join(docs))
PY

for ns in "$prefix-kstep" "$prefix-set" "$prefix-kubectl"; do "$KUBECTL" create namespace "$ns" >/dev/null; done
for _ in $(seq 100); do "$KUBECTL" get serviceaccount default -n "$prefix-kubectl" >/dev/null 2>&1 && break; sleep 0.1; done

python3 - "$KSTEP_BIN" "$KUBECTL" "$work" "$RUNS" "$prefix" > "$work/results.md" <<'PY'
import os, statistics, subprocess, sys, time, datetime
kstep, kubectl, work, runs, prefix = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
objects, crds = f"{work}/objects.yaml", f"{work}/crds.yaml"

def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

def timed(cmd):
    t = time.perf_counter()
    run(cmd)
    return time.perf_counter() - t

def interleave(tools, before=None):
    times = {name: [] for name in tools}
    names = list(tools)
    for r in range(runs + 1):  # the first round warms up
        for name in names[r % len(names):] + names[:r % len(names)]:
            if before:
                before(name)
            t = timed(tools[name])
            if r > 0:
                times[name].append(t)
    return times

def table(title, times, reference):
    ref = statistics.mean(times[reference])
    lines = [f"| {title} | wall ms (mean ± sd) | median | min | `{reference}` ÷ this (mean) |", "|---|---|---|---|---|"]
    for name, v in times.items():
        lines.append(f"| `{name}` | {statistics.mean(v)*1e3:.0f} ± {statistics.stdev(v)*1e3:.0f} | "
                     f"{statistics.median(v)*1e3:.0f} | {min(v)*1e3:.0f} | {ref / statistics.mean(v):.1f}× |")
    return "\n".join(lines)

ns_kstep, ns_set, ns_kubectl = f"{prefix}-kstep", f"{prefix}-set", f"{prefix}-kubectl"
unchanged = {
    "kstep apply": [kstep, "apply", "-f", objects, "-n", ns_kstep],
    "kstep apply --applyset app --prune": [kstep, "apply", "-f", objects, "-n", ns_set, "--applyset", "app", "--prune"],
    "kubectl apply --server-side": [kubectl, "apply", "--server-side", "-f", objects, "-n", ns_kubectl],
}
for cmd in unchanged.values():
    run(cmd)  # first apply: everything exists afterwards
reapply = interleave(unchanged)

def drop_crds(_name):
    run([kubectl, "delete", "crd", "-l", f"kstep-bench={prefix}", "--wait=true", "--ignore-not-found"])

bundle = {
    "kstep apply": [kstep, "apply", "-f", crds, "--allow-cluster-scoped"],
    "kubectl apply --server-side": [kubectl, "apply", "--server-side", "-f", crds],
}
first = interleave(bundle, before=drop_crds)
again = interleave(bundle)
client = subprocess.run([kubectl, "apply", "-f", crds], capture_output=True, text=True)

size = os.path.getsize(crds)
start = open(f"{work}/load-start").read().strip()
end = open("/proc/loadavg").read().split()[0]
print(f"Machine: {os.cpu_count()} cores, load average {start} at the start and {end} at the end; "
      f"{datetime.date.today()}; {runs} interleaved runs per tool")
print()
print(table("100 unchanged objects, re-applied", reapply, "kubectl apply --server-side"))
print()
print(f"Bundle: 4 CRDs, {size / 1048576:.1f} MiB in all, each over 256 KiB:")
print()
print(table("first apply (CRDs deleted before each run)", first, "kubectl apply --server-side"))
print()
print(table("unchanged re-apply", again, "kubectl apply --server-side"))
print()
print("Client-side `kubectl apply` of the bundle: " + ("succeeded" if client.returncode == 0 else
      "fails: " + (client.stderr.strip().splitlines() or ["?"])[-1][:200]))
PY
cat "$work/results.md"
