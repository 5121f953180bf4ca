#!/usr/bin/env bash
# Builds the binaries of the test control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kwok) from Go modules into
# a cache directory outside the repository, and stages kwok's stage YAMLs.
#
#   ${KSTEP_TESTBIN:-$HOME/.cache/kstep-testbin}/<versions-key>/bin/<binary>
#   ${KSTEP_TESTBIN:-$HOME/.cache/kstep-testbin}/<versions-key>/kwok-stages/
#
# Idempotent: a binary that exists and reports the expected version is not
# rebuilt, so a warm run takes about a second. Binaries are written under a
# temporary name and renamed, so an interrupted build leaves none half-written.
# Progress goes to stderr; the only line on stdout is the bin dir.
# See tests/cluster/README.md for the contract.
set -euo pipefail

ETCD_VERSION="${KSTEP_ETCD_VERSION:-v3.6.16}"
K8S_VERSION="${KSTEP_K8S_VERSION:-v1.36.3}"
KWOK_VERSION="${KSTEP_KWOK_VERSION:-v0.8.0}"

# shellcheck source=../go-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/../go-env.sh"
GO_VERSION="$(go env GOVERSION)"
KEY="etcd-${ETCD_VERSION}_k8s-${K8S_VERSION}_kwok-${KWOK_VERSION}_${GO_VERSION}"
ROOT="$TESTBIN/$KEY"
log() { printf '[build.sh] %s\n' "$*" >&2; }
# shellcheck source=../testbin.sh
source "$(dirname "${BASH_SOURCE[0]}")/../testbin.sh"

# ---------------------------------------------------------------- etcd
build_etcd() {
  local dir="$SRC/etcd"
  mkdir -p "$dir"
  (
    cd "$dir"
    if [[ ! -f go.mod ]]; then
      go mod init kstep-testbin/etcd >/dev/null 2>&1
    fi
    # go.etcd.io/etcd/server/v3 has replace directives in its go.mod, so
    # `go install pkg@version` is refused; a wrapper module depends on it
    # instead (package main is the module root).
    go get -tool "go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
    "${NICE[@]}" go build "${BUILD_FLAGS[@]}" -ldflags="-s -w" \
      -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
    mv "$BIN/etcd.tmp" "$BIN/etcd"
  )
}

# ---------------------------------------------------------------- kubernetes
k8s_wrapper() {
  local dir="$SRC/kubernetes"
  mkdir -p "$dir"
  [[ -f "$dir/go.mod.done" ]] && return 0
  local gomod staging_ver c
  gomod="$(cd "$dir" && go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | python3 -c 'import json, sys; print(json.load(sys.stdin)["GoMod"])')"
  [[ -f "$gomod" ]] || die "could not download k8s.io/kubernetes@${K8S_VERSION}"
  # v1.X.Y pairs with v0.X.Y for every staging module.
  staging_ver="v0.${K8S_VERSION#v1.}"
  {
    echo "module kstep-testbin/kubernetes"
    echo
    grep -E '^go [0-9]' "$gomod"
    # Copy godebug lines, single-line and block form alike.
    awk '/^godebug \(/{b=1} b{print} b&&/^\)/{b=0; next} /^godebug [^(]/{print}' "$gomod"
    echo
    echo "require k8s.io/kubernetes ${K8S_VERSION}"
    echo
    echo "replace ("
    # The release's go.mod replaces every staging module with ./staging/...;
    # point each at the published module of the paired version instead.
    grep -E '=> \./staging/src/k8s\.io/' "$gomod" \
      | awk -v v="$staging_ver" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
    echo
    echo "tool ("
    for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
      echo "	k8s.io/kubernetes/cmd/$c"
    done
    echo ")"
  } >"$dir/go.mod"
  (cd "$dir" && go mod tidy)
  touch "$dir/go.mod.done"
}

build_k8s() {
  local cmd="$1"
  local dir="$SRC/kubernetes"
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  # What hack/lib/version.sh stamps in, so /version and --version are right.
  local ldx="" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldx+=" -X ${pkg}.gitVersion=${K8S_VERSION}"
    ldx+=" -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
    ldx+=" -X ${pkg}.gitTreeState=clean"
    ldx+=" -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
  done
  (
    cd "$dir"
    "${NICE[@]}" go build "${BUILD_FLAGS[@]}" -tags selinux,notest,grpcnotrace \
      -ldflags="-s -w${ldx}" -o "$BIN/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
    mv "$BIN/$cmd.tmp" "$BIN/$cmd"
  )
}

# ---------------------------------------------------------------- kwok
build_kwok() {
  local dir="$SRC/kwok"
  mkdir -p "$dir"
  (
    cd "$dir"
    [[ -f go.mod ]] || go mod init kstep-testbin/kwok >/dev/null 2>&1
    go get -tool "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
    "${NICE[@]}" go build "${BUILD_FLAGS[@]}" \
      -ldflags="-s -w" \
      -o "$BIN/kwok.tmp" sigs.k8s.io/kwok/cmd/kwok
    mv "$BIN/kwok.tmp" "$BIN/kwok"
  )
}

stage_kwok_yamls() {
  local from="$GOMODCACHE/sigs.k8s.io/kwok@${KWOK_VERSION}/kustomize/stage"
  local to="$ROOT/kwok-stages"
  [[ -d "$to" ]] && return 0
  [[ -d "$from" ]] || die "kwok stage YAMLs not found at $from"
  rm -rf "$to.tmp"
  cp -r "$from" "$to.tmp"
  chmod -R u+w "$to.tmp"
  mv "$to.tmp" "$to"
  log "staged kwok stage YAMLs into $to"
}

# ---------------------------------------------------------------- main
have etcd "etcd Version: ${ETCD_VERSION#v}" --version || timed etcd build_etcd

k8s_wrapper_done=0
for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
  if ! have "$cmd" "Kubernetes ${K8S_VERSION}" --version; then
    [[ $k8s_wrapper_done == 1 ]] || { k8s_wrapper; k8s_wrapper_done=1; }
    timed "$cmd" build_k8s "$cmd"
  fi
done
if ! have kubectl "${K8S_VERSION}" version --client; then
  [[ $k8s_wrapper_done == 1 ]] || { k8s_wrapper; k8s_wrapper_done=1; }
  timed kubectl build_k8s kubectl
fi

have kwok "${KWOK_VERSION}" --version || timed kwok build_kwok
stage_kwok_yamls

# Verify everything once more: a build that produced a wrong version fails here.
have etcd "etcd Version: ${ETCD_VERSION#v}" --version || die "etcd does not report ${ETCD_VERSION}"
for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
  have "$cmd" "Kubernetes ${K8S_VERSION}" --version || die "$cmd does not report ${K8S_VERSION}"
done
have kubectl "${K8S_VERSION}" version --client || die "kubectl does not report ${K8S_VERSION}"
have kwok "${KWOK_VERSION}" --version || die "kwok does not report ${KWOK_VERSION}"

if ((${#built[@]})); then
  log "built: ${built[*]}"
else
  log "all binaries present in cache, nothing built"
fi
log "versions: etcd ${ETCD_VERSION}, kubernetes ${K8S_VERSION}, kwok ${KWOK_VERSION}, ${GO_VERSION}"
log "took $((SECONDS - start_all)) s"
echo "$BIN"
