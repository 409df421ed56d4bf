// Lesson 2: "name = c.recv(1024).decode()" gets the whole name only by luck.
// A client sends "Zoë" in two pieces, cut inside the two bytes of "ë" (C3 AB).
// Build: g++ -std=c++17 -I. examples/lessons/pieces.cpp -o pieces      Run: ./pieces
#include "greet_socket.hpp"

#include <cstdio>
#include <string>

std::string shown(const std::string& bytes) { // "Zo" C3 -> 5A 6F C3
    std::string out;
    char hex[4];
    for (char c : bytes) {
        std::snprintf(hex, sizeof hex, "%02X ", static_cast<unsigned char>(c));
        out += hex;
    }
    return out + (greet::utf8::is_valid(bytes) ? "(valid UTF-8)" : "(not valid UTF-8: Python's .decode() raises here)");
}

int main() try {
    greet::Server server("127.0.0.1", 0);
    greet::Client sender("127.0.0.1", server.local_address().port);
    auto [receiver, address] = server.accept();

    sender.send("Zo\xC3");                     // the first piece ends inside "ë"
    greet::print("recv(1024) returned:      " + shown(receiver.recv(1024)));
    sender.send("\xAB");                       // the rest of "ë"
    greet::print("recv(1024) returned:      " + shown(receiver.recv(1024)));

    sender.send("Zo\xC3");
    greet::print("recv_text(1024) returned: " + shown(receiver.recv_text(1024)) + ", holding C3 back");
    sender.send("\xAB");
    greet::print("recv_text(1024) returned: " + shown(receiver.recv_text(1024)));

    sender.send("Zo\xC3");
    sender.send("\xAB\n");
    greet::print("recv_line() returned:     " + shown(receiver.recv_line()) + ", the whole line");
    sender.send_message("Zo\xC3\xAB");
    greet::print("recv_message() returned:  " + shown(receiver.recv_message()) + ", the whole message");

    receiver.set_chaos(7); // chaos mode: the OS is read in pieces of 1 to 16 bytes, as a slow network would
    sender.send("Zoë and her friends from 世界");
    std::string got;
    for (int i = 0; i < 64 && got.size() < 32; ++i) {
        const std::string piece = receiver.recv(1024);
        got += piece;
        greet::print("chaos: recv(1024) returned " + std::to_string(piece.size()) + " bytes");
    }
} catch (const greet::Error& e) {
    greet::print(e.what());
    return 1;
}
