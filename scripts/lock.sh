#!/usr/bin/env bash
# Refresh the install locks in locks/ from pyproject.toml (see docs/install.md).
#
#   scripts/lock.sh              re-resolve, keeping every pin that still fits pyproject.toml
#   scripts/lock.sh --upgrade    move every pin to the newest release that fits
#
# pip-compile runs through pip, so it reads pip's own configuration (the local CPU torch wheel
# that constraints.txt pins); uv does not, and would lock torch's multi-GB CUDA build instead.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=build/lock-venv
if [ ! -x "$tools/bin/pip-compile" ]; then
  python3.11 -m venv "$tools"
  "$tools/bin/pip" install -q 'pip-tools==7.6.2'
fi

export CUSTOM_COMPILE_COMMAND="scripts/lock.sh"
compile() {  # compile OUTPUT EXTRA...
  local out=$1; shift
  local extras=()
  for extra in "$@"; do extras+=(--extra "$extra"); done
  "$tools/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
    --build-deps-for wheel --build-deps-for editable \
    --constraint constraints.txt "${extras[@]}" ${UPGRADE:+--upgrade} \
    --output-file "$out" pyproject.toml
}

UPGRADE=
if [ "${1:-}" = "--upgrade" ]; then UPGRADE=1; fi

compile locks/demo.txt server                    # the README's demo install
compile locks/test.txt server generative dev review postgres  # the README's test install, and .ci/run's
