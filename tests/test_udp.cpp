// greet::UdpSocket over real sockets on loopback: datagrams kept whole and in their
// boundaries, text both ways, truncation never silent, the 65,507-byte limit checked before
// any system call, timeouts, cancelling, signals, ICMP "port unreachable" on a connected
// socket, connect() filtering, broadcast, dual-stack, multicast groups, error-code twins,
// descriptors, and a burst into a small receive buffer.
//
// Every receive that could wait on a failed test has a timeout (test::guard, or a short one
// where nothing must arrive), so a bug ends the test instead of hanging the suite. Loopback
// does not drop a datagram that finds room in the receiver's buffer, so every test that
// expects a datagram sends it to a receiver with room (one at a time where many go).
#include "catch.hpp"
#include "greet_socket.hpp"
#include "support.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#ifndef _WIN32
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#endif

using namespace std::chrono_literals;
using test::contains;
using test::guard;
using test::starts_with;
using test::thrown;

namespace {

using Clock = std::chrono::steady_clock;
constexpr double generous_ms = 1000;       // from cancel() to the call's end
constexpr auto quiet = 200ms;               // how long "nothing arrives" is watched
constexpr std::size_t ethernet_payload = 1472; // 1500 less the IPv4 (20) and UDP (8) headers

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// A socket bound to host on a port the OS picks, with the guard timeout.
greet::UdpSocket bound(const std::string& host) {
    greet::UdpSocket socket;
    socket.set_timeout(guard);
    socket.bind(host, 0);
    return socket;
}
std::uint16_t port_of(const greet::UdpSocket& socket) { return socket.local_address().port; }

// Whether nothing arrives at socket within `quiet` (its timeout is the guard again after).
bool receives_nothing(greet::UdpSocket& socket) {
    socket.set_timeout(quiet);
    std::optional<std::string> got;
    const auto error = thrown<greet::TimeoutError>([&] { got = socket.recv_from(65536).first; });
    socket.set_timeout(guard);
    if (got) WARN("received " << got->size() << " bytes where none were expected");
    return error.has_value();
}

int int_option(greet::native_handle_type s, int level, int name) {
    int value = -1;
    socklen_t length = sizeof value;
    REQUIRE(::getsockopt(s, level, name, reinterpret_cast<char*>(&value), &length) == 0);
    return value;
}

// A receive buffer with room for the largest datagrams (the OS caps it at its maximum).
void roomy(const greet::UdpSocket& socket) {
    const int size = 1 << 20;
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVBUF, reinterpret_cast<const char*>(&size), sizeof size);
}

bool has_ipv6() {
    static const bool yes = test::has_ipv6_loopback();
    return yes;
}

// A datagram that says which it is: its index (4 bytes, big-endian), then a pattern seeded by it.
std::string numbered(std::uint32_t index, std::size_t size) {
    std::string out = test::header(index);
    out += test::pattern(size - 4, index + 1);
    return out;
}
std::size_t numbered_size(std::uint32_t index) { return 4 + (std::size_t(index) * 7919) % (ethernet_payload - 3); }
// The index of a datagram numbered() made, if it is one, whole and unchanged.
std::optional<std::uint32_t> check_numbered(const std::string& datagram, std::uint32_t count) {
    if (datagram.size() < 4) return std::nullopt;
    const auto byte = [&](std::size_t i) { return std::uint32_t(static_cast<unsigned char>(datagram[i])); };
    const std::uint32_t index = byte(0) << 24 | byte(1) << 16 | byte(2) << 8 | byte(3);
    if (index >= count || datagram.size() != numbered_size(index) || datagram != numbered(index, datagram.size())) return std::nullopt;
    return index;
}

const std::string zoe = "Zo\xc3\xab \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x99\x82 \xe2\x9c\x93"; // "Zoë 日本 🙂 ✓" in UTF-8

// How a receive on a helper thread ended.
struct Ended {
    std::optional<greet::Error> error;
    std::string data;
    greet::Address from;
    Clock::time_point at{};
};
std::string describe(const Ended& end) {
    if (end.error) return std::string("greet::Error: ") + end.error->what();
    return "returned \"" + end.data + "\" from " + end.from.to_string();
}

// recv_from on a helper thread, which tells who it is so that the test can see it asleep in
// the OS (Linux) and signal it (POSIX).
class Blocked {
public:
    explicit Blocked(greet::UdpSocket& socket)
        : named_(std::make_shared<Named>()), ended_(test::start([named = named_, &socket] {
#ifndef _WIN32
              named->thread = ::pthread_self();
#endif
#ifdef __linux__
              named->tid.store(test::this_thread_id());
#else
              named->tid.store(1);
#endif
              Ended out;
              try {
                  auto got = socket.recv_from(65536);
                  out.data = std::move(got.first);
                  out.from = got.second;
              } catch (const greet::Error& e) {
                  out.error = e;
              }
              out.at = Clock::now();
              return out;
          })) {}

    // Linux: waits (bounded) until the thread sleeps in the OS. Elsewhere true once it started.
    bool wait_asleep() const {
        const auto until = Clock::now() + 5s;
        while (named_->tid.load() == 0 && Clock::now() < until) std::this_thread::yield();
        if (named_->tid.load() == 0) return false;
#ifdef __linux__
        const long tid = named_->tid.load();
        while (test::thread_state(tid) != 'S' && Clock::now() < until) std::this_thread::yield();
        return test::thread_state(tid) == 'S';
#else
        return true;
#endif
    }
#ifndef _WIN32
    pthread_t thread() const { return named_->thread; } // after wait_asleep()
#endif
    std::optional<Ended> result(std::chrono::milliseconds limit = 2 * guard) {
        if (!ended_.valid() || ended_.wait_for(limit) != std::future_status::ready) return std::nullopt;
        return ended_.get();
    }

private:
    struct Named {
        std::atomic<long> tid{0};
#ifndef _WIN32
        pthread_t thread{};
#endif
    };
    std::shared_ptr<Named> named_;
    std::future<Ended> ended_;
};

} // namespace

// ---------------------------------------------------------------------------
// 1. Round trips.

TEST_CASE("udp: a round trip over IPv4 loopback, text both ways", "[udp]") {
    greet::UdpSocket a = bound("127.0.0.1");
    greet::UdpSocket b = bound("127.0.0.1");
    const greet::Address a_at = a.local_address(), b_at = b.local_address();
    CHECK(a_at.host == "127.0.0.1");
    CHECK(a_at.port != 0);
    CHECK_FALSE(a_at.unix_domain);

    CHECK(a.send_to(zoe, "127.0.0.1", b_at.port) == zoe.size());
    auto [text, from] = b.recv_text_from(1000);
    CHECK(text == zoe);
    CHECK(from == a_at);

    const std::string reply = "\xe2\x86\xa9 " + zoe; // "↩ Zoë 日本 🙂 ✓"
    CHECK(b.send_to(reply, from) == reply.size());
    auto [back, back_from] = a.recv_from(1000);
    CHECK(back == reply);
    CHECK(back_from == b_at);
}

TEST_CASE("udp: a round trip over IPv6 loopback", "[udp][ipv6]") {
    if (!has_ipv6()) GREET_TEST_SKIP("no IPv6 loopback (::1) on this machine");
    greet::UdpSocket a = bound("::1");
    greet::UdpSocket b = bound("::1");
    const greet::Address a_at = a.local_address(), b_at = b.local_address();
    CHECK(a_at.host == "::1");
    CHECK(a_at.to_string() == "[::1]:" + std::to_string(a_at.port));

    CHECK(a.send_to(zoe, "::1", b_at.port) == zoe.size());
    auto [text, from] = b.recv_text_from(1000);
    CHECK(text == zoe);
    CHECK(from == a_at);
    CHECK(b.send_to(std::string("pong"), from) == 4);
    auto [back, back_from] = a.recv_from(1000);
    CHECK(back == "pong");
    CHECK(back_from == b_at);
}

TEST_CASE("udp: a name with IPv4 and IPv6 addresses binds its IPv4 one", "[udp]") {
    greet::UdpSocket socket;
    socket.bind("localhost", 0);
    const greet::Address at = socket.local_address();
    // localhost is 127.0.0.1 everywhere, and ::1 too where there is IPv6: either way IPv4.
    CHECK(at.host == "127.0.0.1");
    greet::UdpSocket sender;
    sender.set_timeout(guard);
    CHECK(sender.send_to(std::string("via localhost"), "localhost", at.port) == 13);
    socket.set_timeout(guard);
    CHECK(socket.recv_from(100).first == "via localhost");
}

TEST_CASE("udp: message boundaries are kept, datagrams of different sizes arrive as sent", "[udp]") {
    greet::UdpSocket receiver = bound("127.0.0.1");
    roomy(receiver);
    greet::UdpSocket sender = bound("127.0.0.1");
    const std::uint16_t port = port_of(receiver);
    const std::vector<std::size_t> sizes{1, 1000, 2, 0, ethernet_payload, 3, 9000, 17, 65507, 5};
    for (std::size_t i = 0; i < sizes.size(); ++i) CHECK(sender.send_to(test::pattern(sizes[i], std::uint32_t(i) + 1), "127.0.0.1", port) == sizes[i]);
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        INFO("datagram " << i << " of " << sizes[i] << " bytes");
        const auto got = receiver.recv_from(65536);
        CHECK(got.first.size() == sizes[i]);
        CHECK(got.first == test::pattern(sizes[i], std::uint32_t(i) + 1));
    }
    CHECK(receives_nothing(receiver));
}

TEST_CASE("udp: 1,000 datagrams of 1 to 1,472 bytes, ping-pong, every byte checked", "[udp]") {
    greet::UdpSocket a = bound("127.0.0.1");
    greet::UdpSocket b = bound("127.0.0.1");
    const greet::Address a_at = a.local_address(), b_at = b.local_address();
    const auto start = Clock::now();
    std::size_t bytes = 0, whole = 0;
    for (std::uint32_t i = 0; i < 1000; ++i) {
        const std::size_t size = 1 + (std::size_t(i) * 613) % ethernet_payload;
        const std::string datagram = test::pattern(size, i + 7);
        REQUIRE(a.send_to(datagram, b_at) == size);
        auto got = b.recv_from(65536);
        REQUIRE(got.second == a_at);
        const bool same = got.first == datagram;
        REQUIRE(b.send_to(got.first, got.second) == got.first.size()); // echoed as received
        auto echo = a.recv_from(65536);
        REQUIRE(echo.second == b_at);
        if (same && echo.first == datagram) ++whole;
        else FAIL_CHECK("datagram " << i << " of " << size << " bytes came back as " << echo.first.size() << " bytes");
        bytes += size;
    }
    CHECK(whole == 1000);
    CHECK(bytes > 700000);
    WARN("1,000 UDP ping-pongs of 1 to 1,472 bytes (" << bytes << " bytes each way): " << ms(Clock::now() - start) << " ms");
}

TEST_CASE("udp: a zero-length datagram is a datagram", "[udp]") {
    greet::UdpSocket receiver = bound("127.0.0.1");
    greet::UdpSocket sender = bound("127.0.0.1");
    CHECK(sender.send_to(std::string(), "127.0.0.1", port_of(receiver)) == 0);
    CHECK(sender.send_to(std::string("after"), "127.0.0.1", port_of(receiver)) == 5);
    const auto empty = receiver.recv_from(100);
    CHECK(empty.first.empty());
    CHECK(empty.second == sender.local_address());
    CHECK(receiver.recv_from(100).first == "after");
    // Over a connected pair too: recv returns "" for it, not an end of stream.
    sender.connect("127.0.0.1", port_of(receiver));
    receiver.connect("127.0.0.1", port_of(sender));
    CHECK(sender.send(std::string()) == 0);
    CHECK(receiver.recv(100).empty());
    CHECK(receiver.is_open());
}

// ---------------------------------------------------------------------------
// 2. Sizes: truncation, the largest datagram, one byte more.

TEST_CASE("udp: a datagram longer than max_bytes is never cut silently", "[udp]") {
    greet::UdpSocket receiver = bound("127.0.0.1");
    greet::UdpSocket sender = bound("127.0.0.1");
    const std::uint16_t port = port_of(receiver);
    const std::string big = test::pattern(1000, 3);

    SECTION("the error-code twin returns the first max_bytes with ec set") {
        sender.send_to(big, "127.0.0.1", port);
        std::error_code ec;
        const auto got = receiver.recv_from(100, ec);
        CHECK(ec == std::errc::message_size);
        CHECK(got.first == big.substr(0, 100));
        CHECK(got.second == sender.local_address());
        const std::string message = greet::last_error_message();
        INFO(message);
        CHECK(starts_with(message, "recv_from " + sender.local_address().to_string() + ": EMSGSIZE (")); // names the sender
        CHECK(contains(message, "more than max_bytes 100"));
#ifdef __linux__
        CHECK(contains(message, "a datagram of 1000 bytes"));
#endif
    }
    SECTION("the throwing form throws Error with code message_size") {
        sender.send_to(big, "127.0.0.1", port);
        const auto error = thrown([&] { receiver.recv_from(999); });
        REQUIRE(error);
        INFO(error->what());
        CHECK(error->code() == std::errc::message_size);
        CHECK(contains(error->what(), "more than max_bytes 999"));
#ifdef __linux__
        CHECK(contains(error->what(), "a datagram of 1000 bytes"));
#endif
    }
    SECTION("recv on a connected socket, and recv_text_from") {
        receiver.connect("127.0.0.1", port_of(sender));
        sender.send_to(big, "127.0.0.1", port);
        std::error_code ec;
        CHECK(receiver.recv(10, ec) == big.substr(0, 10));
        CHECK(ec == std::errc::message_size);
        sender.send_to(zoe, "127.0.0.1", port);
        const auto error = thrown([&] { receiver.recv_text_from(zoe.size() - 1); });
        REQUIRE(error);
        CHECK(error->code() == std::errc::message_size);
    }
    // Whatever happened to it, the next datagram is whole.
    sender.send_to(big, "127.0.0.1", port);
    CHECK(receiver.recv_from(1000).first == big);
    CHECK(receives_nothing(receiver)); // and the cut one's tail is not a datagram of its own
}

TEST_CASE("udp: 65,507 bytes to IPv4 loopback arrive whole, and 65,508 fail before anything is sent", "[udp]") {
    STATIC_REQUIRE(greet::UdpSocket::max_datagram == 65507);
    greet::UdpSocket receiver = bound("127.0.0.1");
    roomy(receiver);
    const std::uint16_t port = port_of(receiver);
    const std::string largest = test::pattern(65507, 11);

    SECTION("from a socket bound to 127.0.0.1") {
        greet::UdpSocket sender = bound("127.0.0.1");
        const auto error = thrown([&] { sender.send_to(largest + "x", "127.0.0.1", port); });
        REQUIRE(error);
        INFO(error->what());
        CHECK(error->code() == std::errc::message_size);
        CHECK(contains(error->what(), "at most 65507 bytes; this one has 65508"));
        CHECK(receives_nothing(receiver));
        CHECK(sender.send_to(largest, "127.0.0.1", port) == 65507);
    }
    SECTION("from an unbound (dual-stack) socket: the IPv4 limit for an IPv4 peer") {
        greet::UdpSocket sender;
        sender.set_timeout(guard);
        std::error_code ec;
        CHECK(sender.send_to(largest + "x", "127.0.0.1", port, ec) == 0);
        CHECK(ec == std::errc::message_size);
        CHECK(receives_nothing(receiver));
        CHECK(sender.send_to(largest, "127.0.0.1", port) == 65507);
    }
    SECTION("from a connected socket") {
        greet::UdpSocket sender;
        sender.set_timeout(guard);
        sender.connect("127.0.0.1", port);
        CHECK(thrown([&] { sender.send(largest + "x"); }).value().code() == std::errc::message_size);
        CHECK(receives_nothing(receiver));
        CHECK(sender.send(largest) == 65507);
    }
    const auto got = receiver.recv_from(65536);
    CHECK(got.first.size() == 65507);
    CHECK(got.first == largest);
}

TEST_CASE("udp: 65,527 bytes to IPv6 loopback arrive whole, and 65,528 fail before anything is sent", "[udp][ipv6]") {
    if (!has_ipv6()) GREET_TEST_SKIP("no IPv6 loopback (::1) on this machine");
    greet::UdpSocket receiver = bound("::1");
    roomy(receiver);
    greet::UdpSocket sender = bound("::1");
    const std::string largest = test::pattern(65527, 12);
    const auto error = thrown([&] { sender.send_to(largest + "x", "::1", port_of(receiver)); });
    REQUIRE(error);
    CHECK(error->code() == std::errc::message_size);
    CHECK(receives_nothing(receiver));
    CHECK(sender.send_to(largest, "::1", port_of(receiver)) == 65527);
    CHECK(receiver.recv_from(65536).first == largest);
}

// ---------------------------------------------------------------------------
// 3. Waiting: timeouts, cancelling, signals.

TEST_CASE("udp: recv_from gives up after its timeout, and the socket still works", "[udp]") {
    greet::UdpSocket receiver = bound("127.0.0.1");
    greet::UdpSocket sender = bound("127.0.0.1");
    receiver.set_timeout(150ms);
    CHECK(receiver.timeout() == std::chrono::milliseconds(150));
    const auto start = Clock::now();
    const auto error = thrown<greet::TimeoutError>([&] { receiver.recv_from(100); });
    const double waited = ms(Clock::now() - start);
    REQUIRE(error);
    INFO(error->what());
    CHECK(error->code() == std::errc::timed_out);
    CHECK(starts_with(error->what(), "recv_from 127.0.0.1:" + std::to_string(port_of(receiver)) + ": ETIMEDOUT ("));
    CHECK(waited >= 140);
    CHECK(waited < 150 + generous_ms);

    sender.send_to(std::string("late"), receiver.local_address());
    CHECK(receiver.recv_from(100).first == "late");

    // A zero timeout: what is there already, else TimeoutError at once.
    receiver.set_timeout(0ms);
    sender.send_to(std::string("ready"), receiver.local_address());
    std::optional<std::string> ready;
    for (int turn = 0; turn < 1000 && !ready; ++turn) { // loopback delivers within the send; bounded all the same
        std::error_code ec;
        auto got = receiver.recv_from(100, ec);
        if (!ec) ready = got.first;
        else REQUIRE(ec == std::errc::timed_out);
    }
    CHECK(ready == std::optional<std::string>("ready"));
    CHECK(thrown<greet::TimeoutError>([&] { receiver.recv_from(100); }).has_value());

    std::error_code ec;
    receiver.set_timeout(std::chrono::milliseconds(-1), ec);
    CHECK(ec == std::errc::invalid_argument);
    CHECK(thrown([&] { receiver.set_timeout(std::chrono::milliseconds(-5)); }).value().code() == std::errc::invalid_argument);
}

TEST_CASE("udp: a Canceller ends a blocked recv_from, and no datagram is lost", "[udp][cancel]") {
    greet::UdpSocket receiver = bound("127.0.0.1");
    greet::UdpSocket sender = bound("127.0.0.1");
    greet::Canceller canceller;
    receiver.set_canceller(canceller);

    SECTION("cancel() from another thread while recv_from blocks") {
        Blocked call(receiver);
        CHECK(call.wait_asleep());
        const auto at = Clock::now();
        canceller.cancel();
        const auto end = call.result();
        REQUIRE(end);
        INFO(describe(*end));
        REQUIRE(end->error);
        CHECK(end->error->code() == std::errc::operation_canceled);
        CHECK(contains(end->error->what(), "reset() it to go on"));
        const double latency = ms(end->at - at);
        CHECK(latency < generous_ms);
        WARN("cancel() to the end of a blocked UDP recv_from: " << latency << " ms");
        // Until reset(), every receive and send fails at once.
        CHECK(thrown([&] { receiver.recv_from(100); }).value().code() == std::errc::operation_canceled);
        CHECK(thrown([&] { receiver.send_to(std::string("x"), sender.local_address()); }).value().code() == std::errc::operation_canceled);
        canceller.reset();
        sender.send_to(std::string("after reset"), receiver.local_address());
        CHECK(receiver.recv_from(100).first == "after reset");
    }
    SECTION("a datagram queued before cancel() is there after reset()") {
        sender.send_to(std::string("queued"), receiver.local_address());
        canceller.cancel();
        std::error_code ec;
        CHECK(receiver.recv_from(100, ec).first.empty());
        CHECK(ec == std::errc::operation_canceled);
        canceller.reset();
        const auto got = receiver.recv_from(100);
        CHECK(got.first == "queued");
        CHECK(got.second == sender.local_address());
    }
    CHECK(receives_nothing(receiver));
}

#ifndef _WIN32
namespace {
std::atomic<int> signals_handled{0};
void count_signal(int) { signals_handled.fetch_add(1); }
struct RestoreSignal {
    struct sigaction old {};
    RestoreSignal() = default;
    RestoreSignal(const RestoreSignal&) = delete;
    RestoreSignal& operator=(const RestoreSignal&) = delete;
    ~RestoreSignal() { ::sigaction(SIGUSR2, &old, nullptr); }
};
} // namespace
#endif

TEST_CASE("udp: a signal does not end a blocked recv_from", "[udp][signal]") {
#ifdef _WIN32
    GREET_TEST_SKIP("POSIX signals: not on Windows");
#else
    // With a timeout the wait is poll(); without, a blocking recvmsg(). Either returns EINTR.
    const bool with_timeout = GENERATE(true, false);
    INFO((with_timeout ? "with a timeout (poll)" : "without a timeout (a blocking receive)"));
    greet::UdpSocket receiver = bound("127.0.0.1");
    greet::UdpSocket sender = bound("127.0.0.1");
    if (!with_timeout) receiver.set_timeout(std::nullopt);
    signals_handled.store(0);
    struct sigaction action {};
    action.sa_handler = count_signal;
    ::sigemptyset(&action.sa_mask);
    action.sa_flags = 0; // no SA_RESTART: the blocked call returns EINTR
    RestoreSignal restore;
    REQUIRE(::sigaction(SIGUSR2, &action, &restore.old) == 0);

    Blocked call(receiver);
    CHECK(call.wait_asleep());
    REQUIRE(::pthread_kill(call.thread(), SIGUSR2) == 0);
    for (int turn = 0; turn < 1000000 && signals_handled.load() == 0; ++turn) std::this_thread::yield();
    REQUIRE(signals_handled.load() == 1);
    CHECK(call.wait_asleep()); // back asleep in the OS, not ended
    sender.send_to(std::string("after the signal"), receiver.local_address());
    std::optional<Ended> end = call.result(guard);
    if (!end) { // without a timeout nothing else bounds the call: a datagram of our own ends it
        sender.send_to(std::string("watchdog"), receiver.local_address());
        end = call.result();
    }
    REQUIRE(end);
    INFO(describe(*end));
    CHECK_FALSE(end->error);
    CHECK(end->data == "after the signal");
    CHECK(end->from == sender.local_address());
#endif
}

// ---------------------------------------------------------------------------
// 4. Connected sockets.

TEST_CASE("udp: send and recv need connect(): not_connected", "[udp]") {
    greet::UdpSocket socket = bound("127.0.0.1");
    const auto send_error = thrown([&] { socket.send(std::string("x")); });
    REQUIRE(send_error);
    CHECK(send_error->code() == std::errc::not_connected);
    CHECK(contains(send_error->what(), "connect() first, or use send_to"));
    const auto recv_error = thrown([&] { socket.recv(100); });
    REQUIRE(recv_error);
    CHECK(recv_error->code() == std::errc::not_connected);
    CHECK(contains(recv_error->what(), "connect() first, or use recv_from"));
    CHECK(thrown([&] { socket.peer_address(); }).value().code() == std::errc::not_connected);

    greet::UdpSocket unopened;
    std::error_code ec;
    CHECK(unopened.send(std::string("x"), ec) == 0);
    CHECK(ec == std::errc::not_connected);
    CHECK(unopened.recv(100, ec).empty());
    CHECK(ec == std::errc::not_connected);
    unopened.local_address(ec);
    CHECK(ec == std::errc::not_connected);
    CHECK_FALSE(unopened.is_open());
}

TEST_CASE("udp: a connected socket receives from its peer only", "[udp]") {
    greet::UdpSocket a = bound("127.0.0.1");
    greet::UdpSocket peer = bound("127.0.0.1");
    greet::UdpSocket stranger = bound("127.0.0.1");
    a.connect("127.0.0.1", port_of(peer));
    CHECK(a.peer_address() == peer.local_address());

    CHECK(stranger.send_to(std::string("from a stranger"), a.local_address()) == 15);
    CHECK(peer.send_to(std::string("from the peer"), a.local_address()) == 13);
    CHECK(a.recv(100) == "from the peer");
    CHECK(receives_nothing(a));
    // send() goes to the peer, and recv_from names it.
    CHECK(a.send(std::string("hello peer")) == 10);
    CHECK(peer.recv_from(100) == std::make_pair(std::string("hello peer"), a.local_address()));
    peer.send_to(std::string("again"), a.local_address());
    CHECK(a.recv_from(100) == std::make_pair(std::string("again"), peer.local_address()));
}

TEST_CASE("udp: a connected socket whose peer's port is closed: ECONNREFUSED on the next receive", "[udp]") {
#ifndef __linux__
    GREET_TEST_SKIP("the ICMP answer reaches a connected socket as ECONNREFUSED on Linux; not checked here");
#else
    std::uint16_t closed_port = 0;
    {
        greet::UdpSocket gone = bound("127.0.0.1");
        closed_port = port_of(gone);
    }
    greet::UdpSocket socket;
    socket.set_timeout(guard);
    socket.connect("127.0.0.1", closed_port);
    CHECK(socket.send(std::string("anyone?")) == 7);
    const auto error = thrown([&] { socket.recv(100); });
    REQUIRE(error);
    INFO(error->what());
    CHECK(error->code() == std::errc::connection_refused);
    CHECK(starts_with(error->what(), "recv 127.0.0.1:" + std::to_string(closed_port) + ": ECONNREFUSED ("));
    CHECK(contains(error->what(), "ICMP"));
    // The error is reported once; the error-code twin says the same after another try.
    CHECK(socket.send(std::string("still?")) == 6);
    std::error_code ec;
    CHECK(socket.recv(100, ec).empty());
    CHECK(ec == std::errc::connection_refused);
    CHECK(contains(greet::last_error_message(), "ICMP"));
    // An unconnected socket is told nothing: its next receive waits for a datagram.
    greet::UdpSocket unconnected = bound("127.0.0.1");
    unconnected.send_to(std::string("anyone?"), "127.0.0.1", closed_port);
    CHECK(receives_nothing(unconnected));
#endif
}

// ---------------------------------------------------------------------------
// 5. Text.

TEST_CASE("udp: recv_text_from refuses invalid UTF-8 and names the offset", "[udp][utf8]") {
    greet::UdpSocket receiver = bound("127.0.0.1");
    greet::UdpSocket sender = bound("127.0.0.1");
    const greet::Address to = receiver.local_address();

    sender.send_to(std::string("ab\xff" "cd"), to);
    const auto bad = thrown<greet::Utf8Error>([&] { receiver.recv_text_from(100); });
    REQUIRE(bad);
    INFO(bad->what());
    CHECK(bad->code() == std::errc::illegal_byte_sequence);
    CHECK(bad->offset() == 2);
    CHECK(contains(bad->what(), "invalid UTF-8 at byte 2 of a datagram of 5 bytes"));
    CHECK(starts_with(bad->what(), "recv_text_from " + sender.local_address().to_string() + ": "));

    sender.send_to(std::string("Zo\xc3"), to); // "Zoë" cut inside its 'ë'
    const auto cut = thrown<greet::Utf8Error>([&] { receiver.recv_text_from(100); });
    REQUIRE(cut);
    INFO(cut->what());
    CHECK(cut->offset() == 2);
    CHECK(contains(cut->what(), "ends inside a character"));

    sender.send_to(std::string("ok \xc0\xaf"), to); // an overlong '/'
    std::error_code ec;
    CHECK(receiver.recv_text_from(100, ec).first.empty());
    CHECK(ec == std::errc::illegal_byte_sequence);
    CHECK(contains(greet::last_error_message(), "at byte 3"));

    // The datagram is consumed either way: the next one is the next.
    sender.send_to(zoe, to);
    const auto good = receiver.recv_text_from(100, ec);
    CHECK_FALSE(ec);
    CHECK(good.first == zoe);
    CHECK(good.second == sender.local_address());
}

TEST_CASE("udp: send_to text (u, U, L, u8) arrives as UTF-8", "[udp][utf8]") {
    greet::UdpSocket receiver = bound("127.0.0.1");
    greet::UdpSocket sender = bound("127.0.0.1");
    const greet::Address to = receiver.local_address();
    const std::string expected = "Zo\xc3\xab \xf0\x9f\x99\x82"; // "Zoë 🙂"

    CHECK(sender.send_to(std::u16string(u"Zo\u00eb \U0001F642"), to) == expected.size());
    CHECK(receiver.recv_text_from(100).first == expected);
    CHECK(sender.send_to(std::u32string_view(U"Zo\u00eb \U0001F642"), "127.0.0.1", to.port) == expected.size());
    CHECK(receiver.recv_text_from(100).first == expected);
    CHECK(sender.send_to(std::wstring(L"Zo\u00eb \U0001F642"), to) == expected.size());
    CHECK(receiver.recv_text_from(100).first == expected);
    std::error_code ec;
    CHECK(sender.send_to(std::u16string_view(u"\u2713"), "127.0.0.1", to.port, ec) == 3);
    CHECK_FALSE(ec);
    CHECK(receiver.recv_text_from(100).first == "\xe2\x9c\x93");
#if defined(__cpp_char8_t)
    CHECK(sender.send_to(std::u8string_view(u8"Zo\u00eb \U0001F642"), to) == expected.size());
    CHECK(receiver.recv_text_from(100).first == expected);
#else
    WARN("u8string_view not checked: this build has no char8_t (C++17 without -fchar8_t)");
#endif

    // An unpaired surrogate: Utf8Error, and nothing is sent.
    const std::u16string lone{u'a', char16_t(0xD800), u'b'};
    const auto error = thrown<greet::Utf8Error>([&] { sender.send_to(lone, to); });
    REQUIRE(error);
    CHECK(error->offset() == 1);
    CHECK(sender.send_to(lone, "127.0.0.1", to.port, ec) == 0);
    CHECK(ec == std::errc::illegal_byte_sequence);
    CHECK(receives_nothing(receiver));
}

// ---------------------------------------------------------------------------
// 6. Names and families.

TEST_CASE("udp: an unknown host name is a ResolveError", "[udp][resolve]") {
    // A 64-character label, one more than DNS allows: the resolver refuses it without the network.
    const std::string host = std::string(64, 'a') + ".invalid";
    greet::UdpSocket socket;
    const auto error = thrown<greet::ResolveError>([&] { socket.send_to(std::string("x"), host, 9); });
    REQUIRE(error);
    INFO(error->what());
    CHECK(starts_with(error->what(), "send_to " + host + ":9: "));
    CHECK(contains(error->what(), "is the host name right?"));
    CHECK_FALSE(socket.is_open()); // nothing was opened for it

    CHECK(thrown<greet::ResolveError>([&] { socket.connect(host, 9); }).has_value());
    CHECK(thrown<greet::ResolveError>([&] { socket.bind(host, 0); }).has_value());
    CHECK(thrown<greet::ResolveError>([&] { socket.send_to(std::u16string(u"x"), host, 9); }).has_value());
    std::error_code ec;
    CHECK(socket.send_to(std::string("x"), host, 9, ec) == 0);
    CHECK(static_cast<bool>(ec));
    CHECK(contains(greet::last_error_message(), host));
}

TEST_CASE("udp: set_broadcast sets SO_BROADCAST, before and after the socket opens", "[udp]") {
    greet::UdpSocket before;
    before.set_broadcast(true); // not open yet: remembered
    before.bind("127.0.0.1", 0);
    CHECK(int_option(before.native_handle(), SOL_SOCKET, SO_BROADCAST) != 0);
    before.set_broadcast(false);
    CHECK(int_option(before.native_handle(), SOL_SOCKET, SO_BROADCAST) == 0);

    greet::UdpSocket after = bound("127.0.0.1");
    CHECK(int_option(after.native_handle(), SOL_SOCKET, SO_BROADCAST) == 0);
    std::error_code ec;
    after.set_broadcast(true, ec);
    CHECK_FALSE(ec);
    CHECK(int_option(after.native_handle(), SOL_SOCKET, SO_BROADCAST) != 0);

    // A socket send_to opens takes it too.
    greet::UdpSocket receiver = bound("127.0.0.1");
    greet::UdpSocket lazy;
    lazy.set_broadcast(true);
    lazy.send_to(std::string("b"), receiver.local_address());
    CHECK(int_option(lazy.native_handle(), SOL_SOCKET, SO_BROADCAST) != 0);
    CHECK(receiver.recv_from(10).first == "b");
}

TEST_CASE("udp: an unbound socket reaches 127.0.0.1 and ::1 alike", "[udp][ipv6]") {
    if (!has_ipv6()) GREET_TEST_SKIP("no IPv6 loopback (::1) on this machine");
    greet::UdpSocket v4 = bound("127.0.0.1");
    greet::UdpSocket v6 = bound("::1");
    greet::UdpSocket sender;
    sender.set_timeout(guard);
    CHECK(sender.send_to(std::string("to v4"), v4.local_address()) == 5);
    CHECK(sender.send_to(std::string("to v6"), "::1", port_of(v6)) == 5);
    const auto at_v4 = v4.recv_from(100);
    const auto at_v6 = v6.recv_from(100);
    CHECK(at_v4.first == "to v4");
    CHECK(at_v4.second.host == "127.0.0.1"); // not ::ffff:127.0.0.1
    CHECK(at_v6.first == "to v6");
    CHECK(at_v6.second.host == "::1");
    CHECK(at_v4.second.port == at_v6.second.port); // one socket
    // Replies to either address come back to it, the IPv4 one named as IPv4.
    v4.send_to(std::string("from v4"), at_v4.second);
    v6.send_to(std::string("from v6"), at_v6.second);
    const auto r1 = sender.recv_from(100);
    const auto r2 = sender.recv_from(100);
    CHECK(((r1.first == "from v4" && r1.second == v4.local_address() && r2.first == "from v6" && r2.second == v6.local_address()) ||
           (r2.first == "from v4" && r2.second == v4.local_address() && r1.first == "from v6" && r1.second == v6.local_address())));
}

TEST_CASE("udp: a bound socket keeps its family", "[udp][ipv6]") {
    SECTION("bound to 127.0.0.1, to ::1: address_family_not_supported") {
        greet::UdpSocket socket = bound("127.0.0.1");
        const auto error = thrown([&] { socket.send_to(std::string("x"), "::1", 9); });
        REQUIRE(error);
        INFO(error->what());
        CHECK(error->code() == std::errc::address_family_not_supported);
        CHECK(contains(error->what(), "this socket is IPv4"));
        std::error_code ec;
        socket.connect("::1", 9, ec);
        CHECK(ec == std::errc::address_family_not_supported);
    }
    SECTION("set_dual_stack(false), unbound: IPv4 after an IPv4 peer") {
        greet::UdpSocket receiver = bound("127.0.0.1");
        greet::UdpSocket socket;
        socket.set_dual_stack(false);
        socket.send_to(std::string("v4"), receiver.local_address());
        CHECK(receiver.recv_from(10).first == "v4");
        CHECK(thrown([&] { socket.send_to(std::string("x"), "::1", 9); }).value().code() == std::errc::address_family_not_supported);
    }
    SECTION("bound to \"\": receives from IPv4 and IPv6 senders") {
        if (!has_ipv6()) GREET_TEST_SKIP("no IPv6 loopback (::1) on this machine");
        greet::UdpSocket any = bound("");
        greet::UdpSocket v4 = bound("127.0.0.1");
        greet::UdpSocket v6 = bound("::1");
        v4.send_to(std::string("4"), "127.0.0.1", port_of(any));
        CHECK(any.recv_from(10) == std::make_pair(std::string("4"), v4.local_address()));
        v6.send_to(std::string("6"), "::1", port_of(any));
        CHECK(any.recv_from(10) == std::make_pair(std::string("6"), v6.local_address()));
    }
}

// The OS's own answer (ENETUNREACH, "check the address and the network") would mislead.
TEST_CASE("udp: a socket bound to ::1 (IPv6 only) sending to 127.0.0.1: address_family_not_supported", "[udp][ipv6]") {
    if (!has_ipv6()) GREET_TEST_SKIP("no IPv6 loopback (::1) on this machine");
    greet::UdpSocket socket = bound("::1");
    const auto error = thrown([&] { socket.send_to(std::string("x"), "127.0.0.1", 9); });
    REQUIRE(error);
    INFO(error->what());
    CHECK(error->code() == std::errc::address_family_not_supported);
    CHECK(contains(error->what(), "IPv6 only"));
}

TEST_CASE("udp: bind twice, a port in use, close and bind again", "[udp]") {
    greet::UdpSocket first = bound("127.0.0.1");
    const std::uint16_t port = port_of(first);
    greet::UdpSocket second;
    const auto in_use = thrown([&] { second.bind("127.0.0.1", port); });
    REQUIRE(in_use);
    CHECK(in_use->code() == std::errc::address_in_use);
    CHECK_FALSE(second.is_open());
    const auto again = thrown([&] { first.bind("127.0.0.1", 0); });
    REQUIRE(again);
    CHECK(again->code() == std::errc::invalid_argument);
    CHECK(contains(again->what(), "close() first"));
    first.close();
    CHECK_FALSE(first.is_open());
    CHECK(thrown([&] { first.recv_from(10); }).value().code() == std::errc::not_connected);
    second.bind("127.0.0.1", port); // free again
    second.set_timeout(guard);
    greet::UdpSocket moved = std::move(second);
    CHECK(moved.is_open());
    CHECK_FALSE(second.is_open()); // NOLINT(bugprone-use-after-move): moved-from is closed
    first.send_to(std::string("to the moved"), "127.0.0.1", port);
    CHECK(moved.recv_from(100).first == "to the moved");
}

// ---------------------------------------------------------------------------
// 7. Multicast.

namespace {
// IP_MULTICAST_IF 127.0.0.1 and IP_MULTICAST_LOOP on; the OS's refusal as text, or "".
std::string multicast_on_loopback(greet::native_handle_type s) {
    in_addr interface{};
    REQUIRE(::inet_pton(AF_INET, "127.0.0.1", &interface) == 1);
    if (::setsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, reinterpret_cast<const char*>(&interface), sizeof interface) != 0)
        return "IP_MULTICAST_IF 127.0.0.1 refused";
#if defined(__linux__) || defined(_WIN32)
    const int loop = 1;
#else
    const unsigned char loop = 1;
#endif
    if (::setsockopt(s, IPPROTO_IP, IP_MULTICAST_LOOP, reinterpret_cast<const char*>(&loop), sizeof loop) != 0)
        return "IP_MULTICAST_LOOP refused";
    return {};
}
} // namespace

TEST_CASE("udp: join an IPv4 group on 127.0.0.1 and receive its datagrams, leave and receive none", "[udp][multicast]") {
    const std::string group = "239.255.42.99";
    const std::string host = GENERATE(std::string("0.0.0.0"), std::string(""));
    INFO("receiver bound to \"" << host << "\"");
    greet::UdpSocket receiver = bound(host);
    std::error_code ec;
    receiver.join_group(group, "127.0.0.1", ec);
    if (ec) GREET_TEST_SKIP("the OS refuses to join " << group << " on 127.0.0.1: " << greet::last_error_message());
    greet::UdpSocket sender = bound("127.0.0.1");
    const std::string refused = multicast_on_loopback(sender.native_handle());
    if (!refused.empty()) GREET_TEST_SKIP(refused);
    sender.send_to(std::string("to the group"), group, port_of(receiver), ec);
    if (ec) GREET_TEST_SKIP("the OS refuses to send to " << group << " from 127.0.0.1: " << greet::last_error_message());
    receiver.set_timeout(2s);
    const auto got = receiver.recv_from(100, ec);
    if (ec == std::errc::timed_out) GREET_TEST_SKIP("the OS does not loop " << group << " back on 127.0.0.1 (no multicast on the loopback interface)");
    REQUIRE_FALSE(ec);
    CHECK(got.first == "to the group");
    CHECK(got.second == sender.local_address());

    receiver.leave_group(group, "127.0.0.1");
    sender.send_to(std::string("after leaving"), group, port_of(receiver));
    CHECK(receives_nothing(receiver));
    // Leaving a group not joined: the OS's error, through the twin.
    receiver.leave_group(group, "127.0.0.1", ec);
    CHECK(static_cast<bool>(ec));
}

TEST_CASE("udp: join_group refuses what is not a multicast group", "[udp][multicast]") {
    greet::UdpSocket unbound;
    const auto first = thrown([&] { unbound.join_group("239.1.2.3", "127.0.0.1"); });
    REQUIRE(first);
    CHECK(first->code() == std::errc::invalid_argument);
    CHECK(contains(first->what(), "bind() the group's port first"));

    greet::UdpSocket socket = bound("0.0.0.0");
    for (const char* not_group : {"127.0.0.1", "10.0.0.1", "223.255.255.255", "240.0.0.1", "::1", "fe80::1"}) {
        INFO(not_group);
        const auto error = thrown([&] { socket.join_group(not_group, {}); });
        REQUIRE(error);
        CHECK(error->code() == std::errc::invalid_argument);
        CHECK(contains(error->what(), "not a multicast group"));
    }
    std::error_code ec;
    socket.join_group("not-an-address", {}, ec);
    CHECK(ec == std::errc::invalid_argument);
    CHECK(contains(greet::last_error_message(), "not an IP address"));
    socket.join_group("239.1.2.3", "lo", ec); // an IPv4 group's interface is an address
    CHECK(ec == std::errc::invalid_argument);
    socket.leave_group("10.0.0.1", {}, ec);
    CHECK(ec == std::errc::invalid_argument);
    greet::UdpSocket v6;
    if (has_ipv6()) {
        v6 = bound("::1");
        v6.join_group("ff02::1:3", "no-such-interface-9", ec);
        CHECK(ec == std::errc::no_such_device);
    }
}

// ---------------------------------------------------------------------------
// 8. The error-code twins, each at least once, success and failure.

TEST_CASE("udp: every error-code twin sets ec and clears it", "[udp][error_code]") {
    const std::error_code stale = std::make_error_code(std::errc::io_error);
    std::error_code ec = stale;
    greet::UdpSocket receiver;
    receiver.bind("127.0.0.1", 0, ec);
    CHECK_FALSE(ec);
    receiver.set_timeout(guard, ec = stale);
    CHECK_FALSE(ec);
    const greet::Address at = receiver.local_address(ec = stale);
    CHECK_FALSE(ec);
    CHECK(at.port != 0);
    receiver.bind("127.0.0.1", 0, ec);
    CHECK(ec == std::errc::invalid_argument);
    CHECK(contains(greet::last_error_message(), "bind 127.0.0.1:0"));

    greet::UdpSocket sender;
    CHECK(sender.send_to(std::string("one"), at, ec = stale) == 3);
    CHECK_FALSE(ec);
    CHECK(sender.send_to(std::string("two"), "127.0.0.1", at.port, ec = stale) == 3);
    CHECK_FALSE(ec);
    CHECK(sender.send_to(std::u32string(U"three"), at, ec = stale) == 5);
    CHECK_FALSE(ec);
    auto got = receiver.recv_from(100, ec = stale);
    CHECK_FALSE(ec);
    CHECK(got.first == "one");
    got = receiver.recv_text_from(100, ec = stale);
    CHECK_FALSE(ec);
    CHECK(got.first == "two");
    got = receiver.recv_from(0, ec);
    CHECK(ec == std::errc::invalid_argument);
    got = receiver.recv_text_from(100, ec);
    CHECK_FALSE(ec);
    CHECK(got.first == "three");

    sender.peer_address(ec);
    CHECK(ec == std::errc::not_connected);
    sender.connect("127.0.0.1", at.port, ec = stale);
    CHECK_FALSE(ec);
    CHECK(sender.peer_address(ec = stale) == at);
    CHECK_FALSE(ec);
    CHECK(sender.send(std::string("four"), ec = stale) == 4);
    CHECK_FALSE(ec);
    receiver.connect("127.0.0.1", sender.local_address().port, ec = stale);
    CHECK_FALSE(ec);
    CHECK(receiver.recv(100, ec = stale) == "four");
    CHECK_FALSE(ec);
    receiver.set_broadcast(true, ec = stale);
    CHECK_FALSE(ec);

    greet::UdpSocket group = bound("0.0.0.0");
    group.join_group("127.0.0.1", "", ec = stale);
    CHECK(ec == std::errc::invalid_argument);
    group.leave_group("127.0.0.1", "", ec = stale);
    CHECK(ec == std::errc::invalid_argument);
    const auto error = thrown([&] { group.leave_group("127.0.0.1"); });
    REQUIRE(error);
    CHECK(error->code() == std::errc::invalid_argument);

    greet::UdpSocket closed;
    closed.connect("127.0.0.1", 9, ec);
    CHECK_FALSE(ec);
    closed.close();
    CHECK(closed.recv_from(100, ec).first.empty());
    CHECK(ec == std::errc::not_connected);
    closed.send(std::string("x"), ec);
    CHECK(ec == std::errc::not_connected);
    closed.peer_address(ec);
    CHECK(ec == std::errc::not_connected);
    closed.set_broadcast(false, ec = stale);
    CHECK_FALSE(ec); // remembered for the next open
    CHECK(closed.send_to(std::string("x"), greet::Address{"/tmp/x.sock", 0, true}, ec) == 0);
    CHECK(ec == std::errc::invalid_argument);
}

// ---------------------------------------------------------------------------
// 9. Descriptors and hostile input.

TEST_CASE("udp: 1,000 sockets opened and closed leave no descriptor behind", "[udp][linux]") {
#ifndef __linux__
    GREET_TEST_SKIP("counts /proc/self/fd: Linux only");
#else
    greet::UdpSocket taken = bound("127.0.0.1");
    const std::uint16_t busy = port_of(taken);
    const std::size_t before = test::open_descriptors();
    for (int i = 0; i < 1000; ++i) {
        greet::UdpSocket socket;
        switch (i % 5) {
        case 0: socket.bind("127.0.0.1", 0); break;
        case 1: // opened by send_to, closed by the destructor; the datagram arrives
            socket.send_to(std::string("x"), "127.0.0.1", busy);
            CHECK(taken.recv_from(10).first == "x");
            break;
        case 2: socket.connect("127.0.0.1", busy); socket.close(); break;
        case 3: CHECK(thrown([&] { socket.bind("127.0.0.1", busy); }).has_value()); break; // a failed bind
        default: {
            socket.bind("127.0.0.1", 0);
            greet::UdpSocket other = std::move(socket);
            other = bound("127.0.0.1"); // move assignment closes the one it held
        }
        }
    }
    CHECK(test::open_descriptors() == before);
#endif
}

TEST_CASE("udp: a burst of 10,000 datagrams into a small receive buffer: some lost, none corrupted", "[udp][hostile]") {
    greet::UdpSocket receiver = bound("127.0.0.1");
    const int small = 4096;
    REQUIRE(::setsockopt(receiver.native_handle(), SOL_SOCKET, SO_RCVBUF, reinterpret_cast<const char*>(&small), sizeof small) == 0);
    const int buffer = int_option(receiver.native_handle(), SOL_SOCKET, SO_RCVBUF);
    greet::UdpSocket sender = bound("127.0.0.1");
    constexpr std::uint32_t count = 10000;
    int send_failures = 0;
    std::string first_failure;
    const auto start = Clock::now();
    for (std::uint32_t i = 0; i < count; ++i) {
        std::error_code ec;
        sender.send_to(numbered(i, numbered_size(i)), receiver.local_address(), ec);
        if (ec && send_failures++ == 0) first_failure = greet::last_error_message();
    }
    const double sending = ms(Clock::now() - start);
    INFO("first send failure: " << first_failure);
    CHECK(send_failures == 0); // a full receiver drops datagrams; the sender is not told

    std::vector<bool> seen(count, false);
    std::size_t received = 0, corrupted = 0, duplicated = 0, out_of_order = 0;
    std::optional<std::uint32_t> last;
    receiver.set_timeout(quiet);
    for (std::uint32_t turn = 0; turn < count + 1; ++turn) {
        std::error_code ec;
        const auto got = receiver.recv_from(65536, ec);
        if (ec == std::errc::timed_out) break;
        REQUIRE_FALSE(ec);
        const auto index = check_numbered(got.first, count);
        if (!index) {
            ++corrupted;
            continue;
        }
        ++received;
        if (seen[*index]) ++duplicated;
        seen[*index] = true;
        if (last && *index < *last) ++out_of_order;
        last = index;
    }
    CHECK(corrupted == 0);
    CHECK(duplicated == 0);
    CHECK(received > 0);
    CHECK(received < count);
    WARN("10,000 datagrams of 4 to 1,472 bytes into SO_RCVBUF " << buffer << ": " << received << " received whole, "
                                                                  << count - received << " dropped, " << out_of_order
                                                                  << " out of order; sending took " << sending << " ms");
    // The receiver still works.
    sender.send_to(std::string("still here"), receiver.local_address());
    receiver.set_timeout(guard);
    CHECK(receiver.recv_from(100).first == "still here");
}
