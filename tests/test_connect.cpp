// Connecting: Happy Eyeballs inside the blocking connect (a name's addresses raced under one
// deadline, every failure named, the losers closed, a Canceller ending the race), host ""
// as this machine, socket options read back with getsockopt, the Server's dual-stack and
// setup options, and IPv6 scope ids in addresses.
//
// A name with several addresses needs a hosts file of its own: those tests run in a forked
// child with its own mount namespace and a fake /etc/hosts bind-mounted over the real one
// (isolated::run below), and skip visibly where no namespace can be had. Every address is on
// loopback. A "stalled" address is a listener with backlog 0 whose queue holds one connection
// nobody accepts: Linux then drops every further SYN, so a connect there waits.
#include "catch.hpp"
#include "greet_socket.hpp"
#include "support.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#ifndef _WIN32
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#endif
#ifdef __linux__
#include <arpa/inet.h>
#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <net/if.h>
#include <netdb.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#endif

using namespace std::chrono_literals;
using namespace test; // guard, contains, has_ipv6_loopback, ...

namespace {

using Clock = std::chrono::steady_clock;

#ifdef __linux__ // the races are timed on Linux only
double ms_since(Clock::time_point start) { return std::chrono::duration<double, std::milli>(Clock::now() - start).count(); }
#endif

// An int option as getsockopt reads it back; -1 when getsockopt fails (no option read here is -1).
int int_option(greet::native_handle_type s, int level, int name) {
    int value = 0; // 0, not -1: Windows writes a single byte for some boolean options
    socklen_t size = sizeof value;
    if (::getsockopt(s, level, name, reinterpret_cast<char*>(&value), &size) != 0) return -1;
    return value;
}
struct LingerValue {
    int on = -1, seconds = -1;
};
LingerValue linger_option(greet::native_handle_type s) {
    ::linger value{};
    socklen_t size = sizeof value;
    if (::getsockopt(s, SOL_SOCKET, SO_LINGER, reinterpret_cast<char*>(&value), &size) != 0) return {};
    return {static_cast<int>(value.l_onoff), static_cast<int>(value.l_linger)};
}
// The address family a socket is bound to (AF_UNSPEC when getsockname fails) and its port.
std::pair<int, std::uint16_t> bound_to(greet::native_handle_type s) {
    sockaddr_storage storage{};
    socklen_t size = sizeof storage;
    if (::getsockname(s, reinterpret_cast<sockaddr*>(&storage), &size) != 0) return {AF_UNSPEC, 0};
    if (storage.ss_family == AF_INET6) return {AF_INET6, ntohs(reinterpret_cast<const sockaddr_in6&>(storage).sin6_port)};
    if (storage.ss_family == AF_INET) return {AF_INET, ntohs(reinterpret_cast<const sockaddr_in&>(storage).sin_port)};
    return {storage.ss_family, 0};
}
bool set_int_option(greet::native_handle_type s, int level, int name, int value) {
    return ::setsockopt(s, level, name, reinterpret_cast<const char*>(&value), sizeof value) == 0;
}

#ifdef __linux__
// The std::errc a code stands for, by name, for reports that cross a process boundary.
std::string errc_name(std::error_code ec) {
    if (!ec) return "none";
    if (ec == std::errc::timed_out) return "timed_out";
    if (ec == std::errc::connection_refused) return "connection_refused";
    if (ec == std::errc::operation_canceled) return "operation_canceled";
    if (ec == std::errc::permission_denied) return "permission_denied";
    if (ec == std::errc::invalid_argument) return "invalid_argument";
    return "other: " + ec.message();
}
#endif

} // namespace

#ifdef __linux__
// ---------------------------------------------------------------------------
// A forked child in namespaces of its own (Linux). The child uses no Catch macro (it never
// returns to Catch): it reports "key=value" lines on a pipe and its verdict in its exit
// status, and the test case checks what it said.
namespace isolated {

constexpr int skip_code = 77; // the machine cannot show it (no namespace, the fake name did not resolve, ...)
constexpr unsigned child_alarm_s = 30; // a hung child dies, and the parent's waitpid returns

// What the child said and how it ended.
struct Outcome {
    bool waited = false;
    int status = 0; // waitpid's
    std::string text; // its "key=value" lines
    bool exited() const { return waited && WIFEXITED(status); }
    int code() const { return exited() ? WEXITSTATUS(status) : -1; }
    bool skipped() const { return code() == skip_code; }
    std::string value(const std::string& key) const { // "" when the child did not say
        const std::string prefix = key + "=";
        for (std::size_t at = 0; at < text.size();) {
            const std::size_t end = std::min(text.find('\n', at), text.size());
            if (text.compare(at, prefix.size(), prefix) == 0) return text.substr(at + prefix.size(), end - at - prefix.size());
            at = end + 1;
        }
        return {};
    }
    double number(const std::string& key) const { // -1 when the child did not say
        const std::string v = value(key);
        return v.empty() ? -1 : std::strtod(v.c_str(), nullptr);
    }
};

// The child's side of the pipe: each line goes at once, so a child that dies has said
// everything up to that point.
class Report {
public:
    explicit Report(int fd) : fd_(fd) {}
    void say(const std::string& key, std::string value) const {
        for (char& c : value)
            if (c == '\n') c = ' ';
        const std::string line = key + "=" + value + "\n";
        const ssize_t ignored = ::write(fd_, line.data(), line.size());
        (void)ignored;
    }
    void number(const std::string& key, double value) const { say(key, std::to_string(value)); }

private:
    int fd_;
};
// Thrown in the child when the machine cannot show what the test is about.
struct Skip {
    std::string reason;
};

struct Isolation {
    std::string hosts;        // the child's /etc/hosts ("" keeps the real one)
    bool own_network = false; // a network namespace of its own, its lo up
};

inline std::string os_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Sets an interface's IFF_UP.
inline void bring_up(const char* name) {
    const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) throw Skip{os_text("socket for SIOCSIFFLAGS")};
    ifreq request{};
    std::memcpy(request.ifr_name, name, std::min(std::strlen(name), sizeof request.ifr_name - 1));
    bool up = ::ioctl(s, SIOCGIFFLAGS, &request) == 0;
    if (up) {
        request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
        up = ::ioctl(s, SIOCSIFFLAGS, &request) == 0;
    }
    const std::string why = up ? std::string() : os_text("bringing lo up");
    ::close(s);
    if (!up) throw Skip{why};
}

inline int child_main(const Isolation& isolation, const std::string& hosts_path, const std::function<void(Report&)>& body,
                      int pipe_end) noexcept {
    Report report(pipe_end);
    ::alarm(child_alarm_s);
    try {
        const int flags = (hosts_path.empty() ? 0 : CLONE_NEWNS) | (isolation.own_network ? CLONE_NEWNET : 0);
        if (flags != 0 && ::unshare(flags) != 0) throw Skip{os_text("unshare")};
        if (!hosts_path.empty()) {
            // The kernel ignores source and type for these two; "none" rather than nullptr, as
            // valgrind reports a null type as an error.
            if (::mount("none", "/", "none", MS_REC | MS_PRIVATE, nullptr) != 0) throw Skip{os_text("mount / private")};
            if (::mount(hosts_path.c_str(), "/etc/hosts", "none", MS_BIND, nullptr) != 0) throw Skip{os_text("bind-mount over /etc/hosts")};
        }
        if (isolation.own_network) bring_up("lo");
        body(report);
        return 0;
    } catch (const Skip& skip) {
        report.say("skip", skip.reason);
        return skip_code;
    } catch (const std::exception& e) {
        report.say("error", e.what());
        return 1;
    } catch (...) {
        report.say("error", "an exception of unknown type");
        return 1;
    }
}

// Runs body in a forked child inside the isolation asked for; returns what it said.
inline Outcome run(const Isolation& isolation, const std::function<void(Report&)>& body) {
    Outcome out;
    std::string hosts_path;
    if (!isolation.hosts.empty()) {
        char path[] = "/tmp/greet-connect-hosts-XXXXXX";
        const int file = ::mkstemp(path);
        if (file < 0) {
            out.text = os_text("mkstemp");
            return out;
        }
        const bool written = ::write(file, isolation.hosts.data(), isolation.hosts.size()) == static_cast<ssize_t>(isolation.hosts.size());
        ::close(file);
        hosts_path = path;
        if (!written) {
            ::unlink(path);
            out.text = "could not write the hosts file";
            return out;
        }
    }
    int ends[2];
    if (::pipe2(ends, O_CLOEXEC) != 0) {
        if (!hosts_path.empty()) ::unlink(hosts_path.c_str());
        out.text = os_text("pipe2");
        return out;
    }
    const pid_t child = ::fork();
    if (child == 0) {
        ::close(ends[0]);
        ::_exit(child_main(isolation, hosts_path, body, ends[1]));
    }
    ::close(ends[1]);
    char chunk[512];
    for (int turn = 0; child > 0 && turn < 4096; ++turn) { // ends when the child exits (its alarm bounds it)
        const ssize_t n = ::read(ends[0], chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.text.append(chunk, static_cast<std::size_t>(n));
    }
    ::close(ends[0]);
    out.waited = child > 0 && ::waitpid(child, &out.status, 0) == child;
    if (!hosts_path.empty()) ::unlink(hosts_path.c_str());
    return out;
}

// --- Child-side tools: no Catch macros in here.

// A descriptor closed on destruction.
class Fd {
public:
    explicit Fd(int fd = -1) noexcept : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    int get() const noexcept { return fd_; }
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};

// How many descriptors this process has open; -1 when /proc says nothing.
inline int descriptors() {
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) return -1;
    int count = 0;
    for (dirent* entry = ::readdir(dir); entry != nullptr; entry = ::readdir(dir))
        if (entry->d_name[0] != '.') ++count;
    ::closedir(dir);
    return count - 1; // the directory stream's own
}

inline socklen_t length_of(const sockaddr_storage& a) { return a.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in); }
inline void set_port(sockaddr_storage& a, std::uint16_t port) {
    if (a.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6&>(a).sin6_port = htons(port);
    else reinterpret_cast<sockaddr_in&>(a).sin_port = htons(port);
}
inline std::string ip_text(const sockaddr_storage& a) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw = a.ss_family == AF_INET6 ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in6&>(a).sin6_addr)
                                              : static_cast<const void*>(&reinterpret_cast<const sockaddr_in&>(a).sin_addr);
    ::inet_ntop(a.ss_family, raw, text, sizeof text);
    return text;
}
// "[::1]:5000" or "127.0.0.2:5000", as greet::Address prints it.
inline std::string shown(const sockaddr_storage& a, std::uint16_t port) {
    return a.ss_family == AF_INET6 ? "[" + ip_text(a) + "]:" + std::to_string(port) : ip_text(a) + ":" + std::to_string(port);
}

// The addresses a name resolves to, in the resolver's order, each once (as the header asks).
inline std::vector<sockaddr_storage> resolve(const std::string& name) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    addrinfo* list = nullptr;
    std::vector<sockaddr_storage> out;
    if (::getaddrinfo(name.c_str(), nullptr, &hints, &list) != 0) return out;
    for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
        sockaddr_storage a{};
        std::memcpy(&a, ai->ai_addr, std::min(sizeof a, static_cast<std::size_t>(ai->ai_addrlen)));
        bool seen = false;
        for (const sockaddr_storage& b : out) seen = seen || std::memcmp(&a, &b, sizeof a) == 0;
        if (!seen) out.push_back(a);
    }
    ::freeaddrinfo(list);
    return out;
}

// A non-blocking connect started (it may still be under way).
inline Fd start_connect(const sockaddr_storage& to) {
    Fd s(::socket(to.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (s.get() < 0) throw std::runtime_error(os_text("socket"));
    if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&to), length_of(to)) != 0 && errno != EINPROGRESS)
        throw std::runtime_error(os_text("connect to fill a queue"));
    return s;
}

enum class Role { stalled, listening, refusing };

// A name's addresses, all on one port, each with a role in the resolver's order: stalled (a
// listener with backlog 0 and one unaccepted connection in its queue, so SYNs are dropped),
// listening (a greet::Server, guard timeout), refusing (a bound socket that never listens).
struct Scene {
    std::uint16_t port = 0;
    std::vector<sockaddr_storage> addresses;
    std::vector<Fd> sockets;            // stalled listeners, the connections filling them, reserved ports
    std::vector<greet::Server> servers; // the listening addresses', in order
    std::string at(std::size_t i) const { return shown(addresses[i], port); }
};

// Puts one role at address (port 0 on the first: any); false when the port is taken there.
inline bool place(Scene& scene, sockaddr_storage address, Role role, std::uint16_t& port) {
    set_port(address, port);
    if (role == Role::listening) {
        greet::Server server;
        std::error_code ec;
        server.bind(ip_text(address), port, ec);
        if (ec == std::errc::address_in_use) return false;
        if (!ec) server.listen(SOMAXCONN, ec);
        if (ec) throw std::runtime_error(greet::last_error_message());
        server.set_timeout(guard);
        if (port == 0) port = server.local_address().port;
        scene.servers.push_back(std::move(server));
        return true;
    }
    Fd s(::socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (s.get() < 0) throw std::runtime_error(os_text("socket"));
    if (::bind(s.get(), reinterpret_cast<const sockaddr*>(&address), length_of(address)) != 0) {
        if (errno == EADDRINUSE) return false;
        throw std::runtime_error(os_text(("bind " + shown(address, port)).c_str()));
    }
    sockaddr_storage bound{};
    socklen_t size = sizeof bound;
    if (::getsockname(s.get(), reinterpret_cast<sockaddr*>(&bound), &size) != 0) throw std::runtime_error(os_text("getsockname"));
    if (port == 0) port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(bound).sin6_port
                                                            : reinterpret_cast<sockaddr_in&>(bound).sin_port);
    if (role == Role::stalled) {
        if (::listen(s.get(), 0) != 0) throw std::runtime_error(os_text("listen"));
        // The first connection completes and waits in the queue (the listener turns readable);
        // backlog 0 then counts the queue full, and the kernel drops every further SYN, this
        // second connect's included.
        Fd first = start_connect(bound);
        pollfd ready{s.get(), POLLIN, 0};
        if (::poll(&ready, 1, static_cast<int>(guard.count())) != 1) throw Skip{"a connection to a backlog-0 listener never reached its queue"};
        Fd second = start_connect(bound);
        scene.sockets.push_back(std::move(first));
        scene.sockets.push_back(std::move(second));
    }
    scene.sockets.push_back(std::move(s));
    return true;
}

inline Scene set_up(const std::string& name, const std::vector<Role>& roles) {
    const std::vector<sockaddr_storage> found = resolve(name);
    if (found.size() != roles.size())
        throw Skip{name + " resolved to " + std::to_string(found.size()) + " addresses, not " + std::to_string(roles.size()) +
                   " (a resolver cache in the way of the fake /etc/hosts?)"};
    for (int attempt = 0; attempt < 16; ++attempt) { // another program may hold the port on a later address
        Scene scene;
        std::uint16_t port = 0;
        bool placed = true;
        for (std::size_t i = 0; i < found.size() && placed; ++i) placed = place(scene, found[i], roles[i], port);
        if (!placed) continue;
        scene.port = port;
        scene.addresses = found;
        for (sockaddr_storage& a : scene.addresses) set_port(a, port);
        return scene;
    }
    throw std::runtime_error("no port was free on every address of " + name);
}

} // namespace isolated

// Ends the test as skipped when the child could not set up, and fails it when the child
// died or failed; INFO(child.text) before it shows what the child said.
#define REQUIRE_CHILD_FINISHED(child)                                                                 \
    do {                                                                                              \
        REQUIRE((child).exited());                                                                    \
        if ((child).skipped()) GREET_TEST_SKIP("cannot be shown here: " << (child).value("skip"));   \
        REQUIRE((child).code() == 0);                                                                 \
    } while (false)

namespace {
// One name, one IPv6 and one IPv4 loopback address: the resolver puts ::1 first (RFC 6724
// precedence), and each scene gives the roles in whatever order it returns them.
const std::string race_hosts = "::1 greet-race.test\n127.0.0.2 greet-race.test\n";
const std::string race_name = "greet-race.test";
} // namespace
#endif

// ---------------------------------------------------------------------------
// 1. The race.

TEST_CASE("connect races a stalled first address and wins on the next one after the stagger", "[connect][race][linux]") {
#ifdef __linux__
    if (!has_ipv6_loopback()) GREET_TEST_SKIP("this machine has no IPv6 loopback");
    using isolated::Role;
    const isolated::Outcome child = isolated::run({race_hosts}, [](isolated::Report& report) {
        {   // The default stagger, no timeout: only the race can end this connect (the child's alarm bounds it).
            isolated::Scene scene = isolated::set_up(race_name, {Role::stalled, Role::listening});
            report.say("first", scene.at(0));
            report.say("second", scene.at(1));
            greet::Client client;
            const auto start = Clock::now();
            client.connect(race_name, scene.port);
            report.number("default_ms", ms_since(start));
            report.say("default_peer", client.peer_address().to_string());
            auto accepted = scene.servers.at(0).accept();
            report.say("default_local", client.local_address().to_string());
            report.say("default_accepted_from", accepted.second.to_string());
            client.set_timeout(guard);
            accepted.first.set_timeout(guard);
            client.send_line("ping");
            report.say("default_echo", accepted.first.recv_line());
        }
        {   // A stagger of 100 ms: the second attempt starts sooner.
            isolated::Scene scene = isolated::set_up(race_name, {Role::stalled, Role::listening});
            greet::Client client;
            client.set_timeout(guard);
            client.set_connect_stagger(100ms);
            const auto start = Clock::now();
            client.connect(race_name, scene.port);
            report.number("stagger100_ms", ms_since(start));
            report.say("stagger100_peer", client.peer_address().to_string());
            report.say("stagger100_second", scene.at(1));
        }
        {   // Stagger 0: one address at a time, in order; the stalled first eats the whole deadline.
            isolated::Scene scene = isolated::set_up(race_name, {Role::stalled, Role::listening});
            greet::Client client;
            client.set_connect_stagger(0ms);
            client.set_timeout(400ms);
            std::error_code ec;
            const auto start = Clock::now();
            client.connect(race_name, scene.port, ec);
            report.number("serial_ms", ms_since(start));
            report.say("serial_code", errc_name(ec));
            report.say("serial_what", greet::last_error_message());
            report.say("serial_open", client.is_open() ? "yes" : "no");
            report.say("serial_first", scene.at(0));
            report.say("serial_second", scene.at(1));
        }
        {   // A refused first address: the next starts at once, not after the stagger; the
            // setup callback runs on each attempt's socket.
            isolated::Scene scene = isolated::set_up(race_name, {Role::refusing, Role::listening});
            greet::Client client;
            client.set_timeout(guard);
            int calls = 0;
            client.set_socket_options([&calls](greet::native_handle_type, std::error_code&) { ++calls; });
            const auto start = Clock::now();
            client.connect(race_name, scene.port);
            report.number("refused_first_ms", ms_since(start));
            report.say("refused_first_peer", client.peer_address().to_string());
            report.say("refused_first_second", scene.at(1));
            report.number("refused_first_calls", calls);
        }
    });
    INFO("child: " << child.text);
    REQUIRE_CHILD_FINISHED(child);

    const double first_ms = child.number("default_ms");
    WARN("stalled " << child.value("first") << " then listening " << child.value("second") << ": connected in " << first_ms
                    << " ms (default stagger 250 ms); with stagger 100 ms: " << child.number("stagger100_ms")
                    << " ms; refused first address: " << child.number("refused_first_ms") << " ms");
    CHECK(first_ms >= 200);
    CHECK(first_ms < 1500);
    CHECK(child.value("default_peer") == child.value("second"));
    CHECK(child.value("default_accepted_from") == child.value("default_local"));
    CHECK(child.value("default_echo") == "ping");

    CHECK(child.number("stagger100_ms") >= 100);
    CHECK(child.number("stagger100_ms") < 1000);
    CHECK(child.value("stagger100_peer") == child.value("stagger100_second"));

    const std::string serial = child.value("serial_what");
    CHECK(child.value("serial_code") == "timed_out");
    CHECK(child.number("serial_ms") >= 400);
    CHECK(child.number("serial_ms") < 1400);
    CHECK(contains(serial, child.value("serial_first") + " ETIMEDOUT"));
    CHECK(contains(serial, child.value("serial_second") + " not tried"));
    CHECK(contains(serial, "gave up after 400 ms"));
    CHECK(child.value("serial_open") == "no");

    CHECK(child.number("refused_first_ms") < 200); // well under the 250 ms stagger
    CHECK(child.value("refused_first_peer") == child.value("refused_first_second"));
    CHECK(child.number("refused_first_calls") == 2);
#else
    GREET_TEST_SKIP("needs Linux: a name with several addresses comes from a fake /etc/hosts in a mount namespace");
#endif
}

TEST_CASE("the timeout is one deadline for the whole connect, however many addresses", "[connect][race][timeouts][linux]") {
#ifdef __linux__
    if (!has_ipv6_loopback()) GREET_TEST_SKIP("this machine has no IPv6 loopback");
    using isolated::Role;
    const std::string hosts = "127.0.0.2 greet-one.test\n"
                              "::1 greet-two.test\n127.0.0.2 greet-two.test\n"
                              "::1 greet-four.test\n127.0.0.2 greet-four.test\n127.0.0.3 greet-four.test\n127.0.0.4 greet-four.test\n";
    struct Case {
        const char* label;
        const char* name;
        std::size_t addresses;
        std::chrono::milliseconds stagger;
    };
    static const Case cases[] = {{"one", "greet-one.test", 1, 250ms},
                                 {"two", "greet-two.test", 2, 250ms},
                                 {"four", "greet-four.test", 4, 250ms},
                                 {"four_stagger50", "greet-four.test", 4, 50ms}};
    const isolated::Outcome child = isolated::run({hosts}, [](isolated::Report& report) {
        for (const Case& c : cases) {
            const std::string label = c.label;
            isolated::Scene scene = isolated::set_up(c.name, std::vector<Role>(c.addresses, Role::stalled));
            std::string each;
            for (std::size_t i = 0; i < c.addresses; ++i) each += (i ? " " : "") + scene.at(i);
            report.say(label + "_addresses", each);
            greet::Client client;
            client.set_timeout(300ms);
            client.set_connect_stagger(c.stagger);
            const auto start = Clock::now();
            try {
                client.connect(c.name, scene.port);
                report.say(label + "_code", "connected");
            } catch (const greet::TimeoutError& e) {
                report.number(label + "_ms", ms_since(start));
                report.say(label + "_code", errc_name(e.code()));
                report.say(label + "_what", e.what());
            } catch (const greet::Error& e) {
                report.number(label + "_ms", ms_since(start));
                report.say(label + "_code", "not a TimeoutError: " + errc_name(e.code()));
                report.say(label + "_what", e.what());
            }
            report.say(label + "_open", client.is_open() ? "yes" : "no");
        }
    });
    INFO("child: " << child.text);
    REQUIRE_CHILD_FINISHED(child);

    std::string times;
    for (const Case& c : cases) {
        const std::string label = c.label;
        const double ms = child.number(label + "_ms");
        const std::string what = child.value(label + "_what");
        times += " " + label + ": " + std::to_string(ms) + " ms;";
        INFO(label << ": " << what);
        CHECK(child.value(label + "_code") == "timed_out");
        CHECK(ms >= 300);
        CHECK(ms < 1300);
        CHECK(contains(what, "gave up after 300 ms"));
        CHECK(child.value(label + "_open") == "no");
        if (c.addresses > 1) {
            // Every address is named: those started with ETIMEDOUT, the rest "not tried".
            const std::string all = child.value(label + "_addresses");
            std::size_t timed_out = 0, not_tried = 0;
            for (std::size_t at = 0; at < all.size();) {
                const std::size_t end = std::min(all.find(' ', at), all.size());
                const std::string address = all.substr(at, end - at);
                timed_out += contains(what, address + " ETIMEDOUT");
                not_tried += contains(what, address + " not tried");
                at = end + 1;
            }
            CHECK(timed_out + not_tried == c.addresses);
            // Started at 0 and 250 ms with the default stagger; all four by 150 ms with 50 ms.
            CHECK(timed_out == (c.stagger == 50ms ? c.addresses : 2));
        }
    }
    WARN("connect with set_timeout(300ms) to stalled addresses gave up after:" << times);
#else
    GREET_TEST_SKIP("needs Linux: names with several addresses come from a fake /etc/hosts in a mount namespace");
#endif
}

TEST_CASE("a refused address and a stalled one: the error names both and its code is connection_refused", "[connect][race][errors][linux]") {
#ifdef __linux__
    if (!has_ipv6_loopback()) GREET_TEST_SKIP("this machine has no IPv6 loopback");
    using isolated::Role;
    const isolated::Outcome child = isolated::run({race_hosts}, [](isolated::Report& report) {
        struct Order {
            const char* label;
            Role first, second;
        };
        for (const Order& order : {Order{"stalled_first", Role::stalled, Role::refusing}, Order{"refused_first", Role::refusing, Role::stalled}}) {
            const std::string label = order.label;
            isolated::Scene scene = isolated::set_up(race_name, {order.first, order.second});
            report.say(label + "_first", scene.at(0));
            report.say(label + "_second", scene.at(1));
            greet::Client client;
            client.set_timeout(600ms);
            std::error_code ec;
            const auto start = Clock::now();
            client.connect(race_name, scene.port, ec); // the error-code twin
            report.number(label + "_ms", ms_since(start));
            report.say(label + "_code", errc_name(ec));
            report.say(label + "_what", greet::last_error_message());
            report.say(label + "_open", client.is_open() ? "yes" : "no");
        }
        // The throwing form: the same code, and no TimeoutError (the code is no timeout).
        isolated::Scene scene = isolated::set_up(race_name, {Role::stalled, Role::refusing});
        greet::Client client;
        client.set_timeout(600ms);
        try {
            client.connect(race_name, scene.port);
            report.say("thrown", "nothing");
        } catch (const greet::TimeoutError& e) {
            report.say("thrown", "TimeoutError " + errc_name(e.code()));
        } catch (const greet::Error& e) {
            report.say("thrown", "Error " + errc_name(e.code()));
        }
    });
    INFO("child: " << child.text);
    REQUIRE_CHILD_FINISHED(child);

    for (const std::string label : {"stalled_first", "refused_first"}) {
        const std::string what = child.value(label + "_what");
        const bool stalled_first = label == "stalled_first";
        const std::string stalled = child.value(label + (stalled_first ? "_first" : "_second"));
        const std::string refusing = child.value(label + (stalled_first ? "_second" : "_first"));
        INFO(label << ": " << what);
        CHECK(child.value(label + "_code") == "connection_refused");
        CHECK(contains(what, stalled + " ETIMEDOUT"));
        CHECK(contains(what, refusing + " ECONNREFUSED"));
        CHECK(child.value(label + "_open") == "no");
        CHECK(child.number(label + "_ms") >= 600); // the stalled attempt runs to the deadline
        CHECK(child.number(label + "_ms") < 1600);
        WARN(label << ": failed after " << child.number(label + "_ms") << " ms: " << what);
    }
    CHECK(child.value("thrown") == "Error connection_refused");
#else
    GREET_TEST_SKIP("needs Linux: a name with several addresses comes from a fake /etc/hosts in a mount namespace");
#endif
}

TEST_CASE("a race leaves no descriptor behind: the losers are closed, and all of them when every address fails", "[connect][race][linux]") {
#ifdef __linux__
    if (!has_ipv6_loopback()) GREET_TEST_SKIP("this machine has no IPv6 loopback");
    using isolated::Role;
    const isolated::Outcome child = isolated::run({race_hosts}, [](isolated::Report& report) {
        {
            isolated::Scene scene = isolated::set_up(race_name, {Role::stalled, Role::listening});
            greet::Client warm_up; // loads the resolver's modules and whatever else a first connect opens for good
            warm_up.set_timeout(guard);
            warm_up.connect(race_name, scene.port);
            warm_up.close();
            greet::Client client;
            client.set_timeout(guard);
            const int before = isolated::descriptors();
            client.connect(race_name, scene.port); // the stalled attempt loses after 250 ms
            report.number("won_before", before);
            report.number("won_connected", isolated::descriptors());
            report.say("won_peer", client.peer_address().to_string());
            report.say("won_expected", scene.at(1));
            client.close();
            report.number("won_closed", isolated::descriptors());
        }
        const struct {
            const char* label;
            Role second;
        } failing[] = {{"timed_out", Role::stalled}, {"refused", Role::refusing}};
        for (const auto& f : failing) {
            const std::string label = f.label;
            isolated::Scene scene = isolated::set_up(race_name, {Role::stalled, f.second});
            greet::Client client;
            client.set_timeout(300ms);
            const int before = isolated::descriptors();
            std::error_code ec;
            client.connect(race_name, scene.port, ec);
            report.number(label + "_before", before);
            report.number(label + "_after", isolated::descriptors());
            report.say(label + "_code", errc_name(ec));
        }
    });
    INFO("child: " << child.text);
    REQUIRE_CHILD_FINISHED(child);

    const double before = child.number("won_before");
    REQUIRE(before > 0);
    CHECK(child.value("won_peer") == child.value("won_expected"));
    CHECK(child.number("won_connected") == before + 1); // the winner only
    CHECK(child.number("won_closed") == before);
    CHECK(child.value("timed_out_code") == "timed_out");
    CHECK(child.number("timed_out_after") == child.number("timed_out_before"));
    CHECK(child.value("refused_code") == "connection_refused");
    CHECK(child.number("refused_after") == child.number("refused_before"));
#else
    GREET_TEST_SKIP("needs Linux: /proc/self/fd, and a fake /etc/hosts in a mount namespace");
#endif
}

TEST_CASE("a Canceller ends a racing connect, which leaves the Client unconnected and free to connect again", "[connect][race][cancel][linux]") {
#ifdef __linux__
    if (!has_ipv6_loopback()) GREET_TEST_SKIP("this machine has no IPv6 loopback");
    using isolated::Role;
    const isolated::Outcome child = isolated::run({race_hosts}, [](isolated::Report& report) {
        greet::Canceller canceller;
        greet::Client client;
        client.set_timeout(guard);
        client.set_canceller(canceller);
        client.set_connect_stagger(50ms);
        {
            isolated::Scene scene = isolated::set_up(race_name, {Role::stalled, Role::stalled});
            const int before = isolated::descriptors();
            std::atomic<bool> done{false};
            std::error_code result;
            Clock::time_point ended{};
            std::thread connecting([&] {
                client.connect(race_name, scene.port, result);
                ended = Clock::now();
                done.store(true);
            });
            // Both attempts run once both their sockets are open (bounded by 5 s; the connect's own guard timeout bounds the join).
            bool racing = false;
            const auto until = Clock::now() + 5s;
            while (!racing && !done.load() && Clock::now() < until) {
                racing = isolated::descriptors() >= before + 2;
                if (!racing) std::this_thread::yield();
            }
            const auto cancelled_at = Clock::now();
            canceller.cancel();
            connecting.join();
            report.say("racing", racing ? "yes" : "no");
            report.say("code", errc_name(result));
            report.say("what", greet::last_error_message());
            report.number("latency_ms", std::chrono::duration<double, std::milli>(ended - cancelled_at).count());
            report.say("open", client.is_open() ? "yes" : "no");
            report.number("before", before);
            report.number("after", isolated::descriptors());
            std::error_code still;
            client.connect(race_name, scene.port, still); // cancelled until reset()
            report.say("still_code", errc_name(still));
        }
        canceller.reset();
        isolated::Scene scene = isolated::set_up(race_name, {Role::stalled, Role::listening});
        std::error_code again;
        client.connect(race_name, scene.port, again);
        report.say("again_code", errc_name(again));
        report.say("again_peer", again ? std::string() : client.peer_address().to_string());
        report.say("again_expected", scene.at(1));
    });
    INFO("child: " << child.text);
    REQUIRE_CHILD_FINISHED(child);

    WARN("cancel() to the end of a racing connect: " << child.number("latency_ms") << " ms");
    CHECK(child.value("racing") == "yes");
    CHECK(child.value("code") == "operation_canceled");
    CHECK(child.number("latency_ms") >= 0);
    CHECK(child.number("latency_ms") < 500);
    CHECK(child.value("open") == "no");
    CHECK(child.number("after") == child.number("before"));
    CHECK(child.value("still_code") == "operation_canceled");
    CHECK(child.value("again_code") == "none");
    CHECK(child.value("again_peer") == child.value("again_expected"));
#else
    GREET_TEST_SKIP("needs Linux: a name with several addresses comes from a fake /etc/hosts in a mount namespace");
#endif
}

// ---------------------------------------------------------------------------
// 2. Host "".

TEST_CASE("connect(\"\", port) reaches a server on localhost", "[connect]") {
    greet::Server server("localhost", 0);
    server.set_timeout(guard);
    const std::uint16_t port = server.local_address().port;
    greet::Client client;
    client.set_timeout(guard);
    client.connect("", port);
    CHECK(client.peer_address().port == port);
    auto accepted = server.accept();
    CHECK(accepted.second == client.local_address());
    accepted.first.set_timeout(guard);
    client.send_line("here");
    CHECK(accepted.first.recv_line() == "here");
}

// ---------------------------------------------------------------------------
// 3. Socket options.

TEST_CASE("socket options set before connect apply to the connected socket", "[connect][options]") {
    greet::Server server("127.0.0.1", 0);
    server.set_timeout(guard);
    greet::Client client;
    client.set_timeout(guard);
    client.set_no_delay(true);
    client.set_keep_alive(greet::KeepAlive{std::chrono::seconds(30), std::chrono::seconds(5), 3});
    client.set_send_buffer_size(65536);
    client.set_receive_buffer_size(100000);
    client.set_linger(std::chrono::seconds(7));
    client.connect("127.0.0.1", server.local_address().port);
    const greet::native_handle_type s = client.native_handle();
    const int no_delay = int_option(s, IPPROTO_TCP, TCP_NODELAY);
    const int keep_alive = int_option(s, SOL_SOCKET, SO_KEEPALIVE);
    const int send_buffer = int_option(s, SOL_SOCKET, SO_SNDBUF);
    const int receive_buffer = int_option(s, SOL_SOCKET, SO_RCVBUF);
    const LingerValue linger = linger_option(s);
    WARN("before connect, read back: TCP_NODELAY " << no_delay << ", SO_KEEPALIVE " << keep_alive << ", SO_SNDBUF " << send_buffer
                                                   << " (set 65536), SO_RCVBUF " << receive_buffer << " (set 100000), SO_LINGER "
                                                   << linger.on << "/" << linger.seconds << " s");
    CHECK(no_delay == 1);
    CHECK(keep_alive == 1);
    CHECK(send_buffer >= 65536); // Linux doubles it (up to wmem_max, 4 MiB here)
    CHECK(receive_buffer >= 100000);
    CHECK(linger.on != 0);
    CHECK(linger.seconds == 7);
#ifdef __linux__
    CHECK(int_option(s, IPPROTO_TCP, TCP_KEEPIDLE) == 30);
    CHECK(int_option(s, IPPROTO_TCP, TCP_KEEPINTVL) == 5);
    CHECK(int_option(s, IPPROTO_TCP, TCP_KEEPCNT) == 3);
#endif
    // The connection works with them.
    auto accepted = server.accept();
    accepted.first.set_timeout(guard);
    client.send_line("options");
    CHECK(accepted.first.recv_line() == "options");
}

TEST_CASE("socket options set on a connected Client apply at once", "[connect][options]") {
    auto pair = guarded_pair();
    greet::Client& client = pair.client;
    const greet::native_handle_type s = client.native_handle();

    client.set_no_delay(true);
    CHECK(int_option(s, IPPROTO_TCP, TCP_NODELAY) == 1);
    client.set_no_delay(false);
    CHECK(int_option(s, IPPROTO_TCP, TCP_NODELAY) == 0);

    client.set_keep_alive(greet::KeepAlive{std::chrono::seconds(120), std::chrono::seconds(15), 4});
    CHECK(int_option(s, SOL_SOCKET, SO_KEEPALIVE) == 1);
#ifdef __linux__
    CHECK(int_option(s, IPPROTO_TCP, TCP_KEEPIDLE) == 120);
    CHECK(int_option(s, IPPROTO_TCP, TCP_KEEPINTVL) == 15);
    CHECK(int_option(s, IPPROTO_TCP, TCP_KEEPCNT) == 4);
#endif
    client.set_keep_alive(std::nullopt);
    CHECK(int_option(s, SOL_SOCKET, SO_KEEPALIVE) == 0);

    client.set_send_buffer_size(32768);
    const int send_buffer = int_option(s, SOL_SOCKET, SO_SNDBUF);
    CHECK(send_buffer >= 32768);
    client.set_receive_buffer_size(48000);
    const int receive_buffer = int_option(s, SOL_SOCKET, SO_RCVBUF);
    CHECK(receive_buffer >= 48000);

    client.set_linger(std::chrono::seconds(0));
    const LingerValue zero = linger_option(s);
    CHECK(zero.on != 0);
    CHECK(zero.seconds == 0);
    client.set_linger(std::nullopt);
    const LingerValue off = linger_option(s);
    CHECK(off.on == 0);
    WARN("when connected, read back: SO_SNDBUF " << send_buffer << " (set 32768), SO_RCVBUF " << receive_buffer
                                                 << " (set 48000), SO_LINGER 0 s: " << zero.on << "/" << zero.seconds << ", nullopt: " << off.on);

    // Still one working connection.
    pair.client.send_line("after options");
    CHECK(pair.accepted.recv_line() == "after options");
}

TEST_CASE("invalid socket option values fail with invalid_argument and change nothing", "[connect][options][errors]") {
    greet::Server server("127.0.0.1", 0);
    server.set_timeout(guard);
    greet::Client client;
    client.set_timeout(guard);
    client.set_send_buffer_size(65536);
    client.set_linger(std::chrono::seconds(3));

    struct Bad {
        const char* what;
        std::function<void(greet::Client&, std::error_code&)> call;
    };
    const std::vector<Bad> bad = {
        {"set_send_buffer_size(-1)", [](greet::Client& c, std::error_code& ec) { c.set_send_buffer_size(-1, ec); }},
        {"set_send_buffer_size(0)", [](greet::Client& c, std::error_code& ec) { c.set_send_buffer_size(0, ec); }},
        {"set_receive_buffer_size(-4096)", [](greet::Client& c, std::error_code& ec) { c.set_receive_buffer_size(-4096, ec); }},
        {"set_keep_alive(idle 0)",
         [](greet::Client& c, std::error_code& ec) { c.set_keep_alive(greet::KeepAlive{std::chrono::seconds(0), std::chrono::seconds(10), 6}, ec); }},
        {"set_keep_alive(interval 0)",
         [](greet::Client& c, std::error_code& ec) { c.set_keep_alive(greet::KeepAlive{std::chrono::seconds(60), std::chrono::seconds(0), 6}, ec); }},
        {"set_keep_alive(count 0)",
         [](greet::Client& c, std::error_code& ec) { c.set_keep_alive(greet::KeepAlive{std::chrono::seconds(60), std::chrono::seconds(10), 0}, ec); }},
        {"set_linger(-1 s)", [](greet::Client& c, std::error_code& ec) { c.set_linger(std::chrono::seconds(-1), ec); }},
    };
    const auto refuses_all = [&](const char* when) {
        for (const Bad& b : bad) {
            std::error_code ec;
            b.call(client, ec);
            INFO(when << ": " << b.what << ": " << greet::last_error_message());
            CHECK(ec == std::errc::invalid_argument);
        }
    };
    refuses_all("before connect");
    // The throwing form says the same.
    const auto thrown = test::thrown([&] { client.set_linger(std::chrono::seconds(-1)); });
    REQUIRE(thrown);
    CHECK(thrown->code() == std::errc::invalid_argument);

    // The refused values replaced none of the kept ones: the connect applies those.
    client.connect("127.0.0.1", server.local_address().port);
    const greet::native_handle_type s = client.native_handle();
    CHECK(int_option(s, SOL_SOCKET, SO_SNDBUF) >= 65536);
    CHECK(int_option(s, SOL_SOCKET, SO_KEEPALIVE) == 0);
    CHECK(linger_option(s).seconds == 3);

    const int send_buffer = int_option(s, SOL_SOCKET, SO_SNDBUF);
    const int receive_buffer = int_option(s, SOL_SOCKET, SO_RCVBUF);
    refuses_all("when connected");
    CHECK(int_option(s, SOL_SOCKET, SO_SNDBUF) == send_buffer);
    CHECK(int_option(s, SOL_SOCKET, SO_RCVBUF) == receive_buffer);
    CHECK(int_option(s, SOL_SOCKET, SO_KEEPALIVE) == 0);
    CHECK(linger_option(s).seconds == 3);
    CHECK(client.is_open());
}

TEST_CASE("set_socket_options runs on the socket before it connects, and a refusal fails the connect with its code", "[connect][options]") {
    greet::Server server("127.0.0.1", 0);
    server.set_timeout(guard);
    const std::uint16_t port = server.local_address().port;

    greet::Client client;
    client.set_timeout(guard);
    int calls = 0;
    bool connected_at_setup = true;
    client.set_socket_options([&](greet::native_handle_type s, std::error_code&) {
        ++calls;
        sockaddr_storage peer{};
        socklen_t size = sizeof peer;
        connected_at_setup = ::getpeername(s, reinterpret_cast<sockaddr*>(&peer), &size) == 0;
        set_int_option(s, SOL_SOCKET, SO_KEEPALIVE, 1);
#ifdef __linux__
        set_int_option(s, SOL_SOCKET, SO_PRIORITY, 5);
#endif
    });
    client.connect("127.0.0.1", port);
    CHECK(calls == 1);
    CHECK_FALSE(connected_at_setup);
    CHECK(int_option(client.native_handle(), SOL_SOCKET, SO_KEEPALIVE) == 1);
#ifdef __linux__
    const int priority = int_option(client.native_handle(), SOL_SOCKET, SO_PRIORITY);
    WARN("set_socket_options set SO_PRIORITY 5; read back: " << priority);
    CHECK(priority == 5);
#endif

    // A setup that sets ec refuses the socket: connect fails with that code and stays unconnected.
    greet::Client refused;
    refused.set_timeout(guard);
    refused.set_socket_options([](greet::native_handle_type, std::error_code& ec) { ec = std::make_error_code(std::errc::permission_denied); });
    std::error_code ec;
    refused.connect("127.0.0.1", port, ec);
    const std::string what = greet::last_error_message();
    INFO(what);
    CHECK(ec == std::errc::permission_denied);
    CHECK_FALSE(refused.is_open());
    CHECK(contains(what, "127.0.0.1:" + std::to_string(port)));
    const auto thrown = test::thrown([&] { refused.connect("127.0.0.1", port); });
    REQUIRE(thrown);
    CHECK(thrown->code() == std::errc::permission_denied);

    // The newest setup replaces the one before: an empty one lets it connect.
    refused.set_socket_options(greet::SocketOptions{});
    refused.connect("127.0.0.1", port);
    CHECK(refused.is_open());
}

// ---------------------------------------------------------------------------
// 4. The Server's options.

TEST_CASE("Server::set_socket_options runs on each listener before it binds", "[connect][server][options]") {
    greet::Server server;
    int calls = 0;
    bool bound_at_setup = true;
    server.set_socket_options([&](greet::native_handle_type s, std::error_code&) {
        ++calls;
        bound_at_setup = bound_to(s).second != 0; // an unbound socket has port 0 (Windows: getsockname fails)
        set_int_option(s, SOL_SOCKET, SO_KEEPALIVE, 1);
        set_int_option(s, SOL_SOCKET, SO_RCVBUF, 50000);
    });
    server.bind("127.0.0.1", 0);
    server.listen();
    server.set_timeout(guard);
    CHECK(calls == 1);
    CHECK_FALSE(bound_at_setup);
    const std::vector<greet::native_handle_type> handles = server.native_handles();
    REQUIRE(handles.size() == 1);
    CHECK(int_option(handles[0], SOL_SOCKET, SO_KEEPALIVE) == 1);
    const int receive_buffer = int_option(handles[0], SOL_SOCKET, SO_RCVBUF);
    WARN("a listener's SO_RCVBUF set to 50000 in its setup reads back as " << receive_buffer);
    CHECK(receive_buffer >= 50000);
    greet::Client client;
    client.set_timeout(guard);
    client.connect("127.0.0.1", server.local_address().port);
    CHECK(server.accept().second == client.local_address());

    // A refusal fails the bind with its code.
    greet::Server refused;
    refused.set_socket_options([](greet::native_handle_type, std::error_code& ec) { ec = std::make_error_code(std::errc::permission_denied); });
    std::error_code ec;
    refused.bind("127.0.0.1", 0, ec);
    INFO(greet::last_error_message());
    CHECK(ec == std::errc::permission_denied);
    CHECK_FALSE(refused.is_open());
    CHECK(refused.native_handles().empty());
}

// Binding "" listens on every interface; the tests only ever connect to loopback addresses.
TEST_CASE("Server::set_dual_stack chooses one dual-stack listener or one per family", "[connect][server]") {
    if (!has_ipv6_loopback()) GREET_TEST_SKIP("this machine has no IPv6 loopback");
    // IPV6_V6ONLY of the IPv6 listener as its setup callback sees it: set by the Server, not yet bound.
    int v6only_at_setup = -2;
    const greet::SocketOptions record = [&v6only_at_setup](greet::native_handle_type s, std::error_code&) {
        const int value = int_option(s, IPPROTO_IPV6, IPV6_V6ONLY); // -1 on the IPv4 socket
        if (value >= 0) v6only_at_setup = value;
    };
    const auto v6only_of = [](const greet::Server& server) {
        for (greet::native_handle_type h : server.native_handles())
            if (bound_to(h).first == AF_INET6) return int_option(h, IPPROTO_IPV6, IPV6_V6ONLY);
        return -2; // no IPv6 listener
    };
    const auto reaches = [](greet::Server& server, const std::string& host, const std::string& seen_as) {
        greet::Client client;
        client.set_timeout(guard);
        client.connect(host, server.local_address().port);
        const auto accepted = server.accept();
        INFO(host << " -> " << accepted.second.to_string());
        CHECK(accepted.second == client.local_address());
        CHECK(accepted.second.host == seen_as);
    };
    const auto bound = [&](const char* host, std::optional<bool> dual) {
        greet::Server server;
        if (dual) server.set_dual_stack(*dual);
        server.set_socket_options(record);
        server.bind(host, 0);
        server.listen();
        server.set_timeout(guard);
        return server;
    };

    SECTION("false on \"\": an IPv6-only listener and an IPv4 one, on one port") {
        greet::Server server = bound("", false);
        const std::vector<greet::native_handle_type> handles = server.native_handles();
        REQUIRE(handles.size() == 2);
        const auto a = bound_to(handles[0]), b = bound_to(handles[1]);
        CHECK(((a.first == AF_INET6 && b.first == AF_INET) || (a.first == AF_INET && b.first == AF_INET6)));
        CHECK(a.second == b.second);
        CHECK(a.second == server.local_address().port);
        CHECK(v6only_at_setup == 1);
        CHECK(v6only_of(server) == 1);
        reaches(server, "127.0.0.1", "127.0.0.1");
        reaches(server, "::1", "::1");
    }
    SECTION("unset on \"\": one dual-stack listener") {
        greet::Server server = bound("", std::nullopt);
        REQUIRE(server.native_handles().size() == 1);
        CHECK(v6only_at_setup == 0);
        CHECK(v6only_of(server) == 0);
        reaches(server, "127.0.0.1", "127.0.0.1"); // ::ffff:127.0.0.1, shown as IPv4
        reaches(server, "::1", "::1");
    }
    SECTION("true on \"\": one dual-stack listener") {
        greet::Server server = bound("", true);
        REQUIRE(server.native_handles().size() == 1);
        CHECK(v6only_of(server) == 0);
        reaches(server, "127.0.0.1", "127.0.0.1");
        reaches(server, "::1", "::1");
    }
    SECTION("true on \"::1\": the Server clears IPV6_V6ONLY before the bind") {
        greet::Server server = bound("::1", true);
        REQUIRE(server.native_handles().size() == 1);
        CHECK(v6only_at_setup == 0);
        // Linux makes a socket bound to one IPv6 address (not :: nor a mapped one) IPv6-only
        // whatever was asked: ::1 can take no IPv4 client anyway.
        const int after_bind = v6only_of(server);
        WARN("set_dual_stack(true) on ::1: IPV6_V6ONLY " << v6only_at_setup << " before the bind, " << after_bind << " after it");
#ifdef __linux__
        CHECK(after_bind == 1);
#endif
        reaches(server, "::1", "::1");
    }
    SECTION("unset on \"::1\": IPv6 only") {
        greet::Server server = bound("::1", std::nullopt);
        REQUIRE(server.native_handles().size() == 1);
        CHECK(v6only_at_setup == 1);
        CHECK(v6only_of(server) == 1);
        reaches(server, "::1", "::1");
    }
}

// ---------------------------------------------------------------------------
// 5. IPv6 scope ids.

#ifdef __linux__
namespace {
// <linux/ipv6.h>'s in6_ifreq, which SIOCSIFADDR on an IPv6 socket takes (that header clashes with <netinet/in.h>).
struct In6IfReq {
    in6_addr address;
    std::uint32_t prefix_length;
    int index;
};
// Whether /proc/net/if_inet6 lists fe80::1 on lo without IFA_F_TENTATIVE (0x40).
bool link_local_usable() {
    std::ifstream table("/proc/net/if_inet6");
    std::string address, index, prefix, scope, flags, name;
    for (int line = 0; line < 256 && table >> address >> index >> prefix >> scope >> flags >> name; ++line)
        if (address == "fe800000000000000000000000000001" && name == "lo") return (std::stoul(flags, nullptr, 16) & 0x40) == 0;
    return false;
}
} // namespace
#endif

TEST_CASE("a link-local address with a scope id prints as fe80::1%lo", "[connect][ipv6][linux]") {
#ifdef __linux__
    const isolated::Outcome child = isolated::run({{}, true}, [](isolated::Report& report) {
        // fe80::1/64 on the namespace's own lo (loopback addresses skip duplicate detection).
        const unsigned index = ::if_nametoindex("lo");
        if (index == 0) throw isolated::Skip{isolated::os_text("if_nametoindex(lo)")};
        const int s = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0) throw isolated::Skip{isolated::os_text("an IPv6 socket")};
        // valgrind checks SIOCSIFADDR's argument as a 40-byte struct ifreq: give it the room, zeroed.
        struct {
            In6IfReq request;
            char room[40];
        } padded;
        std::memset(&padded, 0, sizeof padded);
        In6IfReq& request = padded.request;
        ::inet_pton(AF_INET6, "fe80::1", &request.address);
        request.prefix_length = 64;
        request.index = static_cast<int>(index);
        const bool added = ::ioctl(s, SIOCSIFADDR, &request) == 0;
        const std::string why = added ? std::string() : isolated::os_text("adding fe80::1/64 to lo");
        ::close(s);
        if (!added) throw isolated::Skip{why};
        // The kernel finishes duplicate address detection (which lo skips) in a work queue: until
        // then the address is tentative and cannot be bound. Wait for its flag to clear (bounded).
        bool usable = false;
        for (const auto until = Clock::now() + 5s; !usable && Clock::now() < until;) {
            usable = link_local_usable();
            if (!usable) std::this_thread::yield();
        }
        if (!usable) throw isolated::Skip{"fe80::1 on lo stayed tentative (or never showed in /proc/net/if_inet6) for 5 s"};

        greet::Server server("fe80::1%lo", 0);
        server.set_timeout(guard);
        const std::uint16_t port = server.local_address().port;
        report.say("port", std::to_string(port));
        report.say("server_local", server.local_address().to_string());
        for (const std::string& host : std::vector<std::string>{"fe80::1%lo", "[fe80::1%lo]", "fe80::1%" + std::to_string(index)}) {
            const std::string label = host == "fe80::1%lo" ? "name" : host[0] == '[' ? "bracketed" : "index";
            greet::Client client;
            client.set_timeout(guard);
            client.connect(host, port);
            report.say(label + "_peer", client.peer_address().to_string());
            report.say(label + "_local", client.local_address().to_string());
            auto accepted = server.accept();
            report.say(label + "_accepted_from", accepted.second.to_string());
            report.say(label + "_accepted_peer", accepted.first.peer_address().to_string());
        }
    });
    INFO("child: " << child.text);
    REQUIRE_CHILD_FINISHED(child);

    const std::string port = child.value("port");
    REQUIRE_FALSE(port.empty());
    const std::string expected = "[fe80::1%lo]:" + port;
    WARN("scope ids: the server is at " << child.value("server_local") << ", a client connected to \"fe80::1%lo\" sees "
                                        << child.value("name_peer"));
    CHECK(child.value("server_local") == expected);
    for (const char* label : {"name", "bracketed", "index"}) {
        const std::string l = label;
        INFO(l);
        CHECK(child.value(l + "_peer") == expected);
        CHECK(test::starts_with(child.value(l + "_local"), "[fe80::1%lo]:"));
        CHECK(child.value(l + "_accepted_from") == child.value(l + "_local"));
        CHECK(child.value(l + "_accepted_peer") == child.value(l + "_local"));
    }
#else
    GREET_TEST_SKIP("needs Linux: a network namespace of its own to put fe80::1 on lo");
#endif
}
