// libFuzzer target: Server::serve_lines and Server::serve_messages (the reactor) against a
// client that sends the input as requests, over real loopback TCP connections.
//
// Two servers run for the life of the process, each on a thread of its own, on 127.0.0.1
// port 0: serve_lines with max_request 64 and serve_messages with max_request 256, both
// with 2 workers, a 2 s idle_timeout, a listener SO_SNDBUF of 4 KiB (the accepted sockets
// inherit it, so replies back up into the server's own output buffer) and on_error counting
// what it is told. Their handler echoes the request; a request starting with '!' throws; one
// starting with '*' is answered with the request 512 times over (so that a client that
// does not read pushes the server past its output bound of 64 KiB beyond one reply).
//
// The input is a schedule, then a byte stream:
//   byte 0          bit 0: 0 serve_lines, 1 serve_messages
//                   bit 1: chaos mode on the client's sends (pieces of 1-16 bytes, each its own segment)
//                   bit 2: the client's SO_RCVBUF small (2 KiB), so replies wait on the server
//   pairs (op, arg) until an op of 0xFF or 64 pairs; op % 6 is
//       0 send the next arg + 1 bytes of the stream
//       1 read one reply (when none is due: a 0 ms look that must find nothing, or, on a
//         connection the server must close, a read that must see the close)
//       2 read every reply due
//       3 half-close (shutdown_send), read to the end, check, close; the rest of the stream
//         goes on a new connection
//       4 reset (SO_LINGER 0, close); the rest of the stream goes on a new connection
//       5 send the next arg % 32 + 1 bytes one byte a send
//   the rest        the stream
// Then the rest of the stream goes out, a fresh connection makes one round trip (while the
// last connection is still open, perhaps with replies it has not read: it must not hold the
// server up), and the last connection is half-closed and read to its end.
//
// Checked, with each connection's expected replies computed from the bytes it sent, framed
// as the server frames them (a line ends at '\n', a '\r' before it stripped; a message is a
// 4-byte big-endian length and its payload; a line over 64 bytes ('\r' aside), or 66 bytes with no '\n',
// or a length over 256, is refused):
// - while every request sent is well-formed, within the limit and not a '!', every reply due
//   arrives (a read that times out is a hang), equals its request's echo, in order, and no
//   other byte comes; after a half-close every reply comes, then the clean end (no reset,
//   no partial reply); no send fails;
// - once a refused or throwing request has gone out, the replies that come are a prefix of
//   the expected ones (a partial one included), and then the connection ends (a timeout is
//   a hang); on_error has by then been told (EMSGSIZE or the handler's exception);
// - on_error is told nothing else but resets and broken pipes (never of a refusal or a throw
//   that was not sent, and never of idle_timeout: no connection here stays silent for 2 s);
// - after each input the server answers a new connection, its serve call has not returned,
//   and (every 512 inputs) the process's descriptors come back to their count at start.
// Every client call has a 5 s timeout; a property violated aborts with a message.
// GREET_SOCKET_CHAOS=<seed> in the environment cuts the servers' reads and writes too.
// Build and run: scripts/fuzz.sh [seconds]
#include "greet_socket.hpp"

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;

constexpr std::size_t line_limit = 64, message_limit = 256, amplification = 512;
constexpr std::chrono::milliseconds patience = 5s; // every client call's timeout
constexpr std::size_t npos = std::string_view::npos;

std::string where; // what the input was doing, for the message of a violation

[[noreturn]] void violated(const std::string& what) {
    std::fprintf(stderr, "property violated (%s): %s\n", where.c_str(), what.c_str());
    std::abort();
}

// --- The handler, and the replies it gives.
struct Refusal : std::runtime_error {
    using std::runtime_error::runtime_error;
};
std::string echo(std::string_view request) {
    if (request.substr(0, 1) == "*") {
        std::string reply;
        reply.reserve(request.size() * amplification);
        for (std::size_t k = 0; k < amplification; ++k) reply.append(request);
        return reply;
    }
    return std::string(request);
}
std::string answer(std::string_view request, const greet::Address&) {
    if (request.substr(0, 1) == "!") throw Refusal("the fuzz handler refuses a request starting with '!'");
    return echo(request);
}

// --- The servers.
struct Served {
    const bool lines;
    const std::size_t limit;
    greet::Server server;
    std::uint16_t port = 0;
    std::thread thread;
    std::atomic<bool> returned{false};
    std::string failure; // what serve ended with, written before `returned`
    // on_error's reports, by kind.
    std::atomic<std::uint64_t> refused{0}, thrown{0}, idle{0}, resets{0};
    // Connections whose refused or throwing request went out (so a report may come), and
    // connections the client saw end after one (so the report has come).
    std::uint64_t sent_refused = 0, sent_thrown = 0, seen_refused = 0, seen_thrown = 0;

    explicit Served(bool serve_lines) : lines(serve_lines), limit(serve_lines ? line_limit : message_limit) {}

    void report(const std::exception& error) {
        if (dynamic_cast<const Refusal*>(&error)) return void(++thrown);
        if (dynamic_cast<const greet::TimeoutError*>(&error)) return void(++idle);
        if (const auto* e = dynamic_cast<const greet::Error*>(&error)) {
            if (e->code() == std::errc::message_size) return void(++refused);
            if (e->code() == std::errc::connection_reset || e->code() == std::errc::broken_pipe) return void(++resets);
        }
        std::fprintf(stderr, "on_error: %s\n", error.what());
        violated("the server reported an error no client here causes");
    }
    void start() {
        server.set_socket_options([](greet::native_handle_type s, std::error_code&) {
            const int size = 4096; // accepted sockets inherit it
            ::setsockopt(s, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
        });
        server.bind("127.0.0.1", 0);
        server.listen();
        port = server.local_address().port;
        greet::ServeOptions options;
        options.workers = 2;
        options.max_request = limit;
        options.idle_timeout = 2s;
        options.grace = 100ms;
        options.on_error = [this](const greet::Address&, const std::exception& error) { report(error); };
        thread = std::thread([this, options] {
            std::error_code ec;
            lines ? server.serve_lines(answer, options, ec) : server.serve_messages(answer, options, ec);
            failure = ec ? ec.message() : "no error";
            returned = true;
        });
    }
    void stop() {
        server.stop();
        thread.join();
    }
    // What on_error says must agree with what the client sent and saw.
    void check_reports() const {
        if (refused.load() > sent_refused) violated("on_error reported EMSGSIZE for a request never sent");
        if (thrown.load() > sent_thrown) violated("on_error reported a handler exception for a request never sent");
        if (refused.load() < seen_refused) violated("a connection closed for a refused request without an on_error report");
        if (thrown.load() < seen_thrown) violated("a connection closed for a throwing handler without an on_error report");
        if (idle.load() != 0) violated("idle_timeout closed a connection: the server held one for 2 s");
        if (returned.load()) violated((lines ? "serve_lines returned: " : "serve_messages returned: ") + failure);
    }
};

Served* servers[2];

std::size_t open_descriptors() {
    DIR* folder = ::opendir("/proc/self/fd");
    if (!folder) return 0;
    std::size_t count = 0;
    while (::readdir(folder)) ++count;
    ::closedir(folder);
    return count;
}
std::size_t descriptors_at_start = 0;

void stop_servers() {
    for (Served* s : servers) s->stop();
    for (Served* s : servers) {
        std::fprintf(stderr, "fuzz_serve: %s: on_error had %llu EMSGSIZE, %llu handler exceptions, %llu resets\n",
                     s->lines ? "serve_lines" : "serve_messages", static_cast<unsigned long long>(s->refused.load()),
                     static_cast<unsigned long long>(s->thrown.load()), static_cast<unsigned long long>(s->resets.load()));
        delete s;
    }
}

void round_trip(Served& s, std::uint8_t flags);

void start_servers() {
    servers[0] = new Served(true);
    servers[1] = new Served(false);
    for (Served* s : servers) s->start();
    std::atexit(stop_servers);
    for (Served* s : servers) round_trip(*s, 0); // the workers have their sockets
    descriptors_at_start = open_descriptors();
}

// Waits until the kernel has handed every sent byte to the loopback device (so that each
// piece is a segment of its own), for at most 20 ms: bytes a reset caught in the queue
// never leave.
void flush(greet::Client& client) {
    const auto until = std::chrono::steady_clock::now() + 20ms;
    for (;;) {
        int unsent = 0;
        if (::ioctl(static_cast<int>(client.native_handle()), SIOCOUTQNSD, &unsent) != 0 || unsent == 0) return;
        if (std::chrono::steady_clock::now() > until) return;
        sched_yield();
    }
}

greet::Client connect(const Served& s, std::uint8_t flags) {
    greet::Client client;
    client.set_timeout(patience);
    if (flags & 4) client.set_receive_buffer_size(2048);
    std::error_code ec;
    client.connect("127.0.0.1", s.port, ec);
    if (ec) violated("connect: " + ec.message());
    client.set_no_delay(true);
    client.set_chaos(std::nullopt); // on for sends only (Session::send): reads in pieces would only slow the replies
    return client;
}
void reset(greet::Client& client) { // an abortive close: no TIME_WAIT piles up over millions of inputs
    if (!client.is_open()) return;
    std::error_code ignored;
    client.set_linger(0s, ignored);
    client.close();
}

// What the server makes of a connection's bytes, framed as it frames them.
struct Expected {
    std::vector<std::string> replies; // what the client's recv_line or recv_message returns for each
    std::vector<std::string> wire;    // each reply as it goes on the wire
    std::vector<std::size_t> ends;    // where each good request ends in the stream
    std::size_t bad_at = npos;        // the bytes that make the server close the connection
    bool thrown = false;              // ... because the handler throws (else a request over the limit)

    Expected(std::string_view stream, bool lines, std::size_t max) {
        for (std::size_t p = 0;;) {
            std::string_view request;
            std::size_t end;
            if (lines) {
                const std::size_t window = std::min(stream.size(), p + max + 2);
                const std::size_t newline = stream.substr(0, window).find('\n', p);
                if (newline == npos) {
                    if (stream.size() - p >= max + 2) bad_at = p + max + 2; // no line end within max_request
                    return;
                }
                std::size_t length = newline - p;
                if (length > 0 && stream[newline - 1] == '\r') --length;
                end = newline + 1;
                if (length > max) {
                    bad_at = end;
                    return;
                }
                request = stream.substr(p, length);
            } else {
                if (stream.size() - p < 4) return;
                const auto* h = reinterpret_cast<const unsigned char*>(stream.data() + p);
                const std::size_t length = std::size_t{h[0]} << 24 | std::size_t{h[1]} << 16 | std::size_t{h[2]} << 8 | h[3];
                if (length > max) {
                    bad_at = p + 4;
                    return;
                }
                if (stream.size() - p - 4 < length) return;
                end = p + 4 + length;
                request = stream.substr(p + 4, length);
            }
            if (request.substr(0, 1) == "!") {
                thrown = true;
                bad_at = end;
                return;
            }
            std::string reply = echo(request);
            if (lines) {
                wire.push_back(reply + "\n");
                if (!reply.empty() && reply.back() == '\r') reply.pop_back(); // recv_line takes "\r\n" for the end
            } else {
                const auto n = static_cast<std::uint32_t>(reply.size());
                const char header[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                                        static_cast<char>(n)};
                wire.push_back(std::string(header, 4) + reply);
            }
            replies.push_back(std::move(reply));
            ends.push_back(end);
            p = end;
        }
    }
};

// One connection of the input: its part of the stream, what the server owes it.
struct Session {
    Served& s;
    greet::Client client;
    Expected expected;
    std::size_t sent = 0; // bytes of its stream sent
    std::size_t read = 0; // replies read
    bool ended = false;   // the client saw the end (the server's close or reset), or closed it

    std::optional<std::uint64_t> chaos;

    Session(Served& served, std::uint8_t flags, std::string_view stream)
        : s(served), client(connect(served, flags)), expected(stream, served.lines, served.limit),
          chaos(flags & 2 ? std::optional<std::uint64_t>(flags) : std::nullopt) {}
    ~Session() { reset(client); }

    bool broken() const { return expected.bad_at <= sent; }
    std::size_t due() const {
        return static_cast<std::size_t>(std::upper_bound(expected.ends.begin(), expected.ends.end(), sent) -
                                        expected.ends.begin());
    }
    std::string state() const {
        return "reply " + std::to_string(read) + " of " + std::to_string(due()) + " due, " + std::to_string(sent) +
               " bytes sent" + (broken() ? std::string(", past a ") + (expected.thrown ? "throwing" : "refused") + " request" : "");
    }

    void send(std::string_view bytes) {
        if (ended || bytes.empty()) return;
        const bool was_broken = broken();
        std::error_code ec;
        client.set_chaos(chaos);
        client.send(bytes, ec);
        client.set_chaos(std::nullopt);
        sent += bytes.size();
        if (ec && !broken()) violated("a send on a connection the server may not close failed: " + ec.message());
        if (!was_broken && broken()) ++(expected.thrown ? s.sent_thrown : s.sent_refused);
        if (!broken()) flush(client); // else the server may have closed: what follows need not be in pieces
    }
    // The connection ended (ec: how the client saw it); half_closed: after the client's FIN.
    void end(std::error_code ec, bool half_closed) {
        if (ec == std::errc::timed_out) violated("hang: no reply and no close within 5 s; " + state());
        if (ec != greet::errc::peer_closed && ec != std::errc::connection_reset)
            violated("a read ended in an error no server close explains: " + ec.message() + "; " + state());
        ended = true;
        // A reply cut short by the close: its bytes stay unread, and must begin the next reply.
        client.set_timeout(0ms);
        std::error_code ignored;
        const std::string rest = client.recv(1 << 20, ignored);
        const std::string_view next = read < due() ? std::string_view(expected.wire[read]) : std::string_view();
        if (next.substr(0, rest.size()) != rest) violated("bytes after the last whole reply that do not begin the next; " + state());
        if (broken()) {
            ++(expected.thrown ? s.seen_thrown : s.seen_refused);
            s.check_reports();
            return;
        }
        if (!half_closed) violated("the server closed a connection whose requests were all well-formed; " + state());
        if (ec != greet::errc::peer_closed) violated("a reset instead of the clean end after the client's FIN; " + state());
        if (read != due() || !rest.empty()) violated("the clean end before every reply came; " + state());
    }
    // Reads the next reply; false when the connection has ended.
    bool read_one(bool half_closed) {
        if (ended) return false;
        std::error_code ec;
        const std::string reply = s.lines ? client.recv_line(1 << 20, ec) : client.recv_message(1 << 20, ec);
        if (ec) return end(ec, half_closed), false;
        if (read >= due()) violated("a reply to no request sent; " + state());
        if (reply != expected.replies[read]) violated("a reply other than the echo of its request; " + state());
        ++read;
        return true;
    }
    void read_due() {
        while (read < due() && read_one(false)) {
        }
    }
    // Op 1: one reply; with none due, a look that must find nothing (or, on a connection the
    // server must close, a read that must see its end).
    void look() {
        if (ended) return;
        if (read < due() || broken()) return void(read_one(false));
        client.set_timeout(0ms);
        std::error_code ec;
        const std::string bytes = client.recv(1, ec);
        client.set_timeout(patience);
        if (!ec) violated(bytes.empty() ? "the server closed a connection with every request well-formed; " + state()
                                        : "a byte with no reply due; " + state());
        if (ec != std::errc::timed_out) violated("a look at an idle connection failed: " + ec.message() + "; " + state());
    }
    // Op 3 and the end of the input: half-close, read to the end.
    void finish() {
        if (!ended) {
            std::error_code ec;
            client.shutdown_send(ec);
            if (ec && !broken()) violated("shutdown_send on a connection the server may not close failed: " + ec.message());
            while (read_one(true)) {
            }
        }
        reset(client);
        ended = true;
        s.check_reports();
    }
};

// One round trip on a new connection: the server still serves.
void round_trip(Served& s, std::uint8_t flags) {
    greet::Client client = connect(s, static_cast<std::uint8_t>(flags & ~4));
    std::error_code ec;
    s.lines ? client.send_line("ping", ec) : client.send_message("ping", ec);
    const std::string reply = ec ? std::string() : s.lines ? client.recv_line(64, ec) : client.recv_message(64, ec);
    if (ec) violated("a new connection got no answer: " + ec.message());
    if (reply != "ping") violated("a new connection got a wrong answer");
    reset(client);
}

struct Run {
    Served& s;
    std::uint8_t flags;
    std::string_view stream;
    std::size_t at = 0; // bytes of the stream sent
    std::optional<Session> session;
    int sessions = 0;

    Session& current() { // the open connection, or a new one for the rest of the stream
        if (!session || session->ended) {
            session.reset();
            session.emplace(s, flags, stream.substr(at));
            ++sessions;
        }
        where = "connection " + std::to_string(sessions) + " from stream byte " + std::to_string(at - session->sent);
        return *session;
    }
    Session* live() { return session && !session->ended ? &current() : nullptr; }
    void send(std::size_t n, bool trickle) {
        n = std::min(n, stream.size() - at);
        if (n == 0) return;
        Session& c = current();
        for (std::size_t k = 0; k < n; k += trickle ? 1 : n) c.send(stream.substr(at + k, trickle ? 1 : n));
        at += n;
    }
    void step(int op, std::size_t arg) {
        Session* c = op >= 1 && op <= 4 ? live() : nullptr;
        switch (op) {
        case 0: send(arg + 1, false); break;
        case 1: if (c) c->look(); break;
        case 2: if (c) c->read_due(); break;
        case 3: if (c) c->finish(); break;
        case 4:
            if (c) reset(c->client), c->ended = true;
            break;
        default: send(arg % 32 + 1, true); break;
        }
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    static const bool started = (start_servers(), true);
    (void)started;
    static std::uint64_t inputs = 0;
    const std::uint8_t flags = data[0];
    std::size_t i = 1;
    std::pair<int, std::size_t> ops[64];
    std::size_t count = 0;
    while (count < 64 && i + 1 < size && data[i] != 0xFF) {
        ops[count++] = {data[i] % 6, data[i + 1]};
        i += 2;
    }
    if (i < size && data[i] == 0xFF) ++i;
    Served& s = *servers[flags & 1];
    {
        Run run{s, flags, std::string_view(reinterpret_cast<const char*>(data + i), size - i), 0, std::nullopt, 0};
        for (std::size_t k = 0; k < count; ++k) run.step(ops[k].first, ops[k].second);
        run.send(run.stream.size(), false);
        Session& last = run.current();
        where = "the round trip after the input";
        round_trip(s, flags);
        where = "the end of the last connection";
        last.finish();
    }
    s.check_reports();
    if (++inputs % 512 == 0) { // every connection has gone: the server's sides close within milliseconds
        std::size_t now = open_descriptors();
        for (int turn = 0; turn < 100 && now > descriptors_at_start; ++turn) {
            std::this_thread::sleep_for(10ms);
            now = open_descriptors();
        }
        if (now > descriptors_at_start + 4)
            violated("descriptors leak: " + std::to_string(now) + " open, " + std::to_string(descriptors_at_start) +
                     " at start");
    }
    return 0;
}
