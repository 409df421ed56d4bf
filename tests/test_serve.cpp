// Server::serve and Server::stop on real loopback sockets: many clients at once, the
// max_clients limit, errors from handlers, and stopping from threads and signal handlers.
#include "catch.hpp"
#include "greet_socket.hpp"
#include "support.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#ifndef _WIN32
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#endif
#ifdef __linux__
#include <dirent.h>
#endif

using namespace std::chrono_literals;
using test::Counter;
using test::guard;
using test::ms_between;
#ifdef __linux__
using test::accept_queue_reaches;
#endif
using test::pattern;
#ifdef __linux__
using test::this_thread_id;
using test::thread_state;
#endif

namespace {

using Clock = std::chrono::steady_clock;


greet::Client connect_to(std::uint16_t port) {
    greet::Client client;
    client.set_timeout(guard);
    client.connect("127.0.0.1", port);
    return client;
}

// serve(handler, options) on a thread of its own.
struct Serving : test::Serving {
    Serving(greet::Server& server, greet::Server::Handler handler, greet::ServeOptions options = {})
        : test::Serving(server, [handler = std::move(handler), options = std::move(options)](greet::Server& s) {
              s.serve(handler, options);
          }) {}
};

#ifdef __linux__

// Waits until the thread is asleep in the kernel (in serve, that is its poll), so that a
// stop() lands on a blocked call rather than before it. Bounded; only sharpens the
// test, which is correct either way.
void wait_until_blocked(long tid) {
    const auto deadline = Clock::now() + 5s;
    while (tid != 0 && Clock::now() < deadline && thread_state(tid) != 'S') std::this_thread::yield();
}

std::set<std::string> entries(const char* directory) {
    std::set<std::string> out;
    DIR* dir = ::opendir(directory);
    if (dir == nullptr) return out;
    for (dirent* entry = ::readdir(dir); entry != nullptr; entry = ::readdir(dir))
        if (entry->d_name[0] != '.') out.insert(entry->d_name);
    ::closedir(dir);
    return out;
}
std::set<std::string> open_descriptors() {
    std::set<std::string> all = entries("/proc/self/fd");
    std::set<std::string> out;
    // The directory's own descriptor is open only while it is read.
    for (const std::string& fd : all)
        if (::fcntl(std::stoi(fd), F_GETFD) != -1) out.insert(fd);
    return out;
}
std::size_t thread_count() { return entries("/proc/self/task").size(); }

// A thread that pthread_join has returned for may be listed for a moment longer while
// the kernel finishes its exit; wait (bounded) for the count to settle.
bool threads_settle_to(std::size_t expected) {
    const auto deadline = Clock::now() + 5s;
    while (thread_count() != expected && Clock::now() < deadline) std::this_thread::yield();
    return thread_count() == expected;
}

#endif

} // namespace

TEST_CASE("200 clients at once, 100 messages each, every byte checked", "[serve][threads]") {
    constexpr int clients = 200;
    constexpr int messages = 100;
    // Each message names its client and number and carries bytes of its own, so a
    // message delivered to the wrong handler, twice, or out of order cannot pass.
    auto message = [](int client, int number) {
        const std::string label = "client " + std::to_string(client) + " message " + std::to_string(number) + ":";
        const std::size_t size = static_cast<std::size_t>((client * 131 + number * 71) % 2000);
        return label + pattern(size, static_cast<std::uint32_t>(client * messages + number));
    };

    greet::Server server("127.0.0.1", 0);
    const std::uint16_t port = server.local_address().port;
    Counter handlers_running, handlers_done;
    std::atomic<int> server_mismatches{0};
    std::mutex errors_mutex;
    std::vector<std::string> errors;
    auto record = [&](const std::string& text) {
        std::lock_guard<std::mutex> lock(errors_mutex);
        errors.push_back(text);
    };

    greet::ServeOptions options;
    options.max_clients = clients;
    options.on_error = [&](const greet::Address& peer, const std::exception& e) { record("server, " + peer.to_string() + ": " + e.what()); };
    Serving serving(server, [&](greet::Client& client, const greet::Address&) {
        client.set_timeout(30s);
        handlers_running.add();
        // Every handler waits for all the others: all 200 run at the same time.
        if (!handlers_running.wait_for(clients, 30s)) record("not every handler started");
        std::string first = client.recv_message();
        const int id = first.rfind("client ", 0) == 0 ? static_cast<int>(std::strtol(first.c_str() + 7, nullptr, 10)) : -1; // "client <id> ..."
        for (int number = 0; number < messages; ++number) {
            const std::string got = number == 0 ? first : client.recv_message();
            if (got != message(id, number)) ++server_mismatches;
            client.send_message(std::string(got.rbegin(), got.rend()));
        }
        handlers_done.add();
    }, options);

    const auto start = Clock::now();
    std::atomic<int> replies_ok{0};
    std::vector<std::thread> threads;
    threads.reserve(clients);
    for (int id = 0; id < clients; ++id) {
        threads.emplace_back([&, id] {
            try {
                greet::Client client = connect_to(port);
                client.set_timeout(30s);
                for (int number = 0; number < messages; ++number) {
                    const std::string sent = message(id, number);
                    client.send_message(sent);
                    if (client.recv_message() == std::string(sent.rbegin(), sent.rend())) ++replies_ok;
                }
            } catch (const std::exception& e) {
                record("client " + std::to_string(id) + ": " + e.what());
            }
        });
    }
    for (std::thread& thread : threads) thread.join();
    const double seconds = ms_between(start, Clock::now()) / 1000;
    REQUIRE(handlers_done.wait_for(clients));
    WARN(clients << " clients x " << messages << " messages each way took " << seconds << " s");

    std::string all_errors;
    for (const std::string& error : errors) all_errors += error + "\n";
    INFO(all_errors);
    CHECK(errors.empty());
    CHECK(handlers_running.peak() == clients);
    CHECK(replies_ok == clients * messages);
    CHECK(server_mismatches == 0);
    server.stop();
    CHECK(serving.wait_returned());
}

TEST_CASE("accept() after stop() throws operation_canceled, at once or while blocked", "[serve][stop]") {
    greet::Server server("127.0.0.1", 0);
    server.set_timeout(guard); // a broken stop() ends in a TimeoutError, not a hang
    CHECK(!server.stopped());

    SECTION("stop() before accept()") {
        server.stop();
        CHECK(server.stopped());
        for (int i = 0; i < 2; ++i) { // and it stays in effect
            std::optional<std::error_code> code;
            try {
                server.accept();
            } catch (const greet::Error& e) {
                code = e.code();
            }
            REQUIRE(code);
            CHECK(*code == std::errc::operation_canceled);
        }
        SECTION("until close(); a new bind starts unstopped") {
            server.close();
            CHECK(!server.stopped());
            server.bind("127.0.0.1", 0);
            server.listen();
            CHECK(!server.stopped());
        }
    }
    // With a timeout accept() polls; without one, on Linux, it blocks in the OS and
    // stop() shuts the listener down to wake it.
    auto stop_while_blocked = [&] {
#ifdef __linux__
        const long tid = this_thread_id();
#endif
        std::promise<void> accept_returned;
        auto stopper = std::async(std::launch::async, [&, returned = accept_returned.get_future()] {
#ifdef __linux__
            wait_until_blocked(tid);
#endif
            const auto called = Clock::now();
            server.stop();
            // A stop() that failed to wake accept() must not hang the test: a client
            // would end the wait (and the test fails, accept() having returned it).
            if (returned.wait_for(guard) == std::future_status::timeout) {
                try {
                    greet::Client unblock("127.0.0.1", server.local_address().port);
                } catch (const greet::Error&) {
                }
            }
            return called;
        });
        std::optional<std::error_code> code;
        Clock::time_point threw{};
        try {
            server.accept();
        } catch (const greet::Error& e) {
            threw = Clock::now();
            code = e.code();
        }
        accept_returned.set_value();
        const Clock::time_point called = stopper.get();
        REQUIRE(code);
        CHECK(*code == std::errc::operation_canceled);
        const double latency = ms_between(called, threw);
        WARN("stop() to accept() throwing" << (server.timeout() ? " (timeout set)" : "") << ": " << latency << " ms");
        CHECK(latency < 5000);
    };
    SECTION("stop() from another thread while accept() blocks, with a timeout set") {
        stop_while_blocked();
    }
    SECTION("stop() from another thread while accept() blocks, without a timeout") {
        server.set_timeout(std::nullopt);
        stop_while_blocked();
    }
}

TEST_CASE("stop() ends serve() while it waits for clients", "[serve][stop]") {
    greet::Server server("127.0.0.1", 0);
    Serving serving(server, [](greet::Client&, const greet::Address&) {});
#ifdef __linux__
    const auto until = Clock::now() + 5s;
    while (serving.thread_id() == 0 && Clock::now() < until) std::this_thread::yield();
    wait_until_blocked(serving.thread_id());
#endif
    const auto called = Clock::now();
    server.stop();
    const auto returned = serving.wait_returned(5s);
    REQUIRE(returned);
    const double latency = ms_between(called, *returned);
    WARN("stop() to serve() returning, no clients: " << latency << " ms");
    CHECK(latency < 5000);
    CHECK(!server.is_open());
    CHECK(server.stopped());
}

TEST_CASE("stop() with clients connected: grace, cut-off, and nothing left behind", "[serve][stop]") {
#ifdef __linux__
    const std::set<std::string> descriptors_before = open_descriptors();
    const std::size_t threads_before = thread_count();
#endif
    constexpr int clients = 5;
    std::optional<greet::Server> server;
    server.emplace("127.0.0.1", 0);
    const std::uint16_t port = server->local_address().port;
    Counter started, returned;
    std::mutex mutex;
    std::vector<std::string> outcomes; // one per handler: "canceled", "ok", or what went wrong
    auto outcome = [&](const std::string& text) {
        std::lock_guard<std::mutex> lock(mutex);
        outcomes.push_back(text);
    };
    std::vector<std::string> reported;
    greet::ServeOptions options;
    options.on_error = [&](const greet::Address&, const std::exception& e) {
        std::lock_guard<std::mutex> lock(mutex);
        reported.push_back(e.what());
    };

    // Handlers blocked in recv past the grace are cut off: their recv throws operation_canceled.
    auto cut_off_after = [&](std::chrono::milliseconds grace) {
        options.grace = grace;
        std::optional<Clock::time_point> serve_returned;
        Clock::time_point called{};
        int returned_before_serve = -1;
        {
            Serving serving(*server, [&](greet::Client& client, const greet::Address&) {
                started.add();
                try {
                    client.recv_line(); // the clients never send: only stop() ends this
                    outcome("recv_line returned");
                } catch (const greet::Error& e) {
                    outcome(e.code() == std::errc::operation_canceled ? "canceled" : std::string("other error: ") + e.what());
                }
                returned.add();
            }, options);
            std::vector<greet::Client> connected;
            connected.reserve(clients);
            for (int i = 0; i < clients; ++i) connected.push_back(connect_to(port));
            REQUIRE(started.wait_for(clients));

            called = Clock::now();
            server->stop();
            serve_returned = serving.wait_returned();
            REQUIRE(serve_returned);
            returned_before_serve = returned.value();
            // The server shut the connections down: each client sees the end of its stream.
            for (greet::Client& client : connected) CHECK(client.recv(10).empty());
        }
        const double latency = ms_between(called, *serve_returned);
        WARN("stop() to serve() returning, " << clients << " handlers cut off after a grace of " << grace.count() << " ms: " << latency
             << " ms (" << latency - double(grace.count()) << " ms past the grace)");
        CHECK(latency >= double(grace.count())); // serve waited the grace out first
        CHECK(latency < double(grace.count()) + 5000);
        CHECK(returned_before_serve == clients); // serve joined every handler before returning
        CHECK(outcomes == std::vector<std::string>(clients, "canceled"));
        CHECK(reported.empty()); // the handlers caught their errors
    };
    SECTION("handlers blocked in recv are cut off at once with no grace") {
        cut_off_after(0ms);
    }
    SECTION("handlers blocked in recv past the grace are cut off") {
        cut_off_after(300ms);
    }

    SECTION("a handler that finishes within the grace is not cut off") {
        options.grace = 20s;
        std::optional<Clock::time_point> serve_returned;
        Clock::time_point called{}, handler_ended{};
        {
            Serving serving(*server, [&](greet::Client& client, const greet::Address&) {
                started.add();
                try {
                    const std::string line = client.recv_line();
                    client.send_line("bye " + line);
                    handler_ended = Clock::now(); // read after serve returned, which joined this thread
                    outcome("ok");
                } catch (const greet::Error& e) {
                    outcome(std::string("error: ") + e.what());
                }
                returned.add();
            }, options);
            greet::Client client = connect_to(port);
            REQUIRE(started.wait_for(1));
            called = Clock::now();
            server->stop();
#ifdef __linux__
            // serve has closed its listener: it is past accepting, in the grace period.
            CHECK(accept_queue_reaches(port, std::nullopt));
#endif
            client.send_line("last words");
            CHECK(client.recv_line() == "bye last words");
            serve_returned = serving.wait_returned();
            REQUIRE(serve_returned);
            CHECK(returned.value() == 1);
        }
        const double latency = ms_between(called, *serve_returned);
        WARN("stop() to serve() returning, one handler finishing on its own within the grace: " << latency << " ms, of which "
             << ms_between(handler_ended, *serve_returned) << " ms after the handler ended");
        CHECK(latency < 5000); // well inside the 20 s grace: serve did not wait it out
        CHECK(outcomes == std::vector<std::string>{"ok"});
        CHECK(reported.empty());
    }

    CHECK(!server->is_open());
#ifdef __linux__
    // No socket outlives serve except the two stop() acts on, which must live until
    // close(): stop() may come from a signal handler at any time, and closing them
    // earlier would let it act on a reused descriptor. They are the small datagram
    // socket it signals through, and the duplicate of the listener it shuts down.
    std::set<std::string> after = open_descriptors();
    std::vector<std::string> extra;
    std::set_difference(after.begin(), after.end(), descriptors_before.begin(), descriptors_before.end(), std::back_inserter(extra));
    INFO("descriptors before: " << descriptors_before.size() << ", after serve: " << after.size());
    CHECK(after.size() == descriptors_before.size() + 2);
    REQUIRE(extra.size() == 2);
    std::multiset<int> types;
    for (const std::string& fd : extra) {
        int type = 0;
        socklen_t length = sizeof type;
        CHECK(::getsockopt(std::stoi(fd), SOL_SOCKET, SO_TYPE, &type, &length) == 0);
        types.insert(type);
    }
    CHECK(types == std::multiset<int>{SOCK_DGRAM, SOCK_STREAM});
    server.reset();
    CHECK(open_descriptors() == descriptors_before);
    // serve joined every handler thread, and Serving joined serve's own thread.
    if (test::under_thread_sanitizer) {
        WARN("threads are not counted under ThreadSanitizer, which starts one of its own");
    } else {
        CHECK(threads_settle_to(threads_before));
    }
#endif
}

#ifndef _WIN32
namespace {
std::atomic<greet::Server*> signal_target{nullptr};
static_assert(std::atomic<greet::Server*>::is_always_lock_free, "a signal handler may only touch lock-free atomics");
void stop_on_signal(int) {
    const int saved = errno;
    if (greet::Server* server = signal_target.load()) server->stop();
    errno = saved;
}
// Restores the previous SIGUSR1 disposition whatever way the test ends.
struct SignalHandlerScope {
    struct sigaction previous {};
    bool installed = false;
    SignalHandlerScope() {
        struct sigaction action {};
        action.sa_handler = stop_on_signal;
        sigemptyset(&action.sa_mask);
        installed = ::sigaction(SIGUSR1, &action, &previous) == 0;
    }
    ~SignalHandlerScope() {
        if (installed) ::sigaction(SIGUSR1, &previous, nullptr);
        signal_target.store(nullptr);
    }
};
} // namespace

TEST_CASE("stop() from a signal handler ends serve()", "[serve][stop][posix]") {
    greet::Server server("127.0.0.1", 0);
    signal_target.store(&server);
    SignalHandlerScope scope;
    REQUIRE(scope.installed);

    const pthread_t serving_thread = ::pthread_self();
#ifdef __linux__
    const long tid = this_thread_id();
#endif
    std::mutex mutex;
    std::condition_variable done;
    bool serve_returned = false;
    auto raiser = std::async(std::launch::async, [&] {
#ifdef __linux__
        wait_until_blocked(tid);
#endif
        const auto raised = Clock::now();
        const int rc = ::pthread_kill(serving_thread, SIGUSR1);
        // Should the signal not end serve, stop it directly so that the test fails
        // instead of hanging.
        std::unique_lock<std::mutex> lock(mutex);
        const bool ended = done.wait_for(lock, guard, [&] { return serve_returned; });
        if (!ended) server.stop();
        return std::make_tuple(raised, rc, ended);
    });
    server.serve([](greet::Client&, const greet::Address&) {});
    const auto returned = Clock::now();
    {
        std::lock_guard<std::mutex> lock(mutex);
        serve_returned = true;
    }
    done.notify_all();
    const auto [raised, rc, ended] = raiser.get();
    CHECK(rc == 0);
    CHECK(ended);
    CHECK(server.stopped());
    CHECK(!server.is_open());
    const double latency = ms_between(raised, returned);
    WARN("SIGUSR1 to serve() returning: " << latency << " ms");
    CHECK(latency < 5000);
}
#endif

TEST_CASE("a throwing handler is reported through on_error and the server serves on", "[serve][errors]") {
    greet::Server server("127.0.0.1", 0);
    const std::uint16_t port = server.local_address().port;
    struct Report {
        greet::Address peer;
        std::string what;
    };
    std::mutex mutex;
    std::vector<Report> reports;
    Counter started;
    std::atomic<int> closed_errors{0};
    greet::ServeOptions options;
    options.on_error = [&](const greet::Address& peer, const std::exception& e) {
        std::lock_guard<std::mutex> lock(mutex);
        reports.push_back({peer, e.what()});
    };
    Serving serving(server, [&](greet::Client& client, const greet::Address&) {
        started.add();
        try {
            const std::string line = client.recv_line();
            if (line == "throw") throw std::runtime_error("the handler gave up on purpose");
            client.send_line("echo " + line);
        } catch (const greet::ClosedError&) {
            ++closed_errors;
            throw; // the client left: serve must not report this
        }
    }, options);

    greet::Client thrower = connect_to(port);
    const greet::Address thrower_address = thrower.local_address();
    thrower.send_line("throw");
    CHECK(thrower.recv(10).empty()); // the handler ended and serve closed the connection

    greet::Client next = connect_to(port); // the server still serves
    next.send_line("hello");
    CHECK(next.recv_line() == "echo hello");

    greet::Client leaver = connect_to(port); // leaves without a word: a ClosedError in its handler
    REQUIRE(started.wait_for(3));
    leaver.close();

    server.stop();
    REQUIRE(serving.wait_returned()); // every handler has ended
    CHECK(closed_errors == 1);
    std::lock_guard<std::mutex> lock(mutex);
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].peer == thrower_address);
    CHECK(reports[0].what == "the handler gave up on purpose");
}

TEST_CASE("max_clients bounds the handlers running at once while the rest wait in the backlog", "[serve][limits]") {
    constexpr int limit = 3;
    constexpr int clients = 6;
    greet::Server server("127.0.0.1", 0);
    const std::uint16_t port = server.local_address().port;
    Counter running, started, finished;
    std::mutex mutex;
    std::condition_variable released;
    int permits = 0;          // handlers allowed to finish
    bool waited_too_long = false;
    greet::ServeOptions options;
    options.max_clients = limit;
    Serving serving(server, [&](greet::Client& client, const greet::Address&) {
        const std::string name = client.recv_line();
        running.add();
        started.add();
        {
            std::unique_lock<std::mutex> lock(mutex);
            if (released.wait_for(lock, guard, [&] { return permits > 0; })) --permits;
            else waited_too_long = true;
        }
        running.add(-1);
        client.send_line("served " + name);
        finished.add();
    }, options);

    std::vector<greet::Client> connected;
    for (int i = 0; i < clients; ++i) {
        // The OS completes every handshake into the backlog, so each connect succeeds.
        connected.push_back(connect_to(port));
        connected.back().send_line("client " + std::to_string(i));
    }
    REQUIRE(started.wait_for(limit));
    CHECK(running.value() == limit);
#ifdef __linux__
    // The other three are complete connections nobody has accepted.
    CHECK(accept_queue_reaches(port, static_cast<unsigned long>(clients - limit)));
#endif
    CHECK(started.value() == limit);

    // Each released handler frees a slot, and only then does a waiting client get one.
    for (int k = 1; k <= clients; ++k) {
        {
            std::lock_guard<std::mutex> lock(mutex);
            ++permits;
        }
        released.notify_all();
        REQUIRE(finished.wait_for(k));
        const int expected_started = std::min(clients, limit + k);
        REQUIRE(started.wait_for(expected_started));
        CHECK(running.value() <= limit);
#ifdef __linux__
        CHECK(accept_queue_reaches(port, static_cast<unsigned long>(clients - expected_started)));
#endif
    }
    for (int i = 0; i < clients; ++i) CHECK(connected[static_cast<std::size_t>(i)].recv_line() == "served client " + std::to_string(i));
    CHECK(running.peak() == limit);
    CHECK(!waited_too_long);
    server.stop();
    CHECK(serving.wait_returned());
}

TEST_CASE("serve() reuses its handler threads for the clients that follow", "[serve][pool]") {
    constexpr int clients = 40;
    greet::Server server("127.0.0.1", 0);
    const std::uint16_t port = server.local_address().port;
    std::mutex mutex;
    std::set<std::thread::id> threads;
    Serving serving(server, [&](greet::Client& client, const greet::Address&) {
        {
            std::lock_guard<std::mutex> lock(mutex);
            threads.insert(std::this_thread::get_id());
        }
        client.send_line("served " + client.recv_line());
    });
    for (int i = 0; i < clients; ++i) {
        greet::Client client = connect_to(port);
        client.send_line(std::to_string(i));
        CHECK(client.recv_line() == "served " + std::to_string(i));
        CHECK(client.recv(10).empty()); // the handler has returned
    }
    server.stop();
    REQUIRE(serving.wait_returned());
    // One client at a time: a thread freed by one is idle when the next arrives, unless
    // the next connects in the moment between the two.
    WARN(clients << " clients one after another were served by " << threads.size() << " thread(s)");
    CHECK(threads.size() < clients / 2);
}

#ifdef __linux__
TEST_CASE("serve()'s idle handler threads end on their own while it serves on", "[serve][pool]") {
    if (test::under_thread_sanitizer) GREET_TEST_SKIP("threads are not counted under ThreadSanitizer, which starts one of its own");
    constexpr int clients = 8;
    greet::Server server("127.0.0.1", 0);
    const std::uint16_t port = server.local_address().port;
    Counter started;
    Serving serving(server, [&](greet::Client& client, const greet::Address&) {
        started.add();
        client.send_line(client.recv_line());
    });
    const auto until = Clock::now() + 5s;
    while (serving.thread_id() == 0 && Clock::now() < until) std::this_thread::yield();
    const std::size_t idle_threads = thread_count(); // the test's, and serve's own
    {
        std::vector<greet::Client> connected;
        connected.reserve(static_cast<std::size_t>(clients));
        for (int i = 0; i < clients; ++i) connected.push_back(connect_to(port));
        REQUIRE(started.wait_for(clients)); // one thread per client at once
        CHECK(thread_count() == idle_threads + clients);
        for (greet::Client& client : connected) {
            client.send_line("bye");
            CHECK(client.recv_line() == "bye");
        }
    }
    // Each worker waits 2 s for another client, then ends; serve() joins it.
    const auto deadline = Clock::now() + 10s;
    while (thread_count() != idle_threads && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
    CHECK(thread_count() == idle_threads);
    greet::Client late = connect_to(port); // and a new client is served as before
    late.send_line("late");
    CHECK(late.recv_line() == "late");
}

TEST_CASE("ServeOptions::stack_size sets the handler threads' stack", "[serve][pool]") {
    greet::Server server("127.0.0.1", 0);
    const std::uint16_t port = server.local_address().port;
    greet::ServeOptions options;
    options.stack_size = std::size_t{256} * 1024;
    std::atomic<std::size_t> stack{0};
    Serving serving(server, [&](greet::Client& client, const greet::Address&) {
        pthread_attr_t attributes;
        std::size_t size = 0;
        if (::pthread_getattr_np(::pthread_self(), &attributes) == 0) {
            ::pthread_attr_getstacksize(&attributes, &size);
            ::pthread_attr_destroy(&attributes);
        }
        stack.store(size);
        client.send_line("ok");
    }, options);
    greet::Client client = connect_to(port);
    CHECK(client.recv_line() == "ok");
    CHECK(stack.load() == std::size_t{256} * 1024);
}
#endif

TEST_CASE("ServeOptions::idle_timeout frees the slot of a client that stays silent", "[serve][pool]") {
    greet::Server server("127.0.0.1", 0);
    const std::uint16_t port = server.local_address().port;
    std::mutex mutex;
    std::vector<std::pair<greet::Address, std::error_code>> reports;
    greet::ServeOptions options;
    options.max_clients = 1;
    options.idle_timeout = 200ms;
    options.on_error = [&](const greet::Address& peer, const std::exception& e) {
        const auto* error = dynamic_cast<const greet::Error*>(&e);
        std::lock_guard<std::mutex> lock(mutex);
        reports.emplace_back(peer, error ? error->code() : std::error_code());
    };
    Serving serving(server, [&](greet::Client& client, const greet::Address&) { client.send_line("echo " + client.recv_line()); }, options);

    greet::Client silent = connect_to(port);
    const greet::Address silent_address = silent.local_address();
    greet::Client next = connect_to(port); // waits in the backlog behind the silent one
    next.send_line("hello");
    const auto asked = Clock::now();
    CHECK(next.recv_line() == "echo hello");
    const double waited = ms_between(asked, Clock::now());
    WARN("served after the silent client's idle timeout of 200 ms: " << waited << " ms");
    CHECK(waited >= 150);
    CHECK(silent.recv(10).empty()); // its connection was closed
    server.stop();
    REQUIRE(serving.wait_returned());
    std::lock_guard<std::mutex> lock(mutex);
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].first == silent_address);
    CHECK(reports[0].second == std::errc::timed_out);
}

TEST_CASE("ServeOptions::backlog re-listens and a negative idle_timeout is refused", "[serve][pool]") {
    greet::Server server("127.0.0.1", 0);
    const std::uint16_t port = server.local_address().port;
    SECTION("a backlog of 4") {
        greet::ServeOptions options;
        options.backlog = 4;
        Serving serving(server, [&](greet::Client& client, const greet::Address&) { client.send_line(client.recv_line()); }, options);
        greet::Client client = connect_to(port);
        client.send_line("hi");
        CHECK(client.recv_line() == "hi");
    }
    SECTION("idle_timeout below zero") {
        greet::ServeOptions options;
        options.idle_timeout = -1ms;
        std::error_code ec;
        server.serve([](greet::Client&, const greet::Address&) {}, options, ec);
        CHECK(ec == std::errc::invalid_argument);
        CHECK(server.is_open()); // nothing was served or closed
    }
}
