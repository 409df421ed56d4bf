// Lesson 1: "if 4 are trying to connect it will be refused" (after s.listen(3)).
// A server that never calls accept(): how many clients get in, and what happens to the next?
// Build: g++ -std=c++17 -I. examples/lessons/backlog.cpp -o backlog      Run: ./backlog
#include "greet_socket.hpp"

#include <chrono>
#include <fstream>
#include <list>
#include <string>

using namespace std::chrono_literals;

int main() try {
    for (int backlog : {0, 1, 3, 8}) {
        greet::Server server("127.0.0.1", 0, backlog); // bind + listen(backlog), and never accept()
        const std::uint16_t port = server.local_address().port;
        std::list<greet::Client> clients;
        std::string next = "every client got in";
        for (int i = 0; i < 64; ++i) {
            greet::Client client;
            client.set_timeout(300ms); // without it, connect would wait about two minutes
            try {
                client.connect("127.0.0.1", port);
            } catch (const greet::Error& e) {
                next = e.what();
                break;
            }
            clients.push_back(std::move(client));
        }
        greet::print("listen(" + std::to_string(backlog) + "): " + std::to_string(clients.size()) +
                     " clients connected, and the next one: " + next);
        if (backlog == 3) { // accept() frees a place in the queue, and the next client gets in
            server.set_timeout(1s);
            server.accept();
            greet::Client late;
            late.set_timeout(300ms);
            late.connect("127.0.0.1", port);
            greet::print("          after one accept(), one more client connected");
        }
    }
    std::ifstream somaxconn("/proc/sys/net/core/somaxconn"); // Linux: the cap on any backlog
    std::string cap;
    if (somaxconn >> cap) greet::print("net.core.somaxconn = " + cap + " (a larger backlog is cut to this)");
} catch (const greet::Error& e) {
    greet::print(e.what());
    return 1;
}
