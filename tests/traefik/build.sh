#!/usr/bin/env bash
# Builds a real Traefik v3 binary from its Go module, for kstep's Traefik tests
# (tests/all/traefik.rs), into a cache directory outside the repository:
#
#   ${KSTEP_TESTBIN:-$HOME/.cache/kstep-testbin}/traefik-<version>/traefik
#
# Idempotent: when that binary exists and reports the expected version nothing
# is built (a warm run takes well under a second). The last line printed is the
# binary's path. Module and build caches (GOMODCACHE, GOCACHE) are shared with
# tests/cluster/build.sh under KSTEP_TESTBIN.
#
# Why a wrapper module: github.com/traefik/traefik/v3's go.mod has `replace`
# (Containous forks) and `exclude` directives, so `go install …@version` is
# refused. A wrapper module requires traefik at the wanted version and copies
# those directives (they only apply in the main module).
#
# v3.6.x only: v3.7+ needs a nested module the Go proxy does not serve. The
# dashboard's web UI is not in the module (it is built with npm), so this
# binary serves an empty dashboard; the API, ping, routing and ACME code are
# the real ones.
set -euo pipefail

TRAEFIK_VERSION="${KSTEP_TRAEFIK_VERSION:-v3.6.12}"
# shellcheck source=../go-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/../go-env.sh"
ROOT="$TESTBIN/traefik-${TRAEFIK_VERSION}"
OUT="$ROOT/traefik"
SRC="$ROOT/src"


log() { printf '[traefik/build.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The binary exists and reports the expected version.
have() {
  [[ -x "$OUT" ]] || return 1
  local out
  out="$("$OUT" version 2>&1 || true)"
  [[ "$out" == *"${TRAEFIK_VERSION}"* ]]
}

command -v go >/dev/null || die "go not found in PATH"
mkdir -p "$SRC"

# One build at a time per version (e.g. two checkouts running CI).
exec 9>"$ROOT/.lock"
flock 9

if have; then
  log "traefik ${TRAEFIK_VERSION} present in cache, nothing built"
  echo "$OUT"
  exit 0
fi

t0=$SECONDS
if [[ ! -f "$SRC/go.mod.done" ]]; then
  gomod="$(cd "$SRC" && go mod download -json "github.com/traefik/traefik/v3@${TRAEFIK_VERSION}" \
    | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("GoMod", "")); sys.exit("Error" in d)')" \
    || die "could not download github.com/traefik/traefik/v3@${TRAEFIK_VERSION}"
  [[ -f "$gomod" ]] || die "no go.mod for traefik ${TRAEFIK_VERSION}"
  {
    echo "module kstep-testbin/traefik"
    echo
    grep -E '^go [0-9]' "$gomod"
    awk '/^godebug \(/{b=1} b{print} b&&/^\)/{b=0; next} /^godebug [^(]/{print}' "$gomod"
    echo
    echo "require github.com/traefik/traefik/v3 ${TRAEFIK_VERSION}"
    echo
    # replace and exclude directives, single-line and block form alike.
    awk '/^(replace|exclude) \(/{b=1} b{print} b&&/^\)/{b=0; next} /^(replace|exclude) [^(]/{print}' "$gomod"
    echo
    echo "tool github.com/traefik/traefik/v3/cmd/traefik"
  } >"$SRC/go.mod"
  (cd "$SRC" && go mod tidy) || die "go mod tidy failed in $SRC"
  touch "$SRC/go.mod.done"
fi

log "building traefik ${TRAEFIK_VERSION} (a large build: expect many minutes on 2 cores) ..."
pkg=github.com/traefik/traefik/v3/pkg/version
(
  cd "$SRC"
  nice -n "${KSTEP_BUILD_NICE:-10}" go build -p "${KSTEP_BUILD_JOBS:-2}" -trimpath \
    -ldflags="-s -w -X ${pkg}.Version=${TRAEFIK_VERSION} -X ${pkg}.Codename=kstep-test -X ${pkg}.BuildDate=1970-01-01T00:00:00Z" \
    -o "$OUT.tmp" github.com/traefik/traefik/v3/cmd/traefik
)
mv "$OUT.tmp" "$OUT"
have || die "the built binary does not report ${TRAEFIK_VERSION}"
log "built traefik ${TRAEFIK_VERSION} in $((SECONDS - t0)) s"
echo "$OUT"
