#!/bin/sh
# pkg-config: Cflags and -pthread on POSIX, -lws2_32 on Windows. MODULE=greet_socket_openssl
# PROGRAM=tls: the TLS build.
set -eu
# shellcheck disable=SC2046 # pkg-config's output is meant to be split into words
${CXX:-g++} -std=c++17 "${PROGRAM:-main}.cpp" $(${PKG_CONFIG:-pkg-config} --cflags --libs "${MODULE:-greet_socket}") -o "consumer${EXE:-}"
