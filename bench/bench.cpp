// One workload, one implementation, one number: the rate, on stdout.
//
//     bench <raw|greet|asio> <w1|w2|w3|w4|w4naive|w5|w5view|w1unix|w2unix|w6> <count>
//
// Each run starts its own server on 127.0.0.1, port 0, on a thread, runs the client
// against it, and prints the client's rate (w1unix and w2unix: w1 and w2 over a
// Unix-domain socket in a private temporary folder, raw and greet only; w6: UDP ping-pong,
// raw and greet only) (w1: MB/s; w2, w4, w6: round trips/s; w3:
// connections/s; w5: lines/s), then the same work per CPU second of the process. scripts/bench.sh runs every pair, interleaved, and
// prints the table. "raw" is plain POSIX calls written the fastest straightforward way:
// the limit the others are measured against. asio is compiled in with -DBENCH_ASIO.
#include "greet_socket.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#ifdef BENCH_ASIO
#include <asio.hpp>
#endif

#include "timing.hpp"

namespace {

using timing::Clock;

using timing::begin;
using timing::cpu_seconds;
using timing::seconds_since;
using timing::wall_seconds;

constexpr std::size_t bulk_piece = 64 * 1024;
constexpr std::size_t ping_size = 32;
constexpr std::size_t message_size = 64; // W4 payload
constexpr std::size_t datagram_size = 64; // W6: one datagram each way per round trip
const char name_text[] = "Zo\xC3\xAB";   // W3: the client's name
const char reply_text[] = "message from server";

// W5's stream: one block of 24-byte lines, sent again and again.
std::string line_block() {
    std::string block;
    char line[32];
    for (int i = 0; block.size() + 24 <= bulk_piece; ++i) {
        std::snprintf(line, sizeof line, "line %08d of text  \n", i);
        block.append(line, 24);
    }
    return block;
}

[[noreturn]] void die(const char* what) {
    std::perror(what);
    std::exit(1);
}

// w1unix, w2unix: the socket file's path in a private folder (0700); empty for TCP on 127.0.0.1.
std::string unix_path;
char unix_folder[] = "/tmp/greet-bench-XXXXXX";
void remove_unix_folder() { // at any exit: greet's Server removed its file already, raw's is left
    ::unlink(unix_path.c_str());
    ::rmdir(unix_folder);
}

// --- raw POSIX: blocking sockets, no library.
namespace raw {

sockaddr_un unix_address() {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (unix_path.size() >= sizeof address.sun_path) die("unix path");
    std::memcpy(address.sun_path, unix_path.c_str(), unix_path.size() + 1);
    return address;
}

int listener(std::uint16_t& port) {
    if (!unix_path.empty()) {
        const int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const sockaddr_un address = unix_address();
        if (::bind(s, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 || ::listen(s, SOMAXCONN) != 0) die("bind");
        return s;
    }
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(s, reinterpret_cast<sockaddr*>(&address), length) != 0 || ::listen(s, SOMAXCONN) != 0) die("bind");
    ::getsockname(s, reinterpret_cast<sockaddr*>(&address), &length);
    port = ntohs(address.sin_port);
    return s;
}

int connect_to(std::uint16_t port) {
    if (!unix_path.empty()) {
        const int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const sockaddr_un address = unix_address();
        while (::connect(s, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
            if (errno != EINTR) die("connect");
        return s;
    }
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    while (::connect(s, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
        if (errno != EINTR) die("connect");
    return s;
}

int accept_one(int listener) {
    for (;;) {
        const int s = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (s >= 0) return s;
        if (errno != EINTR) die("accept");
    }
}

void send_all(int s, const char* p, std::size_t n) {
    while (n > 0) {
        const ssize_t rc = ::send(s, p, n, MSG_NOSIGNAL);
        if (rc < 0) {
            if (errno == EINTR) continue;
            die("send");
        }
        p += rc;
        n -= static_cast<std::size_t>(rc);
    }
}

std::size_t recv_some(int s, char* p, std::size_t n) {
    for (;;) {
        const ssize_t rc = ::recv(s, p, n, 0);
        if (rc >= 0) return static_cast<std::size_t>(rc);
        if (errno != EINTR) die("recv");
    }
}

bool recv_all(int s, char* p, std::size_t n) {
    while (n > 0) {
        const std::size_t got = recv_some(s, p, n);
        if (got == 0) return false;
        p += got;
        n -= got;
    }
    return true;
}

// Header and payload in one writev.
void send_message(int s, const char* payload, std::size_t n) {
    const auto size = static_cast<std::uint32_t>(n);
    unsigned char header[4] = {static_cast<unsigned char>(size >> 24), static_cast<unsigned char>(size >> 16),
                               static_cast<unsigned char>(size >> 8), static_cast<unsigned char>(size)};
    iovec parts[2] = {{header, 4}, {const_cast<char*>(payload), n}};
    std::size_t left = 4 + n;
    while (left > 0) {
        const ssize_t rc = ::writev(s, parts, 2);
        if (rc < 0) {
            if (errno == EINTR) continue;
            die("writev");
        }
        left -= static_cast<std::size_t>(rc);
        if (left == 0) break;
        // A partial write (never seen for 68 bytes): send the rest plainly.
        std::size_t done = static_cast<std::size_t>(rc);
        if (done < 4) {
            send_all(s, reinterpret_cast<char*>(header) + done, 4 - done);
            done = 4;
        }
        send_all(s, payload + (done - 4), n - (done - 4));
        left = 0;
    }
}

// The beginner's framing: the header, then the payload, in two sends.
void send_message_naive(int s, const char* payload, std::size_t n) {
    const auto size = static_cast<std::uint32_t>(n);
    char header[4] = {static_cast<char>(size >> 24), static_cast<char>(size >> 16), static_cast<char>(size >> 8),
                      static_cast<char>(size)};
    send_all(s, header, 4);
    send_all(s, payload, n);
}

// The hand-written reader: large recvs into one buffer, lines and messages cut out of it.
struct Reader {
    int s;
    char buffer[2 * bulk_piece];
    std::size_t begin = 0, end = 0;
    explicit Reader(int socket) : s(socket) {}
    bool fill() { // false at the end of the stream
        if (begin > 0) {
            std::memmove(buffer, buffer + begin, end - begin);
            end -= begin;
            begin = 0;
        }
        const std::size_t got = recv_some(s, buffer + end, sizeof buffer - end);
        end += got;
        return got > 0;
    }
    bool line(const char** text, std::size_t* length) {
        for (;;) {
            const void* nl = std::memchr(buffer + begin, '\n', end - begin);
            if (nl != nullptr) {
                *text = buffer + begin;
                *length = static_cast<std::size_t>(static_cast<const char*>(nl) - *text);
                begin += *length + 1;
                return true;
            }
            if (!fill()) return false;
        }
    }
    bool message(const char** payload, std::size_t* length) {
        while (end - begin < 4)
            if (!fill()) return false;
        const auto* h = reinterpret_cast<const unsigned char*>(buffer + begin);
        const std::size_t n = std::size_t{h[0]} << 24 | std::size_t{h[1]} << 16 | std::size_t{h[2]} << 8 | h[3];
        while (end - begin < 4 + n)
            if (!fill()) return false;
        *payload = buffer + begin + 4;
        *length = n;
        begin += 4 + n;
        return true;
    }
};

// W6: UDP ping-pong as users write it: the server unconnected (recvfrom, then sendto
// whoever sent), the client connect()ed to the server (send, recv). Blocking, no timeouts,
// as W2; one datagram in flight, so loopback has no reason to drop one.
double udp_ping_pong(long count) {
    const int server_socket = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(server_socket, reinterpret_cast<sockaddr*>(&address), length) != 0) die("bind");
    ::getsockname(server_socket, reinterpret_cast<sockaddr*>(&address), &length);
    std::thread server([&] {
        char buffer[datagram_size];
        for (long i = 0; i < count; ++i) {
            sockaddr_storage from{};
            socklen_t from_length = sizeof from;
            const ssize_t n = ::recvfrom(server_socket, buffer, sizeof buffer, 0, reinterpret_cast<sockaddr*>(&from), &from_length);
            if (n < 0) {
                if (errno == EINTR) { --i; continue; }
                die("recvfrom");
            }
            if (::sendto(server_socket, buffer, static_cast<std::size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), from_length) < 0) die("sendto");
        }
    });
    const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (::connect(s, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) die("connect");
    char buffer[datagram_size] = {};
    const auto start = begin();
    for (long i = 0; i < count; ++i) {
        if (::send(s, buffer, sizeof buffer, 0) != static_cast<ssize_t>(sizeof buffer)) die("send");
        if (recv_some(s, buffer, sizeof buffer) != sizeof buffer) die("w6 reply");
    }
    const double rate = static_cast<double>(count) / seconds_since(start);
    server.join();
    ::close(s);
    ::close(server_socket);
    return rate;
}

double run(const std::string& workload, long count) {
    if (workload == "w6") return udp_ping_pong(count);
    std::uint16_t port = 0;
    const int listening = listener(port);
    std::thread server;
    double rate = 0;
    if (workload == "w1") {
        server = std::thread([&] {
            const int c = accept_one(listening);
            static char buffer[bulk_piece];
            while (recv_some(c, buffer, sizeof buffer) > 0) {
            }
            send_all(c, "k", 1);
            ::close(c);
        });
        const int s = connect_to(port);
        static char block[bulk_piece];
        const auto start = begin();
        for (long i = 0; i < count * 16; ++i) send_all(s, block, sizeof block);
        ::shutdown(s, SHUT_WR);
        char k;
        recv_all(s, &k, 1);
        rate = static_cast<double>(count) * 16 * bulk_piece / 1e6 / seconds_since(start);
        ::close(s);
    } else if (workload == "w2") {
        server = std::thread([&] {
            const int c = accept_one(listening);
            char buffer[ping_size];
            while (recv_all(c, buffer, sizeof buffer)) send_all(c, buffer, sizeof buffer);
            ::close(c);
        });
        const int s = connect_to(port);
        char buffer[ping_size] = {};
        const auto start = begin();
        for (long i = 0; i < count; ++i) {
            send_all(s, buffer, sizeof buffer);
            recv_all(s, buffer, sizeof buffer);
        }
        rate = static_cast<double>(count) / seconds_since(start);
        ::close(s);
    } else if (workload == "w3") {
        server = std::thread([&] {
            for (long i = 0; i < count; ++i) {
                const int c = accept_one(listening);
                char name[1024];
                recv_some(c, name, sizeof name);
                send_all(c, reply_text, sizeof reply_text - 1);
                ::close(c);
            }
        });
        const auto start = begin();
        for (long i = 0; i < count; ++i) {
            const int s = connect_to(port);
            send_all(s, name_text, sizeof name_text - 1);
            char reply[1024];
            recv_some(s, reply, sizeof reply);
            ::close(s);
        }
        rate = static_cast<double>(count) / seconds_since(start);
    } else if (workload == "w4" || workload == "w4naive") {
        const bool naive = workload == "w4naive";
        server = std::thread([&] {
            const int c = accept_one(listening);
            static Reader reader(c);
            const char* payload = nullptr;
            std::size_t n = 0;
            while (reader.message(&payload, &n)) naive ? send_message_naive(c, payload, n) : send_message(c, payload, n);
            ::close(c);
        });
        const int s = connect_to(port);
        static Reader reader(s);
        char message[message_size] = {};
        const char* payload = nullptr;
        std::size_t n = 0;
        const auto start = begin();
        for (long i = 0; i < count; ++i) {
            naive ? send_message_naive(s, message, sizeof message) : send_message(s, message, sizeof message);
            if (!reader.message(&payload, &n) || n != sizeof message) die("w4 reply");
        }
        rate = static_cast<double>(count) / seconds_since(start);
        ::close(s);
    } else if (workload == "w5") {
        server = std::thread([&] {
            const int c = accept_one(listening);
            const std::string block = line_block();
            for (long sent = 0; sent < count; sent += static_cast<long>(block.size() / 24)) send_all(c, block.data(), block.size());
            ::close(c);
        });
        const int s = connect_to(port);
        static Reader reader(s);
        const char* text = nullptr;
        std::size_t length = 0, lines = 0, bytes = 0;
        const auto start = begin();
        while (reader.line(&text, &length)) {
            ++lines;
            bytes += length;
        }
        rate = static_cast<double>(lines) / seconds_since(start);
        if (bytes != lines * 23) die("w5 lines");
        ::close(s);
    } else {
        die("unknown workload");
    }
    server.join();
    ::close(listening);
    return rate;
}

} // namespace raw

// --- greet_socket: the calls the README teaches.
namespace greet_bench {

// The server of w2 and w4: one connection, answered request by request until the client closes.
template <class Answer>
std::thread answer_until_closed(greet::Server& listening, Answer answer) {
    return std::thread([&listening, answer] {
        auto [c, peer] = listening.accept();
        try {
            for (;;) answer(c);
        } catch (const greet::ClosedError&) {
        }
    });
}

// The server socket and the client of w1 and w2: TCP on 127.0.0.1, or Unix-domain.
void listen_on(greet::Server& listening) {
    if (unix_path.empty()) listening.bind("127.0.0.1", 0);
    else listening.bind_unix(unix_path);
    listening.listen();
}
greet::Client connect_to(std::uint16_t port) {
    greet::Client c;
    if (unix_path.empty()) c.connect("127.0.0.1", port);
    else c.connect_unix(unix_path);
    return c;
}

// W6: the same exchange with greet::UdpSocket, as examples/udp_server and the README
// teach: the server recv_from, then send_to the sender's Address; the client connect()ed.
double udp_ping_pong(long count) {
    greet::UdpSocket server_socket;
    server_socket.bind("127.0.0.1", 0);
    std::thread server([&] {
        for (long i = 0; i < count; ++i) {
            auto [data, from] = server_socket.recv_from(datagram_size);
            server_socket.send_to(data, from);
        }
    });
    greet::UdpSocket c;
    c.connect("127.0.0.1", server_socket.local_address().port);
    const std::string ping(datagram_size, 'p');
    const auto start = begin();
    for (long i = 0; i < count; ++i) {
        c.send(ping);
        if (c.recv(datagram_size).size() != datagram_size) die("w6");
    }
    const double rate = static_cast<double>(count) / seconds_since(start);
    server.join();
    return rate;
}

double run(const std::string& workload, long count) {
    if (workload == "w6") return udp_ping_pong(count);
    greet::Server listening;
    listen_on(listening);
    const std::uint16_t port = listening.local_address().port;
    std::thread server;
    double rate = 0;
    if (workload == "w1") {
        server = std::thread([&] {
            auto [c, peer] = listening.accept();
            static char buffer[bulk_piece];
            while (c.recv_into(buffer, sizeof buffer) > 0) {
            }
            c.send("k");
        });
        greet::Client c = connect_to(port);
        static char block[bulk_piece];
        const auto start = begin();
        for (long i = 0; i < count * 16; ++i) c.send(std::string_view(block, sizeof block));
        c.shutdown_send();
        c.recv_exact(1);
        rate = static_cast<double>(count) * 16 * bulk_piece / 1e6 / seconds_since(start);
    } else if (workload == "w2") {
        server = answer_until_closed(listening, [](greet::Client& c) { c.send(c.recv_exact(ping_size)); });
        greet::Client c = connect_to(port);
        const std::string ping(ping_size, 'p');
        const auto start = begin();
        for (long i = 0; i < count; ++i) {
            c.send(ping);
            if (c.recv_exact(ping_size).size() != ping_size) die("w2");
        }
        rate = static_cast<double>(count) / seconds_since(start);
    } else if (workload == "w3") {
        server = std::thread([&] {
            for (long i = 0; i < count; ++i) {
                auto [c, peer] = listening.accept();
                std::string name = c.recv_text(1024);
                c.send(reply_text);
            }
        });
        const auto start = begin();
        for (long i = 0; i < count; ++i) {
            greet::Client c("127.0.0.1", port);
            c.send(name_text);
            c.recv_text(1024);
        }
        rate = static_cast<double>(count) / seconds_since(start);
    } else if (workload == "w4") {
        server = answer_until_closed(listening, [](greet::Client& c) { c.send_message(c.recv_message()); });
        greet::Client c("127.0.0.1", port);
        const std::string message(message_size, 'm');
        const auto start = begin();
        for (long i = 0; i < count; ++i) {
            c.send_message(message);
            if (c.recv_message().size() != message_size) die("w4");
        }
        rate = static_cast<double>(count) / seconds_since(start);
    } else if (workload == "w5" || workload == "w5view") {
        const bool view = workload == "w5view"; // recv_line_view: no copy, as the hand parser
        server = std::thread([&] {
            auto [c, peer] = listening.accept();
            const std::string block = line_block();
            for (long sent = 0; sent < count; sent += static_cast<long>(block.size() / 24)) c.send(block);
        });
        greet::Client c("127.0.0.1", port);
        std::string line;
        std::size_t lines = 0, bytes = 0;
        const auto start = begin();
        try {
            for (;;) {
                if (view) {
                    bytes += c.recv_line_view().size();
                } else {
                    c.recv_line(line);
                    bytes += line.size();
                }
                ++lines;
            }
        } catch (const greet::ClosedError&) {
        }
        rate = static_cast<double>(lines) / seconds_since(start);
        if (bytes != lines * 23) die("w5 lines");
    } else {
        die("unknown workload");
    }
    server.join();
    return rate;
}

} // namespace greet_bench

#ifdef BENCH_ASIO
// --- standalone asio, synchronous API, written as its documentation shows.
namespace asio_bench {

using asio::ip::tcp;

void write_message(tcp::socket& s, const char* payload, std::size_t n) {
    const auto size = static_cast<std::uint32_t>(n);
    const unsigned char header[4] = {static_cast<unsigned char>(size >> 24), static_cast<unsigned char>(size >> 16),
                                     static_cast<unsigned char>(size >> 8), static_cast<unsigned char>(size)};
    const std::array<asio::const_buffer, 2> parts = {asio::buffer(header), asio::buffer(payload, n)};
    asio::write(s, parts);
}

bool read_message(tcp::socket& s, std::string& payload) {
    unsigned char header[4];
    asio::error_code ec;
    asio::read(s, asio::buffer(header), ec);
    if (ec) return false;
    payload.resize(std::size_t{header[0]} << 24 | std::size_t{header[1]} << 16 | std::size_t{header[2]} << 8 | header[3]);
    asio::read(s, asio::buffer(payload));
    return true;
}

double run(const std::string& workload, long count) {
    asio::io_context io;
    tcp::acceptor listening(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const std::uint16_t port = listening.local_endpoint().port();
    const std::string service = std::to_string(port);
    tcp::resolver resolver(io);
    std::thread server;
    double rate = 0;
    if (workload == "w1") {
        server = std::thread([&] {
            tcp::socket c = listening.accept();
            static char buffer[bulk_piece];
            asio::error_code ec;
            while (!ec) c.read_some(asio::buffer(buffer), ec);
            asio::write(c, asio::buffer("k", 1));
        });
        tcp::socket c(io);
        asio::connect(c, resolver.resolve("127.0.0.1", service));
        static char block[bulk_piece];
        const auto start = begin();
        for (long i = 0; i < count * 16; ++i) asio::write(c, asio::buffer(block));
        c.shutdown(tcp::socket::shutdown_send);
        char k;
        asio::read(c, asio::buffer(&k, 1));
        rate = static_cast<double>(count) * 16 * bulk_piece / 1e6 / seconds_since(start);
    } else if (workload == "w2") {
        server = std::thread([&] {
            tcp::socket c = listening.accept();
            char buffer[ping_size];
            asio::error_code ec;
            for (;;) {
                asio::read(c, asio::buffer(buffer), ec);
                if (ec) break;
                asio::write(c, asio::buffer(buffer));
            }
        });
        tcp::socket c(io);
        asio::connect(c, resolver.resolve("127.0.0.1", service));
        char buffer[ping_size] = {};
        const auto start = begin();
        for (long i = 0; i < count; ++i) {
            asio::write(c, asio::buffer(buffer));
            asio::read(c, asio::buffer(buffer));
        }
        rate = static_cast<double>(count) / seconds_since(start);
    } else if (workload == "w3") {
        server = std::thread([&] {
            for (long i = 0; i < count; ++i) {
                tcp::socket c = listening.accept();
                char name[1024];
                c.read_some(asio::buffer(name));
                asio::write(c, asio::buffer(reply_text, sizeof reply_text - 1));
            }
        });
        const auto start = begin();
        for (long i = 0; i < count; ++i) {
            tcp::socket c(io);
            asio::connect(c, resolver.resolve("127.0.0.1", service));
            asio::write(c, asio::buffer(name_text, sizeof name_text - 1));
            char reply[1024];
            c.read_some(asio::buffer(reply));
        }
        rate = static_cast<double>(count) / seconds_since(start);
    } else if (workload == "w4") {
        server = std::thread([&] {
            tcp::socket c = listening.accept();
            std::string payload;
            while (read_message(c, payload)) write_message(c, payload.data(), payload.size());
        });
        tcp::socket c(io);
        asio::connect(c, resolver.resolve("127.0.0.1", service));
        const std::string message(message_size, 'm');
        std::string reply;
        const auto start = begin();
        for (long i = 0; i < count; ++i) {
            write_message(c, message.data(), message.size());
            if (!read_message(c, reply) || reply.size() != message_size) die("w4");
        }
        rate = static_cast<double>(count) / seconds_since(start);
    } else if (workload == "w5") {
        server = std::thread([&] {
            tcp::socket c = listening.accept();
            const std::string block = line_block();
            for (long sent = 0; sent < count; sent += static_cast<long>(block.size() / 24)) asio::write(c, asio::buffer(block));
        });
        tcp::socket c(io);
        asio::connect(c, resolver.resolve("127.0.0.1", service));
        asio::streambuf buffer;
        std::istream in(&buffer);
        std::string line;
        std::size_t lines = 0, bytes = 0;
        asio::error_code ec;
        const auto start = begin();
        for (;;) {
            asio::read_until(c, buffer, '\n', ec);
            if (ec) break;
            std::getline(in, line);
            ++lines;
            bytes += line.size();
        }
        rate = static_cast<double>(lines) / seconds_since(start);
        if (bytes != lines * 23) die("w5 lines");
    } else {
        die("unknown workload");
    }
    server.join();
    return rate;
}

} // namespace asio_bench
#endif

} // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: bench <raw|greet|asio> <w1|w2|w3|w4|w4naive|w5|w5view|w1unix|w2unix|w6> <count>\n");
        return 2;
    }
    const std::string implementation = argv[1];
    std::string workload = argv[2];
    const long count = std::atol(argv[3]);
    if (workload == "w1unix" || workload == "w2unix") {
        if (implementation != "raw" && implementation != "greet") die("unix: raw and greet only");
        if (::mkdtemp(unix_folder) == nullptr) die("mkdtemp");
        unix_path = std::string(unix_folder) + "/bench.sock";
        std::atexit(remove_unix_folder);
        workload.resize(2);
    }
    double rate = 0;
    try {
        if (implementation == "raw") rate = raw::run(workload, count);
        else if (implementation == "greet") rate = greet_bench::run(workload, count);
#ifdef BENCH_ASIO
        else if (implementation == "asio") rate = asio_bench::run(workload, count);
#endif
        else die("unknown implementation");
    } catch (const std::exception& error) {
        std::fprintf(stderr, "bench %s %s: %s\n", argv[1], argv[2], error.what());
        return 1;
    }
    // The rate per wall-clock second, then per CPU second of the whole process.
    std::printf("%.6g %.6g\n", rate, cpu_seconds > 0 ? rate * wall_seconds / cpu_seconds : 0.0);
}
