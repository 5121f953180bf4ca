# The common part of the Go builds into the testbin cache (tests/cluster/build.sh,
# tests/registry/build.sh); sourced, not run, once ROOT (the versions key's directory) and
# log() are set. Defines BIN and SRC, the build flags (niced, 2 jobs), die, have and timed,
# and takes the versions key's lock: one build at a time per key (e.g. two checkouts running CI).
BIN="$ROOT/bin"
SRC="$ROOT/src"

BUILD_FLAGS=(-p "${KSTEP_BUILD_JOBS:-2}" -trimpath)
NICE=(nice -n "${KSTEP_BUILD_NICE:-10}")

die() { log "ERROR: $*"; exit 1; }

command -v go >/dev/null || die "go not found in PATH"
mkdir -p "$BIN" "$SRC"

exec 9>"$ROOT/.lock"
flock 9

start_all=$SECONDS
built=()

# have BINARY EXPECTED-SUBSTRING ARGS...: the binary exists and `BINARY ARGS`
# prints EXPECTED-SUBSTRING.
have() {
  local bin="$BIN/$1" want="$2"; shift 2
  [[ -x "$bin" ]] || return 1
  local out
  out="$("$bin" "$@" 2>&1 || true)"
  [[ "$out" == *"$want"* ]]
}

# timed NAME COMMAND...: runs COMMAND, logging how long building NAME took.
timed() {
  local name="$1"; shift
  local t0=$SECONDS
  log "building $name ..."
  "$@"
  log "built $name in $((SECONDS - t0)) s"
  built+=("$name")
}
