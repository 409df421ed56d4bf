#!/usr/bin/env bash
# Fuzzes the UTF-8 functions, the receive path, the TLS receive path (start_tls,
# accept_tls, records after a handshake) and the request-response servers (serve_lines and
# serve_messages against a client that sends the input as requests) with libFuzzer under
# AddressSanitizer and UndefinedBehaviorSanitizer, each target for the given seconds (default 60).
#   scripts/fuzz.sh            # CI's length
#   scripts/fuzz.sh 3600       # an hour per target
# Seeds come from tests/fuzz/<target>/; what a run learns stays in build/fuzz/corpus-<target>/
# (fuzz_tls also writes seeds there from live handshakes with a certificate it makes).
# A finding stops the run with a non-zero status and leaves build/fuzz/crash-* to replay
# with build/fuzz/<target> <file>.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
scripts/deps.sh clang libclang-rt-14-dev libssl-dev
out=build/fuzz
mkdir -p "$out"
flags=(-std=c++17 -g -O1 -I. -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
       -Wall -Wextra -Wpedantic -Werror)
targets=(utf8 recv tls serve)
for target in "${targets[@]}"; do
  libraries=()
  [ "$target" = tls ] && libraries=(-lssl -lcrypto)
  clang++ "${flags[@]}" "tests/fuzz/fuzz_$target.cpp" -o "$out/fuzz_$target" ${libraries[@]+"${libraries[@]}"}
done
for target in "${targets[@]}"; do
  corpus="$out/corpus-$target"
  mkdir -p "$corpus"
  echo "== fuzz_$target for $seconds s"
  (cd "$out" && "./fuzz_$target" -max_total_time="$seconds" -max_len=4096 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="./" "corpus-$target" "../../tests/fuzz/$target" 2>"fuzz_$target.log") || {
    tail -n 60 "$out/fuzz_$target.log"
    echo "fuzz_$target: finding; see $out/fuzz_$target.log" >&2
    exit 1
  }
  grep -E "stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb" "$out/fuzz_$target.log" |
    sed "s/^/fuzz_$target: /"
done
