// The tutorial's client.py over UDP: sends your name in one datagram, prints the greeting.
// A datagram may be lost and nothing says so: wait 1 s for the answer, then try once more.
// Build: g++ -std=c++17 -I. examples/udp_client.cpp -o udp_client      Run: ./udp_client [port [host]]
#include "greet_socket.hpp"

#include <chrono>
#include <cstdio>
#include <string>

int main(int argc, char** argv) try {
    const std::uint16_t port = argc > 1 ? greet::parse_port(argv[1]) : 9999;
    const std::string host = argc > 2 ? argv[2] : "localhost"; // "::1" for IPv6

    greet::UdpSocket c;                                   // c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.set_timeout(std::chrono::seconds(1));               // c.settimeout(1): an answer may never come
    std::string name = greet::input("enter your name - ").value_or(""); // name = input("enter your name - ")
    for (int attempt = 1; attempt <= 2; ++attempt) {      // (no connection: no error tells of a lost datagram)
        c.send_to(name, host, port);                      // c.sendto(bytes(name, "utf-8"), ("localhost", 9999))
        try {
            auto [reply, addr] = c.recv_text_from(1024);  // print(c.recvfrom(1024)[0].decode()): one datagram,
            greet::print(reply);                          // (whole: UDP never cuts or merges them)
            return 0;
        } catch (const greet::TimeoutError&) {            // socket.timeout: lost on the way there or back
        }
    }
    std::fprintf(stderr, "no answer from %s port %u after 2 tries of 1 s: is udp_server running?\n",
                 host.c_str(), static_cast<unsigned>(port));
    return 1;
} catch (const greet::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
