// A chat node: every node is a server and a client at once (peer to peer). It listens on
// a port, connects to the peers named on its command line, prints what every peer says,
// and sends each line typed on stdin to every connected peer. End of input leaves.
// Build: g++ -std=c++17 -I. examples/peer.cpp -o peer -pthread
// Run:   ./peer 7001      ./peer 7002 localhost:7001      ./peer 7003 localhost:7001 localhost:7002
#include "greet_socket.hpp"

#include <cstdio>
#include <list>
#include <mutex>
#include <string>
#include <thread>

std::mutex peers_mutex;
std::list<greet::Client*> peers; // every connection, incoming and outgoing

// Prints what one peer says until it leaves. One thread receives while main() sends.
void talk(greet::Client& peer, const greet::Address& address) {
    {
        std::lock_guard<std::mutex> lock(peers_mutex);
        peers.push_back(&peer);
    }
    greet::print("[" + address.to_string() + "] joined");
    try {
        for (;;) greet::print("[" + address.to_string() + "] " + greet::utf8::sanitize(peer.recv_line()));
    } catch (const greet::Error&) { // it left (ClosedError), or we are leaving
    }
    std::lock_guard<std::mutex> lock(peers_mutex);
    peers.remove(&peer);
    greet::print("[" + address.to_string() + "] left");
}

int main(int argc, char** argv) try {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s port [host:port ...]\n", argv[0]);
        return 2;
    }
    greet::Server server("localhost", greet::parse_port(argv[1]));
    greet::print("listening on " + server.local_address().to_string());
    greet::ServeOptions options;
    options.grace = std::chrono::milliseconds(0); // leaving cuts conversations off at once
    std::thread listener([&] { server.serve(talk, options); });

    std::list<greet::Client> outgoing;
    std::list<std::thread> readers;
    for (int i = 2; i < argc; ++i) {
        const std::string_view target = argv[i];
        const std::size_t colon = target.rfind(':');
        greet::Client& peer = outgoing.emplace_back(target.substr(0, colon), greet::parse_port(target.substr(colon + 1)));
        readers.emplace_back(talk, std::ref(peer), peer.peer_address());
    }

    while (std::optional<std::string> line = greet::input()) {
        std::lock_guard<std::mutex> lock(peers_mutex);
        for (greet::Client* peer : peers) {
            try {
                peer->send_line(*line);
            } catch (const greet::Error& e) {
                std::fprintf(stderr, "%s\n", e.what());
            }
        }
    }
    server.stop();                                   // incoming conversations end
    for (greet::Client& peer : outgoing) peer.shutdown_send(); // outgoing ones end when the peer hangs up
    listener.join();
    for (std::thread& reader : readers) reader.join();
} catch (const greet::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
