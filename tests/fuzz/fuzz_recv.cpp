// libFuzzer target: the receive path over a real loopback TCP connection.
//
// The input is a schedule, then a byte stream:
//   byte 0          flags: bit 0 chaos mode on the reader, bit 1 on the writer
//   pairs (op, arg) until an op of 0xFF or 64 pairs; op % 7 is
//       0 the writer sends the next arg + 1 bytes of the stream
//       1 recv(arg + 1)   2 recv_text(arg + 4)   3 recv_exact(arg + 1)
//       4 recv_line(arg + 1)   5 recv_message(arg)
//       6 the writer sends the rest of the stream and closes its side
//   the rest        the stream
// Then the writer sends what is left, and the reader drains everything with recv().
//
// Checked: each call's result obeys its own rule, every exception is one the call may
// throw in that state (and leaves the bytes unread), and the concatenation of what the
// calls returned (with the '\n', '\r\n' and headers they consume) is the stream: no
// byte lost, none duplicated, order kept. The reader's calls have a 0 ms timeout, so a
// call that needs bytes not yet sent ends in TimeoutError at once, which also keeps
// its bytes. The connection is kept between inputs while it stays clean (everything
// sent was received); an input that closes it reconnects for the next.
// Build and run: scripts/fuzz.sh [seconds]
#include "greet_socket.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace {

using namespace std::chrono_literals;

[[noreturn]] void violated(const char* what, std::size_t position) {
    std::fprintf(stderr, "property violated at stream byte %zu: %s\n", position, what);
    std::abort();
}

struct Connection {
    greet::Server server{"127.0.0.1", 0}; // made once per process
    greet::Client writer, reader;

    void open() {
        if (reader.is_open()) return;
        writer.set_timeout(5s);
        writer.connect("127.0.0.1", server.local_address().port);
        server.set_timeout(5s);
        reader = server.accept().first;
        int on = 1; // every piece leaves at once: no Nagle delay waiting for an ACK
        ::setsockopt(writer.native_handle(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    }
    // An abortive close (RST) after the reader has seen the end: no TIME_WAIT piles up.
    void close() {
        linger abort_on_close{1, 0};
        ::setsockopt(writer.native_handle(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
        writer.close();
        reader.close();
    }
    // Waits until the kernel has handed every sent byte to the loopback device, so that
    // a 0 ms receive sees it (bounded: loopback delivers within the send call).
    void flush() const {
        for (int turn = 0; turn < 100000; ++turn) {
            int unsent = 0;
            if (::ioctl(writer.native_handle(), SIOCOUTQNSD, &unsent) != 0 || unsent == 0) return;
            sched_yield();
        }
    }
};

Connection& connection() {
    static Connection c;
    return c;
}

struct Run {
    std::string_view stream;
    std::size_t sent = 0; // bytes of the stream the writer has sent
    std::size_t pos = 0;  // bytes of the stream the reader's calls have returned or consumed
    bool closed = false;
    Connection& c;

    void send(std::size_t n) {
        if (closed) return;
        n = std::min(n, stream.size() - sent);
        if (n == 0) return;
        c.writer.send(stream.substr(sent, n));
        sent += n;
        c.flush();
    }
    void close_writer() {
        send(stream.size());
        if (closed) return;
        c.writer.shutdown_send();
        closed = true;
        c.flush();
    }
    void consumed(std::string_view bytes, const char* what) {
        if (stream.compare(pos, bytes.size(), bytes) != 0 || pos + bytes.size() > sent) violated(what, pos);
        pos += bytes.size();
    }
    bool at_end() const { return pos == stream.size(); }
    bool first_char_invalid() const { // no prefix of 1 to 4 bytes is a whole character
        for (std::size_t j = 1; j <= 4 && pos + j <= stream.size(); ++j)
            if (greet::utf8::is_valid(stream.substr(pos, j))) return false;
        return true;
    }

    void recv(std::size_t max) {
        const std::string r = c.reader.recv(max);
        if (r.empty() && !(closed && at_end())) violated("recv returned \"\" before the end of the stream", pos);
        if (r.size() > max) violated("recv returned more than max_bytes", pos);
        consumed(r, "recv returned bytes out of order");
    }
    void recv_text(std::size_t max) {
        const std::string r = c.reader.recv_text(max);
        if (r.empty() && !(closed && at_end())) violated("recv_text returned \"\" before the end of the stream", pos);
        if (r.size() > max) violated("recv_text returned more than max_bytes", pos);
        if (!greet::utf8::is_valid(r)) violated("recv_text returned ill-formed UTF-8", pos);
        consumed(r, "recv_text returned bytes out of order");
    }
    void recv_exact(std::size_t n) {
        const std::string r = c.reader.recv_exact(n);
        if (r.size() != n) violated("recv_exact returned a different count", pos);
        consumed(r, "recv_exact returned bytes out of order");
    }
    void recv_line(std::size_t max) {
        const std::string r = c.reader.recv_line(max);
        if (r.find('\n') != std::string::npos) violated("recv_line returned a '\\n'", pos);
        consumed(r, "recv_line returned bytes out of order");
        if (stream.substr(pos, 1) == "\n") {
            if (!r.empty() && r.back() == '\r') violated("recv_line kept the '\\r' of a \"\\r\\n\"", pos);
            consumed("\n", "recv_line consumed an unsent '\\n'");
        } else {
            consumed("\r\n", "recv_line returned a line the stream did not end with '\\n'");
        }
        // max_bytes bounds the line itself; its "\n" or "\r\n" does not count.
        if (r.size() > max) violated("recv_line returned a line longer than max_bytes", pos);
    }
    void recv_message(std::size_t max) {
        const std::string r = c.reader.recv_message(max);
        if (stream.size() - pos < 4) violated("recv_message returned without a whole header", pos);
        const auto* h = reinterpret_cast<const unsigned char*>(stream.data() + pos);
        const std::size_t length = std::size_t{h[0]} << 24 | std::size_t{h[1]} << 16 | std::size_t{h[2]} << 8 | h[3];
        if (length > max) violated("recv_message returned a message longer than max_bytes", pos);
        if (r.size() != length) violated("recv_message returned a length other than its header's", pos);
        consumed(stream.substr(pos, 4), "recv_message consumed an unsent header");
        consumed(r, "recv_message returned bytes out of order");
    }

    // Whether the exception a call threw is one it may throw now.
    void check_error(int op, std::size_t arg, const greet::Error& error) const {
        if (dynamic_cast<const greet::TimeoutError*>(&error)) return; // the bytes it needs may not be sent yet
        const std::string_view rest = stream.substr(pos);
        if (dynamic_cast<const greet::ClosedError*>(&error)) {
            if (!closed) violated("ClosedError while the writer is open", pos);
            const bool short_stream = (op == 3 && rest.size() < arg + 1) || (op == 4 && rest.find('\n') == std::string_view::npos) ||
                                      (op == 5 && (rest.size() < 4 || rest.size() - 4 < (std::size_t{static_cast<unsigned char>(rest[0])} << 24 |
                                                                                     std::size_t{static_cast<unsigned char>(rest[1])} << 16 |
                                                                                     std::size_t{static_cast<unsigned char>(rest[2])} << 8 |
                                                                                     static_cast<unsigned char>(rest[3]))));
            if (!short_stream) violated("ClosedError though the stream holds the whole unit", pos);
            return;
        }
        if (dynamic_cast<const greet::Utf8Error*>(&error)) {
            if (op != 2 || !first_char_invalid()) violated("Utf8Error though the next character is whole and valid", pos);
            return;
        }
        if (error.code() == std::errc::message_size) {
            if (op == 4) {
                const std::size_t newline = rest.find('\n');
                const std::size_t length = newline == std::string_view::npos ? newline : newline - (newline > 0 && rest[newline - 1] == '\r');
                if (length <= arg + 1) violated("recv_line refused a line within max_bytes", pos);
                return;
            }
            if (op == 5 && rest.size() >= 4) {
                const auto* h = reinterpret_cast<const unsigned char*>(rest.data());
                const std::size_t length = std::size_t{h[0]} << 24 | std::size_t{h[1]} << 16 | std::size_t{h[2]} << 8 | h[3];
                if (length <= arg) violated("recv_message refused a message within max_bytes", pos);
                return;
            }
        }
        std::fprintf(stderr, "%s\n", error.what());
        violated("an error no receive may throw here", pos);
    }

    void step(int op, std::size_t arg) {
        try {
            switch (op) {
            case 0: send(arg + 1); break;
            case 1: recv(arg + 1); break;
            case 2: recv_text(arg + 4); break;
            case 3: recv_exact(arg + 1); break;
            case 4: recv_line(arg + 1); break;
            case 5: recv_message(arg); break;
            default: close_writer(); break;
            }
        } catch (const greet::Error& error) {
            check_error(op, arg, error);
        }
    }

    // Everything not yet returned comes back through plain recv() calls.
    void drain() {
        c.reader.set_timeout(5s);
        for (std::size_t turn = 0; turn <= stream.size() && !at_end(); ++turn) recv(65536);
        if (!at_end()) violated("the stream did not drain", pos);
        if (closed && !c.reader.recv(1).empty()) violated("bytes after the end of the stream", pos);
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t flags = data[0];
    std::size_t i = 1;
    std::pair<int, std::size_t> ops[64];
    std::size_t count = 0;
    while (count < 64 && i + 1 < size && data[i] != 0xFF) {
        ops[count++] = {data[i] % 7, data[i + 1]};
        i += 2;
    }
    if (i < size && data[i] == 0xFF) ++i;
    Connection& c = connection();
    c.open();
    Run run{std::string_view(reinterpret_cast<const char*>(data + i), size - i), 0, 0, false, c};
    c.reader.set_chaos(flags & 1 ? std::optional<std::uint64_t>(flags) : std::nullopt);
    c.writer.set_chaos(flags & 2 ? std::optional<std::uint64_t>(flags) : std::nullopt);
    c.reader.set_timeout(0ms);
    for (std::size_t k = 0; k < count; ++k) run.step(ops[k].first, ops[k].second);
    run.send(run.stream.size());
    run.drain();
    if (run.closed) c.close();
    return 0;
}
