#!/usr/bin/env bash
# Builds the binaries of the test OCI registry from Go modules into the testbin cache, outside
# the repository, for kstep's registry tests (tests/all/registry.rs):
#
#   ${KSTEP_TESTBIN:-$HOME/.cache/kstep-testbin}/<versions-key>/bin/registry       CNCF distribution
#   ${KSTEP_TESTBIN:-$HOME/.cache/kstep-testbin}/<versions-key>/bin/cosign         sigstore cosign
#   ${KSTEP_TESTBIN:-$HOME/.cache/kstep-testbin}/<versions-key>/bin/kstep-htpasswd bcrypt hashes
#
# kstep-htpasswd exists because the registry's htpasswd auth accepts bcrypt only, and neither
# Apache's htpasswd nor a Python bcrypt module is on every machine; it is a few lines of Go on
# golang.org/x/crypto/bcrypt, which the registry's module graph already holds.
#
# Idempotent: a binary that exists and reports the expected version is not rebuilt (a warm run
# takes about a second). Binaries are written under a temporary name and renamed, so an
# interrupted build leaves none half-written. Progress goes to stderr; the only line on stdout
# is the bin dir. Module and build caches are shared with tests/cluster/build.sh.
set -euo pipefail

REGISTRY_VERSION="${KSTEP_REGISTRY_VERSION:-v3.1.2}"
COSIGN_VERSION="${KSTEP_COSIGN_VERSION:-v3.1.3}"
COSIGN_MAJOR="${COSIGN_VERSION%%.*}"

# shellcheck source=../go-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/../go-env.sh"
GO_VERSION="$(go env GOVERSION)"
ROOT="$TESTBIN/registry-${REGISTRY_VERSION}_cosign-${COSIGN_VERSION}_${GO_VERSION}"
log() { printf '[registry/build.sh] %s\n' "$*" >&2; }
# shellcheck source=../testbin.sh
source "$(dirname "${BASH_SOURCE[0]}")/../testbin.sh"

# wrapper DIR MODULE@VERSION: a module of our own that requires MODULE (its main packages
# are then buildable by import path, with the versions MODULE's go.mod pins).
wrapper() {
  local dir="$1" mod="$2"
  mkdir -p "$dir"
  (
    cd "$dir"
    [[ -f go.mod ]] || go mod init "kstep-testbin/$(basename "$dir")" >/dev/null 2>&1
    go get "$mod" >/dev/null
  )
}

build_registry() {
  local dir="$SRC/registry" mod=github.com/distribution/distribution/v3
  wrapper "$dir" "$mod@${REGISTRY_VERSION}"
  (
    cd "$dir"
    "${NICE[@]}" go build "${BUILD_FLAGS[@]}" \
      -ldflags="-s -w -X $mod/version.version=${REGISTRY_VERSION}" \
      -o "$BIN/registry.tmp" "$mod/cmd/registry"
    mv "$BIN/registry.tmp" "$BIN/registry"
  )
}

build_htpasswd() {
  local dir="$SRC/registry"
  wrapper "$dir" "github.com/distribution/distribution/v3@${REGISTRY_VERSION}"
  mkdir -p "$dir/htpasswd"
  cat >"$dir/htpasswd/main.go" <<'GO'
// kstep-htpasswd USER: reads a password on stdin, prints an htpasswd line `USER:<bcrypt>`.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Println("kstep-htpasswd 1")
		return
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: kstep-htpasswd USER <password")
		os.Exit(2)
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(os.Stderr, "kstep-htpasswd: no password on stdin")
		os.Exit(1)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(strings.TrimRight(line, "\r\n")), bcrypt.DefaultCost)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstep-htpasswd:", err)
		os.Exit(1)
	}
	fmt.Printf("%s:%s\n", os.Args[1], hash)
}
GO
  (
    cd "$dir"
    "${NICE[@]}" go build "${BUILD_FLAGS[@]}" -ldflags="-s -w" \
      -o "$BIN/kstep-htpasswd.tmp" ./htpasswd
    mv "$BIN/kstep-htpasswd.tmp" "$BIN/kstep-htpasswd"
  )
}

build_cosign() {
  local dir="$SRC/cosign" mod="github.com/sigstore/cosign/$COSIGN_MAJOR"
  [[ "$COSIGN_MAJOR" == v1 ]] && mod=github.com/sigstore/cosign
  wrapper "$dir" "$mod@${COSIGN_VERSION}"
  (
    cd "$dir"
    "${NICE[@]}" go build "${BUILD_FLAGS[@]}" \
      -ldflags="-s -w -X sigs.k8s.io/release-utils/version.gitVersion=${COSIGN_VERSION}" \
      -o "$BIN/cosign.tmp" "$mod/cmd/cosign"
    mv "$BIN/cosign.tmp" "$BIN/cosign"
  )
}

# ---------------------------------------------------------------- main
have registry "${REGISTRY_VERSION}" --version || timed registry build_registry
have kstep-htpasswd "kstep-htpasswd 1" --version || timed kstep-htpasswd build_htpasswd
have cosign "${COSIGN_VERSION}" version || timed cosign build_cosign

# Verify everything once more: a build that produced a wrong version fails here.
have registry "${REGISTRY_VERSION}" --version || die "registry does not report ${REGISTRY_VERSION}"
have kstep-htpasswd "kstep-htpasswd 1" --version || die "kstep-htpasswd does not run"
have cosign "${COSIGN_VERSION}" version || die "cosign does not report ${COSIGN_VERSION}"

if ((${#built[@]})); then
  log "built: ${built[*]}"
else
  log "all binaries present in cache, nothing built"
fi
log "versions: registry ${REGISTRY_VERSION}, cosign ${COSIGN_VERSION}, ${GO_VERSION}"
log "took $((SECONDS - start_all)) s"
echo "$BIN"
