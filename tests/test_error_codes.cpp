// The error-code API, built with -fno-exceptions: every twin taking std::error_code& on
// its failure path (ec's value, last_error_message() naming the operation and endpoint, the
// connection left as the throwing form documents) and on its success path (which clears a
// stale ec), over real loopback sockets.
//
// An executable of its own (tests/CMakeLists.txt): without exceptions the throwing forms are
// not declared, and support.hpp (try/catch) cannot be used, so its few helpers live here.
// Catch2 v2 is configured for it below: a failed REQUIRE aborts the run instead of throwing.
// With Catch2 v3 (a library built with exceptions) the same tests run with exceptions on.
// Every blocking call has a timeout (guard, or less where the test is about one), so a
// failure ends the run instead of hanging it; no sleep stands in for synchronisation.
#ifndef GREET_TEST_CATCH3
#define CATCH_CONFIG_DISABLE_EXCEPTIONS
#define CATCH_CONFIG_RUNNER
#endif
#include "catch.hpp"
#include "greet_socket.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#ifndef _WIN32
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>
#endif

using namespace std::chrono_literals;

namespace {

constexpr std::chrono::milliseconds guard = 10s; // the bound on every call that should not wait
constexpr std::chrono::milliseconds short_wait = 50ms; // for calls that are meant to time out

bool starts_with(std::string_view text, std::string_view part) { return text.substr(0, part.size()) == part; }
bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

// What a success must clear: every success below starts from an ec holding an error.
std::error_code stale() { return std::make_error_code(std::errc::io_error); }

// ec holds expected, and this thread's last message reads "<op> <endpoint>: <name> (...":
// name is the OS's name for the error, empty for the library's own (peer_closed).
template <class Code>
void check_failure(const std::error_code& ec, Code expected, const std::string& op, const std::string& endpoint,
                   const std::string& name) {
    const std::string message = greet::last_error_message();
    INFO("ec: " << ec.value() << " " << ec.message() << "\nlast_error_message(): " << message);
    CHECK(ec == expected);
    const std::string prefix = op + (endpoint.empty() ? "" : " " + endpoint) + ": " + (name.empty() ? "" : name + " (");
    CHECK(starts_with(message, prefix));
}

std::string endpoint_of(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// Both ends of one loopback connection, each with the guard timeout; the server stays open.
struct Pair {
    greet::Server server;
    greet::Client client;   // connected to 127.0.0.1:<port>
    greet::Client accepted; // the server's side
    std::string endpoint;   // "127.0.0.1:<port>": how the client's messages name its peer
};
Pair connect_pair() {
    Pair pair;
    std::error_code ec;
    pair.server.bind("127.0.0.1", 0, ec);
    REQUIRE_FALSE(ec);
    pair.server.listen(16, ec);
    REQUIRE_FALSE(ec);
    pair.server.set_timeout(guard, ec);
    const std::uint16_t port = pair.server.local_address(ec).port;
    REQUIRE_FALSE(ec);
    pair.endpoint = endpoint_of(port);
    pair.client.set_timeout(guard, ec);
    pair.client.connect("127.0.0.1", port, ec);
    REQUIRE_FALSE(ec);
    auto accepted = pair.server.accept(ec);
    REQUIRE_FALSE(ec);
    pair.accepted = std::move(accepted.first);
    pair.accepted.set_timeout(guard, ec);
    REQUIRE_FALSE(ec);
    return pair;
}

// Sends all of bytes from the test's thread, which must succeed.
void send_ok(greet::Client& client, std::string_view bytes) {
    std::error_code ec = stale();
    CHECK(client.send(bytes, ec) == bytes.size());
    CHECK_FALSE(ec);
}

// n bytes through plain recv calls (each may return fewer, as in chaos mode); fewer at the
// end of the stream or on an error.
std::string recv_some(greet::Client& client, std::size_t n) {
    std::string out;
    std::error_code ec;
    for (std::size_t turn = 0; turn < n && out.size() < n; ++turn) {
        const std::string part = client.recv(n - out.size(), ec);
        if (ec || part.empty()) break;
        out += part;
    }
    return out;
}

// A port nobody listens on: bound, then closed.
std::uint16_t free_port() {
    std::error_code ec;
    greet::Server server;
    server.bind("127.0.0.1", 0, ec);
    REQUIRE_FALSE(ec);
    const std::uint16_t port = server.local_address(ec).port;
    REQUIRE_FALSE(ec);
    return port;
}

// Whether a throwing form is declared (it must not be under -fno-exceptions).
template <class C, class = void> struct has_throwing_connect : std::false_type {};
template <class C>
struct has_throwing_connect<C, std::void_t<decltype(std::declval<C&>().connect(std::string_view(), std::uint16_t()))>> : std::true_type {};
template <class C, class = void> struct has_throwing_recv : std::false_type {};
template <class C> struct has_throwing_recv<C, std::void_t<decltype(std::declval<C&>().recv(std::size_t()))>> : std::true_type {};
template <class C, class = void> struct has_throwing_send : std::false_type {};
template <class C> struct has_throwing_send<C, std::void_t<decltype(std::declval<C&>().send(std::string_view()))>> : std::true_type {};
template <class S, class = void> struct has_throwing_bind : std::false_type {};
template <class S>
struct has_throwing_bind<S, std::void_t<decltype(std::declval<S&>().bind(std::string_view(), std::uint16_t()))>> : std::true_type {};
template <class S, class = void> struct has_throwing_accept : std::false_type {};
template <class S> struct has_throwing_accept<S, std::void_t<decltype(std::declval<S&>().accept())>> : std::true_type {};
template <class T, class = void> struct has_throwing_parse_port : std::false_type {};
template <class T> struct has_throwing_parse_port<T, std::void_t<decltype(greet::parse_port(std::declval<T>()))>> : std::true_type {};
template <class T, class = void> struct has_throwing_decode : std::false_type {};
template <class T> struct has_throwing_decode<T, std::void_t<decltype(greet::utf8::decode(std::declval<T>()))>> : std::true_type {};

} // namespace

TEST_CASE("without exceptions the throwing forms are not declared, and every twin is noexcept", "[error_codes]") {
    constexpr bool throwing_forms =
        std::disjunction<has_throwing_connect<greet::Client>, has_throwing_recv<greet::Client>, has_throwing_send<greet::Client>,
                         has_throwing_bind<greet::Server>, has_throwing_accept<greet::Server>,
                         has_throwing_parse_port<std::string_view>, has_throwing_decode<std::string_view>,
                         std::is_constructible<greet::Client, std::string_view, std::uint16_t>,
                         std::is_constructible<greet::Server, std::string_view, std::uint16_t>,
                         std::is_default_constructible<greet::Canceller>>::value;
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
    WARN("built with exceptions: the throwing forms are there, beside the twins");
    CHECK(throwing_forms);
#else
    CHECK_FALSE(has_throwing_connect<greet::Client>::value);
    CHECK_FALSE(has_throwing_recv<greet::Client>::value);
    CHECK_FALSE(has_throwing_send<greet::Client>::value);
    CHECK_FALSE(has_throwing_bind<greet::Server>::value);
    CHECK_FALSE(has_throwing_accept<greet::Server>::value);
    CHECK_FALSE(has_throwing_parse_port<std::string_view>::value);
    CHECK_FALSE(has_throwing_decode<std::string_view>::value);
    CHECK_FALSE(std::is_constructible<greet::Client, std::string_view, std::uint16_t>::value);
    CHECK_FALSE(std::is_constructible<greet::Server, std::string_view, std::uint16_t>::value);
    CHECK_FALSE(std::is_default_constructible<greet::Canceller>::value);
    CHECK_FALSE(throwing_forms);
#endif
    // Unevaluated: these only look at the declarations.
    std::error_code ec;
    greet::Client c;
    greet::Server s;
    char* into = nullptr;
    std::string line;
    CHECK(noexcept(greet::parse_port("1", ec)));
    CHECK(noexcept(greet::utf8::encode(std::u16string_view(), ec)));
    CHECK(noexcept(greet::utf8::encode(std::u32string_view(), ec)));
    CHECK(noexcept(greet::utf8::encode(std::wstring_view(), ec)));
    CHECK(noexcept(greet::utf8::decode(std::string_view(), ec)));
    CHECK(std::is_nothrow_constructible<greet::Canceller, std::error_code&>::value);
    CHECK(noexcept(c.connect("127.0.0.1", 1, ec)));
    CHECK(noexcept(c.send(std::string_view(), ec)));
    CHECK(noexcept(c.send(std::u16string_view(), ec)));
    CHECK(noexcept(c.send(std::u32string_view(), ec)));
    CHECK(noexcept(c.send(std::wstring_view(), ec)));
#if defined(__cpp_char8_t)
    CHECK(noexcept(c.send(std::u8string_view(), ec)));
#endif
    CHECK(noexcept(c.send_line(std::string_view(), ec)));
    CHECK(noexcept(c.send_message(std::string_view(), ec)));
    CHECK(noexcept(c.recv(1, ec)));
    CHECK(noexcept(c.recv_text(4, ec)));
    CHECK(noexcept(c.recv_exact(1, ec)));
    CHECK(noexcept(c.recv_line(1, ec)));
    CHECK(noexcept(c.recv_line(line, 1, ec)));
    CHECK(noexcept(c.recv_line_view(1, ec)));
    CHECK(noexcept(c.recv_into(into, 1, ec)));
    CHECK(noexcept(c.recv_exact_into(into, 1, ec)));
    CHECK(noexcept(c.recv_message(1, ec)));
    CHECK(noexcept(c.set_timeout(greet::Timeout(), ec)));
    CHECK(noexcept(c.shutdown_send(ec)));
    CHECK(noexcept(c.local_address(ec)));
    CHECK(noexcept(c.peer_address(ec)));
    CHECK(noexcept(s.bind("127.0.0.1", 0, ec)));
    CHECK(noexcept(s.listen(1, ec)));
    CHECK(noexcept(s.accept(ec)));
    CHECK(noexcept(s.set_timeout(greet::Timeout(), ec)));
    CHECK(noexcept(s.local_address(ec)));
    // (declval: a ServeOptions() temporary is itself not noexcept, its grace being a converted duration)
    CHECK(noexcept(s.serve(std::declval<const greet::Server::Handler&>(), std::declval<const greet::ServeOptions&>(), ec)));
    // The twins' results: what the throwing forms return.
    CHECK(std::is_same<decltype(c.send(std::string_view(), ec)), std::size_t>::value);
    CHECK(std::is_same<decltype(c.recv_into(into, 1, ec)), std::size_t>::value);
    CHECK(std::is_same<decltype(c.recv_line_view(1, ec)), std::string_view>::value);
    CHECK(std::is_same<decltype(s.accept(ec)), std::pair<greet::Client, greet::Address>>::value);
}

TEST_CASE("parse_port, utf8::encode and utf8::decode report through ec", "[error_codes]") {
    std::error_code ec;
    CHECK(greet::parse_port("70000", ec) == 0);
    check_failure(ec, std::errc::invalid_argument, "parse_port \"70000\"", "", "EINVAL");
    CHECK(greet::parse_port("", ec) == 0);
    CHECK(ec == std::errc::invalid_argument);
    ec = stale();
    CHECK(greet::parse_port("9999", ec) == 9999);
    CHECK_FALSE(ec);

    const std::u16string lone = {u'a', u'b', 0xD800};
    CHECK(greet::utf8::encode(lone, ec).empty());
    check_failure(ec, std::errc::illegal_byte_sequence, "utf8::encode", "", "EILSEQ");
    CHECK(greet::utf8::encode(u"Zo\u00EB", ec) == "Zo\xC3\xAB");
    CHECK_FALSE(ec);

    const std::u32string too_big = {U'a', 0x110000};
    CHECK(greet::utf8::encode(too_big, ec).empty());
    check_failure(ec, std::errc::illegal_byte_sequence, "utf8::encode", "", "EILSEQ");
    CHECK(greet::utf8::encode(U"Zo\u00EB", ec) == "Zo\xC3\xAB");
    CHECK_FALSE(ec);

    std::wstring wide = L"ab";
    wide += static_cast<wchar_t>(0xD800); // unpaired in UTF-16, no scalar value in UTF-32
    CHECK(greet::utf8::encode(std::wstring_view(wide), ec).empty());
    check_failure(ec, std::errc::illegal_byte_sequence, "utf8::encode", "", "EILSEQ");
    CHECK(greet::utf8::encode(std::wstring_view(L"Zo\u00EB"), ec) == "Zo\xC3\xAB");
    CHECK_FALSE(ec);

    CHECK(greet::utf8::decode("ok\xFF", ec).empty());
    check_failure(ec, std::errc::illegal_byte_sequence, "utf8::decode", "", "EILSEQ");
    CHECK(contains(greet::last_error_message(), "byte 2"));
    CHECK(greet::utf8::decode("Zo\xC3\xAB", ec) == U"Zo\u00EB");
    CHECK_FALSE(ec);
}

TEST_CASE("connect(ec): refused, then connected, then already connected", "[error_codes]") {
    const std::uint16_t closed = free_port();
    std::error_code ec;
    greet::Client client;
    client.set_timeout(guard, ec);
    REQUIRE_FALSE(ec);
    client.connect("127.0.0.1", closed, ec);
    check_failure(ec, std::errc::connection_refused, "connect", endpoint_of(closed), "ECONNREFUSED");
    CHECK_FALSE(client.is_open());

    // The same Client connects once there is a server.
    greet::Server server;
    server.bind("127.0.0.1", 0, ec);
    server.listen(16, ec);
    server.set_timeout(guard, ec);
    REQUIRE_FALSE(ec);
    const std::uint16_t port = server.local_address(ec).port;
    ec = stale();
    client.connect("127.0.0.1", port, ec);
    CHECK_FALSE(ec);
    CHECK(client.is_open());
    auto accepted = server.accept(ec);
    REQUIRE_FALSE(ec);

    client.connect("127.0.0.1", port, ec);
    check_failure(ec, std::errc::already_connected, "connect", endpoint_of(port), "EISCONN");
    send_ok(client, "still here"); // the connection is untouched
    accepted.first.set_timeout(guard, ec);
    CHECK(recv_some(accepted.first, 10) == "still here");
}

TEST_CASE("recv(ec), recv_into(ec), recv_line(line, ec): a timeout keeps the connection and its bytes", "[error_codes]") {
    auto pair = connect_pair();
    std::error_code ec;
    pair.client.set_timeout(short_wait, ec);
    REQUIRE_FALSE(ec);
    CHECK(pair.client.timeout() == short_wait);

    CHECK(pair.client.recv(100, ec).empty());
    check_failure(ec, std::errc::timed_out, "recv", pair.endpoint, "ETIMEDOUT");
    CHECK(pair.client.is_open());
    send_ok(pair.accepted, "late");
    pair.client.set_timeout(guard, ec);
    CHECK(recv_some(pair.client, 4) == "late");

    SECTION("recv_into") {
        char into[16] = {};
        pair.client.set_timeout(short_wait, ec);
        CHECK(pair.client.recv_into(into, sizeof into, ec) == 0);
        check_failure(ec, std::errc::timed_out, "recv_into", pair.endpoint, "ETIMEDOUT");
        send_ok(pair.accepted, "x");
        pair.client.set_timeout(guard, ec);
        ec = stale();
        CHECK(pair.client.recv_into(into, sizeof into, ec) == 1);
        CHECK_FALSE(ec);
        CHECK(into[0] == 'x');
    }
    SECTION("recv_line into a string") {
        std::string line = "old";
        send_ok(pair.accepted, "par");
        pair.client.set_timeout(short_wait, ec);
        pair.client.recv_line(line, 64, ec);
        check_failure(ec, std::errc::timed_out, "recv_line", pair.endpoint, "ETIMEDOUT");
        send_ok(pair.accepted, "tial\n");
        pair.client.set_timeout(guard, ec);
        ec = stale();
        pair.client.recv_line(line, 64, ec);
        CHECK_FALSE(ec);
        CHECK(line == "partial"); // the bytes before the timeout were kept
    }
    SECTION("recv with a plain success clears ec") {
        send_ok(pair.accepted, "y");
        ec = stale();
        CHECK(pair.client.recv(10, ec) == "y");
        CHECK_FALSE(ec);
    }
}

TEST_CASE("recv_exact(ec) and recv_exact_into(ec): the peer closing mid-unit is peer_closed, bytes kept", "[error_codes]") {
    auto pair = connect_pair();
    std::error_code ec;
    SECTION("recv_exact") {
        send_ok(pair.accepted, "abcdefg");
        ec = stale();
        CHECK(pair.client.recv_exact(4, ec) == "abcd");
        CHECK_FALSE(ec);
        pair.accepted.close();
        CHECK(pair.client.recv_exact(10, ec).empty());
        check_failure(ec, greet::errc::peer_closed, "recv_exact", pair.endpoint, "");
        CHECK(ec.category() == greet::error_category());
        CHECK(contains(greet::last_error_message(), "after 3 of 10 bytes"));
        CHECK(recv_some(pair.client, 100) == "efg");
        CHECK(pair.client.recv(100, ec).empty()); // then the end of the stream, which is no error
        CHECK_FALSE(ec);
    }
    SECTION("recv_exact_into") {
        char into[16] = {};
        send_ok(pair.accepted, "0123xy");
        ec = stale();
        pair.client.recv_exact_into(into, 4, ec);
        CHECK_FALSE(ec);
        CHECK(std::string(into, 4) == "0123");
        pair.accepted.close();
        pair.client.recv_exact_into(into, 8, ec);
        check_failure(ec, greet::errc::peer_closed, "recv_exact_into", pair.endpoint, "");
        CHECK(recv_some(pair.client, 100) == "xy");
    }
}

TEST_CASE("recv_line(ec) and recv_line_view(ec): too long a line stays unread, a cut line is peer_closed", "[error_codes]") {
    auto pair = connect_pair();
    std::error_code ec;
    send_ok(pair.accepted, "toolongline\nshort\none\npart");
    CHECK(pair.client.recv_line(4, ec).empty());
    check_failure(ec, std::errc::message_size, "recv_line", pair.endpoint, "EMSGSIZE");
    ec = stale();
    CHECK(pair.client.recv_line(64, ec) == "toolongline"); // the bytes stayed
    CHECK_FALSE(ec);
    ec = stale();
    CHECK(pair.client.recv_line_view(64, ec) == "short");
    CHECK_FALSE(ec);
    CHECK(pair.client.recv_line_view(64, ec) == "one");
    pair.accepted.close();
    CHECK(pair.client.recv_line_view(64, ec).empty());
    const std::string message = greet::last_error_message();
    INFO(message);
    CHECK(ec == greet::errc::peer_closed);
    // The view's messages may name it recv_line (as the throwing form's what() does) or recv_line_view.
    CHECK((starts_with(message, "recv_line " + pair.endpoint + ": ") || starts_with(message, "recv_line_view " + pair.endpoint + ": ")));
    CHECK(recv_some(pair.client, 100) == "part");
    CHECK(pair.client.recv_line(64, ec).empty()); // the end of the stream: no more lines
    check_failure(ec, greet::errc::peer_closed, "recv_line", pair.endpoint, "");
}

TEST_CASE("recv_text(ec) on ill-formed UTF-8: illegal_byte_sequence, recv returns the bytes", "[error_codes]") {
    auto pair = connect_pair();
    std::error_code ec;
    send_ok(pair.accepted, "ok\xFF\xFEmore");
    std::string good;
    for (int turn = 0; turn < 2 && good.size() < 2 && !ec; ++turn) good += pair.client.recv_text(64, ec);
    CHECK_FALSE(ec);
    CHECK(good == "ok");
    CHECK(pair.client.recv_text(64, ec).empty());
    check_failure(ec, std::errc::illegal_byte_sequence, "recv_text", pair.endpoint, "EILSEQ");
    CHECK(contains(greet::last_error_message(), "0xFF"));
    CHECK(recv_some(pair.client, 6) == "\xFF\xFEmore");
    send_ok(pair.accepted, "Zo\xC3\xAB");
    std::string text;
    for (int turn = 0; turn < 4 && text.size() < 4; ++turn) {
        ec = stale();
        text += pair.client.recv_text(64, ec);
        if (ec) break;
    }
    CHECK_FALSE(ec);
    CHECK(text == "Zo\xC3\xAB");
}

TEST_CASE("send_message(ec) and recv_message(ec)", "[error_codes]") {
    auto pair = connect_pair();
    std::error_code ec;
    const std::string peer = pair.accepted.peer_address(ec).to_string();
    REQUIRE_FALSE(ec);
    ec = stale();
    CHECK(pair.accepted.send_message("hello", ec) == 9);
    CHECK_FALSE(ec);
    CHECK(pair.client.recv_message(4, ec).empty()); // the peer announced 5 bytes
    check_failure(ec, std::errc::message_size, "recv_message", pair.endpoint, "EMSGSIZE");
    ec = stale();
    CHECK(pair.client.recv_message(5, ec) == "hello"); // the message stayed unread
    CHECK_FALSE(ec);

    send_ok(pair.accepted, std::string_view("\0\0", 2)); // half a header, then the end
    pair.accepted.close();
    CHECK(pair.client.recv_message(64, ec).empty());
    check_failure(ec, greet::errc::peer_closed, "recv_message", pair.endpoint, "");
    CHECK(recv_some(pair.client, 2) == std::string_view("\0\0", 2));

    // send_message of 4 GiB or more (EMSGSIZE) would need a 4 GiB payload: not tested here.
    CHECK(pair.accepted.send_message("late", ec) == 0);
    check_failure(ec, std::errc::not_connected, "send_message", peer, "ENOTCONN");
}

TEST_CASE("send(ec) to a peer that reset: broken_pipe or connection_reset, and the count sent", "[error_codes]") {
    auto pair = connect_pair();
    std::error_code ec;
    send_ok(pair.client, "unread"); // bytes left unread make the peer's close a reset
    pair.accepted.close();
    const std::string block(64 << 10, 'x');
    std::size_t sent = 0;
    int sends = 0;
    for (; sends < 200; ++sends) {
        sent = pair.client.send(block, ec);
        if (ec) break;
        CHECK(sent == block.size());
    }
    REQUIRE(ec);
    const std::string message = greet::last_error_message();
    INFO(message << " after " << sends << " sends");
    CHECK((ec == std::errc::broken_pipe || ec == std::errc::connection_reset));
    CHECK((starts_with(message, "send " + pair.endpoint + ": EPIPE (") || starts_with(message, "send " + pair.endpoint + ": ECONNRESET (")));
    CHECK(sent < block.size());
    if (sent > 0) CHECK(contains(message, "sent " + std::to_string(sent) + " of " + std::to_string(block.size()) + " bytes"));
}

TEST_CASE("send(ec) that times out returns exactly the bytes that went", "[error_codes]") {
    auto pair = connect_pair();
    std::error_code ec;
    pair.client.set_timeout(100ms, ec);
    const std::string big(std::size_t{32} << 20, 'x'); // more than loopback's buffers hold
    const std::size_t sent = pair.client.send(big, ec);
    check_failure(ec, std::errc::timed_out, "send", pair.endpoint, "ETIMEDOUT");
    CHECK(contains(greet::last_error_message(), "sent " + std::to_string(sent) + " of " + std::to_string(big.size()) + " bytes"));
    REQUIRE(sent > 0);
    CHECK(sent < big.size());
    // The peer gets those bytes, and not one more.
    std::string got(sent, '\0');
    ec = stale();
    pair.accepted.recv_exact_into(got.data(), sent, ec);
    CHECK_FALSE(ec);
    CHECK(got.find_first_not_of('x') == std::string::npos);
    pair.accepted.set_timeout(short_wait, ec);
    CHECK(pair.accepted.recv(1, ec).empty());
    CHECK(ec == std::errc::timed_out);
}

TEST_CASE("send(ec) of text: ill-formed text fails before any byte goes", "[error_codes]") {
    auto pair = connect_pair();
    std::error_code ec;
    const auto check_text_failure = [&](std::size_t sent) {
        const std::string message = greet::last_error_message();
        INFO(message);
        CHECK(sent == 0);
        CHECK(ec == std::errc::illegal_byte_sequence);
        // Named as the send (with its endpoint) or as the encoding, as the throwing form's what() is.
        CHECK((starts_with(message, "send " + pair.endpoint + ": EILSEQ (") || starts_with(message, "utf8::encode: EILSEQ (")));
    };
    check_text_failure(pair.client.send(std::u16string_view(u"ab\xD800", 3), ec));
    check_text_failure(pair.client.send(std::u32string_view(U"a\x110000", 2), ec));
    std::wstring wide = L"ab";
    wide += static_cast<wchar_t>(0xD800);
    check_text_failure(pair.client.send(std::wstring_view(wide), ec));

    ec = stale();
    CHECK(pair.client.send(std::u16string_view(u"Zo\u00EB"), ec) == 4);
    CHECK_FALSE(ec);
    ec = stale();
    CHECK(pair.client.send(std::u32string_view(U"Zo\u00EB"), ec) == 4);
    CHECK_FALSE(ec);
    ec = stale();
    CHECK(pair.client.send(std::wstring_view(L"Zo\u00EB"), ec) == 4);
    CHECK_FALSE(ec);
    std::string expected = "Zo\xC3\xAB" "Zo\xC3\xAB" "Zo\xC3\xAB";
#if defined(__cpp_char8_t)
    ec = stale();
    CHECK(pair.client.send(std::u8string_view(u8"Zo\u00EB"), ec) == 4);
    CHECK_FALSE(ec);
    expected += "Zo\xC3\xAB";
#endif
    ec = stale();
    CHECK(pair.accepted.recv_exact(expected.size(), ec) == expected); // nothing of the failed sends went out
    CHECK_FALSE(ec);

    // The failure of every form once the connection is gone (u8 text has nothing to encode).
    pair.client.close();
    CHECK(pair.client.send(std::u16string_view(u"x"), ec) == 0);
    check_failure(ec, std::errc::not_connected, "send", pair.endpoint, "ENOTCONN");
    CHECK(pair.client.send(std::u32string_view(U"x"), ec) == 0);
    check_failure(ec, std::errc::not_connected, "send", pair.endpoint, "ENOTCONN");
    CHECK(pair.client.send(std::wstring_view(L"x"), ec) == 0);
    check_failure(ec, std::errc::not_connected, "send", pair.endpoint, "ENOTCONN");
#if defined(__cpp_char8_t)
    CHECK(pair.client.send(std::u8string_view(u8"x"), ec) == 0);
    check_failure(ec, std::errc::not_connected, "send", pair.endpoint, "ENOTCONN");
#endif
}

TEST_CASE("send_line(ec)", "[error_codes]") {
    auto pair = connect_pair();
    std::error_code ec;
    CHECK(pair.client.send_line("two\nlines", ec) == 0);
    CHECK(ec == std::errc::invalid_argument);
    CHECK(starts_with(greet::last_error_message(), "send_line"));
    CHECK(contains(greet::last_error_message(), "EINVAL"));
    CHECK(pair.client.send_line("ends in CR\r", ec) == 0);
    CHECK(ec == std::errc::invalid_argument);
    ec = stale();
    CHECK(pair.client.send_line("one line", ec) == 9);
    CHECK_FALSE(ec);
    CHECK(pair.accepted.recv_line(64, ec) == "one line"); // and nothing of the refused lines
    CHECK_FALSE(ec);
    pair.client.close();
    CHECK(pair.client.send_line("late", ec) == 0);
    check_failure(ec, std::errc::not_connected, "send_line", pair.endpoint, "ENOTCONN");
}

TEST_CASE("shutdown_send(ec), local_address(ec), peer_address(ec)", "[error_codes]") {
    auto pair = connect_pair();
    std::error_code ec;
    const std::uint16_t port = pair.server.local_address(ec).port;
    ec = stale();
    const greet::Address local = pair.client.local_address(ec);
    CHECK_FALSE(ec);
    CHECK(local.host == "127.0.0.1");
    CHECK(local.port != 0);
    ec = stale();
    CHECK(pair.client.peer_address(ec) == greet::Address{"127.0.0.1", port});
    CHECK_FALSE(ec);
    ec = stale();
    pair.client.shutdown_send(ec);
    CHECK_FALSE(ec);
    CHECK(pair.accepted.recv(10, ec).empty()); // the peer sees the end of the stream
    CHECK_FALSE(ec);
    send_ok(pair.accepted, "still open"); // and this side still receives
    CHECK(recv_some(pair.client, 10) == "still open");

    pair.client.close();
    pair.client.shutdown_send(ec);
    check_failure(ec, std::errc::not_connected, "shutdown_send", pair.endpoint, "ENOTCONN");
    CHECK(pair.client.local_address(ec) == greet::Address{});
    check_failure(ec, std::errc::not_connected, "local_address", pair.endpoint, "ENOTCONN");
    CHECK(pair.client.peer_address(ec) == greet::Address{});
    check_failure(ec, std::errc::not_connected, "peer_address", pair.endpoint, "ENOTCONN");
}

TEST_CASE("set_timeout(ec) refuses a negative timeout and keeps the old one", "[error_codes]") {
    auto pair = connect_pair();
    std::error_code ec = stale();
    pair.client.set_timeout(5s, ec);
    CHECK_FALSE(ec);
    pair.client.set_timeout(-1ms, ec);
    CHECK(ec == std::errc::invalid_argument);
    CHECK(starts_with(greet::last_error_message(), "set_timeout"));
    CHECK(contains(greet::last_error_message(), "EINVAL"));
    CHECK(pair.client.timeout() == 5s);

    ec = stale();
    pair.server.set_timeout(5s, ec);
    CHECK_FALSE(ec);
    pair.server.set_timeout(-1ms, ec);
    CHECK(ec == std::errc::invalid_argument);
    CHECK(starts_with(greet::last_error_message(), "set_timeout"));
    CHECK(pair.server.timeout() == 5s);
    ec = stale();
    pair.server.set_timeout(std::nullopt, ec);
    CHECK_FALSE(ec);
    CHECK_FALSE(pair.server.timeout());
}

TEST_CASE("Server: bind(ec) to a busy port, listen(ec) and local_address(ec) before bind", "[error_codes]") {
    std::error_code ec;
    greet::Server unbound;
    unbound.listen(16, ec);
    check_failure(ec, std::errc::invalid_argument, "listen", "", "EINVAL");
    CHECK(unbound.local_address(ec) == greet::Address{});
    check_failure(ec, std::errc::invalid_argument, "local_address", "", "EINVAL");

    greet::Server first;
    ec = stale();
    first.bind("127.0.0.1", 0, ec);
    CHECK_FALSE(ec);
    ec = stale();
    first.listen(16, ec);
    CHECK_FALSE(ec);
    ec = stale();
    const std::uint16_t port = first.local_address(ec).port;
    CHECK_FALSE(ec);
    CHECK(port != 0);

    greet::Server second;
    second.bind("127.0.0.1", port, ec);
    check_failure(ec, std::errc::address_in_use, "bind", endpoint_of(port), "EADDRINUSE");
    CHECK_FALSE(second.is_open());
    CHECK(first.is_open()); // the first is unaffected and still takes clients
    first.set_timeout(guard, ec);
    greet::Client client;
    client.set_timeout(guard, ec);
    client.connect("127.0.0.1", port, ec);
    REQUIRE_FALSE(ec);
    CHECK(first.accept(ec).first.is_open());
    CHECK_FALSE(ec);
}

TEST_CASE("accept(ec): before listen, timed out, then a client, and cancelled after stop()", "[error_codes]") {
    std::error_code ec;
    greet::Server server;
    server.bind("127.0.0.1", 0, ec);
    REQUIRE_FALSE(ec);
    const std::uint16_t port = server.local_address(ec).port;
    server.set_timeout(guard, ec);
    auto none = server.accept(ec);
    check_failure(ec, std::errc::invalid_argument, "accept", endpoint_of(port), "EINVAL");
    CHECK_FALSE(none.first.is_open());
    CHECK(none.second == greet::Address{});
    server.listen(16, ec);
    REQUIRE_FALSE(ec);

    server.set_timeout(short_wait, ec);
    auto timed_out = server.accept(ec);
    check_failure(ec, std::errc::timed_out, "accept", endpoint_of(port), "ETIMEDOUT");
    CHECK_FALSE(timed_out.first.is_open());
    CHECK(timed_out.second == greet::Address{});

    greet::Client client; // the server takes clients all the same
    client.set_timeout(guard, ec);
    client.connect("127.0.0.1", port, ec);
    REQUIRE_FALSE(ec);
    server.set_timeout(guard, ec);
    ec = stale();
    auto accepted = server.accept(ec);
    CHECK_FALSE(ec);
    REQUIRE(accepted.first.is_open());
    CHECK(accepted.second == client.local_address(ec));
    send_ok(client, "hi");
    accepted.first.set_timeout(guard, ec);
    CHECK(recv_some(accepted.first, 2) == "hi");

    server.stop();
    for (int i = 0; i < 2; ++i) { // and it stays in effect
        auto cancelled = server.accept(ec);
        check_failure(ec, std::errc::operation_canceled, "accept", endpoint_of(port), "ECANCELED");
        CHECK_FALSE(cancelled.first.is_open());
    }
}

namespace {
// What the serve test's handlers saw, written by their threads.
struct Seen {
    std::mutex mutex;
    std::condition_variable changed;
    bool waiting = false; // a handler is about to wait for bytes that never come
    std::vector<std::string> outcomes;
};
} // namespace

TEST_CASE("serve(ec): before listen, then handlers on twins, and a handler cut off at stop() gets operation_canceled", "[error_codes]") {
    std::error_code ec;
    greet::Server server;
    server.bind("127.0.0.1", 0, ec);
    REQUIRE_FALSE(ec);
    const std::uint16_t port = server.local_address(ec).port;
    server.serve([](greet::Client&, const greet::Address&) {}, greet::ServeOptions(), ec);
    check_failure(ec, std::errc::invalid_argument, "serve", endpoint_of(port), "EINVAL");
    server.listen(16, ec);
    REQUIRE_FALSE(ec);

    Seen seen;
    greet::ServeOptions options;
    options.grace = 0ms; // cut the waiting handler off at once
    const auto handler = [&seen](greet::Client& client, const greet::Address& peer) {
        std::error_code e;
        client.set_timeout(guard, e);
        const std::string line = client.recv_line(1024, e);
        if (!e && line == "echo") {
            client.send_line("echo " + peer.to_string(), e);
            return;
        }
        {
            std::lock_guard<std::mutex> lock(seen.mutex);
            seen.waiting = true;
        }
        seen.changed.notify_all();
        (void)client.recv(10, e); // until stop() cuts the connection off
        std::string outcome = e == std::errc::operation_canceled ? "canceled: " : "not canceled: ";
        outcome += greet::last_error_message();
        if (starts_with(greet::last_error_message(), "recv " + peer.to_string() + ": ECANCELED (")) outcome += " [named]";
        std::lock_guard<std::mutex> lock(seen.mutex);
        seen.outcomes.push_back(outcome);
    };
    std::error_code serve_ec = stale();
    std::thread serving([&] { server.serve(handler, options, serve_ec); });

    // No REQUIRE until serving is joined: stop() must be reached.
    greet::Client echo, waiter;
    echo.set_timeout(guard, ec);
    echo.connect("127.0.0.1", port, ec);
    CHECK_FALSE(ec);
    echo.send_line("echo", ec);
    CHECK(echo.recv_line(1024, ec) == "echo " + echo.local_address(ec).to_string());
    CHECK_FALSE(ec);
    waiter.set_timeout(guard, ec);
    waiter.connect("127.0.0.1", port, ec);
    CHECK_FALSE(ec);
    waiter.send_line("wait", ec);
    bool waiting = false;
    {
        std::unique_lock<std::mutex> lock(seen.mutex);
        waiting = seen.changed.wait_for(lock, guard, [&] { return seen.waiting; });
    }
    CHECK(waiting);
    server.stop();
    serving.join();
    CHECK_FALSE(serve_ec); // a stopped serve() is no failure
    std::lock_guard<std::mutex> lock(seen.mutex);
    REQUIRE(seen.outcomes.size() == 1);
    INFO(seen.outcomes[0]);
    CHECK(starts_with(seen.outcomes[0], "canceled: "));
    CHECK(contains(seen.outcomes[0], " [named]"));
    CHECK(waiter.recv(10, ec).empty()); // the cut-off reached the client as the end of the stream or a reset
}

TEST_CASE("Canceller(ec): a cancelled recv is operation_canceled and loses nothing", "[error_codes]") {
    std::error_code ec = stale();
    greet::Canceller canceller(ec);
    REQUIRE_FALSE(ec);
    auto pair = connect_pair();
    pair.client.set_canceller(canceller);
    // Cancelled from another thread: the recv fails whether it was blocked by then or not yet begun
    // (the guard timeout ends it should cancel() do nothing).
    std::thread other([copy = canceller]() mutable { copy.cancel(); });
    CHECK(pair.client.recv(10, ec).empty());
    other.join();
    check_failure(ec, std::errc::operation_canceled, "recv", pair.endpoint, "ECANCELED");
    CHECK(canceller.cancelled());

    send_ok(pair.accepted, "kept");
    std::string line;
    pair.client.recv_line(line, 64, ec); // every later call too, until reset(), taking nothing
    check_failure(ec, std::errc::operation_canceled, "recv_line", pair.endpoint, "ECANCELED");
    canceller.reset();
    CHECK(recv_some(pair.client, 4) == "kept");
}

#ifndef _WIN32
TEST_CASE("Canceller(ec) without a free descriptor: too_many_files_open", "[error_codes]") {
    // A limit a little above the highest open descriptor, then filled to the last one.
    int highest = 0;
    for (int fd = 0; fd < 4096; ++fd)
        if (::fcntl(fd, F_GETFD) != -1) highest = fd;
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
    rlimit lowered = saved;
    lowered.rlim_cur = static_cast<rlim_t>(highest) + 4;
    REQUIRE(lowered.rlim_cur <= saved.rlim_cur);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &lowered) == 0);
    std::vector<int> fillers;
    for (int i = 0; i <= highest + 4; ++i) { // the holes below the highest one, and the 4 above
        const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) break;
        fillers.push_back(fd);
    }
    std::error_code ec;
    greet::Canceller canceller(ec);
    const std::string message = greet::last_error_message();
    for (const int fd : fillers) ::close(fd);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);

    INFO(message);
    CHECK(ec == std::errc::too_many_files_open);
    CHECK(starts_with(message, "Canceller: EMFILE ("));
    CHECK_FALSE(canceller.cancelled());
    canceller.cancel(); // harmless on a Canceller that could not open its socket
    ec = stale();
    greet::Canceller later(ec); // with descriptors free again it works
    CHECK_FALSE(ec);
}
#endif

TEST_CASE("last_error_message() is per thread", "[error_codes]") {
    std::error_code ec;
    greet::parse_port("x", ec);
    REQUIRE(ec);
    const std::string mine = greet::last_error_message();
    CHECK(starts_with(mine, "parse_port \"x\": EINVAL ("));
    std::string theirs;
    std::thread other([&theirs] {
        std::error_code e;
        greet::utf8::decode("\xFF", e);
        theirs = greet::last_error_message();
    });
    other.join();
    CHECK(starts_with(theirs, "utf8::decode: EILSEQ ("));
    CHECK(greet::last_error_message() == mine);
}

#ifndef GREET_TEST_CATCH3
int main(int argc, char* argv[]) {
    // Catch2 returns the count of failed assertions; ctest's skip code (77) must never be one.
    return Catch::Session().run(argc, argv) == 0 ? 0 : 1;
}
#endif
