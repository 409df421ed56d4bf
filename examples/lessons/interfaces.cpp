// Lesson 8: "localhost" versus every interface. Who can reach a server bound to each host?
// Only loopback addresses are tried here: 127.0.0.1 (IPv4) and ::1 (IPv6).
// Build: g++ -std=c++17 -I. examples/lessons/interfaces.cpp -o interfaces      Run: ./interfaces
#include "greet_socket.hpp"

#include <chrono>
#include <string>

std::string reach(std::string_view host, std::uint16_t port) {
    try {
        greet::Client client;
        client.set_timeout(std::chrono::seconds(2));
        client.connect(host, port);
        return "connects    ";
    } catch (const greet::Error& e) {
        return e.code() == std::errc::connection_refused ? "refused     " : "fails       ";
    }
}

int main() {
    greet::print("bind(host)    127.0.0.1   ::1");
    for (const char* host : {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::", ""}) {
        std::string row = "\"" + std::string(host) + "\"";
        row.resize(14, ' ');
        try {
            greet::Server server(host, 0);
            const std::uint16_t port = server.local_address().port;
            greet::print(row + reach("127.0.0.1", port) + reach("::1", port));
        } catch (const greet::Error& e) {
            greet::print(row + e.what());
        }
    }
    greet::print("\"\", \"0.0.0.0\" and \"::\" also answer on every other address this machine has:");
    greet::print("anyone who can reach the machine over the network can connect to them.");
}
