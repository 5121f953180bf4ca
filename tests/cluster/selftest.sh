#!/usr/bin/env bash
# Checks that the cluster started by tests/cluster/up.sh behaves as the
# contract in tests/cluster/README.md says: Deployments roll out, the kwok
# failure stages report ImagePullBackOff / CrashLoopBackOff, RBAC and
# ServiceAccount tokens work, token Secrets get populated, deleted pods go
# away and namespaces can be deleted. Uses curl and python3 only, talks to
# 127.0.0.1 only, works in a namespace of its own and deletes it at the end.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
STATE="$REPO_ROOT/target/test-cluster"
PKI="$STATE/pki"
[[ -f "$STATE/env" ]] || { echo "no cluster: run tests/cluster/up.sh first" >&2; exit 1; }
# shellcheck source=/dev/null
source "$STATE/env"
API="$KSTEP_TEST_CLUSTER_SERVER"
NS="kstep-selftest-$RANDOM"
T0=$SECONDS

say() { printf '[selftest] %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

curl_() { curl -sS --noproxy '*' --max-time 10 --cacert "$PKI/ca.crt" "$@"; }
# As cluster-admin.
k() { curl_ --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$@"; }
# HTTP status of a request as cluster-admin.
k_code() { k -o /dev/null -w '%{http_code}' "$@"; }
# code_is CODE ARGS...: a request as cluster-admin returns HTTP status CODE.
code_is() { local want="$1"; shift; [[ "$(k_code "$@")" == "$want" ]]; }
# py EXPR: evaluates EXPR with d = the JSON document on stdin, prints the result.
py() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval("(" + sys.argv[1] + ")"))' "$1"; }

# eventually SECONDS DESCRIPTION COMMAND...: retries COMMAND until it succeeds.
eventually() {
  local limit="$1" what="$2"; shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after ${limit}s: $what"
    sleep 0.5
  done
}

# POST a JSON object as cluster-admin, expecting 201.
create() {
  local path="$1" body="$2" code
  code=$(k -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary "$body" "$API$path")
  [[ "$code" == 201 ]] || fail "POST $path returned $code"
}

# Server-side apply of a Deployment.
apply_deployment() {
  local name="$1" image="$2" replicas="$3" code
  code=$(k -o /dev/null -w '%{http_code}' -X PATCH -H 'Content-Type: application/apply-patch+yaml' \
    --data-binary @- "$API/apis/apps/v1/namespaces/$NS/deployments/$name?fieldManager=kstep-selftest&force=true" <<EOF
{"apiVersion": "apps/v1", "kind": "Deployment",
 "metadata": {"name": "$name"},
 "spec": {"replicas": $replicas,
          "selector": {"matchLabels": {"app": "$name"}},
          "template": {"metadata": {"labels": {"app": "$name"}},
                       "spec": {"containers": [{"name": "main", "image": "$image"}]}}}}
EOF
  )
  [[ "$code" == 200 || "$code" == 201 ]] || fail "apply of Deployment $name returned $code"
}

deployment() { k --fail "$API/apis/apps/v1/namespaces/$NS/deployments/$1"; }
pods_of() { k --fail "$API/api/v1/namespaces/$NS/pods?labelSelector=app%3D$1"; }

rolled_out() {
  deployment "$1" | py '
d["status"].get("availableReplicas") == d["spec"]["replicas"]
and d["status"].get("updatedReplicas") == d["spec"]["replicas"]
and any(c["type"] == "Available" and c["status"] == "True" for c in d["status"].get("conditions", []))
' | grep -qx True
}

# pods_waiting NAME REASON MIN_RESTARTS: every pod of NAME (at least one) has a
# container waiting with REASON and at least MIN_RESTARTS restarts.
pods_waiting() {
  pods_of "$1" | py '
len(d["items"]) > 0 and all(
  any((s.get("state", {}).get("waiting") or {}).get("reason") == "'"$2"'"
      and s.get("restartCount", 0) >= '"$3"'
      and not s.get("ready")
      for s in p["status"].get("containerStatuses", []))
  for p in d["items"])
' | grep -qx True
}

not_available() {
  deployment "$1" | py '
not d["status"].get("availableReplicas")
and any(c["type"] == "Available" and c["status"] == "False" for c in d["status"].get("conditions", []))
' | grep -qx True
}

cleanup() {
  k -o /dev/null -X DELETE "$API/api/v1/namespaces/$NS" 2>/dev/null || true
}
trap cleanup EXIT

# ---------------------------------------------------------------- namespace
create /api/v1/namespaces "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$NS\"}}"
eventually 30 "ServiceAccount default in $NS" \
  code_is 200 "$API/api/v1/namespaces/$NS/serviceaccounts/default"
say "ok: namespace $NS with its default ServiceAccount"

# ---------------------------------------------------------------- deployments
apply_deployment web nginx:1.27 2
apply_deployment broken-image example.invalid/does-not-exist:1 1
apply_deployment crashing registry.example/crashloop:1 1
t=$SECONDS
eventually 60 "Deployment web available with 2 updated replicas" rolled_out web
say "ok: Deployment web rolled out (availableReplicas=2, updatedReplicas=2, Available=True) in $((SECONDS - t)) s"
eventually 60 "pods of broken-image waiting with ImagePullBackOff" pods_waiting broken-image ImagePullBackOff 0
eventually 60 "pods of crashing waiting with CrashLoopBackOff, restartCount > 0" pods_waiting crashing CrashLoopBackOff 1
# Give kwok's pod-ready stage every chance to (wrongly) take them over.
sleep 5
pods_waiting broken-image ImagePullBackOff 0 || fail "broken-image pods changed state"
pods_waiting crashing CrashLoopBackOff 1 || fail "crashing pods changed state"
not_available broken-image || fail "Deployment broken-image became available"
not_available crashing || fail "Deployment crashing became available"
say "ok: does-not-exist image -> ImagePullBackOff, crashloop image -> CrashLoopBackOff, neither available"

# ---------------------------------------------------------------- RBAC + tokens
create "/api/v1/namespaces/$NS/serviceaccounts" '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"deployer"}}'
create "/apis/rbac.authorization.k8s.io/v1/namespaces/$NS/rolebindings" "{
  \"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":\"RoleBinding\",\"metadata\":{\"name\":\"deployer-admin\"},
  \"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"admin\"},
  \"subjects\":[{\"kind\":\"ServiceAccount\",\"name\":\"deployer\",\"namespace\":\"$NS\"}]}"
TOKEN=$(k --fail -X POST -H 'Content-Type: application/json' \
  --data-binary '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}' \
  "$API/api/v1/namespaces/$NS/serviceaccounts/deployer/token" | py 'd["status"]["token"]')
[[ -n "$TOKEN" ]] || fail "TokenRequest returned no token"
as_token() { curl_ -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "$2"; }
token_lists_pods() { [[ "$(as_token "$TOKEN" "$API/api/v1/namespaces/$NS/pods")" == 200 ]]; }
eventually 30 "the token lists pods in $NS" token_lists_pods
code=$(as_token "$TOKEN" "$API/api/v1/namespaces/kube-system/pods")
[[ "$code" == 403 ]] || fail "the token listing pods in kube-system got $code, wanted 403"
say "ok: TokenRequest token: 200 in $NS, 403 in kube-system"

create "/api/v1/namespaces/$NS/secrets" '{"apiVersion":"v1","kind":"Secret","type":"kubernetes.io/service-account-token",
  "metadata":{"name":"deployer-token","annotations":{"kubernetes.io/service-account.name":"deployer"}}}'
secret_token() {
  k --fail "$API/api/v1/namespaces/$NS/secrets/deployer-token" | py 'd.get("data", {}).get("token", "")'
}
secret_populated() { [[ -n "$(secret_token)" ]]; }
eventually 30 "Secret deployer-token gets data.token" secret_populated
LEGACY=$(secret_token | base64 -d)
code=$(as_token "$LEGACY" "$API/api/v1/namespaces/$NS/pods")
[[ "$code" == 200 ]] || fail "the token of Secret deployer-token got $code listing pods in $NS"
say "ok: service-account-token Secret populated, and its token works"

# ---------------------------------------------------------------- pod deletion
POD=$(pods_of web | py 'd["items"][0]["metadata"]["name"]')
code=$(k_code -X DELETE "$API/api/v1/namespaces/$NS/pods/$POD")
[[ "$code" == 200 ]] || fail "DELETE pod $POD returned $code"
eventually 30 "pod $POD goes away" code_is 404 "$API/api/v1/namespaces/$NS/pods/$POD"
eventually 30 "Deployment web back to 2 available" rolled_out web
say "ok: deleted pod $POD went away and was replaced"

# ---------------------------------------------------------------- namespace deletion
trap - EXIT
code=$(k_code -X DELETE "$API/api/v1/namespaces/$NS")
[[ "$code" == 200 ]] || fail "DELETE namespace $NS returned $code"
eventually 60 "namespace $NS goes away" code_is 404 "$API/api/v1/namespaces/$NS"
say "ok: namespace $NS deleted"

say "PASS in $((SECONDS - T0)) s"
