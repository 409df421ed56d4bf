#!/bin/sh
# Drop-in: greet_socket.hpp copied next to main.cpp, nothing else.
# MinGW: CXX=x86_64-w64-mingw32-g++-posix LIBS=-lws2_32 (MSVC and clang-cl need no LIBS).
# The TLS build: PROGRAM=tls CPPFLAGS=-DGREET_SOCKET_OPENSSL LIBS='-lssl -lcrypto'.
set -eu
# shellcheck disable=SC2086 # CPPFLAGS and LIBS are lists of words
${CXX:-g++} -std=c++17 ${CPPFLAGS:-} "${PROGRAM:-main}.cpp" -o "consumer${EXE:-}" ${LIBS:-}
