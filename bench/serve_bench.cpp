// The serve workload: many concurrent clients against serve() and a single-thread epoll
// echo server written by hand (the baseline), each server in a process of its own so that
// its CPU time and memory are its own. Linux only (epoll).
//
//     serve_bench run <serve|messages|epoll> <clients> <round_trips> <waves>
//     serve_bench idle <serve|messages|epoll> <clients>
//
// run: <clients> connections at once, each doing <round_trips> round trips of a 64-byte
// send_message-framed message (every reply's bytes checked), then closing; <waves> times
// over in one server process. Prints one line:
//     cpu_us_per_round_trip <x> failures <n> listen_overflows <n> seconds <x>
// The CPU is the server process's (getrusage of every thread) from before the first
// connect to after the server has seen the last close; listen_overflows is the change in
// the kernel's TcpExt ListenOverflows counter (/proc/net/netstat) over the run.
// idle: <clients> connections, one round trip each, then silence; prints
//     bytes_per_idle_connection <x> failures <n> clients <n>
// from the server's resident memory before and after. Both raise RLIMIT_NOFILE to the hard
// limit and say so when it cannot hold the clients ("limit <n>" in place of the line).
#include "greet_socket.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t payload_size = 64;
constexpr std::size_t frame_size = 4 + payload_size;
constexpr int per_source = 20000; // client connections per 127.0.0.x source address (ports)

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "serve_bench: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

// Raises the descriptor limit to the hard limit; returns the limit now in force.
long raise_descriptor_limit() {
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ::getrlimit(RLIMIT_NOFILE, &limit);
    return static_cast<long>(limit.rlim_cur);
}

std::atomic<long> live{0}; // the server's open connections

// --- The servers. Each prints "port <n>", then answers "stats" on stdin with
// "<cpu microseconds> <rss kB> <live connections>" until stdin closes.

long rss_kb() {
    std::ifstream statm("/proc/self/statm");
    long pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}
long cpu_us() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000L + usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
}
// serve_messages has no hook per connection: count the process's connected TCP sockets.
bool count_sockets = false;
long connected_sockets() {
    long count = 0;
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) die("opendir /proc/self/fd");
    while (const dirent* entry = ::readdir(dir)) {
        const int fd = std::atoi(entry->d_name);
        int type = 0, listening = 0;
        socklen_t length = sizeof type;
        if (entry->d_name[0] == '.' || ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0) continue;
        length = sizeof listening;
        ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length);
        count += type == SOCK_STREAM && !listening;
    }
    ::closedir(dir);
    return count;
}
long thread_cpu_us() {
    rusage usage{};
    ::getrusage(RUSAGE_THREAD, &usage);
    return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000L + usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
}
// The server's CPU excludes this thread's: counting sockets is the benchmark's cost, not the server's.
void answer_stats(greet::Server* server) {
    char line[64];
    while (std::fgets(line, sizeof line, stdin) != nullptr) {
        const long connections = count_sockets ? connected_sockets() : live.load();
        std::printf("%ld %ld %ld\n", cpu_us() - thread_cpu_us(), rss_kb(), connections);
        std::fflush(stdout);
    }
    if (server != nullptr) server->stop();
    else std::_Exit(0);
}

void serve_threads(greet::Server& server) {
    greet::ServeOptions options;
    options.max_clients = 60000;
    options.stack_size = 256 * 1024;
    options.on_error = [](const greet::Address&, const std::exception& e) { std::fprintf(stderr, "server: %s\n", e.what()); };
    server.serve([](greet::Client& client, const greet::Address&) {
        ++live;
        struct Leave {
            ~Leave() { --live; }
        } leave;
        std::string message;
        for (;;) client.send_message(message = client.recv_message()); // ends in ClosedError
    }, options);
}

void serve_requests(greet::Server& server) {
    greet::ServeOptions options;
    options.on_error = [](const greet::Address&, const std::exception& e) { std::fprintf(stderr, "server: %s\n", e.what()); };
    server.serve_messages([](std::string_view request, const greet::Address&) { return std::string(request); }, options);
}

// The baseline: one thread, epoll, non-blocking sockets, a buffer per connection.
struct EpollConnection {
    int fd = -1;
    std::string in, out;
    bool writing = false; // EPOLLOUT wanted: output is waiting
};
void epoll_flush(int ep, EpollConnection& c) {
    while (!c.out.empty()) {
        const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (n <= 0) break;
        c.out.erase(0, static_cast<std::size_t>(n));
    }
    if (c.writing == !c.out.empty()) return; // epoll_ctl only when the interest changes
    c.writing = !c.out.empty();
    epoll_event event{};
    event.events = EPOLLIN | (c.out.empty() ? 0u : static_cast<unsigned>(EPOLLOUT));
    event.data.ptr = &c;
    ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &event);
}
// Echoes every whole frame; false once the peer has closed.
bool epoll_read(EpollConnection& c) {
    char buffer[16384];
    for (;;) {
        const ssize_t n = ::recv(c.fd, buffer, sizeof buffer, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return false;
        if (n < 0) break;
        c.in.append(buffer, static_cast<std::size_t>(n));
    }
    std::size_t at = 0;
    while (c.in.size() - at >= 4) {
        const auto* h = reinterpret_cast<const unsigned char*>(c.in.data() + at);
        const std::size_t length = std::size_t{h[0]} << 24 | std::size_t{h[1]} << 16 | std::size_t{h[2]} << 8 | h[3];
        if (c.in.size() - at < 4 + length) break;
        c.out.append(c.in, at, 4 + length);
        at += 4 + length;
    }
    c.in.erase(0, at);
    return true;
}
void serve_epoll(int listener) {
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.ptr = nullptr;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, listener, &event);
    std::vector<epoll_event> ready(1024);
    for (;;) {
        const int n = ::epoll_wait(ep, ready.data(), static_cast<int>(ready.size()), -1);
        for (int i = 0; i < n; ++i) {
            auto* c = static_cast<EpollConnection*>(ready[static_cast<std::size_t>(i)].data.ptr);
            if (c == nullptr) {
                for (int fd; (fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
                    auto* fresh = new EpollConnection{fd, {}, {}, false};
                    epoll_event add{};
                    add.events = EPOLLIN;
                    add.data.ptr = fresh;
                    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &add);
                    ++live;
                }
                continue;
            }
            if (!epoll_read(*c)) {
                ::close(c->fd);
                delete c;
                --live;
                continue;
            }
            epoll_flush(ep, *c);
        }
    }
}

int run_server(const std::string& mode) {
    raise_descriptor_limit();
    greet::Server server("127.0.0.1", 0, 65535); // the kernel caps the backlog at somaxconn
    std::printf("port %u\n", static_cast<unsigned>(server.local_address().port));
    std::fflush(stdout);
    if (mode == "epoll") {
        const int listener = server.native_handles().front();
        ::fcntl(listener, F_SETFL, ::fcntl(listener, F_GETFL) | O_NONBLOCK);
        std::thread(answer_stats, nullptr).detach();
        serve_epoll(listener);
    }
    std::thread control(answer_stats, &server);
    if (mode == "serve") serve_threads(server);
    else if (mode == "messages") count_sockets = true, serve_requests(server);
    else die("unknown server");
    control.join();
    return 0;
}

// --- The parent: starts the server, runs the clients, reads the server's figures.

struct ServerProcess {
    pid_t pid = -1;
    FILE* to = nullptr;
    FILE* from = nullptr;
    std::uint16_t port = 0;

    ServerProcess(const char* self, const std::string& mode) {
        int down[2], up[2];
        if (::pipe(down) != 0 || ::pipe(up) != 0) die("pipe");
        pid = ::fork();
        if (pid < 0) die("fork");
        if (pid == 0) {
            ::dup2(down[0], 0);
            ::dup2(up[1], 1);
            ::close(down[1]);
            ::close(up[0]);
            ::execl("/proc/self/exe", self, "server", mode.c_str(), static_cast<char*>(nullptr));
            die("exec");
        }
        ::close(down[0]);
        ::close(up[1]);
        to = ::fdopen(down[1], "w");
        from = ::fdopen(up[0], "r");
        unsigned p = 0;
        if (std::fscanf(from, "port %u", &p) != 1) die("the server did not start");
        port = static_cast<std::uint16_t>(p);
    }
    ~ServerProcess() {
        std::fclose(to); // the server stops when its stdin closes
        int status = 0;
        ::waitpid(pid, &status, 0);
        std::fclose(from);
    }
    struct Stats {
        long cpu_us, rss_kb, live;
    };
    Stats stats() {
        std::fputs("stats\n", to);
        std::fflush(to);
        Stats s{};
        if (std::fscanf(from, "%ld %ld %ld", &s.cpu_us, &s.rss_kb, &s.live) != 3) die("no figures from the server");
        return s;
    }
    // Waits (bounded) until the server holds `count` connections.
    Stats settle(long count) {
        const auto until = Clock::now() + std::chrono::seconds(60);
        Stats s = stats();
        while (s.live != count && Clock::now() < until) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            s = stats();
        }
        return s;
    }
};

long listen_overflows() {
    std::ifstream netstat("/proc/net/netstat");
    std::string names, values;
    while (std::getline(netstat, names) && std::getline(netstat, values)) {
        if (names.rfind("TcpExt:", 0) != 0) continue;
        std::istringstream n(names), v(values);
        std::string name, value;
        while (n >> name && v >> value)
            if (name == "ListenOverflows") return std::stol(value);
    }
    return -1;
}

// The clients: one thread, epoll, non-blocking sockets, each with its own bytes to check.
struct Connection {
    int fd = -1;
    int id = 0;
    int done = 0;       // round trips finished
    std::size_t got = 0; // bytes of the current reply
    char reply[frame_size];
    bool connected = false, failed = false;
};
void frame(const Connection& c, char* out) {
    out[0] = out[1] = out[2] = 0;
    out[3] = static_cast<char>(payload_size);
    for (std::size_t i = 0; i < payload_size; ++i) out[4 + i] = static_cast<char>((c.id * 131 + c.done * 7 + static_cast<int>(i)) & 0xFF);
}

class Load {
public:
    Load(std::uint16_t port, int clients) : port_(port), connections_(static_cast<std::size_t>(clients)) {
        ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    }
    ~Load() {
        close_all();
        ::close(ep_);
    }
    void connect_all() {
        for (std::size_t i = 0; i < connections_.size(); ++i) open(connections_[i], static_cast<int>(i));
        pending_ = 0;
        for (Connection& c : connections_) pending_ += c.failed ? 0 : 1;
        loop(false);
    }
    // Every connection does `round_trips` more round trips, all at once.
    void round_trips(int count) {
        target_ += count;
        pending_ = 0;
        for (Connection& c : connections_)
            if (!c.failed && c.done < target_) ++pending_, send_next(c);
        loop(true);
    }
    void close_all() {
        for (Connection& c : connections_)
            if (c.fd >= 0) ::close(c.fd), c.fd = -1;
    }
    int failures() const {
        int n = 0;
        for (const Connection& c : connections_) n += c.failed ? 1 : 0;
        return n;
    }

private:
    void open(Connection& c, int id) {
        c = Connection{};
        c.id = id;
        c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c.fd < 0) return (void)(c.failed = true);
        sockaddr_in source{};
        source.sin_family = AF_INET;
        source.sin_addr.s_addr = htonl(0x7F000001u + static_cast<unsigned>(id / per_source));
        const int on = 1;
        ::setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on); // the port is chosen at connect, per destination
        ::bind(c.fd, reinterpret_cast<sockaddr*>(&source), sizeof source);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(port_);
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(c.fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 && errno != EINPROGRESS) return (void)(c.failed = true);
        epoll_event event{};
        event.events = EPOLLOUT;
        event.data.ptr = &c;
        ::epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &event);
    }
    void send_next(Connection& c) {
        char out[frame_size];
        frame(c, out);
        c.got = 0;
        if (::send(c.fd, out, frame_size, MSG_NOSIGNAL) != static_cast<ssize_t>(frame_size)) fail(c); // 68 bytes fit any socket buffer
    }
    void fail(Connection& c) {
        if (c.failed) return;
        c.failed = true;
        --pending_;
        ::epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
    }
    void on_connected(Connection& c) {
        int error = 0;
        socklen_t length = sizeof error;
        ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &length);
        if (error != 0) return fail(c);
        c.connected = true;
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.ptr = &c;
        ::epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &event);
        --pending_;
    }
    void on_readable(Connection& c) {
        const ssize_t n = ::recv(c.fd, c.reply + c.got, frame_size - c.got, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) return fail(c);
        c.got += static_cast<std::size_t>(n);
        if (c.got < frame_size) return;
        char expected[frame_size];
        frame(c, expected);
        if (std::memcmp(expected, c.reply, frame_size) != 0) return fail(c);
        if (++c.done < target_) return send_next(c);
        --pending_;
    }
    void loop(bool exchanging) {
        std::vector<epoll_event> ready(1024);
        auto last_progress = Clock::now();
        while (pending_ > 0) {
            const int n = ::epoll_wait(ep_, ready.data(), static_cast<int>(ready.size()), 1000);
            if (n > 0) last_progress = Clock::now();
            else if (Clock::now() - last_progress > std::chrono::seconds(30)) break; // what is left has failed
            for (int i = 0; i < n; ++i) {
                auto& c = *static_cast<Connection*>(ready[static_cast<std::size_t>(i)].data.ptr);
                if (c.failed) continue;
                if (!c.connected) on_connected(c);
                else if (exchanging) on_readable(c);
            }
        }
        for (Connection& c : connections_)
            if (!c.failed && (exchanging ? c.done < target_ : !c.connected)) c.failed = true;
    }

    std::uint16_t port_;
    std::vector<Connection> connections_;
    int ep_ = -1;
    int target_ = 0;
    long pending_ = 0;
};

bool fits(long clients) {
    const long limit = raise_descriptor_limit();
    if (clients + 64 <= limit) return true;
    std::printf("limit %ld\n", limit);
    return false;
}

int run(const char* self, const std::string& mode, int clients, int round_trips, int waves) {
    if (!fits(clients)) return 0;
    ServerProcess server(self, mode);
    const long overflows = listen_overflows();
    const auto start = Clock::now();
    const long cpu = server.stats().cpu_us;
    int failures = 0;
    for (int wave = 0; wave < waves; ++wave) {
        Load load(server.port, clients);
        load.connect_all();
        load.round_trips(round_trips);
        failures += load.failures();
        load.close_all();
        server.settle(0);
    }
    const long used = server.stats().cpu_us - cpu;
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("cpu_us_per_round_trip %.3f failures %d listen_overflows %ld seconds %.2f\n",
                static_cast<double>(used) / (double(clients) * round_trips * waves), failures, listen_overflows() - overflows, seconds);
    return 0;
}

int idle(const char* self, const std::string& mode, int clients) {
    if (!fits(clients)) return 0;
    ServerProcess server(self, mode);
    {
        Load warm(server.port, 64); // the server's first allocations and threads are not the connections'
        warm.connect_all();
        warm.round_trips(1);
    }
    server.settle(0);
    const long before = server.stats().rss_kb;
    Load load(server.port, clients);
    load.connect_all();
    load.round_trips(1);
    const long after = server.settle(clients).rss_kb;
    std::printf("bytes_per_idle_connection %.0f failures %d clients %d\n", double(after - before) * 1024 / clients, load.failures(), clients);
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    ::signal(SIGPIPE, SIG_IGN);
    const std::string command = argc > 1 ? argv[1] : "";
    if (command == "server" && argc == 3) return run_server(argv[2]);
    if (command == "run" && argc == 6) return run(argv[0], argv[2], std::atoi(argv[3]), std::atoi(argv[4]), std::atoi(argv[5]));
    if (command == "idle" && argc == 4) return idle(argv[0], argv[2], std::atoi(argv[3]));
    std::fprintf(stderr, "usage: serve_bench run <serve|messages|epoll> <clients> <round_trips> <waves>\n"
                         "       serve_bench idle <serve|messages|epoll> <clients>\n");
    return 2;
}
