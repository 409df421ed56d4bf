// greet::Canceller: cancel() ends the blocked calls of every socket given the canceller,
// from another thread or a signal handler, and every later call until reset(). Nothing is
// lost: a cancelled receive keeps its bytes, a cancelled send says how many went, a
// cancelled connect leaves the Client free to connect again.
//
// A call to be cancelled runs on a helper thread (Blocked). On Linux the test waits
// (bounded) until that thread sleeps in the OS before it cancels; elsewhere it cancels at
// once, and the call, blocked or not yet begun, must fail all the same. Every helper's call
// has the guard timeout, so a cancel() that does nothing ends the call with TimeoutError
// (a failure) instead of hanging the test. Latencies are bounded loosely: a loaded machine
// may be slow, but a cancel() that takes a second is a bug.
#include "catch.hpp"
#include "greet_socket.hpp"
#include "support.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <typeinfo>
#include <utility>
#include <vector>

#ifdef __linux__
#include <pthread.h>
#include <signal.h>
#endif

using namespace std::chrono_literals;
using test::contains;
using test::guard;

namespace {

using Clock = std::chrono::steady_clock;
constexpr double generous_ms = 1000; // from cancel() to the call's end, and for a call that must fail at once

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// How a call ended: what it returned or threw, and when.
struct Ended {
    std::optional<greet::Error> error;
    std::string other; // another exception: its type and what()
    std::string value; // what the call returned, when it returned
    Clock::time_point at{};
};

template <class F>
Ended ended_by(F&& call) {
    Ended out;
    try {
        out.value = call();
    } catch (const greet::Error& e) {
        out.error = e;
    } catch (const std::exception& e) {
        out.other = std::string(typeid(e).name()) + ": " + e.what();
    }
    out.at = Clock::now();
    return out;
}

std::string describe(const Ended& end) {
    if (end.error) return std::string("greet::Error: ") + end.error->what();
    if (!end.other.empty()) return end.other;
    return "returned \"" + end.value + "\" (" + std::to_string(end.value.size()) + " bytes)";
}

bool was_cancelled(const Ended& end) { return end.error && end.error->code() == std::errc::operation_canceled; }

// A call on a helper thread, which names itself so that the test can see it asleep in the OS.
// The call returns std::string (what the test wants to see of its result).
class Blocked {
public:
    template <class F>
    explicit Blocked(F call)
        : named_(std::make_shared<Named>()), ended_(test::start([named = named_, call = std::move(call)]() mutable {
#ifdef __linux__
              named->thread = ::pthread_self();
              named->tid.store(test::this_thread_id());
#else
              (void)named;
#endif
              return ended_by(call);
          })) {}

    // Linux: waits (bounded) until the thread sleeps in the OS, and says whether it did.
    // Elsewhere returns true at once: the call may then begin after cancel(), and must fail all the same.
    bool wait_asleep() const {
#ifdef __linux__
        const auto until = Clock::now() + 5s;
        while (named_->tid.load() == 0 && Clock::now() < until) std::this_thread::yield();
        const long tid = named_->tid.load();
        if (tid == 0) return false;
        while (test::thread_state(tid) != 'S' && Clock::now() < until) std::this_thread::yield();
        return test::thread_state(tid) == 'S';
#else
        return true;
#endif
    }
#ifdef __linux__
    // The helper thread, once it has started (bounded; nullopt if it did not).
    std::optional<pthread_t> thread() const {
        const auto until = Clock::now() + 5s;
        while (named_->tid.load() == 0 && Clock::now() < until) std::this_thread::yield();
        if (named_->tid.load() == 0) return std::nullopt;
        return named_->thread; // written before tid
    }
#endif
    // How the call ended; nullopt if it had not within the limit (it has the guard timeout
    // itself, so the destructor's join is bounded too).
    std::optional<Ended> result(std::chrono::milliseconds limit = 2 * guard) {
        if (ended_.wait_for(limit) != std::future_status::ready) return std::nullopt;
        return ended_.get();
    }

private:
    struct Named {
        std::atomic<long> tid{0};
#ifdef __linux__
        pthread_t thread{};
#endif
    };
    std::shared_ptr<Named> named_;
    std::future<Ended> ended_;
};

// cancel() once the call sleeps in the OS (Linux) or at once; the time from cancel() to the call's end.
struct Cancelled {
    std::optional<Ended> end;
    double latency_ms = 0;
    bool asleep = false; // the call was seen asleep in the OS before cancel() (always true off Linux)
};
Cancelled cancel_when_asleep(Blocked& call, greet::Canceller& canceller) {
    Cancelled out;
    out.asleep = call.wait_asleep();
    const auto at = Clock::now();
    canceller.cancel();
    out.end = call.result();
    if (out.end) out.latency_ms = ms(out.end->at - at);
    return out;
}

using test::guarded_pair;
using test::header;

// N from "sent N of <total> bytes" in a send's message; nullopt when it does not say so.
std::optional<std::size_t> bytes_sent(const std::string& what, std::size_t total) {
    const std::size_t end = what.find(" of " + std::to_string(total) + " bytes");
    if (end == std::string::npos) return std::nullopt;
    const std::size_t at = what.rfind("sent ", end);
    if (at == std::string::npos) return std::nullopt;
    const std::string count = what.substr(at + 5, end - at - 5);
    if (count.empty() || count.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    return static_cast<std::size_t>(std::stoull(count));
}

// 64 MiB: more than the socket buffers of a connection hold (here 4 MiB to send and at
// most 32 MiB to receive; about 4 MiB went before a send blocked), built from a pattern whose
// period (1 MiB + 7) is no power of two, so a misplaced byte shows.
const std::string& big_block() {
    static const std::string block = [] {
        constexpr std::size_t size = std::size_t(64) << 20;
        const std::string unit = test::pattern((std::size_t(1) << 20) + 7, 9);
        std::string out;
        out.reserve(size + unit.size());
        for (int i = 0; i < 128 && out.size() < size; ++i) out += unit;
        out.resize(size);
        return out;
    }();
    return block;
}

// Fills the queue of a listener with backlog 0 (keeping the connections in `queued`) until
// the kernel drops further SYNs, as tests/test_timeouts.cpp's "connect gives up on a
// listener that never answers" does. True once a connect timed out: a connect to the port
// now waits for a SYN-ACK that never comes.
bool fill_queue(std::uint16_t port, std::vector<greet::Client>& queued) {
    for (int attempt = 0; attempt < 64; ++attempt) {
        greet::Client client;
        client.set_timeout(200ms);
        if (test::thrown<greet::TimeoutError>([&] { client.connect("127.0.0.1", port); })) return true;
        queued.push_back(std::move(client));
    }
    return false;
}

// A listener whose full queue drops SYNs, and a Client (guard timeout, a canceller) whose
// connect to it blocks.
struct Stalled {
    static constexpr const char* never = "64 connections to a backlog-0 listener all completed: this kernel never "
                                         "drops the SYN, so no connect blocks to be cancelled";
    greet::Server silent{"127.0.0.1", 0, 0};
    std::uint16_t port = silent.local_address().port;
    std::vector<greet::Client> queued; // kept open so that the queue stays full
    bool stalls = fill_queue(port, queued);
    greet::Canceller canceller;
    greet::Client client;
    Stalled() {
        client.set_timeout(guard);
        client.set_canceller(canceller);
    }
};

} // namespace

// ---------------------------------------------------------------------------
// 1. Receives.

TEST_CASE("a blocked receive ends with operation_canceled soon after cancel() and loses no byte", "[cancel]") {
    const test::Transport transport = GREET_TEST_TRANSPORT();
    INFO("over " << transport);
    // Each receive: `first` is sent; a call that returns `before` is made (when not empty);
    // the call blocks waiting for more and is cancelled; a later call fails too (still
    // cancelled); reset(); `rest` is sent, and the same call returns `after`: the bytes that
    // had arrived before the cancel are all there.
    struct Receive {
        const char* name;
        std::function<std::string(greet::Client&)> call;
        std::string first, before, rest, after;
    };
    const std::string head = header(10);
    const std::vector<Receive> receives = {
        {"recv", [](greet::Client& c) { return c.recv(100); }, "", "", "abc", "abc"},
        {"recv_into",
         [](greet::Client& c) {
             char into[100];
             return std::string(into, c.recv_into(into, sizeof into));
         },
         "", "", "abc", "abc"},
        {"recv_text (holding half a character)", [](greet::Client& c) { return c.recv_text(64); }, "Zo\xC3", "Zo", "\xAB", "\xC3\xAB"},
        {"recv_exact (half the unit arrived)", [](greet::Client& c) { return c.recv_exact(6); }, "abc", "", "def", "abcdef"},
        {"recv_exact_into (half the unit arrived)",
         [](greet::Client& c) {
             char into[6];
             c.recv_exact_into(into, sizeof into);
             return std::string(into, sizeof into);
         },
         "abc", "", "def", "abcdef"},
        {"recv_line", [](greet::Client& c) { return c.recv_line(); }, "hello\nwor", "hello", "ld\n", "world"},
        {"recv_line(std::string&)",
         [](greet::Client& c) {
             std::string line = "old";
             c.recv_line(line);
             return line;
         },
         "hello\nwor", "hello", "ld\n", "world"},
        {"recv_line_view", [](greet::Client& c) { return std::string(c.recv_line_view()); }, "hello\nwor", "hello", "ld\n", "world"},
        {"recv_message (half the payload arrived)", [](greet::Client& c) { return c.recv_message(); }, head + "01234", "", "56789",
         "0123456789"},
        {"recv_message (half the header arrived)", [](greet::Client& c) { return c.recv_message(); }, head.substr(0, 2),
         "", head.substr(2) + "0123456789", "0123456789"},
    };
    std::ostringstream latencies;
    for (const Receive& receive : receives) {
        INFO(receive.name);
        auto pair = guarded_pair(transport);
        greet::Canceller canceller;
        pair.client.set_canceller(canceller);
        CHECK_FALSE(canceller.cancelled());
        if (!receive.first.empty()) pair.accepted.send(receive.first);
        if (!receive.before.empty()) {
            std::string got; // a few calls, should the OS hand the bytes over in pieces
            for (int turn = 0; turn < 4 && got.size() < receive.before.size(); ++turn) got += receive.call(pair.client);
            REQUIRE(got == receive.before);
        }

        Blocked call([&] { return receive.call(pair.client); });
        const Cancelled cancelled = cancel_when_asleep(call, canceller);
        REQUIRE(cancelled.end);
        INFO("the blocked call: " << describe(*cancelled.end));
        CHECK(cancelled.asleep);
        CHECK(was_cancelled(*cancelled.end));
        if (cancelled.end->error) CHECK(contains(cancelled.end->error->what(), pair.endpoint));
        CHECK(cancelled.latency_ms < generous_ms);
        latencies << "\n  " << receive.name << ": " << cancelled.latency_ms << " ms";
        CHECK(canceller.cancelled());

        const auto later_start = Clock::now();
        const Ended later = ended_by([&] { return receive.call(pair.client); });
        INFO("the later call: " << describe(later));
        CHECK(was_cancelled(later));
        CHECK(ms(later.at - later_start) < generous_ms);

        canceller.reset();
        CHECK_FALSE(canceller.cancelled());
        pair.accepted.send(receive.rest);
        std::string got;
        for (int turn = 0; turn < 4 && got.size() < receive.after.size(); ++turn) got += receive.call(pair.client);
        CHECK(got == receive.after);
    }
    WARN("cancel() to the end of the blocked receive:" << latencies.str());
}

// ---------------------------------------------------------------------------
// 2. Send.

TEST_CASE("a send blocked on a peer that never reads is cancelled and says how many bytes went", "[cancel]") {
    auto pair = guarded_pair();
    greet::Canceller canceller;
    pair.client.set_canceller(canceller);
    const std::string& block = big_block();
    Blocked call([&] { return std::to_string(pair.client.send(block)); });
    // The peer takes one byte: the send has begun, so it has sent more than 0 bytes when cancelled.
    const std::string first = pair.accepted.recv(1);
    REQUIRE(first == block.substr(0, 1));
    const Cancelled cancelled = cancel_when_asleep(call, canceller);
    REQUIRE(cancelled.end);
    const std::string what = describe(*cancelled.end);
    INFO(what);
    CHECK(cancelled.asleep);
    CHECK(was_cancelled(*cancelled.end));
    CHECK(cancelled.latency_ms < generous_ms);
    const std::optional<std::size_t> sent = bytes_sent(what, block.size());
    REQUIRE(sent); // "sent N of M bytes"
    CHECK(*sent > 0);
    CHECK(*sent < block.size());
    WARN("cancel() to the end of the blocked send: " << cancelled.latency_ms << " ms; " << what);

    // What the message says went is what the peer reads; after reset() the connection goes on.
    canceller.reset();
    auto reader = test::start([&] { return test::recv_all(pair.accepted, block.size() + 16); });
    CHECK(pair.client.send("tail") == 4);
    pair.client.close();
    REQUIRE(reader.wait_for(2 * guard) == std::future_status::ready);
    const std::string arrived = first + reader.get();
    REQUIRE(arrived.size() == *sent + 4);
    CHECK(arrived.compare(0, *sent, block, 0, *sent) == 0);
    CHECK(arrived.substr(*sent) == "tail");
}

// ---------------------------------------------------------------------------
// 3. Connect.

TEST_CASE("a connect blocked on a listener that drops SYNs is cancelled and the Client can connect again", "[cancel]") {
    Stalled stalled;
    if (!stalled.stalls) GREET_TEST_SKIP(Stalled::never);
    const std::uint16_t port = stalled.port;
    greet::Client& client = stalled.client;
    greet::Canceller& canceller = stalled.canceller;
    Blocked call([&] {
        client.connect("127.0.0.1", port);
        return std::string("connected");
    });
    const Cancelled cancelled = cancel_when_asleep(call, canceller);
    REQUIRE(cancelled.end);
    INFO(describe(*cancelled.end) << " after " << stalled.queued.size() << " queued connections");
    CHECK(cancelled.asleep);
    CHECK(was_cancelled(*cancelled.end));
    CHECK(cancelled.latency_ms < generous_ms);
    CHECK_FALSE(client.is_open());
    WARN("cancel() to the end of the blocked connect: " << cancelled.latency_ms << " ms");

    canceller.reset();
    greet::Server server("127.0.0.1", 0);
    server.set_timeout(guard);
    client.connect("127.0.0.1", server.local_address().port);
    CHECK(client.is_open());
    auto accepted = server.accept();
    CHECK(accepted.second == client.local_address());
    accepted.first.set_timeout(guard);
    client.send("x");
    CHECK(accepted.first.recv(1) == "x");
}

// ---------------------------------------------------------------------------
// 4. Accept and serve.

TEST_CASE("a blocked accept() is cancelled, and accepts again after reset()", "[cancel]") {
    greet::Server server("127.0.0.1", 0);
    server.set_timeout(guard);
    greet::Canceller canceller;
    server.set_canceller(canceller);
    Blocked call([&] {
        server.accept();
        return std::string("accepted");
    });
    const Cancelled cancelled = cancel_when_asleep(call, canceller);
    REQUIRE(cancelled.end);
    INFO(describe(*cancelled.end));
    CHECK(cancelled.asleep);
    CHECK(was_cancelled(*cancelled.end));
    CHECK(cancelled.latency_ms < generous_ms);
    WARN("cancel() to the end of the blocked accept: " << cancelled.latency_ms << " ms");

    canceller.reset();
    greet::Client client;
    client.set_timeout(guard);
    client.connect("127.0.0.1", server.local_address().port);
    auto accepted = server.accept();
    CHECK(accepted.second == client.local_address());

    // The accepted Client has no canceller of its own: a cancel() leaves it working.
    canceller.cancel();
    accepted.first.set_timeout(guard);
    client.send("still here");
    CHECK(test::recv_some(accepted.first, 10) == "still here");
    accepted.first.send("yes");
    CHECK(test::recv_some(client, 3) == "yes");
    const Ended again = ended_by([&] {
        server.accept();
        return std::string("accepted");
    });
    INFO(describe(again));
    CHECK(was_cancelled(again));
}

TEST_CASE("serve() returns once its Server's canceller is cancelled", "[cancel]") {
    greet::Server server("127.0.0.1", 0);
    greet::Canceller canceller;
    server.set_canceller(canceller);
    const greet::Server::Handler greet_client = [](greet::Client& client, const greet::Address&) { client.send("hi"); };
    SECTION("while it serves") {
        Blocked serving([&] {
            server.serve(greet_client);
            return std::string("returned");
        });
        test::StopOnExit stop(server);
        // serve() is up: a client is served.
        greet::Client client;
        client.set_timeout(guard);
        client.connect("127.0.0.1", server.local_address().port);
        CHECK(client.recv_exact(2) == "hi");
        const Cancelled cancelled = cancel_when_asleep(serving, canceller);
        REQUIRE(cancelled.end);
        INFO(describe(*cancelled.end));
        CHECK(cancelled.asleep);
        CHECK(cancelled.end->value == "returned");
        CHECK(cancelled.latency_ms < generous_ms);
        WARN("cancel() to serve()'s return: " << cancelled.latency_ms << " ms");
    }
    SECTION("cancelled before serve() begins") {
        canceller.cancel();
        Blocked serving([&] {
            server.serve(greet_client);
            return std::string("returned");
        });
        test::StopOnExit stop(server);
        const auto end = serving.result(guard);
        REQUIRE(end);
        INFO(describe(*end));
        CHECK(end->value == "returned");
    }
}

// ---------------------------------------------------------------------------
// 5. A call made while cancelled.

TEST_CASE("a call made while cancelled fails at once, and works after reset()", "[cancel]") {
    // Every socket has the guard timeout: a call that waited instead of failing would
    // take 10 s and end with TimeoutError.
    greet::Canceller canceller;
    greet::Canceller copy = canceller; // copies share one state
    auto fails_at_once = [](auto&& call) {
        const auto start = Clock::now();
        Ended end = ended_by(call);
        INFO(describe(end));
        CHECK(was_cancelled(end));
        CHECK(ms(end.at - start) < generous_ms);
        return end;
    };
    SECTION("cancel() keeps errno, and copies share the state") {
        errno = EDOM;
        copy.cancel();
        CHECK(errno == EDOM);
        CHECK(canceller.cancelled());
        CHECK(copy.cancelled());
        canceller.reset();
        CHECK_FALSE(copy.cancelled());
        canceller.cancel();
        canceller.cancel(); // twice is once
        CHECK(copy.cancelled());
        copy.reset();
        CHECK_FALSE(canceller.cancelled());
    }
    SECTION("connect") {
        greet::Server server("127.0.0.1", 0);
        server.set_timeout(guard);
        greet::Client client;
        client.set_timeout(guard);
        client.set_canceller(canceller);
        copy.cancel();
        fails_at_once([&] {
            client.connect("127.0.0.1", server.local_address().port);
            return std::string("connected");
        });
        CHECK_FALSE(client.is_open());
        copy.reset();
        client.connect("127.0.0.1", server.local_address().port);
        CHECK(client.is_open());
        CHECK(server.accept().second == client.local_address());
    }
    SECTION("send") {
        auto pair = guarded_pair();
        pair.client.set_canceller(canceller);
        copy.cancel();
        const Ended end = fails_at_once([&] { return std::to_string(pair.client.send("lost")); });
        if (end.error) {
            INFO(end.error->what());
            CHECK(bytes_sent(end.error->what(), 4) == std::optional<std::size_t>(0));
        }
        copy.reset();
        CHECK(pair.client.send("kept") == 4);
        CHECK(pair.accepted.recv_exact(4) == "kept"); // the cancelled send sent nothing
    }
    SECTION("recv, with nothing to receive") {
        auto pair = guarded_pair();
        pair.client.set_canceller(canceller);
        copy.cancel();
        fails_at_once([&] { return pair.client.recv(100); });
        copy.reset();
        pair.accepted.send("after");
        CHECK(test::recv_some(pair.client, 5) == "after");
    }
    SECTION("recv, with the bytes already sent") {
        auto pair = guarded_pair();
        pair.client.set_canceller(canceller);
        pair.accepted.send("waiting");
        copy.cancel();
        fails_at_once([&] { return pair.client.recv(100); });
        copy.reset();
        CHECK(test::recv_some(pair.client, 7) == "waiting");
    }
    SECTION("recv_line, with the line already in the Client's buffer") {
        auto pair = guarded_pair();
        pair.client.set_canceller(canceller);
        pair.accepted.send("one\ntwo\n");
        REQUIRE(pair.client.recv_line() == "one");
        copy.cancel();
        fails_at_once([&] { return pair.client.recv_line(); });
        copy.reset();
        CHECK(pair.client.recv_line() == "two");
    }
    SECTION("accept, with a client waiting") {
        greet::Server server("127.0.0.1", 0);
        server.set_timeout(guard);
        server.set_canceller(canceller);
        greet::Client client;
        client.set_timeout(guard);
        client.connect("127.0.0.1", server.local_address().port);
        copy.cancel();
        fails_at_once([&] {
            server.accept();
            return std::string("accepted");
        });
        copy.reset();
        CHECK(server.accept().second == client.local_address());
    }
}

// ---------------------------------------------------------------------------
// 6. One canceller, many sockets.

TEST_CASE("one cancel() ends the blocked receives of 16 Clients sharing the canceller", "[cancel]") {
    constexpr std::size_t count = 16;
    std::vector<test::Pair> pairs;
    for (std::size_t i = 0; i < count; ++i) pairs.push_back(guarded_pair());
    test::Pair bystander = guarded_pair(); // not given the canceller
    greet::Canceller canceller;
    for (test::Pair& pair : pairs) pair.client.set_canceller(canceller);
    std::vector<Blocked> calls;
    calls.reserve(count);
    for (std::size_t i = 0; i < count; ++i) calls.emplace_back([&pairs, i] { return pairs[i].client.recv(100); });
    std::size_t asleep = 0;
    for (const Blocked& call : calls) asleep += call.wait_asleep() ? 1 : 0;
    CHECK(asleep == count);
    const auto at = Clock::now();
    canceller.cancel();
    double slowest = 0;
    for (std::size_t i = 0; i < count; ++i) {
        INFO("Client " << i);
        const auto end = calls[i].result();
        REQUIRE(end);
        INFO(describe(*end));
        CHECK(was_cancelled(*end));
        slowest = std::max(slowest, ms(end->at - at));
    }
    CHECK(slowest < generous_ms);
    WARN("one cancel() to the end of the last of 16 blocked receives: " << slowest << " ms");

    bystander.accepted.send("alive");
    CHECK(test::recv_some(bystander.client, 5) == "alive");
}

// ---------------------------------------------------------------------------
// 7. A signal handler.

#ifdef __linux__
namespace {

std::atomic<greet::Canceller*> signal_canceller{nullptr};
std::atomic<int> handler_runs{0};
std::atomic<int> errno_kept{0}; // handler runs in which cancel() left errno as it was

void cancel_on_signal(int) {
    const int saved = errno;
    errno = EDOM;
    greet::Canceller* canceller = signal_canceller.load();
    if (canceller) canceller->cancel();
    if (errno == EDOM) errno_kept.fetch_add(1);
    handler_runs.fetch_add(1);
    errno = saved;
}

// Puts the old SIGUSR1 disposition back, and forgets the canceller.
struct RestoreSignal {
    explicit RestoreSignal(const struct sigaction& o) : old(o) {}
    struct sigaction old;
    RestoreSignal(const RestoreSignal&) = delete;
    RestoreSignal& operator=(const RestoreSignal&) = delete;
    ~RestoreSignal() {
        ::sigaction(SIGUSR1, &old, nullptr);
        signal_canceller.store(nullptr);
    }
};

} // namespace

TEST_CASE("cancel() from a signal handler ends a blocked recv and keeps errno", "[cancel][linux]") {
    auto pair = guarded_pair();
    greet::Canceller canceller;
    pair.client.set_canceller(canceller);
    signal_canceller.store(&canceller);
    handler_runs.store(0);
    errno_kept.store(0);
    struct sigaction action {};
    action.sa_handler = cancel_on_signal;
    ::sigemptyset(&action.sa_mask);
    action.sa_flags = 0; // no SA_RESTART: the blocked wait returns EINTR, which the library must not take for an end
    struct sigaction old {};
    REQUIRE(::sigaction(SIGUSR1, &action, &old) == 0);
    RestoreSignal restore(old);

    Blocked call([&] { return pair.client.recv(100); });
    const bool asleep = call.wait_asleep();
    CHECK(asleep);
    const std::optional<pthread_t> thread = call.thread();
    REQUIRE(thread);
    const auto at = Clock::now();
    REQUIRE(::pthread_kill(*thread, SIGUSR1) == 0);
    const auto end = call.result();
    REQUIRE(end);
    INFO(describe(*end));
    CHECK(was_cancelled(*end));
    const double latency = ms(end->at - at);
    CHECK(latency < generous_ms);
    CHECK(handler_runs.load() == 1);
    CHECK(errno_kept.load() == 1);
    CHECK(canceller.cancelled());
    WARN("pthread_kill() to the end of the blocked recv: " << latency << " ms");

    canceller.reset();
    pair.accepted.send("after");
    CHECK(test::recv_some(pair.client, 5) == "after");
}

// ---------------------------------------------------------------------------
// 8. Descriptors.

TEST_CASE("a Canceller opens one descriptor, and set_canceller none", "[cancel][linux]") {
    const std::size_t at_start = test::open_descriptors();
    {
        std::vector<test::Pair> pairs;
        pairs.reserve(10);
        for (int i = 0; i < 10; ++i) pairs.push_back(guarded_pair());
        greet::Client unconnected;
        const std::size_t before = test::open_descriptors();
        {
            greet::Canceller canceller;
            CHECK(test::open_descriptors() == before + 1);
            greet::Canceller copy = canceller; // a copy is a handle: no descriptor of its own
            CHECK(test::open_descriptors() == before + 1);
            for (std::size_t i = 0; i < pairs.size(); ++i) {
                INFO("after set_canceller on Client " << i);
                pairs[i].client.set_canceller(canceller);
                CHECK(test::open_descriptors() == before + 1);
            }
            unconnected.set_canceller(std::move(copy));
            CHECK(test::open_descriptors() == before + 1);
            // The Clients still work with it, and still open nothing.
            for (test::Pair& pair : pairs) {
                pair.accepted.send("p");
                CHECK(pair.client.recv(1) == "p");
            }
            CHECK(test::open_descriptors() == before + 1);
        }
    }
    CHECK(test::open_descriptors() == at_start); // the canceller's socket closed with its last copy
}
#endif

// ---------------------------------------------------------------------------
// 9. Latency of 100 cancels in a row, per kind of blocked call.

namespace {

// Runs `call` on a helper thread `rounds` times, cancels each once it is asleep, resets;
// WARNs the median and maximum latency and checks every round was cancelled within the bound.
template <class F>
void measure_latency(const char* kind, greet::Canceller& canceller, F call, int rounds = 100) {
    std::vector<double> latencies;
    int not_asleep = 0;
    for (int round = 0; round < rounds; ++round) {
        INFO(kind << ", round " << round);
        Blocked blocked(call);
        const Cancelled cancelled = cancel_when_asleep(blocked, canceller);
        REQUIRE(cancelled.end);
        INFO(describe(*cancelled.end));
        REQUIRE(was_cancelled(*cancelled.end));
        if (!cancelled.asleep) ++not_asleep;
        latencies.push_back(cancelled.latency_ms);
        canceller.reset();
    }
    std::sort(latencies.begin(), latencies.end());
    const double median = latencies[latencies.size() / 2];
    const double slowest = latencies.back();
    WARN(kind << ": " << rounds << " cancels, latency median " << median << " ms, max " << slowest << " ms"
              << (not_asleep ? " (" + std::to_string(not_asleep) + " not seen asleep first)" : std::string()));
    CHECK(not_asleep == 0);
    CHECK(slowest < generous_ms);
}

} // namespace

TEST_CASE("latency of cancel(): a blocked recv, 100 times", "[cancel][latency]") {
    auto pair = guarded_pair();
    greet::Canceller canceller;
    pair.client.set_canceller(canceller);
    measure_latency("recv", canceller, [&] { return pair.client.recv(100); });
    pair.accepted.send("intact");
    CHECK(test::recv_some(pair.client, 6) == "intact");
}

TEST_CASE("latency of cancel(): a blocked send, 100 times", "[cancel][latency]") {
    auto pair = guarded_pair();
    greet::Canceller canceller;
    pair.client.set_canceller(canceller);
    const std::string& block = big_block(); // the first send fills the buffers, the rest block at once
    measure_latency("send", canceller, [&] { return std::to_string(pair.client.send(block)); });
}

TEST_CASE("latency of cancel(): a blocked connect, 100 times on one Client", "[cancel][latency]") {
    Stalled stalled;
    if (!stalled.stalls) GREET_TEST_SKIP(Stalled::never);
    const std::uint16_t port = stalled.port;
    greet::Client& client = stalled.client;
    greet::Canceller& canceller = stalled.canceller;
    measure_latency("connect", canceller, [&] {
        client.connect("127.0.0.1", port);
        return std::string("connected");
    });
    CHECK_FALSE(client.is_open());
}

TEST_CASE("latency of cancel(): a blocked accept, 100 times", "[cancel][latency]") {
    greet::Server server("127.0.0.1", 0);
    server.set_timeout(guard);
    greet::Canceller canceller;
    server.set_canceller(canceller);
    measure_latency("accept", canceller, [&] {
        server.accept();
        return std::string("accepted");
    });
}
