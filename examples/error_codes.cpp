// The tutorial's client without exceptions: each call takes a std::error_code, which it sets
// on failure (and clears on success); greet::last_error_message() holds what() would have said.
// Build: g++ -std=c++17 -fno-exceptions -I. examples/error_codes.cpp -o error_codes   Run: ./error_codes [port]
#include "greet_socket.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <system_error>

int main(int argc, char** argv) {
    std::error_code ec;
    const std::uint16_t port = argc > 1 ? greet::parse_port(argv[1], ec) : 9999;

    greet::Client c;
    if (!ec) c.set_timeout(std::chrono::seconds(10), ec);   // a server that never answers cannot hang it
    if (!ec) c.connect("localhost", port, ec);               // ECONNREFUSED: is the server running?
    if (!ec) c.send(greet::input("enter your name - ").value_or(""), ec);
    std::string reply, part;                                 // the whole reply, until the server closes (1 MiB at most)
    while (!ec && reply.size() < (1 << 20) && !(part = c.recv_text(1024, ec)).empty())
        reply += part;
    if (ec) {
        // e.g. "connect localhost:9999: ECONNREFUSED (Connection refused): is the server running?"
        std::fprintf(stderr, "%s\n", greet::last_error_message().c_str());
        return 1;
    }
    greet::print(reply);
}
