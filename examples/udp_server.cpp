// The tutorial's server.py over UDP: no listen(), no accept(), no connection: each
// datagram that arrives is a name, and the greeting goes back to whoever sent it.
// Build: g++ -std=c++17 -I. examples/udp_server.cpp -o udp_server      Run: ./udp_server [port [host]]
#include "greet_socket.hpp"

#include <csignal>
#include <cstdio>
#include <string>

greet::Canceller stop; // global, so that Ctrl+C can stop it

int main(int argc, char** argv) try {
    const std::uint16_t port = argc > 1 ? greet::parse_port(argv[1]) : 9999; // 0: the OS picks one
    const std::string host = argc > 2 ? argv[2] : "localhost"; // "::1" for IPv6
    std::signal(SIGINT, [](int) { stop.cancel(); });      // Ctrl+C and SIGTERM end the loop cleanly
    std::signal(SIGTERM, [](int) { stop.cancel(); });

    greet::UdpSocket s;                                   // s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.set_canceller(stop);
    s.bind(host, port);                                   // s.bind(("localhost", 9999))
    greet::print("waiting for datagrams on " + s.local_address().to_string()); // (no listen(), no accept())

    while (true) {                                        // while True:
        try {
            auto [name, addr] = s.recv_text_from(1024);   //     name, addr = s.recvfrom(1024); name = name.decode()
            greet::print("datagram from " + addr.to_string() + " " + name);
            s.send_to("message from server: hello " + name, addr); // s.sendto(bytes(..., "utf-8"), addr)
        } catch (const greet::Error& e) {                 //     (too long, not UTF-8: that datagram is dropped)
            if (stop.cancelled()) break;                  // cancel() made recv_text_from() give up
            std::fprintf(stderr, "%s\n", e.what());       // one sender's trouble never ends the loop
        }
    }
    greet::print("goodbye");
} catch (const greet::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
