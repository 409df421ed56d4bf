// examples/client.cpp over TLS: sends your name, prints the server's greeting, encrypted.
// Build: g++ -std=c++17 -I. examples/tls_client.cpp -o tls_client -lssl -lcrypto
// Run:   ./tls_client [port [ca_file]]    (ca_file: the CA that signed the server's certificate)
#define GREET_SOCKET_OPENSSL // before the include: Client::start_tls and accept_tls
#include "greet_socket.hpp"

#include <chrono>
#include <cstdio>
#include <string>

int main(int argc, char** argv) try {
    const std::uint16_t port = argc > 1 ? greet::parse_port(argv[1]) : 9999;
    greet::TlsOptions tls;                                // context = ssl.create_default_context()
    tls.ca_file = argc > 2 ? argv[2] : "";                // context.load_verify_locations("ca.pem") ("": the system's CAs)

    greet::Client c;                                      // c = socket.socket()
    c.set_timeout(std::chrono::seconds(10));              // (a server that never answers or closes cannot hang it)
    c.connect("localhost", port);                         // c.connect(("localhost", 9999))
    c.start_tls(tls);                                     // c = context.wrap_socket(c, server_hostname="localhost")
    std::string name = greet::input("enter your name - ").value_or(""); // name = input("enter your name - ")
    c.send(name);                                         // c.send(bytes(name, "utf-8"))
    std::string reply, part;                              // print(c.recv(1024).decode()), but the whole reply:
    while (reply.size() < (1 << 20) && !(part = c.recv_text(1024)).empty())
        reply += part;                                    // (until the server's close_notify; 1 MiB at most)
    greet::print(reply);
} catch (const greet::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
