// A key-value store over lines, for thousands of clients on a few threads:
//     SET <key> <value>   -> OK
//     GET <key>           -> the value, or (none)
// Any other line gets "ERROR ..." and the connection stays open. Ctrl+C stops it.
// Build: g++ -std=c++17 -I. examples/kv_server.cpp -o kv_server -pthread
// Run:   ./kv_server [port]      then: nc localhost 9997, and type SET name Zoë, GET name
#include "greet_socket.hpp"

#include <csignal>
#include <cstdio>
#include <map>
#include <mutex>

greet::Server server; // global, so that Ctrl+C can stop it

int main(int argc, char** argv) try {
    server.bind("127.0.0.1", argc > 1 ? greet::parse_port(argv[1]) : 9997);
    server.listen();
    std::signal(SIGINT, [](int) { server.stop(); });
    std::signal(SIGTERM, [](int) { server.stop(); });
    greet::print("key-value store on " + server.local_address().to_string());

    std::map<std::string, std::string, std::less<>> store;
    std::mutex lock; // the handler runs on several threads at once
    greet::ServeOptions options;
    options.idle_timeout = std::chrono::minutes(5); // a client silent that long is closed
    server.serve_lines([&](std::string_view request, const greet::Address&) -> std::string {
        const std::string_view command = request.substr(0, request.find(' '));
        const std::string_view rest = request.substr(std::min(request.size(), command.size() + 1));
        std::lock_guard<std::mutex> hold(lock);
        if (command == "GET") {
            const auto found = store.find(rest);
            return found == store.end() ? "(none)" : found->second;
        }
        const std::size_t space = rest.find(' ');
        if (command != "SET" || space == std::string_view::npos) return "ERROR expected SET <key> <value> or GET <key>";
        store[std::string(rest.substr(0, space))] = std::string(rest.substr(space + 1));
        return "OK";
    }, options);
    greet::print("goodbye");
} catch (const greet::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
