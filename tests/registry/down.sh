#!/usr/bin/env bash
# Stops the registry tests/registry/up.sh started (the process it recorded: TERM,
# then KILL after 10 s) and removes target/test-registry/. Safe to
# call when nothing runs.
#
#   KSTEP_KEEP_LOGS=1   keep target/test-registry/logs/
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
STATE="$REPO_ROOT/target/test-registry"

log() { printf '[registry/down.sh] %s\n' "$*" >&2; }

# shellcheck source=../procs.sh
source "$HERE/../procs.sh"

rc=0
if [[ -f "$STATE/pids" ]]; then
  while read -r name pid exe; do
    [[ -n "${pid:-}" ]] || continue
    stop_recorded "$name" "$pid" "$exe" 10 || rc=1
  done <"$STATE/pids"
fi

if [[ -d "$STATE" ]]; then
  if [[ "${KSTEP_KEEP_LOGS:-0}" == 1 ]]; then
    find "$STATE" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} +
  else
    rm -rf "$STATE"
  fi
fi
exit "$rc"
