// The program every consumer test builds: one loopback round trip through the
// installed (or vendored) greet_socket.hpp, exit code 0 on success.
#include "greet_socket.hpp"

#include <cstdio>
#include <exception>
#include <string>

static_assert(GREET_SOCKET_VERSION_MAJOR == 1, "these consumers are written for greet_socket 1.x");

int main() {
    try {
        greet::Server server("127.0.0.1", 0); // port 0: the OS picks a free one
        const std::uint16_t port = server.local_address().port;
        greet::Client client("127.0.0.1", port); // the listen backlog completes the handshake
        auto [peer, address] = server.accept();
        client.send("hello from a consumer");
        client.shutdown_send();
        std::string received;
        for (std::string chunk; !(chunk = peer.recv(4096)).empty();) received += chunk;
        if (received != "hello from a consumer") {
            std::fprintf(stderr, "received \"%s\" from %s\n", received.c_str(), address.to_string().c_str());
            return 1;
        }
        std::printf("greet_socket %s: loopback round trip on port %u ok\n", GREET_SOCKET_VERSION,
                    static_cast<unsigned>(port));
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
