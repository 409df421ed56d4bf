#!/usr/bin/env bash
# The Winsock half of the header, tested: cross-compiles the tests and examples for
# 64-bit Windows with MinGW-w64 and runs them under Wine: ctest (the Catch2 suite and
# the lessons), then the tutorial's server and client talking to each other, which the
# native build tests from Python.
#
#   scripts/test-windows.sh
#
# Needs cmake, catch2 (v2, header-only), g++-mingw-w64-x86-64-posix and wine64; installs
# nothing. With g++-mingw-w64-x86-64-win32 installed too, it also checks that the win32
# thread model stops at the header's #error. Scratch space: build/windows/ (the Wine
# prefix in it is kept between runs).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=$root/build/windows
build=$work/build
cd "$root"

# Debian's wine64 installs its programs in /usr/lib/wine; the wine package (a wrapper
# choosing 32 or 64 bits) is not needed.
PATH=$PATH:/usr/lib/wine
for tool in cmake x86_64-w64-mingw32-g++-posix wine64 wineserver64; do
  command -v "$tool" >/dev/null || { echo "test-windows: $tool not found" >&2; exit 1; }
done
wine=$(command -v wine64)
if [ ! -f /usr/include/catch2/catch.hpp ] || [ ! -d /usr/lib/cmake/Catch2 ]; then
  echo "test-windows: Debian's catch2 (v2) not found" >&2
  exit 1
fi

# A prefix of our own, no display, no Wine debug chatter, no menu entries or Mono/Gecko.
export WINEPREFIX=$work/wineprefix
export WINEDEBUG=-all
export WINEDLLOVERRIDES="winemenubuilder.exe=d;mscoree=d;mshtml=d"
unset DISPLAY WAYLAND_DISPLAY
mkdir -p "$WINEPREFIX"

# The server first, detached from our pipes: a Wine process started later would
# otherwise start it with the caller's stdout, and whoever reads that pipe (ctest,
# CMake's test discovery, a CI log) would wait for it to close for ever.
start=$SECONDS
status=0
wineserver64 -p >"$work/wineserver.log" 2>&1 </dev/null || status=$?
# Status 2: a server for this prefix is running already (a run in another shell).
[ "$status" -eq 0 ] || [ "$status" -eq 2 ] || { cat "$work/wineserver.log" >&2; exit 1; }
trap 'wineserver64 -k >/dev/null 2>&1 </dev/null || true' EXIT
"$wine" wineboot --init >"$work/wineboot.log" 2>&1 </dev/null || { tail -n 20 "$work/wineboot.log" >&2; exit 1; }
echo "wine prefix ready ($((SECONDS - start)) s): $WINEPREFIX"

# The README's MinGW drop-in line, exactly as written there: the consumers' main.cpp next
# to a copy of the header, built into a.exe (the line names no -o), which must need no
# MinGW DLL (-static) and make its loopback round trip.
readme_line=(x86_64-w64-mingw32-g++-posix -std=c++17 -static main.cpp -lws2_32)
grep -qF -- "${readme_line[*]}" README.md || { echo "test-windows: README.md lacks the line: ${readme_line[*]}" >&2; exit 1; }
dropin=$work/dropin
rm -rf "$dropin"
mkdir -p "$dropin"
cp tests/consumers/main.cpp greet_socket.hpp "$dropin/"
(cd "$dropin" && "${readme_line[@]}")
if x86_64-w64-mingw32-objdump -p "$dropin/a.exe" | grep -i 'DLL Name: lib'; then
  echo "test-windows: a.exe needs the MinGW DLLs above" >&2
  exit 1
fi
reply=$(timeout 60 "$wine" "$dropin/a.exe" </dev/null | tr -d '\r') || true
[[ $reply == "greet_socket "*": loopback round trip on port "*" ok" ]] || { echo "a.exe printed: $reply" >&2; exit 1; }
echo "the README's MinGW line: $reply ($((SECONDS - start)) s)"

# The win32 thread model (the plain x86_64-w64-mingw32-g++ once Debian's g++-mingw-w64 is
# installed) has a libstdc++ without std::mutex: its first error must be the header's own,
# naming the -posix compiler.
if command -v x86_64-w64-mingw32-g++-win32 >/dev/null; then
  (cd "$dropin" && x86_64-w64-mingw32-g++-win32 -std=c++17 -static main.cpp -lws2_32 -o win32.exe) >"$work/win32.log" 2>&1 &&
    { echo "test-windows: the win32 thread model compiled the header" >&2; exit 1; }
  first=$(grep -m1 'error' "$work/win32.log") || true
  [[ $first == *"#error"*"x86_64-w64-mingw32-g++-posix"* ]] ||
    { echo "test-windows: the win32 thread model's first error is not the header's #error:" >&2; head -n 5 "$work/win32.log" >&2; exit 1; }
  echo "the win32 thread model stops at: ${first#*#error }"
else
  echo "not checked (no x86_64-w64-mingw32-g++-win32 here): the win32 thread model's #error"
fi

# Catch2 as a package of the Windows build: the toolchain finds packages only below its
# roots, and /usr/include on a MinGW compiler's path breaks the build, so a root of its
# own holds a copy of Catch2's CMake files and include/ with nothing but catch2/ (the
# package takes its include directory from where its files are). Left out: the import
# file of Catch2WithMain, a library for Linux that this header-only use never links.
catch2=$work/catch2
rm -rf "$catch2"
mkdir -p "$catch2/lib/cmake/Catch2" "$catch2/include"
find /usr/lib/cmake/Catch2 -maxdepth 1 -name '*.cmake' ! -name 'Catch2Targets-*.cmake' \
  -exec cp {} "$catch2/lib/cmake/Catch2/" \;
ln -s /usr/include/catch2 "$catch2/include/catch2"

# Build; Catch2's test discovery runs greet_tests.exe through Wine already. No build
# type: without optimisation or debug information the static executables build fastest.
rm -rf "$build"
cmake -S "$root" -B "$build" -DCMAKE_TOOLCHAIN_FILE="$root/cmake/mingw-w64-x86_64-wine.cmake" \
  -DCMAKE_CROSSCOMPILING_EMULATOR="$wine" -DCMAKE_BUILD_TYPE= -DCMAKE_FIND_ROOT_PATH="$catch2" \
  -DGREET_SOCKET_BUILD_TESTS=ON -DGREET_SOCKET_BUILD_EXAMPLES=ON
cmake --build "$build" -j2
echo "built ($((SECONDS - start)) s)"

ctest --test-dir "$build" -j2 --output-on-failure --timeout 300
echo "tests passed ($((SECONDS - start)) s)"


# The tutorial: server.exe on port 0, client.exe sending each name, both under Wine.
"$wine" "$build/server.exe" 0 >"$work/server.out" 2>&1 </dev/null &
server=$!
trap 'kill "$server" 2>/dev/null || true; wineserver64 -k >/dev/null 2>&1 </dev/null || true' EXIT
port=
for _ in $(seq 100); do
  port=$(tr -d '\r' <"$work/server.out" | sed -n 's/^waiting for connection on .*:\([0-9]*\)$/\1/p')
  [ -n "$port" ] && break
  sleep 0.2
done
[ -n "$port" ] || { echo "server.exe did not start:"; cat "$work/server.out"; exit 1; }
for name in Ada Zoë 世界 🚀; do
  reply=$(printf '%s\n' "$name" | timeout 60 "$wine" "$build/client.exe" "$port" | tr -d '\r')
  [ "$reply" = "enter your name - message from server: hello $name" ] ||
    { echo "client.exe sent $name and printed: $reply"; cat "$work/server.out"; exit 1; }
  tr -d '\r' <"$work/server.out" | grep -q "^client connected 127\.0\.0\.1:[0-9]* $name\$" ||
    { echo "server.exe did not print $name:"; cat "$work/server.out"; exit 1; }
done
kill "$server"
echo "server.exe and client.exe exchanged 4 names ($((SECONDS - start)) s)"
