// Many clients at once: every line a client sends comes back to it. Ctrl+C stops it.
// Build: g++ -std=c++17 -I. examples/echo_server.cpp -o echo_server -pthread
// Run:   ./echo_server [port]      then, in other terminals: nc localhost 9998
#include "greet_socket.hpp"

#include <csignal>
#include <cstdio>

greet::Server server; // global, so that Ctrl+C can stop it

int main(int argc, char** argv) try {
    server.bind("localhost", argc > 1 ? greet::parse_port(argv[1]) : 9998);
    server.listen();
    std::signal(SIGINT, [](int) { server.stop(); });
    std::signal(SIGTERM, [](int) { server.stop(); });
    greet::print("echoing lines on " + server.local_address().to_string());

    greet::ServeOptions options;
    options.max_clients = 100; // the 101st waits in the backlog until one leaves
    server.serve([](greet::Client& client, const greet::Address& peer) {
        greet::print(peer.to_string() + " joined");
        for (;;) client.send_line(client.recv_line()); // ends with ClosedError when the client leaves
    }, options);
    greet::print("goodbye");
} catch (const greet::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
