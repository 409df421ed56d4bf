// The tutorial's client.py in C++: sends your name, prints the server's greeting.
// Build: g++ -std=c++17 -I. examples/client.cpp -o client      Run: ./client [port]
#include "greet_socket.hpp"

#include <chrono>
#include <cstdio>
#include <string>

int main(int argc, char** argv) try {
    const std::uint16_t port = argc > 1 ? greet::parse_port(argv[1]) : 9999;

    greet::Client c;                                      // c = socket.socket()
    c.set_timeout(std::chrono::seconds(10));              // (a server that never answers or closes cannot hang it)
    c.connect("localhost", port);                         // c.connect(("localhost", 9999))
    std::string name = greet::input("enter your name - ").value_or(""); // name = input("enter your name - ")
    c.send(name);                                         // c.send(bytes(name, "utf-8"))
    std::string reply, part;                              // print(c.recv(1024).decode()), but the whole reply:
    while (reply.size() < (1 << 20) && !(part = c.recv_text(1024)).empty())
        reply += part;                                    // (TCP may cut it in pieces; the server closes after it; 1 MiB at most)
    greet::print(reply);
} catch (const greet::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
