#!/usr/bin/env bash
# Stops the test control plane that tests/cluster/up.sh started: exactly the
# processes it recorded (TERM, then KILL after a grace period), the network
# device it recorded as created by itself, and its state under
# target/test-cluster/. Safe to call when nothing runs; always exits 0 unless
# a recorded process survives SIGKILL.
#
#   KSTEP_KEEP_LOGS=1   keep target/test-cluster/logs/ (everything else goes)
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
STATE="$REPO_ROOT/target/test-cluster"
GRACE_SECONDS="${KSTEP_CLUSTER_STOP_GRACE_SECONDS:-10}"

log() { printf '[down.sh] %s\n' "$*" >&2; }

# shellcheck source=../procs.sh
source "$HERE/../procs.sh"

rc=0
if [[ -f "$STATE/pids" ]]; then
  declare -a names=() pids=() exes=()
  while read -r name pid exe; do
    [[ -n "${pid:-}" ]] || continue
    names+=("$name"); pids+=("$pid"); exes+=("$exe")
  done <"$STATE/pids"

  # Stop one at a time in reverse start order: kwok and the controllers
  # first, then the apiserver while etcd still answers (it hangs in its
  # graceful shutdown otherwise), etcd last.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    stop_recorded "${names[i]}" "${pids[i]}" "${exes[i]}" "$GRACE_SECONDS" || rc=1
  done
fi

# Remove the network device up.sh created for this cluster (its address goes
# with it), and nothing else.
if [[ -f "$STATE/network" ]]; then
  while read -r kind dev _; do
    if [[ "$kind" == link && "$dev" == kstep* ]]; then
      ip link del "$dev" 2>/dev/null && log "removed network device $dev"
    fi
  done <"$STATE/network"
fi

if [[ -d "$STATE" ]]; then
  if [[ "${KSTEP_KEEP_LOGS:-0}" == 1 ]]; then
    find "$STATE" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} +
    log "kept logs in $STATE/logs"
  else
    rm -rf "$STATE"
  fi
fi
exit "$rc"
