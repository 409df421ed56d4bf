#!/usr/bin/env bash
# Soak: thousands of connections and messages through Server::serve, every byte checked,
# descriptors and resident memory required flat (tests/soak.cpp says how flat and why).
#   scripts/soak.sh            # CI's length, 60 s
#   scripts/soak.sh 3600       # an hour
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
scripts/deps.sh g++
mkdir -p build/soak
g++ -std=c++17 -O2 -g -I. -pthread -Wall -Wextra -Wpedantic -Werror tests/soak.cpp -o build/soak/soak
build/soak/soak "$seconds"
