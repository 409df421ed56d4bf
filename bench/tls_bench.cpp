// W7: TLS. One workload, one implementation, one number: the rate, on stdout.
//
//     tls_bench <raw|greet> <bulk|handshake> <certificate folder> <count>
//     tls_bench check <certificate folder>          what each side negotiated, on stdout
//     tls_bench serve <raw|greet> <certificate folder>   a handshake server for `openssl s_time`:
//                                                    prints its port, ends when stdin closes
//
// The certificate folder is scripts/make-tls-certs.sh's (ca.pem, server.pem, server.key).
// Both ends of each run are the same implementation, in one process: "greet" is
// greet::Client with start_tls / accept_tls, as the README teaches; "raw" is OpenSSL on a
// blocking socket through SSL_set_fd, written the straightforward way (the limit).
//   bulk       count MiB in 64 KiB sends over one connection (MB/s); the reader drains
//              into a 64 KiB buffer until close_notify, then answers one byte
//   handshake  count connections, each: TCP connect, a full handshake (the client verifies
//              the server's certificate chain and its IP address), the tutorial exchange
//              (a name, then "message from server"), close_notify and close (connections/s)
// Both implementations get the same contexts' settings: TLS 1.2 at least, no
// renegotiation, the peer verified against ca.pem. The cipher suite and key exchange group
// are pinned for every context of the process by the OPENSSL_CONF file bench/tls_run.py
// writes (greet_socket has no cipher option); `check` prints what was negotiated.
// Then the rate per wall-clock second and per CPU second of the whole process, as bench.cpp.
#define GREET_SOCKET_OPENSSL
#include "greet_socket.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

#include "timing.hpp"

namespace {

using timing::Clock;

using timing::begin;
using timing::cpu_seconds;
using timing::seconds_since;
using timing::wall_seconds;

constexpr std::size_t bulk_piece = 64 * 1024;
const char name_text[] = "Zo\xC3\xAB";
const char reply_text[] = "message from server";
std::string folder; // the certificates

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "tls_bench: %s (errno %d)\n", what, errno);
    ERR_print_errors_fp(stderr);
    std::exit(1);
}

// --- raw OpenSSL on a blocking socket.
namespace raw {

SSL_CTX* context(bool server) {
    SSL_CTX* c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!c) die("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION);
    if (server) {
        if (SSL_CTX_use_certificate_chain_file(c, (folder + "/server.pem").c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(c, (folder + "/server.key").c_str(), SSL_FILETYPE_PEM) != 1)
            die("server certificate");
    } else {
        if (SSL_CTX_load_verify_locations(c, (folder + "/ca.pem").c_str(), nullptr) != 1) die("ca.pem");
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    }
    return c;
}

int listener(std::uint16_t& port) {
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
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    while (::connect(s, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
        if (errno != EINTR) die("connect");
    return s;
}
int accept_one(int listening) {
    for (;;) {
        const int s = ::accept4(listening, nullptr, nullptr, SOCK_CLOEXEC);
        if (s >= 0) return s;
        if (errno != EINTR) die("accept");
    }
}

// A session on a connected socket, handshake done; the client checks the address as greet does.
SSL* session(SSL_CTX* c, int s, bool server) {
    SSL* ssl = SSL_new(c);
    if (!ssl || SSL_set_fd(ssl, s) != 1) die("SSL_new");
    if (!server) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
    if ((server ? SSL_accept(ssl) : SSL_connect(ssl)) != 1) die(server ? "SSL_accept" : "SSL_connect");
    return ssl;
}
void write_all(SSL* ssl, const char* p, std::size_t n) {
    std::size_t written = 0;
    if (SSL_write_ex(ssl, p, n, &written) != 1 || written != n) die("SSL_write");
}
// 0 at close_notify.
std::size_t read_some(SSL* ssl, char* p, std::size_t n) {
    std::size_t got = 0;
    if (SSL_read_ex(ssl, p, n, &got) == 1) return got;
    if (SSL_get_error(ssl, 0) == SSL_ERROR_ZERO_RETURN) return 0;
    die("SSL_read");
}
void finish(SSL* ssl, int s) {
    SSL_shutdown(ssl); // close_notify, as greet's close() sends
    SSL_free(ssl);
    ::close(s);
}

double run(const std::string& workload, long count) {
    SSL_CTX* server_context = context(true);
    SSL_CTX* client_context = context(false);
    std::uint16_t port = 0;
    const int listening = listener(port);
    std::thread server;
    double rate = 0;
    if (workload == "bulk") {
        server = std::thread([&] {
            const int c = accept_one(listening);
            SSL* ssl = session(server_context, c, true);
            static char buffer[bulk_piece];
            while (read_some(ssl, buffer, sizeof buffer) > 0) {
            }
            write_all(ssl, "k", 1);
            finish(ssl, c);
        });
        const int s = connect_to(port);
        SSL* ssl = session(client_context, s, false);
        static char block[bulk_piece];
        const auto start = begin();
        for (long i = 0; i < count * 16; ++i) write_all(ssl, block, sizeof block);
        SSL_shutdown(ssl); // shutdown_send: close_notify, then the TCP half-close
        ::shutdown(s, SHUT_WR);
        char k;
        if (read_some(ssl, &k, 1) != 1) die("bulk: no answer");
        rate = static_cast<double>(count) * 16 * bulk_piece / 1e6 / seconds_since(start);
        SSL_free(ssl);
        ::close(s);
    } else if (workload == "handshake") {
        server = std::thread([&] {
            for (long i = 0; i < count; ++i) {
                const int c = accept_one(listening);
                SSL* ssl = session(server_context, c, true);
                char name[1024];
                read_some(ssl, name, sizeof name);
                write_all(ssl, reply_text, sizeof reply_text - 1);
                finish(ssl, c);
            }
        });
        const auto start = begin();
        for (long i = 0; i < count; ++i) {
            const int s = connect_to(port);
            SSL* ssl = session(client_context, s, false);
            write_all(ssl, name_text, sizeof name_text - 1);
            char reply[1024];
            read_some(ssl, reply, sizeof reply);
            finish(ssl, s);
        }
        rate = static_cast<double>(count) / seconds_since(start);
    } else {
        die("unknown workload");
    }
    server.join();
    ::close(listening);
    SSL_CTX_free(server_context);
    SSL_CTX_free(client_context);
    return rate;
}

std::string negotiated(SSL* ssl) {
    const char* group = OBJ_nid2sn(SSL_get_negotiated_group(ssl));
    return std::string(SSL_get_version(ssl)) + " " + SSL_get_cipher_name(ssl) + " " + (group ? group : "?");
}

} // namespace raw

// --- greet_socket: the calls the README teaches.
namespace greet_bench {

greet::TlsOptions server_options() {
    greet::TlsOptions options;
    options.certificate_file = folder + "/server.pem";
    options.private_key_file = folder + "/server.key";
    return options;
}
greet::TlsOptions client_options() {
    greet::TlsOptions options;
    options.ca_file = folder + "/ca.pem";
    return options;
}

double run(const std::string& workload, long count) {
    greet::Server listening("127.0.0.1", 0);
    const std::uint16_t port = listening.local_address().port;
    std::thread server;
    double rate = 0;
    if (workload == "bulk") {
        server = std::thread([&] {
            auto [c, peer] = listening.accept();
            c.accept_tls(server_options());
            static char buffer[bulk_piece];
            while (c.recv_into(buffer, sizeof buffer) > 0) {
            }
            c.send("k");
        });
        greet::Client c("127.0.0.1", port);
        c.start_tls(client_options());
        static char block[bulk_piece];
        const auto start = begin();
        for (long i = 0; i < count * 16; ++i) c.send(std::string_view(block, sizeof block));
        c.shutdown_send();
        c.recv_exact(1);
        rate = static_cast<double>(count) * 16 * bulk_piece / 1e6 / seconds_since(start);
    } else if (workload == "handshake") {
        server = std::thread([&] {
            const greet::TlsOptions options = server_options();
            for (long i = 0; i < count; ++i) {
                auto [c, peer] = listening.accept();
                c.accept_tls(options);
                std::string name = c.recv_text(1024);
                c.send(reply_text);
            }
        });
        const greet::TlsOptions options = client_options();
        const auto start = begin();
        for (long i = 0; i < count; ++i) {
            greet::Client c("127.0.0.1", port);
            c.start_tls(options);
            c.send(name_text);
            c.recv_text(1024);
        }
        rate = static_cast<double>(count) / seconds_since(start);
    } else {
        die("unknown workload");
    }
    server.join();
    return rate;
}

} // namespace greet_bench

// What a raw peer negotiated with greet's client and with greet's server.
int check() {
    SSL_CTX* server_context = raw::context(true);
    std::uint16_t port = 0;
    const int listening = raw::listener(port);
    std::string seen;
    std::thread server([&] {
        const int c = raw::accept_one(listening);
        SSL* ssl = raw::session(server_context, c, true);
        seen = raw::negotiated(ssl);
        char name[64];
        raw::read_some(ssl, name, sizeof name);
        raw::finish(ssl, c);
    });
    {
        greet::Client c("127.0.0.1", port);
        c.start_tls(greet_bench::client_options());
        c.send(name_text);
    }
    server.join();
    std::printf("greet client, raw server: %s\n", seen.c_str());

    greet::Server listening_greet("127.0.0.1", 0);
    std::thread greet_server([&] {
        auto [c, peer] = listening_greet.accept();
        c.accept_tls(greet_bench::server_options());
        c.recv_text(64);
    });
    SSL_CTX* client_context = raw::context(false);
    const int s = raw::connect_to(listening_greet.local_address().port);
    SSL* ssl = raw::session(client_context, s, false);
    std::printf("raw client, greet server: %s\n", raw::negotiated(ssl).c_str());
    raw::write_all(ssl, name_text, sizeof name_text - 1);
    raw::finish(ssl, s);
    greet_server.join();
    SSL_CTX_free(client_context);
    SSL_CTX_free(server_context);
    ::close(listening);
    return 0;
}

// Answers handshakes until stdin closes: `openssl s_time` connects, handshakes and drops
// the connection, so every failure after the accept is expected and ignored.
int serve(const std::string& implementation) {
    std::uint16_t port = 0;
    int raw_listener = -1;
    greet::Server greet_listener;
    if (implementation == "raw") {
        raw_listener = raw::listener(port);
    } else {
        greet_listener.bind("127.0.0.1", 0);
        greet_listener.listen();
        port = greet_listener.local_address().port;
    }
    std::printf("%u\n", static_cast<unsigned>(port));
    std::fflush(stdout);
    std::thread([] {
        char ignored;
        while (::read(0, &ignored, 1) > 0) {
        }
        std::_Exit(0);
    }).detach();
    if (implementation == "raw") {
        SSL_CTX* context = raw::context(true);
        for (;;) {
            const int c = raw::accept_one(raw_listener);
            SSL* ssl = SSL_new(context);
            SSL_set_fd(ssl, c);
            if (SSL_accept(ssl) == 1) {
                char bytes[1024];
                std::size_t got = 0;
                SSL_read_ex(ssl, bytes, sizeof bytes, &got); // the client's close
            }
            ERR_clear_error();
            SSL_free(ssl);
            ::close(c);
        }
    }
    const greet::TlsOptions options = greet_bench::server_options();
    for (;;) {
        auto [c, peer] = greet_listener.accept();
        std::error_code ec;
        c.accept_tls(options, ec);
        if (!ec) c.recv_text(1024, ec);
    }
}

} // namespace

int main(int argc, char** argv) {
    ::signal(SIGPIPE, SIG_IGN); // raw OpenSSL writes with write(): a peer gone away must not kill the run
    const std::string first = argc > 1 ? argv[1] : "";
    if (first == "check" && argc == 3) {
        folder = argv[2];
        return check();
    }
    if (first == "serve" && argc == 4) {
        folder = argv[3];
        return serve(argv[2]);
    }
    if (argc != 5) {
        std::fprintf(stderr, "usage: tls_bench <raw|greet> <bulk|handshake> <certificate folder> <count>\n"
                             "       tls_bench check <certificate folder>\n"
                             "       tls_bench serve <raw|greet> <certificate folder>\n");
        return 2;
    }
    folder = argv[3];
    const std::string workload = argv[2];
    const long count = std::atol(argv[4]);
    double rate = 0;
    try {
        if (first == "raw") rate = raw::run(workload, count);
        else if (first == "greet") rate = greet_bench::run(workload, count);
        else die("unknown implementation");
    } catch (const std::exception& error) {
        std::fprintf(stderr, "tls_bench %s %s: %s\n", argv[1], argv[2], error.what());
        return 1;
    }
    std::printf("%.6g %.6g\n", rate, cpu_seconds > 0 ? rate * wall_seconds / cpu_seconds : 0.0);
}
