#!/usr/bin/env bash
# The tutorial end to end: builds the two examples with g++ alone, starts the server,
# runs the client with a name, shows what both printed, and stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh g++
out=build/demo
mkdir -p "$out"
g++ -std=c++17 -I. examples/server.cpp -o "$out/server"
g++ -std=c++17 -I. examples/client.cpp -o "$out/client"

# Port 0: the OS picks a free port and the server prints it.
exec 3< <(exec "$out/server" 0)
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true' EXIT
read -r -t 10 line <&3; echo "server: $line"
read -r -t 10 line <&3; echo "server: $line"
port=${line##*:}

name="${1:-Zoë}"
echo "client: (typing \"$name\")"
echo "client: $(echo "$name" | "$out/client" "$port")"
read -r -t 10 line <&3; echo "server: $line"
