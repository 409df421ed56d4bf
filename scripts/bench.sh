#!/usr/bin/env bash
# Benchmarks: greet_socket against raw POSIX sockets, asio's synchronous API and Python,
# every workload, interleaved rounds; prints the table (see bench/README.md).
#   scripts/bench.sh            5 rounds, about five minutes
#   scripts/bench.sh --short    one small round, seconds: proves that it builds and runs
#   scripts/bench.sh --rounds 9
# asio is included when <asio.hpp> is installed (Debian: libasio-dev), skipped otherwise;
# W7 (TLS, bench/tls_run.py) when OpenSSL 3's headers and the openssl command are (libssl-dev).
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
tls=false
tls_build=
if printf '#include <openssl/ssl.h>\n#if OPENSSL_VERSION_NUMBER < 0x30000000L\n#error\n#endif\n' |
    g++ -std=c++17 -x c++ -fsyntax-only - 2>/dev/null && command -v openssl >/dev/null; then
  tls=true
  g++ "${flags[@]}" bench/tls_bench.cpp -o build/bench/tls_bench -lssl -lcrypto &
  tls_build=$!
fi
g++ "${flags[@]}" bench/bench.cpp -o build/bench/bench
g++ "${flags[@]}" bench/serve_bench.cpp -o build/bench/serve_bench
[ -z "$tls_build" ] || wait "$tls_build" # in parallel with bench.cpp's: 2 CPUs
# --workloads w7 alone: the TLS rows only (run.py would find none of its own).
only_tls=false
previous=
for argument in "$@"; do
  [ "$previous" = --workloads ] && [ "$argument" = w7 ] && only_tls=true
  [ "$argument" = --workloads=w7 ] && only_tls=true
  previous=$argument
done
$only_tls || python3 bench/run.py ${asio[@]+"${asio[@]}"} "$@"
if $tls; then
  scripts/make-tls-certs.sh build/bench/tls-certs # throwaway, fresh each run
  python3 bench/tls_run.py "$@"
else
  echo "note: W7 (TLS) skipped: OpenSSL 3's headers or the openssl command not found (Debian: apt-get install libssl-dev openssl)"
fi
