#!/bin/sh
# Builds the Python example step into a component with componentize-py (from PyPI):
#   components/examples/require-labels-py/build.sh [OUT_DIR]
# OUT_DIR defaults to target/wasm-examples; the component is OUT_DIR/require_labels.wasm.
# componentize-py is installed into a virtualenv under target/ (override with
# KSTEP_PY_VENV); it bundles CPython, so the component is ~18 MB.
# --stub-wasi: CPython links the WASI socket interfaces, which kstep refuses to load; with
# every WASI import replaced by a trapping stub the component imports only kstep:steps/log
# (the step needs nothing else: it is initialised at build time and only parses JSON).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=${1:-$root/target/wasm-examples}
venv=${KSTEP_PY_VENV:-$root/target/componentize-py-venv}
version=0.25.1

if ! "$venv/bin/componentize-py" --version 2>/dev/null | grep -q " $version\$"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$version"
fi
mkdir -p "$out"
cd "$here"
"$venv/bin/componentize-py" --wit-path "$root/wit" --world custom-step \
    componentize --stub-wasi app --output "$out/require_labels.wasm.tmp"
mv "$out/require_labels.wasm.tmp" "$out/require_labels.wasm"
echo "$out/require_labels.wasm"
