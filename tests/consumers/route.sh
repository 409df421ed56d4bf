#!/usr/bin/env bash
# One consumer route, or one step of one, as tests/consumers/CMakeLists.txt registers them
# with CTest (ctest -L consumer; the MinGW-w64 routes also carry the label mingw):
#
#   tests/consumers/route.sh <work dir> <route> [arguments]
#
# A route builds tests/consumers/main.cpp (one loopback round trip) or tls.cpp (the TLS
# build) the way a user takes the library, runs it (MinGW: checks that the .exe imports
# WS2_32.dll) and checks what it installs or leaks. Installs nothing outside <work dir>.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
consumers=$root/tests/consumers
work=${1:?usage: route.sh <work dir> <route> [arguments]}
route=${2:?usage: route.sh <work dir> <route> [arguments]}
shift 2
mkdir -p "$work"
cd "$work"
if command -v ninja >/dev/null; then export CMAKE_GENERATOR=Ninja; fi
unset PKG_CONFIG_PATH PKG_CONFIG_LIBDIR CMAKE_PREFIX_PATH
mingw_cxx=x86_64-w64-mingw32-g++-posix
mingw_toolchain=-DCMAKE_TOOLCHAIN_FILE=$root/cmake/mingw-w64-x86_64.cmake

# --- helpers -----------------------------------------------------------------------

# A consumer project: the route's files and the shared programs, in a fresh directory.
new_consumer() { # route, directory
  rm -rf "$2"
  mkdir -p "$2"
  cp -R "$consumers/$1/." "$2/"
  cp "$consumers/main.cpp" "$consumers/tls.cpp" "$2/"
}

# The project as a user vendors it: the source tree without .git and build output.
vendor_copy() { # destination
  rm -rf "$1"
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

# Windows executables are not run here; their import table must name WS2_32.dll.
imports_ws2_32() { # executables...
  local exe table
  for exe in "$@"; do
    table=$(x86_64-w64-mingw32-objdump -p "$exe") # not piped into grep -q: pipefail and SIGPIPE
    if grep -qi 'DLL Name: ws2_32.dll' <<<"$table"; then
      echo "$exe imports WS2_32.dll"
    else
      echo "$exe does not import WS2_32.dll"
      return 1
    fi
  done
}

cmake_build() { # source dir, build dir, configure options...
  local src=$1 bin=$2
  shift 2
  rm -rf "$bin"
  cmake -S "$src" -B "$bin" "$@"
  cmake --build "$bin"
}

# The project installed by CMake, as the README's install commands do it.
cmake_stage() { # prefix, configure options...
  local prefix=$1
  shift
  rm -rf "$prefix"
  cmake_build "$root" "$prefix-build" -DCMAKE_BUILD_TYPE=Release \
    -DGREET_SOCKET_BUILD_TESTS=OFF -DGREET_SOCKET_BUILD_EXAMPLES=OFF \
    "-DCMAKE_INSTALL_PREFIX=$work/$prefix" "$@"
  cmake --install "$prefix-build"
}

cmake_files=(
  share/cmake/greet_socket/greet_socketConfig.cmake
  share/cmake/greet_socket/greet_socketConfigVersion.cmake
  share/cmake/greet_socket/greet_socketTargets.cmake
)

# meson's cross file for the MinGW compiler (the CMake routes use the toolchain file).
mingw_cross_file() {
  cat >mingw-w64-x86_64.ini <<EOF_CROSS
[binaries]
cpp = '$mingw_cxx'
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

# --- steps the CMake routes' ctest --build-and-test calls ---------------------------

# The parent project's tests and install rules must be its own only.
route_check-leaks() { # build dir, [.exe]
  local build=$1 exe=${2:-} count
  count=$(ctest --test-dir "$build" -N | sed -n 's/^Total Tests: //p')
  if [ "$count" != 1 ]; then
    ctest --test-dir "$build" -N
    echo "expected the consumer's one test, found $count"
    return 1
  fi
  if [ -z "$exe" ]; then
    ctest --test-dir "$build" --output-on-failure
  else
    imports_ws2_32 "$build/consumer$exe"
  fi
  rm -rf "$build/install-check"
  cmake --install "$build" --prefix "$build/install-check"
  check_tree "$build/install-check" "bin/consumer$exe"
}

# ctest --build-and-test <source> <build> ..., in a fresh build directory.
route_build-and-test() { # ctest, --build-and-test, source, build, options...
  rm -rf "$4"
  "$@"
}

route_run() { # executable
  run_consumer "$1"
}

route_imports-ws2_32() { # executables...
  imports_ws2_32 "$@"
}

# --- fixtures: installed trees other routes use -------------------------------------

route_cmake-stage() {
  cmake_stage cmake-stage
  check_tree cmake-stage include/greet_socket.hpp "${cmake_files[@]}" \
    share/doc/greet_socket/LICENSE lib/pkgconfig/greet_socket.pc
  same_license cmake-stage/share/doc/greet_socket/LICENSE
  # The installed tree must not remember where it was installed: routes use a moved copy.
  rm -rf moved-stage
  cp -R cmake-stage moved-stage
}

route_cmake-openssl-stage() {
  cmake_stage cmake-openssl-stage -DGREET_SOCKET_OPENSSL=ON
  check_tree cmake-openssl-stage include/greet_socket.hpp "${cmake_files[@]}" \
    share/doc/greet_socket/LICENSE lib/pkgconfig/greet_socket.pc lib/pkgconfig/greet_socket_openssl.pc
}

route_meson-stage() {
  rm -rf meson-stage meson-stage-build
  meson setup meson-stage-build "$root" --libdir=lib -Dtests=disabled -Dexamples=disabled -Dopenssl=enabled \
    "--prefix=$work/meson-stage"
  meson install -C meson-stage-build
  check_tree meson-stage include/greet_socket.hpp share/doc/greet_socket/LICENSE \
    lib/pkgconfig/greet_socket.pc lib/pkgconfig/greet_socket_openssl.pc
  same_license meson-stage/share/doc/greet_socket/LICENSE
  # One template, one file: meson's .pc files are CMake's.
  if [ -e cmake-openssl-stage/lib/pkgconfig ]; then
    diff -r cmake-openssl-stage/lib/pkgconfig meson-stage/lib/pkgconfig
    echo "meson's .pc files are CMake's"
  fi
  rm -rf moved-meson-stage
  cp -R meson-stage moved-meson-stage
}

# The port run by the stand-in for vcpkg, with the features given.
vcpkg_stage() { # directory, features (a CMake list)
  local dir=$1 features=${2:-} extra=()
  cmake -DPORT_DIR="$root/ports/greet-socket" -DWORK_DIR="$work/$dir" "-DFEATURES=$features" \
    -P "$consumers/vcpkg-port/run-portfile.cmake"
  [ -z "$features" ] || extra=(lib/pkgconfig/greet_socket_openssl.pc)
  check_tree "$dir/packages" include/greet_socket.hpp "${cmake_files[@]/#share\/cmake/share}" \
    lib/pkgconfig/greet_socket.pc "${extra[@]}" share/greet-socket/copyright share/greet-socket/usage
  same_license "$dir/packages/share/greet-socket/copyright"
}

route_vcpkg-stage() {
  vcpkg_stage vcpkg
}

# greet-socket[openssl]: the port's feature (OpenSSL itself is this machine's).
route_vcpkg-openssl-stage() {
  vcpkg_stage vcpkg-openssl openssl
  grep -q 'set(greet_socket_OPENSSL ON)' vcpkg-openssl/packages/share/greet_socket/greet_socketConfig.cmake
}

# The release archive of the working tree's state (git stash create: a commit of the
# tracked files as they are, HEAD when nothing changed), made twice: same bytes.
route_release-archive() {
  git -C "$root" rev-parse --git-dir >/dev/null 2>&1 || { echo "SKIP: not a git checkout"; exit 77; }
  local commit
  commit=$(git -C "$root" stash create)
  commit=${commit:-HEAD}
  rm -rf release release-again
  "$root/scripts/release-archive.sh" "$commit" "$work/release" | tee release.log
  "$root/scripts/release-archive.sh" "$commit" "$work/release-again" >/dev/null
  cmp release/*.tar.gz release-again/*.tar.gz
  echo "the archive is the same when made again"
  # The consumer takes the archive by a fixed name and the hash the script printed.
  mv release/*.tar.gz release/greet_socket-release.tar.gz
  sed -n 's/^  SHA256  //p' release.log >release/greet_socket-release.tar.gz.sha256
}

# --- routes --------------------------------------------------------------------------

route_dropin() {
  new_consumer dropin dropin
  cp "$root/greet_socket.hpp" dropin/
  (cd dropin && ./build.sh)
  run_consumer dropin/consumer
}

route_openssl-dropin() {
  new_consumer dropin openssl-dropin
  cp "$root/greet_socket.hpp" openssl-dropin/
  (cd openssl-dropin && PROGRAM=tls CPPFLAGS=-DGREET_SOCKET_OPENSSL LIBS='-lssl -lcrypto' ./build.sh)
  run_consumer openssl-dropin/consumer
}

route_cmake-fetchcontent() {
  route_build-and-test ctest --build-and-test "$consumers/cmake-fetchcontent" fetchcontent \
    --build-generator "${CMAKE_GENERATOR:-Unix Makefiles}" \
    --build-options "-DGREET_SOCKET_ARCHIVE=$work/release/greet_socket-release.tar.gz" \
    "-DGREET_SOCKET_ARCHIVE_SHA256=$(cat release/greet_socket-release.tar.gz.sha256)" \
    --test-command "$0" "$work" check-leaks "$work/fetchcontent"
}

route_pkg-config() { # stage, module, program
  local stage=${1:-moved-stage} module=${2:-greet_socket} program=${3:-main}
  export PKG_CONFIG_PATH=$work/$stage/lib/pkgconfig
  local version libs
  version=$(pkg-config --modversion "$module")
  libs=$(pkg-config --libs "$module")
  echo "pkg-config: $module $version, cflags '$(pkg-config --cflags "$module")', libs '$libs'"
  [[ $libs == *-pthread* ]]
  new_consumer pkg-config "pkg-config-$module"
  (cd "pkg-config-$module" && MODULE=$module PROGRAM=$program ./build.sh)
  run_consumer "pkg-config-$module/consumer"
}

route_openssl-pkg-config() {
  route_pkg-config cmake-openssl-stage greet_socket_openssl tls
}

route_meson-pkg-config() { # module
  local module=${1:-greet_socket}
  new_consumer meson-pkg-config "meson-pkg-config-$module"
  # nofallback: the dependency can only come from pkg-config (of the moved tree).
  PKG_CONFIG_PATH=$work/moved-meson-stage/lib/pkgconfig \
    meson setup "meson-pkg-config-$module/build" "meson-pkg-config-$module" --wrap-mode=nofallback \
    "-Dmodule=$module" | tee "meson-pkg-config-$module/setup.log"
  grep -q "Run-time dependency $module found: YES" "meson-pkg-config-$module/setup.log"
  meson compile -C "meson-pkg-config-$module/build"
  run_consumer "meson-pkg-config-$module/build/consumer"
}

route_openssl-meson-pkg-config() {
  route_meson-pkg-config greet_socket_openssl
}

route_meson-subproject() { # module
  local module=${1:-greet_socket} dir=meson-subproject-${1:-greet_socket}
  new_consumer meson-subproject "$dir"
  vendor_copy "$dir/subprojects/greet_socket"
  meson setup "$dir/build" "$dir" --force-fallback-for="$module" "-Dmodule=$module" | tee "$dir/setup.log"
  grep -q "Executing subproject greet_socket" "$dir/setup.log"
  grep -q "Dependency $module found: YES .*(overridden)" "$dir/setup.log"
  meson compile -C "$dir/build"
  run_consumer "$dir/build/consumer"
  # Only the consumer is built and installed: no tests, examples, header or .pc.
  local targets installed
  targets=$(meson introspect --targets "$dir/build" |
    python3 -c 'import json,sys; print(" ".join(sorted(t["name"] for t in json.load(sys.stdin))))')
  installed=$(meson introspect --installed "$dir/build" |
    python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin).values())))')
  echo "targets: $targets; installs: $installed"
  [ "$targets" = consumer ]
  [ "$(basename "$installed")" = consumer ]
}

route_openssl-meson-subproject() {
  route_meson-subproject greet_socket_openssl
}

route_vcpkg-pkg-config() {
  new_consumer pkg-config vcpkg-pkg-config
  (cd vcpkg-pkg-config && PKG_CONFIG_PATH=$work/vcpkg/packages/lib/pkgconfig ./build.sh)
  run_consumer vcpkg-pkg-config/consumer
}

route_versions() {
  python3 "$root/tests/version_test.py" \
    --cmake-version "$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' cmake-stage-build/CMakeCache.txt)" \
    --meson-version "$(meson introspect --projectinfo meson-stage-build |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')" \
    --pc cmake-stage/lib/pkgconfig/greet_socket.pc \
    --pc meson-stage/lib/pkgconfig/greet_socket.pc \
    --pc cmake-openssl-stage/lib/pkgconfig/greet_socket_openssl.pc \
    --pc meson-stage/lib/pkgconfig/greet_socket_openssl.pc \
    --pc vcpkg/packages/lib/pkgconfig/greet_socket.pc \
    --config-version cmake-stage/share/cmake/greet_socket/greet_socketConfigVersion.cmake \
    --config-version vcpkg/packages/share/greet_socket/greet_socketConfigVersion.cmake
}

# --- MinGW-w64: the Winsock half of the header, and ws2_32 through each route ----------

route_mingw-dropin() {
  new_consumer dropin mingw-dropin
  cp "$root/greet_socket.hpp" mingw-dropin/
  (cd mingw-dropin && CXX=$mingw_cxx LIBS=-lws2_32 EXE=.exe ./build.sh)
  imports_ws2_32 mingw-dropin/consumer.exe
}

route_mingw-stage() {
  cmake_stage mingw-stage "$mingw_toolchain"
  check_tree mingw-stage include/greet_socket.hpp "${cmake_files[@]}" \
    share/doc/greet_socket/LICENSE lib/pkgconfig/greet_socket.pc
}

route_mingw-pkg-config() {
  export PKG_CONFIG_LIBDIR=$work/mingw-stage/lib/pkgconfig
  local libs
  libs=$(pkg-config --libs greet_socket | xargs) # xargs trims the trailing blank
  echo "pkg-config for Windows: libs '$libs'"
  [ "$libs" = -lws2_32 ]
  new_consumer pkg-config mingw-pkg-config
  (cd mingw-pkg-config && CXX=$mingw_cxx EXE=.exe ./build.sh)
  imports_ws2_32 mingw-pkg-config/consumer.exe
}

route_mingw-meson() {
  mingw_cross_file
  rm -rf mingw-meson-stage mingw-meson-stage-build
  meson setup mingw-meson-stage-build "$root" --cross-file mingw-w64-x86_64.ini \
    -Dtests=disabled -Dexamples=enabled -Dopenssl=disabled "--prefix=$work/mingw-meson-stage"
  meson compile -C mingw-meson-stage-build server # one example is enough to see ws2_32 linked
  imports_ws2_32 mingw-meson-stage-build/server.exe
  meson install -C mingw-meson-stage-build --no-rebuild # the examples are not installed
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

declare -F "route_$route" >/dev/null || { echo "route.sh: no route $route" >&2; exit 2; }
"route_$route" "$@"
