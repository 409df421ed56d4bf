#!/usr/bin/env bash
# Builds and runs a small consumer of greet_socket (tests/consumers/main.cpp: one
# loopback round trip) through every route a user takes the library in, and checks
# what each route installs or leaks. One PASS/FAIL line per route, then a total.
#
#   scripts/test-consumers.sh           drop-in, CMake (subdirectory, FetchContent,
#                                       find_package), pkg-config, meson (pkg-config,
#                                       subproject), the vcpkg port's layout, versions
#   scripts/test-consumers.sh --mingw   also cross-compiles for Windows with MinGW-w64,
#                                       through CMake and meson (link checks: ws2_32
#                                       must reach every route)
#
# Needs g++, cmake, pkg-config, meson, ninja and python3; --mingw needs
# g++-mingw-w64-x86-64-posix. Installs nothing. Scratch space: build/consumers/.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
consumers=$root/tests/consumers
work=$root/build/consumers
mingw=0
for arg in "$@"; do
  case $arg in
    --mingw) mingw=1 ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

rm -rf "$work"
mkdir -p "$work"
if command -v ninja >/dev/null; then export CMAKE_GENERATOR=Ninja; fi
export MAKEFLAGS=-j2
unset PKG_CONFIG_PATH PKG_CONFIG_LIBDIR CMAKE_PREFIX_PATH

# --- helpers -----------------------------------------------------------------------

# A consumer project: the route's files and the shared main.cpp and leak-checks.cmake,
# in a fresh directory.
new_consumer() { # route, directory
  mkdir -p "$2"
  cp -R "$consumers/$1/." "$2/"
  cp "$consumers/main.cpp" "$consumers/leak-checks.cmake" "$2/"
}

# The project as a user vendors it: the source tree without .git and build output.
vendor_copy() { # destination
  mkdir -p "$1"
  tar -C "$root" --exclude=./.git --exclude=./build --exclude='./build-*' \
    --exclude='./subprojects/*' -cf - . | tar -C "$1" -xf -
}

# The files under a prefix must be exactly the expected ones; no empty directories.
check_tree() { # prefix, expected relative paths...
  local prefix=$1
  shift
  local actual expected empty
  actual=$(cd "$prefix" && find . \( -type f -o -type l \) | sed 's#^\./##' | LC_ALL=C sort)
  expected=$(printf '%s\n' "$@" | LC_ALL=C sort)
  if [ "$actual" != "$expected" ]; then
    echo "install tree of $prefix differs from the expected one (< expected, > actual):"
    diff <(echo "$expected") <(echo "$actual")
    return 1
  fi
  empty=$(find "$prefix" -mindepth 1 -type d -empty)
  if [ -n "$empty" ]; then
    echo "empty directories: $empty"
    return 1
  fi
  echo "install tree of $prefix: $(echo "$actual" | tr '\n' ' ')"
}

same_license() { # installed license file
  cmp "$root/LICENSE" "$1" && echo "license: $1"
}

run_consumer() { # executable
  echo "running $1"
  "$1"
}

# Windows executables cannot run here; their import table must name WS2_32.dll.
imports_ws2_32() { # executable
  local table
  table=$(x86_64-w64-mingw32-objdump -p "$1")
  if grep -qi 'DLL Name: ws2_32.dll' <<<"$table"; then
    echo "$1 imports WS2_32.dll"
  else
    echo "$1 does not import WS2_32.dll"
    return 1
  fi
}

cmake_build() { # source dir, build dir, configure options...
  local src=$1 bin=$2
  shift 2
  cmake -S "$src" -B "$bin" "$@"
  cmake --build "$bin"
}

# The project installed by CMake, as the README's install commands do it; shared by
# the find_package and pkg-config routes (created by whichever runs first).
cmake_stage() { # name, configure options...
  local name=$1
  shift
  if [ ! -e "$work/$name.done" ]; then
    cmake_build "$root" "$work/$name-build" -DCMAKE_BUILD_TYPE=Release \
      -DGREET_SOCKET_BUILD_TESTS=OFF -DGREET_SOCKET_BUILD_EXAMPLES=OFF \
      "-DCMAKE_INSTALL_PREFIX=$work/$name" "$@"
    cmake --install "$work/$name-build"
    touch "$work/$name.done"
  fi
}

posix_install_tree=(
  include/greet_socket.hpp
  share/cmake/greet_socket/greet_socketConfig.cmake
  share/cmake/greet_socket/greet_socketConfigVersion.cmake
  share/cmake/greet_socket/greet_socketTargets.cmake
  share/doc/greet_socket/LICENSE
  share/pkgconfig/greet_socket.pc
)

# The parent project's tests and install rules must be its own only.
check_no_leaks() { # build dir
  local count
  count=$(ctest --test-dir "$1" -N | sed -n 's/^Total Tests: //p')
  if [ "$count" != 1 ]; then
    ctest --test-dir "$1" -N
    echo "expected the consumer's one test, found $count"
    return 1
  fi
  cmake --install "$1" --prefix "$1/install-check"
  check_tree "$1/install-check" "bin/consumer${EXE:-}"
}

# --- routes ------------------------------------------------------------------------

route_dropin() {
  new_consumer dropin dropin
  cp "$root/greet_socket.hpp" dropin/
  (cd dropin && ./build.sh)
  run_consumer dropin/consumer
}

route_cmake_subdirectory() {
  new_consumer cmake-subdirectory subdirectory
  vendor_copy subdirectory/greet_socket
  cmake_build subdirectory subdirectory/build
  run_consumer subdirectory/build/consumer
  check_no_leaks subdirectory/build
}

route_cmake_fetchcontent() {
  new_consumer cmake-fetchcontent fetchcontent
  vendor_copy fetchcontent/greet_socket-release
  tar -C fetchcontent -czf fetchcontent/greet_socket-release.tar.gz greet_socket-release
  rm -rf fetchcontent/greet_socket-release
  cmake_build fetchcontent fetchcontent/build -DFETCHCONTENT_FULLY_DISCONNECTED=OFF \
    "-DGREET_SOCKET_ARCHIVE=$work/fetchcontent/greet_socket-release.tar.gz"
  run_consumer fetchcontent/build/consumer
  check_no_leaks fetchcontent/build
}

route_cmake_find_package() {
  cmake_stage cmake-stage
  check_tree cmake-stage "${posix_install_tree[@]}"
  same_license cmake-stage/share/doc/greet_socket/LICENSE
  # The installed tree must not remember where it was installed.
  cp -R cmake-stage moved-stage
  new_consumer cmake-find-package find-package
  cmake_build find-package find-package/build "-DCMAKE_PREFIX_PATH=$work/moved-stage"
  grep -q "moved-stage/share/cmake/greet_socket" find-package/build/CMakeCache.txt
  run_consumer find-package/build/consumer
}

route_pkg_config() {
  cmake_stage cmake-stage
  export PKG_CONFIG_PATH=$work/cmake-stage/share/pkgconfig
  local version libs
  version=$(pkg-config --modversion greet_socket)
  libs=$(pkg-config --libs greet_socket)
  echo "pkg-config: greet_socket $version, cflags '$(pkg-config --cflags greet_socket)', libs '$libs'"
  [ -z "$libs" ]
  new_consumer pkg-config pkg-config
  (cd pkg-config && ./build.sh)
  run_consumer pkg-config/consumer
}

route_meson_pkg_config() {
  meson setup meson-stage-build "$root" -Dtests=disabled -Dexamples=disabled \
    "--prefix=$work/meson-stage"
  meson install -C meson-stage-build
  check_tree meson-stage include/greet_socket.hpp share/doc/greet_socket/LICENSE \
    share/pkgconfig/greet_socket.pc
  same_license meson-stage/share/doc/greet_socket/LICENSE
  new_consumer meson-pkg-config meson-pkg-config
  # nofallback: the dependency can only come from pkg-config.
  PKG_CONFIG_PATH=$work/meson-stage/share/pkgconfig \
    meson setup meson-pkg-config/build meson-pkg-config --wrap-mode=nofallback | tee meson-pkg-config/setup.log
  grep -q "Run-time dependency greet_socket found: YES" meson-pkg-config/setup.log
  meson compile -C meson-pkg-config/build
  run_consumer meson-pkg-config/build/consumer
}

route_meson_subproject() {
  new_consumer meson-subproject meson-subproject
  vendor_copy meson-subproject/subprojects/greet_socket
  meson setup meson-subproject/build meson-subproject --force-fallback-for=greet_socket \
    | tee meson-subproject/setup.log
  grep -q "Executing subproject greet_socket" meson-subproject/setup.log
  grep -q "Dependency greet_socket found: YES .*(overridden)" meson-subproject/setup.log
  meson compile -C meson-subproject/build
  run_consumer meson-subproject/build/consumer
  # Only the consumer is built and installed: no tests, examples, header or .pc.
  local targets installed
  targets=$(meson introspect --targets meson-subproject/build |
    python3 -c 'import json,sys; print(" ".join(sorted(t["name"] for t in json.load(sys.stdin))))')
  installed=$(meson introspect --installed meson-subproject/build |
    python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin).values())))')
  echo "targets: $targets; installs: $installed"
  [ "$targets" = consumer ]
  [ "$(basename "$installed")" = consumer ]
}

route_vcpkg_port() {
  cmake -DPORT_DIR="$root/ports/greet-socket" -DWORK_DIR="$work/vcpkg" \
    -P "$consumers/vcpkg-port/run-portfile.cmake"
  check_tree vcpkg/packages \
    include/greet_socket.hpp \
    share/greet_socket/greet_socketConfig.cmake \
    share/greet_socket/greet_socketConfigVersion.cmake \
    share/greet_socket/greet_socketTargets.cmake \
    share/pkgconfig/greet_socket.pc \
    share/doc/greet_socket/LICENSE \
    share/greet-socket/copyright
  same_license vcpkg/packages/share/greet-socket/copyright
  new_consumer cmake-find-package vcpkg-find-package
  cmake_build vcpkg-find-package vcpkg-find-package/build "-DCMAKE_PREFIX_PATH=$work/vcpkg/packages"
  run_consumer vcpkg-find-package/build/consumer
  new_consumer pkg-config vcpkg-pkg-config
  (cd vcpkg-pkg-config && PKG_CONFIG_PATH=$work/vcpkg/packages/share/pkgconfig ./build.sh)
  run_consumer vcpkg-pkg-config/consumer
}

route_versions() {
  cmake_stage cmake-stage
  [ -e meson-stage-build ] || meson setup meson-stage-build "$root" -Dtests=disabled -Dexamples=disabled
  python3 "$root/tests/version_test.py" \
    --cmake-version "$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' cmake-stage-build/CMakeCache.txt)" \
    --meson-version "$(meson introspect --projectinfo meson-stage-build |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')" \
    --pc cmake-stage/share/pkgconfig/greet_socket.pc \
    --pc meson-stage-build/meson-private/greet_socket.pc \
    --config-version cmake-stage/share/cmake/greet_socket/greet_socketConfigVersion.cmake
}

# MinGW-w64: the Winsock half of the header, and ws2_32 through each route.
mingw_toolchain=-DCMAKE_TOOLCHAIN_FILE=$root/cmake/mingw-w64-x86_64.cmake

route_mingw_examples() {
  cmake_build "$root" mingw-examples "$mingw_toolchain" -DGREET_SOCKET_BUILD_TESTS=OFF \
    -DGREET_SOCKET_BUILD_EXAMPLES=ON
  imports_ws2_32 mingw-examples/server.exe
  imports_ws2_32 mingw-examples/client.exe
}

route_mingw_dropin() {
  new_consumer dropin mingw-dropin
  cp "$root/greet_socket.hpp" mingw-dropin/
  (cd mingw-dropin && CXX=x86_64-w64-mingw32-g++-posix LIBS=-lws2_32 EXE=.exe ./build.sh)
  imports_ws2_32 mingw-dropin/consumer.exe
}

route_mingw_subdirectory() {
  new_consumer cmake-subdirectory mingw-subdirectory
  vendor_copy mingw-subdirectory/greet_socket
  cmake_build mingw-subdirectory mingw-subdirectory/build "$mingw_toolchain"
  imports_ws2_32 mingw-subdirectory/build/consumer.exe
  EXE=.exe check_no_leaks mingw-subdirectory/build
}

route_mingw_find_package() {
  cmake_stage mingw-stage "$mingw_toolchain"
  check_tree mingw-stage \
    include/greet_socket.hpp \
    share/cmake/greet_socket/greet_socketConfig.cmake \
    share/cmake/greet_socket/greet_socketConfigVersion.cmake \
    share/cmake/greet_socket/greet_socketTargets.cmake \
    share/doc/greet_socket/LICENSE \
    lib/pkgconfig/greet_socket.pc
  new_consumer cmake-find-package mingw-find-package
  # The toolchain looks for packages only below its roots: the stage becomes one.
  cmake_build mingw-find-package mingw-find-package/build "$mingw_toolchain" \
    "-DCMAKE_PREFIX_PATH=$work/mingw-stage" "-DCMAKE_FIND_ROOT_PATH=$work/mingw-stage"
  imports_ws2_32 mingw-find-package/build/consumer.exe
}

route_mingw_pkg_config() {
  cmake_stage mingw-stage "$mingw_toolchain"
  export PKG_CONFIG_LIBDIR=$work/mingw-stage/lib/pkgconfig
  local libs
  libs=$(pkg-config --libs greet_socket | xargs) # xargs trims the trailing blank
  echo "pkg-config for Windows: libs '$libs'"
  [ "$libs" = -lws2_32 ]
  new_consumer pkg-config mingw-pkg-config
  (cd mingw-pkg-config && CXX=x86_64-w64-mingw32-g++-posix EXE=.exe ./build.sh)
  imports_ws2_32 mingw-pkg-config/consumer.exe
}

# meson's cross file for the same compiler (the CMake routes use the toolchain file).
mingw_cross_file() {
  cat >mingw-w64-x86_64.ini <<'EOF_CROSS'
[binaries]
cpp = 'x86_64-w64-mingw32-g++-posix'
ar = 'x86_64-w64-mingw32-ar'
strip = 'x86_64-w64-mingw32-strip'
pkg-config = 'pkg-config'

[host_machine]
system = 'windows'
cpu_family = 'x86_64'
cpu = 'x86_64'
endian = 'little'
EOF_CROSS
}

route_mingw_meson() {
  mingw_cross_file
  meson setup mingw-meson-stage-build "$root" --cross-file mingw-w64-x86_64.ini \
    -Dtests=disabled -Dexamples=enabled "--prefix=$work/mingw-meson-stage"
  meson compile -C mingw-meson-stage-build
  imports_ws2_32 mingw-meson-stage-build/server.exe
  meson install -C mingw-meson-stage-build
  check_tree mingw-meson-stage include/greet_socket.hpp share/doc/greet_socket/LICENSE \
    lib/pkgconfig/greet_socket.pc
  local libs
  libs=$(PKG_CONFIG_LIBDIR=$work/mingw-meson-stage/lib/pkgconfig pkg-config --libs greet_socket | xargs)
  echo "meson's pkg-config file for Windows: libs '$libs'"
  [ "$libs" = -lws2_32 ]
  new_consumer meson-subproject mingw-meson-subproject
  vendor_copy mingw-meson-subproject/subprojects/greet_socket
  meson setup mingw-meson-subproject/build mingw-meson-subproject --cross-file mingw-w64-x86_64.ini \
    --force-fallback-for=greet_socket
  meson compile -C mingw-meson-subproject/build
  imports_ws2_32 mingw-meson-subproject/build/consumer.exe
}

# --- run -----------------------------------------------------------------------------

passed=0
failed=0
run_route() { # name, function
  local name=$1 log=$work/$1.log status start=$SECONDS
  (cd "$work" || exit; set -e; "$2") >"$log" 2>&1
  status=$?
  if [ "$status" -eq 0 ]; then
    echo "PASS $name ($((SECONDS - start)) s)"
    passed=$((passed + 1))
  else
    echo "FAIL $name (log: ${log#"$root"/})"
    tail -n 25 "$log" | sed 's/^/    /'
    failed=$((failed + 1))
  fi
}

run_route dropin route_dropin
run_route cmake-subdirectory route_cmake_subdirectory
run_route cmake-fetchcontent route_cmake_fetchcontent
run_route cmake-find-package route_cmake_find_package
run_route pkg-config route_pkg_config
run_route meson-pkg-config route_meson_pkg_config
run_route meson-subproject route_meson_subproject
run_route vcpkg-port route_vcpkg_port
run_route versions route_versions
if [ "$mingw" -eq 1 ]; then
  run_route mingw-examples route_mingw_examples
  run_route mingw-dropin route_mingw_dropin
  run_route mingw-cmake-subdirectory route_mingw_subdirectory
  run_route mingw-cmake-find-package route_mingw_find_package
  run_route mingw-pkg-config route_mingw_pkg_config
  run_route mingw-meson route_mingw_meson
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
