// Helpers shared by the socket tests: loopback pairs, bounded helper threads, error capture.
#pragma once
#include "catch.hpp"
#include "greet_socket.hpp"
#ifdef GREET_TEST_CATCH3
#include <catch2/generators/catch_generators.hpp> // GENERATE (v2 has it in catch.hpp)
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#ifndef _WIN32
#include <cstdlib> // mkdtemp
#endif
#ifdef __linux__
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <sstream>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace test {

using namespace std::chrono_literals;

// Every blocking call that could wait on a failed test gets this bound, so a failure
// ends the test instead of hanging it.
constexpr std::chrono::milliseconds guard = 10s;

// Whether this build runs under ThreadSanitizer (GCC defines __SANITIZE_THREAD__, clang
// answers __has_feature). It starts a thread of its own during the run, so a test that
// counts the process's threads cannot expect an exact number under it.
#if defined(__SANITIZE_THREAD__)
constexpr bool under_thread_sanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool under_thread_sanitizer = true;
#else
constexpr bool under_thread_sanitizer = false;
#endif
#else
constexpr bool under_thread_sanitizer = false;
#endif

// Whether GREET_SOCKET_CHAOS is set for the run: every send and receive then moves 1 to 16
// bytes, so a test that moves megabytes between many threads moves less, to stay in its guard.
inline bool chaos_mode() {
    const char* seed = std::getenv("GREET_SOCKET_CHAOS");
    return seed != nullptr && *seed != '\0';
}

// GREET_TEST_SKIP(reason): this machine cannot show what the test is about (no IPv6
// loopback, say). It ends the test, which the run reports as skipped, never as passed:
// Catch2 v3 through SKIP. v2 has no SKIP: the macro warns and counts the skip, and
// tests/main.cpp turns a run with a skip and no failure into ctest's skip code.
#ifdef GREET_TEST_CATCH3
#define GREET_TEST_SKIP(reason) SKIP(reason)
#else
// NOLINTBEGIN(bugprone-macro-parentheses): reason may be a << chain, as in WARN itself
#define GREET_TEST_SKIP(reason)      \
    do {                             \
        WARN("skipped: " << reason); \
        ++test::skipped;             \
        return;                      \
    } while (false)
// NOLINTEND(bugprone-macro-parentheses)
#endif
inline int skipped = 0; // GREET_TEST_SKIPs so far in this process (Catch2 v2; test threads only)

// Runs f and returns the exception of type E it threw; nullopt when it threw nothing.
// Any other exception escapes, and Catch reports it as a failure.
template <class E = greet::Error, class F>
std::optional<E> thrown(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e;
    }
    return std::nullopt;
}

inline bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }
inline bool starts_with(std::string_view text, std::string_view part) { return text.substr(0, part.size()) == part; }
inline bool ends_with(std::string_view text, std::string_view part) {
    return text.size() >= part.size() && text.substr(text.size() - part.size()) == part;
}

#ifndef _WIN32
// A fresh private folder under /tmp (mkdtemp: mode 0700), removed with all it holds when
// the test leaves its scope. Short on purpose: a Unix-domain path has at most 107 bytes.
class TempDir {
public:
    TempDir() {
        char name[] = "/tmp/greet-test-XXXXXX";
        if (::mkdtemp(name) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = name;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::permissions(path_, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ignored);
        std::filesystem::remove_all(path_, ignored);
    }
    const std::string& path() const { return path_; }
    std::string operator/(std::string_view name) const { return path_ + "/" + std::string(name); }

private:
    std::string path_;
};
#endif

// What a connected pair runs over. The families of tests that do not depend on TCP
// (addresses, ports, segments) run over both: GREET_TEST_TRANSPORT() in a TEST_CASE
// (before any SECTION) runs the case once per transport.
enum class Transport { tcp, unix_domain };
inline const char* name(Transport transport) { return transport == Transport::tcp ? "TCP loopback" : "Unix-domain socket"; }
inline std::ostream& operator<<(std::ostream& out, Transport transport) { return out << name(transport); }
#ifdef _WIN32
// Windows has AF_UNIX since 1803 only (and Wine's support varies): TCP there.
#define GREET_TEST_TRANSPORT() GENERATE(test::Transport::tcp)
#else
#define GREET_TEST_TRANSPORT() GENERATE(test::Transport::tcp, test::Transport::unix_domain)
#endif

// Both ends of one connection, made in one thread: the kernel completes the handshake
// before accept() runs, so no helper thread is needed.
struct Pair {
    greet::Client client;   // the side that connected
    greet::Client accepted; // the server's side
    greet::Address accepted_from;
    std::string endpoint; // what the client's error messages name: "127.0.0.1:port" or the socket's path
};
inline Pair connect_pair(const std::string& host = "127.0.0.1") {
    greet::Server server(host, 0);
    server.set_timeout(guard);
    Pair pair;
    pair.client.set_timeout(guard);
    pair.client.connect(host, server.local_address().port);
    pair.client.set_timeout(std::nullopt);
    auto accepted = server.accept();
    pair.accepted = std::move(accepted.first);
    pair.accepted_from = accepted.second;
    pair.endpoint = pair.client.peer_address().to_string();
    return pair;
}
// The same over a Unix-domain socket in a private folder, gone (with the listener) once
// the pair is made: a connected pair needs neither.
inline Pair connect_pair(Transport transport) {
    if (transport == Transport::tcp) return connect_pair();
#ifdef _WIN32
    throw std::logic_error("no Unix-domain pairs in the Windows tests");
#else
    const TempDir dir;
    const std::string path = dir / "pair.sock";
    greet::Server server;
    server.bind_unix(path);
    server.set_timeout(guard);
    Pair pair;
    pair.client.set_timeout(guard);
    pair.client.connect_unix(path);
    pair.client.set_timeout(std::nullopt);
    auto accepted = server.accept();
    pair.accepted = std::move(accepted.first);
    pair.accepted_from = accepted.second;
    pair.endpoint = path;
    return pair;
#endif
}

// A connected pair with the guard timeout on both ends.
inline Pair guarded_pair(Transport transport = Transport::tcp) {
    Pair pair = connect_pair(transport);
    pair.client.set_timeout(guard);
    pair.accepted.set_timeout(guard);
    return pair;
}

// Stops a Server when the test leaves its scope, so that a failed REQUIRE never leaves a
// serve loop running (and the thread that waits for it waiting for ever).
struct StopOnExit {
    explicit StopOnExit(greet::Server& s) : server(s) {}
    StopOnExit(const StopOnExit&) = delete;
    StopOnExit& operator=(const StopOnExit&) = delete;
    ~StopOnExit() { server.stop(); }
    greet::Server& server;
};

// send_message's 4-byte big-endian length.
inline std::string header(std::uint32_t n) {
    const char bytes[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n)};
    return std::string(bytes, 4);
}

// Whether this machine has an IPv6 loopback to bind.
inline bool has_ipv6_loopback() {
    try {
        greet::Server probe("::1", 0);
        return true;
    } catch (const greet::Error&) {
        return false;
    }
}

// A deterministic byte pattern with no short period, different for each seed.
inline std::string pattern(std::size_t size, std::uint32_t seed = 1) {
    std::string out(size, '\0');
    std::uint32_t x = seed * 2654435761u + 12345u;
    for (char& c : out) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c = static_cast<char>(x >> 24);
    }
    return out;
}

// Everything until the peer closes; at most limit bytes, so a stream that never ends fails.
inline std::string recv_all(greet::Client& client, std::size_t limit = std::size_t(1) << 26) {
    std::string out;
    for (std::size_t turn = 0; turn <= limit; ++turn) {
        const std::string part = client.recv(65536);
        if (part.empty()) return out;
        out += part;
        if (out.size() > limit) break;
    }
    // An exception, not FAIL: helper threads call this too, and Catch's macros are not thread-safe.
    throw std::runtime_error("the stream did not end within " + std::to_string(limit) + " bytes");
}

// Exactly n bytes through plain recv calls (which may each return fewer).
inline std::string recv_some(greet::Client& client, std::size_t n) {
    std::string out;
    for (std::size_t turn = 0; turn < n && out.size() < n; ++turn) {
        const std::string part = client.recv(n - out.size());
        if (part.empty()) break;
        out += part;
    }
    return out;
}

#ifdef __linux__
// The kernel's id of the calling thread, as /proc/self/task/<id> names it.
inline long this_thread_id() { return static_cast<long>(::syscall(SYS_gettid)); }

// The state letter of one of this process's threads ('S' while asleep in a system call).
inline char thread_state(long tid) {
    std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const std::size_t after_name = text.rfind(')');
    return after_name != std::string::npos && after_name + 2 < text.size() ? text[after_name + 2] : '?';
}

// How many descriptors this process has open (Linux: the entries of /proc/self/fd).
// Called from the test's own thread: it REQUIREs that the directory opens.
inline std::size_t open_descriptors() {
    std::size_t count = 0;
    DIR* dir = ::opendir("/proc/self/fd");
    REQUIRE(dir != nullptr);
    for (dirent* entry = ::readdir(dir); entry != nullptr; entry = ::readdir(dir))
        if (entry->d_name[0] != '.') ++count;
    ::closedir(dir);
    return count - 1; // the directory stream's own
}
// The accept queue of the 127.0.0.1 listener on `port`: connections the kernel has
// completed that accept() has not taken (for a listening socket, /proc/net/tcp's
// rx_queue column). nullopt when nothing listens there.
inline std::optional<unsigned long> accept_queue(std::uint16_t port) {
    std::ifstream table("/proc/net/tcp");
    std::string line;
    char wanted[16];
    std::snprintf(wanted, sizeof wanted, "0100007F:%04X", static_cast<unsigned>(port));
    std::getline(table, line); // the column names
    while (std::getline(table, line)) {
        std::istringstream fields(line);
        std::string slot, local, remote, state, queues;
        fields >> slot >> local >> remote >> state >> queues;
        if (state != "0A") continue; // not a listener
        if (local == wanted) return std::stoul(queues.substr(queues.find(':') + 1), nullptr, 16);
    }
    return std::nullopt;
}
inline bool accept_queue_reaches(std::uint16_t port, std::optional<unsigned long> expected) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (accept_queue(port) != expected && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    return accept_queue(port) == expected;
}
#endif

inline double ms_between(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
    return std::chrono::duration<double, std::milli>(to - from).count();
}

// A count that threads change and a test waits on, with a bound.
class Counter {
public:
    void add(int n = 1) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            value_ += n;
            peak_ = std::max(peak_, value_);
        }
        changed_.notify_all();
    }
    int value() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return value_;
    }
    int peak() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return peak_;
    }
    // True once the value is `target` (or, with wait_at_least, at least `target`); false
    // when it did not get there within `limit`.
    bool wait_for(int target, std::chrono::milliseconds limit = guard) {
        return wait_until_true(limit, [&] { return value_ == target; });
    }
    bool wait_at_least(int target, std::chrono::milliseconds limit = guard) {
        return wait_until_true(limit, [&] { return value_ >= target; });
    }

private:
    template <class P> bool wait_until_true(std::chrono::milliseconds limit, P done) {
        std::unique_lock<std::mutex> lock(mutex_);
        return changed_.wait_for(lock, limit, done);
    }
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    int value_ = 0;
    int peak_ = 0;
};

// A serve loop on a thread of its own: `run` calls serve, serve_messages or serve_lines.
// The destructor stops the server and joins, so a failed REQUIRE cannot leave it running.
class Serving {
public:
    using Clock = std::chrono::steady_clock;
    Serving(greet::Server& server, std::function<void(greet::Server&)> run)
        : server_(server), future_(promise_.get_future()) {
        thread_ = std::thread([this, run = std::move(run)] {
#ifdef __linux__
            thread_id_.store(this_thread_id());
#endif
            try {
                run(server_);
                promise_.set_value(Clock::now());
            } catch (...) {
                promise_.set_exception(std::current_exception());
            }
        });
    }
    Serving(const Serving&) = delete;
    Serving& operator=(const Serving&) = delete;
    ~Serving() {
        server_.stop();
        if (thread_.joinable()) thread_.join();
    }
    // When the serve call returned, or nullopt if it did not within `limit`. Rethrows what it threw.
    std::optional<Clock::time_point> wait_returned(std::chrono::milliseconds limit = guard) {
        if (returned_ || !future_.valid()) return returned_; // !valid: get() has rethrown already
        if (future_.wait_for(limit) != std::future_status::ready) return std::nullopt;
        returned_ = future_.get();
        return returned_;
    }
    // stop(), then wait (bounded) for the serve call to return.
    bool stop_and_wait(std::chrono::milliseconds limit = guard) {
        server_.stop();
        return wait_returned(limit).has_value();
    }
    long thread_id() const { return thread_id_.load(); } // the kernel's (Linux; 0 elsewhere)

private:
    greet::Server& server_;
    std::atomic<long> thread_id_{0};
    std::promise<Clock::time_point> promise_;
    std::future<Clock::time_point> future_;
    std::optional<Clock::time_point> returned_;
    std::thread thread_; // last: it starts once the members it uses exist
};

// A helper thread; its result (or exception) comes back through get(). The destructor
// joins, and every blocking call inside is bounded by guard, so a failure cannot hang.
template <class F>
auto start(F f) {
    return std::async(std::launch::async, std::move(f));
}

} // namespace test
