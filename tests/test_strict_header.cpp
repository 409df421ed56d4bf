// Built with -Wshadow -Wconversion -Wsign-conversion (see CMakeLists.txt): the flags
// users put on their own code. Every public function is used here once, so that each
// inline definition is compiled under them; the test also checks that the calls work.
#include "greet_socket.hpp"
#include "catch.hpp"

#include <chrono>
#include <sstream>
#include <string>

TEST_CASE("the header compiles cleanly under strict warnings and works", "[strict]") {
    using namespace std::chrono_literals;

    // Console helpers: only their addresses, since calling them would read stdin.
    const auto input = &greet::input;
    const auto print = &greet::print;
    CHECK(input != nullptr);
    CHECK(print != nullptr);

    // Errors.
    const greet::Error error(std::make_error_code(std::errc::invalid_argument), "op: text");
    CHECK(std::string(error.what()) == "op: text");
    const greet::Utf8Error utf8_error(3, "bad");
    CHECK(utf8_error.offset() == 3);
    CHECK(greet::make_error_code(greet::errc::peer_closed).category() == greet::error_category());
    CHECK_FALSE(greet::error_category().message(1).empty());
    const std::error_code closed = greet::errc::peer_closed;
    CHECK(closed.value() == 1);

    // Address and parse_port.
    const greet::Address address{"127.0.0.1", greet::parse_port("5000")};
    std::ostringstream printed;
    printed << address;
    CHECK(printed.str() == address.to_string());
    CHECK(address == address);
    CHECK_FALSE(address != address);

    // UTF-8.
    CHECK(greet::utf8::encode(std::u16string_view(u"\u00EB")) == "\xC3\xAB");
    CHECK(greet::utf8::encode(std::u32string_view(U"\u00EB")) == "\xC3\xAB");
    CHECK(greet::utf8::encode(std::wstring_view(L"\u00EB")) == "\xC3\xAB");
    CHECK(greet::utf8::decode("\xC3\xAB") == U"\u00EB");
    CHECK(greet::utf8::is_valid("\xC3\xAB"));
    CHECK(greet::utf8::sanitize("\xC3") == "\xEF\xBF\xBD");

    // Server and Client, one loopback exchange through every call.
    greet::Server server;
    server.bind("127.0.0.1", 0);
    server.listen();
    server.set_timeout(10s);
    CHECK(server.timeout() == 10s);
    CHECK(server.is_open());
    const std::uint16_t port = server.local_address().port;

    greet::Client client;
    client.set_timeout(10s);
    CHECK(client.timeout() == 10s);
    client.connect("127.0.0.1", port);
    greet::Server constructed("127.0.0.1", 0, 4);
    greet::Client direct("127.0.0.1", constructed.local_address().port);
    CHECK(direct.is_open());

    auto accepted = server.accept();
    greet::Client peer = std::move(accepted.first);
    peer.set_timeout(10s);
    CHECK(accepted.second == client.local_address());
    CHECK(peer.peer_address() == client.local_address());
    CHECK(peer.native_handle() != client.native_handle());

    std::size_t sent = client.send("line\n");
    sent += client.send(std::string_view("exact"));
    sent += client.send(std::u16string_view(u"\u00EB"));
    sent += client.send(std::u32string_view(U"\u00EB"));
    sent += client.send(std::wstring_view(L"!"));
#if defined(__cpp_char8_t)
    sent += client.send(std::u8string_view(u8"?"));
    const std::string last = "!?";
#else
    const std::string last = "!";
#endif
    CHECK(sent == 5 + 5 + 2 + 2 + last.size());
    client.shutdown_send();

    CHECK(peer.recv_line(100) == "line");
    CHECK(peer.recv_exact(5) == "exact");
    std::string rest = peer.recv_text(4); // one or both of the two "\xC3\xAB", never half of one
    CHECK(greet::utf8::is_valid(rest));
    for (int turn = 0; turn < 8; ++turn) {
        const std::string part = peer.recv(64);
        if (part.empty()) break;
        rest += part;
    }
    CHECK(rest == "\xC3\xAB\xC3\xAB" + last);

    peer.close();
    client.close();
    server.close();
    CHECK_FALSE(peer.is_open());
    CHECK_FALSE(client.is_open());
    CHECK_FALSE(server.is_open());
}
