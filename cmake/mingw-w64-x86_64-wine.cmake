# The MinGW-w64 cross build, with its programs run by Wine: ctest and Catch2's test
# discovery start each .exe through wine64 (Debian: wine64; no 32-bit parts needed).
#   cmake -S . -B build/windows -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64-wine.cmake
# scripts/test-windows.sh does this, with the Wine prefix and server set up first.
include("${CMAKE_CURRENT_LIST_DIR}/mingw-w64-x86_64.cmake")

# Debian installs the 64-bit loader as wine64 (in /usr/lib/wine when no wrapper is on PATH).
find_program(CMAKE_CROSSCOMPILING_EMULATOR NAMES wine64 wine PATHS /usr/lib/wine)
