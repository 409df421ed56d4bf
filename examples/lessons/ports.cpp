// Lessons 6 and 7: "two things can not run on a single port" and the port numbers 0-65535.
// Build: g++ -std=c++17 -I. examples/lessons/ports.cpp -o ports      Run: ./ports
#include "greet_socket.hpp"

#include <fstream>
#include <string>
#ifndef _WIN32
#include <unistd.h>
#endif

void attempt(const std::string& what, std::string_view host, std::uint16_t port) {
    try {
        greet::Server server(host, port);
        greet::print(what + ": works, on " + server.local_address().to_string());
    } catch (const greet::Error& e) {
        greet::print(what + ": " + e.what());
    }
}

int main() {
    greet::Server first("127.0.0.1", 0); // port 0: the OS picks a free port
    const std::uint16_t port = first.local_address().port;
    greet::print("port 0 gave the first server " + first.local_address().to_string());
    attempt("a second TCP server on 127.0.0.1:" + std::to_string(port), "127.0.0.1", port);
    attempt("a TCP server on [::1]:" + std::to_string(port) + ", another address", "::1", port);
#ifndef _WIN32
    const int udp = ::socket(AF_INET, SOCK_DGRAM, 0); // UDP has ports of its own
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool bound = ::bind(udp, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    greet::print("a UDP socket on 127.0.0.1:" + std::to_string(port) + ": " + (bound ? "works" : "fails"));
    ::close(udp);

    std::ifstream start_file("/proc/sys/net/ipv4/ip_unprivileged_port_start");
    int start = 1024;
    if (start_file >> start) greet::print("net.ipv4.ip_unprivileged_port_start = " + std::to_string(start));
    if (::geteuid() == 0) greet::print("port 80: not tried, you are root (run as a normal user to see EACCES)");
    else if (start <= 80) greet::print("port 80: not tried, every user may bind it on this machine");
    else attempt("port 80 as a normal user", "127.0.0.1", 80);
#endif
    try {
        greet::parse_port("65536");
    } catch (const greet::Error& e) {
        greet::print(e.what());
    }
}
