#!/bin/sh
# pkg-config: Cflags on every platform, Libs: -lws2_32 on Windows.
set -eu
# shellcheck disable=SC2046 # pkg-config's output is meant to be split into words
${CXX:-g++} -std=c++17 main.cpp $(${PKG_CONFIG:-pkg-config} --cflags --libs greet_socket) -o "consumer${EXE:-}"
