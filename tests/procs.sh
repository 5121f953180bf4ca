# Helpers of the scripts that start and stop test services (tests/cluster/, tests/registry/);
# sourced, not run.

# ours PID EXE: PID is still the process that was started from EXE (its resolved path, as
# recorded at start), not a recycled pid; "(deleted)": the binary was rebuilt meanwhile.
ours() {
  local pid="$1" exe="$2"
  local actual
  actual="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
  [[ "$actual" == "$exe" || "$actual" == "$exe (deleted)" ]]
}

# free_ports N: N distinct ports of 127.0.0.1, free now, on one line. Random ports below the
# ephemeral range, so an outgoing connection cannot take one between this check and the bind.
free_ports() {
  python3 - "$1" <<'PY'
import random, socket, sys
want = int(sys.argv[1])
ports, socks = [], []
while len(ports) < want:
    p = random.randint(20000, 32000)
    if p in ports:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        s.close()
        continue
    socks.append(s)
    ports.append(p)
print(*ports)
PY
}

# stop_recorded NAME PID EXE GRACE: stops a recorded process that is still ours (TERM, then
# KILL after GRACE seconds) and logs how long it took; returns 1 when it survives SIGKILL.
stop_recorded() {
  local name="$1" pid="$2" exe="$3" grace="$4"
  ours "$pid" "$exe" || return 0
  local t0 deadline
  t0=$(date +%s.%N)
  kill -TERM "$pid" 2>/dev/null
  deadline=$((SECONDS + grace))
  while ours "$pid" "$exe" && ((SECONDS < deadline)); do
    sleep 0.05
  done
  if ours "$pid" "$exe"; then
    log "$name (pid $pid) ignored SIGTERM for ${grace}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null
    for _ in $(seq 50); do
      ours "$pid" "$exe" || break
      sleep 0.1
    done
    if ours "$pid" "$exe"; then
      log "ERROR: $name (pid $pid) survived SIGKILL"
      return 1
    fi
  fi
  log "stopped $name (pid $pid) in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
}
