#!/usr/bin/env bash
# Starts a single-node Kubernetes control plane on 127.0.0.1 for kstep's
# cluster tests: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok (one fake Node, fake kubelets), on free ports, with
# a PKI of its own. Returns once the cluster is really usable.
#
# Writes (relative to the repository root):
#   target/test-cluster/admin.kubeconfig   cluster-admin (O=system:masters)
#   target/test-cluster/env                `source` it: KUBECONFIG and friends
#   target/test-cluster/pids               what down.sh stops
#   target/test-cluster/logs/<component>.log
#
# Stop it with tests/cluster/down.sh. See tests/cluster/README.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
STATE="$REPO_ROOT/target/test-cluster"
LOGS="$STATE/logs"
PKI="$STATE/pki"
WAIT_SECONDS="${KSTEP_CLUSTER_WAIT_SECONDS:-120}"
NODE_NAME="kwok-node-0"
SERVICE_CIDR="10.96.0.0/16"
SERVICE_IP="10.96.0.1" # first address of SERVICE_CIDR: the `kubernetes` Service
# Fake pod IPs handed out by kwok. Nothing listens there; never connect to them.
POD_CIDR="10.244.0.0/16"

log() { printf '[up.sh] %s\n' "$*" >&2; }
# shellcheck source=../procs.sh
source "$HERE/../procs.sh"

t_start=$(date +%s.%N)

# A cluster recorded by an earlier run is stopped first.
if [[ -e "$STATE/pids" || -e "$STATE/network" ]]; then
  log "stopping the cluster recorded in $STATE"
  "$HERE/down.sh"
fi

BIN="${KSTEP_TESTBIN_BIN:-}"
if [[ -z "$BIN" ]]; then
  BIN="$("$HERE/build.sh" | tail -n 1)"
fi
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do
  [[ -x "$BIN/$b" ]] || { log "ERROR: $BIN/$b missing (run tests/cluster/build.sh)"; exit 1; }
done
STAGES="$(dirname "$BIN")/kwok-stages"
[[ -d "$STAGES" ]] || { log "ERROR: $STAGES missing (run tests/cluster/build.sh)"; exit 1; }

rm -rf "$STATE"
mkdir -p "$LOGS" "$PKI"
mkdir -m 700 "$STATE/etcd"
chmod 700 "$STATE"
: >"$STATE/pids"

# Components talk to each other on 127.0.0.1 only; keep any proxy out of it.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"

t_build_done=$(date +%s.%N)

# ---------------------------------------------------------------- failure path
# On any failure: show what happened, stop what was started, keep the logs.
started_ok=0
on_exit() {
  local rc=$?
  if [[ $started_ok == 0 ]]; then
    log "FAILED (exit $rc); stopping what was started, logs kept in $LOGS"
    KSTEP_KEEP_LOGS=1 "$HERE/down.sh" || true
  fi
}
trap on_exit EXIT

tail_logs() {
  local c
  for c in "$@"; do
    [[ -f "$LOGS/$c.log" ]] || continue
    printf '\n----- last 40 lines of %s -----\n' "$LOGS/$c.log" >&2
    tail -n 40 "$LOGS/$c.log" >&2
  done
}

die() {
  log "ERROR: $1"
  shift
  tail_logs "$@"
  exit 1
}

# Every recorded component must still be running.
check_alive() {
  local name pid
  while read -r name pid _; do
    if ! kill -0 "$pid" 2>/dev/null; then
      die "$name (pid $pid) exited" "$name"
    fi
  done <"$STATE/pids"
}

# wait_for DESCRIPTION "COMPONENTS TO SHOW ON TIMEOUT" COMMAND...
wait_for() {
  local what="$1" show="$2"; shift 2
  local deadline=$((SECONDS + WAIT_SECONDS))
  until "$@" >/dev/null 2>&1; do
    check_alive
    if ((SECONDS >= deadline)); then
      # shellcheck disable=SC2086
      die "timed out after ${WAIT_SECONDS}s waiting for $what" $show
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------- ports
# Random free ports below the ephemeral range, so an outgoing connection
# cannot take one between this check and the bind.
read -r ETCD_PORT ETCD_PEER_PORT API_PORT KCM_PORT SCHED_PORT KWOK_PORT < <(free_ports 6)
echo "etcd=$ETCD_PORT etcd-peer=$ETCD_PEER_PORT apiserver=$API_PORT kube-controller-manager=$KCM_PORT kube-scheduler=$SCHED_PORT kwok=$KWOK_PORT" >"$STATE/ports"

# ---------------------------------------------------------------- advertise address
# kube-apiserver needs an advertise address that is not loopback: it becomes
# the endpoint of the `kubernetes` Service. Nothing connects to it (there is
# no kube-proxy, and tests must not), but should anything try, the packets
# must stay on this host: so each cluster claims a network device of its own,
# kstep<N>, holding <prefix>.<N+1>/32 from a documentation range. Creating
# the device is the claim (it fails if another cluster on this host holds
# kstep<N>), so clusters of several checkouts can run side by side.
# (kube-apiserver only looks for a default route when it has to guess its
# advertise address; given one, it starts without any default route.)
#   $STATE/network records what this script added, for down.sh.
NET_PREFIXES="${KSTEP_ADVERTISE_PREFIXES:-198.51.100 203.0.113 192.0.2}"

# usable_prefix P: no address of the host (other than those of kstep<N>
# devices) and no route of the host (other than a default route) falls into
# P.0/24; e.g. the host's own gateway must not.
usable_prefix() {
  ! ip -4 -o addr show | grep -Ev '^[0-9]+: +kstep[0-9]+ ' | grep -q "inet $1\." &&
    ! ip -4 route show match "$1.1" | grep -qv '^default'
}

setup_network() {
  local prefix n dev
  : >"$STATE/network"
  for prefix in $NET_PREFIXES; do
    usable_prefix "$prefix" || continue
    for n in $(seq 0 63); do
      dev="kstep$n"
      ip link show "$dev" >/dev/null 2>&1 && continue
      # A dummy device if the kernel has them; else a bridge without ports,
      # which behaves the same for this purpose.
      if ip link add "$dev" type dummy 2>/dev/null; then
        echo "link $dev dummy" >>"$STATE/network"
      elif ip link add "$dev" type bridge 2>/dev/null; then
        echo "link $dev bridge" >>"$STATE/network"
      else
        continue
      fi
      ADVERTISE_ADDRESS="$prefix.$((n + 1))"
      ip addr add "$ADVERTISE_ADDRESS/32" dev "$dev"
      ip link set "$dev" up
      return 0
    done
  done
  die "could not create a network device kstep<N> for the advertise address (needs root or CAP_NET_ADMIN)"
}
setup_network

# ---------------------------------------------------------------- PKI
cat >"$PKI/openssl.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local, IP:$SERVICE_IP
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

ossl() { openssl "$@" 2>>"$LOGS/openssl.log"; }
serial() { echo "0x$(openssl rand -hex 12)"; }

# new_cert NAME SUBJECT EXTENSION-SECTION
new_cert() {
  ossl genrsa -out "$PKI/$1.key" 2048
  ossl req -new -config "$PKI/openssl.cnf" -key "$PKI/$1.key" -subj "$2" -out "$PKI/$1.csr"
  ossl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -set_serial "$(serial)" \
    -days 30 -sha256 -extfile "$PKI/openssl.cnf" -extensions "$3" -out "$PKI/$1.crt"
  rm -f "$PKI/$1.csr"
}

ossl genrsa -out "$PKI/ca.key" 2048
ossl req -x509 -new -config "$PKI/openssl.cnf" -key "$PKI/ca.key" -subj "/CN=kstep-test-ca" \
  -days 30 -sha256 -extensions ca -set_serial "$(serial)" -out "$PKI/ca.crt"
new_cert apiserver "/CN=kube-apiserver" server
new_cert admin "/O=system:masters/CN=kstep-admin" client
new_cert kwok "/CN=kwok-node-0" server
# ServiceAccount token signing key pair.
ossl genrsa -out "$PKI/sa.key" 2048
ossl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
chmod 600 "$PKI"/*.key

b64() { base64 -w0 <"$1"; }
KUBECONFIG_PATH="$STATE/admin.kubeconfig"
cat >"$KUBECONFIG_PATH" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kstep-test
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: kstep-admin
  user:
    client-certificate-data: $(b64 "$PKI/admin.crt")
    client-key-data: $(b64 "$PKI/admin.key")
contexts:
- name: kstep-test
  context:
    cluster: kstep-test
    user: kstep-admin
    namespace: default
current-context: kstep-test
EOF
chmod 600 "$KUBECONFIG_PATH"

# ---------------------------------------------------------------- kwok config
# Upstream stages from kwok's module, plus kstep's failure stages. The pods
# those handle are excluded from upstream pod-ready.
KWOK_FAILURE_EXCLUSION='    - key: '"'"'[.spec.containers[]?.image, .spec.initContainers[]?.image | strings | contains("does-not-exist") or contains("crashloop")] | any'"'"'
      operator: '"'"'NotIn'"'"'
      values:
      - '"'"'true'"'"''
{
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    [[ -f "$STAGES/$f" ]] || die "kwok stage $STAGES/$f missing"
    echo "---"
    cat "$STAGES/$f"
  done
  echo "---"
  awk -v excl="$KWOK_FAILURE_EXCLUSION" '
    {print}
    /^    matchExpressions:$/ && !done {print excl; done=1}
  ' "$STAGES/pod/fast/pod-ready.yaml"
  echo "---"
  cat "$HERE/kwok-failure-stages.yaml"
} >"$STATE/kwok.yaml"
grep -q 'contains("crashloop")] | any' "$STATE/kwok.yaml" \
  || die "could not insert the failure exclusion into kwok's pod-ready stage"

# ---------------------------------------------------------------- start
# start NAME ARGS...: runs $BIN/NAME in its own session, logs to logs/NAME.log
start() {
  local name="$1"; shift
  setsid "$BIN/$name" "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  local pid=$!
  # The resolved path is what /proc/PID/exe shows; down.sh compares the two
  # so that it never signals a recycled pid.
  echo "$name $pid $(readlink -f "$BIN/$name")" >>"$STATE/pids"
}

API="https://127.0.0.1:$API_PORT"
# curl as cluster-admin; never through a proxy.
kapi() {
  curl -sS --fail --noproxy '*' --max-time 10 --cacert "$PKI/ca.crt" \
    --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$@"
}

start etcd \
  --name=kstep \
  --data-dir="$STATE/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="kstep=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync \
  --log-level=warn
wait_for "etcd /health" etcd \
  curl -sS --fail --noproxy '*' --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"

start kube-apiserver \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 \
  --secure-port="$API_PORT" \
  --advertise-address="$ADVERTISE_ADDRESS" \
  --tls-cert-file="$PKI/apiserver.crt" \
  --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --authorization-mode=Node,RBAC \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" \
  --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --allow-privileged=true \
  --kubelet-preferred-address-types=InternalIP \
  --profiling=false
wait_for "kube-apiserver /readyz" "kube-apiserver etcd" \
  kapi "$API/readyz"

start kube-controller-manager \
  --kubeconfig="$KUBECONFIG_PATH" \
  --bind-address=127.0.0.1 \
  --secure-port="$KCM_PORT" \
  --root-ca-file="$PKI/ca.crt" \
  --service-account-private-key-file="$PKI/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --cluster-name=kstep-test \
  --leader-elect=false \
  --authorization-always-allow-paths=/healthz,/readyz,/livez \
  --node-monitor-period=5s \
  --node-monitor-grace-period=40s \
  --profiling=false

start kube-scheduler \
  --kubeconfig="$KUBECONFIG_PATH" \
  --bind-address=127.0.0.1 \
  --secure-port="$SCHED_PORT" \
  --leader-elect=false \
  --authorization-always-allow-paths=/healthz,/readyz,/livez \
  --profiling=false

# The fake node's kubelet endpoint is kwok's own server on 127.0.0.1, so even
# `kubectl logs` stays on loopback.
start kwok \
  --kubeconfig="$KUBECONFIG_PATH" \
  --config="$STATE/kwok.yaml" \
  --manage-all-nodes=true \
  --node-lease-duration-seconds=40 \
  --server-address="127.0.0.1:$KWOK_PORT" \
  --node-ip=127.0.0.1 \
  --node-port="$KWOK_PORT" \
  --cidr="$POD_CIDR" \
  --tls-cert-file="$PKI/kwok.crt" \
  --tls-private-key-file="$PKI/kwok.key"

# The `default` ServiceAccount appears once kube-controller-manager runs.
wait_for "ServiceAccount default/default" kube-controller-manager \
  kapi "$API/api/v1/namespaces/default/serviceaccounts/default"

# kwok creates no Nodes: one fake Node, managed by kwok.
node_json=$(cat <<EOF
{
  "apiVersion": "v1",
  "kind": "Node",
  "metadata": {
    "name": "$NODE_NAME",
    "annotations": {
      "kwok.x-k8s.io/node": "fake",
      "node.alpha.kubernetes.io/ttl": "0"
    },
    "labels": {
      "type": "kwok",
      "kubernetes.io/hostname": "$NODE_NAME",
      "kubernetes.io/os": "linux",
      "kubernetes.io/arch": "amd64",
      "node-role.kubernetes.io/agent": ""
    }
  },
  "status": {
    "allocatable": {"cpu": "1000", "memory": "1Ti", "pods": "1000", "ephemeral-storage": "1Ti"},
    "capacity": {"cpu": "1000", "memory": "1Ti", "pods": "1000", "ephemeral-storage": "1Ti"},
    "addresses": [
      {"type": "InternalIP", "address": "127.0.0.1"},
      {"type": "Hostname", "address": "$NODE_NAME"}
    ]
  }
}
EOF
)
kapi -o /dev/null -X POST -H 'Content-Type: application/json' \
  --data-binary "$node_json" "$API/api/v1/nodes" \
  || die "could not create Node $NODE_NAME" kube-apiserver

node_usable() {
  kapi "$API/api/v1/nodes/$NODE_NAME" | python3 -c '
import json, sys
node = json.load(sys.stdin)
ready = any(c.get("type") == "Ready" and c.get("status") == "True"
            for c in node.get("status", {}).get("conditions") or [])
tainted = any(t.get("key") in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
              for t in node.get("spec", {}).get("taints") or [])
sys.exit(0 if ready and not tainted else 1)
'
}
wait_for "Node $NODE_NAME Ready without the not-ready taint" "kwok kube-controller-manager" node_usable

# Also healthy: the schedulers' and controller-manager's own health endpoints.
wait_for "kube-scheduler /healthz" kube-scheduler \
  curl -sS --fail --noproxy '*' --max-time 2 --insecure "https://127.0.0.1:$SCHED_PORT/healthz"
wait_for "kube-controller-manager /healthz" kube-controller-manager \
  curl -sS --fail --noproxy '*' --max-time 2 --insecure "https://127.0.0.1:$KCM_PORT/healthz"

cat >"$STATE/env" <<EOF
# Written by tests/cluster/up.sh; source it.
export KUBECONFIG='$KUBECONFIG_PATH'
export KSTEP_TEST_CLUSTER_SERVER='$API'
export KSTEP_TEST_CLUSTER_NODE='$NODE_NAME'
export KSTEP_TESTBIN_BIN='$BIN'
export KSTEP_KUBECTL='$BIN/kubectl'
EOF

started_ok=1
t_end=$(date +%s.%N)
log "cluster ready at $API (KUBECONFIG=$KUBECONFIG_PATH)"
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
log "startup took $(secs "$t_build_done" "$t_end") s (plus $(secs "$t_start" "$t_build_done") s for build.sh and stopping an old cluster)"
log "source $STATE/env"
