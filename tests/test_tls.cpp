// TLS over OpenSSL 3 (GREET_SOCKET_OPENSSL): start_tls and accept_tls on real loopback
// connections, every framing and the timeout, canceller, half-close and chaos mechanics
// under encryption, and each refusal: its class, its greet::errc code, its words, the
// connection closed and no descriptor left behind. The certificates are made once per
// process by scripts/make-tls-certs.sh in a private temporary folder (GREET_TLS_CERT_SCRIPT
// names the script: see tests/CMakeLists.txt).
#ifndef GREET_SOCKET_OPENSSL
#define GREET_SOCKET_OPENSSL
#endif
#ifndef GREET_TLS_CERT_SCRIPT // the build names it; a bare compile (clang-tidy, say) runs from the root
#define GREET_TLS_CERT_SCRIPT "scripts/make-tls-certs.sh"
#endif
#include "catch.hpp"
#include "greet_socket.hpp"
#include "support.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

using namespace std::chrono_literals;
using test::contains;
using test::guard;
using test::thrown;

namespace {

using Clock = std::chrono::steady_clock;

// The certificates, made on first use (by whichever thread comes first: an exception, not
// REQUIRE, reports a failure); the folder goes when the process ends.
const test::TempDir& certificates() {
    static const test::TempDir dir;
    // NOLINTNEXTLINE(cert-env33-c): the project's own script, by the path the build gives
    static const int made = std::system((std::string("\"" GREET_TLS_CERT_SCRIPT "\" \"") + dir.path() + "\" --expired >/dev/null").c_str());
    if (made != 0) throw std::runtime_error(GREET_TLS_CERT_SCRIPT " failed: " + std::to_string(made));
    return dir;
}
std::string file(std::string_view name) { return certificates() / name; }

// A server's options: the certificate `name`.pem and its key (server, expired, self-signed, wrong-ca-server).
greet::TlsOptions server_side(const std::string& name = "server") {
    greet::TlsOptions options;
    options.certificate_file = file(name + ".pem");
    options.private_key_file = file(name + ".key");
    return options;
}
// A server that asks for a client certificate signed by the test CA (mutual TLS).
greet::TlsOptions mutual_server_side() {
    greet::TlsOptions options = server_side();
    options.ca_file = file("ca.pem");
    return options;
}
// A client trusting the test CA; with `alice`, presenting client.pem.
greet::TlsOptions client_side(bool alice = false) {
    greet::TlsOptions options;
    options.ca_file = file("ca.pem");
    if (alice) {
        options.certificate_file = file("client.pem");
        options.private_key_file = file("client.key");
    }
    return options;
}

// A loopback pair with TLS on both ends: accept_tls on a thread of its own, start_tls here.
test::Pair tls_pair(const greet::TlsOptions& server = server_side(), const greet::TlsOptions& client = client_side()) {
    test::Pair pair = test::guarded_pair();
    auto accepted = test::start([&] { pair.accepted.accept_tls(server); });
    pair.client.start_tls(client);
    accepted.get();
    return pair;
}

// The side that refuses a handshake sends an alert and closes. In chaos mode, where records
// go in pieces, the peer may still be sending its flight (EPIPE), or bytes of the peer's
// may be unread at the close, which makes it a reset the peer can see before the alert
// (ECONNRESET): OS-level failures in place of the TlsError.
const bool chaos_everywhere = std::getenv("GREET_SOCKET_CHAOS") != nullptr;

// What a call threw, with its class (test::thrown's copy is a greet::Error, sliced).
struct Failure {
    std::optional<greet::Error> error;
    bool tls = false; // it was a greet::TlsError
    explicit operator bool() const { return error.has_value(); }
    const greet::Error* operator->() const { return &*error; }
};
template <class F>
Failure failure_of(F&& call) {
    try {
        call();
    } catch (const greet::TlsError& e) {
        return {e, true};
    } catch (const greet::Error& e) {
        return {e, false};
    }
    return {};
}

bool refusal_received(const Failure& failure, std::string_view words) {
    if (chaos_everywhere && (failure->code() == std::errc::connection_reset || failure->code() == std::errc::broken_pipe)) return true;
    return failure.tls && failure->code().category() == greet::error_category() && contains(failure->what(), words);
}

// How a handshake between a greet client and a greet server ended, each side's error
// (nullopt: it succeeded; the client's is the TlsError of the side that refuses) and
// whether each connection is still open.
struct Handshake {
    std::optional<greet::TlsError> client;
    Failure server;
    bool client_open = true, server_open = true;
};
Handshake handshake(const greet::TlsOptions& server, const greet::TlsOptions& client, const std::string& host = "127.0.0.1") {
    greet::Server listener(host, 0);
    listener.set_timeout(guard);
    greet::Client connecting;
    connecting.set_timeout(guard);
    connecting.connect(host, listener.local_address().port);
    greet::Client accepted = listener.accept().first;
    accepted.set_timeout(guard);
    Handshake out;
    auto server_end = test::start([&] { return failure_of([&] { accepted.accept_tls(server); }); });
    out.client = thrown<greet::TlsError>([&] { connecting.start_tls(client); });
    out.server = server_end.get();
    out.client_open = connecting.is_open();
    out.server_open = accepted.is_open();
    return out;
}

// Everything the peer sends until it goes, by a close or a reset (a plaintext peer's view).
std::string until_gone(greet::Client& plain) {
    std::string seen;
    for (int turn = 0; turn < 100000; ++turn) {
        std::error_code ec;
        const std::string part = plain.recv(65536, ec);
        if (ec || part.empty()) break;
        seen += part;
    }
    return seen;
}

// Reads one whole TLS record (the ClientHello, say) with plain calls; its bytes.
std::string read_record(greet::Client& raw) {
    const std::string head = raw.recv_exact(5);
    const std::size_t length = std::size_t(static_cast<unsigned char>(head[3])) << 8 | static_cast<unsigned char>(head[4]);
    return head + raw.recv_exact(length);
}

// Waits (bounded) until the thread `tid` sleeps in the OS; whether it did.
bool asleep(const std::atomic<long>& tid) {
    const auto until = Clock::now() + 5s;
    while (tid.load() == 0 && Clock::now() < until) std::this_thread::yield();
    while (tid.load() != 0 && test::thread_state(tid.load()) != 'S' && Clock::now() < until) std::this_thread::yield();
    return tid.load() != 0 && test::thread_state(tid.load()) == 'S';
}

} // namespace

TEST_CASE("a greet client and a greet server exchange every kind of message", "[tls]") {
    test::Pair pair = tls_pair();
    CHECK(pair.client.is_tls());
    CHECK(pair.accepted.is_tls());
    CHECK(pair.client.tls_peer_subject() == "CN=localhost");
    CHECK(pair.accepted.tls_peer_subject().empty()); // no client certificate was asked for

    SECTION("lines") {
        pair.client.send_line("Ada");
        pair.client.send_line("Zoë 世界 🚀");
        CHECK(pair.accepted.recv_line() == "Ada");
        CHECK(pair.accepted.recv_line() == "Zoë 世界 🚀");
        pair.accepted.send("one\r\ntwo\n");
        CHECK(pair.client.recv_line() == "one");
        CHECK(pair.client.recv_line() == "two");
    }
    SECTION("1 MB messages both ways (each send on a thread of its own: the peer reads meanwhile)") {
        const std::string up = test::pattern(1 << 20, 1), down = test::pattern(1 << 20, 2);
        auto sending = test::start([&] { return pair.client.send_message(up); });
        CHECK(pair.accepted.recv_message() == up);
        CHECK(sending.get() == up.size() + 4);
        auto answering = test::start([&] { return pair.accepted.send_message(down); });
        CHECK(pair.client.recv_message() == down);
        CHECK(answering.get() == down.size() + 4);
    }
    SECTION("recv_exact across records") {
        const std::string bytes = test::pattern(40000, 3); // three records
        auto sending = test::start([&] { return pair.accepted.send(bytes); });
        CHECK(pair.client.recv_exact(7) == bytes.substr(0, 7));
        CHECK(pair.client.recv_exact(bytes.size() - 7) == bytes.substr(7));
        CHECK(sending.get() == bytes.size());
    }
    SECTION("recv_text returns whole UTF-8 characters") {
        const std::string text = "Zoë 世界 🚀";
        pair.client.send(text.substr(0, 2) + text.substr(2, 1)); // "Zo" and half of ë
        CHECK(pair.accepted.recv_text(1024) == "Zo");
        pair.client.send(text.substr(3));
        std::string got;
        for (int turn = 0; turn < 64 && got.size() < text.size() - 2; ++turn) got += pair.accepted.recv_text(1024);
        CHECK(got == text.substr(2));
        pair.client.send(u"ë");
        CHECK(pair.accepted.recv_text(4) == "ë");
    }
}

TEST_CASE("close_notify ends the stream and recv returns an empty string", "[tls]") {
    test::Pair pair = tls_pair();
    pair.accepted.send_line("bye");
    pair.accepted.close(); // sends close_notify
    CHECK(pair.client.recv_line() == "bye");
    CHECK(pair.client.recv(100).empty());
    CHECK(pair.client.recv(100).empty()); // and stays ended
    const auto closed = thrown<greet::ClosedError>([&] { pair.client.recv_exact(1); });
    REQUIRE(closed);
    CHECK(closed->code() == greet::errc::peer_closed);
}

TEST_CASE("shutdown_send half-closes and the other direction still works", "[tls]") {
    test::Pair pair = tls_pair();
    pair.client.send_line("question");
    pair.client.shutdown_send();
    CHECK(pair.accepted.recv_line() == "question");
    CHECK(pair.accepted.recv(100).empty()); // the client's close_notify
    auto answering = test::start([&] { // on a thread: the client reads meanwhile
        pair.accepted.send_line("answer");
        pair.accepted.send_message(test::pattern(100000, 4));
        pair.accepted.close();
    });
    CHECK(pair.client.recv_line() == "answer");
    CHECK(pair.client.recv_message() == test::pattern(100000, 4));
    CHECK(pair.client.recv(100).empty());
    answering.get();
}

TEST_CASE("mutual TLS, the client presents a certificate signed by the server's CA", "[tls]") {
    test::Pair pair = tls_pair(mutual_server_side(), client_side(true));
    CHECK(pair.accepted.tls_peer_subject() == "CN=alice");
    CHECK(pair.client.tls_peer_subject() == "CN=localhost");
    pair.client.send_line("hi");
    CHECK(pair.accepted.recv_line() == "hi");
}

TEST_CASE("mutual TLS without a client certificate fails on both sides", "[tls]") {
    const std::size_t before = test::open_descriptors();
    {
        test::Pair pair = test::guarded_pair();
        auto server_end = test::start([&] { return thrown<greet::TlsError>([&] { pair.accepted.accept_tls(mutual_server_side()); }); });
        // TLS 1.3 ends the client's handshake before the server has seen its (missing)
        // certificate: the refusal may arrive with start_tls or with the next receive.
        auto client_error = failure_of([&] {
            pair.client.start_tls(client_side());
            pair.client.recv(100);
        });
        const auto server_error = server_end.get();
        REQUIRE(server_error);
        INFO(server_error->what());
        CHECK(server_error->code().category() == greet::error_category());
        CHECK(contains(server_error->what(), "accept_tls 127.0.0.1:"));
        CHECK(contains(server_error->what(), "peer did not return a certificate"));
        CHECK_FALSE(pair.accepted.is_open());
        REQUIRE(client_error);
        INFO(client_error->what());
        CHECK(refusal_received(client_error, "the peer refused our certificate (tlsv13 alert certificate required)"));
        if (!chaos_everywhere) CHECK(client_error->code() == greet::errc::tls_certificate);
    }
    CHECK(test::open_descriptors() == before);
}

TEST_CASE("a receive times out and the connection lives on", "[tls][timeouts]") {
    test::Pair pair = tls_pair();
    pair.client.set_timeout(200ms);
    const auto started = Clock::now();
    const auto timed_out = thrown<greet::TimeoutError>([&] { pair.client.recv(100); });
    REQUIRE(timed_out);
    CHECK(timed_out->code() == std::errc::timed_out);
    CHECK(Clock::now() - started >= 200ms);
    pair.client.set_timeout(guard);
    pair.accepted.send_line("late");
    CHECK(pair.client.recv_line() == "late");
}

TEST_CASE("a Canceller ends a blocked receive and reset lets it go on", "[tls][cancel]") {
    test::Pair pair = tls_pair();
    greet::Canceller canceller;
    pair.client.set_canceller(canceller);
    std::atomic<long> tid{0};
    auto receiving = test::start([&] {
        tid.store(test::this_thread_id());
        return thrown([&] { pair.client.recv(100); });
    });
    CHECK(asleep(tid));
    canceller.cancel();
    const auto cancelled = receiving.get();
    REQUIRE(cancelled);
    CHECK(cancelled->code() == std::errc::operation_canceled);
    CHECK(contains(cancelled->what(), "cancelled by its greet::Canceller"));
    canceller.reset();
    pair.accepted.send_line("after");
    CHECK(pair.client.recv_line() == "after");
}

TEST_CASE("chaos mode cuts every record in pieces and no byte changes", "[tls][chaos]") {
    test::Pair pair = test::guarded_pair();
    pair.client.set_chaos(20261124);
    pair.accepted.set_chaos(7);
    auto accepted = test::start([&] { pair.accepted.accept_tls(server_side()); });
    pair.client.start_tls(client_side());
    accepted.get();
    const std::string bytes = test::pattern(100000, 5);
    auto sending = test::start([&] {
        pair.client.send_line("chaos");
        return pair.client.send_message(bytes);
    });
    CHECK(pair.accepted.recv_line() == "chaos");
    CHECK(pair.accepted.recv_message() == bytes);
    CHECK(sending.get() == bytes.size() + 4);
    auto answering = test::start([&] {
        pair.accepted.send(bytes);
        pair.accepted.close();
    });
    CHECK(test::recv_all(pair.client) == bytes);
    answering.get();
}

TEST_CASE("one thread sends while another receives on the same Client", "[tls][threads]") {
    test::Pair pair = tls_pair();
    constexpr int messages = 200;
    auto echo = test::start([&] { // the server echoes each message back
        for (int i = 0; i < messages; ++i) pair.accepted.send_message(pair.accepted.recv_message());
    });
    auto sending = test::start([&] {
        for (int i = 0; i < messages; ++i) pair.client.send_message(test::pattern(1000 + 97 * std::size_t(i), std::uint32_t(i)));
    });
    int same = 0;
    for (int i = 0; i < messages; ++i) same += pair.client.recv_message() == test::pattern(1000 + 97 * std::size_t(i), std::uint32_t(i));
    sending.get();
    echo.get();
    CHECK(same == messages);
}

TEST_CASE("a plain connection says so", "[tls]") {
    test::Pair pair = test::guarded_pair();
    CHECK_FALSE(pair.client.is_tls());
    CHECK(pair.client.tls_peer_subject().empty());
    greet::Client never;
    const auto unconnected = thrown([&] { never.start_tls(client_side()); });
    REQUIRE(unconnected);
    CHECK(unconnected->code() == std::errc::not_connected);
}

TEST_CASE("start_tls on a connection that already uses TLS is refused", "[tls]") {
    test::Pair pair = tls_pair();
    const auto again = thrown([&] { pair.client.start_tls(client_side()); });
    REQUIRE(again);
    CHECK(again->code() == std::errc::invalid_argument);
    CHECK(contains(again->what(), "already uses TLS"));
}

// --- Refusals: each one closes the connection and leaves no descriptor behind.

TEST_CASE("a certificate for another name is refused", "[tls][refusals]") {
    const std::size_t before = test::open_descriptors();
    std::string host = "127.0.0.1", wanted = "example.com";
    greet::TlsOptions client = client_side();
    SECTION("TlsOptions::server_name") { client.server_name = "example.com"; }
    SECTION("an address the certificate does not name") { host = wanted = "127.0.0.2"; }
    const Handshake ended = handshake(server_side(), client, host);
    REQUIRE(ended.client);
    INFO(ended.client->what());
    CHECK(ended.client->code() == greet::errc::tls_certificate);
    CHECK(contains(ended.client->what(), "start_tls " + host + ":"));
    CHECK(contains(ended.client->what(), "host name mismatch"));
    CHECK(contains(ended.client->what(), "localhost, 127.0.0.1, ::1, not " + wanted));
    CHECK_FALSE(ended.client_open);
    REQUIRE(ended.server); // the client's alert
    INFO(ended.server->what());
    CHECK(contains(ended.server->what(), "accept_tls "));
    CHECK(refusal_received(ended.server, "the peer refused our certificate (sslv3 alert bad certificate)"));
    CHECK_FALSE(ended.server_open);
    CHECK(test::open_descriptors() == before);
}

TEST_CASE("an expired, a self-signed and an unknown CA's certificate are refused", "[tls][refusals]") {
    const std::size_t before = test::open_descriptors();
    std::string name, words, server_words; // the client's, and the alert the server receives
    SECTION("expired") { name = "expired", words = "the certificate has expired", server_words = "alert certificate expired"; }
    SECTION("self-signed") { name = "self-signed", words = "self-signed certificate", server_words = "alert unknown ca"; }
    SECTION("unknown CA") { name = "wrong-ca-server", words = "unknown CA", server_words = "alert unknown ca"; }
    const Handshake ended = handshake(server_side(name), client_side());
    REQUIRE(ended.client);
    INFO(ended.client->what());
    CHECK(ended.client->code() == greet::errc::tls_certificate);
    CHECK(contains(ended.client->what(), "certificate verify failed: " + words));
    CHECK_FALSE(ended.client_open);
    REQUIRE(ended.server);
    INFO(ended.server->what());
    CHECK(contains(ended.server->what(), "accept_tls 127.0.0.1:"));
    CHECK(refusal_received(ended.server, server_words));
    CHECK_FALSE(ended.server_open);
    CHECK(test::open_descriptors() == before);
}

TEST_CASE("verify off accepts any certificate", "[tls]") {
    greet::TlsOptions client;
    client.verify = false;
    const Handshake ended = handshake(server_side("self-signed"), client);
    CHECK_FALSE(ended.client);
    CHECK_FALSE(ended.server);
}

TEST_CASE("a plaintext peer is refused, on either side", "[tls][refusals]") {
    const std::size_t before = test::open_descriptors();
    {
        test::Pair pair = test::guarded_pair();
        SECTION("start_tls facing a plaintext server") {
            auto plain = test::start([&] {
                pair.accepted.send("hello\n");
                return until_gone(pair.accepted);
            });
            const auto refused = thrown<greet::TlsError>([&] { pair.client.start_tls(client_side()); });
            REQUIRE(refused);
            INFO(refused->what());
            CHECK(refused->code() == greet::errc::tls_protocol);
            CHECK(contains(refused->what(), "start_tls 127.0.0.1:"));
            CHECK(contains(refused->what(), "does not speak TLS"));
            CHECK_FALSE(pair.client.is_open());
            CHECK(test::starts_with(plain.get(), "\x16\x03")); // the ClientHello the plaintext peer saw
        }
        SECTION("accept_tls facing a plaintext client") {
            auto plain = test::start([&] {
                pair.client.send("hello\n");
                return until_gone(pair.client);
            });
            const auto refused = thrown<greet::TlsError>([&] { pair.accepted.accept_tls(server_side()); });
            REQUIRE(refused);
            INFO(refused->what());
            CHECK(refused->code() == greet::errc::tls_protocol);
            CHECK(contains(refused->what(), "accept_tls"));
            CHECK(contains(refused->what(), "does not speak TLS"));
            CHECK_FALSE(pair.accepted.is_open());
            plain.get(); // the plaintext client saw the connection end
        }
    }
    CHECK(test::open_descriptors() == before);
}

TEST_CASE("a peer that closes in the middle of the handshake", "[tls][refusals]") {
    const std::size_t before = test::open_descriptors();
    {
        test::Pair pair = test::guarded_pair();
        SECTION("with a FIN: TlsError") {
            auto peer = test::start([&] {
                std::string hello = read_record(pair.accepted);
                pair.accepted.close();
                return hello;
            });
            const auto refused = thrown<greet::TlsError>([&] { pair.client.start_tls(client_side()); });
            CHECK(peer.get()[0] == '\x16'); // a handshake record
            REQUIRE(refused);
            INFO(refused->what());
            CHECK(refused->code() == greet::errc::tls_protocol);
            CHECK(contains(refused->what(), "the peer closed the connection during the handshake"));
        }
        SECTION("with a reset: the OS's ECONNRESET, not a TlsError") {
            auto peer = test::start([&] {
                read_record(pair.accepted);
                pair.accepted.set_linger(0s); // close() resets the connection
                pair.accepted.close();
            });
            const Failure reset = failure_of([&] { pair.client.start_tls(client_side()); });
            peer.get();
            REQUIRE(reset);
            INFO(reset->what());
            CHECK(reset->code() == std::errc::connection_reset);
            CHECK_FALSE(reset.tls);
        }
        CHECK_FALSE(pair.client.is_open());
    }
    CHECK(test::open_descriptors() == before);
}

TEST_CASE("a handshake that stalls ends at the timeout", "[tls][refusals][timeouts]") {
    const std::size_t before = test::open_descriptors();
    {
        test::Pair pair = test::guarded_pair();
        SECTION("the server reads the ClientHello and says nothing") {
            auto peer = test::start([&] {
                read_record(pair.accepted);
                return until_gone(pair.accepted); // until the client gives up
            });
            pair.client.set_timeout(300ms);
            const auto started = Clock::now();
            const auto timed_out = thrown<greet::TimeoutError>([&] { pair.client.start_tls(client_side()); });
            REQUIRE(timed_out);
            INFO(timed_out->what());
            CHECK(Clock::now() - started >= 300ms);
            CHECK(contains(timed_out->what(), "start_tls 127.0.0.1:"));
            CHECK(contains(timed_out->what(), "gave up after 300 ms"));
            CHECK_FALSE(pair.client.is_open());
            peer.get();
        }
        SECTION("the client never sends a ClientHello") {
            pair.accepted.set_timeout(300ms);
            const auto timed_out = thrown<greet::TimeoutError>([&] { pair.accepted.accept_tls(server_side()); });
            REQUIRE(timed_out);
            INFO(timed_out->what());
            CHECK(contains(timed_out->what(), "accept_tls"));
            CHECK_FALSE(pair.accepted.is_open());
            CHECK(pair.client.recv(100).empty());
        }
    }
    CHECK(test::open_descriptors() == before);
}

TEST_CASE("a Canceller ends a handshake that waits", "[tls][refusals][cancel]") {
    const std::size_t before = test::open_descriptors();
    {
        test::Pair pair = test::guarded_pair();
        greet::Canceller canceller;
        pair.client.set_canceller(canceller);
        auto peer = test::start([&] { // the ClientHello has gone: start_tls waits (or is about to) for an answer
            read_record(pair.accepted);
            canceller.cancel();
            return until_gone(pair.accepted);
        });
        const auto started = Clock::now();
        const Failure cancelled = failure_of([&] { pair.client.start_tls(client_side()); });
        REQUIRE(cancelled);
        INFO(cancelled->what());
        CHECK(cancelled->code() == std::errc::operation_canceled);
        CHECK_FALSE(cancelled.tls);
        CHECK(Clock::now() - started < guard / 2);
        CHECK_FALSE(pair.client.is_open());
        peer.get();
    }
    CHECK(test::open_descriptors() == before);
}

TEST_CASE("garbage where the ServerHello should be is refused", "[tls][refusals]") {
    const std::size_t before = test::open_descriptors();
    {
        test::Pair pair = test::guarded_pair();
        auto peer = test::start([&] {
            read_record(pair.accepted);
            std::error_code ignored; // the client may refuse (and close) before all of it went
            pair.accepted.send(test::pattern(4096, 6), ignored);
            return until_gone(pair.accepted);
        });
        const auto refused = thrown<greet::TlsError>([&] { pair.client.start_tls(client_side()); });
        REQUIRE(refused);
        INFO(refused->what());
        CHECK(refused->code() == greet::errc::tls_protocol);
        CHECK(contains(refused->what(), "start_tls 127.0.0.1:"));
        CHECK_FALSE(pair.client.is_open());
        peer.get();
    }
    CHECK(test::open_descriptors() == before);
}

TEST_CASE("files that cannot be used are refused before any byte goes", "[tls][refusals]") {
    test::Pair pair = test::guarded_pair();
    greet::TlsOptions options = server_side();
    std::string words;
    SECTION("a missing certificate file") {
        options.certificate_file = file("missing.pem");
        words = "certificate_file " + options.certificate_file + ": ";
    }
    SECTION("a key that is not the certificate's") {
        options.private_key_file = file("client.key");
        words = "private_key_file " + options.private_key_file + ": key values mismatch";
    }
    SECTION("a server without a certificate") {
        options = greet::TlsOptions{};
        words = "a server needs TlsOptions::certificate_file and private_key_file";
    }
    SECTION("a client's missing CA file") {
        greet::TlsOptions client = client_side();
        client.ca_file = file("missing-ca.pem");
        const auto refused = thrown<greet::TlsError>([&] { pair.client.start_tls(client); });
        REQUIRE(refused);
        INFO(refused->what());
        CHECK(refused->code() == greet::errc::tls_setup);
        CHECK(contains(refused->what(), "start_tls 127.0.0.1:"));
        CHECK(contains(refused->what(), "ca_file " + file("missing-ca.pem") + ": "));
        return;
    }
    const auto refused = thrown<greet::TlsError>([&] { pair.accepted.accept_tls(options); });
    REQUIRE(refused);
    INFO(refused->what());
    CHECK(refused->code() == greet::errc::tls_setup);
    CHECK(contains(refused->what(), "accept_tls 127.0.0.1:"));
    CHECK(contains(refused->what(), words));
}

// The documented promise ("On failure the connection is closed") for the failures found
// before the handshake begins, and the OS's words for a missing file.
TEST_CASE("a setup failure closes the connection and names the OS's reason", "[tls][refusals]") {
    const std::size_t before = test::open_descriptors();
    {
        test::Pair pair = test::guarded_pair();
        greet::TlsOptions options = server_side();
        options.certificate_file = file("missing.pem");
        const auto refused = thrown<greet::TlsError>([&] { pair.accepted.accept_tls(options); });
        REQUIRE(refused);
        INFO(refused->what());
        CHECK(contains(refused->what(), "No such file or directory"));
        CHECK_FALSE(pair.accepted.is_open());
        pair.client.set_timeout(1s); // a bound: the connection should have ended at once
        std::string got = "(an error)";
        const auto ended = thrown([&] { got = pair.client.recv(100); });
        CHECK(got.empty()); // nothing went, and the connection ended
        CHECK_FALSE(ended);
    }
    CHECK(test::open_descriptors() == before);
}

TEST_CASE("a peer that closes without close_notify cuts the stream short", "[tls][refusals]") {
    test::Pair pair = tls_pair();
    pair.accepted.send_line("partial");
    // A FIN with no close_notify (what Python's SSLSocket.close() does): the plain socket closes under TLS.
    REQUIRE(::shutdown(pair.accepted.native_handle(), SHUT_RDWR) == 0);
    CHECK(pair.client.recv_line() == "partial");
    const auto truncated = thrown<greet::TlsError>([&] { pair.client.recv(100); });
    REQUIRE(truncated);
    INFO(truncated->what());
    CHECK(truncated->code() == greet::errc::tls_truncated);
    CHECK(contains(truncated->what(), "without close_notify"));
}
