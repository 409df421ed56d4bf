// The tutorial's server.py in C++: greets each client by name, one client at a time.
// Build: g++ -std=c++17 -I. examples/server.cpp -o server      Run: ./server [port]
#include "greet_socket.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>

greet::Server s; // global, so that Ctrl+C can stop it

int main(int argc, char** argv) try {
    const std::uint16_t port = argc > 1 ? greet::parse_port(argv[1]) : 9999; // 0: the OS picks one
    std::signal(SIGINT, [](int) { s.stop(); });           // Ctrl+C and SIGTERM end the loop cleanly
    std::signal(SIGTERM, [](int) { s.stop(); });

    greet::print("socket created");                       // s = socket.socket(); print("socket created")
    s.bind("localhost", port);                            // s.bind(("localhost", 9999))
    s.listen(3);                                          // s.listen(3)
    greet::print("waiting for connection on " + s.local_address().to_string());

    while (true) {                                        // while True:
        try {
            auto [c, addr] = s.accept();                  //     c, addr = s.accept()
            c.set_timeout(std::chrono::seconds(10));      //     (a silent client cannot stall the others)
            std::string name = c.recv_text(1024);         //     name = c.recv(1024).decode()
            if (name.empty()) {                           //     (the client left without a word)
                greet::print("client " + addr.to_string() + " left without a word");
                continue;
            }
            greet::print("client connected " + addr.to_string() + " " + name);
            c.send("message from server: hello " + name); //     c.send(bytes("message from server", "utf-8"))
        } catch (const greet::Error& e) {                 //     c.close() happens when c goes out of scope
            if (s.stopped()) break;                       // stop() made accept() give up
            std::fprintf(stderr, "%s\n", e.what());       // one client's trouble never ends the loop
        }
    }
    greet::print("goodbye");
} catch (const greet::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
