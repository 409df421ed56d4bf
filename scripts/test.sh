#!/usr/bin/env bash
# Every test: installs what it needs, builds the tests and examples with warnings as
# errors, runs the Catch2 suite, the Python interop tests and the packaging consumers
# (ctest -L consumer; the MinGW-w64 ones, label mingw, are left to CI). Plain commands,
# not the presets, so that CMake 3.20 and later (Ubuntu 22.04's 3.22) run it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh g++ make cmake catch2 python3 pkg-config meson ninja-build socat libssl-dev openssl git
rm -rf build/dev
cmake -S . -B build/dev -DCMAKE_BUILD_TYPE=Debug -DGREET_SOCKET_TEST_CONSUMERS=ON
cmake --build build/dev -j2
ctest --test-dir build/dev -j2 --output-on-failure --timeout 300 --no-tests=error -LE mingw
