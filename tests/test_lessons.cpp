// The tutorial's misconceptions, each shown on a real loopback socket.
// examples/lessons/README.md follows these test cases point by point, and the programs
// beside it print the same in plain words.
#include "catch.hpp"
#include "greet_socket.hpp"
#include "support.hpp"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <list>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#ifndef _WIN32
#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

using namespace std::chrono_literals;
using test::contains;
using test::ends_with;
using test::guard;
using test::starts_with;
using test::thrown;

namespace {

// Clients that give up after a second connect until one fails (at most limit of them).
struct Queue {
    std::list<greet::Client> connected;
    std::optional<greet::Error> next; // what the first client that did not get in saw
};
Queue connect_until_refused(std::uint16_t port, std::size_t limit) {
    Queue queue;
    for (std::size_t i = 0; i < limit && !queue.next; ++i) {
        greet::Client client;
        client.set_timeout(1s); // a handshake on loopback takes microseconds; 1 s is generous
        queue.next = thrown<greet::Error>([&] { client.connect("127.0.0.1", port); });
        if (!queue.next) queue.connected.push_back(std::move(client));
    }
    return queue;
}

// A number from a file such as /proc/sys/net/core/somaxconn; nullopt when there is none.
[[maybe_unused]] std::optional<long> read_number(const char* path) {
    std::ifstream file(path);
    long value = 0;
    if (file >> value) return value;
    return std::nullopt;
}

#ifndef _WIN32
// A raw socket, for what greet_socket does not do (UDP, options it never sets).
struct RawSocket {
    int fd;
    explicit RawSocket(int type, int family = AF_INET) : fd(::socket(family, type, 0)) {}
    ~RawSocket() { ::close(fd); }
    RawSocket(const RawSocket&) = delete;
    RawSocket& operator=(const RawSocket&) = delete;
    int bind_loopback(std::uint16_t port) const {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
    }
    std::uint16_t port() const {
        sockaddr_in address{};
        socklen_t length = sizeof address;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
        return ntohs(address.sin_port);
    }
};

// Binds 127.0.0.1:port in a child process that is not root: as root, it first becomes
// uid/gid 65534 ("nobody"), which takes every capability away. Returns "bound", or the
// greet::Error text the child saw; nullopt when the child could not give up root.
std::optional<std::string> bind_unprivileged(std::uint16_t port) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(fds[0]);
        std::string report;
        if (::geteuid() == 0 && (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0)) {
            report = "!";
        } else {
            try {
                greet::Server server("127.0.0.1", port);
                report = "bound";
            } catch (const greet::Error& e) {
                report = e.what();
            }
        }
        if (::write(fds[1], report.data(), report.size()) < 0) ::_exit(1);
        ::_exit(0);
    }
    ::close(fds[1]);
    std::string report;
    char buffer[256];
    for (int turn = 0; turn < 64; ++turn) {
        const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
        if (n <= 0) break;
        report.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    if (report == "!") return std::nullopt;
    return report;
}

// The states of the TCP sockets whose local port is `port`, from /proc/net/tcp and tcp6
// ("06" is TIME_WAIT, "0A" LISTEN). Empty where there is no /proc.
std::vector<std::string> tcp_states(std::uint16_t port) {
    char wanted[8];
    std::snprintf(wanted, sizeof wanted, ":%04X", static_cast<unsigned>(port));
    std::vector<std::string> states;
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream file(table);
        std::string line, slot, local, remote, state;
        while (std::getline(file, line)) {
            std::istringstream(line) >> slot >> local >> remote >> state;
            if (ends_with(local, wanted)) states.push_back(state);
        }
    }
    return states;
}
#endif

greet::Server* signalled_server = nullptr; // for the SIGTERM handler of lesson 10

} // namespace

TEST_CASE("lesson 1: listen(3) does not refuse the 4th client", "[lessons]") {
    const int backlog = GENERATE(0, 1, 3);
    INFO("listen(" << backlog << ")");
    greet::Server server("127.0.0.1", 0, backlog); // and no accept() for now
    const std::uint16_t port = server.local_address().port;
    Queue queue = connect_until_refused(port, 64);
    REQUIRE(queue.next);
    INFO(queue.next->what());
#ifdef __linux__
    // Linux completes one handshake more than the backlog (its test is "more than"), then
    // drops further SYNs: the next client is not refused, it waits until its timeout.
    CHECK(queue.connected.size() == static_cast<std::size_t>(backlog) + 1);
    CHECK(queue.next->code() == std::errc::timed_out);
    CHECK(starts_with(queue.next->what(), "connect 127.0.0.1:" + std::to_string(port) + ": ETIMEDOUT ("));
    CHECK(ends_with(queue.next->what(), "no address answered; is the address right, and is the server calling accept()?"));
    if (const auto cap = read_number("/proc/sys/net/core/somaxconn")) CHECK(*cap >= 128);
#else
    CHECK(queue.connected.size() >= static_cast<std::size_t>(backlog));
#endif
    REQUIRE_FALSE(queue.connected.empty());
    // The backlog holds connections the OS has completed: a queued client can already
    // send, and accept() later hands over the connection with the bytes waiting in it.
    queue.connected.front().send("Zoë");
    server.set_timeout(guard);
    auto [first, address] = server.accept();
    CHECK(address == queue.connected.front().local_address());
    first.set_timeout(guard);
    CHECK(first.recv_exact(4) == "Zoë");
    // With one place free again, a new client gets in at once.
    greet::Client late;
    late.set_timeout(guard);
    late.connect("127.0.0.1", port);
    CHECK(late.is_open());
}

TEST_CASE("lesson 2: one recv(1024) does not get the whole name", "[lessons]") {
    auto pair = test::connect_pair();
    pair.accepted.set_timeout(guard);
    const std::string first = "Zo\xC3", second = "\xAB\n"; // cut inside "ë" (C3 AB)
    SECTION("plain recv returns the pieces as they came") {
        pair.client.send(first);
        const std::string got = test::recv_some(pair.accepted, first.size());
        CHECK(got == first);
        CHECK_FALSE(greet::utf8::is_valid(got)); // Python's .decode() raises UnicodeDecodeError on this
        pair.client.send(second);
        CHECK(test::recv_some(pair.accepted, second.size()) == second);
    }
    SECTION("recv_text returns whole characters") {
        pair.client.send(first);
        std::string text;
        for (int turn = 0; turn < 2 && text.size() < 2; ++turn) text += pair.accepted.recv_text(1024);
        CHECK(text == "Zo"); // C3 is held back
        pair.client.send(second);
        for (int turn = 0; turn < 3 && text.size() < 5; ++turn) {
            const std::string piece = pair.accepted.recv_text(1024);
            CHECK(greet::utf8::is_valid(piece));
            text += piece;
        }
        CHECK(text == "Zoë\n");
    }
    SECTION("recv_line and recv_message return whole messages") {
        pair.client.send(first);
        pair.client.send(second);
        CHECK(pair.accepted.recv_line() == "Zoë");
        pair.client.send(std::string("\0\0\0\x04", 4) + first); // a message's header and first piece
        pair.client.send("\xAB");
        CHECK(pair.accepted.recv_message() == "Zoë");
    }
    SECTION("chaos mode cuts every receive short, as a slow network would") {
        pair.accepted.set_chaos(2024);
        const std::string name = "Zoë and her friends from 世界";
        pair.client.send(name);
        std::string got;
        int pieces = 0;
        for (; pieces < 64 && got.size() < name.size(); ++pieces) {
            const std::string piece = pair.accepted.recv(1024);
            CHECK(piece.size() <= 16);
            got += piece;
        }
        CHECK(got == name);
        CHECK(pieces > 1);
    }
}

TEST_CASE("lesson 3: the OS takes part of a large send, Client::send sends it all", "[lessons]") {
    auto pair = test::connect_pair();
    // The subject is what the OS itself does with a large send: chaos mode's 16-byte
    // pieces would turn these megabytes into a million system calls.
    pair.client.set_chaos(std::nullopt);
    pair.accepted.set_chaos(std::nullopt);
    pair.client.set_timeout(guard);
    pair.accepted.set_timeout(guard);
    const std::string big = test::pattern(32 << 20, 3); // far more than the socket buffers hold
#ifdef MSG_DONTWAIT
    const auto taken = ::send(pair.client.native_handle(), big.data(), big.size(), MSG_DONTWAIT);
    INFO("one raw non-blocking send() of " << big.size() << " bytes took " << taken);
    REQUIRE(taken > 0);
    const auto part = static_cast<std::size_t>(taken);
    CHECK(part < big.size()); // the rest is the caller's job: Python's sendall, C's loop
    CHECK(test::recv_some(pair.accepted, part) == big.substr(0, part));
#endif
    auto sender = test::start([&] { return pair.client.send(big); });
    CHECK(test::recv_some(pair.accepted, big.size()) == big);
    CHECK(sender.get() == big.size());
}

TEST_CASE("lesson 4: text is not bytes", "[lessons]") {
    const std::string name = greet::utf8::encode(u"Zoë"); // bytes("Zoë", "utf-8")
    CHECK(name == "Zo\xC3\xAB");
    CHECK(name.size() == 4); // std::string counts bytes, not characters
    CHECK(greet::utf8::decode(name) == U"Zoë"); // .decode()
    CHECK(greet::utf8::decode(name).size() == 3);
    CHECK(greet::utf8::encode(U"世界") == "\xE4\xB8\x96\xE7\x95\x8C");
    CHECK(greet::utf8::encode(L"Zoë") == name);
    // The text overloads of send put the same UTF-8 bytes on the wire.
    auto pair = test::connect_pair();
    pair.accepted.set_timeout(guard);
    CHECK(pair.client.send(u"Zoë") == 4);
    CHECK(pair.client.send(U"Zoë") == 4);
    CHECK(pair.client.send(L"Zoë") == 4);
    CHECK(pair.accepted.recv_exact(12) == name + name + name);
}

TEST_CASE("lesson 5: .decode() is UTF-8, and bad bytes are an error", "[lessons]") {
    const std::string latin1 = "Zo\xEB"; // "Zoë" as Latin-1 sends it
    const auto error = thrown<greet::Utf8Error>([&] { greet::utf8::decode(latin1); });
    REQUIRE(error);
    CHECK(error->offset() == 2);
    CHECK(error->code() == std::errc::illegal_byte_sequence);
    CHECK(ends_with(error->what(), "invalid UTF-8 at byte 2 (0xEB)"));
    CHECK(greet::utf8::sanitize(latin1) == "Zo\xEF\xBF\xBD"); // .decode(errors="replace")
    // On a socket, recv_text refuses the bytes and leaves them for recv().
    auto pair = test::connect_pair();
    pair.accepted.set_timeout(guard);
    pair.client.send(latin1 + "\n");
    std::string good;
    for (int turn = 0; turn < 2 && good.size() < 2; ++turn) good += pair.accepted.recv_text(1024);
    CHECK(good == "Zo");
    const auto received = thrown<greet::Utf8Error>([&] { pair.accepted.recv_text(1024); });
    REQUIRE(received);
    CHECK(contains(received->what(), "invalid UTF-8 (byte 0xEB); read it with recv() or pass it through utf8::sanitize"));
    CHECK(test::recv_some(pair.accepted, 2) == "\xEB\n");
}

TEST_CASE("lesson 6: one port, several sockets", "[lessons]") {
    greet::Server first("127.0.0.1", 0);
    const std::uint16_t port = first.local_address().port;
    SECTION("a second TCP server on the same address and port fails") {
        const auto error = thrown<greet::Error>([&] { greet::Server second("127.0.0.1", port); });
        REQUIRE(error);
        CHECK(error->code() == std::errc::address_in_use);
        CHECK(error->what() == "bind 127.0.0.1:" + std::to_string(port) +
                                   ": EADDRINUSE (Address already in use): another program is listening on this port");
    }
#ifndef _WIN32
    SECTION("UDP has port numbers of its own") {
        RawSocket udp(SOCK_DGRAM);
        REQUIRE(udp.fd >= 0);
        CHECK(udp.bind_loopback(port) == 0);
    }
#endif
    SECTION("127.0.0.1:p and [::1]:p are different sockets") {
        if (!test::has_ipv6_loopback()) GREET_TEST_SKIP("no IPv6 loopback here");
        // Another program may hold [::1]:p; then try another port (bounded).
        std::optional<greet::Server> v4, v6;
        for (int attempt = 0; attempt < 16 && !v6; ++attempt) {
            v4.emplace("127.0.0.1", 0);
            const std::uint16_t p = v4->local_address().port;
            try {
                v6.emplace("::1", p);
            } catch (const greet::Error& e) {
                CHECK(e.code() == std::errc::address_in_use);
            }
        }
        REQUIRE(v6);
        CHECK(v6->local_address() == greet::Address{"::1", v4->local_address().port});
    }
#if defined(__linux__) && defined(SO_REUSEPORT)
    SECTION("SO_REUSEPORT would let servers share a port; greet never sets it") {
        RawSocket a(SOCK_STREAM), b(SOCK_STREAM);
        const int on = 1;
        REQUIRE(::setsockopt(a.fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) == 0);
        REQUIRE(::setsockopt(b.fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) == 0);
        REQUIRE(a.bind_loopback(0) == 0);
        REQUIRE(::listen(a.fd, 8) == 0);
        CHECK(b.bind_loopback(a.port()) == 0); // silently sharing: the kernel splits the clients
        const auto error = thrown<greet::Error>([&] { greet::Server third("127.0.0.1", a.port()); });
        REQUIRE(error);
        CHECK(error->code() == std::errc::address_in_use); // greet fails loudly instead
    }
#endif
}

TEST_CASE("lesson 7: port numbers", "[lessons]") {
    SECTION("port 0 asks the OS for a free port") {
        greet::Server a("127.0.0.1", 0), b("127.0.0.1", 0);
        const std::uint16_t pa = a.local_address().port, pb = b.local_address().port;
        CHECK(pa != 0);
        CHECK(pb != 0);
        CHECK(pa != pb);
    }
    SECTION("a port is a number from 0 to 65535") {
        const auto error = thrown<greet::Error>([] { greet::parse_port("65536"); });
        REQUIRE(error);
        CHECK(error->what() == std::string("parse_port \"65536\": EINVAL (Invalid argument): a port is a whole number from 0 to 65535"));
    }
#ifndef _WIN32
    SECTION("ports below the unprivileged start need privileges: EACCES") {
        const long start = read_number("/proc/sys/net/ipv4/ip_unprivileged_port_start").value_or(1024);
        if (start <= 80) GREET_TEST_SKIP("net.ipv4.ip_unprivileged_port_start is " << start << ": every user may bind port 80 here");
        const auto report = bind_unprivileged(80);
        if (!report) GREET_TEST_SKIP("could not give up root (setuid 65534) in a child process");
        INFO(*report);
        CHECK(*report == "bind 127.0.0.1:80: EACCES (Permission denied): ports below 1024 need administrator rights; "
                         "use a port from 1024 to 65535");
    }
#endif
}

TEST_CASE("lesson 8: who can reach a server bound to each host", "[lessons]") {
    const bool ipv6 = test::has_ipv6_loopback();
    const auto reaches = [](const char* host, std::uint16_t port) {
        greet::Client client;
        client.set_timeout(guard);
        const auto error = thrown<greet::Error>([&] { client.connect(host, port); });
        if (error) CHECK(error->code() == std::errc::connection_refused);
        return !error;
    };
    struct Row {
        const char* bind;
        bool v4, v6;
    };
    for (const Row row : {Row{"127.0.0.1", true, false}, Row{"0.0.0.0", true, false}, Row{"::1", false, true},
                          Row{"::", false, true}, Row{"", true, true}, Row{"localhost", true, false}}) {
        INFO("bind(\"" << row.bind << "\")");
        if (!ipv6 && (row.v6 && !row.v4)) continue;
        greet::Server server(row.bind, 0);
        const std::uint16_t port = server.local_address().port;
        CHECK(reaches("127.0.0.1", port) == row.v4);
        if (ipv6 && std::string(row.bind) != "localhost") CHECK(reaches("::1", port) == row.v6); // localhost: as /etc/hosts says
    }
    SECTION("a dual-stack server sees IPv4 clients as plain IPv4 addresses") {
        greet::Server server("", 0);
        server.set_timeout(guard);
        greet::Client client("127.0.0.1", server.local_address().port);
        CHECK(server.accept().second.host == "127.0.0.1");
    }
}

TEST_CASE("lesson 9: closing, and TIME_WAIT on the side that closes first", "[lessons]") {
    auto pair = test::connect_pair();
    pair.client.set_timeout(guard);
    pair.accepted.set_timeout(guard);
    const std::uint16_t client_port = pair.client.local_address().port;
    const std::uint16_t server_port = pair.client.peer_address().port;
    pair.client.send("Zoë");
    CHECK(pair.accepted.recv_exact(4) == "Zoë");
    pair.client.shutdown_send();              // the client closes first
    CHECK(pair.accepted.recv(1024).empty());  // what the server sees: "" (Python: b"")
    pair.accepted.close();
    CHECK(pair.client.recv(1024).empty());    // the client has seen the server's FIN too
#ifdef __linux__
    const std::vector<std::string> states = tcp_states(client_port);
    if (states.empty() && tcp_states(server_port).empty()) GREET_TEST_SKIP("no /proc/net/tcp here");
    CHECK(std::find(states.begin(), states.end(), "06") != states.end()); // TIME_WAIT on the client's port
    const std::vector<std::string> server_states = tcp_states(server_port);
    CHECK(std::find(server_states.begin(), server_states.end(), "06") == server_states.end());
#else
    (void)client_port;
    (void)server_port;
#endif
}

#ifdef __linux__
TEST_CASE("lesson 9: a server that closes first can restart thanks to SO_REUSEADDR", "[lessons]") {
    std::optional<greet::Server> server;
    server.emplace("127.0.0.1", 0);
    server->set_timeout(guard);
    const std::uint16_t port = server->local_address().port;
    greet::Client client;
    client.set_timeout(guard);
    client.connect("127.0.0.1", port);
    auto accepted = server->accept().first;
    accepted.set_timeout(guard);
    server.reset();                   // the listening socket is gone
    accepted.shutdown_send();         // the server's side closes first
    CHECK(client.recv(1024).empty());
    client.close();
    CHECK(accepted.recv(1024).empty()); // both FINs are through: the server's side is in TIME_WAIT
    const std::vector<std::string> states = tcp_states(port);
    CHECK(std::find(states.begin(), states.end(), "06") != states.end());
    RawSocket plain(SOCK_STREAM); // no SO_REUSEADDR, like Python's socket.socket()
    CHECK(plain.bind_loopback(port) != 0);
    CHECK(errno == EADDRINUSE);
    greet::Server restarted("127.0.0.1", port); // greet sets SO_REUSEADDR: the restart works
    CHECK(restarted.local_address().port == port);
}
#endif

TEST_CASE("lesson 10: a server loop that Ctrl+C or SIGTERM ends cleanly", "[lessons]") {
    greet::Server server("127.0.0.1", 0);
    server.set_timeout(guard);
    SECTION("stop() from a signal handler") {
        signalled_server = &server;
        const auto previous = std::signal(SIGTERM, [](int) { signalled_server->stop(); });
        std::raise(SIGTERM);
        std::signal(SIGTERM, previous);
        signalled_server = nullptr;
    }
    SECTION("stop() from another thread while accept() waits") {
        auto waiter = test::start([&] { return thrown<greet::Error>([&] { server.accept(); }); });
        server.stop();
        const auto error = waiter.get();
        REQUIRE(error);
        CHECK(error->code() == std::errc::operation_canceled);
    }
    CHECK(server.stopped());
    const auto error = thrown<greet::Error>([&] { server.accept(); });
    REQUIRE(error);
    CHECK(error->code() == std::errc::operation_canceled);
    CHECK(ends_with(error->what(), ": ECANCELED (Operation canceled): the server was stopped"));
}

TEST_CASE("lesson 11: console text is UTF-8 in the program, UTF-16 at a Windows console", "[lessons]") {
    // What greet::input and greet::print convert at a Windows console, in both directions.
    const std::string text = "Zoë 世界 \xF0\x9F\x98\x80";
    const std::u16string wide = greet::detail::to_utf16(text);
    CHECK(wide == u"Zoë 世界 \U0001F600");
    CHECK(greet::detail::to_utf8(wide) == text);
#ifndef _WIN32
    // Elsewhere input() reads stdin's bytes as they are: UTF-8 from a UTF-8 terminal or pipe.
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const int saved = ::dup(STDIN_FILENO);
    REQUIRE(saved >= 0);
    const std::string typed = text + "\r\n";
    REQUIRE(::write(fds[1], typed.data(), typed.size()) == static_cast<ssize_t>(typed.size()));
    ::close(fds[1]);
    REQUIRE(::dup2(fds[0], STDIN_FILENO) == STDIN_FILENO);
    ::close(fds[0]);
    std::clearerr(stdin);
    const std::optional<std::string> line = greet::input();
    const std::optional<std::string> end = greet::input();
    ::dup2(saved, STDIN_FILENO);
    ::close(saved);
    std::clearerr(stdin);
    CHECK(line == text);
    CHECK_FALSE(end);
#endif
}

#ifndef _WIN32
TEST_CASE("lesson 12: UDP keeps message boundaries, TCP does not", "[lessons]") {
    RawSocket receiver(SOCK_DGRAM), sender(SOCK_DGRAM);
    REQUIRE(receiver.bind_loopback(0) == 0);
    timeval limit{10, 0}; // a lost datagram must fail the test, not hang it
    REQUIRE(::setsockopt(receiver.fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) == 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(receiver.port());
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const auto send_datagram = [&](const std::string& payload) {
        return ::sendto(sender.fd, payload.data(), payload.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
    };
    REQUIRE(send_datagram("Zoë") == 4);
    REQUIRE(send_datagram("hello") == 5);
    REQUIRE(send_datagram("0123456789") == 10);
    char buffer[1024];
    CHECK(::recv(receiver.fd, buffer, sizeof buffer, 0) == 4); // one datagram per receive, never merged
    CHECK(::recv(receiver.fd, buffer, sizeof buffer, 0) == 5);
    CHECK(::recv(receiver.fd, buffer, 4, 0) == 4); // too small a buffer: the rest of the datagram is gone
    CHECK(std::string(buffer, 4) == "0123");
    CHECK(::recv(receiver.fd, buffer, sizeof buffer, MSG_DONTWAIT) < 0); // nothing left of it
}
#endif

TEST_CASE("the errors a beginner meets, and their hints", "[lessons][errors]") {
    SECTION("ECONNREFUSED") {
        std::uint16_t port = 0;
        { port = greet::Server("127.0.0.1", 0).local_address().port; }
        const auto error = thrown<greet::Error>([&] { greet::Client("127.0.0.1", port); });
        REQUIRE(error);
        CHECK(error->what() == "connect 127.0.0.1:" + std::to_string(port) +
                                   ": ECONNREFUSED (Connection refused): is the server running?");
    }
    SECTION("EADDRNOTAVAIL: an address this machine does not have (TEST-NET, bind only)") {
        const auto error = thrown<greet::Error>([] { greet::Server("192.0.2.1", 0); });
        if (!error) GREET_TEST_SKIP("this machine has the address 192.0.2.1");
        CHECK(error->code() == std::errc::address_not_available);
        CHECK(error->what() == std::string("bind 192.0.2.1:0: EADDRNOTAVAIL (Cannot assign requested address): this machine "
                                           "has no such address; use \"localhost\", or \"\" for every interface"));
    }
    SECTION("an unknown host (a label longer than DNS allows: nothing is asked of the network)") {
        const std::string host = std::string(64, 'a') + ".invalid";
        const auto error = thrown<greet::ResolveError>([&] { greet::Client(host, 80); });
        REQUIRE(error);
        INFO(error->what());
        CHECK(starts_with(error->what(), "connect " + host + ":80: "));
#ifndef _WIN32
        CHECK(starts_with(error->what(), "connect " + host + ":80: EAI_")); // the resolver's name for it
#endif
        CHECK(ends_with(error->what(), ": is the host name right?"));
    }
    SECTION("a closed peer") {
        auto pair = test::connect_pair();
        pair.client.set_timeout(guard);
        pair.accepted.close();
        CHECK(pair.client.recv(1024).empty()); // no error: "" is how recv says the peer has gone
        const auto line = thrown<greet::ClosedError>([&] { pair.client.recv_line(); });
        REQUIRE(line);
        CHECK(ends_with(line->what(), ": the peer closed the connection: no more lines"));
        std::optional<greet::Error> sent;
        for (int turn = 0; turn < 64 && !sent; ++turn) sent = thrown<greet::Error>([&] { pair.client.send(std::string(65536, 'x')); });
        REQUIRE(sent);
        INFO(sent->what());
        // Where part of the data went first (chaos mode's small pieces), "; sent N of M bytes" follows the hint.
        const std::string what = sent->what();
        const bool expected = what.find(": EPIPE (Broken pipe): the peer has closed the connection") != std::string::npos ||
                              what.find(": ECONNRESET (Connection reset by peer): the peer closed the connection abruptly") != std::string::npos;
        CHECK(expected);
    }
}
