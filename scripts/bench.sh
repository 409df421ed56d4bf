#!/usr/bin/env bash
# Benchmarks: greet_socket against raw POSIX sockets, asio's synchronous API and Python,
# every workload, interleaved rounds; prints the table (see bench/README.md).
#   scripts/bench.sh            5 rounds, about five minutes
#   scripts/bench.sh --short    one small round, seconds: proves that it builds and runs
#   scripts/bench.sh --rounds 9
# asio is included when <asio.hpp> is installed (Debian: libasio-dev), skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh g++ python3
mkdir -p build/bench
flags=(-std=c++17 -O2 -I. -Wall -Wextra -pthread)
asio=()
if echo '#include <asio.hpp>' | g++ -std=c++17 -x c++ -fsyntax-only - 2>/dev/null; then
  flags+=(-DBENCH_ASIO)
  asio=(--asio)
fi
g++ "${flags[@]}" bench/bench.cpp -o build/bench/bench
python3 bench/run.py ${asio[@]+"${asio[@]}"} "$@"
