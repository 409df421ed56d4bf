// examples/server.cpp over TLS: greets each client by name, one client at a time, encrypted.
// Build: g++ -std=c++17 -I. examples/tls_server.cpp -o tls_server -lssl -lcrypto
// Run:   ./tls_server [port [certificate key]]    (scripts/make-tls-certs.sh DIR makes a test pair)
#define GREET_SOCKET_OPENSSL // before the include: Client::start_tls and accept_tls
#include "greet_socket.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>

greet::Server s; // global, so that Ctrl+C can stop it

int main(int argc, char** argv) try {
    const std::uint16_t port = argc > 1 ? greet::parse_port(argv[1]) : 9999; // 0: the OS picks one
    greet::TlsOptions tls;                                // context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.certificate_file = argc > 2 ? argv[2] : "server.pem"; // context.load_cert_chain("server.pem", "server.key")
    tls.private_key_file = argc > 3 ? argv[3] : "server.key";
    std::signal(SIGINT, [](int) { s.stop(); });           // Ctrl+C and SIGTERM end the loop cleanly
    std::signal(SIGTERM, [](int) { s.stop(); });

    s.bind("localhost", port);                            // s.bind(("localhost", 9999))
    s.listen(3);                                          // s.listen(3)
    greet::print("waiting for connection on " + s.local_address().to_string());

    while (true) {                                        // while True:
        try {
            auto [c, addr] = s.accept();                  //     c, addr = s.accept()
            c.set_timeout(std::chrono::seconds(10));      //     (a silent client cannot stall the others)
            c.accept_tls(tls);                            //     c = context.wrap_socket(c, server_side=True)
            std::string name = c.recv_text(1024);         //     name = c.recv(1024).decode()
            if (name.empty()) {                           //     (the client left without a word)
                greet::print("client " + addr.to_string() + " left without a word");
                continue;
            }
            greet::print("client connected " + addr.to_string() + " " + name);
            c.send("message from server: hello " + name); //     c.send(bytes("message from server", "utf-8"))
        } catch (const greet::Error& e) {                 //     c.unwrap(); c.close(): close_notify, when c goes out of scope
            if (s.stopped()) break;                       // stop() made accept() give up
            std::fprintf(stderr, "%s\n", e.what());       // one client's trouble (a refused handshake, too) never ends the loop
        }
    }
    greet::print("goodbye");
} catch (const greet::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
