#!/usr/bin/env bash
# Benchmark of `kstep render` against envsubst and `kubectl set image --local` on the same
# input: 1000 Deployments (~1 MiB), whole process, warm compile cache, release build.
#
#   bench/render.sh [RUNS]          (default 15 runs per tool; prints min and median in ms)
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

# Milliseconds of wall-clock time of "$@", output discarded; exits on failure.
time_ms() {
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null 2>"$WORK/stderr" || { echo "failed: $*" >&2; cat "$WORK/stderr" >&2; exit 1; }
  end=$(date +%s%N)
  echo $(( (end - start) / 1000000 ))
}

bench() {
  local label="$1"; shift
  "$@" >/dev/null 2>&1 || true # warm-up (and the compile cache for kstep)
  local times=()
  for _ in $(seq "$RUNS"); do times+=("$(time_ms "$@")"); done
  local sorted
  sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  printf '%-58s min %4d ms   median %4d ms\n' "$label" "$(head -n1 <<<"$sorted")" "$(sed -n "$(( (RUNS + 1) / 2 ))p" <<<"$sorted")"
}

echo "input: 1000 Deployments, $(wc -c <"$WORK/template.yaml") bytes; $RUNS runs each; $(nproc) CPUs"
bench "kstep render (placeholders, yaml out)" "$KSTEP" render -q -f "$WORK/template.yaml"
bench "kstep render (placeholders + --image, yaml out)" "$KSTEP" render -q -f "$WORK/template.yaml" --image "app=$NEW"
bench "kstep render (placeholders, json out)" "$KSTEP" render -q -o json -f "$WORK/template.yaml"
bench "envsubst < template.yaml" sh -c "envsubst < '$WORK/template.yaml'"
if [[ -n "$KUBECTL" ]]; then
  bench "kubectl set image --local (plain.yaml, yaml out)" "$KUBECTL" set image --local -f "$WORK/plain.yaml" "app=$NEW" -o yaml
else
  echo "kubectl: not found (set KSTEP_KUBECTL), skipped"
fi
