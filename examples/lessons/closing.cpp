// Lesson 9: the tutorial's client never closes. What the server sees when a client leaves,
// and the TIME_WAIT that the side closing first keeps for a minute (Linux: /proc/net/tcp).
// Build: g++ -std=c++17 -I. examples/lessons/closing.cpp -o closing      Run: ./closing
#include "greet_socket.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

// Every TCP socket of this machine whose local port is `port`, with its state.
void show_sockets(std::uint16_t port) {
    char wanted[8];
    std::snprintf(wanted, sizeof wanted, ":%04X", port);
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream file(table);
        std::string line, slot, local, remote, state;
        while (std::getline(file, line)) {
            std::istringstream(line) >> slot >> local >> remote >> state;
            if (local.size() > 5 && local.compare(local.size() - 5, 5, wanted) == 0)
                greet::print("    local port " + std::to_string(port) + ": state " + state +
                             (state == "06" ? " = TIME_WAIT" : state == "0A" ? " = LISTEN" : ""));
        }
    }
}

int main() try {
    greet::Server server("127.0.0.1", 0);
    greet::Client client("127.0.0.1", server.local_address().port);
    auto [connection, address] = server.accept();
    const std::uint16_t client_port = client.local_address().port;

    client.send("Zoë");
    greet::print("server: recv(1024) returned \"" + connection.recv(1024) + "\"");
    client.shutdown_send(); // the client closes its sending side first: a FIN goes out
    greet::print("server: after the client closed, recv(1024) returned \"" + connection.recv(1024) +
                 "\" (empty: the client has left)");
    connection.close(); // the server closes its side too
    greet::print("client: recv(1024) returned \"" + client.recv(1024) + "\" (empty: the server has closed)");
    client.close();
    greet::print("the side that closed first keeps the connection in TIME_WAIT for about 60 s:");
    show_sockets(client_port);
} catch (const greet::Error& e) {
    greet::print(e.what());
    return 1;
}
