#!/usr/bin/env bash
# Every test: installs what it needs, builds the tests and examples with warnings as
# errors, runs the Catch2 suite and the Python interop test, then the packaging consumers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh g++ make cmake catch2 python3 pkg-config meson ninja-build socat
rm -rf build/dev
cmake --workflow --preset dev
if [ -x scripts/test-consumers.sh ]; then scripts/test-consumers.sh; fi
