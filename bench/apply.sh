#!/usr/bin/env bash
# kstep apply vs kubectl apply on the test cluster, same run, same cluster; and the time from the
# last pod becoming Ready to `kstep apply --wait` exiting. Prints Markdown (paste into
# docs/benchmarks.md).
#
#   . target/test-cluster/env      # or the shared dev cluster's env file
#   bash bench/apply.sh
#
#   KSTEP_BIN       kstep to measure (default: cargo build --release, target/release/kstep)
#   BENCH_RUNS      timed runs per tool, interleaved (default 10)
#   BENCH_WAITS     rollout-latency repetitions (default 5)
#   BENCH_PLAN_ONLY =1: only `kstep plan` vs `kstep apply --dry-run` (BENCH_RUNS runs each)
#
# Every run applies the same 100 objects (20 ConfigMaps, 15 Secrets, 15 ServiceAccounts,
# 15 Services, 20 Deployments, 5 Roles, 5 RoleBindings, 5 Ingresses) into a fresh namespace, so
# every tool creates everything. Needs python3.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=bench/cluster-setup.sh
. bench/cluster-setup.sh
WAITS="${BENCH_WAITS:-5}"
work="$(mktemp -d)"
prefix="kstep-bench-$$"
cleanup() {
  "$KUBECTL" get ns -o name | grep "^namespace/$prefix-" | xargs -r "$KUBECTL" delete --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
export KSTEP_CACHE_DIR="$work/cache"
cut -d' ' -f1 /proc/loadavg > "$work/load-start"
"$KSTEP_BIN" warm >/dev/null

# The 100 objects.
python3 bench/objects.py "$work/objects.yaml"

# A fresh namespace per timed run, its name in $work/ns. The previous run's namespace is deleted
# first and waited for: a shared cluster's fake node holds a limited number of pods, and a
# namespace being torn down keeps the API server and the controllers busy during the next run.
cat > "$work/fresh-ns.sh" <<EOF
#!/usr/bin/env bash
set -e
n=\$(( \$(cat "$work/counter" 2>/dev/null || echo 0) + 1 ))
echo \$n > "$work/counter"
if [[ -s "$work/ns" ]]; then
  "$KUBECTL" delete namespace "\$(cat "$work/ns")" --timeout=120s >/dev/null 2>&1 || true
fi
ns="$prefix-\$n"
"$KUBECTL" create namespace "\$ns" >/dev/null
for _ in \$(seq 100); do
  "$KUBECTL" get serviceaccount default -n "\$ns" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "\$ns" > "$work/ns"
EOF
chmod +x "$work/fresh-ns.sh"

# `kstep plan` vs `kstep apply --dry-run` of the same 100 objects, both against a namespace
# where they are applied already (each reads every live object), interleaved; first round a
# warm-up. Same flags, so the difference is the plan's own work: diffs, digests, its output.
python3 - "$KSTEP_BIN" "$work" "$RUNS" > "$work/plan.json" <<'PY'
import json, statistics, subprocess, sys, time
kstep, work, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
objects = f"{work}/objects.yaml"
subprocess.run([f"{work}/fresh-ns.sh"], check=True)
ns = open(f"{work}/ns").read().strip()
subprocess.run([kstep, "apply", "-f", objects, "-n", ns], check=True, stdout=subprocess.DEVNULL)
tools = {
    "kstep plan": [kstep, "plan", "-f", objects, "-n", ns, "--no-env", "--out", f"{work}/plan-file.json"],
    "kstep apply --dry-run": [kstep, "apply", "-f", objects, "-n", ns, "--dry-run"],
}
times = {name: [] for name in tools}
names = list(tools)
for round in range(runs + 1):
    for name in names[round % 2:] + names[:round % 2]:
        t = time.perf_counter()
        subprocess.run(tools[name], check=True, stdout=subprocess.DEVNULL)
        if round > 0:
            times[name].append(time.perf_counter() - t)
json.dump({n: {"mean": statistics.mean(v), "stddev": statistics.stdev(v), "min": min(v),
               "median": statistics.median(v)} for n, v in times.items()}, sys.stdout)
PY
print_plan() {
python3 - "$work/plan.json" <<'PY'
import json, sys
by = json.load(open(sys.argv[1]))
base = by["kstep apply --dry-run"]
print("| 100 objects, applied already | wall ms (mean ± sd) | median | min | vs `kstep apply --dry-run` (mean / median) |")
print("|---|---|---|---|---|")
for name in ["kstep plan", "kstep apply --dry-run"]:
    r = by[name]
    print(f"| `{name}` | {r['mean']*1e3:.0f} ± {r['stddev']*1e3:.0f} | {r['median']*1e3:.0f} | {r['min']*1e3:.0f} "
          f"| {r['mean'] / base['mean']:.2f}× / {r['median'] / base['median']:.2f}× |")
PY
}
if [[ -n "${BENCH_PLAN_ONLY:-}" ]]; then
  echo "Machine: $(nproc) cores, load average $(cat "$work/load-start") at the start and $(cut -d' ' -f1 /proc/loadavg) at the end; $(date +%F); $RUNS interleaved runs per tool; $KSTEP_BIN"
  echo
  print_plan
  exit 0
fi

# The three tools interleaved, round after round (the order rotates), so that a change of load on
# the machine during the benchmark hits all of them alike; the first round is a warm-up.
python3 - "$KSTEP_BIN" "$KUBECTL" "$work" "$RUNS" > "$work/apply.json" <<'PY'
import json, statistics, subprocess, sys, time
kstep, kubectl, work, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
objects = f"{work}/objects.yaml"
tools = {
    "kstep apply": lambda ns: [kstep, "apply", "-f", objects, "-n", ns],
    "kubectl apply": lambda ns: [kubectl, "apply", "-f", objects, "-n", ns],
    "kubectl apply --server-side": lambda ns: [kubectl, "apply", "--server-side", "-f", objects, "-n", ns],
}
times = {name: [] for name in tools}
names = list(tools)
for round in range(runs + 1):
    order = names[round % 3:] + names[:round % 3]
    for name in order:
        subprocess.run([f"{work}/fresh-ns.sh"], check=True)
        ns = open(f"{work}/ns").read().strip()
        t = time.perf_counter()
        subprocess.run(tools[name](ns), check=True, stdout=subprocess.DEVNULL)
        if round > 0:
            times[name].append(time.perf_counter() - t)
json.dump({n: {"mean": statistics.mean(v), "stddev": statistics.stdev(v), "min": min(v),
               "median": statistics.median(v)} for n, v in times.items()}, sys.stdout)
PY

# Last pod Ready -> kstep exit, and last Deployment available -> kstep exit: kubectl watches
# stamp each pod's Ready transition and each Deployment's completion as they are seen; kstep's
# exit is stamped right after it returns. The first figure includes the controllers' reaction
# (ReplicaSet, then Deployment status); the second is kstep's own latency.
python3 - "$KSTEP_BIN" "$KUBECTL" "$work" "$WAITS" > "$work/latency.txt" <<'PY'
import json, subprocess, sys, threading, time
kstep, kubectl, work, waits = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def watch(ns, kind, store, done):
    p = subprocess.Popen([kubectl, "get", kind, "-n", ns, "--watch", "--output-watch-events", "-o", "json"],
                         stdout=subprocess.PIPE, text=True)
    def read():
        buf, depth = "", 0
        for line in p.stdout:
            buf += line
            depth += line.count("{") - line.count("}")
            if depth == 0 and buf.strip():
                now = time.time()
                o = json.loads(buf)["object"]
                buf = ""
                if done(o):
                    store.setdefault(o["metadata"]["name"], now)
    threading.Thread(target=read, daemon=True).start()
    return p

def pod_ready(o):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in o.get("status", {}).get("conditions", []))

def rolled_out(o):
    s, want = o.get("status", {}), o["spec"].get("replicas", 1)
    return (s.get("observedGeneration", 0) >= o["metadata"].get("generation", 0)
            and s.get("updatedReplicas", 0) == want and s.get("availableReplicas", 0) == want
            and s.get("replicas", 0) == want)

from_pod, from_deployment = [], []
for _ in range(waits):
    subprocess.run([f"{work}/fresh-ns.sh"], check=True)
    ns = open(f"{work}/ns").read().strip()
    ready, available = {}, {}
    watchers = [watch(ns, "pods", ready, pod_ready), watch(ns, "deployments", available, rolled_out)]
    time.sleep(1)  # the watches are established
    r = subprocess.run([kstep, "apply", "-f", f"{work}/objects.yaml", "-n", ns, "--wait", "--timeout", "2m"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    exited = time.time()
    time.sleep(1)
    for w in watchers:
        w.terminate()
    if r.returncode != 0:
        sys.exit(f"kstep apply --wait failed: {r.stderr}")
    if len(ready) < 20 or len(available) < 20:
        sys.exit(f"only {len(ready)} pods seen Ready, {len(available)} Deployments rolled out")
    from_pod.append(exited - max(ready.values()))
    from_deployment.append(exited - max(available.values()))
def stats(xs):
    return "%.0f %.0f %.0f" % (1000 * sum(xs) / len(xs), 1000 * min(xs), 1000 * max(xs))
print(stats(from_pod))
print(stats(from_deployment))
PY

python3 - "$work/apply.json" "$work/latency.txt" "$RUNS" "$WAITS" <<'PY'
import json, subprocess, sys, datetime
results = json.load(open(sys.argv[1]))
pod, deployment = [line.split() for line in open(sys.argv[2]).read().splitlines()]
by = results
client = by["kubectl apply"]["mean"]
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
start = open(sys.argv[1].replace("apply.json", "load-start")).read().strip()
end = open("/proc/loadavg").read().split()[0]
print(f"Machine: {cores} cores, load average {start} at the start and {end} at the end; "
      f"{datetime.date.today()}; {sys.argv[3]} interleaved runs per tool")
print()
median = by["kubectl apply"]["median"]
print("| 100 objects into a fresh namespace | wall ms (mean ± sd) | median | min | vs `kubectl apply` (mean / median) |")
print("|---|---|---|---|---|")
for name in ["kstep apply", "kubectl apply", "kubectl apply --server-side"]:
    r = by[name]
    print(f"| `{name}` | {r['mean']*1e3:.0f} ± {r['stddev']*1e3:.0f} | {r['median']*1e3:.0f} | {r['min']*1e3:.0f} "
          f"| {client / r['mean']:.1f}× / {median / r['median']:.1f}× |")
print()
print(f"`kstep apply --wait` on the same 100 objects (20 Deployments), {sys.argv[4]} runs, ms (mean / min / max):")
print()
print("| from | to kstep's exit |")
print("|---|---|")
print(f"| last pod Ready (includes the ReplicaSet and Deployment controllers' reaction) | {' / '.join(pod)} |")
print(f"| last Deployment rolled out, as a kubectl watch sees it (kstep's own latency, ± the two watches' jitter) | {' / '.join(deployment)} |")
PY
echo
print_plan
