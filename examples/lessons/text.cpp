// Lessons 4 and 5: text is not bytes. bytes(name, "utf-8") and .decode() in C++, and what
// happens to bytes that are not UTF-8 ("by decode it will not specify the format").
// Build: g++ -std=c++17 -I. examples/lessons/text.cpp -o text      Run: ./text
#include "greet_socket.hpp"

#include <cstdio>
#include <string>

std::string hex(const std::string& bytes) {
    std::string out;
    char text[4];
    for (char c : bytes) {
        std::snprintf(text, sizeof text, "%02X ", static_cast<unsigned char>(c));
        out += text;
    }
    return out;
}

int main() {
    const std::string name = greet::utf8::encode(u"Zoë"); // bytes("Zoë", "utf-8")
    greet::print("u\"Zoë\" has 3 characters; as UTF-8 it is " + std::to_string(name.size()) + " bytes: " + hex(name));
    const std::u32string characters = greet::utf8::decode(name); // b"Zo\xc3\xab".decode()
    greet::print("utf8::decode gives back " + std::to_string(characters.size()) + " code points");
    greet::print("U\"世界\" -> " + hex(greet::utf8::encode(U"世界")) + "(std::string holds bytes, 3 per character here)");
    greet::print("L\"Zoë\"  -> " + hex(greet::utf8::encode(L"Zoë")) + "(wchar_t: UTF-16 on Windows, UTF-32 elsewhere)");

    const std::string latin1 = "Zo\xEB"; // "Zoë" in Latin-1, as an old program might send it
    try {
        greet::utf8::decode(latin1); // Python 3: b"Zo\xeb".decode() raises UnicodeDecodeError
    } catch (const greet::Utf8Error& e) {
        greet::print(std::string(e.what()) + " [offset() = " + std::to_string(e.offset()) + "]");
    }
    greet::print("utf8::sanitize gives " + hex(greet::utf8::sanitize(latin1)) + "= \"" + greet::utf8::sanitize(latin1) +
                 "\" (U+FFFD for the bad byte, like .decode(errors=\"replace\"))");
}
