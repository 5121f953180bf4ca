# Go settings shared by tests/cluster/build.sh, tests/traefik/build.sh and tests/registry/build.sh
# (sourced, not run):
# module and build caches under KSTEP_TESTBIN, so later runs and other checkouts on the same
# machine reuse them; static binaries; the installed toolchain only.
TESTBIN="${KSTEP_TESTBIN:-$HOME/.cache/kstep-testbin}"
export GOMODCACHE="$TESTBIN/gomodcache"
export GOCACHE="$TESTBIN/gocache"
export GOPATH="$TESTBIN/gopath"
export CGO_ENABLED=0
# Use the installed Go; never fetch a toolchain.
export GOTOOLCHAIN=local
# sum.golang.org is not reachable from the machines this project runs on; the
# module proxy is. Override with KSTEP_GOSUMDB where the checksum DB is reachable.
export GOSUMDB="${KSTEP_GOSUMDB:-off}"
export GOFLAGS="-mod=mod -buildvcs=false"
