// Lines over a Unix-domain socket: a server that echoes every line a client sends and
// names the client's process, or a client that sends each line typed and prints the reply.
// A name starting with '@' is a Linux abstract name (no file). Ctrl+C stops the server.
// Build: g++ -std=c++17 -I. examples/unix_echo.cpp -o unix_echo -pthread
// Run:   ./unix_echo serve /tmp/echo.sock     then: ./unix_echo connect /tmp/echo.sock
//                                              (or: socat - UNIX-CONNECT:/tmp/echo.sock)
#include "greet_socket.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>

greet::Server server; // global, so that Ctrl+C can stop it

int main(int argc, char** argv) try {
    const std::string mode = argc == 3 ? argv[1] : "";
    if (mode != "serve" && mode != "connect") {
        std::fprintf(stderr, "usage: unix_echo serve|connect <path or @abstract-name>\n");
        return 2;
    }
    std::string path = argv[2];
    if (path.size() > 1 && path[0] == '@') path[0] = '\0'; // "@name" is Linux's "\0name"

    if (mode == "connect") {
        greet::Client c;
        c.set_timeout(std::chrono::seconds(10)); // a server that never answers cannot hang it
        c.connect_unix(path);
        while (const auto line = greet::input()) {
            c.send_line(*line);
            greet::print(c.recv_line());
        }
        return 0;
    }

    server.bind_unix(path); // a crashed server's socket file is replaced; a live one is EADDRINUSE
    server.listen();
    std::signal(SIGINT, [](int) { server.stop(); });
    std::signal(SIGTERM, [](int) { server.stop(); });
    greet::print("echoing lines on " + server.local_address().to_string());
    server.serve([](greet::Client& client, const greet::Address&) {
        std::error_code ec;
        const greet::Credentials who = client.peer_credentials(ec); // the kernel's word (ENOTSUP off Linux)
        greet::print(ec ? std::string("a client joined")
                        : "pid " + std::to_string(who.pid) + " uid " + std::to_string(who.uid) + " joined");
        for (;;) client.send_line(client.recv_line()); // ends with ClosedError when the client leaves
    });
    greet::print("goodbye"); // server closes at exit, removing its socket file
} catch (const greet::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
