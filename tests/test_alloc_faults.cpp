// Running out of memory, one allocation at a time. This executable replaces the global
// operator new and delete so that a test can make exactly the n-th allocation of one
// chosen thread throw std::bad_alloc (one shot; every other allocation succeeds), and
// checks that the library turns the failure into a greet::Error or an on_error report,
// keeps serving, and loses no byte. A thread limit from the OS is checked the same way.
#include "catch.hpp"
#include "greet_socket.hpp"
#include "support.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <future>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#ifdef __linux__
#include <cerrno>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
extern char** environ;
#endif

using namespace std::chrono_literals;
using test::contains;
using test::guard;

// ---------------------------------------------------------------------------
// The failing allocator. ThreadSanitizer's runtime defines operator new and delete
// itself (the linker refuses a second definition): under it the tests that need the
// allocator skip.
#if defined(__SANITIZE_THREAD__)
#define GREET_TEST_REPLACES_NEW 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GREET_TEST_REPLACES_NEW 0
#endif
#endif
#ifndef GREET_TEST_REPLACES_NEW
#define GREET_TEST_REPLACES_NEW 1
#endif

namespace fault {
constexpr bool available = GREET_TEST_REPLACES_NEW;
namespace {

// A thread is named by the address of a thread_local: distinct among live threads, and
// readable inside operator new without allocating or calling the OS.
thread_local char thread_tag;

std::atomic<const void*> target{nullptr};
// 0: disarmed; n > 0: the n-th allocation on `target` from now fails; -1: it has failed.
std::atomic<long> countdown{0};
std::atomic<long> failures{0};

#if GREET_TEST_REPLACES_NEW
bool should_fail() noexcept {
    if (target.load(std::memory_order_relaxed) != &thread_tag) return false;
    long left = countdown.load();
    while (left > 0) {
        const long next = left == 1 ? -1 : left - 1;
        if (countdown.compare_exchange_weak(left, next)) {
            if (next != -1) return false;
            failures.fetch_add(1);
            return true;
        }
    }
    return false;
}

void* allocate(std::size_t size, std::size_t alignment = 0) noexcept {
    if (should_fail()) return nullptr;
    if (size == 0) size = 1; // a unique pointer even for zero bytes
    if (alignment <= alignof(std::max_align_t)) return std::malloc(size);
#ifdef _WIN32
    return nullptr; // never asked: the over-aligned forms are not replaced there (see below)
#else
    void* p = nullptr;
    return ::posix_memalign(&p, std::max(alignment, sizeof(void*)), size) == 0 ? p : nullptr;
#endif
}
void* allocate_or_throw(std::size_t size, std::size_t alignment = 0) {
    void* p = allocate(size, alignment);
    if (p == nullptr) throw std::bad_alloc();
    return p;
}
#endif

} // namespace

const void* this_thread() noexcept { return &thread_tag; }
// Makes the n-th allocation (n >= 1) that `thread` makes from now on fail, once.
void arm(const void* thread, long n) noexcept {
    countdown.store(0);
    target.store(thread);
    countdown.store(n);
}
void arm_this_thread(long n) noexcept { arm(this_thread(), n); }
// Disarms; true when the armed allocation failed.
bool disarm() noexcept { return countdown.exchange(0) == -1; }
long count() noexcept { return failures.load(); }

} // namespace fault

#if GREET_TEST_REPLACES_NEW
void* operator new(std::size_t size) { return fault::allocate_or_throw(size); }
void* operator new[](std::size_t size) { return fault::allocate_or_throw(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return fault::allocate(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return fault::allocate(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
// Over-aligned forms: Windows has no aligned allocation that free() releases, so there
// they stay the runtime's own (which pair among themselves).
#ifndef _WIN32
void* operator new(std::size_t size, std::align_val_t a) { return fault::allocate_or_throw(size, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t size, std::align_val_t a) { return fault::allocate_or_throw(size, static_cast<std::size_t>(a)); }
void* operator new(std::size_t size, std::align_val_t a, const std::nothrow_t&) noexcept {
    return fault::allocate(size, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t size, std::align_val_t a, const std::nothrow_t&) noexcept {
    return fault::allocate(size, static_cast<std::size_t>(a));
}
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
#endif
#endif

namespace {

std::string lowercase(std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

// What a call threw, in words; "" when it threw nothing.
std::string describe(const std::exception_ptr& thrown) {
    if (!thrown) return "";
    try {
        std::rethrow_exception(thrown);
    } catch (const std::exception& e) {
        return std::string(typeid(e).name()) + ": " + e.what();
    } catch (...) {
        return "something that is not a std::exception";
    }
}

// The greet::Error a call threw, if that is what it threw.
std::optional<greet::Error> as_error(const std::exception_ptr& thrown) {
    if (!thrown) return std::nullopt;
    try {
        std::rethrow_exception(thrown);
    } catch (const greet::Error& e) {
        return e;
    } catch (...) {
        return std::nullopt;
    }
}

// What serve's on_error was called with: the peer it names and the error's what().
struct Report {
    std::string peer;
    std::string what;
};
// Reports from serve's on_error, which runs on serve's threads.
class Reports {
public:
    void add(Report report) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            reports_.push_back(std::move(report));
        }
        changed_.notify_all();
    }
    // The reports so far, once there is at least one (or the guard has passed).
    std::vector<Report> wait_any() {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait_for(lock, guard, [&] { return !reports_.empty(); });
        return reports_;
    }
    std::vector<Report> take() {
        std::lock_guard<std::mutex> lock(mutex_);
        return std::exchange(reports_, {});
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<Report> reports_;
};

greet::Client connect_to(std::uint16_t port) {
    greet::Client client;
    client.set_timeout(guard);
    client.connect("127.0.0.1", port);
    return client;
}

// The server's way of closing a client it refused: "" (a FIN) or ECONNRESET.
bool closed_by_server(greet::Client& client) {
    try {
        return client.recv(100).empty();
    } catch (const greet::Error& e) {
        return e.code() == std::errc::connection_reset;
    }
}

// A client being served: its handler echoes each line.
bool echoes(greet::Client& client, const std::string& line) {
    client.send_line(line);
    return client.recv_line() == line;
}
// A new client the server serves: the handler's greeting, then an echo.
bool served(greet::Client& client, const std::string& line) { return client.recv_line() == "hello" && echoes(client, line); }

// The one report of a client closed for want of memory (or of a thread): it names the
// client and the serve loop, `op`.
void check_report(Reports& reports, const std::string& client, const char* op) {
    const std::vector<Report> texts = reports.wait_any();
    REQUIRE(texts.size() == 1);
    const Report& report = texts.front();
    INFO("on_error(" << report.peer << ", \"" << report.what << "\")");
    CHECK(report.peer == client);
    CHECK(contains(report.what, op));
    CHECK(contains(report.what, client));
    const std::string lower = lowercase(report.what);
    CHECK((contains(lower, "memory") || contains(lower, "thread")));
}
// After the failure number n: the client served before, and a client after, are served as
// if nothing happened (the later one stays connected, as its close is the server's work too).
template <class Served, class ServedNew>
void check_still_serving(Served served, ServedNew served_new, greet::Client& before, std::vector<greet::Client>& after,
                         std::uint16_t port, long n) {
    CHECK(served(before, "before, after failure " + std::to_string(n)));
    after.push_back(connect_to(port));
    CHECK(served_new(after.back(), "later " + std::to_string(n)));
}
// The end of a run: some allocation failed, a client then got through, nothing more was
// reported, and the serve loop ends when stopped.
void check_end(bool got_through, int failures_seen, Reports& reports, test::Serving& serving) {
    CHECK(got_through);
    CHECK(failures_seen > 0);
    CHECK(reports.take().empty());
    REQUIRE(serving.stop_and_wait());
}
// What a client the server closed saw: ClosedError (a FIN), ECONNRESET, or EPIPE when it was
// still sending (in chaos mode a request arrives in pieces), not a time-out.
void check_closed(const std::exception_ptr& thrown) {
    const auto error = as_error(thrown);
    REQUIRE(error);
    CHECK((error->code() == greet::errc::peer_closed || error->code() == std::errc::connection_reset ||
           error->code() == std::errc::broken_pipe));
}

} // namespace

TEST_CASE("serve() survives an allocation failure in its own bookkeeping", "[alloc_faults][serve]") {
    if (!fault::available) GREET_TEST_SKIP("operator new cannot be replaced under ThreadSanitizer");
    greet::Server server("127.0.0.1", 0);
    const std::uint16_t port = server.local_address().port;
    Reports reports;
    greet::ServeOptions options;
    options.max_clients = 128; // room for every client below at once
    options.on_error = [&](const greet::Address& peer, const std::exception& e) {
        fault::disarm(); // the test's own bookkeeping below must not be the allocation that fails
        reports.add({peer.to_string(), e.what()});
    };
    std::promise<const void*> serve_thread;
    test::Serving serving(server, [&](greet::Server& s) {
        serve_thread.set_value(fault::this_thread());
        s.serve([](greet::Client& client, const greet::Address&) {
            client.send_line("hello");
            for (int turn = 0; turn < 1000; ++turn) client.send_line(client.recv_line()); // ends in ClosedError
        }, options);
    });
    auto serve_thread_id = serve_thread.get_future();
    REQUIRE(serve_thread_id.wait_for(guard) == std::future_status::ready);
    const void* const serve_id = serve_thread_id.get();

    greet::Client a = connect_to(port);
    REQUIRE(served(a, "a is alive"));
    // Every client stays connected to the end: a handler ending wakes serve's thread,
    // whose allocations would then count towards the next n.
    std::vector<greet::Client> connected;

    int failures_seen = 0;
    bool got_through = false;
    for (long n = 1; n <= 40 && !got_through; ++n) {
        INFO("the allocation that fails: number " << n << " on serve's thread after a client connects");
        const long failures_before = fault::count();
        fault::arm(serve_id, n);
        greet::Client c = connect_to(port);
        const std::string c_address = c.local_address().to_string(); // the peer, as the server sees it
        std::optional<std::string> greeting;
        std::exception_ptr thrown;
        try {
            greeting = c.recv_line();
        } catch (...) {
            thrown = std::current_exception();
        }
        const bool fired = fault::disarm() || fault::count() != failures_before;
        REQUIRE(!serving.wait_returned(0ms)); // serve() has not ended
        if (greeting == std::string("hello")) {
            if (!fired) {
                got_through = true; // past the last allocation serve makes for a client
                break;
            }
            // It failed after handing this client over: reported all the same.
            const std::vector<Report> texts = reports.wait_any();
            REQUIRE(!texts.empty());
            CHECK(contains(texts.front().what, "serve"));
            connected.push_back(std::move(c));
        } else {
            INFO("the client saw: " << (greeting ? "\"" + *greeting + "\"" : describe(thrown)));
            REQUIRE(fired); // no failure, yet not served
            check_closed(thrown);
            check_report(reports, c_address, "serve");
        }
        ++failures_seen;
        (void)reports.take();
        check_still_serving(echoes, served, a, connected, port, n);
    }
    check_end(got_through, failures_seen, reports, serving);
}

TEST_CASE("serve_messages() survives an allocation failure on its worker", "[alloc_faults][serve_messages]") {
    if (!fault::available) GREET_TEST_SKIP("operator new cannot be replaced under ThreadSanitizer");
    greet::Server server("127.0.0.1", 0);
    const std::uint16_t port = server.local_address().port;
    Reports reports;
    greet::ServeOptions options;
    options.workers = 1; // every connection on the thread whose allocations fail
    options.on_error = [&](const greet::Address& peer, const std::exception& e) {
        fault::disarm();
        reports.add({peer.to_string(), e.what()});
    };
    std::atomic<const void*> worker{nullptr};
    test::Serving serving(server, [&](greet::Server& s) {
        s.serve_messages([&](std::string_view request, const greet::Address&) {
            worker.store(fault::this_thread());
            return std::string(request); // allocates on the worker too: a failure here is the handler's
        }, options);
    });

    auto ask = [](greet::Client& client, const std::string& request) {
        client.send_message(request);
        return client.recv_message() == request;
    };
    greet::Client a = connect_to(port);
    REQUIRE(ask(a, "a is alive"));
    REQUIRE(worker.load() != nullptr);
    std::vector<greet::Client> connected; // kept open: a close is the worker's work too

    int failures_seen = 0;
    bool got_through = false;
    for (long n = 1; n <= 60 && !got_through; ++n) {
        INFO("the allocation that fails: number " << n << " on the worker after a client connects");
        const long failures_before = fault::count();
        fault::arm(worker.load(), n);
        greet::Client c = connect_to(port);
        const std::string c_address = c.local_address().to_string();
        const std::string request = "request " + std::to_string(n) + std::string(100, '.'); // past the small-string buffer
        std::optional<std::string> reply;
        std::exception_ptr thrown;
        try {
            c.send_message(request);
            reply = c.recv_message();
        } catch (...) {
            thrown = std::current_exception();
        }
        const bool fired = fault::disarm() || fault::count() != failures_before;
        REQUIRE(!serving.wait_returned(0ms));
        if (reply == request && !fired) {
            got_through = true; // past the last allocation the worker makes for a request
            break;
        }
        INFO("the client saw: " << (reply ? "\"" + *reply + "\"" : describe(thrown)));
        REQUIRE(fired);
        if (reply == request)
            connected.push_back(std::move(c)); // it failed after the reply left: reported all the same
        else
            check_closed(thrown);
        check_report(reports, c_address, "serve_messages"); // the handler's bad_alloc too: no memory is no memory
        ++failures_seen;
        (void)reports.take();
        check_still_serving(ask, ask, a, connected, port, n);
    }
    check_end(got_through, failures_seen, reports, serving);
}

TEST_CASE("recv_exact and recv_message lose no buffered byte when allocating their result fails", "[alloc_faults][client]") {
    if (!fault::available) GREET_TEST_SKIP("operator new cannot be replaced under ThreadSanitizer");
    test::Pair pair = test::connect_pair();
    greet::Client& client = pair.client;
    // Whole segments: chaos mode (GREET_SOCKET_CHAOS) would leave bytes in the OS instead of the buffer.
    client.set_chaos(std::nullopt);
    pair.accepted.set_chaos(std::nullopt);
    client.set_timeout(guard);

    // Calls f with the next allocation of this thread failing; what it threw, if anything.
    auto with_next_allocation_failing = [](auto f) {
        std::exception_ptr thrown;
        fault::arm_this_thread(1);
        try {
            f();
        } catch (...) {
            thrown = std::current_exception();
        }
        const bool fired = fault::disarm();
        return std::make_pair(fired, thrown);
    };

    SECTION("recv_exact") {
        pair.accepted.send("ab\ncdefgh");
        REQUIRE(client.recv_line() == "ab"); // "cdefgh" came in the same receive: it is buffered
        const auto [fired, thrown] = with_next_allocation_failing([&] { (void)client.recv_exact(100); });
        INFO("recv_exact threw " << describe(thrown));
        REQUIRE(fired);
        const auto error = as_error(thrown);
        REQUIRE(error);
        CHECK(error->code() == std::errc::not_enough_memory);
        CHECK(contains(error->what(), "recv_exact"));
        CHECK(client.recv(100) == "cdefgh");
    }
    SECTION("recv_message") {
        // A header announcing 1000 bytes, then 3 of them. (A result of 15 bytes or fewer
        // fits in std::string itself and allocates nothing.)
        const std::string header("\x00\x00\x03\xE8", 4);
        pair.accepted.send("x\n" + header + "abc");
        REQUIRE(client.recv_line() == "x");
        const auto [fired, thrown] = with_next_allocation_failing([&] { (void)client.recv_message(); });
        INFO("recv_message threw " << describe(thrown));
        REQUIRE(fired);
        const auto error = as_error(thrown);
        REQUIRE(error);
        CHECK(error->code() == std::errc::not_enough_memory);
        CHECK(contains(error->what(), "recv_message"));
        CHECK(client.recv(100) == header + "abc");
    }
}

#if defined(__linux__) && defined(GREET_THREAD_LIMIT_PROGRAM)
namespace {

// The thread_limit program on a pipe. The destructor kills it if it is still running,
// so a failed check leaves no process behind.
class Child {
public:
    Child() {
        int out[2];
        REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, out[1], 1); // dup2 clears close-on-exec
        char program[] = GREET_THREAD_LIMIT_PROGRAM;
        char* argv[] = {program, nullptr};
        const int rc = ::posix_spawn(&pid_, program, &actions, nullptr, argv, environ);
        posix_spawn_file_actions_destroy(&actions);
        ::close(out[1]);
        output_ = out[0];
        if (rc != 0) pid_ = -1;
        REQUIRE(rc == 0);
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        ::close(output_);
    }
    // The next line of its output; nullopt at the end of the output or past the deadline.
    std::optional<std::string> line(std::chrono::steady_clock::time_point deadline) {
        for (;;) {
            const std::size_t end = pending_.find('\n');
            if (end != std::string::npos) {
                std::string out = pending_.substr(0, end);
                pending_.erase(0, end + 1);
                return out;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            pollfd fd{output_, POLLIN, 0};
            const int ready = ::poll(&fd, 1, static_cast<int>(left.count()));
            if (ready < 0 && errno == EINTR) continue;
            if (ready <= 0) return std::nullopt;
            char bytes[512];
            const ssize_t n = ::read(output_, bytes, sizeof bytes);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return std::nullopt;
            pending_.append(bytes, static_cast<std::size_t>(n));
        }
    }
    // Its exit status, once its output has ended (it is exiting then); -1 otherwise.
    int exit_status(std::chrono::steady_clock::time_point deadline) {
        while (line(deadline)) {
        }
        if (std::chrono::steady_clock::now() >= deadline) return -1; // still running: the destructor kills it
        int status = 0;
        if (::waitpid(pid_, &status, 0) != pid_) return -1;
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

private:
    pid_t pid_ = -1;
    int output_ = -1;
    std::string pending_;
};

} // namespace

TEST_CASE("no thread for a client: serve() refuses it and says why", "[alloc_faults][serve][linux]") {
    Child child;
    const auto deadline = std::chrono::steady_clock::now() + guard;
    const std::optional<std::string> first = child.line(deadline);
    REQUIRE(first);
    if (test::starts_with(*first, "skip:")) GREET_TEST_SKIP("the thread limit cannot be put in place here: " << *first);
    REQUIRE(test::starts_with(*first, "port "));
    const auto port = greet::parse_port(first->substr(5));

    greet::Client client = connect_to(port);
    const std::string client_address = client.local_address().to_string();
    CHECK(closed_by_server(client));

    std::vector<std::string> output;
    for (std::optional<std::string> line = child.line(deadline); line; line = child.line(deadline)) output.push_back(*line);
    const int status = child.exit_status(deadline);
    std::string all;
    for (const std::string& line : output) all += line + "\n";
    INFO("the server printed:\n" << all);
    CHECK(status == 0); // serve() returned after the report; 3: a handler ran after all
    REQUIRE(output.size() == 1);
    REQUIRE(test::starts_with(output[0], "report "));
    const std::string& report = output[0];
    CHECK(contains(report, "serve"));
    CHECK(contains(report, client_address));
    CHECK(contains(report, "EAGAIN"));
    CHECK(contains(report, "thread"));
    CHECK(contains(report, "refused"));
}
#endif
