// Messages and lines on a stream: the edges of send_message/recv_message and send_line/recv_line.
#include "catch.hpp"
#include "greet_socket.hpp"
#include "support.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <future>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#ifndef _WIN32
#include <sys/ioctl.h>
#include <sys/socket.h>
#endif
#ifdef __linux__
#include <linux/tcp.h> // glibc's <netinet/tcp.h> has no tcpi_segs_out
#elif !defined(_WIN32)
#include <netinet/tcp.h>
#endif

using namespace std::chrono_literals;
using test::guard;
using test::pattern;

// The largest single allocation while a thread asks for it: how the tests see that a
// refused message allocated nothing of its size. Every other allocation of the test
// program passes straight through to malloc. Under ASan, TSan and MSan the sanitizer's
// own operator new must stay (clang links it statically, so ours would clash), and the
// tests skip that one check.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GREET_TEST_COUNT_ALLOCATIONS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define GREET_TEST_COUNT_ALLOCATIONS 0
#endif
#endif
#ifndef GREET_TEST_COUNT_ALLOCATIONS
#define GREET_TEST_COUNT_ALLOCATIONS 1
#endif

namespace {
thread_local bool track_allocations = false;
thread_local std::size_t largest_allocation = 0;
} // namespace
#if GREET_TEST_COUNT_ALLOCATIONS
void* operator new(std::size_t size) {
    if (track_allocations && size > largest_allocation) largest_allocation = size;
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
// Not inlined: GCC would otherwise see free() take a pointer from operator new in the
// caller and warn (-Wmismatched-new-delete), though here the two are one pair.
#ifdef __GNUC__
#define GREET_TEST_NOINLINE __attribute__((noinline))
#else
#define GREET_TEST_NOINLINE
#endif
GREET_TEST_NOINLINE void operator delete(void* p) noexcept { std::free(p); }
GREET_TEST_NOINLINE void operator delete[](void* p) noexcept { std::free(p); }
GREET_TEST_NOINLINE void operator delete(void* p, std::size_t) noexcept { std::free(p); }
GREET_TEST_NOINLINE void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace {

using Clock = std::chrono::steady_clock;

struct AllocationProbe { // the largest allocation of this thread while alive
    AllocationProbe() { largest_allocation = 0, track_allocations = true; }
    ~AllocationProbe() { track_allocations = false; }
    std::size_t largest() const { return largest_allocation; }
};
// Checks that nothing of at least `limit` bytes was allocated (where allocations are counted).
void check_no_allocation_of(std::size_t largest, std::size_t limit) {
#if GREET_TEST_COUNT_ALLOCATIONS
    INFO("largest allocation inside recv_message: " << largest << " bytes");
    CHECK(largest < limit);
#else
    (void)largest, (void)limit;
    WARN("allocations are not counted under this sanitizer");
#endif
}

// Both ends of one connection (TCP loopback unless told), each with the guard timeout.
test::Pair framed_pair(test::Transport transport = test::Transport::tcp) { return test::guarded_pair(transport); }

std::string header(std::uint32_t n) {
    const char bytes[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n)};
    return std::string(bytes, 4);
}

#ifndef _WIN32
// Bytes the kernel holds for this socket that no recv has taken yet.
int unread_in_kernel(int fd) {
    int n = -1;
    ::ioctl(fd, FIONREAD, &n);
    return n;
}
#endif
#ifdef __linux__
tcp_info tcp_state(int fd) {
    tcp_info info{};
    socklen_t length = sizeof info;
    REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) == 0);
    return info;
}
#endif

// Sends bytes on `from`, then waits until the receiving socket's owner has taken them
// out of the kernel: the next piece then arrives in a receive of its own. Bounded; false
// when the reader did not take them in time. Elsewhere, without TCP_INFO, it only
// waits until nothing is queued.
[[maybe_unused]] bool send_and_wait_consumed(greet::Client& from, int to_fd, std::string_view bytes, std::uint64_t total_after) {
    from.send(bytes);
#if defined(__linux__)
    const auto deadline = Clock::now() + guard;
    while (Clock::now() < deadline) {
        const tcp_info info = tcp_state(to_fd);
        if (info.tcpi_bytes_received == total_after && unread_in_kernel(to_fd) == 0) return true;
        std::this_thread::yield();
    }
    return false;
#elif !defined(_WIN32)
    (void)total_after;
    const auto deadline = Clock::now() + guard;
    while (Clock::now() < deadline) {
        if (unread_in_kernel(to_fd) == 0) return true;
        std::this_thread::yield();
    }
    return false;
#else
    (void)to_fd, (void)total_after;
    return true;
#endif
}

} // namespace

TEST_CASE("an empty message is a 4-byte header of zeros", "[framing]") {
    const test::Transport transport = GREET_TEST_TRANSPORT();
    INFO("over " << transport);
    auto pair = framed_pair(transport);
    for (int i = 0; i < 3; ++i) CHECK(pair.client.send_message("") == 4);
    CHECK(pair.client.send_message("after") == 9);
    CHECK(pair.accepted.recv_exact(4) == std::string(4, '\0'));
    CHECK(pair.accepted.recv_message().empty());
    CHECK(pair.accepted.recv_message(0).empty()); // max_bytes 0 admits exactly the empty message
    CHECK(pair.accepted.recv_message() == "after");
}

TEST_CASE("a message of exactly max_bytes is accepted", "[framing]") {
    const test::Transport transport = GREET_TEST_TRANSPORT();
    INFO("over " << transport);
    auto pair = framed_pair(transport);
    for (std::size_t size : {std::size_t(1), std::size_t(1000), std::size_t(300000)}) {
        INFO("size " << size);
        const std::string payload = pattern(size, static_cast<std::uint32_t>(size));
        auto sender = std::async(std::launch::async, [&] { return pair.client.send_message(payload); });
        CHECK(pair.accepted.recv_message(size) == payload);
        CHECK(sender.get() == size + 4);
    }
}

TEST_CASE("max_bytes + 1 is refused before the payload is read or allocated and the bytes stay unread", "[framing]") {
    constexpr std::size_t max_bytes = 4 << 20;
    const std::string payload = pattern(max_bytes + 1, 7);
    const test::Transport transport = GREET_TEST_TRANSPORT();
    INFO("over " << transport);
    auto pair = framed_pair(transport);
    // Larger than the socket buffers: the sender finishes only once the receiver reads.
    auto sender = std::async(std::launch::async, [&] { return pair.client.send_message(payload); });

    std::optional<greet::Error> error;
    std::size_t largest = 0;
    {
        AllocationProbe probe;
        error = test::thrown([&] { pair.accepted.recv_message(max_bytes); });
        largest = probe.largest();
    }
    REQUIRE(error);
    CHECK(error->code() == std::errc::message_size);
    check_no_allocation_of(largest, max_bytes / 4);

    // Nothing was consumed: the header comes back first, then the whole payload.
    CHECK(pair.accepted.recv_exact(4) == header(max_bytes + 1));
    CHECK(pair.accepted.recv_exact(max_bytes + 1) == payload);
    CHECK(sender.get() == max_bytes + 5);

    SECTION("and a larger max_bytes then takes the same message") {
        auto again = std::async(std::launch::async, [&] { return pair.client.send_message(payload); });
        REQUIRE_THROWS_AS(pair.accepted.recv_message(max_bytes), greet::Error);
        CHECK(pair.accepted.recv_message(max_bytes + 1) == payload);
        CHECK(again.get() == max_bytes + 5);
    }
}

TEST_CASE("a declared length of 4 GiB - 1 is refused with the default max_bytes, allocating nothing", "[framing]") {
    const test::Transport transport = GREET_TEST_TRANSPORT();
    INFO("over " << transport);
    auto pair = framed_pair(transport);
    pair.client.send(std::string(4, '\xFF'));
    pair.client.send("tail");
    std::optional<greet::Error> error;
    std::size_t largest = 0;
    {
        AllocationProbe probe;
        error = test::thrown([&] { pair.accepted.recv_message(); });
        largest = probe.largest();
    }
    REQUIRE(error);
    CHECK(error->code() == std::errc::message_size);
    check_no_allocation_of(largest, std::size_t(1) << 20);
    CHECK(pair.accepted.recv_exact(4) == std::string(4, '\xFF'));
    CHECK(pair.accepted.recv_exact(4) == "tail");
}

TEST_CASE("a header and payload arriving one piece per receive", "[framing][posix]") {
#ifdef _WIN32
    GREET_TEST_SKIP("needs FIONREAD on a POSIX socket");
#else
    auto pair = framed_pair();
    // Without Nagle every piece leaves at once instead of waiting for the previous ACK.
    int on = 1;
    REQUIRE(::setsockopt(pair.client.native_handle(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) == 0);
    const int reader_fd = pair.accepted.native_handle();
    const std::string payload = pattern(3000, 11);
    const std::string head = header(static_cast<std::uint32_t>(payload.size()));

    auto reader = std::async(std::launch::async, [&] {
        std::string first = pair.accepted.recv_message();
        std::string second = pair.accepted.recv_message();
        return first + "|" + second;
    });
    // The header byte by byte, then the payload in two halves, each sent only after the
    // reader has taken the previous piece out of the kernel.
    std::vector<std::string> pieces;
    for (char c : head) pieces.emplace_back(1, c);
    pieces.push_back(payload.substr(0, 1000));
    pieces.push_back(payload.substr(1000));
    for (char c : header(2)) pieces.emplace_back(1, c); // a second message, split the same way
    pieces.emplace_back("o");
    pieces.emplace_back("k");
    std::uint64_t total = 0;
    std::size_t separate = 0;
    for (const std::string& piece : pieces) {
        total += piece.size();
        if (send_and_wait_consumed(pair.client, reader_fd, piece, total)) ++separate;
    }
    REQUIRE(reader.wait_for(guard) == std::future_status::ready);
    CHECK(reader.get() == payload + "|ok");
    CHECK(separate == pieces.size());
#endif
}

TEST_CASE("a peer closing inside a message: ClosedError, and recv returns the partial bytes", "[framing]") {
    const test::Transport transport = GREET_TEST_TRANSPORT();
    INFO("over " << transport);
    auto pair = framed_pair(transport);
    std::string partial;
    bool whole_first = false;
    SECTION("inside the header") {
        partial = std::string("\0\0", 2);
    }
    SECTION("inside the payload") {
        partial = header(10) + "abcd";
    }
    SECTION("after the header, before the payload") {
        partial = header(10);
    }
    SECTION("inside the header, after a complete message") {
        partial = "\x01";
        whole_first = true;
        pair.client.send_message("whole");
    }
    pair.client.send(partial);
    pair.client.close();

    if (whole_first) CHECK(pair.accepted.recv_message() == "whole");
    const auto error = test::thrown<greet::ClosedError>([&] { pair.accepted.recv_message(); });
    REQUIRE(error);
    CHECK(error->code() == greet::errc::peer_closed);
    CHECK(error->code() == greet::make_error_code(greet::errc::peer_closed));
    CHECK(test::recv_all(pair.accepted, 1 << 20) == partial);
    // At the end of the stream with nothing left, it is still a ClosedError.
    REQUIRE_THROWS_AS(pair.accepted.recv_message(), greet::ClosedError);
}

TEST_CASE("a peer closing between messages ends recv_message with ClosedError", "[framing]") {
    const test::Transport transport = GREET_TEST_TRANSPORT();
    INFO("over " << transport);
    auto pair = framed_pair(transport);
    pair.client.send_message("one");
    pair.client.close();
    CHECK(pair.accepted.recv_message() == "one");
    const auto error = test::thrown<greet::ClosedError>([&] { pair.accepted.recv_message(); });
    REQUIRE(error);
    CHECK(error->code() == greet::errc::peer_closed);
    CHECK(pair.accepted.recv(10).empty());
}

TEST_CASE("send_line and recv_line round trip", "[framing]") {
    const test::Transport transport = GREET_TEST_TRANSPORT();
    INFO("over " << transport);
    auto pair = framed_pair(transport);
    const std::vector<std::string> lines = {"hello", "", "Zo\xC3\xAB \xE2\x82\xAC \xF0\x9F\x98\x80", "tab\there", std::string(60000, 'x'),
                                            std::string("nul\0inside", 10)};
    std::size_t total = 0;
    for (const std::string& line : lines) total += line.size() + 1;
    // Sent from another thread: in chaos mode a Unix-domain socket's buffer fills after a
    // few KiB of tiny pieces, and a sender that waits for nobody would wait for ever.
    auto sent = test::start([&] {
        std::size_t count = 0;
        for (const std::string& line : lines) count += pair.client.send_line(line);
        return count;
    });
    for (const std::string& line : lines) CHECK(pair.accepted.recv_line() == line);
    CHECK(sent.get() == total);

    SECTION("a '\\r' before the '\\n' is dropped, like \"\\r\\n\" endings; send_line refuses a trailing '\\r'") {
        CHECK(pair.client.send("dos\r\n") == 5);
        CHECK(pair.accepted.recv_line() == "dos");
        const auto error = test::thrown([&] { pair.client.send_line("dos\r"); });
        REQUIRE(error);
        CHECK(error->code() == std::errc::invalid_argument);
    }
    SECTION("a line holding '\\n' is refused and nothing is sent") {
        for (const char* bad : {"two\nlines", "\n", "trailing\n"}) {
            INFO(bad);
            const auto error = test::thrown([&] { pair.client.send_line(bad); });
            REQUIRE(error);
            CHECK(error->code() == std::errc::invalid_argument);
        }
        pair.client.send_line("next");
        CHECK(pair.accepted.recv_line() == "next");
    }
}

TEST_CASE("messages mixed with lines and raw receives lose no byte", "[framing]") {
    const test::Transport transport = GREET_TEST_TRANSPORT();
    INFO("over " << transport);
    auto pair = framed_pair(transport);
    const std::string big = pattern(200000, 3);
    const std::string small = pattern(17, 4);
    // The sender never waits for the reader: one read from the OS often holds several
    // units, and each call must leave the rest in the buffer for the next.
    auto sender = std::async(std::launch::async, [&] {
        pair.client.send_line("first line");
        pair.client.send_message(small);
        pair.client.send("raw");
        pair.client.send_message(big);
        pair.client.send_message("");
        pair.client.send_line("last line");
        pair.client.send_message("\n\n");
        pair.client.send("end");
        pair.client.shutdown_send();
    });
    CHECK(pair.accepted.recv_line() == "first line");
    CHECK(pair.accepted.recv_message() == small);
    CHECK(pair.accepted.recv_exact(2) == "ra");
    CHECK(pair.accepted.recv(1) == "w");
    CHECK(pair.accepted.recv_message() == big);
    CHECK(pair.accepted.recv_message().empty());
    CHECK(pair.accepted.recv_exact(10) == "last line\n");
    CHECK(pair.accepted.recv_message(2) == "\n\n");
    CHECK(test::recv_all(pair.accepted, 1 << 20) == "end");
    sender.get();
}

#ifdef __linux__
TEST_CASE("send_message leaves in one TCP segment where two sends take two", "[framing][linux]") {
    // tcpi_segs_out counts every segment the socket sent. On an idle connection where
    // only this side sends (so it never owes an ACK), one system call for a small
    // payload is one segment. Had send_message written header and payload separately,
    // the second write would either leave as a segment of its own or, under Nagle's
    // algorithm, wait for the ACK of the first (up to the peer's delayed-ACK time) and
    // then leave alone: two segments, or a delay, never one segment at once.
    auto pair = framed_pair();
    pair.client.set_timeout(std::nullopt); // blocking: exactly one sendmsg per call
    // The subject is the wire without chaos mode (GREET_SOCKET_CHAOS may be set for the run).
    pair.client.set_chaos(std::nullopt);
    pair.accepted.set_chaos(std::nullopt);
    const int fd = pair.client.native_handle();
    std::vector<std::uint32_t> one_call, two_calls;
    for (std::uint32_t i = 0; i < 8; ++i) {
        const std::string payload = pattern(100 + i * 50, i);
        const std::uint32_t before = tcp_state(fd).tcpi_segs_out;
        CHECK(pair.client.send_message(payload) == payload.size() + 4);
        CHECK(pair.accepted.recv_message() == payload); // everything arrived: nothing held back
        one_call.push_back(tcp_state(fd).tcpi_segs_out - before);
    }
    for (std::uint32_t i = 0; i < 8; ++i) {
        const std::string payload = pattern(100 + i * 50, i);
        const std::uint32_t before = tcp_state(fd).tcpi_segs_out;
        pair.client.send(header(static_cast<std::uint32_t>(payload.size())));
        pair.client.send(payload);
        CHECK(pair.accepted.recv_message() == payload);
        two_calls.push_back(tcp_state(fd).tcpi_segs_out - before);
    }
    std::string seen = "segments per send_message:";
    for (auto n : one_call) seen += " " + std::to_string(n);
    seen += "; per header + payload send pair:";
    for (auto n : two_calls) seen += " " + std::to_string(n);
    WARN(seen);
    for (auto n : one_call) CHECK(n == 1);
    for (auto n : two_calls) CHECK(n >= 2);
}
#endif
