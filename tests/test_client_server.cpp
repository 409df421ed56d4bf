// Clients and servers on real loopback sockets: what arrives, in what pieces, from where.
#include "catch.hpp"
#include "greet_socket.hpp"
#include "support.hpp"

#include <atomic>
#include <future>
#include <sstream>
#include <string>
#include <vector>

#ifndef _WIN32
#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#endif

using namespace std::chrono_literals;
#ifdef __linux__
using test::open_descriptors;
#endif
using test::guard;

namespace {

// The families a name resolves to, asked of the system resolver directly.
struct Families {
    bool ipv4 = false;
    bool ipv6 = false;
};
Families resolve_families(const char* host) {
    Families out;
#ifndef _WIN32
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    if (::getaddrinfo(host, "1", &hints, &list) != 0) return out;
    for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
        out.ipv4 = out.ipv4 || ai->ai_family == AF_INET;
        out.ipv6 = out.ipv6 || ai->ai_family == AF_INET6;
    }
    ::freeaddrinfo(list);
#else
    (void)host;
    out.ipv4 = true;
#endif
    return out;
}

// Connects to host:port, checks the server sees this client's address, and exchanges a line.
void check_reachable(greet::Server& server, const std::string& host, const std::string& expected_host) {
    INFO("connecting to " << host);
    greet::Client client;
    client.set_timeout(guard);
    client.connect(host, server.local_address().port);
    auto accepted = server.accept();
    CHECK(accepted.second == client.local_address());
    CHECK(accepted.second.host == expected_host);
    CHECK(client.peer_address().host == expected_host);
    client.send("ping from " + host + "\n");
    CHECK(accepted.first.recv_line() == "ping from " + host);
    accepted.first.send("pong\n");
    CHECK(client.recv_line() == "pong");
}

} // namespace

TEST_CASE("Server(): bind, listen and accept one step at a time", "[client_server]") {
    greet::Server server;
    CHECK_FALSE(server.is_open());
    server.bind("127.0.0.1", 0);
    CHECK(server.is_open());
    const greet::Address listening = server.local_address();
    CHECK(listening.host == "127.0.0.1");
    REQUIRE(listening.port != 0);
    server.listen(8);
    server.set_timeout(guard);
    CHECK(server.timeout() == guard);

    greet::Client client;
    CHECK_FALSE(client.is_open());
    client.connect("127.0.0.1", listening.port);
    CHECK(client.is_open());
    auto [accepted, from] = server.accept();
    CHECK(accepted.is_open());
    CHECK(from == client.local_address());
    CHECK(from.host == "127.0.0.1");
    CHECK(accepted.peer_address() == from);
    CHECK(accepted.local_address() == listening);
    CHECK(client.peer_address() == listening);

    CHECK(client.send("hello") == 5);
    CHECK(accepted.recv_exact(5) == "hello");
    CHECK(accepted.send("back") == 4);
    CHECK(client.recv_exact(4) == "back");
}

TEST_CASE("Server(host, port) binds and listens at once", "[client_server]") {
    greet::Server server("127.0.0.1", 0);
    REQUIRE(server.is_open());
    server.set_timeout(guard);
    const std::uint16_t port = server.local_address().port;
    REQUIRE(port != 0);

    greet::Client first("127.0.0.1", port);
    greet::Client second("127.0.0.1", port);
    auto one = server.accept();
    auto two = server.accept();
    // Connections are accepted in the order they were made.
    CHECK(one.second == first.local_address());
    CHECK(two.second == second.local_address());
    CHECK(one.second != two.second);
    first.send("1");
    second.send("2");
    CHECK(one.first.recv(10) == "1");
    CHECK(two.first.recv(10) == "2");
}

namespace {
// A timeout switches the socket to non-blocking I/O with poll(); both paths must send everything.
void send_everything(bool with_timeout) {
    const std::string data = test::pattern(8 << 20);
    greet::Server server("127.0.0.1", 0);
    server.set_timeout(guard);
    // The reader takes uneven chunks and checks every byte against the pattern.
    auto reader = test::start([&server, &data] {
        greet::Client peer = server.accept().first;
        peer.set_timeout(guard);
        std::size_t offset = 0, mismatches = 0, calls = 0;
        for (; calls <= data.size(); ++calls) {
            const std::string chunk = peer.recv(1 + (calls * 7919) % 100000);
            if (chunk.empty()) break;
            for (std::size_t i = 0; i < chunk.size(); ++i)
                if (offset + i >= data.size() || chunk[i] != data[offset + i]) ++mismatches;
            offset += chunk.size();
        }
        return std::make_pair(offset, mismatches);
    });
    {
        greet::Client client("127.0.0.1", server.local_address().port);
        if (with_timeout) client.set_timeout(guard);
        CHECK(client.send(data) == data.size());
    } // closing tells the reader the data is complete
    const auto [received, mismatches] = reader.get();
    CHECK(received == data.size());
    CHECK(mismatches == 0);
}
} // namespace

TEST_CASE("send returns the byte count and delivers every byte", "[client_server]") {
    SECTION("blocking socket") { send_everything(false); }
    SECTION("with a timeout") { send_everything(true); }
}

TEST_CASE("recv_exact collects a large block from many reads", "[client_server]") {
    const test::Transport transport = GREET_TEST_TRANSPORT();
    INFO("over " << transport);
    auto pair = test::connect_pair(transport);
    const std::string data = test::pattern(3 << 20, 7);
    auto writer = test::start([&pair, &data] {
        pair.accepted.set_timeout(guard);
        return pair.accepted.send(data);
    });
    pair.client.set_timeout(guard);
    CHECK(pair.client.recv_exact(10) == data.substr(0, 10));
    CHECK(pair.client.recv_exact(data.size() - 10) == data.substr(10));
    CHECK(writer.get() == data.size());
    pair.accepted.send("tail");
    CHECK(pair.client.recv_exact(1) == "t");
    CHECK(pair.client.recv_exact(3) == "ail");
}

TEST_CASE("recv returns \"\" once the peer has closed", "[client_server]") {
    const test::Transport transport = GREET_TEST_TRANSPORT();
    INFO("over " << transport);
    auto pair = test::connect_pair(transport);
    pair.accepted.send("last words");
    pair.accepted.close();
    CHECK(test::recv_some(pair.client, 10) == "last words");
    CHECK(pair.client.recv(100).empty());
    CHECK(pair.client.recv(100).empty()); // and stays so
    CHECK(pair.client.recv_text(100).empty());
    CHECK(pair.client.is_open()); // the peer closing does not close this side
}

TEST_CASE("recv_text never splits a character", "[client_server]") {
    SECTION("a character split between two sends") {
        greet::Server server("127.0.0.1", 0);
        server.set_timeout(guard);
        std::promise<void> got_zo;
        auto writer = test::start([&server, got_zo_future = got_zo.get_future()]() mutable {
            greet::Client peer = server.accept().first;
            peer.send("Zo\xC3");
            // The second half goes only once the reader has returned the first part.
            if (got_zo_future.wait_for(guard) != std::future_status::ready) throw std::runtime_error("reader never got \"Zo\"");
            peer.send("\xAB");
        });
        greet::Client client("127.0.0.1", server.local_address().port);
        client.set_timeout(guard);
        std::string first;
        for (int turn = 0; turn < 2 && first.size() < 2; ++turn) first += client.recv_text(64);
        CHECK(first == "Zo");
        got_zo.set_value();
        CHECK(client.recv_text(64) == "\xC3\xAB");
        writer.get();
        CHECK(client.recv_text(64).empty()); // the writer has closed
    }
    SECTION("max_bytes stops before an incomplete character") {
        auto pair = test::connect_pair();
        pair.client.set_timeout(guard);
        const std::string text = "abc\xC3\xAB\xF0\x9F\x98\x80!";
        pair.accepted.send(text);
        pair.accepted.close();
        std::string joined;
        std::vector<std::string> parts;
        for (int turn = 0; turn < 20; ++turn) {
            std::string part = pair.client.recv_text(4);
            if (part.empty()) break;
            CHECK(part.size() <= 4);
            CHECK(greet::utf8::is_valid(part));
            joined += part;
            parts.push_back(part);
        }
        CHECK(joined == text);
        REQUIRE(parts.size() >= 3);
        CHECK(parts[0] == "abc"); // not "abc\xC3": that would split the character
    }
}

TEST_CASE("text in UTF-16, UTF-32 and wide strings arrives as UTF-8", "[client_server]") {
    const test::Transport transport = GREET_TEST_TRANSPORT();
    INFO("over " << transport);
    auto pair = test::connect_pair(transport);
    CHECK(pair.client.send(u"Zo\u00EB|") == 5);
    CHECK(pair.client.send(U"\U0001F600|") == 5);
    CHECK(pair.client.send(std::wstring_view(L"\u00F1\u20AC|")) == 6);
    CHECK(pair.client.send(std::u16string(u"\U0001F600")) == 4); // a surrogate pair becomes one character
    CHECK(pair.client.send("|plain") == 6);                      // const char*
#if defined(__cpp_char8_t)
    CHECK(pair.client.send(std::u8string_view(u8"|\u00EB")) == 3);
    const std::string tail = "|\xC3\xAB";
#else
    const std::string tail;
#endif
    const std::string expected =
        "Zo\xC3\xAB|\xF0\x9F\x98\x80|\xC3\xB1\xE2\x82\xAC|\xF0\x9F\x98\x80|plain" + tail;
    pair.accepted.set_timeout(guard);
    CHECK(pair.accepted.recv_exact(expected.size()) == expected);
}

TEST_CASE("recv_line splits on \\n and \\r\\n", "[client_server]") {
    const test::Transport transport = GREET_TEST_TRANSPORT();
    INFO("over " << transport);
    auto pair = test::connect_pair(transport);
    pair.client.set_timeout(guard);
    pair.accepted.send("first\nsecond\r\n\n\r\nZo\xC3\xAB\nlast\n");
    CHECK(pair.client.recv_line() == "first");
    CHECK(pair.client.recv_line() == "second");
    CHECK(pair.client.recv_line() == ""); // empty "\n"
    CHECK(pair.client.recv_line() == ""); // empty "\r\n"
    CHECK(pair.client.recv_line() == "Zo\xC3\xAB");
    CHECK(pair.client.recv_line() == "last");

    SECTION("a line of exactly max_bytes fits") {
        pair.accepted.send("0123456789abcdef\nnext\n");
        CHECK(pair.client.recv_line(16) == "0123456789abcdef");
        CHECK(pair.client.recv_line(16) == "next");
    }
    SECTION("a line past max_bytes is an error and stays readable") {
        const std::string long_line = "0123456789abcdefXYZ\n";
        pair.accepted.send(long_line + "after\n");
        const auto error = test::thrown<greet::Error>([&] { pair.client.recv_line(16); });
        REQUIRE(error);
        CHECK(error->code() == std::errc::message_size);
        CHECK(test::starts_with(error->what(), "recv_line " + pair.endpoint + ":"));
        CHECK(test::contains(error->what(), "EMSGSIZE"));
        CHECK(test::contains(error->what(), "no line end within 16 bytes"));
        CHECK(test::recv_some(pair.client, long_line.size()) == long_line);
        CHECK(pair.client.recv_line(16) == "after");
    }
    SECTION("recv_line(line) and recv_line_view return the same lines") {
        pair.accepted.send("one\r\ntwo\n\nthree\n");
        std::string line = "a longer line than any of these";
        pair.client.recv_line(line);
        CHECK(line == "one");
        CHECK(pair.client.recv_line_view() == "two");
        pair.client.recv_line(line);
        CHECK(line.empty());
        const std::string_view view = pair.client.recv_line_view();
        CHECK(view == "three");
        pair.accepted.close();
        CHECK(test::thrown<greet::ClosedError>([&] { pair.client.recv_line_view(); }));
    }
    SECTION("a line arriving in pieces") {
        auto writer = test::start([&pair] {
            for (const char* piece : {"pie", "ce", "s\r", "\nnext", "\n"}) pair.accepted.send(piece);
        });
        CHECK(pair.client.recv_line() == "pieces");
        CHECK(pair.client.recv_line() == "next");
        writer.get();
    }
}

namespace {
void mix_receives(bool with_timeout) {
    // Valid UTF-8 with '\n' but no '\r' (recv_line would drop a '\r' before '\n').
    std::string stream;
    const char* words[] = {"alpha", "Zo\xC3\xAB", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "line\n", "x", "\n", "\xC3\xB1\xC3\xB1"};
    for (std::size_t i = 0; stream.size() < 300000; ++i) stream += words[(i * 3 + i / 8) % 8]; // lines of at most a few dozen bytes
    stream += "\n";

    auto pair = test::connect_pair();
    auto writer = test::start([&pair, &stream] {
        pair.accepted.set_timeout(guard);
        // Uneven pieces, so characters and lines straddle the OS's reads.
        for (std::size_t at = 0, step = 1; at < stream.size(); at += step, step = step % 997 + 13)
            pair.accepted.send(std::string_view(stream).substr(at, step));
        pair.accepted.close();
    });
    if (with_timeout) pair.client.set_timeout(guard);

    std::string received;
    std::size_t turn = 0;
    for (; turn < stream.size() && received.size() < stream.size(); ++turn) {
        const std::size_t left = stream.size() - received.size();
        switch (turn % 4) {
        case 0:
            if (stream.find('\n', received.size()) == std::string::npos) break;
            if (turn / 4 % 2) received.append(pair.client.recv_line_view()) += '\n';
            else received += pair.client.recv_line() + "\n";
            break;
        case 1: received += pair.client.recv_exact(std::min<std::size_t>(left, 1 + turn % 300)); break;
        case 2: received += pair.client.recv(1 + turn % 500); break;
        case 3: {
            // recv and recv_exact may have stopped inside a character; recv_text rightly
            // refuses to start there, so it is only asked at a character boundary.
            if ((static_cast<unsigned char>(stream[received.size()]) & 0xC0) == 0x80) {
                received += pair.client.recv(1);
                break;
            }
            const std::string text = pair.client.recv_text(4 + turn % 200);
            CHECK(greet::utf8::is_valid(text));
            received += text;
            break;
        }
        }
    }
    writer.get();
    CHECK(received.size() == stream.size());
    CHECK(received == stream);
    CHECK(pair.client.recv(10).empty());
}
} // namespace

TEST_CASE("no byte is lost between recv_line, recv_exact, recv and recv_text", "[client_server]") {
    SECTION("blocking socket") { mix_receives(false); }
    SECTION("with a timeout") { mix_receives(true); }
}

TEST_CASE("shutdown_send ends the peer's stream while the reply still arrives", "[client_server]") {
    greet::Server server("127.0.0.1", 0);
    server.set_timeout(guard);
    auto peer = test::start([&server] {
        greet::Client c = server.accept().first;
        c.set_timeout(guard);
        const std::string request = test::recv_all(c); // ends only because of shutdown_send
        c.send("got " + std::to_string(request.size()) + " bytes: " + request);
    });
    greet::Client client("127.0.0.1", server.local_address().port);
    client.set_timeout(guard);
    client.send("question");
    client.shutdown_send();
    CHECK(test::recv_all(client) == "got 8 bytes: question");
    peer.get();
}

TEST_CASE("Address prints as host:port", "[client_server]") {
    const greet::Address v4{"127.0.0.1", 5000};
    const greet::Address v6{"::1", 5000};
    CHECK(v4.to_string() == "127.0.0.1:5000");
    CHECK(v6.to_string() == "[::1]:5000");
    CHECK(greet::Address{"fe80::1", 0}.to_string() == "[fe80::1]:0");
    std::ostringstream out;
    out << v4 << " " << v6;
    CHECK(out.str() == "127.0.0.1:5000 [::1]:5000");
    CHECK(v4 == greet::Address{"127.0.0.1", 5000});
    CHECK(v4 != greet::Address{"127.0.0.1", 5001});
    CHECK(v4 != v6);
    CHECK_FALSE(v4 != greet::Address{"127.0.0.1", 5000});
}

TEST_CASE("Client and Server move", "[client_server]") {
    SECTION("Client move construction keeps the connection and its buffered bytes") {
        auto pair = test::connect_pair();
        pair.accepted.send("line\nrest");
        CHECK(pair.client.recv_line() == "line");
        greet::Client moved(std::move(pair.client));
        CHECK_FALSE(pair.client.is_open());
        REQUIRE(moved.is_open());
        moved.set_timeout(guard);
        CHECK(moved.recv_exact(4) == "rest");
        moved.send("hi");
        CHECK(pair.accepted.recv_exact(2) == "hi");
        const auto error = test::thrown<greet::Error>([&] { pair.client.send("x"); });
        REQUIRE(error);
        CHECK(error->code() == std::errc::not_connected);
    }
    SECTION("Client move assignment closes the old connection") {
        auto first = test::connect_pair();
        auto second = test::connect_pair();
        first.accepted.set_timeout(guard);
        first.client = std::move(second.client);
        CHECK_FALSE(second.client.is_open());
        REQUIRE(first.client.is_open());
        CHECK(first.accepted.recv(10).empty()); // its old peer sees the close
        first.client.send("to second");
        second.accepted.set_timeout(guard);
        CHECK(second.accepted.recv_exact(9) == "to second");
    }
    SECTION("Server move construction and assignment") {
        greet::Server original("127.0.0.1", 0);
        const greet::Address where = original.local_address();
        greet::Server moved(std::move(original));
        CHECK_FALSE(original.is_open()); // NOLINT(bugprone-use-after-move): the moved-from state is the subject
        REQUIRE(moved.is_open());
        CHECK(moved.local_address() == where);
        greet::Server assigned;
        assigned = std::move(moved);
        CHECK_FALSE(moved.is_open()); // NOLINT(bugprone-use-after-move): the moved-from state is the subject
        REQUIRE(assigned.is_open());
        assigned.set_timeout(guard);
        greet::Client client("127.0.0.1", where.port);
        auto accepted = assigned.accept();
        CHECK(accepted.second == client.local_address());
    }
}

TEST_CASE("close() and is_open()", "[client_server]") {
    auto pair = test::connect_pair();
    REQUIRE(pair.client.is_open());
    pair.client.close();
    CHECK_FALSE(pair.client.is_open());
    pair.client.close(); // closing twice is harmless
    CHECK_FALSE(pair.client.is_open());
    pair.accepted.set_timeout(guard);
    CHECK(pair.accepted.recv(10).empty());

    greet::Server server("127.0.0.1", 0);
    const std::uint16_t port = server.local_address().port;
    REQUIRE(server.is_open());
    server.close();
    CHECK_FALSE(server.is_open());
    greet::Client client;
    client.set_timeout(guard);
    const auto error = test::thrown<greet::Error>([&] { client.connect("127.0.0.1", port); });
    REQUIRE(error);
    CHECK(error->code() == std::errc::connection_refused);
}

TEST_CASE("IPv6 loopback ::1", "[client_server][ipv6]") {
    if (!test::has_ipv6_loopback()) GREET_TEST_SKIP("this machine has no IPv6 loopback");
    greet::Server server("::1", 0);
    server.set_timeout(guard);
    const greet::Address listening = server.local_address();
    CHECK(listening.host == "::1");
    CHECK(listening.to_string() == "[::1]:" + std::to_string(listening.port));
    check_reachable(server, "::1", "::1");
    // An IPv6 address means IPv6 only: 127.0.0.1 on that port is not this server.
    greet::Client v4;
    v4.set_timeout(guard);
    CHECK(test::thrown<greet::Error>([&] { v4.connect("127.0.0.1", listening.port); }));
}

TEST_CASE("a \"localhost\" server answers on every address localhost has", "[client_server]") {
    const Families families = resolve_families("localhost");
    REQUIRE(families.ipv4);
    greet::Server server("localhost", 0);
    server.set_timeout(guard);
    check_reachable(server, "127.0.0.1", "127.0.0.1");
    check_reachable(server, "localhost", families.ipv6 ? server.local_address().host : "127.0.0.1");
    if (families.ipv6 && test::has_ipv6_loopback()) {
        check_reachable(server, "::1", "::1");
    } else {
        WARN("localhost resolves only to 127.0.0.1 here; its IPv6 side not tested");
    }
}

TEST_CASE("a \"\" server listens on every interface", "[client_server]") {
    greet::Server server("", 0);
    server.set_timeout(guard);
    // IPv4 clients of a dual-stack socket arrive as ::ffff:127.0.0.1 and print as plain IPv4.
    check_reachable(server, "127.0.0.1", "127.0.0.1");
    if (test::has_ipv6_loopback()) {
        check_reachable(server, "::1", "::1");
    } else {
        WARN("this machine has no IPv6 loopback; \"\" tested over IPv4 only");
    }
}

#ifndef _WIN32
TEST_CASE("sockets are close-on-exec", "[client_server][posix]") {
    auto pair = test::connect_pair();
    const int connected_flags = ::fcntl(pair.client.native_handle(), F_GETFD);
    const int accepted_flags = ::fcntl(pair.accepted.native_handle(), F_GETFD);
    REQUIRE(connected_flags != -1);
    REQUIRE(accepted_flags != -1);
    CHECK((connected_flags & FD_CLOEXEC) != 0);
    CHECK((accepted_flags & FD_CLOEXEC) != 0);
}
#endif

#ifdef __linux__
TEST_CASE("1,000 connections leave no descriptor behind", "[client_server][linux]") {
    greet::Server server("127.0.0.1", 0);
    server.set_timeout(guard);
    const std::uint16_t port = server.local_address().port;
    const std::size_t before = open_descriptors();
    int exchanged = 0;
    for (int i = 0; i < 1000; ++i) {
        greet::Client client;
        client.set_timeout(guard);
        client.connect("127.0.0.1", port);
        const std::string message = "hello " + std::to_string(i) + "\n";
        client.send(message);
        auto accepted = server.accept();
        accepted.first.set_timeout(guard);
        const std::string line = accepted.first.recv_line();
        accepted.first.send("re: " + line + "\n");
        accepted.first.close();
        if (client.recv_line() == "re: hello " + std::to_string(i)) ++exchanged;
        client.close();
    }
    CHECK(exchanged == 1000);
    CHECK(open_descriptors() == before);
}
#endif

TEST_CASE("different clients work from different threads at once", "[client_server][threads]") {
    constexpr std::size_t clients = 8;
    // In chaos mode 16 MiB in 1-16 byte calls took 10 s on a loaded 2-core machine.
    const std::size_t size = test::chaos_mode() ? std::size_t{128} << 10 : std::size_t{1} << 20;
    greet::Server server("127.0.0.1", 0);
    server.set_timeout(guard);
    const std::uint16_t port = server.local_address().port;

    // Each client sends its own pattern, half-closes, and checks that the server's
    // handler sends it back reversed.
    std::vector<std::future<bool>> senders;
    for (std::size_t i = 0; i < clients; ++i) {
        senders.push_back(test::start([port, i, size] {
            greet::Client client;
            client.set_timeout(guard);
            client.connect("127.0.0.1", port);
            std::string data = test::pattern(size, static_cast<std::uint32_t>(i + 100));
            client.send(data);
            client.shutdown_send();
            const std::string reply = test::recv_all(client);
            return reply == std::string(data.rbegin(), data.rend());
        }));
    }
    std::vector<std::future<std::size_t>> handlers;
    for (std::size_t i = 0; i < clients; ++i) {
        greet::Client accepted = server.accept().first;
        handlers.push_back(test::start([c = std::move(accepted)]() mutable {
            c.set_timeout(guard);
            std::string data = test::recv_all(c);
            c.send(std::string(data.rbegin(), data.rend()));
            return data.size();
        }));
    }
    for (auto& handler : handlers) CHECK(handler.get() == size);
    for (auto& sender : senders) CHECK(sender.get());
}
