// The errors a beginner meets, each made to happen on purpose: what greet::Error says.
// Build: g++ -std=c++17 -I. examples/lessons/errors.cpp -o errors      Run: ./errors
#include "greet_socket.hpp"

#include <chrono>
#include <functional>
#include <list>
#include <string>

using namespace std::chrono_literals;

void show(const std::string& what, const std::function<void()>& attempt) {
    try {
        attempt();
        greet::print(what + ": no error");
    } catch (const greet::Error& e) {
        greet::print(what + ":\n    " + e.what());
    }
}

int main() {
    greet::Server busy("127.0.0.1", 0, 0); // backlog 0, and never accept()
    const std::uint16_t port = busy.local_address().port;
    std::uint16_t free_port = 0;
    { free_port = greet::Server("127.0.0.1", 0).local_address().port; } // closed again: nobody listens

    show("a second server on a busy port", [&] { greet::Server("127.0.0.1", port); });
    show("connecting where nobody listens", [&] { greet::Client("127.0.0.1", free_port); });
    show("connecting to a server whose backlog is full", [&] {
        std::list<greet::Client> queued;
        for (int i = 0; i < 64; ++i) {
            queued.emplace_back().set_timeout(300ms);
            queued.back().connect("127.0.0.1", port);
        }
    });
    show("binding an address this machine does not have", [] { greet::Server("192.0.2.1", 9999); });
    show("a host name that does not exist", [] { greet::Client(std::string(64, 'a') + ".invalid", 80); });
    show("a port number out of range", [] { greet::parse_port("99999"); });

    greet::Server server("127.0.0.1", 0);
    greet::Client client("127.0.0.1", server.local_address().port);
    server.accept().first.close(); // the server takes the client and hangs up at once
    greet::print("recv after the peer closed: \"" + client.recv(1024) + "\" (no error: an empty string)");
    show("recv_line after the peer closed", [&] { client.recv_line(); });
    show("sending to a peer that has gone", [&] {
        for (int i = 0; i < 64; ++i) client.send(std::string(65536, 'x'));
    });
}
