#!/usr/bin/env bash
# Starts a CNCF distribution registry on 127.0.0.1 for kstep's registry tests
# (tests/all/registry.rs): a free port, TLS with a CA of its own, htpasswd
# (bcrypt) authentication with a random password, filesystem storage. Returns
# once the registry answers an authenticated /v2/.
#
# Writes (relative to the repository root):
#   target/test-registry/env          `source` it: KSTEP_TEST_REGISTRY and friends
#   target/test-registry/ca.crt       the CA the tests trust (KSTEP_REGISTRY_CA_FILE)
#   target/test-registry/password     the registry password (0600)
#   target/test-registry/data/        the registry's storage (tests alter blobs there)
#   target/test-registry/pids         what down.sh stops
#   target/test-registry/logs/registry.log
#
# Stop it with tests/registry/down.sh.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
STATE="$REPO_ROOT/target/test-registry"
LOGS="$STATE/logs"
WAIT_SECONDS="${KSTEP_REGISTRY_WAIT_SECONDS:-60}"
USER_NAME="kstep-ci"

log() { printf '[registry/up.sh] %s\n' "$*" >&2; }
# shellcheck source=../procs.sh
source "$HERE/../procs.sh"

if [[ -e "$STATE/pids" ]]; then
  log "stopping the registry recorded in $STATE"
  "$HERE/down.sh"
fi

BIN="${KSTEP_REGISTRY_BIN:-}"
if [[ -z "$BIN" ]]; then
  BIN="$("$HERE/build.sh" | tail -n 1)"
fi
for b in registry kstep-htpasswd cosign; do
  [[ -x "$BIN/$b" ]] || { log "ERROR: $BIN/$b missing (run tests/registry/build.sh)"; exit 1; }
done

rm -rf "$STATE"
mkdir -p "$LOGS" "$STATE/data"
chmod 700 "$STATE"
: >"$STATE/pids"
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"

started_ok=0
on_exit() {
  local rc=$?
  if [[ $started_ok == 0 ]]; then
    log "FAILED (exit $rc); stopping what was started, logs kept in $LOGS"
    [[ -f "$LOGS/registry.log" ]] && tail -n 40 "$LOGS/registry.log" >&2
    KSTEP_KEEP_LOGS=1 "$HERE/down.sh" || true
  fi
}
trap on_exit EXIT

PORT="$(free_ports 1)"

# ---------------------------------------------------------------- TLS
cat >"$STATE/openssl.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1, DNS:localhost
CNF
ossl() { openssl "$@" 2>>"$LOGS/openssl.log"; }
ossl genrsa -out "$STATE/ca.key" 2048
ossl req -x509 -new -config "$STATE/openssl.cnf" -key "$STATE/ca.key" -subj "/CN=kstep-test-registry-ca" \
  -days 30 -sha256 -extensions ca -set_serial "0x$(openssl rand -hex 12)" -out "$STATE/ca.crt"
ossl genrsa -out "$STATE/server.key" 2048
ossl req -new -config "$STATE/openssl.cnf" -key "$STATE/server.key" -subj "/CN=127.0.0.1" -out "$STATE/server.csr"
ossl x509 -req -in "$STATE/server.csr" -CA "$STATE/ca.crt" -CAkey "$STATE/ca.key" \
  -set_serial "0x$(openssl rand -hex 12)" -days 30 -sha256 -extfile "$STATE/openssl.cnf" \
  -extensions server -out "$STATE/server.crt"
rm -f "$STATE/server.csr"
chmod 600 "$STATE"/*.key

# ---------------------------------------------------------------- auth
# A random password per start; the tests search every output for it.
(umask 077 && openssl rand -base64 24 | tr -d '\n/+=' >"$STATE/password")
"$BIN/kstep-htpasswd" "$USER_NAME" <"$STATE/password" >"$STATE/htpasswd" 2>>"$LOGS/openssl.log" \
  || { log "ERROR: kstep-htpasswd failed"; exit 1; }
chmod 600 "$STATE/htpasswd"

cat >"$STATE/config.yml" <<YML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $STATE/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
  secret: $(openssl rand -hex 16)
  tls:
    certificate: $STATE/server.crt
    key: $STATE/server.key
auth:
  htpasswd:
    realm: kstep-test-registry
    path: $STATE/htpasswd
YML

# No tracing exporter: nothing may leave 127.0.0.1.
OTEL_TRACES_EXPORTER=none OTEL_SDK_DISABLED=true \
  setsid "$BIN/registry" serve "$STATE/config.yml" >"$LOGS/registry.log" 2>&1 </dev/null &
pid=$!
echo "registry $pid $(readlink -f "$BIN/registry")" >>"$STATE/pids"

ready() {
  curl -sS --fail --noproxy '*' --max-time 2 --cacert "$STATE/ca.crt" \
    -u "$USER_NAME:$(cat "$STATE/password")" -o /dev/null "https://127.0.0.1:$PORT/v2/"
}
deadline=$((SECONDS + WAIT_SECONDS))
until ready 2>/dev/null; do
  kill -0 "$pid" 2>/dev/null || { log "ERROR: the registry (pid $pid) exited"; exit 1; }
  ((SECONDS < deadline)) || { log "ERROR: timed out after ${WAIT_SECONDS}s waiting for the registry"; exit 1; }
  sleep 0.1
done

cat >"$STATE/env" <<ENV
# Written by tests/registry/up.sh; source it.
export KSTEP_TEST_REGISTRY='127.0.0.1:$PORT'
export KSTEP_TEST_REGISTRY_USER='$USER_NAME'
export KSTEP_TEST_REGISTRY_PASSWORD_FILE='$STATE/password'
export KSTEP_TEST_REGISTRY_CA='$STATE/ca.crt'
export KSTEP_TEST_COSIGN='$BIN/cosign'
export KSTEP_TEST_REGISTRY_DATA='$STATE/data'
ENV

started_ok=1
log "registry ready at https://127.0.0.1:$PORT (user $USER_NAME); source $STATE/env"
