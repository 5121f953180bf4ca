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
