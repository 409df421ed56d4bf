// Every failure a user can meet: its class, its code, and a message that names the
// operation, the endpoint, the OS's name for the error and what to try.
#include "catch.hpp"
#include "greet_socket.hpp"
#include "support.hpp"

#include <algorithm>
#include <string>

#ifndef _WIN32
#include <csignal>
#endif

using namespace std::chrono_literals;
using test::contains;
using test::ends_with;
using test::guard;
using test::starts_with;
using test::thrown;

TEST_CASE("connecting to a port nobody listens on: ECONNREFUSED", "[errors]") {
    std::uint16_t port = 0;
    {
        greet::Server server("127.0.0.1", 0);
        port = server.local_address().port;
    } // closed: the port is now known to be free
    greet::Client client;
    client.set_timeout(guard);
    const auto error = thrown<greet::Error>([&] { client.connect("127.0.0.1", port); });
    REQUIRE(error);
    CHECK(error->code() == std::errc::connection_refused);
    const std::string what = error->what();
    INFO(what);
    CHECK(starts_with(what, "connect 127.0.0.1:" + std::to_string(port) + ": ECONNREFUSED ("));
    CHECK(ends_with(what, "): is the server running?"));
    // Where the OS has no text (MinGW's C runtime for these errno values, Wine's
    // FormatMessage for most WSA codes: "Unknown error code"), the library's own stands in.
    CHECK_FALSE(contains(what, "Unknown error"));
    CHECK_FALSE(client.is_open());
    // The constructor reports the same.
    CHECK(thrown<greet::Error>([&] { greet::Client direct("127.0.0.1", port); }).value().code() == std::errc::connection_refused);
}

TEST_CASE("a second server on a busy port: EADDRINUSE", "[errors]") {
    greet::Server first("127.0.0.1", 0);
    const std::uint16_t port = first.local_address().port;
    const auto error = thrown<greet::Error>([&] { greet::Server second("127.0.0.1", port); });
    REQUIRE(error);
    CHECK(error->code() == std::errc::address_in_use);
    const std::string what = error->what();
    INFO(what);
    CHECK(starts_with(what, "bind 127.0.0.1:" + std::to_string(port) + ": EADDRINUSE ("));
    CHECK(ends_with(what, "): another program is listening on this port"));
    CHECK_FALSE(contains(what, "Unknown error"));
    CHECK(first.is_open()); // the first server is unaffected

    greet::Server step_by_step;
    CHECK(thrown<greet::Error>([&] { step_by_step.bind("127.0.0.1", port); }).value().code() == std::errc::address_in_use);
    CHECK_FALSE(step_by_step.is_open());
}

// The host name has a 64-character label, one more than DNS allows (RFC 1035), so the
// resolver refuses it before building a query. Checked by hand with
// `strace -f -e trace=network ./greet_tests "[resolve]"` on Linux/glibc: the only
// sockets opened are AF_UNIX ones for nscd; no UDP socket, no sendto, no connect to port 53.
TEST_CASE("an unknown host name: ResolveError, without asking the network", "[errors][resolve]") {
    const std::string host = std::string(64, 'a') + ".invalid";
    SECTION("connect") {
        greet::Client client;
        const auto error = thrown<greet::ResolveError>([&] { client.connect(host, 80); });
        REQUIRE(error);
        const std::string what = error->what();
        INFO(what);
        CHECK(starts_with(what, "connect " + host + ":80: "));
        CHECK(ends_with(what, "): is the host name right?"));
        // "<NAME> (<text>)" after the endpoint: EAI_NONAME on POSIX, a WSA name on Windows.
        const std::string reason = what.substr(std::min(what.size(), ("connect " + host + ":80: ").size()));
        const std::size_t name_end = reason.find(" (");
        REQUIRE(name_end != std::string::npos);
        CHECK(name_end > 0);
        CHECK(reason.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789") == name_end);
        CHECK(error->code()); // some resolver or OS code, not "success"
        CHECK_FALSE(client.is_open());
    }
    SECTION("bind") {
        const auto error = thrown<greet::ResolveError>([&] { greet::Server server(host, 0); });
        REQUIRE(error);
        CHECK(starts_with(error->what(), "bind " + host + ":0: "));
    }
    SECTION("a NUL byte in the name") {
        const auto error = thrown<greet::ResolveError>([] { greet::Client c(std::string_view("local\0host", 10), 80); });
        REQUIRE(error);
        CHECK(error->code() == std::errc::invalid_argument);
    }
}

TEST_CASE("parse_port", "[errors]") {
    CHECK(greet::parse_port("0") == 0);
    CHECK(greet::parse_port("80") == 80);
    CHECK(greet::parse_port("9999") == 9999);
    CHECK(greet::parse_port("65535") == 65535);
    CHECK(greet::parse_port("00080") == 80);
    for (const char* bad : {"abc", "70000", "", "65536", "99999", "-1", "+80", " 80", "80 ", "8o", "123456", "0x50"}) {
        INFO("parse_port(\"" << bad << "\")");
        const auto error = thrown<greet::Error>([&] { greet::parse_port(bad); });
        REQUIRE(error);
        CHECK(error->code() == std::errc::invalid_argument);
        CHECK(starts_with(error->what(), "parse_port \"" + std::string(bad) + "\": EINVAL ("));
        CHECK(ends_with(error->what(), "): a port is a whole number from 0 to 65535"));
    }
}

TEST_CASE("the peer closing inside recv_exact: ClosedError, bytes kept", "[errors]") {
    const test::Transport transport = GREET_TEST_TRANSPORT();
    INFO("over " << transport);
    auto pair = test::connect_pair(transport);
    pair.client.set_timeout(guard);
    pair.accepted.send("abc");
    pair.accepted.close();
    const auto error = thrown<greet::ClosedError>([&] { pair.client.recv_exact(10); });
    REQUIRE(error);
    CHECK(error->code() == greet::errc::peer_closed);
    CHECK(error->code().category() == greet::error_category());
    const std::string what = error->what();
    INFO(what);
    CHECK(starts_with(what, "recv_exact " + pair.endpoint + ":"));
    CHECK(contains(what, "after 3 of 10 bytes"));
    CHECK(pair.client.recv(100) == "abc");
    CHECK(pair.client.recv(100).empty());
}

TEST_CASE("recv_line at the end of the stream: ClosedError", "[errors]") {
    const test::Transport transport = GREET_TEST_TRANSPORT();
    INFO("over " << transport);
    auto pair = test::connect_pair(transport);
    pair.client.set_timeout(guard);
    pair.accepted.send("one\npartial");
    pair.accepted.close();
    CHECK(pair.client.recv_line() == "one");
    const auto inside = thrown<greet::ClosedError>([&] { pair.client.recv_line(); });
    REQUIRE(inside);
    CHECK(inside->code() == greet::errc::peer_closed);
    CHECK(contains(inside->what(), "in the middle of a line"));
    CHECK(pair.client.recv(100) == "partial"); // the unfinished line is not lost
    const auto after = thrown<greet::ClosedError>([&] { pair.client.recv_line(); });
    REQUIRE(after);
    CHECK(starts_with(after->what(), "recv_line " + pair.endpoint + ":"));
    CHECK(contains(after->what(), "no more lines"));
}

TEST_CASE("sending to a peer that has gone: EPIPE or ECONNRESET, no SIGPIPE", "[errors]") {
#ifndef _WIN32
    // The library must not rely on SIGPIPE being ignored; with the default action a
    // SIGPIPE would kill this process and the test run with it.
    struct sigaction current {};
    REQUIRE(::sigaction(SIGPIPE, nullptr, &current) == 0);
    REQUIRE(current.sa_handler == SIG_DFL);
#endif
    const test::Transport transport = GREET_TEST_TRANSPORT();
    INFO("over " << transport);
    auto pair = test::connect_pair(transport);
    pair.client.set_timeout(guard);
    pair.accepted.close();
    const std::string block(64 << 10, 'x');
    std::optional<greet::Error> error;
    int sends = 0;
    for (; sends < 200 && !error; ++sends) error = thrown<greet::Error>([&] { pair.client.send(block); });
    REQUIRE(error);
    INFO(error->what() << " after " << sends << " sends");
    const bool gone = error->code() == std::errc::broken_pipe || error->code() == std::errc::connection_reset;
    CHECK(gone);
    CHECK(starts_with(error->what(), "send " + pair.endpoint + ":"));
    CHECK((contains(error->what(), ": EPIPE (") || contains(error->what(), ": ECONNRESET (")));
}

TEST_CASE("a Client that never connected: ENOTCONN", "[errors]") {
    greet::Client client;
    const auto check_not_connected = [](const char* op, const std::optional<greet::Error>& error) {
        INFO(op);
        REQUIRE(error);
        CHECK(error->code() == std::errc::not_connected);
        CHECK(starts_with(error->what(), std::string(op) + ": ENOTCONN ("));
        CHECK(ends_with(error->what(), "): connect first, or the socket was closed"));
    };
    check_not_connected("recv", thrown<greet::Error>([&] { client.recv(10); }));
    check_not_connected("send", thrown<greet::Error>([&] { client.send("x"); }));
    check_not_connected("recv_text", thrown<greet::Error>([&] { client.recv_text(10); }));
    check_not_connected("recv_exact", thrown<greet::Error>([&] { client.recv_exact(10); }));
    check_not_connected("recv_line", thrown<greet::Error>([&] { client.recv_line(); }));
    check_not_connected("shutdown_send", thrown<greet::Error>([&] { client.shutdown_send(); }));
    check_not_connected("local_address", thrown<greet::Error>([&] { client.local_address(); }));
    check_not_connected("peer_address", thrown<greet::Error>([&] { client.peer_address(); }));
    // After close() it is the same, and the message still names the old peer.
    auto pair = test::connect_pair();
    const std::string peer = pair.client.peer_address().to_string();
    pair.client.close();
    const auto closed = thrown<greet::Error>([&] { pair.client.send("x"); });
    REQUIRE(closed);
    CHECK(closed->code() == std::errc::not_connected);
    CHECK(starts_with(closed->what(), "send " + peer + ": ENOTCONN ("));
}

TEST_CASE("connect on a connected Client: EISCONN", "[errors]") {
    auto pair = test::connect_pair();
    const std::uint16_t port = pair.client.peer_address().port;
    const auto error = thrown<greet::Error>([&] { pair.client.connect("127.0.0.1", port); });
    REQUIRE(error);
    CHECK(error->code() == std::errc::already_connected);
    CHECK(starts_with(error->what(), "connect 127.0.0.1:" + std::to_string(port) + ": EISCONN ("));
    CHECK(ends_with(error->what(), "): close() first"));
    // The existing connection is untouched.
    pair.client.send("still here");
    pair.accepted.set_timeout(guard);
    CHECK(pair.accepted.recv_exact(10) == "still here");
}

TEST_CASE("a Server that was never bound", "[errors]") {
    greet::Server server;
    const auto listen_error = thrown<greet::Error>([&] { server.listen(); });
    REQUIRE(listen_error);
    CHECK(starts_with(listen_error->what(), "listen"));
    const auto accept_error = thrown<greet::Error>([&] { server.accept(); });
    REQUIRE(accept_error);
    CHECK(starts_with(accept_error->what(), "accept"));
    const auto address_error = thrown<greet::Error>([&] { server.local_address(); });
    REQUIRE(address_error);
    CHECK(starts_with(address_error->what(), "local_address"));
    CHECK_FALSE(server.is_open());
}

TEST_CASE("arguments out of range: EINVAL", "[errors]") {
    const test::Transport transport = GREET_TEST_TRANSPORT();
    INFO("over " << transport);
    auto pair = test::connect_pair(transport);
    const auto check_invalid = [](const char* op, const std::optional<greet::Error>& error) {
        INFO(op);
        REQUIRE(error);
        CHECK(error->code() == std::errc::invalid_argument);
        CHECK(starts_with(error->what(), std::string(op) + ": EINVAL ("));
    };
    check_invalid("recv", thrown<greet::Error>([&] { pair.client.recv(0); }));
    check_invalid("recv_text", thrown<greet::Error>([&] { pair.client.recv_text(3); }));
    check_invalid("recv_text", thrown<greet::Error>([&] { pair.client.recv_text(0); }));
    check_invalid("recv_exact", thrown<greet::Error>([&] { pair.client.recv_exact(0); }));
    check_invalid("recv_line", thrown<greet::Error>([&] { pair.client.recv_line(0); }));
    check_invalid("set_timeout", thrown<greet::Error>([&] { pair.client.set_timeout(-1ms); }));
    CHECK_FALSE(pair.client.timeout()); // unchanged by the failed call
    greet::Server server;
    server.set_timeout(5s);
    check_invalid("set_timeout", thrown<greet::Error>([&] { server.set_timeout(-1ms); }));
    CHECK(server.timeout() == 5s);
    // None of it disturbed the connection.
    pair.accepted.send("fine");
    pair.client.set_timeout(guard);
    CHECK(pair.client.recv_exact(4) == "fine");
}

TEST_CASE("recv_text on ill-formed UTF-8: Utf8Error, bytes kept", "[errors]") {
    SECTION("bytes that can never be UTF-8") {
        auto pair = test::connect_pair();
        pair.client.set_timeout(guard);
        pair.accepted.send("ok\xFF\xFEmore");
        std::string good;
        for (int turn = 0; turn < 2 && good.size() < 2; ++turn) good += pair.client.recv_text(64);
        CHECK(good == "ok");
        const auto error = thrown<greet::Utf8Error>([&] { pair.client.recv_text(64); });
        REQUIRE(error);
        CHECK(error->code() == std::errc::illegal_byte_sequence);
        CHECK(error->offset() == 0);
        CHECK(starts_with(error->what(), "recv_text 127.0.0.1:"));
        CHECK(contains(error->what(), "EILSEQ"));
        CHECK(contains(error->what(), "0xFF"));
        CHECK(test::recv_some(pair.client, 6) == "\xFF\xFEmore");
        // Text after the bad bytes reads normally again.
        pair.accepted.send("Zo\xC3\xAB");
        CHECK(pair.client.recv_exact(4) == "Zo\xC3\xAB");
    }
    SECTION("the peer closes in the middle of a character") {
        auto pair = test::connect_pair();
        pair.client.set_timeout(guard);
        pair.accepted.send("ab\xE2\x82");
        pair.accepted.close();
        std::string good;
        for (int turn = 0; turn < 2 && good.size() < 2; ++turn) good += pair.client.recv_text(64);
        CHECK(good == "ab");
        const auto error = thrown<greet::Utf8Error>([&] { pair.client.recv_text(64); });
        REQUIRE(error);
        CHECK(error->code() == std::errc::illegal_byte_sequence);
        CHECK(contains(error->what(), "in the middle of a character"));
        CHECK(pair.client.recv(64) == "\xE2\x82");
        CHECK(pair.client.recv(64).empty());
    }
}

TEST_CASE("sending text that is not Unicode: Utf8Error before any byte goes", "[errors]") {
    auto pair = test::connect_pair();
    const std::u16string lone = {u'a', u'b', 0xD800};
    const auto error = thrown<greet::Utf8Error>([&] { pair.client.send(lone); });
    REQUIRE(error);
    CHECK(error->offset() == 2);
    const std::u32string too_big = {U'a', 0x110000};
    CHECK(thrown<greet::Utf8Error>([&] { pair.client.send(too_big); }));
    pair.client.send("Z");
    pair.accepted.set_timeout(guard);
    CHECK(pair.accepted.recv_exact(1) == "Z"); // "ab" never went out
}
