#!/usr/bin/env bash
# Benchmark of `kstep render` against envsubst and `kubectl set image --local` on the same
# input: 1000 Deployments (~1 MiB), whole process, warm compile cache, release build.
#
#   bench/render.sh [RUNS]   (default 15 runs per tool: wall-clock min and median, CPU median)
#
# Needs: target/release/kstep (cargo build --release -p kstep), envsubst (gettext-base).
# kubectl: $KSTEP_KUBECTL, else the one tests/cluster/build.sh builds, else `kubectl` on PATH;
# skipped when none is found.
set -euo pipefail

RUNS="${1:-15}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
KSTEP="${KSTEP:-$ROOT/target/release/kstep}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export KSTEP_CACHE_DIR="$WORK/cache"

KUBECTL="${KSTEP_KUBECTL:-}"
if [[ -z "$KUBECTL" ]]; then
  KUBECTL="$(ls -d "${KSTEP_TESTBIN:-$HOME/.cache/kstep-testbin}"/etcd-*/bin/kubectl 2>/dev/null | head -n1 || true)"
fi
if [[ -z "$KUBECTL" ]] && command -v kubectl >/dev/null; then KUBECTL="$(command -v kubectl)"; fi

# template.yaml: placeholders for kstep and envsubst; plain.yaml: the same documents with the
# values in place, for kubectl (which does not template).
python3 - "$WORK" <<'PY'
import sys
work = sys.argv[1]
doc = """---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{n}
  namespace: {ns}
  labels:
    app: app-{n}
    team: platform
    version: "{version}"
  annotations:
    description: "Deployment number {n} of the benchmark, rendered by kstep, envsubst and kubectl"
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: app-{n}
  template:
    metadata:
      labels:
        app: app-{n}
    spec:
      containers:
      - name: app
        image: {image}
        ports:
        - containerPort: 8080
          name: http
        env:
        - name: LOG_LEVEL
          value: info
        - name: GREETING
          value: "Hello from app-{n}"
        resources:
          requests: {{cpu: 100m, memory: 128Mi}}
          limits: {{cpu: 500m, memory: 256Mi}}
        readinessProbe:
          httpGet: {{path: /healthz, port: http}}
          periodSeconds: 5
"""
with open(f"{work}/template.yaml", "w") as t, open(f"{work}/plain.yaml", "w") as p:
    for n in range(1000):
        t.write(doc.format(n=n, ns="${NAMESPACE}", version="${VERSION}", replicas="${REPLICAS}", image="${IMAGE}"))
        p.write(doc.format(n=n, ns="prod", version="1.10", replicas="3", image="registry.local:5000/team/app:1.0"))
PY
export NAMESPACE=prod VERSION=1.10 REPLICAS=3 IMAGE=registry.local:5000/team/app:1.0
NEW=registry.local:5000/team/app:2.0

# Wall-clock and CPU (user+sys) time of each run, from Python's resource accounting: on a
# shared machine the CPU time is the steadier figure.
bench() {
  local label="$1"; shift
  python3 - "$RUNS" "$label" "$@" <<'PY'
import resource, statistics, subprocess, sys, time
runs, label, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
def once():
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"failed: {cmd}\n{done.stderr.decode()}")
    return wall * 1000, (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
once()  # warm-up (and the compile cache for kstep)
walls, cpus = zip(*(once() for _ in range(runs)))
print(f"{label:<50} wall min {min(walls):5.0f} ms  median {statistics.median(walls):5.0f} ms   cpu median {statistics.median(cpus):5.0f} ms")
PY
}

echo "input: 1000 Deployments, $(wc -c <"$WORK/template.yaml") bytes; $RUNS runs each; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
bench "kstep render (placeholders, yaml out)" "$KSTEP" render -q -f "$WORK/template.yaml"
bench "kstep render (placeholders + --image, yaml out)" "$KSTEP" render -q -f "$WORK/template.yaml" --image "app=$NEW"
bench "kstep render (placeholders, json out)" "$KSTEP" render -q -o json -f "$WORK/template.yaml"
bench "envsubst < template.yaml" sh -c "envsubst < '$WORK/template.yaml'"
if [[ -n "$KUBECTL" ]]; then
  bench "kubectl set image --local (plain.yaml, yaml out)" "$KUBECTL" set image --local -f "$WORK/plain.yaml" "app=$NEW" -o yaml
else
  echo "kubectl: not found (set KSTEP_KUBECTL), skipped"
fi
