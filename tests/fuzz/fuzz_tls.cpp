// libFuzzer target: the TLS receive path (start_tls, accept_tls, and every receive over
// TLS) against a peer that sends the input, over a real loopback TCP connection.
//
// Byte 0 chooses:
//   bit 0    0: handshake mode, 1: record mode
//   bit 1    chaos mode on greet's side (reads and writes cut into small pieces)
// Handshake mode (the peer is a raw socket; byte 0 bit 2: greet is the server, so the
// input is the "ClientHello and beyond", else the "ServerHello and beyond"; bit 3: the
// peer leaves the connection open after the input, so greet's 5 ms timeout ends the
// wait; bit 4: the peer resets the connection instead of closing it): the peer writes the
// rest of the input, then greet's start_tls or accept_tls runs; it must end (in success or
// a greet::Error) without a crash, a hang or a leak.
// Record mode (a real handshake between two greet Clients first, then the rest is a
// schedule of (op, arg) pairs, op % 8):
//   0 the server sends the next arg + 1 input bytes, encrypted   1 the peer injects the next arg + 1 raw
//   2 recv(arg + 1)   3 recv_exact(arg % 64 + 1)   4 recv_line(arg + 1)   5 recv_message(arg)
//   6 the server's shutdown_send (close_notify, then FIN)
//   7 the server's socket: arg even, a FIN without close_notify; odd, its close() with
//     SO_LINGER 0 (close_notify if the socket takes it at once, then a reset)
// then the client drains with recv() until the end or an error, and sends once (the send
// path after whatever the receive path saw). The receives have a
// 0 ms timeout (the bytes are on the loopback device before they run). Checked: only
// greet::Error comes out; while nothing was injected, the bytes received are a prefix of
// the bytes sent, never more, and the only errors are the timeout and the reported ends.
//
// The certificate and key are made in memory at start-up (P-256, self-signed, for
// localhost). Seeds: LLVMFuzzerInitialize runs a real TLS 1.2 and TLS 1.3 handshake in
// memory and writes what each side sent, whole and cut short, into the corpus folder
// (the first folder on the command line), so no key or certificate is ever committed.
// Build and run: scripts/fuzz.sh [seconds]
#define GREET_SOCKET_OPENSSL
#include "greet_socket.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/sockios.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>

namespace {

using namespace std::chrono_literals;

[[noreturn]] void violated(const char* what) {
    std::fprintf(stderr, "property violated: %s\n", what);
    std::abort();
}

// --- The throwaway certificate, in a private temporary folder removed at exit.
char folder[] = "/tmp/greet-fuzz-tls-XXXXXX";
std::string certificate_path, key_path;

void remove_folder() {
    ::unlink(certificate_path.c_str());
    ::unlink(key_path.c_str());
    ::rmdir(folder);
}

void make_certificate() {
    if (::mkdtemp(folder) == nullptr) violated("mkdtemp");
    certificate_path = std::string(folder) + "/cert.pem";
    key_path = std::string(folder) + "/key.pem";
    std::atexit(remove_folder);
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* certificate = X509_new();
    if (!key || !certificate) violated("key");
    X509_set_version(certificate, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(certificate), 1);
    X509_gmtime_adj(X509_getm_notBefore(certificate), -3600);
    X509_gmtime_adj(X509_getm_notAfter(certificate), 2L * 86400);
    X509_set_pubkey(certificate, key);
    X509_NAME* name = X509_get_subject_name(certificate);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(certificate, name);
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, certificate, certificate, nullptr, nullptr, 0);
    X509_EXTENSION* names = X509V3_EXT_conf_nid(nullptr, &context, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    X509_add_ext(certificate, names, -1);
    X509_EXTENSION_free(names);
    X509_sign(certificate, key, EVP_sha256());
    FILE* out = std::fopen(certificate_path.c_str(), "w");
    if (!out || PEM_write_X509(out, certificate) != 1) violated("cert.pem");
    std::fclose(out);
    ::umask(077);
    out = std::fopen(key_path.c_str(), "w");
    if (!out || PEM_write_PrivateKey(out, key, nullptr, nullptr, 0, nullptr, nullptr) != 1) violated("key.pem");
    std::fclose(out);
    X509_free(certificate);
    EVP_PKEY_free(key);
}

greet::TlsOptions server_options() {
    greet::TlsOptions options;
    options.certificate_file = certificate_path;
    options.private_key_file = key_path;
    return options;
}
greet::TlsOptions client_options() {
    greet::TlsOptions options;
    options.server_name = "localhost";
    options.ca_file = certificate_path; // self-signed: its own CA
    return options;
}

// --- Seeds: a real handshake in memory, each side's bytes recorded.
std::string drain(BIO* bio) {
    std::string bytes;
    char piece[4096];
    int n;
    while ((n = BIO_read(bio, piece, sizeof piece)) > 0) bytes.append(piece, static_cast<std::size_t>(n));
    return bytes;
}

// What the client and the server sent: the whole handshake, then "hello" and close_notify from the server.
std::pair<std::string, std::string> record_handshake(bool tls12) {
    SSL_CTX* server_context = SSL_CTX_new(TLS_server_method());
    SSL_CTX* client_context = SSL_CTX_new(TLS_client_method());
    SSL_CTX_use_certificate_chain_file(server_context, certificate_path.c_str());
    SSL_CTX_use_PrivateKey_file(server_context, key_path.c_str(), SSL_FILETYPE_PEM);
    if (tls12) SSL_CTX_set_max_proto_version(server_context, TLS1_2_VERSION);
    SSL* client = SSL_new(client_context);
    SSL* server = SSL_new(server_context);
    BIO *client_in = BIO_new(BIO_s_mem()), *client_out = BIO_new(BIO_s_mem());
    BIO *server_in = BIO_new(BIO_s_mem()), *server_out = BIO_new(BIO_s_mem());
    SSL_set_bio(client, client_in, client_out);
    SSL_set_bio(server, server_in, server_out);
    SSL_set_tlsext_host_name(client, "localhost");
    SSL_set_connect_state(client);
    SSL_set_accept_state(server);
    std::string from_client, from_server;
    for (int turn = 0; turn < 10; ++turn) {
        SSL_do_handshake(client);
        const std::string c = drain(client_out);
        BIO_write(server_in, c.data(), static_cast<int>(c.size()));
        from_client += c;
        SSL_do_handshake(server);
        const std::string s = drain(server_out);
        BIO_write(client_in, s.data(), static_cast<int>(s.size()));
        from_server += s;
        if (SSL_is_init_finished(client) && SSL_is_init_finished(server) && c.empty() && s.empty()) break;
    }
    std::size_t written = 0;
    SSL_write_ex(server, "hello\n", 6, &written);
    SSL_shutdown(server);
    from_server += drain(server_out);
    ERR_clear_error();
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(client_context);
    SSL_CTX_free(server_context);
    return {from_client, from_server};
}

void write_seed(const std::string& corpus, const std::string& name, char flags, std::string_view bytes) {
    FILE* out = std::fopen((corpus + "/" + name).c_str(), "wb");
    if (!out) return;
    std::fputc(flags, out);
    std::fwrite(bytes.data(), 1, bytes.size(), out);
    std::fclose(out);
}

// Each side's flight, whole and cut at a few places: 0x00 greet is the client (the server's
// bytes), 0x04 greet is the server (the client's bytes).
void write_seeds(const std::string& corpus) {
    for (const bool tls12 : {true, false}) {
        const auto [from_client, from_server] = record_handshake(tls12);
        const std::string version = tls12 ? "tls12" : "tls13";
        for (const auto& [flags, bytes, side] : {std::tuple<char, std::string, const char*>{0x00, from_server, "server"},
                                                 std::tuple<char, std::string, const char*>{0x04, from_client, "client"}}) {
            write_seed(corpus, "live-" + version + "-" + side, flags, bytes);
            for (const std::size_t cut : {std::size_t{5}, std::size_t{9}, std::size_t{60}, bytes.size() / 2, bytes.size() - 1})
                if (cut < bytes.size()) write_seed(corpus, "live-" + version + "-" + side + "-" + std::to_string(cut), flags, bytes.substr(0, cut));
        }
    }
}

// --- The connections.
struct Endpoints {
    greet::Server server{"127.0.0.1", 0}; // made once per process
    std::uint16_t port = server.local_address().port;
};
Endpoints& endpoints() {
    static Endpoints e;
    return e;
}

int raw_connect(std::uint16_t port) {
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (::connect(s, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) violated("connect");
    return s;
}
void send_raw(int s, std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::send(s, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n <= 0) return; // the other side reset: what it does next is what is tested
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}
// Waits until the kernel has handed every sent byte to the loopback device.
void flush(int s) {
    for (int turn = 0; turn < 100000; ++turn) {
        int unsent = 0;
        if (::ioctl(s, SIOCOUTQNSD, &unsent) != 0 || unsent == 0) return;
        sched_yield();
    }
}
std::optional<std::uint64_t> chaos(std::uint8_t flags) { return flags & 2 ? std::optional<std::uint64_t>(flags) : std::nullopt; }

// The raw end of a connection: a socket of its own, or the descriptor of a greet Client
// that stands in as the peer (native_handle; greet only closes it).
struct Peer {
    int s = -1;
    greet::Client owner;
    void reset() { // an abortive close: no TIME_WAIT piles up over millions of inputs
        if (s < 0) return;
        linger abort_on_close{1, 0};
        ::setsockopt(s, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
        owner.is_open() ? owner.close() : (void)::close(s);
        s = -1;
    }
    ~Peer() { reset(); }
};

// Handshake mode: greet's handshake against a peer that sends the input.
void handshake(std::uint8_t flags, std::string_view input) {
    const bool as_server = flags & 4, keep_open = flags & 8, abort_close = flags & 16;
    greet::Client greet_side;
    Peer peer;
    endpoints().server.set_timeout(5s);
    if (as_server) {
        peer.s = raw_connect(endpoints().port);
        greet_side = endpoints().server.accept().first;
    } else {
        greet_side.set_timeout(5s);
        greet_side.connect("127.0.0.1", endpoints().port);
        peer.owner = endpoints().server.accept().first;
        peer.s = static_cast<int>(peer.owner.native_handle());
    }
    send_raw(peer.s, input);
    flush(peer.s);
    if (abort_close) peer.reset();
    else if (!keep_open) ::shutdown(peer.s, SHUT_WR);
    greet_side.set_chaos(chaos(flags));
    greet_side.set_timeout(5ms); // bounds the wait of an input that stops short
    std::error_code ec;
    as_server ? greet_side.accept_tls(server_options(), ec) : greet_side.start_tls(client_options(), ec);
    if (!ec) greet_side.recv(1, ec); // a handshake the input completed (a replayed flight never does: kept for safety)
    peer.reset();
}

// Record mode: a real session, then the schedule.
struct Records {
    greet::Client client, server;
    std::string_view stream; // the input bytes the ops take
    std::string sent, received;
    bool injected = false;   // raw bytes went in: any greet::Error is then fair
    bool uncertain = false;  // a server send failed part way: how much went is unknown
    bool notified = false, cut = false; // close_notify sent; FIN without it, or a reset

    std::string_view take(std::size_t n) {
        const std::string_view bytes = stream.substr(0, n);
        stream.remove_prefix(bytes.size());
        return bytes;
    }
    void server_send(std::size_t n) {
        const std::string_view bytes = take(n);
        std::error_code ec;
        server.send(bytes, ec);
        if (ec) uncertain = true;
        else sent.append(bytes);
        if (server.is_open()) flush(static_cast<int>(server.native_handle()));
    }
    void inject(std::size_t n) {
        const std::string_view bytes = take(n);
        if (!server.is_open() || bytes.empty()) return;
        injected = true;
        send_raw(static_cast<int>(server.native_handle()), bytes);
        flush(static_cast<int>(server.native_handle()));
    }
    void got(std::string_view bytes) {
        received.append(bytes);
        if (injected || uncertain) return;
        if (received.size() > sent.size() || sent.compare(0, received.size(), received) != 0)
            violated("the bytes received are not the bytes the server sent");
    }
    // Whether a receive may fail this way while nothing was injected.
    void check(const greet::Error& error) const {
        if (injected || uncertain) return;
        if (dynamic_cast<const greet::TimeoutError*>(&error) || dynamic_cast<const greet::ClosedError*>(&error)) return;
        if (error.code() == std::errc::message_size) return; // a line or message over the limit
        if (cut && (error.code() == greet::errc::tls_truncated || error.code() == std::errc::connection_reset)) return;
        std::fprintf(stderr, "%s\n", error.what());
        violated("an error no receive may give here");
    }
    void step(int op, std::size_t arg) {
        try {
            switch (op) {
            case 0: server_send(arg + 1); break;
            case 1: inject(arg + 1); break;
            case 2: got(client.recv(arg + 1)); break;
            case 3: got(client.recv_exact(arg % 64 + 1)); break;
            case 4: got(client.recv_line(arg + 1)); break; // the '\n' it consumes breaks the prefix check:
            case 5: got(client.recv_message(arg)); break;  // both mark the stream as framed, below
            case 6: {
                std::error_code ec;
                if (server.is_open()) server.shutdown_send(ec);
                notified = notified || !ec;
                break;
            }
            default:
                if (!server.is_open()) break;
                if (arg % 2 == 0) ::shutdown(static_cast<int>(server.native_handle()), SHUT_WR);
                else {
                    linger abort_on_close{1, 0};
                    ::setsockopt(static_cast<int>(server.native_handle()), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
                    server.close();
                }
                cut = true;
            }
        } catch (const greet::Error& error) {
            check(error);
        }
    }
    void drain() {
        for (std::size_t turn = 0; turn < 70000; ++turn) {
            std::error_code ec;
            const std::string bytes = client.recv(65536, ec);
            if (ec) {
                if (ec == std::errc::timed_out && !cut && !notified) break; // the server is still open
                if (!injected && !uncertain && notified && !cut) violated("an error instead of the clean end after close_notify");
                break;
            }
            if (bytes.empty()) {
                if (!injected && !uncertain && received != sent) violated("the clean end before every byte sent arrived");
                break;
            }
            got(bytes);
        }
        std::error_code ignored;
        client.send("after", ignored); // the send path after whatever the receive path saw
    }
};

void records(std::uint8_t flags, std::string_view input) {
    std::pair<std::int32_t, std::size_t> ops[64];
    std::size_t count = 0, i = 0;
    while (count < 64 && i + 1 < input.size() && static_cast<std::uint8_t>(input[i]) != 0xFF) {
        ops[count++] = {static_cast<std::uint8_t>(input[i]) % 8, static_cast<std::uint8_t>(input[i + 1])};
        i += 2;
    }
    if (i < input.size() && static_cast<std::uint8_t>(input[i]) == 0xFF) ++i;
    Records run;
    run.stream = input.substr(i);
    std::error_code server_failed;
    std::thread accepting([&] {
        endpoints().server.set_timeout(5s);
        run.server = endpoints().server.accept(server_failed).first;
        if (!server_failed) run.server.set_timeout(5s, server_failed);
        if (!server_failed) run.server.accept_tls(server_options(), server_failed);
    });
    std::error_code client_failed;
    run.client.set_timeout(5s);
    run.client.connect("127.0.0.1", endpoints().port, client_failed);
    if (!client_failed) run.client.start_tls(client_options(), client_failed);
    accepting.join();
    if (client_failed || server_failed) {
        std::fprintf(stderr, "%s / %s\n", client_failed.message().c_str(), server_failed.message().c_str());
        violated("the real handshake failed");
    }
    int on = 1;
    ::setsockopt(static_cast<int>(run.server.native_handle()), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    run.client.set_chaos(chaos(flags));
    run.client.set_timeout(0ms);
    bool framed = false; // recv_line and recv_message drop bytes (the '\n', the header): no prefix check
    for (std::size_t k = 0; k < count; ++k) {
        if (ops[k].first == 4 || ops[k].first == 5) {
            if (!framed && !run.injected && !run.uncertain) run.uncertain = framed = true;
        }
        run.step(ops[k].first, ops[k].second);
    }
    run.drain();
    if (run.server.is_open()) {
        linger abort_on_close{1, 0};
        ::setsockopt(static_cast<int>(run.server.native_handle()), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
    }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
    make_certificate();
    for (int k = 1; k < *argc; ++k) { // the first folder named is the corpus: seed it from live handshakes
        struct stat info {};
        const char* argument = (*argv)[k];
        if (argument[0] == '-' || ::stat(argument, &info) != 0) continue;
        if (S_ISDIR(info.st_mode)) write_seeds(argument);
        break;
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    try {
        data[0] & 1 ? records(data[0], rest) : handshake(data[0], rest);
    } catch (const greet::Error& error) {
        std::fprintf(stderr, "%s\n", error.what());
        violated("an error outside the calls under test (the loopback set-up)");
    } catch (const std::exception& error) {
        std::fprintf(stderr, "%s\n", error.what());
        violated("an exception that is not a greet::Error");
    }
    return 0;
}
