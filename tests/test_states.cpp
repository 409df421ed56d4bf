// Every member of Server and Client, called in every state the object can reach: each
// call works or throws greet::Error, never another exception, a crash or a hang. Build
// with -D_GLIBCXX_ASSERTIONS (the test target does) so container misuse aborts here.
#include "catch.hpp"
#include "greet_socket.hpp"
#include "support.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using test::guard;

namespace {

// Passes when f returns or throws greet::Error; any other outcome fails, naming the call.
template <class F>
void works_or_throws_error(const std::string& call, F&& f) {
    try {
        f();
    } catch (const greet::Error&) {
    } catch (const std::exception& e) {
        FAIL_CHECK(call << " threw " << typeid(e).name() << " (not a greet::Error): " << e.what());
    } catch (...) {
        FAIL_CHECK(call << " threw something that is not a std::exception");
    }
}

// --- Server

enum class ServerState { fresh, bound, listening, serving, stopped, served, closed, moved_from };
const char* name(ServerState state) {
    switch (state) {
    case ServerState::fresh: return "fresh";
    case ServerState::bound: return "bound only";
    case ServerState::listening: return "listening";
    case ServerState::serving: return "serving";
    case ServerState::stopped: return "stopped";
    case ServerState::served: return "after serve() returned";
    case ServerState::closed: return "closed";
    case ServerState::moved_from: return "moved-from";
    }
    return "?";
}

// A Server in one state. In `serving`, serve() runs on a helper thread that the
// destructor stops and waits for, so a failed check leaves no thread behind.
struct ServerInState {
    greet::Server server;
    greet::Server moved_to; // a moved-from server's sockets live on here
    std::future<void> serving;

    ServerInState() = default;
    ServerInState(const ServerInState&) = delete;
    ServerInState& operator=(const ServerInState&) = delete;
    ~ServerInState() {
        server.stop();
        if (serving.valid()) serving.wait();
    }
};

// Starts serve() and returns once it has served one client, so it is inside its loop.
void start_serving(ServerInState& s) {
    s.serving = test::start([&server = s.server] {
        server.serve([](greet::Client& client, const greet::Address&) { client.send_line("hello"); });
    });
    greet::Client probe;
    probe.set_timeout(guard);
    probe.connect("127.0.0.1", s.server.local_address().port);
    REQUIRE(probe.recv_line() == "hello");
}

std::unique_ptr<ServerInState> make_server(ServerState state) {
    auto s = std::make_unique<ServerInState>();
    if (state == ServerState::fresh) return s;
    s->server.bind("127.0.0.1", 0);
    if (state == ServerState::bound) return s;
    s->server.listen();
    switch (state) {
    case ServerState::serving:
        start_serving(*s);
        break;
    case ServerState::stopped:
        s->server.stop();
        REQUIRE(s->server.stopped());
        break;
    case ServerState::served:
        start_serving(*s);
        s->server.stop();
        REQUIRE(s->serving.wait_for(guard) == std::future_status::ready);
        s->serving.get(); // rethrows what serve threw
        break;
    case ServerState::closed:
        s->server.close();
        REQUIRE(!s->server.is_open());
        break;
    case ServerState::moved_from:
        s->moved_to = std::move(s->server);
        REQUIRE(s->moved_to.is_open());
        break;
    default:
        break;
    }
    return s;
}

// serve() where it should return at once. A serve that does not return within the
// guard is stopped by a watchdog, and the call fails with a non-greet exception.
void serve_briefly(greet::Server& server) {
    std::promise<void> returned;
    auto watchdog = test::start([&server, done = returned.get_future()] {
        if (done.wait_for(guard) == std::future_status::ready) return true;
        server.stop();
        return false;
    });
    greet::ServeOptions options;
    // A bound server that is not listening fails every accept: stop rather than retry for ever.
    options.on_error = [&server](const greet::Address&, const std::exception&) { server.stop(); };
    try {
        server.serve([](greet::Client&, const greet::Address&) {}, options);
    } catch (...) {
        returned.set_value();
        watchdog.wait();
        throw;
    }
    returned.set_value();
    if (!watchdog.get()) throw std::runtime_error("serve() did not return within the guard");
}

struct ServerCall {
    const char* name;
    std::function<void(greet::Server&)> call;
    bool while_serving; // safe from another thread while serve() runs (const members and stop())
};

std::vector<ServerCall> server_calls() {
    using ms = std::chrono::milliseconds;
    return {
        {"bind", [](greet::Server& s) { s.bind("127.0.0.1", 0); }, false},
        {"listen", [](greet::Server& s) { s.listen(); }, false},
        {"set_timeout(0 ms)", [](greet::Server& s) { s.set_timeout(0ms); }, false},
        {"set_timeout(5 ms)", [](greet::Server& s) { s.set_timeout(5ms); }, false},
        {"set_timeout(nullopt)", [](greet::Server& s) { s.set_timeout(std::nullopt); }, false},
        {"set_timeout(milliseconds::max())", [](greet::Server& s) { s.set_timeout(ms::max()); }, false},
        // A short timeout first, so that accept cannot wait for ever.
        {"set_timeout(5 ms), then accept", [](greet::Server& s) {
             s.set_timeout(5ms);
             s.accept();
         }, false},
        {"timeout", [](greet::Server& s) { (void)s.timeout(); }, true},
        {"local_address", [](greet::Server& s) { (void)s.local_address(); }, true},
        {"close", [](greet::Server& s) { s.close(); }, false},
        {"is_open", [](greet::Server& s) { (void)s.is_open(); }, true},
        {"stop", [](greet::Server& s) { s.stop(); }, true},
        {"stopped", [](greet::Server& s) { (void)s.stopped(); }, true},
        {"serve", [](greet::Server& s) { serve_briefly(s); }, false},
    };
}

// serve() returns promptly only where no client can come: not open, stopped, or bound
// without listening (where serve_briefly's on_error stops it at the first failed accept).
bool serve_returns_promptly(ServerState state) {
    return state != ServerState::listening && state != ServerState::serving;
}

// --- Client

enum class ClientState { fresh, connected, peer_closed, shut_down, closed, moved_from };
const char* name(ClientState state) {
    switch (state) {
    case ClientState::fresh: return "fresh";
    case ClientState::connected: return "connected";
    case ClientState::peer_closed: return "peer closed";
    case ClientState::shut_down: return "after shutdown_send";
    case ClientState::closed: return "closed";
    case ClientState::moved_from: return "moved-from";
    }
    return "?";
}

struct ClientInState {
    greet::Client client;
    greet::Client peer;
    greet::Client moved_to;
};

ClientInState make_client(ClientState state) {
    ClientInState s;
    if (state == ClientState::fresh) return s;
    test::Pair pair = test::connect_pair();
    s.client = std::move(pair.client);
    s.peer = std::move(pair.accepted);
    switch (state) {
    case ClientState::peer_closed:
        s.peer.close();
        break;
    case ClientState::shut_down:
        s.client.shutdown_send();
        break;
    case ClientState::closed:
        s.client.close();
        REQUIRE(!s.client.is_open());
        break;
    case ClientState::moved_from:
        s.moved_to = std::move(s.client);
        REQUIRE(s.moved_to.is_open());
        break;
    default:
        break;
    }
    return s;
}

// A port on 127.0.0.1 that nothing listens on: one the OS just handed out and took back.
std::uint16_t closed_port() {
    greet::Server server("127.0.0.1", 0);
    return server.local_address().port;
}

struct ClientCall {
    const char* name;
    std::function<void(greet::Client&)> call;
};

std::vector<ClientCall> client_calls(std::uint16_t refused_port) {
    using ms = std::chrono::milliseconds;
    // Every receive gets a short timeout first: in the connected state nothing arrives.
    auto receive = [](auto f) {
        return [f](greet::Client& c) {
            c.set_timeout(5ms);
            f(c);
        };
    };
    return {
        {"connect", [refused_port](greet::Client& c) {
             c.set_timeout(guard);
             c.connect("127.0.0.1", refused_port);
         }},
        {"send", [](greet::Client& c) { c.send("x"); }},
        {"send_line", [](greet::Client& c) { c.send_line("x"); }},
        {"send_message", [](greet::Client& c) { c.send_message("x"); }},
        {"recv", receive([](greet::Client& c) { (void)c.recv(100); })},
        {"recv_text", receive([](greet::Client& c) { (void)c.recv_text(100); })},
        {"recv_exact", receive([](greet::Client& c) { (void)c.recv_exact(10); })},
        {"recv_exact_into", receive([](greet::Client& c) {
             char into[10];
             c.recv_exact_into(into, sizeof into);
         })},
        {"recv_line", receive([](greet::Client& c) { (void)c.recv_line(); })},
        {"recv_line(std::string&)", receive([](greet::Client& c) {
             std::string line;
             c.recv_line(line);
         })},
        {"recv_line_view", receive([](greet::Client& c) { (void)c.recv_line_view(); })},
        {"recv_message", receive([](greet::Client& c) { (void)c.recv_message(); })},
        {"recv_into", receive([](greet::Client& c) {
             char into[100];
             (void)c.recv_into(into, sizeof into);
         })},
        {"set_timeout(0 ms)", [](greet::Client& c) { c.set_timeout(0ms); }},
        {"set_timeout(5 ms)", [](greet::Client& c) { c.set_timeout(5ms); }},
        {"set_timeout(nullopt)", [](greet::Client& c) { c.set_timeout(std::nullopt); }},
        {"set_timeout(milliseconds::max())", [](greet::Client& c) { c.set_timeout(ms::max()); }},
        {"timeout", [](greet::Client& c) { (void)c.timeout(); }},
        {"set_chaos(seed)", [](greet::Client& c) { c.set_chaos(42); }},
        {"set_chaos(nullopt)", [](greet::Client& c) { c.set_chaos(std::nullopt); }},
        {"shutdown_send", [](greet::Client& c) { c.shutdown_send(); }},
        {"local_address", [](greet::Client& c) { (void)c.local_address(); }},
        {"peer_address", [](greet::Client& c) { (void)c.peer_address(); }},
        {"close", [](greet::Client& c) { c.close(); }},
        {"is_open", [](greet::Client& c) { (void)c.is_open(); }},
        {"native_handle", [](greet::Client& c) { (void)c.native_handle(); }},
    };
}

} // namespace

TEST_CASE("every Server member works or throws greet::Error in every state", "[states][server]") {
    const ServerState states[] = {ServerState::fresh,   ServerState::bound,  ServerState::listening,
                                  ServerState::serving, ServerState::stopped, ServerState::served,
                                  ServerState::closed,  ServerState::moved_from};
    int calls_made = 0;
    for (ServerState state : states) {
        for (const ServerCall& member : server_calls()) {
            // Server is one-thread-at-a-time except stop(): while serve() runs elsewhere,
            // only the const members and stop() may be called.
            if (state == ServerState::serving && !member.while_serving) continue;
            if (std::string(member.name) == "serve" && !serve_returns_promptly(state)) continue;
            const std::string call = std::string(member.name) + " on a Server in state \"" + name(state) + "\"";
            INFO(call);
            auto s = make_server(state);
            works_or_throws_error(call, [&] { member.call(s->server); });
            ++calls_made;
            // Whatever the call did, the object is still usable: the observers and close.
            if (state == ServerState::serving) continue; // the destructor stops serve first
            works_or_throws_error(call + ", then is_open", [&] { (void)s->server.is_open(); });
            works_or_throws_error(call + ", then stopped", [&] { (void)s->server.stopped(); });
            works_or_throws_error(call + ", then timeout", [&] { (void)s->server.timeout(); });
            works_or_throws_error(call + ", then local_address", [&] { (void)s->server.local_address(); });
            works_or_throws_error(call + ", then stop", [&] { s->server.stop(); });
            works_or_throws_error(call + ", then close", [&] { s->server.close(); });
        }
    }
    CHECK(calls_made == 8 * 14 - 9 - 1); // serving skips 9 members (serve among them); listening skips serve
}

TEST_CASE("every Client member works or throws greet::Error in every state", "[states][client]") {
    const std::uint16_t refused_port = closed_port();
    const ClientState states[] = {ClientState::fresh, ClientState::connected, ClientState::peer_closed,
                                  ClientState::shut_down, ClientState::closed, ClientState::moved_from};
    int calls_made = 0;
    for (ClientState state : states) {
        for (const ClientCall& member : client_calls(refused_port)) {
            const std::string call = std::string(member.name) + " on a Client in state \"" + name(state) + "\"";
            INFO(call);
            ClientInState s = make_client(state);
            works_or_throws_error(call, [&] { member.call(s.client); });
            ++calls_made;
            works_or_throws_error(call + ", then is_open", [&] { (void)s.client.is_open(); });
            works_or_throws_error(call + ", then native_handle", [&] { (void)s.client.native_handle(); });
            works_or_throws_error(call + ", then timeout", [&] { (void)s.client.timeout(); });
            works_or_throws_error(call + ", then local_address", [&] { (void)s.client.local_address(); });
            works_or_throws_error(call + ", then peer_address", [&] { (void)s.client.peer_address(); });
            works_or_throws_error(call + ", then close", [&] { s.client.close(); });
        }
    }
    CHECK(calls_made == 6 * 26);
}

// ---------------------------------------------------------------------------
// A handler may move its Client out of serve() to keep it beyond the handler. Nothing in
// that Client may point into serve()'s stack frame, which is gone once serve returns.

#if defined(_MSC_VER)
#define GREET_TEST_NOINLINE __declspec(noinline)
#else
#define GREET_TEST_NOINLINE __attribute__((noinline))
#endif

namespace {

// serve() one stack area deeper than its caller, so that the caller's later, shallow
// calls (close, recv) do not land where serve's locals were, and only scribble() does.
GREET_TEST_NOINLINE void serve_deeper(greet::Server& server, const greet::Server::Handler& handler) {
    volatile char padding[16 * 1024];
    padding[0] = 0;
    padding[sizeof padding - 1] = padding[0];
    server.serve(handler);
}

// Overwrites the 64 KiB of stack below its caller with 0xFF bytes, as any deep call
// would overwrite a returned function's frame.
GREET_TEST_NOINLINE void scribble() {
    volatile char area[64 * 1024];
    for (volatile char& byte : area) byte = static_cast<char>(0xFF);
    (void)area[sizeof area / 2];
}

} // namespace

TEST_CASE("a Client moved out of its handler still reads the peer's close after serve() returns", "[states][serve]") {
    greet::Server server("127.0.0.1", 0);
    // The OS completes the handshake into the backlog: serve's first accept takes it.
    greet::Client peer;
    peer.set_timeout(guard);
    peer.connect("127.0.0.1", server.local_address().port);

    std::optional<greet::Client> kept; // written by the handler; serve joins it before returning
    std::promise<void> returned;
    auto watchdog = test::start([&server, done = returned.get_future()] {
        if (done.wait_for(guard) != std::future_status::ready) server.stop(); // a handler that never ran
    });
    serve_deeper(server, [&](greet::Client& client, const greet::Address&) {
        kept.emplace(std::move(client));
        server.stop();
    });
    returned.set_value();
    watchdog.get();
    REQUIRE(kept);
    REQUIRE(kept->is_open());

    scribble();
    kept->set_timeout(guard);
    peer.close();
    std::optional<std::string> got;
    const auto error = test::thrown([&] { got = kept->recv(100); });
    INFO((error ? error->what() : "no error"));
    CHECK(!error);
    CHECK(got == std::string());
}
