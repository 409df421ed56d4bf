#!/bin/sh
# Drop-in: greet_socket.hpp copied next to main.cpp, nothing else.
# MinGW: CXX=x86_64-w64-mingw32-g++-posix LIBS=-lws2_32 (MSVC and clang-cl need no LIBS).
set -eu
${CXX:-g++} -std=c++17 main.cpp -o "consumer${EXE:-}" ${LIBS:-}
