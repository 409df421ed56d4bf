// Unix-domain sockets: Server::bind_unix, Client::connect_unix, peer_credentials and
// Address::unix_domain, on real sockets in a private folder per test (test::TempDir).
// The framing, receive, timeout and cancel families run over Unix-domain sockets too,
// through GREET_TEST_TRANSPORT() in their own files; this file holds what is Unix's own.
#include "catch.hpp"
#include "greet_socket.hpp"
#include "support.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#ifndef _WIN32
#include <cerrno>
#include <csignal>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

using namespace std::chrono_literals;
using test::contains;
using test::guard;
using test::starts_with;
using test::thrown;

#ifdef _WIN32

// Windows' AF_UNIX (1803 and later; Wine's varies) has no stale-file, permission or
// credential semantics to compare with POSIX; what can be checked without a socket is.
TEST_CASE("Unix-domain sockets on Windows: the checks made before any system call", "[unix]") {
    greet::Server server;
    const auto empty = thrown([&] { server.bind_unix(""); });
    REQUIRE(empty);
    CHECK(empty->code() == std::errc::invalid_argument);
    greet::Client client;
    const auto abstract = thrown([&] { client.connect_unix(std::string("\0name", 5)); });
    REQUIRE(abstract);
    CHECK(abstract->code() == std::errc::invalid_argument);
    CHECK(contains(abstract->what(), "Linux"));
    CHECK_FALSE(client.is_open());
    CHECK_FALSE(server.is_open());
}

TEST_CASE("Unix-domain sockets: the POSIX cases", "[unix][posix]") {
    GREET_TEST_SKIP("socket files, permissions and stale sockets are POSIX semantics");
}

#else

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t path_limit = sizeof(sockaddr_un::sun_path) - 1; // 107 on Linux

// What lstat says is at path: 's' a socket, 'f' a regular file, 'd' a folder, '-' nothing, '?' other.
char file_at(const std::string& path) {
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0) return '-';
    if (S_ISSOCK(info.st_mode)) return 's';
    if (S_ISREG(info.st_mode)) return 'f';
    if (S_ISDIR(info.st_mode)) return 'd';
    return '?';
}
std::size_t entries_in(const std::string& folder) {
    std::size_t n = 0;
    for (auto it = std::filesystem::directory_iterator(folder); it != std::filesystem::directory_iterator(); ++it) ++n;
    return n;
}
std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A socket bound at path by the raw API (no greet::Server): closed on destruction, its file left behind.
struct RawSocket {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    RawSocket() = default;
    RawSocket(const RawSocket&) = delete;
    RawSocket& operator=(const RawSocket&) = delete;
    ~RawSocket() { close(); }
    bool bind(const std::string& path) const {
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        if (path.size() >= sizeof address.sun_path) return false;
        path.copy(address.sun_path, path.size());
        return ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
    }
    void close() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
};
// A crashed server's leftovers: a socket file no process listens on.
void make_stale_socket_file(const std::string& path) {
    RawSocket raw;
    REQUIRE(raw.fd >= 0);
    REQUIRE(raw.bind(path));
    raw.close();
    REQUIRE(file_at(path) == 's');
}

greet::Client connect_to(const std::string& path) {
    greet::Client client;
    client.set_timeout(guard);
    client.connect_unix(path);
    return client;
}
// A listening Unix-domain Server at path, accept() bounded by guard.
greet::Server listen_at(const std::string& path) {
    greet::Server server;
    server.bind_unix(path);
    server.set_timeout(guard);
    return server;
}
greet::Client accept_from(greet::Server& server) {
    greet::Client client = server.accept().first;
    client.set_timeout(guard);
    return client;
}
// One line each way and one message each way.
void round_trip(greet::Client& a, greet::Client& b) {
    CHECK(a.send_line("hello over AF_UNIX") == 19);
    CHECK(b.recv_line() == "hello over AF_UNIX");
    const std::string payload = test::pattern(100000, 5);
    auto sender = test::start([&] { return b.send_message(payload); });
    CHECK(a.recv_message() == payload);
    CHECK(sender.get() == payload.size() + 4);
    CHECK(a.send_message("") == 4);
    CHECK(b.recv_message().empty());
}

// Reads one int from fd within the guard: how a forked child reports. nullopt on timeout.
std::optional<int> read_int_within_guard(int fd) {
    pollfd ready{};
    ready.fd = fd;
    ready.events = POLLIN;
    if (::poll(&ready, 1, static_cast<int>(guard.count())) != 1) return std::nullopt;
    int value = 0;
    if (::read(fd, &value, sizeof value) != static_cast<ssize_t>(sizeof value)) return std::nullopt;
    return value;
}

} // namespace

// ---------------------------------------------------------------------------
// 1. Round trips and addresses.

TEST_CASE("bind_unix and connect_unix: lines and messages both ways", "[unix]") {
    const test::TempDir dir;
    const std::string path = dir / "echo.sock";
    greet::Server server = listen_at(path);
    CHECK(server.is_open());
    CHECK(file_at(path) == 's');
    greet::Client client = connect_to(path); // bind_unix listens at once: no listen() call
    greet::Client accepted = accept_from(server);
    round_trip(client, accepted);
    round_trip(accepted, client);
    client.close();
    CHECK(accepted.recv(10).empty());
}

TEST_CASE("Unix-domain addresses print as the path and \"(unnamed)\"", "[unix]") {
    const test::TempDir dir;
    const std::string path = dir / "addr.sock";
    greet::Server server = listen_at(path);
    const greet::Address bound = server.local_address();
    CHECK(bound.unix_domain);
    CHECK(bound.host == path);
    CHECK(bound.port == 0);
    CHECK(bound.to_string() == path);

    greet::Client client = connect_to(path);
    auto accepted_pair = server.accept();
    greet::Client accepted = std::move(accepted_pair.first);
    const greet::Address from = accepted_pair.second;
    accepted.set_timeout(guard);
    CHECK(from.unix_domain);
    CHECK(from.host.empty());
    CHECK(from.to_string() == "(unnamed)");
    CHECK(accepted.peer_address() == from);
    CHECK(accepted.local_address().to_string() == path);
    CHECK(client.peer_address().to_string() == path);
    CHECK(client.peer_address().unix_domain);
    CHECK(client.local_address().to_string() == "(unnamed)");
    std::ostringstream printed;
    printed << client.peer_address() << " " << client.local_address();
    CHECK(printed.str() == path + " (unnamed)");
    CHECK(client.peer_address() != greet::Address{path, 0, false}); // a TCP host named like the path is another address

    SECTION("a client's errors name the path; an accepted client's \"client of <path>\"") {
        client.set_timeout(50ms);
        accepted.set_timeout(50ms);
        const auto mine = thrown<greet::TimeoutError>([&] { client.recv(1); });
        REQUIRE(mine);
        CHECK(starts_with(mine->what(), "recv " + path + ": ETIMEDOUT"));
        const auto theirs = thrown<greet::TimeoutError>([&] { accepted.recv_line(); });
        REQUIRE(theirs);
        INFO(theirs->what());
        CHECK(starts_with(theirs->what(), "recv_line client of " + path + ": ETIMEDOUT"));
    }
}

// ---------------------------------------------------------------------------
// 2. The file at the path: stale, live, not a socket, removed at the end.

TEST_CASE("bind_unix replaces a stale socket file", "[unix]") {
    const test::TempDir dir;
    const std::string path = dir / "stale.sock";
    make_stale_socket_file(path);
    SECTION("connect_unix to it is ECONNREFUSED") {
        greet::Client client;
        client.set_timeout(guard);
        const auto error = thrown([&] { client.connect_unix(path); });
        REQUIRE(error);
        CHECK(error->code() == std::errc::connection_refused);
        CHECK(contains(error->what(), path));
        CHECK_FALSE(client.is_open());
    }
    SECTION("and a server takes its place") {
        greet::Server server = listen_at(path);
        CHECK(file_at(path) == 's');
        greet::Client client = connect_to(path);
        greet::Client accepted = accept_from(server);
        round_trip(client, accepted);
    }
}

TEST_CASE("bind_unix refuses a live socket with EADDRINUSE and leaves it working", "[unix]") {
    const test::TempDir dir;
    const std::string path = dir / "live.sock";
    greet::Server first = listen_at(path);
    greet::Server second;
    const auto error = thrown([&] { second.bind_unix(path); });
    REQUIRE(error);
    CHECK(error->code() == std::errc::address_in_use);
    INFO(error->what());
    CHECK(starts_with(error->what(), "bind_unix " + path + ": EADDRINUSE"));
    CHECK(contains(error->what(), "listening"));
    CHECK_FALSE(second.is_open());
    second.close(); // must not remove the first server's file
    CHECK(file_at(path) == 's');
    // bind_unix told live from stale by connecting: the first server accepts that probe
    // as a client that is gone at once (its stream ends), then ours.
    greet::Client client = connect_to(path);
    greet::Client probe = accept_from(first);
    CHECK(probe.recv(1).empty());
    greet::Client accepted = accept_from(first);
    round_trip(client, accepted);
}

TEST_CASE("bind_unix never removes a file that is not a socket", "[unix]") {
    const test::TempDir dir;
    SECTION("a regular file") {
        const std::string path = dir / "precious.txt";
        {
            std::ofstream out(path, std::ios::binary);
            out << "keep me";
        }
        greet::Server server;
        const auto error = thrown([&] { server.bind_unix(path); });
        REQUIRE(error);
        CHECK(error->code() == std::errc::address_in_use);
        INFO(error->what());
        CHECK(contains(error->what(), "not a socket"));
        CHECK(file_at(path) == 'f');
        CHECK(read_file(path) == "keep me");
        CHECK_FALSE(server.is_open());
    }
    SECTION("a folder") {
        const std::string path = dir / "folder";
        REQUIRE(::mkdir(path.c_str(), 0700) == 0);
        greet::Server server;
        std::error_code ec;
        server.bind_unix(path, ec);
        CHECK(ec == std::errc::address_in_use);
        CHECK(file_at(path) == 'd');
    }
}

TEST_CASE("a path too long, empty or holding a NUL is EINVAL before any system call", "[unix]") {
    const test::TempDir dir;
    const std::string prefix = dir.path() + "/";
    REQUIRE(prefix.size() < path_limit);
    const std::string longest = prefix + std::string(path_limit - prefix.size(), 'L');
    const std::string too_long = prefix + std::string(path_limit + 1 - prefix.size(), 'L');
    REQUIRE(longest.size() == path_limit);
    REQUIRE(too_long.size() == path_limit + 1);

    SECTION("one byte over the limit: the message names the length and the limit; no file") {
        greet::Server server;
        const auto bound = thrown([&] { server.bind_unix(too_long); });
        REQUIRE(bound);
        CHECK(bound->code() == std::errc::invalid_argument);
        INFO(bound->what());
        CHECK(contains(bound->what(), std::to_string(too_long.size()) + " bytes"));
        CHECK(contains(bound->what(), "allows " + std::to_string(path_limit)));
        CHECK_FALSE(server.is_open());
        greet::Client client;
        const auto connected = thrown([&] { client.connect_unix(too_long); });
        REQUIRE(connected);
        CHECK(connected->code() == std::errc::invalid_argument);
        CHECK(contains(connected->what(), std::to_string(too_long.size())));
        CHECK(entries_in(dir.path()) == 0); // the OS would have bound a path cut short
        // Not cut short into the longest path either: that one is free.
        CHECK(file_at(longest) == '-');
    }
    SECTION("exactly the limit works") {
        greet::Server server = listen_at(longest);
        CHECK(file_at(longest) == 's');
        greet::Client client = connect_to(longest);
        greet::Client accepted = accept_from(server);
        round_trip(client, accepted);
        CHECK(client.peer_address().host == longest);
    }
    SECTION("an empty path") {
        greet::Server server;
        const auto bound = thrown([&] { server.bind_unix(""); });
        REQUIRE(bound);
        CHECK(bound->code() == std::errc::invalid_argument);
        CHECK(contains(bound->what(), "needs a path"));
        greet::Client client;
        const auto connected = thrown([&] { client.connect_unix(""); });
        REQUIRE(connected);
        CHECK(connected->code() == std::errc::invalid_argument);
        CHECK_FALSE(client.is_open());
#ifdef __linux__
        const auto bare_nul = thrown([&] { server.bind_unix(std::string(1, '\0')); }); // an abstract name with no name
        REQUIRE(bare_nul);
        CHECK(bare_nul->code() == std::errc::invalid_argument);
#endif
    }
    SECTION("a NUL inside a path") {
        const std::string path = dir / std::string("a\0b.sock", 8);
        greet::Server server;
        const auto bound = thrown([&] { server.bind_unix(path); });
        REQUIRE(bound);
        CHECK(bound->code() == std::errc::invalid_argument);
        CHECK(contains(bound->what(), "NUL"));
        greet::Client client;
        const auto connected = thrown([&] { client.connect_unix(path); });
        REQUIRE(connected);
        CHECK(connected->code() == std::errc::invalid_argument);
        CHECK(entries_in(dir.path()) == 0); // "a" (the path the OS would have seen) was not made
    }
}

TEST_CASE("the socket file goes when the Server closes or is destroyed", "[unix]") {
    const test::TempDir dir;
    const std::string path = dir / "gone.sock";
    SECTION("close()") {
        greet::Server server = listen_at(path);
        REQUIRE(file_at(path) == 's');
        server.close();
        CHECK_FALSE(server.is_open());
        CHECK(file_at(path) == '-');
        server.bind_unix(path); // and the Server binds again
        CHECK(file_at(path) == 's');
    }
    SECTION("destruction") {
        {
            greet::Server server = listen_at(path);
            REQUIRE(file_at(path) == 's');
        }
        CHECK(file_at(path) == '-');
    }
    SECTION("a move takes the file along") {
        greet::Server moved;
        {
            greet::Server server = listen_at(path);
            moved = std::move(server);
        }
        CHECK(file_at(path) == 's');
        greet::Client client = connect_to(path);
        CHECK(accept_from(moved).is_open());
        moved.close();
        CHECK(file_at(path) == '-');
    }
    SECTION("a connected client does not keep it") {
        greet::Server server = listen_at(path);
        greet::Client client = connect_to(path);
        greet::Client accepted = accept_from(server);
        server.close();
        CHECK(file_at(path) == '-');
        round_trip(client, accepted); // the connection outlives its listener
    }
    SECTION("bind_unix failing on a live socket removes nothing") {
        greet::Server first = listen_at(path);
        {
            greet::Server second;
            std::error_code ec;
            second.bind_unix(path, ec);
            CHECK(ec == std::errc::address_in_use);
        }
        CHECK(file_at(path) == 's');
    }
}

TEST_CASE("a Server does not remove a file another server put in its place", "[unix]") {
    const test::TempDir dir;
    const std::string path = dir / "taken.sock";
    greet::Server server = listen_at(path);
    REQUIRE(::unlink(path.c_str()) == 0);
    RawSocket other;
    REQUIRE(other.fd >= 0);
    REQUIRE(other.bind(path));
    REQUIRE(::listen(other.fd, 4) == 0);
    server.close();
    CHECK(file_at(path) == 's');
    // Still the other server's: a client reaches it.
    greet::Client client = connect_to(path);
    CHECK(client.is_open());
    other.close();
    ::unlink(path.c_str());
}

// ---------------------------------------------------------------------------
// 3. Permissions: the folder decides who may connect.

TEST_CASE("a socket in a folder the caller may not enter: EACCES", "[unix][posix]") {
    test::TempDir dir;
    const std::string open_folder = dir / "open";
    const std::string closed_folder = dir / "closed";
    REQUIRE(::mkdir(open_folder.c_str(), 0777) == 0);
    REQUIRE(::mkdir(closed_folder.c_str(), 0700) == 0);
    REQUIRE(::chmod(open_folder.c_str(), 0777) == 0); // whatever the umask
    REQUIRE(::chmod(dir.path().c_str(), 0711) == 0);  // others may pass through to open/
    const std::string open_path = open_folder + "/s.sock";
    const std::string closed_path = closed_folder + "/s.sock";
    greet::Server open_server = listen_at(open_path);
    greet::Server closed_server = listen_at(closed_path);
    // The files themselves admit anyone: only the folder keeps a client out.
    REQUIRE(::chmod(open_path.c_str(), 0777) == 0);
    REQUIRE(::chmod(closed_path.c_str(), 0777) == 0);

    if (::geteuid() != 0) {
        // Not root: a folder without the owner's search permission keeps the owner out too.
        REQUIRE(::chmod(closed_folder.c_str(), 0) == 0);
        greet::Client client;
        client.set_timeout(guard);
        const auto error = thrown([&] { client.connect_unix(closed_path); });
        REQUIRE(::chmod(closed_folder.c_str(), 0700) == 0);
        REQUIRE(error);
        CHECK(error->code() == std::errc::permission_denied);
        INFO(error->what());
        CHECK(starts_with(error->what(), "connect_unix " + closed_path + ": EACCES"));
        CHECK_FALSE(client.is_open());
        greet::Client allowed = connect_to(open_path);
        CHECK(allowed.is_open());
        return;
    }
    // Root passes every permission check: a child that becomes nobody (65534) tries. It
    // reports through a pipe: 0 connected, else the errno; -1 when it could not become nobody.
    int report[2];
    REQUIRE(::pipe(report) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(report[0]);
        const auto tell = [&](int value) {
            if (::write(report[1], &value, sizeof value) != static_cast<ssize_t>(sizeof value)) ::_exit(2);
        };
        if (::setgid(65534) != 0 || ::setuid(65534) != 0 || ::geteuid() != 65534) {
            tell(-1);
            ::_exit(0);
        }
        for (const std::string* path : {&open_path, &closed_path}) {
            greet::Client client;
            std::error_code ec;
            client.set_timeout(guard, ec);
            client.connect_unix(*path, ec);
            tell(ec ? (ec == std::errc::permission_denied ? EACCES : (ec.value() ? ec.value() : 1000)) : 0);
        }
        ::_exit(0);
    }
    ::close(report[1]);
    const std::optional<int> became = read_int_within_guard(report[0]);
    const std::optional<int> then = became && *became != -1 ? read_int_within_guard(report[0]) : std::nullopt;
    ::close(report[0]);
    if (!became || (*became != -1 && !then)) ::kill(child, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(became);
    if (*became == -1) GREET_TEST_SKIP("running as root, and a child could not become nobody (65534) to be refused");
    INFO("the child, as nobody: open folder " << *became << ", closed folder " << (then ? *then : -2));
    CHECK(*became == 0); // nobody may connect where the folder lets it
    REQUIRE(then);
    CHECK(*then == EACCES);
    CHECK(WIFEXITED(status));
}

// ---------------------------------------------------------------------------
// 4. Linux: abstract names and credentials.

TEST_CASE("Linux abstract names: no file, printed as @name", "[unix][linux]") {
#ifndef __linux__
    greet::Server server;
    const auto error = thrown([&] { server.bind_unix(std::string("\0greet", 6)); });
    REQUIRE(error);
    CHECK(error->code() == std::errc::invalid_argument);
    GREET_TEST_SKIP("abstract names exist on Linux only (checked: EINVAL here)");
#else
    const test::TempDir dir; // the working folder must not gain a file either
    const std::string visible = "greet-test-" + std::to_string(::getpid()) + "-abstract";
    const std::string name = std::string(1, '\0') + visible;
    greet::Server server = listen_at(name);
    const greet::Address bound = server.local_address();
    CHECK(bound.unix_domain);
    CHECK(bound.host == name);
    CHECK(bound.to_string() == "@" + visible);
    CHECK(file_at(visible) == '-');
    CHECK(file_at(dir / visible) == '-');

    greet::Client client = connect_to(name);
    greet::Client accepted = accept_from(server);
    CHECK(client.peer_address().to_string() == "@" + visible);
    CHECK(client.peer_address().host.size() == name.size()); // no trailing NULs from sun_path
    round_trip(client, accepted);

    greet::Server second;
    const auto taken = thrown([&] { second.bind_unix(name); });
    REQUIRE(taken);
    CHECK(taken->code() == std::errc::address_in_use);
    CHECK(contains(taken->what(), "@" + visible));

    client.set_timeout(20ms);
    const auto timeout = thrown<greet::TimeoutError>([&] { client.recv(1); });
    REQUIRE(timeout);
    CHECK(starts_with(timeout->what(), "recv @" + visible + ": "));

    server.close(); // the name goes with its last socket
    greet::Client refused;
    std::error_code ec;
    refused.connect_unix(name, ec);
    CHECK(ec == std::errc::connection_refused);
    second.bind_unix(name);
    CHECK(second.is_open());

    SECTION("a NUL after the first is EINVAL") {
        greet::Server bad;
        const auto error = thrown([&] { bad.bind_unix(std::string("\0a\0b", 4)); });
        REQUIRE(error);
        CHECK(error->code() == std::errc::invalid_argument);
    }
    SECTION("an abstract name may be one byte longer than a path") {
        const std::string longest = std::string(1, '\0') + std::string(path_limit, 'A');
        greet::Server big = listen_at(longest);
        CHECK(big.local_address().host == longest);
        greet::Client c = connect_to(longest);
        CHECK(c.is_open());
        greet::Server over;
        std::error_code too_long;
        over.bind_unix(longest + "A", too_long);
        CHECK(too_long == std::errc::invalid_argument);
    }
#endif
}

TEST_CASE("peer_credentials: the connecting process as the kernel saw it", "[unix][linux]") {
    const test::TempDir dir;
    const std::string path = dir / "who.sock";
    greet::Server server = listen_at(path);
    greet::Client client = connect_to(path);
    greet::Client accepted = accept_from(server);
#ifndef __linux__
    const auto error = thrown([&] { accepted.peer_credentials(); });
    REQUIRE(error);
    GREET_TEST_SKIP("peer credentials are read on Linux only (checked: an Error here)");
#else
    const greet::Credentials who = accepted.peer_credentials();
    CHECK(who.pid == ::getpid());
    CHECK(who.uid == ::geteuid());
    CHECK(who.gid == ::getegid());
    const greet::Credentials server_side = client.peer_credentials(); // the listener's process
    CHECK(server_side.pid == ::getpid());
    CHECK(server_side.uid == ::geteuid());

    SECTION("a forked client's pid") {
        int report[2];
        REQUIRE(::pipe(report) == 0);
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            ::close(report[0]);
            greet::Client c;
            std::error_code ec;
            c.set_timeout(guard, ec);
            c.connect_unix(path, ec);
            const int value = ec ? 1 : 0;
            if (::write(report[1], &value, sizeof value) < 0) ::_exit(2);
            char byte = 0; // keep the connection until the parent closes the pipe
            if (::read(report[1], &byte, 1) < 0) ::_exit(0);
            ::_exit(0);
        }
        ::close(report[1]);
        const std::optional<int> connected = read_int_within_guard(report[0]);
        if (!connected) ::kill(child, SIGKILL);
        REQUIRE(connected == 0);
        greet::Client theirs = accept_from(server);
        const greet::Credentials them = theirs.peer_credentials();
        ::close(report[0]);
        ::kill(child, SIGKILL);
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        CHECK(them.pid == child);
        CHECK(them.uid == ::geteuid());
    }
    SECTION("over TCP: EINVAL; unconnected: ENOTCONN") {
        auto pair = test::guarded_pair(test::Transport::tcp);
        const auto tcp = thrown([&] { pair.accepted.peer_credentials(); });
        REQUIRE(tcp);
        CHECK(tcp->code() == std::errc::invalid_argument);
        CHECK(contains(tcp->what(), "Unix-domain"));
        greet::Client never;
        const auto unconnected = thrown([&] { never.peer_credentials(); });
        REQUIRE(unconnected);
        CHECK(unconnected->code() == std::errc::not_connected);
    }
#endif
}

// ---------------------------------------------------------------------------
// 5. connect_unix's errors and the error-code twins.

TEST_CASE("connect_unix to a missing path: ENOENT with a hint", "[unix]") {
    const test::TempDir dir;
    const std::string path = dir / "nobody.sock";
    greet::Client client;
    client.set_timeout(guard);
    const auto error = thrown([&] { client.connect_unix(path); });
    REQUIRE(error);
    CHECK(error->code() == std::errc::no_such_file_or_directory);
    INFO(error->what());
    CHECK(starts_with(error->what(), "connect_unix " + path + ": ENOENT"));
    CHECK(contains(error->what(), "is the server running"));
    CHECK_FALSE(client.is_open());
    CHECK(file_at(path) == '-');

    SECTION("the folder missing: bind_unix is ENOENT too") {
        greet::Server server;
        std::error_code ec;
        server.bind_unix(dir / "no/such/folder.sock", ec);
        CHECK(ec == std::errc::no_such_file_or_directory);
    }
    SECTION("and the same Client connects once a server is there") {
        greet::Server server = listen_at(path);
        client.connect_unix(path);
        CHECK(client.is_open());
        const auto again = thrown([&] { client.connect_unix(path); });
        REQUIRE(again);
        CHECK(again->code() == std::errc::already_connected);
    }
}

TEST_CASE("the error-code twins of bind_unix, connect_unix and peer_credentials", "[unix]") {
    const test::TempDir dir;
    const std::string path = dir / "twins.sock";
    const std::string too_long = dir.path() + "/" + std::string(path_limit, 'x');
    const auto stale_code = std::make_error_code(std::errc::io_error); // each call must clear it on success

    greet::Server server;
    std::error_code ec;
    server.bind_unix(too_long, ec);
    CHECK(ec == std::errc::invalid_argument);
    CHECK(contains(greet::last_error_message(), std::to_string(too_long.size()) + " bytes"));
    CHECK_FALSE(server.is_open());
    ec = stale_code;
    server.bind_unix(path, ec);
    CHECK_FALSE(ec);
    REQUIRE(server.is_open());
    server.set_timeout(guard);
    server.bind_unix(path, ec); // already bound
    CHECK(ec == std::errc::invalid_argument);
    CHECK(contains(greet::last_error_message(), "already bound"));

    greet::Client client;
    client.set_timeout(guard);
    client.connect_unix(dir / "missing.sock", ec);
    CHECK(ec == std::errc::no_such_file_or_directory);
    CHECK(starts_with(greet::last_error_message(), "connect_unix " + (dir / "missing.sock") + ": ENOENT"));
    CHECK_FALSE(client.is_open());
    ec = stale_code;
    client.connect_unix(path, ec);
    CHECK_FALSE(ec);
    REQUIRE(client.is_open());

    greet::Client accepted = accept_from(server);
    ec = stale_code;
    const greet::Credentials who = accepted.peer_credentials(ec);
#ifdef __linux__
    CHECK_FALSE(ec);
    CHECK(who.pid == ::getpid());
#else
    CHECK(ec);
    (void)who;
#endif
    auto pair = test::guarded_pair(test::Transport::tcp);
    pair.client.peer_credentials(ec);
    CHECK(ec == std::errc::invalid_argument);
}

// ---------------------------------------------------------------------------
// 6. Streams over a Unix-domain socket: cancel, close, reset, trickle, hostile lengths, EPIPE.

TEST_CASE("a receive blocked on a Unix-domain socket is cancelled and loses no byte", "[unix][cancel]") {
    auto pair = test::guarded_pair(test::Transport::unix_domain);
    greet::Canceller canceller;
    pair.client.set_canceller(canceller);
    const std::string head = test::header(10);
    pair.accepted.send(head + "01234"); // half of a message
#ifdef __linux__
    std::atomic<long> reader_id{0};
#endif
    auto reader = test::start([&] {
#ifdef __linux__
        reader_id = test::this_thread_id();
#endif
        return thrown([&] { pair.client.recv_message(); });
    });
#ifdef __linux__
    // Cancel once the reader sleeps in the OS (bounded; a cancel before it got there is fine too).
    const auto deadline = Clock::now() + guard;
    while (Clock::now() < deadline && (reader_id == 0 || test::thread_state(reader_id) != 'S')) std::this_thread::yield();
#endif
    const auto at = Clock::now();
    canceller.cancel();
    REQUIRE(reader.wait_for(guard) == std::future_status::ready);
    const auto error = reader.get();
    CHECK(Clock::now() - at < 5s);
    REQUIRE(error);
    CHECK(error->code() == std::errc::operation_canceled);
    CHECK(contains(error->what(), pair.endpoint));
    // Still cancelled: a later call fails at once, connect_unix too.
    CHECK(thrown([&] { pair.client.recv(1); }));
    greet::Client other;
    other.set_canceller(canceller);
    const auto connect_error = thrown([&] { other.connect_unix("/nonexistent/but/never/tried.sock"); });
    REQUIRE(connect_error);
    CHECK(connect_error->code() == std::errc::operation_canceled);
    CHECK_FALSE(other.is_open());

    canceller.reset();
    pair.accepted.send("56789");
    CHECK(pair.client.recv_message() == "0123456789");
}

TEST_CASE("connect_unix to a listener whose backlog is full waits for its timeout", "[unix][timeouts]") {
    const test::TempDir dir;
    const std::string path = dir / "busy.sock";
    greet::Server server = listen_at(path);
    server.listen(0); // bind_unix listened already; this only sets the backlog
    // Fill the queue: Linux admits backlog + 1 connections nobody accepted (bounded).
    std::vector<greet::Client> queued;
    std::optional<greet::Error> refused;
    for (int i = 0; i < 64 && !refused; ++i) {
        greet::Client client;
        client.set_timeout(200ms);
        refused = thrown([&] { client.connect_unix(path); });
        if (!refused) queued.push_back(std::move(client));
    }
    REQUIRE(refused);
    INFO("after " << queued.size() << " queued connections: " << refused->what());
    CHECK(queued.size() < 64);
    // A full backlog is the server being slow, not gone: the documented outcome is a
    // TimeoutError after the timeout ("is the server calling accept()?").
    CHECK(refused->code() == std::errc::timed_out);

    SECTION("and a canceller ends such a connect") {
        greet::Canceller canceller;
        greet::Client client;
        client.set_timeout(guard);
        client.set_canceller(canceller);
        auto connecting = test::start([&] { return thrown([&] { client.connect_unix(path); }); });
        canceller.cancel();
        REQUIRE(connecting.wait_for(guard) == std::future_status::ready);
        const auto error = connecting.get();
        REQUIRE(error);
        CHECK_FALSE(client.is_open());
        // Either cancelled while waiting, or (a kernel that refuses at once) the refusal itself.
        CHECK((error->code() == std::errc::operation_canceled || error->code() == refused->code()));
    }
}

TEST_CASE("a Unix-domain peer closing or resetting mid-message", "[unix]") {
    auto pair = test::guarded_pair(test::Transport::unix_domain);
    SECTION("close inside the payload: ClosedError, the partial bytes kept") {
        const std::string partial = test::header(10) + "abcd";
        pair.client.send(partial);
        pair.client.close();
        const auto error = thrown<greet::ClosedError>([&] { pair.accepted.recv_message(); });
        REQUIRE(error);
        CHECK(error->code() == greet::errc::peer_closed);
        CHECK(contains(error->what(), "client of "));
        CHECK(test::recv_all(pair.accepted, 1 << 20) == partial);
    }
    SECTION("close with bytes it never read: the other side's receive fails, it does not hang") {
        pair.accepted.send_message("unread by the client");
        pair.client.send(test::header(10) + "ab");
        pair.client.close(); // unread data: Linux resets the peer (ECONNRESET) instead of an orderly end
        const auto error = thrown([&] { pair.accepted.recv_message(); });
        REQUIRE(error);
        INFO(error->what());
        CHECK((error->code() == greet::errc::peer_closed || error->code() == std::errc::connection_reset));
        CHECK(error->code() != std::errc::timed_out);
    }
}

TEST_CASE("a Unix-domain peer trickling bytes cannot stretch a timeout", "[unix][timeouts]") {
    auto pair = test::guarded_pair(test::Transport::unix_domain);
    pair.client.set_timeout(300ms);
    std::atomic<bool> stop{false};
    // One byte every 20 ms, at most 500: each arrival would restart a per-read timeout.
    auto trickler = test::start([&] {
        std::size_t sent = 0;
        for (int i = 0; i < 500 && !stop; ++i) {
            pair.accepted.send("x");
            ++sent;
            std::this_thread::sleep_for(20ms); // the trickle's pace, not a synchronisation
        }
        return sent;
    });
    const auto start = Clock::now();
    const auto error = thrown<greet::TimeoutError>([&] { pair.client.recv_line(); });
    const auto elapsed = Clock::now() - start;
    stop = true;
    const std::size_t sent = trickler.get();
    REQUIRE(error);
    CHECK(elapsed < 3s);
    CHECK(contains(error->what(), pair.endpoint));
    // Every trickled byte is kept: the line comes back whole.
    pair.accepted.send("\n");
    pair.client.set_timeout(guard);
    CHECK(pair.client.recv_line() == std::string(sent, 'x'));
}

TEST_CASE("a hostile length over a Unix-domain socket is refused and stays unread", "[unix][framing]") {
    auto pair = test::guarded_pair(test::Transport::unix_domain);
    pair.client.send(std::string(4, '\xFF') + "tail");
    const auto error = thrown([&] { pair.accepted.recv_message(1 << 20); });
    REQUIRE(error);
    CHECK(error->code() == std::errc::message_size);
    CHECK(pair.accepted.recv_exact(8) == std::string(4, '\xFF') + "tail");
}

TEST_CASE("sending to a closed Unix-domain peer: EPIPE, and no SIGPIPE", "[unix][errors]") {
    // SIGPIPE at its default (the test runner may ignore it): a raised one would end the process.
    struct DefaultSigpipe {
        void (*before)(int) = std::signal(SIGPIPE, SIG_DFL);
        ~DefaultSigpipe() { std::signal(SIGPIPE, before); }
    } sigpipe;
    auto pair = test::guarded_pair(test::Transport::unix_domain);
    pair.accepted.close();
    std::optional<greet::Error> error;
    for (int i = 0; i < 100 && !error; ++i) error = thrown([&] { pair.client.send(std::string(1000, 'p')); });
    REQUIRE(error);
    CHECK((error->code() == std::errc::broken_pipe || error->code() == std::errc::connection_reset));
    std::error_code ec;
    pair.client.send_message("again", ec);
    CHECK(ec);
}

// ---------------------------------------------------------------------------
// 7. serve() and stop() on a Unix-domain server.

TEST_CASE("serve() over a Unix-domain socket answers 200 clients", "[unix][serve]") {
    const test::TempDir dir;
    const std::string path = dir / "serve.sock";
    greet::Server server = listen_at(path);
    std::atomic<int> handled{0};
    std::atomic<int> reported{0};
    greet::ServeOptions options;
    options.on_error = [&](const greet::Address&, const std::exception&) { ++reported; };
    test::Serving serving(server, [&](greet::Server& s) {
        s.serve(
            [&](greet::Client& client, const greet::Address& peer) {
                client.set_timeout(guard);
                const std::string name = client.recv_line();
                client.send_line("hello " + name + " from " + peer.to_string());
                ++handled;
            },
            options);
    });
    constexpr int threads = 4, each = 50;
    std::vector<std::future<int>> workers;
    workers.reserve(threads);
    for (int t = 0; t < threads; ++t)
        workers.push_back(test::start([&, t] {
            int answered = 0;
            for (int i = 0; i < each; ++i) {
                const std::string name = "c" + std::to_string(t * each + i);
                greet::Client client = connect_to(path);
                client.send_line(name);
                if (client.recv_line() == "hello " + name + " from (unnamed)") ++answered;
            }
            return answered;
        }));
    int answered = 0;
    for (auto& worker : workers) {
        REQUIRE(worker.wait_for(4 * guard) == std::future_status::ready);
        answered += worker.get();
    }
    CHECK(answered == threads * each);
    REQUIRE(serving.stop_and_wait());
    CHECK(handled == threads * each);
    CHECK(reported == 0);
}

TEST_CASE("stop() ends serve() on a Unix-domain server", "[unix][serve]") {
    const test::TempDir dir;
    const std::string path = dir / "stop.sock";
    greet::Server server = listen_at(path);
    std::promise<void> in_handler;
    std::atomic<bool> handler_cancelled{false};
    greet::ServeOptions options;
    options.grace = 50ms;
    options.on_error = [](const greet::Address&, const std::exception&) {};
    test::Serving serving(server, [&](greet::Server& s) {
        s.serve(
            [&](greet::Client& client, const greet::Address&) {
                client.set_timeout(guard);
                in_handler.set_value();
                const auto error = thrown([&] { client.recv_line(); }); // the client never sends
                handler_cancelled = error && error->code() == std::errc::operation_canceled;
            },
            options);
    });
    greet::Client client = connect_to(path);
    REQUIRE(in_handler.get_future().wait_for(guard) == std::future_status::ready);
    const auto at = Clock::now();
    REQUIRE(serving.stop_and_wait());
    CHECK(Clock::now() - at < 5s);
    CHECK(handler_cancelled);
    CHECK(server.stopped());
    // The handler's connection was shut down: the client sees the end of its stream.
    CHECK(test::recv_all(client, 1 << 10).empty());
    server.close();
    CHECK(file_at(path) == '-');
}

#endif // _WIN32
