#!/usr/bin/env bash
# Static analysis of the header, the examples and the tests: clang-tidy with the checks
# in .clang-tidy (every finding is an error), then cppcheck. Both must report nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh clang-tidy clang-format cppcheck catch2
jobs=${JOBS:-2}
sources=(examples/*.cpp examples/lessons/*.cpp tests/*.cpp tests/fuzz/*.cpp)
flags=(-std=c++17 -I. -Itests)
mkdir -p build

echo "== $(clang-format --version | grep -o 'version [0-9.]*' | sed 's/^/clang-format /')"
clang-format --dry-run --Werror greet_socket.hpp
echo "clang-format: greet_socket.hpp as .clang-format says"

echo "== $(clang-tidy --version | grep -m1 -o 'LLVM version [0-9.]*' | sed 's/LLVM/clang-tidy/')"
# One process per file, $jobs at a time; the header is checked through each of them. The
# path-sensitive analyzer (clang-analyzer-*) follows the header's code from the examples and
# the fuzz targets, which call every part of it. On the unit tests it is off: there it spent
# its time in Catch2's macros (85 % of the check; the step took 26 min on 2 cores, now 9).
checks() { case $1 in tests/fuzz/*) ;; tests/*) echo "--checks=-clang-analyzer-*" ;; esac; }
export -f checks
if ! printf '%s\n' "${sources[@]}" |
    xargs -P "$jobs" -I{} bash -c 'clang-tidy --quiet $(checks "$1") "$1" -- "${@:2}" 2>/dev/null' _ {} "${flags[@]}" \
      >build/clang-tidy.log; then
  cat build/clang-tidy.log
  echo "clang-tidy: findings above" >&2
  exit 1
fi
echo "clang-tidy: ${#sources[@]} files and greet_socket.hpp, no findings"

echo "== $(cppcheck --version)"
# Suppressed, each a false positive of cppcheck 2.10:
#   danglingTemporaryLifetime in greet_socket.hpp: utf8::decode(utf8::sanitize(text)) is
#     read as keeping a pointer into the temporary string; decode only reads it while it lives.
#   cppcheckError in tests/test_serve.cpp, tests/test_defects.cpp and tests/test_connect.cpp:
#     its parser stops at std::chrono literals (5s, 50ms).
# OPENSSL_VERSION_NUMBER: cppcheck reads no system header, so the files that define
# GREET_SOCKET_OPENSSL would stop at the header's "needs OpenSSL 3" #error.
if ! cppcheck --std=c++17 --language=c++ --enable=warning,performance,portability --inline-suppr --error-exitcode=1 \
    --quiet -I. -Itests -D__linux__ -D__GNUC__ -DOPENSSL_VERSION_NUMBER=0x30000000L -j "$jobs" \
    --suppress=missingIncludeSystem \
    --suppress=danglingTemporaryLifetime:greet_socket.hpp \
    --suppress=cppcheckError:tests/test_serve.cpp \
    --suppress=cppcheckError:tests/test_defects.cpp \
    --suppress=cppcheckError:tests/test_connect.cpp \
    "${sources[@]}" 2>build/cppcheck.log; then
  cat build/cppcheck.log
  echo "cppcheck: findings above" >&2
  exit 1
fi
echo "cppcheck: ${#sources[@]} files and greet_socket.hpp, no findings"
