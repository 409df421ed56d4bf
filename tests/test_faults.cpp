// Hostile and broken peers over real loopback sockets: resets, trickles, silence, full
// queues, running out of descriptors. Each case ends in a specific greet::Error within
// its bound and leaves no descriptor behind.
#include "catch.hpp"
#include "greet_socket.hpp"
#include "support.hpp"

#ifdef __linux__
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using test::contains;
using test::guard;
using test::open_descriptors;
using Clock = std::chrono::steady_clock;

namespace {

// Room for a slow machine (valgrind, sanitizers) on top of each case's own bound.
constexpr auto slack = 3s;

// Closes with an RST instead of a FIN: SO_LINGER with a zero timeout.
void reset(greet::Client& client) {
    linger abort_on_close{1, 0};
    REQUIRE(::setsockopt(client.native_handle(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close) == 0);
    client.close();
}

// A peer's connection reset shows as ECONNRESET, or EPIPE when it raced a write.
bool peer_gone(const greet::Error& error) {
    return error.code() == std::errc::connection_reset || error.code() == std::errc::broken_pipe;
}

} // namespace

TEST_CASE("a peer that resets the connection mid-transfer", "[faults]") {
    const std::size_t before = open_descriptors();
    SECTION("while we receive: ECONNRESET, and the bytes that came stay readable") {
        auto pair = test::connect_pair();
        const std::string sent = test::pattern(100000, 3);
        pair.client.send(sent);
        reset(pair.client);
        pair.accepted.set_timeout(guard);
        const auto start = Clock::now();
        const auto error = test::thrown<greet::Error>([&] { pair.accepted.recv_exact(1 << 20); });
        REQUIRE(error);
        CHECK(Clock::now() - start < slack);
        INFO(error->what());
        CHECK(error->code() == std::errc::connection_reset);
        CHECK(contains(error->what(), "ECONNRESET"));
        CHECK(contains(error->what(), "the peer closed the connection abruptly"));
        const std::string kept = test::recv_all(pair.accepted);
        CHECK(kept.size() <= sent.size());
        CHECK(kept == sent.substr(0, kept.size()));
    }
    SECTION("while we send: ECONNRESET or EPIPE, no SIGPIPE") {
        auto pair = test::connect_pair();
        pair.client.set_timeout(guard);
        const std::string data(64 << 20, 'r'); // more than the socket buffers hold
        auto sender = test::start([&] { return test::thrown<greet::Error>([&] { pair.client.send(data); }); });
        pair.accepted.set_timeout(guard);
        CHECK(pair.accepted.recv_exact(65536) == data.substr(0, 65536)); // the transfer is under way
        const auto start = Clock::now();
        reset(pair.accepted);
        REQUIRE(sender.wait_for(guard) == std::future_status::ready);
        const auto error = sender.get();
        REQUIRE(error);
        CHECK(Clock::now() - start < slack);
        INFO(error->what());
        CHECK(peer_gone(*error));
        CHECK(contains(error->what(), "sent "));
    }
    CHECK(open_descriptors() == before);
}

TEST_CASE("a peer that sends one byte every few milliseconds", "[faults]") {
    const std::size_t before = open_descriptors();
    {
        auto pair = test::connect_pair();
        const std::string text = test::pattern(100, 5) + "\n";
        // The fault itself: a trickle, one byte per send with a pause after each.
        auto trickle = test::start([&] {
            for (char c : text) {
                pair.client.send(std::string(1, c));
                std::this_thread::sleep_for(3ms);
            }
        });
        SECTION("a receiver with a timeout longer than the trickle gets everything") {
            pair.accepted.set_timeout(guard);
            CHECK(pair.accepted.recv_exact(50) == text.substr(0, 50));
            CHECK(pair.accepted.recv_line(1000) == text.substr(50, text.size() - 51));
        }
        SECTION("a shorter timeout ends the call in TimeoutError, keeping what came") {
            pair.accepted.set_timeout(100ms);
            const auto start = Clock::now();
            const auto error = test::thrown<greet::TimeoutError>([&] { pair.accepted.recv_exact(text.size()); });
            REQUIRE(error);
            CHECK(Clock::now() - start < 100ms + slack);
            CHECK(error->code() == std::errc::timed_out);
            pair.accepted.set_timeout(guard);
            CHECK(pair.accepted.recv_exact(text.size()) == text); // nothing was lost
        }
        REQUIRE(trickle.wait_for(guard) == std::future_status::ready);
        trickle.get();
    }
    CHECK(open_descriptors() == before);
}

TEST_CASE("a peer that never reads while we send: TimeoutError", "[faults]") {
    const std::size_t before = open_descriptors();
    {
        auto pair = test::connect_pair();
        pair.client.set_timeout(200ms);
        const std::string payload(32 << 20, 'm');
        const auto start = Clock::now();
        const auto error = test::thrown<greet::TimeoutError>([&] { pair.client.send_message(payload); });
        REQUIRE(error);
        CHECK(Clock::now() - start < 200ms + slack);
        CHECK(error->code() == std::errc::timed_out);
        CHECK(contains(error->what(), "send_message"));
        CHECK(contains(error->what(), " of " + std::to_string(payload.size() + 4) + " bytes"));
    }
    CHECK(open_descriptors() == before);
}

TEST_CASE("a client that connects and says nothing: the server's timeout moves it on", "[faults]") {
    const std::size_t before = open_descriptors();
    {
        greet::Server server("127.0.0.1", 0);
        const std::uint16_t port = server.local_address().port;
        std::mutex mutex;
        std::vector<std::string> errors;
        greet::ServeOptions options;
        options.max_clients = 1; // the silent client holds the only slot until its timeout
        options.on_error = [&](const greet::Address&, const std::exception& error) {
            std::lock_guard<std::mutex> lock(mutex);
            errors.emplace_back(dynamic_cast<const greet::TimeoutError*>(&error) ? "timeout: " : "other: ");
            errors.back() += error.what();
        };
        auto serving = test::start([&] {
            server.serve(
                [](greet::Client& client, const greet::Address&) {
                    client.set_timeout(200ms);
                    client.send_line("re: " + client.recv_line());
                },
                options);
        });
        greet::Client silent;
        silent.set_timeout(guard);
        silent.connect("127.0.0.1", port);
        greet::Client talker;
        talker.set_timeout(guard);
        talker.connect("127.0.0.1", port);
        const auto start = Clock::now();
        talker.send_line("hello");
        CHECK(talker.recv_line() == "re: hello");
        CHECK(Clock::now() - start < 200ms + slack);
        server.stop();
        REQUIRE(serving.wait_for(guard) == std::future_status::ready);
        serving.get();
        std::lock_guard<std::mutex> lock(mutex);
        REQUIRE(errors.size() == 1);
        INFO(errors.front());
        CHECK(test::starts_with(errors.front(), "timeout: recv_line 127.0.0.1:"));
        CHECK(contains(errors.front(), "gave up after 200 ms"));
    }
    CHECK(open_descriptors() == before);
}

TEST_CASE("a connect against a full backlog times out, and succeeds once accept runs", "[faults]") {
    const std::size_t before = open_descriptors();
    {
        greet::Server server("127.0.0.1", 0, 0); // Linux completes backlog + 1 handshakes, then drops SYNs
        server.set_timeout(guard);
        const std::uint16_t port = server.local_address().port;
        std::vector<greet::Client> queued;
        std::optional<greet::TimeoutError> error;
        auto start = Clock::now();
        for (int attempt = 0; attempt < 16 && !error; ++attempt) {
            greet::Client client;
            client.set_timeout(300ms);
            start = Clock::now();
            error = test::thrown<greet::TimeoutError>([&] { client.connect("127.0.0.1", port); });
            if (!error) queued.push_back(std::move(client));
        }
        REQUIRE(error);
        CHECK(Clock::now() - start < 300ms + slack);
        CHECK(error->code() == std::errc::timed_out);
        CHECK(contains(error->what(), "gave up after 300 ms"));
        CHECK_FALSE(queued.empty());
        auto first = server.accept(); // a place in the queue comes free
        greet::Client late;
        late.set_timeout(guard);
        late.connect("127.0.0.1", port);
        late.send_line("late");
        for (std::size_t i = 1; i < queued.size(); ++i) server.accept();
        auto accepted = server.accept();
        accepted.first.set_timeout(guard);
        CHECK(accepted.first.recv_line() == "late");
    }
    CHECK(open_descriptors() == before);
}

TEST_CASE("a client that gives up before accept runs", "[faults]") {
    const std::size_t before = open_descriptors();
    {
        greet::Server server("127.0.0.1", 0);
        server.set_timeout(guard);
        const std::uint16_t port = server.local_address().port;
        SECTION("with a FIN: the accepted connection ends in ClosedError") {
            greet::Client quitter("127.0.0.1", port);
            quitter.close();
            auto accepted = server.accept();
            accepted.first.set_timeout(guard);
            const auto error = test::thrown<greet::ClosedError>([&] { accepted.first.recv_line(); });
            REQUIRE(error);
            CHECK(error->code() == greet::errc::peer_closed);
        }
        SECTION("with an RST: the accepted connection ends in ECONNRESET") {
            greet::Client quitter("127.0.0.1", port);
            reset(quitter);
            auto accepted = server.accept();
            accepted.first.set_timeout(guard);
            const auto error = test::thrown<greet::Error>([&] { accepted.first.recv_line(); });
            REQUIRE(error);
            INFO(error->what());
            CHECK(error->code() == std::errc::connection_reset);
        }
        // Either way the server goes on to the next client.
        greet::Client next("127.0.0.1", port);
        next.set_timeout(guard);
        next.send_line("next");
        auto accepted = server.accept();
        accepted.first.set_timeout(guard);
        CHECK(accepted.first.recv_line() == "next");
    }
    CHECK(open_descriptors() == before);
}

namespace {

// The child's exit codes, each one step of the descriptor test.
enum Step : int {
    passed = 0,
    no_rlimit = 10,
    connect_not_emfile,
    connect_no_hint,
    no_accept_error,
    accept_not_emfile,
    accept_no_hint,
    no_reply,
    serve_failed,
    unexpected_exception,
};
const char* describe_step(int code) {
    switch (code) {
    case no_rlimit: return "setrlimit(RLIMIT_NOFILE) failed";
    case connect_not_emfile: return "connect without a descriptor did not end in EMFILE";
    case connect_no_hint: return "connect's EMFILE message lacks its hint";
    case no_accept_error: return "serve reported no accept error while out of descriptors";
    case accept_not_emfile: return "accept without a descriptor did not end in EMFILE";
    case accept_no_hint: return "accept's EMFILE message lacks its hint";
    case no_reply: return "the server did not serve again once descriptors were free";
    case serve_failed: return "serve threw";
    case unexpected_exception: return "an unexpected exception";
    default: return "an unknown exit code or a signal";
    }
}

// Runs in the forked child, which owns its descriptor limit: the parent's stays as it was.
int run_out_of_descriptors() {
    greet::Server server("127.0.0.1", 0);
    const std::uint16_t port = server.local_address().port;
    std::mutex mutex;
    std::condition_variable reported;
    std::vector<std::pair<std::error_code, std::string>> errors;
    greet::ServeOptions options;
    options.on_error = [&](const greet::Address&, const std::exception& error) {
        const auto* e = dynamic_cast<const greet::Error*>(&error);
        {
            std::lock_guard<std::mutex> lock(mutex);
            errors.emplace_back(e ? e->code() : std::error_code{}, error.what());
        }
        reported.notify_all();
    };
    std::exception_ptr serve_error;
    std::thread serving([&] {
        try {
            server.serve([](greet::Client& client, const greet::Address&) { client.send_line("re: " + client.recv_line()); }, options);
        } catch (...) {
            serve_error = std::current_exception();
        }
    });
    // A limit a little above what is open, then filled to the last descriptor.
    int highest = 0;
    for (int fd = 0; fd < 4096; ++fd)
        if (::fcntl(fd, F_GETFD) != -1) highest = fd;
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = static_cast<rlim_t>(highest) + 8;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) return no_rlimit;
    std::vector<int> fillers;
    for (int i = 0; i <= highest + 8; ++i) { // the holes below the highest one, and the 8 above
        const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) break;
        fillers.push_back(fd);
    }
    int result = passed;
    try {
        greet::Client client;
        client.set_timeout(guard);
        try {
            client.connect("127.0.0.1", port);
            result = connect_not_emfile;
        } catch (const greet::Error& error) {
            if (error.code() != std::errc::too_many_files_open) result = connect_not_emfile;
            else if (!contains(error.what(), "EMFILE") || !contains(error.what(), "out of descriptors")) result = connect_no_hint;
            if (result != passed) std::fprintf(stderr, "child: %s\n", error.what());
        }
        if (result == passed) {
            ::close(fillers.back()); // room for the client's socket, none for the server's accept
            fillers.pop_back();
            client.connect("127.0.0.1", port);
            std::unique_lock<std::mutex> lock(mutex);
            if (!reported.wait_for(lock, guard, [&] { return !errors.empty(); })) result = no_accept_error;
            else if (errors.front().first != std::errc::too_many_files_open) result = accept_not_emfile;
            else if (!contains(errors.front().second, "accept 127.0.0.1:") || !contains(errors.front().second, "EMFILE") ||
                     !contains(errors.front().second, "out of descriptors"))
                result = accept_no_hint;
        }
        if (result == passed) {
            ::close(fillers.back()); // now the server can accept, on its own next try
            fillers.pop_back();
            client.send_line("ping");
            if (client.recv_line() != "re: ping") result = no_reply;
        }
    } catch (const std::exception& error) {
        std::fprintf(stderr, "child: %s\n", error.what());
        result = result == passed ? no_reply : result;
    }
    for (int fd : fillers) ::close(fd);
    server.stop();
    serving.join();
    if (serve_error && result == passed) result = serve_failed;
    return result;
}

} // namespace

TEST_CASE("running out of descriptors: EMFILE with its hint, and service resumes", "[faults]") {
    const std::size_t before = open_descriptors();
    std::fflush(nullptr);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::alarm(60); // a hang in the child ends it, and the parent's waitpid with it
        int code = unexpected_exception;
        try {
            code = run_out_of_descriptors();
        } catch (const std::exception& error) {
            std::fprintf(stderr, "child: %s\n", error.what());
        }
        std::fflush(nullptr);
        ::_exit(code);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    INFO("child: " << (code == 0 ? "passed" : describe_step(code)) << " (status " << status << ")");
    CHECK(code == passed);
    CHECK(open_descriptors() == before);
}

#endif // __linux__
