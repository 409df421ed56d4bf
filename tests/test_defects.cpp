// Regression tests for the defects the owner decided on (numbers as in the defect list):
// each fails against the 1.0.0 header and passes once the decided behaviour is in,
// unless a comment says a sanitizer is what catches the old one.
#include "catch.hpp"
#include "greet_socket.hpp"
#include "support.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <future>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

#ifndef _WIN32
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#endif
#ifdef __linux__
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#endif

using namespace std::chrono_literals;
using namespace test; // guard, contains, this_thread_id, ...

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto forever = std::chrono::milliseconds::max();

double ms_since(Clock::time_point start) { return std::chrono::duration<double, std::milli>(Clock::now() - start).count(); }

// What f threw, for a CHECK's message: greet::Error, another exception (which the
// caller wants reported, not escaping), or nothing.
struct Outcome {
    std::optional<greet::Error> error;
    std::string other; // a non-greet exception: its type and what()
};
template <class F>
Outcome outcome_of(F&& f) {
    Outcome out;
    try {
        f();
    } catch (const greet::Error& e) {
        out.error = e;
    } catch (const std::exception& e) {
        out.other = std::string(typeid(e).name()) + ": " + e.what();
    }
    return out;
}

// Whether text holds a byte a terminal would act on (C0 controls and DEL).
bool has_control_byte(std::string_view text) {
    for (char c : text)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) return true;
    return false;
}
// "\xNN" in either case of hex digit.
bool contains_escaped(std::string_view text, std::string_view before, unsigned char byte, std::string_view after) {
    static const char* const digits[2] = {"0123456789abcdef", "0123456789ABCDEF"};
    for (const char* d : digits) {
        const std::string escaped = std::string(before) + "\\x" + d[byte >> 4] + d[byte & 15] + std::string(after);
        if (contains(text, escaped)) return true;
    }
    return false;
}

#ifdef __linux__
// How often the thread went to sleep in the kernel (-1 when /proc does not say).
long voluntary_switches(long tid) {
    std::ifstream status("/proc/self/task/" + std::to_string(tid) + "/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("voluntary_ctxt_switches:", 0) == 0) return std::stol(line.substr(24));
    return -1;
}
// Waits (bounded) until the thread is asleep in the kernel; only sharpens a test.
bool wait_until_blocked(long tid) {
    const auto until = Clock::now() + 5s;
    while (Clock::now() < until && thread_state(tid) != 'S') std::this_thread::yield();
    return thread_state(tid) == 'S';
}
// Whether the thread has gone to sleep again after `before` switches.
bool asleep_again(long tid, long before) { return voluntary_switches(tid) > before && thread_state(tid) == 'S'; }
// CPU time a thread of this process has used.
std::chrono::nanoseconds cpu_time(pthread_t thread) {
    clockid_t clock{};
    timespec now{};
    if (::pthread_getcpuclockid(thread, &clock) != 0 || ::clock_gettime(clock, &now) != 0) return std::chrono::nanoseconds(-1);
    return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}
#endif

// serve() on a thread of its own, which it names (kernel id, pthread) for measurements.
// The destructor stops the server and waits for serve: a failed REQUIRE leaves nothing running.
class ServeThread {
public:
    ServeThread(greet::Server& server, greet::Server::Handler handler, greet::ServeOptions options = {})
        : server_(server), returned_(std::async(std::launch::async, [this, handler = std::move(handler), options = std::move(options)] {
#ifdef __linux__
              thread_ = ::pthread_self();
              tid_.store(this_thread_id());
#endif
              server_.serve(handler, options);
          })) {}
    ServeThread(const ServeThread&) = delete;
    ServeThread& operator=(const ServeThread&) = delete;
    ~ServeThread() {
        server_.stop();
        if (returned_.valid()) returned_.wait();
    }
    bool returned_within(std::chrono::milliseconds limit) { return returned_.wait_for(limit) == std::future_status::ready; }
    void get() { returned_.get(); } // rethrows what serve threw
#ifdef __linux__
    long tid() const { // 0 if the thread did not start within the bound
        const auto until = Clock::now() + 5s;
        while (tid_.load() == 0 && Clock::now() < until) std::this_thread::yield();
        return tid_.load();
    }
    pthread_t thread() const { return tid() ? thread_ : pthread_t{}; } // written before tid_
#endif

private:
    greet::Server& server_;
#ifdef __linux__
    pthread_t thread_{};
    std::atomic<long> tid_{0};
#endif
    std::future<void> returned_;
};


} // namespace

// ---------------------------------------------------------------------------
// (4) grace = milliseconds::max(): wait as long as the handlers take.

TEST_CASE("serve with grace = milliseconds::max() lets a busy handler finish after stop()", "[defects][serve]") {
    // Old: the grace is added to now() inside the condition variable's wait (UBSan: signed
    // overflow), the wait ends at once and the handler is cut off with ECANCELED.
    greet::Server server("127.0.0.1", 0);
    const std::uint16_t port = server.local_address().port;
    std::mutex mutex;
    std::vector<std::string> reported;
    greet::ServeOptions options;
    options.grace = forever;
    options.on_error = [&](const greet::Address&, const std::exception& e) {
        std::lock_guard<std::mutex> lock(mutex);
        reported.push_back(e.what());
    };
    ServeThread serving(server, [](greet::Client& client, const greet::Address&) {
        client.set_timeout(guard); // a failed test cannot leave this handler waiting for ever
        for (int turn = 0; turn < 100; ++turn) {
            const std::string line = client.recv_line();
            if (line == "bye") return;
            client.send_line(line);
        }
    }, options);
    greet::Client client; // declared after serving: closed first, which ends a waiting handler
    client.set_timeout(guard);
    client.connect("127.0.0.1", port);
    client.send_line("hello");
    REQUIRE(client.recv_line() == "hello"); // the handler runs

#ifdef __linux__
    // Once serve sleeps in accept() again, and after stop() has gone to sleep once more,
    // it has decided about the handler (old: cut it off; now: wait for it).
    const long tid = serving.tid();
    REQUIRE(tid != 0);
    CHECK(wait_until_blocked(tid));
    const long switches = voluntary_switches(tid);
#endif
    const auto stopped = Clock::now();
    server.stop();
#ifdef __linux__
    const auto until = Clock::now() + 5s;
    while (Clock::now() < until && !asleep_again(tid, switches) && !serving.returned_within(0ms)) std::this_thread::yield();
#endif
    std::string reply;
    const Outcome after_stop = outcome_of([&] {
        client.send_line("ping");
        reply = client.recv_line();
        client.send_line("bye");
    });
    CHECK(reply == "ping");
    INFO("after stop(): " << (after_stop.error ? after_stop.error->what() : after_stop.other));
    CHECK_FALSE(after_stop.error);
    CHECK(after_stop.other.empty());
    REQUIRE(serving.returned_within(guard));
    serving.get();
    const double latency = ms_since(stopped);
    std::string all;
    for (const std::string& text : reported) all += text + "\n";
    INFO("reported by serve: " << all);
    CHECK(reported.empty());
    WARN("grace = milliseconds::max(): serve returned " << latency << " ms after stop(), once the handler read \"bye\"");
}

TEST_CASE("a timeout of milliseconds::max() waits as long as it takes", "[defects][timeouts]") {
    // The 1.0.0 header already clamped these deadlines (only serve's grace overflowed):
    // this keeps the fix from breaking them. The waiter sleeps in the kernel before the peer
    // acts, so the wait really is computed from the long timeout.
#ifdef __linux__
    const long tid = this_thread_id();
#endif
    SECTION("Client::recv") {
        auto pair = guarded_pair();
        pair.client.set_timeout(forever);
        CHECK(pair.client.timeout() == forever);
        auto peer = test::start([&] {
#ifdef __linux__
            wait_until_blocked(tid);
#endif
            pair.accepted.send("late");
        });
        CHECK(test::recv_some(pair.client, 4) == "late");
        peer.get();
        pair.accepted.send("line\n");
        CHECK(pair.client.recv_line() == "line");
    }
    SECTION("Server::accept") {
        greet::Server server("127.0.0.1", 0);
        server.set_timeout(forever);
        CHECK(server.timeout() == forever);
        const std::uint16_t port = server.local_address().port;
        auto peer = test::start([&] {
#ifdef __linux__
            wait_until_blocked(tid);
#endif
            greet::Client client;
            client.set_timeout(guard);
            client.connect("127.0.0.1", port);
            return client; // kept open until accept() has taken it
        });
        const auto accepted = server.accept();
        greet::Client client = peer.get();
        CHECK(accepted.second == client.local_address());
    }
}

// ---------------------------------------------------------------------------
// (5) recv_exact / recv with max SIZE_MAX.

TEST_CASE("recv_exact(SIZE_MAX) throws not_enough_memory and loses no byte; recv(SIZE_MAX) returns what is there",
          "[defects][limits]") {
    // Old: both build a std::string of SIZE_MAX bytes: std::length_error, and recv_exact
    // had already taken the buffered bytes out of the buffer.
    constexpr std::size_t huge = std::numeric_limits<std::size_t>::max();
    auto pair = guarded_pair();
    SECTION("recv_exact with bytes buffered") {
        pair.accepted.send("first\nrest");
        REQUIRE(pair.client.recv_line() == "first"); // "rest" arrived in the same read: buffered
        const Outcome got = outcome_of([&] { pair.client.recv_exact(huge); });
        INFO(got.other);
        REQUIRE(got.error);
        INFO(got.error->what());
        CHECK(got.error->code() == std::errc::not_enough_memory);
        CHECK(test::recv_some(pair.client, 4) == "rest");
    }
    SECTION("recv_exact with nothing buffered") {
        const Outcome got = outcome_of([&] { pair.client.recv_exact(huge); });
        INFO(got.other);
        REQUIRE(got.error);
        CHECK(got.error->code() == std::errc::not_enough_memory);
        pair.accepted.send("next");
        CHECK(pair.client.recv_exact(4) == "next"); // the connection is still usable
    }
    SECTION("recv") {
        pair.accepted.send("xyz");
        std::string got;
        const Outcome error = outcome_of([&] {
            for (int turn = 0; turn < 3 && got.size() < 3; ++turn) got += pair.client.recv(huge);
        });
        INFO((error.error ? error.error->what() : error.other));
        CHECK_FALSE(error.error);
        CHECK(error.other.empty());
        CHECK(got == "xyz");
    }
}

// ---------------------------------------------------------------------------
// (6) stop() and errno.

TEST_CASE("Server::stop() leaves errno as it found it, on every call", "[defects][serve]") {
    // Old: from the second call on, shutdown() of the already shut listener sets ENOTCONN.
    greet::Server server("127.0.0.1", 0);
    SECTION("blocking accept (no timeout)") {}
    SECTION("with a timeout") { server.set_timeout(guard); }
    for (int call = 1; call <= 3; ++call) {
        errno = EDOM;
        server.stop();
        const int after = errno; // read before any other call can touch it
        INFO("call " << call << ": errno " << after << " (" << std::strerror(after) << ")");
        CHECK(after == EDOM);
    }
}

// ---------------------------------------------------------------------------
// (7) bound but never listened.

TEST_CASE("accept() and serve() on a server that was never listened throw invalid_argument", "[defects][serve]") {
    greet::Server server;
    server.bind("127.0.0.1", 0);
    SECTION("accept") {
        // Old: accept's own EINVAL, without saying what to do. On a helper thread: an
        // accept() that waited would end only through stop().
        auto accepting = test::start([&] { return outcome_of([&] { server.accept(); }); });
        const bool returned = accepting.wait_for(2s) == std::future_status::ready;
        if (!returned) server.stop();
        REQUIRE(accepting.wait_for(guard) == std::future_status::ready);
        const Outcome got = accepting.get();
        CHECK(returned);
        INFO(got.other);
        REQUIRE(got.error);
        INFO(got.error->what());
        CHECK(got.error->code() == std::errc::invalid_argument);
        CHECK(contains(got.error->what(), "listen() first"));
    }
    SECTION("serve") {
        // Old: serve reports accept's EINVAL ten times a second and never returns.
        std::atomic<int> reports{0};
        greet::ServeOptions options;
        options.on_error = [&](const greet::Address&, const std::exception&) { ++reports; };
        const auto start = Clock::now();
        auto serving = test::start([&] { return outcome_of([&] { server.serve([](greet::Client&, const greet::Address&) {}, options); }); });
        const bool returned = serving.wait_for(2s) == std::future_status::ready;
        const double elapsed = ms_since(start);
        if (!returned) server.stop(); // the old serve ends only so
        REQUIRE(serving.wait_for(guard) == std::future_status::ready);
        const Outcome got = serving.get();
        INFO("serve " << (returned ? "returned" : "was still running") << " after " << elapsed << " ms, " << reports.load()
                      << " errors reported");
        CHECK(returned);
        CHECK(reports.load() == 0);
        INFO(got.other);
        REQUIRE(got.error);
        INFO(got.error->what());
        CHECK(got.error->code() == std::errc::invalid_argument);
        CHECK(contains(got.error->what(), "listen() first"));
    }
}

// ---------------------------------------------------------------------------
// (8) host names holding NUL and control bytes.

TEST_CASE("a host name holding a NUL byte is shown printably, with the reason", "[defects][errors]") {
    // Old: the raw NUL went into what(), which ends at it: "connect 127.0.0.1".
    const std::string_view host("127.0.0.1\0x", 11);
    auto check = [](const std::optional<greet::ResolveError>& error) {
        REQUIRE(error);
        const std::string what = error->what();
        INFO(what);
        CHECK(contains(what, "127.0.0.1\\x00x"));
        CHECK(contains(what, "NUL"));
        CHECK_FALSE(has_control_byte(what));
    };
    SECTION("Client::connect") {
        greet::Client client;
        client.set_timeout(guard);
        check(test::thrown<greet::ResolveError>([&] { client.connect(host, 1); }));
    }
    SECTION("Server::bind") {
        greet::Server server;
        check(test::thrown<greet::ResolveError>([&] { server.bind(host, 0); }));
    }
    SECTION("Server's constructor") {
        check(test::thrown<greet::ResolveError>([&] { greet::Server server(host, 0); }));
    }
}

TEST_CASE("control bytes of user input are escaped as \\xNN in messages", "[defects][errors]") {
    // Old: the bytes went into the message raw (a terminal acts on ESC; a '\n' breaks log lines).
    SECTION("parse_port") {
        for (unsigned char byte : {0x01, 0x0A, 0x1B, 0x7F}) {
            const std::string text = "8" + std::string(1, static_cast<char>(byte)) + "0";
            const auto error = test::thrown([&] { greet::parse_port(text); });
            REQUIRE(error);
            const std::string what = error->what();
            INFO(what);
            CHECK(contains_escaped(what, "8", byte, "0"));
            CHECK_FALSE(has_control_byte(what));
        }
    }
    SECTION("a host name the resolver refuses") {
        greet::Client client;
        client.set_timeout(guard);
        const auto error = test::thrown<greet::ResolveError>([&] { client.connect("bad\x1b[2Jhost.invalid", 1); });
        REQUIRE(error);
        const std::string what = error->what();
        INFO(what);
        CHECK(contains_escaped(what, "bad", 0x1B, "[2Jhost.invalid"));
        CHECK_FALSE(has_control_byte(what));
    }
}

// ---------------------------------------------------------------------------
// (10) a host name that resolves to one address twice.

#ifdef __linux__
namespace {

constexpr int child_skip = 77;  // no privilege for a mount namespace here
constexpr int child_setup = 78; // the namespace works, but the name did not resolve twice

// The forked child: its own mount namespace, /etc/hosts naming one address twice, then
// a Server on that name and one message each way. It reports in its exit status and a
// line on `report`; no Catch macros (the child never returns to Catch).
int twice_child(const char* hosts_path, int report) noexcept {
    auto say = [&](int status, const std::string& text) {
        const ssize_t ignored = ::write(report, text.data(), text.size());
        (void)ignored;
        return status;
    };
    ::alarm(static_cast<unsigned>(guard.count() / 1000)); // a hung child dies, and the parent's waitpid returns
    if (::unshare(CLONE_NEWNS) != 0) return say(child_skip, std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno));
    // The kernel ignores source and type for these two; "none" rather than nullptr, as
    // valgrind reports a null type as an error.
    if (::mount("none", "/", "none", MS_REC | MS_PRIVATE, nullptr) != 0)
        return say(child_skip, std::string("mount / private: ") + std::strerror(errno));
    if (::mount(hosts_path, "/etc/hosts", "none", MS_BIND, nullptr) != 0)
        return say(child_skip, std::string("bind-mount over /etc/hosts: ") + std::strerror(errno));
    try {
        addrinfo hints{};
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* list = nullptr;
        int found = 0;
        if (::getaddrinfo("greet-twice.test", "1", &hints, &list) == 0)
            for (const addrinfo* ai = list; ai; ai = ai->ai_next) ++found;
        if (list) ::freeaddrinfo(list);
        if (found < 2) return say(child_setup, "greet-twice.test resolved to " + std::to_string(found) + " addresses, not 2");

        greet::Server server("greet-twice.test", 0);
        server.set_timeout(guard);
        greet::Client client;
        client.set_timeout(guard);
        client.connect("greet-twice.test", server.local_address().port);
        greet::Client accepted = server.accept().first;
        accepted.set_timeout(guard);
        client.send_message("twice");
        if (accepted.recv_message() != "twice") return say(2, "the server received other bytes");
        accepted.send_message("back");
        if (client.recv_message() != "back") return say(2, "the client received other bytes");
        return say(0, "served on " + server.local_address().to_string());
    } catch (const std::exception& e) {
        return say(1, e.what());
    }
}

} // namespace

TEST_CASE("a host name that resolves to one address twice makes a working Server", "[defects][resolve][linux]") {
    // Old: the second, identical address is bound again and listen() fails with EADDRINUSE.
    char path[] = "/tmp/greet-hosts-XXXXXX";
    const int file = ::mkstemp(path);
    REQUIRE(file >= 0);
    const std::string hosts = "127.0.0.1 greet-twice.test\n127.0.0.1 greet-twice.test\n";
    const bool written = ::write(file, hosts.data(), hosts.size()) == static_cast<ssize_t>(hosts.size());
    ::close(file);
    int pipe_ends[2];
    REQUIRE(::pipe2(pipe_ends, O_CLOEXEC) == 0);
    const pid_t child = written ? ::fork() : -1;
    if (child == 0) {
        ::close(pipe_ends[0]);
        ::_exit(twice_child(path, pipe_ends[1]));
    }
    ::close(pipe_ends[1]);
    std::string said;
    char chunk[256];
    for (int turn = 0; turn < 64; ++turn) { // ends when the child exits (its alarm bounds it)
        const ssize_t n = ::read(pipe_ends[0], chunk, sizeof chunk);
        if (n <= 0) break;
        said.append(chunk, static_cast<std::size_t>(n));
    }
    ::close(pipe_ends[0]);
    int status = 0;
    const bool waited = child > 0 && ::waitpid(child, &status, 0) == child;
    ::unlink(path);
    REQUIRE(written);
    REQUIRE(waited);
    INFO("child: " << said);
    REQUIRE(WIFEXITED(status)); // not killed (by its alarm, say)
    const int code = WEXITSTATUS(status);
    if (code == child_skip || code == child_setup) GREET_TEST_SKIP("no mount namespace to fake /etc/hosts in: " << said);
    CHECK(code == 0);
}
#endif

// ---------------------------------------------------------------------------
// (11) Server("", 0) names the real port.

TEST_CASE("a Server on every interface with port 0 names its real port in messages", "[defects][errors]") {
    // Old: the endpoint stayed "*:0" (the dual-stack socket ended the bind loop before the port was read).
    greet::Server server("", 0);
    server.set_timeout(1ms);
    const std::string port = std::to_string(server.local_address().port);
    const auto error = test::thrown<greet::TimeoutError>([&] { server.accept(); });
    REQUIRE(error);
    const std::string what = error->what();
    INFO(what);
    CHECK(contains(what, ":" + port + ": "));
    CHECK_FALSE(contains(what, "*:0"));
}

// ---------------------------------------------------------------------------
// (12) an idle serve() sleeps in the OS.

#ifdef __linux__
TEST_CASE("an idle serve() sleeps in the OS whatever timeout accept() has", "[defects][serve][linux]") {
    // Old: serve retries accept() at accept's timeout: with 0 ms a core spins, with 1 ms
    // the thread wakes a thousand times a second.
    for (const auto timeout : {0ms, 1ms}) {
        INFO("accept timeout " << timeout.count() << " ms");
        greet::Server server("127.0.0.1", 0);
        server.set_timeout(timeout);
        ServeThread serving(server, [](greet::Client&, const greet::Address&) {});
        const long tid = serving.tid();
        REQUIRE(tid != 0);
        const pthread_t thread = serving.thread();
        const auto cpu_before = cpu_time(thread);
        const long switches_before = voluntary_switches(tid);
        REQUIRE(cpu_before.count() >= 0);
        REQUIRE(switches_before >= 0);
        std::this_thread::sleep_for(300ms); // the measured window, not a synchronisation
        const double cpu_ms = std::chrono::duration<double, std::milli>(cpu_time(thread) - cpu_before).count();
        const long switches = voluntary_switches(tid) - switches_before;
        server.stop();
        CHECK(serving.returned_within(guard));
        WARN("idle serve(), accept timeout " << timeout.count() << " ms, over 300 ms: " << cpu_ms << " ms CPU, " << switches
                                             << " voluntary context switches");
        CHECK(cpu_ms < 50);
        CHECK(switches < 30);
    }
}
#endif

// ---------------------------------------------------------------------------
// (13) every receive ends within its timeout however the bytes arrive.

namespace {

// A peer that sends and never completes a unit: `whole` at once, `trickled` one byte at a
// time, then 'x' bytes: one every 2 to 5 ms (paced), or as fast as the reader takes them
// (flood). Bounded at 3 s; stops when destroyed.
class Trickle {
public:
    enum Pace { paced, flood };
    Trickle(greet::Client& peer, Pace pace, std::string whole = {}, std::string trickled = {})
        : done_(test::start([this, &peer, pace, whole = std::move(whole), trickled = std::move(trickled)] {
              const auto until = Clock::now() + 3s;
              peer.set_timeout(20ms); // a send blocked on a full socket sees stop_ soon
              if (!whole.empty()) peer.send(whole);
              const std::string block(pace == flood ? 4096 : 1, 'x');
              for (std::size_t i = 0; !stop_.load() && Clock::now() < until; ++i) {
                  try {
                      peer.send(i < trickled.size() ? std::string_view(&trickled[i], 1) : std::string_view(block));
                  } catch (const greet::TimeoutError&) { // full: the reader is slower
                      continue;
                  }
                  if (pace == paced) std::this_thread::sleep_for(std::chrono::milliseconds(2 + i % 4)); // the pacing under test
              }
          })) {}
    ~Trickle() {
        stop_.store(true);
        done_.wait();
    }

private:
    std::atomic<bool> stop_{false};
    std::future<void> done_;
};

} // namespace

TEST_CASE("every receive ends within its timeout however the bytes arrive", "[defects][timeouts]") {
    // A paced trickle: each byte comes before the wait for it would time out. A flood read in
    // chaos mode: the socket always holds bytes, so the reader need never wait. Old: the
    // recv_line family checked its deadline only when a wait timed out, so under the flood
    // it ran until the peer stopped (3 s); the others already held their deadline.
    struct Receive {
        const char* name;
        std::function<void(greet::Client&, std::size_t)> call; // n: the size of the unit that never completes
        bool header_whole, header_trickled;                     // recv_message: how its header arrives
    };
    std::vector<char> into; // recv_exact_into's memory, allocated outside the timed call
    const std::size_t line_max = std::size_t(256) << 20;
    const std::vector<Receive> receives = {
        // The lines' max_bytes is one the flood cannot reach in 3 s: the old overrun shows as time, not EMSGSIZE.
        {"recv_line()", [&](greet::Client& c, std::size_t) { c.recv_line(line_max); }, false, false},
        {"recv_line(std::string&)", [&](greet::Client& c, std::size_t) { std::string line; c.recv_line(line, line_max); }, false, false},
        {"recv_line_view()", [&](greet::Client& c, std::size_t) { c.recv_line_view(line_max); }, false, false},
        {"recv_exact(n)", [](greet::Client& c, std::size_t n) { c.recv_exact(n); }, false, false},
        {"recv_exact_into(n)", [&](greet::Client& c, std::size_t n) { c.recv_exact_into(into.data(), n); }, false, false},
        {"recv_message(), header announcing n", [](greet::Client& c, std::size_t n) { c.recv_message(n); }, true, false},
        {"recv_message(), trickled header announcing n", [](greet::Client& c, std::size_t n) { c.recv_message(n); }, false, true},
    };
    for (const Trickle::Pace pace : {Trickle::paced, Trickle::flood}) {
        // The flood moves megabytes a second even in chaos mode: a unit it could complete
        // within the timeout would prove nothing.
        const std::size_t n = pace == Trickle::paced ? std::size_t(1) << 20 : std::size_t(16) << 20;
        into.resize(n);
        const char* pace_name = pace == Trickle::paced ? "paced trickle" : "flood, chaos mode";
        for (const Receive& receive : receives) {
            INFO(receive.name << " with n = " << n << ", " << pace_name);
            auto pair = guarded_pair();
            if (pace == Trickle::flood) {
                pair.client.set_chaos(42); // 1 to 16 bytes per OS receive: the reader is the slow side
                // What the peer's socket holds when it stops must drain soon (old: in chaos-sized reads).
                int small = 64 * 1024;
                ::setsockopt(pair.accepted.native_handle(), SOL_SOCKET, SO_SNDBUF, reinterpret_cast<const char*>(&small), sizeof small);
            }
            pair.client.set_timeout(100ms);
            const std::string head = header(static_cast<std::uint32_t>(n));
            std::optional<greet::TimeoutError> error;
            double elapsed = 0;
            {
                Trickle peer(pair.accepted, pace, receive.header_whole ? head : "", receive.header_trickled ? head : "");
                const auto start = Clock::now();
                const Outcome got = outcome_of([&] {
                    error = test::thrown<greet::TimeoutError>([&] { receive.call(pair.client, n); });
                });
                elapsed = ms_since(start);
                INFO((got.error ? got.error->what() : got.other));
                CHECK_FALSE(got.error);
                CHECK(got.other.empty());
            }
            WARN(receive.name << ", " << pace_name << ": " << (error ? "TimeoutError" : "no TimeoutError") << " after " << elapsed << " ms");
            CHECK(error);
            CHECK(elapsed < 100 + 400);
        }
    }
}


// ---------------------------------------------------------------------------
// (14) the cost of a receive follows the bytes received.

TEST_CASE("recv(max_bytes) costs what it receives, not max_bytes", "[defects][limits]") {
    auto pair = guarded_pair();
    SECTION("64 one-byte results of recv(1 MiB) hold little memory") {
        // Old: each result keeps the 1 MiB it was allocated with (64 MiB for 64 bytes).
        std::vector<std::string> kept;
        std::size_t largest = 0, total = 0;
        for (int i = 0; i < 64; ++i) {
            pair.accepted.send("b");
            kept.push_back(pair.client.recv(std::size_t(1) << 20));
            CHECK(kept.back() == "b");
            largest = std::max(largest, kept.back().capacity());
            total += kept.back().capacity();
        }
        WARN("64 one-byte results of recv(1 MiB): largest capacity " << largest << " bytes, " << total << " in all");
        CHECK(largest < 4096);
    }
#ifndef _WIN32
    SECTION("recv(16 MiB) of one byte does not zero-fill 16 MiB") {
        // Old: each call allocates and zeroes 16 MiB. Measured as this thread's CPU time for
        // 200 one-byte round trips, against recv(16); the ratio bound is generous.
        auto cpu_of = [&](std::size_t max_bytes) {
            timespec before{}, after{};
            ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &before);
            for (int i = 0; i < 200; ++i) {
                pair.accepted.send("b");
                if (pair.client.recv(max_bytes) != "b") return -1.0;
            }
            ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &after);
            return (double(after.tv_sec - before.tv_sec) * 1e3) + double(after.tv_nsec - before.tv_nsec) / 1e6;
        };
        const double small = cpu_of(16);
        const double large = cpu_of(std::size_t(16) << 20);
        REQUIRE(small >= 0);
        REQUIRE(large >= 0);
        const double ratio = large / std::max(small, 0.001);
        WARN("200 one-byte receives: recv(16) " << small << " ms CPU, recv(16 MiB) " << large << " ms CPU, ratio " << ratio);
        CHECK(ratio < 20);
    }
#endif
}

// ---------------------------------------------------------------------------
// (15) chaos mode with one thread sending and another receiving.

TEST_CASE("chaos mode: one thread sends while another receives on the same Client", "[defects][threads]") {
    // The bytes were right before too: the old header's data race on the chaos state
    // shows only under ThreadSanitizer (clang++ -fsanitize=thread), which reports it.
    auto pair = guarded_pair();
    pair.client.set_chaos(7);
    const std::string data = test::pattern(std::size_t{64} * 1024, 15);
    auto echo = test::start([&] {
        std::size_t echoed = 0;
        for (int turn = 0; turn < 1 << 20 && echoed < data.size(); ++turn) {
            const std::string part = pair.accepted.recv(data.size() - echoed);
            if (part.empty()) break;
            pair.accepted.send(part);
            echoed += part.size();
        }
        return echoed;
    });
    auto sender = test::start([&] { return pair.client.send(data); });
    auto receiver = test::start([&] { return pair.client.recv_exact(data.size()); });
    REQUIRE(receiver.wait_for(2 * guard) == std::future_status::ready);
    CHECK(receiver.get() == data);
    CHECK(sender.get() == data.size());
    CHECK(echo.get() == data.size());
}

// ---------------------------------------------------------------------------
// (16) lines: max_bytes counts the line, not its end; send_line refuses a trailing '\r'.

TEST_CASE("recv_line's max_bytes counts the line's own bytes, never its \"\\r\\n\" or \"\\n\"", "[defects][framing]") {
    struct Kind {
        const char* name;
        std::function<std::string(greet::Client&, std::size_t)> call;
    };
    std::string reused;
    const std::vector<Kind> kinds = {
        {"recv_line(max)", [](greet::Client& c, std::size_t max) { return c.recv_line(max); }},
        {"recv_line(line, max)", [&](greet::Client& c, std::size_t max) {
             c.recv_line(reused, max);
             return reused;
         }},
        {"recv_line_view(max)", [](greet::Client& c, std::size_t max) { return std::string(c.recv_line_view(max)); }},
    };
    for (const Kind& kind : kinds) {
        for (const bool buffered : {false, true}) {
            INFO(kind.name << (buffered ? ", lines already buffered" : ", lines still in the kernel"));
            auto pair = guarded_pair();
            const std::string lines = "abc\r\nabc\nabcd\n";
            if (buffered) { // one send: the first recv_line reads it all into the buffer
                pair.accepted.send("x\n" + lines);
                REQUIRE(pair.client.recv_line() == "x");
            } else {
                pair.accepted.send(lines);
            }
            std::string line;
            const Outcome crlf = outcome_of([&] { line = kind.call(pair.client, 3); }); // old: EMSGSIZE
            INFO((crlf.error ? crlf.error->what() : crlf.other));
            CHECK_FALSE(crlf.error);
            REQUIRE(crlf.other.empty());
            if (crlf.error) continue; // old: the bytes that follow are not where the next checks expect them
            CHECK(line == "abc");
            CHECK(kind.call(pair.client, 3) == "abc");
            const auto too_long = test::thrown([&] { kind.call(pair.client, 3); });
            REQUIRE(too_long);
            CHECK(too_long->code() == std::errc::message_size);
            CHECK(test::recv_some(pair.client, 5) == "abcd\n"); // refused, and still unread
        }
    }
#ifdef __linux__
    SECTION("a \"\\r\" that arrives before its \"\\n\"") {
        // The reader has "abc\r" (4 bytes for max 3) and must wait for what follows.
        auto pair = guarded_pair();
        const long tid = this_thread_id();
        pair.accepted.send("abc\r");
        auto rest = test::start([&] {
            wait_until_blocked(tid);
            pair.accepted.send("\n");
        });
        std::string line;
        const Outcome got = outcome_of([&] { line = pair.client.recv_line(3); });
        rest.get();
        INFO((got.error ? got.error->what() : got.other));
        CHECK_FALSE(got.error);
        CHECK(got.other.empty());
        CHECK(line == "abc");
    }
#endif
}

TEST_CASE("send_line refuses a line ending in '\\r' and sends nothing", "[defects][framing]") {
    // Old: "a\r" went out as "a\r\n", which recv_line returns as "a".
    auto pair = guarded_pair();
    const auto error = test::thrown([&] { pair.client.send_line("a\r"); });
    REQUIRE(error);
    INFO(error->what());
    CHECK(error->code() == std::errc::invalid_argument);
    pair.client.send_line("next");
    CHECK(pair.accepted.recv_line() == "next"); // the first line the peer sees
}
