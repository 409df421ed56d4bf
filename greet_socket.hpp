// greet_socket.hpp - blocking TCP, UDP and Unix-domain sockets for C++17 in one header, no dependencies.
//
// A server and a client in a few lines, with the sharp edges of BSD sockets and
// Winsock filed off: every byte sent, none lost, text that stays UTF-8, timeouts,
// and errors that say what failed, where, and what to try.
//
//     #include "greet_socket.hpp"
//
//     greet::Server server("localhost", 9999);            // bind + listen
//     auto [client, addr] = server.accept();
//     std::string name = client.recv_text(1024);          // whole UTF-8 characters only
//     client.send("hello " + name);                       // sends every byte
//
//     greet::Client client("localhost", 9999);            // connect
//     client.send(u"Zoë");                                // encoded to UTF-8 first
//     std::string reply = client.recv(1024);              // "" once the server closed
//
// Build:  drop-in:  g++ -std=c++17 main.cpp            (Linux, macOS)
//                   x86_64-w64-mingw32-g++-posix -std=c++17 -static main.cpp -lws2_32
//                   (MinGW: -posix has std::thread, -static needs no DLLs; MSVC links ws2_32 itself)
//         CMake:    find_package(greet_socket CONFIG) or add_subdirectory, then link
//                   greet_socket::greet_socket
//         meson:    dependency('greet_socket')   vcpkg: greet-socket
// Errors: every failure throws greet::Error (a std::system_error) whose what() reads
//         "<operation> <host:port>: <OS name> (<OS text>): <hint>"; each such call has a
//         noexcept twin taking std::error_code& last, which -fno-exceptions builds keep
//         (greet::last_error_message() gives the text). greet::Canceller ends blocked calls.
// Serve:  Server::serve(handler) gives each client a pooled thread; serve_messages and
//         serve_lines answer requests on a few threads, idle connections costing none.
// Local:  Server::bind_unix(path) and Client::connect_unix(path): Unix-domain sockets,
//         with everything else unchanged. UDP: greet::UdpSocket (bind, send_to, recv_from).
// TLS:    opt-in: #define GREET_SOCKET_OPENSSL before the include and link OpenSSL 3
//         (-lssl -lcrypto); then Client::start_tls / accept_tls encrypt a connection, and
//         the default build names no OpenSSL symbol.
// License: MIT (see the end of this file). Version history: CHANGELOG.md (1.1.0: error codes,
//          Canceller, Happy Eyeballs, socket options, UDP, Unix-domain sockets, TLS,
//          serve_messages).

#ifndef GREET_SOCKET_HPP
#define GREET_SOCKET_HPP

// C++17 or later, or one clear error instead of hundreds (MSVC keeps __cplusplus at 199711L
// unless /Zc:__cplusplus is given; its _MSVC_LANG says the /std: in use).
#if defined(_MSVC_LANG) ? _MSVC_LANG < 201703L : __cplusplus < 201703L
#error "greet_socket.hpp needs C++17 or later: compile with -std=c++17 (MSVC: /std:c++17)"
#if !defined(_MSC_VER) // GCC and Clang go on after #error; a missing header stops them here
#include <greet_socket_stops_here_as_it_needs_cplusplus_17>
#endif
#endif

#define GREET_SOCKET_VERSION_MAJOR 1
#define GREET_SOCKET_VERSION_MINOR 1
#define GREET_SOCKET_VERSION_PATCH 0
#define GREET_SOCKET_VERSION "1.1.0"

// 1 when the throwing forms exist (exceptions on), 0 under -fno-exceptions: then only the
// std::error_code forms are declared; the throwing ones are deleted, so a call fails to compile.
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define GREET_SOCKET_EXCEPTIONS 1
#define GREET_SOCKET_THROWS
#else
#define GREET_SOCKET_EXCEPTIONS 0
#define GREET_SOCKET_THROWS = delete
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <condition_variable>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

// ---------------------------------------------------------------------------
// The one platform block: everything that differs between Winsock and POSIX.
#ifdef _WIN32
// MinGW's win32 thread model (the plain x86_64-w64-mingw32-g++ once Debian's g++-mingw-w64 is
// installed) has a libstdc++ without std::mutex and std::thread: say so before the errors that follow.
#if defined(__GLIBCXX__) && !defined(_GLIBCXX_HAS_GTHREADS)
#error "greet_socket.hpp needs std::thread, which MinGW's win32 thread model lacks: use x86_64-w64-mingw32-g++-posix"
#endif
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0600 // WSAPoll and inet_ntop need Vista or later
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#define GREET_SOCKET_UNDEF_LEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#define GREET_SOCKET_UNDEF_NOMINMAX
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mstcpip.h>
#if __has_include(<afunix.h>)
#include <afunix.h>
#else
struct sockaddr_un { // afunix.h's, which older MinGW lacks (Windows 10 1803 and later)
    ADDRESS_FAMILY sun_family;
    char sun_path[108];
};
#endif
#ifdef GREET_SOCKET_UNDEF_LEAN
#undef WIN32_LEAN_AND_MEAN
#undef GREET_SOCKET_UNDEF_LEAN
#endif
#ifdef GREET_SOCKET_UNDEF_NOMINMAX
#undef NOMINMAX
#undef GREET_SOCKET_UNDEF_NOMINMAX
#endif
#ifdef _MSC_VER
#pragma comment(lib, "ws2_32")
#endif

namespace greet {
using native_handle_type = SOCKET;
namespace detail {
constexpr SOCKET no_socket = INVALID_SOCKET;
constexpr int send_flags = 0;
constexpr int shut_send = SD_SEND;
constexpr int shut_both = SD_BOTH;
using io_size = int; // Winsock counts bytes in int
inline int close_native(SOCKET s) noexcept { return ::closesocket(s); }
// Ends a recv or send blocked in another thread: on Windows shutdown() alone does not.
inline void interrupt_native(SOCKET s) noexcept {
    ::shutdown(s, SD_BOTH);
    ::CancelIoEx(reinterpret_cast<HANDLE>(s), nullptr);
}
// shutdown() does not wake an accept() blocked in another thread: accept() polls instead.
inline SOCKET listener_waker(SOCKET) noexcept { return INVALID_SOCKET; }
inline int last_error() noexcept { return ::WSAGetLastError(); }
inline void set_last_error(int e) noexcept { ::WSASetLastError(e); }
inline bool interrupted(int e) noexcept { return e == WSAEINTR; }
inline bool would_block(int e) noexcept { return e == WSAEWOULDBLOCK; }
inline bool in_progress(int e) noexcept { return e == WSAEWOULDBLOCK || e == WSAEINPROGRESS; }
inline int poll_native(WSAPOLLFD* fds, std::size_t n, int ms) noexcept {
    return ::WSAPoll(fds, static_cast<ULONG>(n), ms);
}
using pollfd_type = WSAPOLLFD;
inline void set_blocking(SOCKET s, bool on) noexcept {
    u_long nonblocking = on ? 0 : 1;
    // FIONBIO has bit 31 set: an unsigned constant for a long parameter (-Wsign-conversion).
    ::ioctlsocket(s, static_cast<long>(FIONBIO), &nonblocking);
}
// Winsock must be started once per process; a function-local static does it
// thread-safely on first use and stops it at exit.
struct WinsockSession {
    WinsockSession() noexcept {
        WSADATA data;
        ::WSAStartup(MAKEWORD(2, 2), &data);
    }
    ~WinsockSession() { ::WSACleanup(); }
};
inline void start_networking() noexcept { static WinsockSession session; }
inline SOCKET open_native(int family, int type = SOCK_STREAM) noexcept {
    start_networking();
    return ::WSASocketW(family, type, 0, nullptr, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
}
// Two buffers in one system call: a message's header and payload leave in one segment.
inline long send_two(SOCKET s, const char* a, std::size_t a_size, const char* b, std::size_t b_size) noexcept {
    WSABUF buffers[2] = {{static_cast<ULONG>(a_size), const_cast<char*>(a)},
                         {static_cast<ULONG>(b_size), const_cast<char*>(b)}};
    DWORD sent = 0;
    if (::WSASend(s, buffers, b_size ? 2 : 1, &sent, 0, nullptr, nullptr) != 0) return -1;
    return static_cast<long>(sent);
}
// SO_EXCLUSIVEADDRUSE: without it Windows lets a second server bind the same port.
inline int prepare_listener(SOCKET s) noexcept {
    BOOL on = TRUE;
    return ::setsockopt(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, reinterpret_cast<const char*>(&on), sizeof on);
}
inline SOCKET accept_native(SOCKET listener, sockaddr* addr, socklen_t* len) noexcept {
    SOCKET s = ::accept(listener, addr, len);
    if (s != INVALID_SOCKET) {
        ::SetHandleInformation(reinterpret_cast<HANDLE>(s), HANDLE_FLAG_INHERIT, 0);
        set_blocking(s, true); // accepted sockets inherit the listener's non-blocking mode
    }
    return s;
}
// Winsock reports WSA* codes; map the common ones onto std::errc so that callers can
// compare portably (e.code() == std::errc::connection_refused) on every platform.
inline std::error_code os_error(int e) noexcept {
    switch (e) {
    case WSAEADDRINUSE: return std::make_error_code(std::errc::address_in_use);
    case WSAEADDRNOTAVAIL: return std::make_error_code(std::errc::address_not_available);
    case WSAEACCES: return std::make_error_code(std::errc::permission_denied);
    case WSAECONNREFUSED: return std::make_error_code(std::errc::connection_refused);
    case WSAECONNRESET: return std::make_error_code(std::errc::connection_reset);
    case WSAECONNABORTED: return std::make_error_code(std::errc::connection_aborted);
    case WSAETIMEDOUT: return std::make_error_code(std::errc::timed_out);
    case WSAENETUNREACH: return std::make_error_code(std::errc::network_unreachable);
    case WSAEHOSTUNREACH: return std::make_error_code(std::errc::host_unreachable);
    case WSAEAFNOSUPPORT: return std::make_error_code(std::errc::address_family_not_supported);
    case WSAEMFILE: return std::make_error_code(std::errc::too_many_files_open);
    case WSAENOBUFS: return std::make_error_code(std::errc::no_buffer_space);
    case WSAENOTCONN: return std::make_error_code(std::errc::not_connected);
    case WSAESHUTDOWN: return std::make_error_code(std::errc::broken_pipe);
    case WSAEINVAL: return std::make_error_code(std::errc::invalid_argument);
    case WSAEISCONN: return std::make_error_code(std::errc::already_connected);
    default: return {e, std::system_category()};
    }
}
// getaddrinfo's EAI_* codes are WSA codes on Windows.
inline std::error_code resolver_error(int rc) noexcept { return os_error(rc); }
// The resolver's name for its code, shown in messages as the OS's names are; nullptr for others.
inline const char* resolver_error_name(std::error_code code) noexcept {
    if (code.category() != std::system_category()) return nullptr;
    switch (code.value()) {
    case WSAHOST_NOT_FOUND: return "WSAHOST_NOT_FOUND";
    case WSATRY_AGAIN: return "WSATRY_AGAIN";
    case WSANO_RECOVERY: return "WSANO_RECOVERY";
    case WSANO_DATA: return "WSANO_DATA";
    default: return nullptr;
    }
}
// Unix-domain socket files: 0 none, 1 a socket (a reparse point), 2 anything else.
inline int file_kind(const char* path) noexcept {
    const DWORD attributes = ::GetFileAttributesA(path);
    if (attributes == INVALID_FILE_ATTRIBUTES) return 0;
    return attributes & FILE_ATTRIBUTE_REPARSE_POINT ? 1 : 2;
}
inline std::uint64_t file_identity(const char*) noexcept { return 0; } // none: the kind alone decides
inline bool remove_file(const char* path) noexcept { return ::DeleteFileA(path) != 0; }
constexpr bool abstract_names = false;
// WSAPoll missed failed connects before Windows 10 2004: connect() also reads each
// attempt's pending error at least this often.
constexpr int connect_check_ms = 100;
constexpr int tcp_no_delay = TCP_NODELAY;
// Windows sets idle and interval (in ms); it fixes the probe count at 10.
inline int keep_alive_native(SOCKET s, bool on, int idle, int interval, int) noexcept {
    tcp_keepalive values{on ? 1u : 0u, static_cast<ULONG>(idle) * 1000u, static_cast<ULONG>(interval) * 1000u};
    DWORD returned = 0;
    if (::WSAIoctl(s, SIO_KEEPALIVE_VALS, &values, sizeof values, nullptr, 0, &returned, nullptr, nullptr) == 0)
        return 0;
    return ::WSAGetLastError();
}
// Scope ids as numbers: if_indextoname and if_nametoindex would need iphlpapi.
inline std::string scope_name(unsigned long index) { return std::to_string(index); }
inline unsigned interface_index(const char* name) noexcept {
    return static_cast<unsigned>(std::strtoul(name, nullptr, 10));
}
// A "port unreachable" answer to an old datagram must not fail a later recvfrom with
// WSAECONNRESET (SIO_UDP_CONNRESET off, as Go does).
inline void prepare_datagram(SOCKET s) noexcept {
    BOOL report = FALSE;
    DWORD returned = 0;
    ::WSAIoctl(s, _WSAIOW(IOC_VENDOR, 12), &report, sizeof report, nullptr, 0, &returned, nullptr, nullptr);
}
// One datagram into [into, into + n): its size, with *cut set when it was longer (Windows
// fills the buffer and says WSAEMSGSIZE, without the real size).
inline long recv_datagram_native(SOCKET s, char* into, std::size_t n, sockaddr_storage* from, bool* cut) noexcept {
    int length = sizeof(sockaddr_storage);
    const int got =
        ::recvfrom(s, into, static_cast<int>(n), 0, reinterpret_cast<sockaddr*>(from), from ? &length : nullptr);
    *cut = got < 0 && ::WSAGetLastError() == WSAEMSGSIZE;
    return *cut ? static_cast<long>(n) : got;
}
inline int peer_ids(SOCKET, std::int64_t*, std::uint32_t*, std::uint32_t*) noexcept { return WSAEOPNOTSUPP; }
// serve()'s handler threads, started natively: std::thread cannot choose a stack size.
// stack_size 0 is the OS's default (1 MiB reserved on Windows).
using thread_handle = HANDLE;
using thread_result = DWORD;
#define GREET_SOCKET_THREAD_CALL WINAPI
inline int start_thread(HANDLE* thread, std::size_t stack_size, LPTHREAD_START_ROUTINE run, void* argument) noexcept {
    *thread =
        ::CreateThread(nullptr, stack_size, run, argument, stack_size ? STACK_SIZE_PARAM_IS_A_RESERVATION : 0, nullptr);
    return *thread ? 0 : static_cast<int>(::GetLastError());
}
inline void join_thread(HANDLE thread) noexcept {
    ::WaitForSingleObject(thread, INFINITE);
    ::CloseHandle(thread);
}
// The console speaks UTF-16; reading and writing it as such keeps "Zoë" intact
// whatever the console's code page. Both return false when not a console.
std::u16string to_utf16(std::string_view utf8_text);
std::string to_utf8(std::u16string_view text);
inline bool read_console(std::string& line) {
    HANDLE in = ::GetStdHandle(STD_INPUT_HANDLE);
    DWORD mode = 0;
    if (!::GetConsoleMode(in, &mode)) return false;
    std::u16string wide;
    wchar_t unit = 0;
    DWORD got = 0;
    while (::ReadConsoleW(in, &unit, 1, &got, nullptr) && got == 1 && unit != L'\n')
        wide.push_back(static_cast<char16_t>(unit));
    line = to_utf8(wide);
    return true;
}
inline bool write_console(std::string_view utf8_text) {
    HANDLE out = ::GetStdHandle(STD_OUTPUT_HANDLE);
    DWORD mode = 0, written = 0;
    if (!::GetConsoleMode(out, &mode)) return false;
    const std::u16string wide = to_utf16(utf8_text);
    ::WriteConsoleW(out, reinterpret_cast<const wchar_t*>(wide.data()), static_cast<DWORD>(wide.size()), &written,
                    nullptr);
    return true;
}
} // namespace detail
} // namespace greet

#else // POSIX

#include <arpa/inet.h>
#include <cerrno>
#include <fcntl.h>
#include <netdb.h>
#include <net/if.h>
#include <netinet/in.h>
#ifndef __linux__
#include <netinet/tcp.h> // on Linux it clashes with <linux/tcp.h>, which a program may want (tcp_info)
#endif
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/epoll.h> // serve_messages and serve_lines; poll() elsewhere
#endif

namespace greet {
using native_handle_type = int;
namespace detail {
constexpr int no_socket = -1;
#ifdef MSG_NOSIGNAL
constexpr int send_flags = MSG_NOSIGNAL; // a closed peer gives EPIPE, never SIGPIPE
#else
constexpr int send_flags = 0; // macOS: SO_NOSIGPIPE is set on the socket instead
#endif
constexpr int shut_send = SHUT_WR;
constexpr int shut_both = SHUT_RDWR;
using io_size = std::size_t;
inline int close_native(int s) noexcept { return ::close(s); } // never retried: the descriptor is gone either way
// Ends a recv or send blocked in another thread.
inline void interrupt_native(int s) noexcept { ::shutdown(s, SHUT_RDWR); }
// Linux wakes an accept() blocked in another thread when its listener is shut down, so
// a lone listener can block in accept() (one system call per client) and stop() shuts
// down a duplicate of it, which stays valid until close(). Elsewhere accept() polls.
#ifdef __linux__
inline int listener_waker(int s) noexcept { return ::fcntl(s, F_DUPFD_CLOEXEC, 0); }
#else
inline int listener_waker(int) noexcept { return -1; }
#endif
inline int last_error() noexcept { return errno; }
inline void set_last_error(int e) noexcept { errno = e; }
inline bool interrupted(int e) noexcept { return e == EINTR; }
inline bool would_block(int e) noexcept { return e == EAGAIN || e == EWOULDBLOCK; }
inline bool in_progress(int e) noexcept { return e == EINPROGRESS || e == EINTR; }
inline int poll_native(pollfd* fds, std::size_t n, int ms) noexcept { return ::poll(fds, static_cast<nfds_t>(n), ms); }
using pollfd_type = pollfd;
inline void set_blocking(int s, bool on) noexcept {
    int flags = ::fcntl(s, F_GETFL, 0);
    ::fcntl(s, F_SETFL, on ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK));
}
// serve()'s handler threads, started natively: std::thread cannot choose a stack size.
// stack_size 0 is the OS's default (8 MiB of address space with glibc, touched only as used).
using thread_handle = pthread_t;
using thread_result = void*;
#define GREET_SOCKET_THREAD_CALL
inline int start_thread(pthread_t* thread, std::size_t stack_size, void* (*run)(void*), void* argument) noexcept {
    pthread_attr_t attributes;
    if (const int e = ::pthread_attr_init(&attributes)) return e;
    // Whole 64 KiB (macOS refuses a size that is not a multiple of the page), at least the minimum.
    const std::size_t size =
        std::max(((stack_size + 0xFFFF) & ~std::size_t{0xFFFF}), static_cast<std::size_t>(PTHREAD_STACK_MIN));
    int e = stack_size ? ::pthread_attr_setstacksize(&attributes, size) : 0;
    if (e == 0) e = ::pthread_create(thread, &attributes, run, argument);
    ::pthread_attr_destroy(&attributes);
    return e;
}
inline void join_thread(pthread_t thread) noexcept { ::pthread_join(thread, nullptr); }
inline void start_networking() noexcept {}
// Close-on-exec and no SIGPIPE are per-socket choices; the process's signal
// dispositions belong to the application and are never touched.
inline int finish_socket(int s) noexcept {
    if (s < 0) return s;
#ifndef SOCK_CLOEXEC
    ::fcntl(s, F_SETFD, FD_CLOEXEC);
#endif
#ifdef SO_NOSIGPIPE
    int on = 1;
    ::setsockopt(s, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof on);
#endif
    return s;
}
inline int open_native(int family, int type = SOCK_STREAM) noexcept {
#ifdef SOCK_CLOEXEC
    return finish_socket(::socket(family, type | SOCK_CLOEXEC, 0));
#else
    return finish_socket(::socket(family, type, 0));
#endif
}
// Two buffers in one system call: a message's header and payload leave in one segment.
// sendmsg rather than writev, because only sendmsg takes MSG_NOSIGNAL.
inline long send_two(int s, const char* a, std::size_t a_size, const char* b, std::size_t b_size) noexcept {
    iovec buffers[2] = {{const_cast<char*>(a), a_size}, {const_cast<char*>(b), b_size}};
    msghdr message{};
    message.msg_iov = buffers;
    message.msg_iovlen = b_size ? 2 : 1;
    return static_cast<long>(::sendmsg(s, &message, send_flags));
}
// SO_REUSEADDR lets a restarted server bind while old connections sit in TIME_WAIT;
// SO_REUSEPORT is never set, so a second server on a busy port fails loudly.
inline int prepare_listener(int s) noexcept {
    int on = 1;
    return ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
}
inline int accept_native(int listener, sockaddr* addr, socklen_t* len) noexcept {
#if defined(__linux__) && defined(SOCK_CLOEXEC)
    return ::accept4(listener, addr, len, SOCK_CLOEXEC); // blocking, whatever the listener is
#else
    int s = finish_socket(::accept(listener, addr, len));
    if (s >= 0) set_blocking(s, true); // BSDs hand down the listener's O_NONBLOCK
    return s;
#endif
}
inline std::error_code os_error(int e) noexcept { return {e, std::system_category()}; }
struct ResolverCategory : std::error_category {
    const char* name() const noexcept override { return "resolver"; }
    std::string message(int rc) const override { return ::gai_strerror(rc); }
};
inline const std::error_category& resolver_category() noexcept {
    static const ResolverCategory category;
    return category;
}
inline std::error_code resolver_error(int rc) noexcept {
    if (rc == EAI_SYSTEM) return os_error(errno);
    return {rc, resolver_category()};
}
// The resolver's name for its code, shown in messages as the OS's names are; nullptr for others.
// A table, not a switch: some systems give two of these names one value.
inline const char* resolver_error_name(std::error_code code) noexcept {
    static const struct {
        int rc;
        const char* name;
    } names[] = {
        {EAI_NONAME, "EAI_NONAME"}, {EAI_AGAIN, "EAI_AGAIN"},     {EAI_FAIL, "EAI_FAIL"},
        {EAI_FAMILY, "EAI_FAMILY"}, {EAI_SERVICE, "EAI_SERVICE"}, {EAI_MEMORY, "EAI_MEMORY"},
    };
    if (code.category() != resolver_category()) return nullptr;
    for (const auto& entry : names)
        if (code.value() == entry.rc) return entry.name;
    return nullptr;
}
// Unix-domain socket files: 0 none, 1 a socket, 2 anything else (never removed).
inline int file_kind(const char* path) noexcept {
    struct stat info {};
    if (::lstat(path, &info) != 0) return 0;
    return S_ISSOCK(info.st_mode) ? 1 : 2;
}
// Which file is at path now (0: none), so that a Server removes only the file it made.
inline std::uint64_t file_identity(const char* path) noexcept {
    struct stat info {};
    if (::lstat(path, &info) != 0) return 0;
    return static_cast<std::uint64_t>(info.st_ino) * 31 + static_cast<std::uint64_t>(info.st_dev) + 1;
}
inline bool remove_file(const char* path) noexcept { return ::unlink(path) == 0; }
#ifdef __linux__
constexpr bool abstract_names = true; // a name that starts with a NUL byte and has no file
inline int peer_ids(int s, std::int64_t* pid, std::uint32_t* uid, std::uint32_t* gid) noexcept {
    ucred credentials{};
    socklen_t length = sizeof credentials;
    if (::getsockopt(s, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return errno;
    *pid = credentials.pid, *uid = credentials.uid, *gid = credentials.gid;
    return 0;
}
#else
constexpr bool abstract_names = false;
inline int peer_ids(int, std::int64_t*, std::uint32_t*, std::uint32_t*) noexcept { return ENOTSUP; }
#endif
constexpr int connect_check_ms = -1; // poll() reports a failed connect
#ifdef __linux__
// The kernel's option numbers (a stable ABI), as <netinet/tcp.h> is not included.
constexpr int tcp_no_delay = 1, tcp_keep_idle = 4, tcp_keep_interval = 5, tcp_keep_count = 6;
#else
constexpr int tcp_no_delay = TCP_NODELAY;
#if defined(TCP_KEEPIDLE)
constexpr int tcp_keep_idle = TCP_KEEPIDLE;
#elif defined(TCP_KEEPALIVE)
constexpr int tcp_keep_idle = TCP_KEEPALIVE; // macOS's name for it
#else
constexpr int tcp_keep_idle = -1;
#endif
#ifdef TCP_KEEPINTVL
constexpr int tcp_keep_interval = TCP_KEEPINTVL, tcp_keep_count = TCP_KEEPCNT;
#else
constexpr int tcp_keep_interval = -1, tcp_keep_count = -1;
#endif
#endif
// -1: an option this OS lacks, left at its default.
inline int keep_alive_native(int s, bool on, int idle, int interval, int count) noexcept {
    const int flag = on ? 1 : 0;
    if (::setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &flag, sizeof flag) != 0) return errno;
    const int names[3] = {tcp_keep_idle, tcp_keep_interval, tcp_keep_count}, values[3] = {idle, interval, count};
    for (int i = 0; on && i < 3; ++i)
        if (names[i] >= 0 && ::setsockopt(s, IPPROTO_TCP, names[i], &values[i], sizeof values[i]) != 0) return errno;
    return 0;
}
inline std::string scope_name(unsigned long index) {
    char name[IF_NAMESIZE] = {};
    return ::if_indextoname(static_cast<unsigned>(index), name) ? std::string(name) : std::to_string(index);
}
inline unsigned interface_index(const char* name) noexcept { return ::if_nametoindex(name); }
inline void prepare_datagram(int) noexcept {}
// One datagram into [into, into + n): its size (the real one on Linux, which MSG_TRUNC
// asks for), with *cut set when it was longer.
inline long recv_datagram_native(int s, char* into, std::size_t n, sockaddr_storage* from, bool* cut) noexcept {
    iovec piece{into, n};
    msghdr message{};
    message.msg_name = from;
    message.msg_namelen = from ? sizeof(sockaddr_storage) : 0;
    message.msg_iov = &piece;
    message.msg_iovlen = 1;
#ifdef __linux__
    const long got = static_cast<long>(::recvmsg(s, &message, MSG_TRUNC));
#else
    const long got = static_cast<long>(::recvmsg(s, &message, 0));
#endif
    *cut = got >= 0 && (message.msg_flags & MSG_TRUNC);
    return got;
}
inline bool read_console(std::string&) { return false; }
inline bool write_console(std::string_view) { return false; }
} // namespace detail
} // namespace greet
#endif

#ifdef GREET_SOCKET_OPENSSL // TLS, opt-in: the default build includes and links none of it
#include <filesystem>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#if OPENSSL_VERSION_NUMBER < 0x30000000L
#error "greet_socket's TLS needs OpenSSL 3 (Debian: apt-get install libssl-dev)"
#endif
#endif

// ---------------------------------------------------------------------------
// The two private pieces every socket holds, defined here as the API's objects contain
// them; what they do is in the internals below.
namespace greet {
namespace detail {
// The one owner of a descriptor: move-only, closed on destruction.
class Socket {
public:
    Socket(native_handle_type s = no_socket) noexcept : value_(s) {}
    Socket(Socket&& other) noexcept : value_(std::exchange(other.value_, no_socket)) {}
    Socket& operator=(Socket&& other) noexcept;
    ~Socket() { reset(); }
    void reset() noexcept;
    operator native_handle_type() const noexcept { return value_; }

private:
    native_handle_type value_;
};
// Bytes read from the OS but not yet returned: [begin, end) of data.
struct Buffer {
    std::unique_ptr<char[]> data;
    std::size_t capacity = 0, begin = 0, end = 0;
    Buffer() = default;
    Buffer(Buffer&& other) noexcept { *this = std::move(other); }
    Buffer& operator=(Buffer&& other) noexcept;
    std::size_t size() const noexcept { return end - begin; }
    const char* bytes() const noexcept { return data.get() + begin; }
    std::string take(std::size_t n);
    void consume(std::size_t n) noexcept {
        begin += n;
        if (begin == end) begin = end = 0;
    }
    char* prepare(std::size_t n); // room for n more bytes at end
    void commit(std::size_t n) noexcept { end += n; }
};
// The file of a Unix-domain socket a Server bound: removed when the Server closes, if
// it is still the one the Server made.
class SocketFile {
public:
    SocketFile() = default;
    SocketFile(const std::string& path, std::uint64_t identity) : path_(path), identity_(identity) {}
    SocketFile(SocketFile&& other) noexcept { *this = std::move(other); }
    SocketFile& operator=(SocketFile&& other) noexcept;
    ~SocketFile() { reset(); }
    void reset() noexcept;

private:
    std::string path_;
    std::uint64_t identity_ = 0;
};
// Text that goes out as UTF-8: UTF-16, UTF-32 and wide strings (and C++20's u8).
template <class T> using if_text = std::enable_if_t<std::is_convertible_v<const T&, std::u16string_view> ||
                                                    std::is_convertible_v<const T&, std::u32string_view> ||
                                                    std::is_convertible_v<const T&, std::wstring_view>
#if defined(__cpp_char8_t)
                                                    || std::is_convertible_v<const T&, std::u8string_view>
#endif
                                                    >;
struct CancelState; // a Canceller's, shared by its copies and the sockets given it
struct CutOff;      // Server::serve's hold on one of its connections
class Transport;
// A TLS session under a Transport. Only GREET_SOCKET_OPENSSL builds define one (an
// interface, so that a program whose files differ on the macro still agrees on every
// inline function); it reaches the OS through the Transport's plain read and write.
class Tls {
public:
    virtual ~Tls() = default;
    using Deadline = std::chrono::steady_clock::time_point;
    virtual std::size_t read_some(Transport& io, char* into, std::size_t n, Deadline until, const char* op,
                                  std::error_code& ec) = 0;
    virtual std::size_t write(Transport& io, std::string_view first, std::string_view second, const char* op,
                              std::error_code& ec) = 0;
    virtual bool shutdown(Transport& io, std::error_code& ec) = 0; // sends close_notify
    virtual void abandon(Transport& io) noexcept = 0;              // close(): close_notify if it goes at once
};
// A connection's way to the OS and everything a wait depends on: the socket, its
// timeout, a Canceller, serve()'s cut-off, chaos mode. Client (the stream: the buffer
// and every framing) reaches the OS only through read_some and write, so that another
// transport (TLS) can go under the framing without touching it.
class Transport {
public:
    using Deadline = std::chrono::steady_clock::time_point;
    Transport() = default;
    explicit Transport(Socket s) noexcept : socket(std::move(s)) {}
    Transport(Transport&& other) noexcept = default;
    Transport& operator=(Transport&& other) noexcept;
    ~Transport() { close(); }

    bool is_open() const noexcept { return socket != no_socket; }
    void adopt(Socket connected) noexcept; // the socket connect() made
    void close() noexcept;
    bool begin(const char* op, std::error_code& ec) const; // ec cleared, open, not cancelled
    bool fail(std::error_code& ec, const char* op, std::error_code code, std::string_view note = {}) const;
    bool fail_timeout(std::error_code& ec, const char* op, std::string_view note = {}) const;
    bool cancelled() const noexcept;
    bool check_cancelled(const char* op, std::error_code& ec, std::string_view note = {}) const;
    void apply_timeout() noexcept;
    Deadline deadline() const noexcept;
    bool check_deadline(Deadline until, const char* op, std::error_code& ec) const;
    bool wait_on(native_handle_type s, short events, Deadline until, std::error_code& ec) const;
    bool await(short events, Deadline until, const char* op, std::error_code& ec, std::string_view note = {}) const;
    // The stream's bytes (decrypted under TLS)...
    std::size_t read_some(char* into, std::size_t n, Deadline until, const char* op, std::error_code& ec);
    std::size_t write(std::string_view first, std::string_view second, const char* op, std::error_code& ec);
    // ...and the bytes on the wire.
    std::size_t read_plain(char* into, std::size_t n, Deadline until, const char* op, std::error_code& ec);
    std::size_t write_plain(std::string_view first, std::string_view second, Deadline until, const char* op,
                            std::error_code& ec);

    Socket socket;
    std::string endpoint; // "host:port" as the user named it, for error messages
    std::optional<std::chrono::milliseconds> timeout;
    std::shared_ptr<CutOff> cut_off;        // set by Server::serve
    std::shared_ptr<CancelState> canceller; // set_canceller's
    // Chaos mode's random states (0 is off), one per direction: one thread may send while
    // another receives.
    std::uint64_t chaos_recv = 0, chaos_send = 0;
    std::unique_ptr<Tls> tls; // after start_tls or accept_tls

private:
    std::size_t write_failed(std::error_code code, std::size_t sent, std::size_t total, const char* op,
                             std::error_code& ec) const;
};
} // namespace detail
} // namespace greet

// ---------------------------------------------------------------------------
// The public API.
namespace greet {

class Client;

// Errors. Every call that can fail comes in two forms (the std::filesystem convention):
// one throws greet::Error (a std::system_error; catch the subclasses for the cases a
// program handles differently), its twin takes std::error_code& ec as its last parameter,
// is noexcept, and sets ec instead. Both leave the socket in the same state. ec and
// code() compare with std::errc values on every platform.
class Error : public std::system_error {
public:
    Error(std::error_code code, const std::string& message);
    const char* what() const noexcept override { return message_.what(); }

private:
    std::runtime_error message_; // shares its text on copy, so copying never throws
};
class TimeoutError : public Error {
    using Error::Error;
}; // code() == std::errc::timed_out
class ResolveError : public Error {
    using Error::Error;
}; // the host name could not be looked up
class ClosedError : public Error {
    using Error::Error;
}; // the peer closed before a whole unit arrived
class TlsError : public Error {
    using Error::Error;
};                               // TLS failed: code() is a greet::errc tls_ value
class Utf8Error : public Error { // code() == std::errc::illegal_byte_sequence
public:
    Utf8Error(std::size_t offset, const std::string& message);
    std::size_t offset() const noexcept { return offset_; } // the first bad byte (or code unit)
private:
    std::size_t offset_;
};
// The library's own error codes, for conditions the OS has no name for. The tls_ ones
// come with a TlsError.
enum class errc {
    peer_closed = 1,
    tls_protocol,    // the peer does not speak TLS, sent an alert, or a record failed its check
    tls_certificate, // a certificate was rejected: the message says why
    tls_truncated,   // the peer closed without close_notify: what came may be cut short
    tls_setup,       // a certificate, key or CA file could not be used
};
const std::error_category& error_category() noexcept;
std::error_code make_error_code(errc e) noexcept;
// The text what() would have shown for the last failure on this thread, for programs
// that use the error-code forms (and those built with -fno-exceptions):
// "<operation> <host:port>: <OS name> (<OS text>): <hint>".
std::string last_error_message();

// Where a socket is: an IP address and port, or a Unix-domain socket's path. to_string()
// gives "127.0.0.1:5000", "[::1]:5000" (IPv4-mapped IPv6 peers print as plain IPv4),
// "/run/app.sock", "@name" for a Linux abstract name, or "(unnamed)" for a Unix-domain
// client that bound no path (most do not).
struct Address {
    std::string host; // the IP address, or the path (an abstract name starts with '\0')
    std::uint16_t port = 0;
    bool unix_domain = false;
    std::string to_string() const;
};
// The process on the other end of a Unix-domain connection, as the kernel saw it at
// connect(): trustworthy where a claim the peer sends is not.
struct Credentials {
    std::int64_t pid = 0;
    std::uint32_t uid = 0, gid = 0;
};
bool operator==(const Address& a, const Address& b);
bool operator!=(const Address& a, const Address& b);
std::ostream& operator<<(std::ostream& out, const Address& address);

// Parses "9999" into a port. Throws: Error (std::errc::invalid_argument) unless the
// text is a whole number from 0 to 65535.
std::uint16_t parse_port(std::string_view text) GREET_SOCKET_THROWS;
std::uint16_t parse_port(std::string_view text, std::error_code& ec) noexcept;

// UTF-8 as RFC 3629 defines it: overlong forms, surrogates, values past U+10FFFF,
// stray continuation bytes and truncated sequences are ill-formed.
namespace utf8 {
// Throws: Utf8Error on an unpaired surrogate or a value that is no code point; offset() is its index.
std::string encode(std::u16string_view text) GREET_SOCKET_THROWS;
std::string encode(std::u32string_view text) GREET_SOCKET_THROWS;
std::string encode(std::wstring_view text) GREET_SOCKET_THROWS; // UTF-16 on Windows, UTF-32 elsewhere
std::string encode(std::u16string_view text, std::error_code& ec) noexcept;
std::string encode(std::u32string_view text, std::error_code& ec) noexcept;
std::string encode(std::wstring_view text, std::error_code& ec) noexcept;
// Throws: Utf8Error at the first ill-formed byte.
std::u32string decode(std::string_view bytes) GREET_SOCKET_THROWS;
std::u32string decode(std::string_view bytes, std::error_code& ec) noexcept;
bool is_valid(std::string_view bytes) noexcept;
// Each maximal subpart of an ill-formed sequence becomes one U+FFFD (Unicode's and WHATWG's practice).
std::string sanitize(std::string_view bytes);
} // namespace utf8

// Console text as UTF-8, like Python's input() and print(). On a Windows console they
// read and write UTF-16, so non-ASCII text survives any code page.
std::optional<std::string> input(std::string_view prompt = {}); // nullopt at end of input
void print(std::string_view text);                              // text + '\n', flushed

using Timeout = std::optional<std::chrono::milliseconds>;

// TCP keep-alive probes: after `idle` without traffic, a probe every `interval`; after
// `count` unanswered ones the OS drops the connection and the next call fails. The OS
// default waits about two hours, which is why these are set with it. (Windows fixes count at 10.)
struct KeepAlive {
    std::chrono::seconds idle{60};
    std::chrono::seconds interval{10};
    int count = 6;
};
// Sets an option the library does not name on a socket before it binds or connects; set
// ec to refuse the socket (its bind or connect attempt fails with ec).
using SocketOptions = std::function<void(native_handle_type socket, std::error_code& ec)>;

// Ends blocked calls from another thread or a signal handler: a Cancel button, a program
// shutting down. Copies share one state, as std::stop_source's do; give one to many
// sockets (set_canceller) or one to each. After cancel(), every blocked call of those
// sockets, and every later one, fails with Error (std::errc::operation_canceled) within
// milliseconds, until reset(). A cancelled receive loses no byte (after reset() the next
// receive returns them), a cancelled send's message says how many bytes went, and a
// cancelled connect leaves the Client unconnected, free to connect again.
class Canceller {
public:
    Canceller() GREET_SOCKET_THROWS; // one wake-up socket, shared by every copy. Throws: Error (EMFILE, say).
    explicit Canceller(std::error_code& ec) noexcept;
    // Safe from any thread and from a signal handler (an atomic store and one send(); errno
    // is left as it was).
    void cancel() noexcept;
    void reset() noexcept;
    bool cancelled() const noexcept;

private:
    friend class Client;
    friend class Server;
    friend class UdpSocket;
    std::shared_ptr<detail::CancelState> state_;
};

// A connected TCP stream. Move-only; closes on destruction. Threads: different Clients
// may be used from different threads at once; one Client by one thread at a time,
// except that one thread may send while another receives (chaos mode included).
// Each call that can fail is followed by its error-code twin.
#ifdef GREET_SOCKET_OPENSSL
// TLS (1.2 and later) for Client::start_tls and accept_tls. Each distinct set of files is
// read once per process and again when a file changes (certificates can be renewed
// without a restart).
struct TlsOptions {
    std::string server_name; // the name the server's certificate must carry; empty: connect()'s host
    std::string ca_file;     // PEM CAs to trust; empty: the system's (client), no client certificate asked (server)
    std::string certificate_file; // PEM: the server's certificate chain, or the client's for mutual TLS
    std::string private_key_file; // PEM: its key; empty: the key is in certificate_file
    // false accepts ANY certificate, an attacker's too: UNSAFE, for a throwaway test only.
    bool verify = true;
};
#endif

class Client {
public:
    Client() = default; // nothing opened yet
    // Throws: as connect().
    Client(std::string_view host, std::uint16_t port) GREET_SOCKET_THROWS;
    Client(Client&&) noexcept = default;
    Client& operator=(Client&&) noexcept = default;
    ~Client() = default;

    // Connects to the first address the host resolves to that answers, racing them as
    // browsers do (Happy Eyeballs, RFC 8305): IPv6 and IPv4 alternate, each attempt starts
    // set_connect_stagger() after the one before (or at once when the running ones have
    // failed), the first to connect wins. The timeout bounds the whole call. Host "" is
    // this machine ("localhost"), as in Python.
    // Throws: ResolveError; TimeoutError; Error naming each address and its failure, its
    // code() the most telling (ECONNREFUSED over ETIMEDOUT); Error (EISCONN) when connected.
    void connect(std::string_view host, std::uint16_t port) GREET_SOCKET_THROWS;
    void connect(std::string_view host, std::uint16_t port, std::error_code& ec) noexcept;
    // Connects to a Unix-domain socket (see Server::bind_unix for paths and abstract
    // names). Throws: Error (ENOENT: no such socket; ECONNREFUSED: no server listens on it;
    // EACCES: the file's or a folder's permissions; EINVAL: a path too long, before any
    // system call); Error (EISCONN) when already connected.
    void connect_unix(std::string_view path) GREET_SOCKET_THROWS;
    void connect_unix(std::string_view path, std::error_code& ec) noexcept;

    // Sends every byte (looping over partial writes) and returns the count (the twins: the
    // bytes sent, on failure too). Throws: TimeoutError (the message says how many bytes
    // went); Error (EPIPE, ECONNRESET) when the peer has gone; never raises SIGPIPE.
    std::size_t send(std::string_view bytes) GREET_SOCKET_THROWS;
    std::size_t send(std::string_view bytes, std::error_code& ec) noexcept;
    // Text in other encodings is sent as UTF-8. Throws: also Utf8Error before sending anything.
    std::size_t send(std::u16string_view text) GREET_SOCKET_THROWS;
    std::size_t send(std::u32string_view text) GREET_SOCKET_THROWS;
    std::size_t send(std::wstring_view text) GREET_SOCKET_THROWS;
    std::size_t send(std::u16string_view text, std::error_code& ec) noexcept;
    std::size_t send(std::u32string_view text, std::error_code& ec) noexcept;
    std::size_t send(std::wstring_view text, std::error_code& ec) noexcept;
#if defined(__cpp_char8_t)
    std::size_t send(std::u8string_view text) GREET_SOCKET_THROWS;
    std::size_t send(std::u8string_view text, std::error_code& ec) noexcept;
#endif
    std::size_t send(const char* bytes) GREET_SOCKET_THROWS;
    std::size_t send(const char* bytes, std::error_code& ec) noexcept { return send(std::string_view(bytes), ec); }

    // Whole messages on a stream. send_line sends text + '\n' and send_message a 4-byte
    // big-endian length + the payload, each in one system call (so Nagle's algorithm
    // never holds back the second half of a small request). Both return the bytes sent.
    // Throws: as send(); Error (EINVAL) for a line holding '\n' or ending in '\r' (which
    // recv_line would take for part of the line's end); Error (EMSGSIZE) for a payload of
    // 4 GiB or more.
    std::size_t send_line(std::string_view text) GREET_SOCKET_THROWS;
    std::size_t send_line(std::string_view text, std::error_code& ec) noexcept;
    std::size_t send_message(std::string_view payload) GREET_SOCKET_THROWS;
    std::size_t send_message(std::string_view payload, std::error_code& ec) noexcept;
    // One whole message from send_message. Throws: Error (EMSGSIZE) when the declared
    // length exceeds max_bytes, before allocating anything; ClosedError when the peer
    // closes at or inside a message. On any error the message's bytes stay unread.
    std::string recv_message(std::size_t max_bytes = std::size_t{16} * 1024 * 1024) GREET_SOCKET_THROWS;
    std::string recv_message(std::size_t max_bytes, std::error_code& ec) noexcept;

    // Every receive returns buffered bytes first, so whatever one call read from the OS
    // and did not return (a held-back character, the rest after a line, a recv_exact cut
    // short by a timeout or a close) comes back from the next call, whichever it is.
    // Each throws TimeoutError when a timeout is set and the whole call (however the bytes
    // trickle in) does not finish in time; the connection stays usable. max_bytes (or n)
    // must be at least 1. A result that cannot be allocated (recv_exact(SIZE_MAX), a
    // process out of memory) is Error (ENOMEM), and its bytes stay unread; std::bad_alloc
    // escapes only when even an error message or a few bytes of bookkeeping cannot be had.

    // 1..max_bytes bytes; "" once the peer has closed (like Python). The cost follows the
    // bytes received, not max_bytes: recv(SIZE_MAX) is fine.
    std::string recv(std::size_t max_bytes) GREET_SOCKET_THROWS;
    std::string recv(std::size_t max_bytes, std::error_code& ec) noexcept;
    // Like recv, but only whole UTF-8 characters: an incomplete character at the end is
    // held back for the next call. max_bytes must be at least 4 (one character).
    // Throws: Utf8Error when the next bytes are ill-formed (they stay unread: recv()
    // returns them) or the peer closed in the middle of a character.
    std::string recv_text(std::size_t max_bytes) GREET_SOCKET_THROWS;
    std::string recv_text(std::size_t max_bytes, std::error_code& ec) noexcept;
    // Exactly n bytes. Throws: ClosedError if the peer closes first (nothing is lost).
    std::string recv_exact(std::size_t n) GREET_SOCKET_THROWS;
    std::string recv_exact(std::size_t n, std::error_code& ec) noexcept;
    // The bytes before the next '\n', without it (and without a '\r' before it). The line
    // itself may hold max_bytes bytes; its "\n" or "\r\n" does not count. Throws: Error
    // (EMSGSIZE) for a longer line, which stays unread; ClosedError at the end of the
    // stream or inside an unfinished line.
    std::string recv_line(std::size_t max_bytes = 65536) GREET_SOCKET_THROWS;
    std::string recv_line(std::size_t max_bytes, std::error_code& ec) noexcept;
    // The same three into memory the caller owns, for loops that must not allocate per
    // call (each makes the system calls its twin makes, and no more). recv_into reads
    // 1..max_bytes bytes into `into` and returns the count, 0 once the peer has closed
    // (like Python's recv_into); recv_exact_into fills into[0, n); recv_line(line, ...)
    // assigns the line to `line`, reusing its capacity. Throws: as recv, recv_exact, recv_line.
    std::size_t recv_into(char* into, std::size_t max_bytes) GREET_SOCKET_THROWS;
    std::size_t recv_into(char* into, std::size_t max_bytes, std::error_code& ec) noexcept;
    void recv_exact_into(char* into, std::size_t n) GREET_SOCKET_THROWS;
    void recv_exact_into(char* into, std::size_t n, std::error_code& ec) noexcept;
    void recv_line(std::string& line, std::size_t max_bytes = 65536) GREET_SOCKET_THROWS;
    void recv_line(std::string& line, std::size_t max_bytes, std::error_code& ec) noexcept;
    // recv_line without the copy: a view of the line inside the connection's buffer,
    // valid until the next call on this Client (or its move or destruction). For loops
    // that look at each line once; keep what you need as a std::string.
    std::string_view recv_line_view(std::size_t max_bytes = 65536) GREET_SOCKET_THROWS;
    std::string_view recv_line_view(std::size_t max_bytes, std::error_code& ec) noexcept;

    // connect, send and every recv wait at most this long; nullopt waits forever (the
    // default). Throws: Error (EINVAL) for a negative timeout.
    void set_timeout(Timeout timeout) GREET_SOCKET_THROWS;
    void set_timeout(Timeout timeout, std::error_code& ec) noexcept;
    Timeout timeout() const noexcept { return io_.timeout; }
    // Half-close: the peer's recv returns ""; this side can still receive. Under TLS it
    // sends close_notify first.
    void shutdown_send() GREET_SOCKET_THROWS;
    void shutdown_send(std::error_code& ec) noexcept;
#ifdef GREET_SOCKET_OPENSSL
    // TLS on this connected Client: start_tls as the client, accept_tls as the server (in
    // a serve() handler, say; options name its certificate and key, and a ca_file there
    // asks the client for a certificate signed by it: mutual TLS). The handshake keeps the
    // timeout and canceller; afterwards every call of this Client is encrypted, recv
    // returns "" at the peer's close_notify, and close() sends one. Unread bytes must not
    // precede the handshake. On failure the connection is closed: nothing goes unencrypted.
    // Throws: TlsError ("certificate verify failed: ..."), TimeoutError, Error (ECONNRESET).
    void start_tls(const TlsOptions& options = {}) GREET_SOCKET_THROWS;
    void start_tls(const TlsOptions& options, std::error_code& ec) noexcept;
    void accept_tls(const TlsOptions& options) GREET_SOCKET_THROWS;
    void accept_tls(const TlsOptions& options, std::error_code& ec) noexcept;
    // The peer certificate's subject ("CN=alice,O=Example"); "" without TLS or certificate.
    std::string tls_peer_subject() const;
#endif
    bool is_tls() const noexcept { return io_.tls != nullptr; }
    // Chaos mode, for your own tests: every send and receive goes through the OS in small
    // pieces (1 to 16 bytes) drawn from a reproducible seed, so code that assumes one send
    // is one recv fails in your tests instead of in production. The environment variable
    // GREET_SOCKET_CHAOS=<seed> turns it on for every socket as it connects or is accepted;
    // std::nullopt turns it off for this one.
    void set_chaos(std::optional<std::uint64_t> seed) noexcept;
    // connect, send and every receive also end when the canceller is cancelled. Costs one
    // poll() per wait (the socket turns non-blocking) and no descriptor of its own; a
    // Client without one pays nothing. Kept until replaced, moved along with the Client.
    void set_canceller(Canceller canceller) noexcept;
    // How long connect() waits on one address before it also tries the next: 250 ms by
    // default (RFC 8305: long enough that a healthy first address wins, short enough that
    // a dead one costs little); 0 tries one address at a time, in order. Negative is 0.
    void set_connect_stagger(std::chrono::milliseconds stagger) noexcept;

    // Socket options. Set before connect(), an option applies to every socket connect()
    // tries; set on a connected Client, to it at once (and to a later connect). Each throws
    // Error with the OS's refusal. setsockopt() on native_handle() reads them back.
    void set_no_delay(bool on) GREET_SOCKET_THROWS; // TCP_NODELAY: small sends go at once (no Nagle)
    void set_no_delay(bool on, std::error_code& ec) noexcept;
    void set_keep_alive(std::optional<KeepAlive> settings) GREET_SOCKET_THROWS; // nullopt: off
    void set_keep_alive(std::optional<KeepAlive> settings, std::error_code& ec) noexcept;
    void set_send_buffer_size(int bytes) GREET_SOCKET_THROWS; // SO_SNDBUF (Linux doubles it)
    void set_send_buffer_size(int bytes, std::error_code& ec) noexcept;
    void set_receive_buffer_size(int bytes) GREET_SOCKET_THROWS; // SO_RCVBUF; before connect() to widen the TCP window
    void set_receive_buffer_size(int bytes, std::error_code& ec) noexcept;
    // SO_LINGER: close() waits up to this long for unsent bytes to go; zero drops them and
    // resets the connection; nullopt (the default) lets the OS send them after close().
    void set_linger(std::optional<std::chrono::seconds> linger) GREET_SOCKET_THROWS;
    void set_linger(std::optional<std::chrono::seconds> linger, std::error_code& ec) noexcept;
    // Any other option: setup runs on each socket a later connect() makes, before it
    // connects (not on a connected one: use native_handle() there); the newest replaces
    // the one before.
    void set_socket_options(SocketOptions setup) GREET_SOCKET_THROWS;
    void set_socket_options(SocketOptions setup, std::error_code& ec) noexcept;

    Address local_address() const GREET_SOCKET_THROWS; // Throws: Error when not connected.
    Address local_address(std::error_code& ec) const noexcept;
    Address peer_address() const GREET_SOCKET_THROWS; // Throws: Error when not connected.
    Address peer_address(std::error_code& ec) const noexcept;
    // The connecting process of a Unix-domain peer. Throws: Error (ENOTSUP off Linux;
    // EINVAL over TCP, where the kernel does not know the peer).
    Credentials peer_credentials() const GREET_SOCKET_THROWS;
    Credentials peer_credentials(std::error_code& ec) const noexcept;
    void close() noexcept;
    bool is_open() const noexcept { return io_.is_open(); }
    native_handle_type native_handle() const noexcept { return io_.socket; }

private:
    friend class Server;
    using Deadline = std::chrono::steady_clock::time_point;
    Client(detail::Socket socket, const sockaddr_storage& peer);
    class Race;
    void connect_any(const std::vector<sockaddr_storage>& addresses, const char* op, Deadline until,
                     std::error_code& ec);
    void use(detail::Socket connected, const sockaddr_storage& address);
    bool apply_options(native_handle_type s, std::error_code& failure) const;
    void set_option(int key, std::function<std::error_code(native_handle_type)> apply, const char* op,
                    std::error_code& ec);
    std::size_t fill(Deadline until, const char* op, std::error_code& ec);
    std::string result_of(std::size_t n, const char* op, std::error_code& ec) const;
    std::string result_from(const char* bytes, std::size_t n, const char* op, std::error_code& ec);
    bool read_rest(char* out, std::size_t size, std::string_view unread_prefix, Deadline until, const char* op,
                   std::error_code& ec);
    std::string text_from_buffer(std::size_t max_bytes, Deadline until, std::error_code& ec);
    std::size_t find_line(std::size_t max_bytes, const char* op, std::error_code& ec);
    std::size_t next_line(std::size_t max_bytes, std::error_code& ec) noexcept;
    std::string_view front_line(std::size_t taken, std::size_t max_bytes, std::error_code& ec) noexcept;
#ifdef GREET_SOCKET_OPENSSL
    void handshake(bool server, const TlsOptions& options, const char* op, std::error_code& ec);
#endif

    detail::Transport io_;
    detail::Buffer buffer_;
    Address peer_;
    std::string host_; // as given to connect(), for TLS's server_name
    std::chrono::milliseconds stagger_{250};
    std::vector<std::pair<int, std::function<std::error_code(native_handle_type)>>>
        options_; // by kind, for each connect
};

// Options of Server::serve.
struct ServeOptions {
    // Clients served at once; further clients wait in the backlog. 0 (the default): 64 for
    // serve() (a thread each), no limit but the descriptor limit for serve_messages/serve_lines.
    std::size_t max_clients = 0;
    // stop() waits this long for handlers; milliseconds::max() waits as long as they take.
    std::chrono::milliseconds grace = std::chrono::seconds(5);
    // Called with an exception that escaped a handler (a ClosedError, the client leaving,
    // is not reported), an accept failure, or a client refused because no thread or memory
    // could be had for it (the only case in which serve() refuses a client; the report
    // says so). Default: a line on stderr. (Built with -fno-exceptions, serve() still
    // passes its own failures here, as greet::Error objects it never throws.)
    std::function<void(const Address& peer, const std::exception& error)> on_error;
    // How long a client may stay silent: the handler's Client starts with it as its timeout
    // (set_timeout, which the handler may change), so a receive that waits longer throws
    // TimeoutError, reported as above, and the slot is freed. nullopt (the default): no limit.
    Timeout idle_timeout;
    // The handler threads' stack in bytes; 0 (the default) is the OS's (8 MiB of address
    // space with glibc, 1 MiB on Windows). 256 KiB suits most handlers and 10,000 threads.
    std::size_t stack_size = 0;
    // The listen backlog serve() sets before serving: the queue of clients the OS completes
    // while every handler is busy. 0 (the default) keeps the listener's (SOMAXCONN).
    int backlog = 0;
    // serve_messages/serve_lines: the threads that read requests, run the handler and send
    // the replies. 0 (the default): std::thread::hardware_concurrency().
    std::size_t workers = 0;
    // serve_messages/serve_lines: the longest request. 0 (the default): recv_message's
    // 16 MiB, recv_line's 65,536 bytes.
    std::size_t max_request = 0;
};

// A listening TCP socket (one per address the host resolves to: "localhost" listens
// on 127.0.0.1 and, where the machine maps it, ::1). Move-only; closes on destruction.
class Server {
public:
    Server() = default; // nothing opened yet
    // bind + listen. Throws: as bind() and listen().
    Server(std::string_view host, std::uint16_t port, int backlog = SOMAXCONN) GREET_SOCKET_THROWS;
    Server(Server&&) noexcept = default;
    Server& operator=(Server&&) noexcept = default;
    ~Server() = default;

    // host "" is every interface (IPv6 dual-stack where available, else IPv4); port 0
    // lets the OS pick a free port (see local_address()).
    // Throws: ResolveError; Error (EADDRINUSE: another program is listening on this
    // port; EACCES: ports below 1024 need privileges; EADDRNOTAVAIL: not this machine's address).
    void bind(std::string_view host, std::uint16_t port) GREET_SOCKET_THROWS;
    void bind(std::string_view host, std::uint16_t port, std::error_code& ec) noexcept;
    // Binds a Unix-domain socket at path and listens (SOMAXCONN; listen() may change the
    // backlog), so that accept() and serve() work at once. It is a file only processes allowed by its folder's
    // permissions can reach (make the folder 0700, or 0750 with a group, to choose who may
    // connect). A socket file no process listens on (a crashed server's) is replaced; a live
    // one is EADDRINUSE; a file that is not a socket is never removed. The file goes when
    // the Server closes. Linux abstract names (no file; gone with the last socket) are
    // spelled as Linux spells them, with a leading NUL byte: bind_unix(std::string("\0name",
    // 5)), and print as "@name". Throws: Error (EINVAL: a path longer than the OS allows
    // (107 bytes on Linux, 103 on macOS), an empty one, or an abstract name off Linux;
    // EADDRINUSE; EACCES; ENOENT: the folder is missing).
    void bind_unix(std::string_view path) GREET_SOCKET_THROWS;
    void bind_unix(std::string_view path, std::error_code& ec) noexcept;
    // backlog bounds the queue of connections the OS has completed but accept() has not
    // yet taken; it is not a limit on clients. Throws: Error when not bound.
    void listen(int backlog = SOMAXCONN) GREET_SOCKET_THROWS;
    void listen(int backlog, std::error_code& ec) noexcept;
    // Waits for the next client. Throws: TimeoutError; Error (EMFILE when out of
    // descriptors; EINVAL before listen(); ECANCELED after stop()).
    std::pair<Client, Address> accept() GREET_SOCKET_THROWS;
    std::pair<Client, Address> accept(std::error_code& ec) noexcept;
    // accept waits at most this long; nullopt waits forever (the default).
    void set_timeout(Timeout timeout) GREET_SOCKET_THROWS;
    void set_timeout(Timeout timeout, std::error_code& ec) noexcept;
    Timeout timeout() const noexcept { return timeout_; }
    // accept() also ends when the canceller is cancelled, and serve() returns as after
    // stop(). Accepted Clients do not inherit it: give them the same one to end them too.
    void set_canceller(Canceller canceller) noexcept;
    // Before bind(). true: an IPv6 listener on "" or "::" takes IPv4 clients too (as
    // ::ffff:a.b.c.d, shown as a.b.c.d; a specific IPv6 address, such as ::1, is IPv6 only
    // whatever this says); false: IPv6 only, and "" gets an IPv4 listener of its own.
    // Unset (the default): "" is one dual-stack listener.
    void set_dual_stack(bool on) noexcept { dual_stack_ = on; }
    // Before bind(): setup runs on each listening socket before it binds; a refusal (ec
    // set) fails the bind with it.
    void set_socket_options(SocketOptions setup) noexcept { setup_ = std::move(setup); }
    std::vector<native_handle_type> native_handles() const; // the listeners (one per address)
    // The real port after bind(host, 0). Throws: Error when not bound.
    Address local_address() const GREET_SOCKET_THROWS;
    Address local_address(std::error_code& ec) const noexcept;
    void close() noexcept;
    bool is_open() const noexcept { return !listeners_.empty(); }

    // Runs handler(client, peer) on a thread of its own for each client, at most
    // options.max_clients at once, until stop(). The threads are reused: a finished
    // handler's thread takes the next client, and one idle for 2 s ends, so a burst of
    // clients costs no thread creation per client. An exception escaping a handler ends
    // that client only. When stopped, serve closes the listening sockets, waits up to
    // options.grace for running handlers, then shuts the rest of the connections down
    // (their blocked receive or send throws Error with std::errc::operation_canceled),
    // joins every thread and returns. An idle serve() sleeps in the OS, whatever timeout
    // accept() has. A handler may move its Client out (to keep the connection on a
    // thread of its own); serve() then neither waits for nor shuts down that connection.
    // Throws: Error (EINVAL) when not listening.
    using Handler = std::function<void(Client& client, const Address& peer)>;
    void serve(const Handler& handler, const ServeOptions& options = {}) GREET_SOCKET_THROWS;
    void serve(const Handler& handler, const ServeOptions& options, std::error_code& ec) noexcept;
    // For request-response servers: handler(request, peer) answers each request, and its
    // reply goes back in the same framing, in request order per connection, at once
    // (TCP_NODELAY). serve_messages reads send_message frames; serve_lines reads lines as
    // recv_line does and sends each reply followed by '\n'. Idle connections wait in the OS
    // (epoll on Linux, poll() elsewhere), not in a thread: options.workers threads each own
    // a share of the connections and run their handler calls one at a time, so a handler
    // that blocks delays the other connections of its thread, and one shared between
    // connections needs its own lock. A request longer than options.max_request, an
    // exception escaping the handler, a reset or options.idle_timeout of silence ends that
    // connection only, reported to options.on_error. A peer that closes after its requests
    // gets their replies first. A peer that does not read holds at most 64 KiB of replies
    // beyond the last; then its next requests wait. stop() as for serve(): no new requests
    // are read, unsent replies get options.grace to leave, then every connection closes
    // and every thread is joined. Throws: Error (EINVAL) when not listening.
    using RequestHandler = std::function<std::string(std::string_view request, const Address& peer)>;
    void serve_messages(const RequestHandler& handler, const ServeOptions& options = {}) GREET_SOCKET_THROWS;
    void serve_messages(const RequestHandler& handler, const ServeOptions& options, std::error_code& ec) noexcept;
    void serve_lines(const RequestHandler& handler, const ServeOptions& options = {}) GREET_SOCKET_THROWS;
    void serve_lines(const RequestHandler& handler, const ServeOptions& options, std::error_code& ec) noexcept;
    // Makes a blocked or later accept() throw Error (std::errc::operation_canceled) and
    // serve() return, within milliseconds. Safe from any thread and from a signal handler
    // (it stores an atomic flag, sends one byte on a socket and, on Linux, shuts the
    // listener down; no lock, no allocation);
    // it is the only async-signal-safe call of the library, and leaves errno as it found
    // it. It must not race with bind(), close() or the destructor. Stays in effect until close().
    void stop() noexcept;
    bool stopped() const noexcept { return wake_ && wake_->stopped.load(); }

private:
    struct Wake { // how stop() and finished handlers interrupt a blocked accept()
        std::atomic<bool> stopped{false};
        detail::Socket socket;   // a UDP socket on 127.0.0.1 connected to itself
        detail::Socket listener; // Linux, one listener: its duplicate, which stop() shuts down
    };
    class Sessions;
    class Reactor;
    struct Reporter;
    using Deadline = std::chrono::steady_clock::time_point;
    std::vector<detail::Socket> bind_all(const std::vector<sockaddr_storage>& addresses, bool every_interface,
                                         std::uint16_t port, std::error_code& ec);
    detail::Socket bind_one(sockaddr_storage storage, bool v6only, std::uint16_t port, std::error_code& last) const;
    bool bind_path(detail::Socket& s, const sockaddr_storage& address, std::error_code& ec);
    bool replace_stale(const sockaddr_storage& address, std::error_code& ec);
    void use_listeners(std::vector<detail::Socket> bound, const char* op, std::error_code& ec);
    bool require_listening(const char* op, std::error_code& ec) const;
    std::pair<Client, Address> accept_until(Deadline deadline, std::error_code& ec);
    bool poll_listeners(detail::pollfd_type* fds, std::size_t count, Deadline deadline, std::error_code& ec);
    bool drain_wake();
    void sleep_until_woken(Deadline until);
    bool cancelled() const noexcept;
    void apply_timeout() noexcept;
    void admit(Sessions& sessions, std::pair<Client, Address> next, const ServeOptions& options,
               const Reporter& report);
    void serve_requests(const RequestHandler& handler, const ServeOptions& options, bool lines, std::error_code& ec);

    std::vector<detail::Socket> listeners_;
    std::unique_ptr<Wake> wake_;
    Timeout timeout_;
    std::string endpoint_;
    bool listening_ = false;
    std::shared_ptr<detail::CancelState> canceller_;
    detail::SocketFile file_; // bind_unix's
    std::optional<bool> dual_stack_;
    SocketOptions setup_;
};

// A UDP socket: datagrams, each delivered whole or not at all, maybe out of order, maybe
// lost (UDP never resends: wait with a timeout and send again). Move-only; closes on
// destruction. bind() to receive on a known port; connect() to talk to one peer (the OS
// then drops datagrams from anyone else); or just send_to(), which opens the socket
// (dual-stack IPv6 where there is IPv6, so it reaches IPv4 and IPv6 peers) on a port the
// OS picks. A name with both IPv4 and IPv6 addresses means its IPv4 one, as Python's
// default socket does: one UDP socket has one address, and "localhost" peers are most
// often IPv4. Each call that can fail is followed by its error-code twin.
class UdpSocket {
public:
    // The most one datagram holds: 65,535 bytes less the IPv4 (20) and UDP (8) headers.
    static constexpr std::size_t max_datagram = 65507;

    UdpSocket() = default; // opened by bind, connect or the first send_to
    UdpSocket(UdpSocket&&) noexcept = default;
    UdpSocket& operator=(UdpSocket&&) noexcept = default;
    ~UdpSocket() = default;

    // host "" is every interface; port 0 lets the OS pick (local_address() tells).
    // Throws: ResolveError; Error (EADDRINUSE; EACCES; EINVAL when already bound).
    void bind(std::string_view host, std::uint16_t port) GREET_SOCKET_THROWS;
    void bind(std::string_view host, std::uint16_t port, std::error_code& ec) noexcept;
    // The peer of send() and recv(). Throws: ResolveError; Error.
    void connect(std::string_view host, std::uint16_t port) GREET_SOCKET_THROWS;
    void connect(std::string_view host, std::uint16_t port, std::error_code& ec) noexcept;

    // Sends one datagram, all of it, and returns its size. Throws: Error (EMSGSIZE above
    // max_datagram, before any system call; ENOTCONN: send() needs connect(); ECONNREFUSED:
    // an earlier datagram to the connected peer found no program there); TimeoutError;
    // ResolveError (a host name).
    std::size_t send(std::string_view bytes) GREET_SOCKET_THROWS;
    std::size_t send(std::string_view bytes, std::error_code& ec) noexcept;
    std::size_t send_to(std::string_view bytes, const Address& to) GREET_SOCKET_THROWS;
    std::size_t send_to(std::string_view bytes, const Address& to, std::error_code& ec) noexcept;
    std::size_t send_to(std::string_view bytes, std::string_view host, std::uint16_t port) GREET_SOCKET_THROWS;
    std::size_t send_to(std::string_view bytes, std::string_view host, std::uint16_t port,
                        std::error_code& ec) noexcept;
    // Text (u"...", U"...", L"...", u8"...") goes as UTF-8. Throws: also Utf8Error, before anything is sent.
    template <class Text, class = detail::if_text<Text>>
    std::size_t send_to(const Text& text, const Address& to) GREET_SOCKET_THROWS;
    template <class Text, class = detail::if_text<Text>>
    std::size_t send_to(const Text& text, const Address& to, std::error_code& ec) noexcept;
    template <class Text, class = detail::if_text<Text>>
    std::size_t send_to(const Text& text, std::string_view host, std::uint16_t port) GREET_SOCKET_THROWS;
    template <class Text, class = detail::if_text<Text>>
    std::size_t send_to(const Text& text, std::string_view host, std::uint16_t port, std::error_code& ec) noexcept;

    // The next datagram (recv: from the connected peer). One longer than max_bytes is
    // never silently cut: Error (EMSGSIZE) with its real size where the OS tells it (Linux);
    // its tail is gone, as UDP drops it; the twin returns the first max_bytes with ec set.
    // Throws: TimeoutError; Error (ECONNREFUSED after a datagram to a connected peer found
    // no program; the next datagram may still arrive).
    std::string recv(std::size_t max_bytes) GREET_SOCKET_THROWS;
    std::string recv(std::size_t max_bytes, std::error_code& ec) noexcept;
    std::pair<std::string, Address> recv_from(std::size_t max_bytes) GREET_SOCKET_THROWS;
    std::pair<std::string, Address> recv_from(std::size_t max_bytes, std::error_code& ec) noexcept;
    // recv_from, but the datagram must be valid UTF-8. Throws: also Utf8Error naming the
    // offset of the first bad byte (the datagram is consumed either way).
    std::pair<std::string, Address> recv_text_from(std::size_t max_bytes) GREET_SOCKET_THROWS;
    std::pair<std::string, Address> recv_text_from(std::size_t max_bytes, std::error_code& ec) noexcept;

    // Every send and receive waits at most this long; nullopt (the default) for ever.
    void set_timeout(Timeout timeout) GREET_SOCKET_THROWS;
    void set_timeout(Timeout timeout, std::error_code& ec) noexcept;
    Timeout timeout() const noexcept { return io_.timeout; }
    void set_canceller(Canceller canceller) noexcept; // as Client's
    // SO_BROADCAST: send_to("255.255.255.255" or a subnet's broadcast address) is allowed.
    void set_broadcast(bool on) GREET_SOCKET_THROWS;
    void set_broadcast(bool on, std::error_code& ec) noexcept;
    // Multicast: receive a group's datagrams on one interface: for an IPv4 group the
    // interface's address ("127.0.0.1"), for IPv6 its name ("lo", "eth0"); "" lets the
    // OS choose. Bind the group's port first. Throws: Error (EINVAL: not a multicast group).
    void join_group(std::string_view group, std::string_view interface = {}) GREET_SOCKET_THROWS;
    void join_group(std::string_view group, std::string_view interface, std::error_code& ec) noexcept;
    void leave_group(std::string_view group, std::string_view interface = {}) GREET_SOCKET_THROWS;
    void leave_group(std::string_view group, std::string_view interface, std::error_code& ec) noexcept;
    // Before the socket opens: true lets an IPv6 socket take IPv4 too, false makes it IPv6
    // only. Unset (the default): "" and an unbound socket are dual-stack, an IPv6 address is not.
    void set_dual_stack(bool on) noexcept { dual_stack_ = on; }

    Address local_address() const GREET_SOCKET_THROWS; // Throws: Error when not open.
    Address local_address(std::error_code& ec) const noexcept;
    Address peer_address() const GREET_SOCKET_THROWS; // Throws: Error (ENOTCONN) before connect().
    Address peer_address(std::error_code& ec) const noexcept;
    void close() noexcept;
    bool is_open() const noexcept { return io_.is_open(); }
    native_handle_type native_handle() const noexcept { return io_.socket; }

private:
    bool open(int family, bool dual, const char* op, std::error_code& ec);
    bool target(std::string_view host, std::uint16_t port, const char* op, sockaddr_storage& to, std::error_code& ec);
    bool fit(sockaddr_storage& to, const char* op, std::string_view where, std::error_code& ec) const;
    std::size_t send_datagram(std::string_view bytes, const sockaddr_storage* to, const char* op,
                              std::string_view where, std::error_code& ec);
    bool fail(std::error_code& ec, const char* op, std::string_view where, std::error_code code,
              std::string_view note = {}) const;
    std::string recv_datagram(std::size_t max_bytes, sockaddr_storage* from, const char* op, std::error_code& ec);
    void membership(bool join, std::string_view group, std::string_view interface, const char* op, std::error_code& ec);

    detail::Transport io_; // the socket, its timeout and canceller (chaos mode does not split datagrams)
    Address peer_;
    bool connected_ = false, broadcast_ = false;
    bool ipv6_only_ = false; // an IPv6 socket that cannot reach IPv4 (IPV6_V6ONLY, or bound to an IPv6 address)
    int family_ = AF_UNSPEC;
    std::optional<bool> dual_stack_;
};

} // namespace greet

namespace std {
template <> struct is_error_code_enum<greet::errc> : true_type {};
} // namespace std

// ---------------------------------------------------------------------------
// Internals.
namespace greet {
namespace detail {

using Clock = std::chrono::steady_clock;
constexpr Clock::time_point no_deadline = Clock::time_point::max();
constexpr std::size_t chunk = 65536;     // how much a buffered read asks the OS for
constexpr std::size_t stack_read = 4096; // receives up to this size read onto the stack

// How many bytes may hold a line of max_bytes and its "\r\n".
constexpr std::size_t line_window(std::size_t max_bytes) noexcept {
    return max_bytes > SIZE_MAX - 2 ? SIZE_MAX : max_bytes + 2;
}

// The text of every error: "<op> <endpoint>: <NAME> (<OS text>): <note or hint>".
struct ErrorInfo {
    std::errc code;
    const char* name;
    const char* text; // used when the OS has none (Wine's Winsock, for one)
    const char* hint;
};
inline const ErrorInfo* find_error_info(std::error_code code) noexcept {
    static const ErrorInfo table[] = {
        {std::errc::address_in_use, "EADDRINUSE", "Address already in use",
         "another program is listening on this port"},
        {std::errc::permission_denied, "EACCES", "Permission denied",
         "ports below 1024 need administrator rights; use a port from 1024 to 65535"},
        {std::errc::connection_refused, "ECONNREFUSED", "Connection refused", "is the server running?"},
        {std::errc::timed_out, "ETIMEDOUT", "Connection timed out", "the other side did not answer in time"},
        {std::errc::address_not_available, "EADDRNOTAVAIL", "Cannot assign requested address",
         "this machine has no such address; use \"localhost\", or \"\" for every interface"},
        {std::errc::connection_reset, "ECONNRESET", "Connection reset by peer",
         "the peer closed the connection abruptly"},
        {std::errc::connection_aborted, "ECONNABORTED", "Connection aborted",
         "the connection was dropped before it could be used"},
        {std::errc::broken_pipe, "EPIPE", "Broken pipe", "the peer has closed the connection"},
        {std::errc::network_unreachable, "ENETUNREACH", "Network is unreachable", "check the address and the network"},
        {std::errc::host_unreachable, "EHOSTUNREACH", "No route to host", "check the address and the network"},
        {std::errc::address_family_not_supported, "EAFNOSUPPORT", "Address family not supported",
         "this machine lacks that IP version"},
        {std::errc::too_many_files_open, "EMFILE", "Too many open files",
         "the process is out of descriptors; close sockets no longer in use"},
        {std::errc::too_many_files_open_in_system, "ENFILE", "Too many open files in system",
         "the system is out of descriptors"},
        {std::errc::no_buffer_space, "ENOBUFS", "No buffer space available", nullptr},
        {std::errc::resource_unavailable_try_again, "EAGAIN", "Resource temporarily unavailable", nullptr},
        {std::errc::not_enough_memory, "ENOMEM", "Cannot allocate memory", nullptr},
        {std::errc::not_connected, "ENOTCONN", "Not connected", "connect first, or the socket was closed"},
        {std::errc::already_connected, "EISCONN", "Already connected", "close() first"},
        {std::errc::invalid_argument, "EINVAL", "Invalid argument", nullptr},
        {std::errc::message_size, "EMSGSIZE", "Message too long", nullptr},
        {std::errc::illegal_byte_sequence, "EILSEQ", "Illegal byte sequence", nullptr},
        {std::errc::bad_file_descriptor, "EBADF", "Bad file descriptor", nullptr},
        {std::errc::no_such_file_or_directory, "ENOENT", "No such file or directory",
         "no socket at this path: is the server running, and is the path right?"},
        {std::errc::not_supported, "ENOTSUP", "Operation not supported", nullptr},
        {std::errc::operation_canceled, "ECANCELED", "Operation canceled", "the server is stopping"},
    };
    if (code.category() != std::system_category() && code.category() != std::generic_category()) return nullptr;
    for (const ErrorInfo& info : table)
        if (code == info.code) return &info;
    return nullptr;
}

inline std::string describe(std::string_view op, std::string_view endpoint, std::error_code code,
                            std::string_view note) {
    std::string text = code.message();
    const ErrorInfo* info = find_error_info(code);
    if (info && (text.empty() || text.rfind("Unknown error", 0) == 0)) text = info->text;
    std::string out(op);
    if (!endpoint.empty()) out.append(" ").append(endpoint);
    out += ": ";
    const char* name = info ? info->name : resolver_error_name(code);
    if (name)
        out.append(name).append(" (").append(text).append(")");
    else
        out += text;
    if (note.empty() && info && info->hint) note = info->hint;
    if (!note.empty()) out.append(": ").append(note);
    return out;
}

// The words of the last failure on this thread: what a throwing form throws and
// last_error_message() returns.
struct Failure {
    std::error_code code;
    std::string message;
    std::size_t offset = 0; // a Utf8Error's
    bool resolve = false;   // a ResolveError's
};
inline Failure& last_failure() noexcept {
    static thread_local Failure failure;
    return failure;
}
// The one place a failure is recorded: ec and its words. Returns false, so that
// `return fail(ec, ...)` ends a step that reports success as true.
inline bool fail(std::error_code& ec, std::string_view op, std::string_view endpoint, std::error_code code,
                 std::string_view note = {}) noexcept {
    Failure& failure = last_failure();
    failure.code = code;
    failure.offset = 0;
    failure.resolve = false;
#if GREET_SOCKET_EXCEPTIONS
    try {
        failure.message = describe(op, endpoint, code, note);
    } catch (...) { // no memory for the words: the code still tells
        failure.message.clear();
    }
#else
    failure.message = describe(op, endpoint, code, note);
#endif
    ec = code;
    return false;
}
inline bool fail_argument(std::error_code& ec, std::string_view op, std::string_view note) noexcept {
    return fail(ec, op, {}, std::make_error_code(std::errc::invalid_argument), note);
}
inline bool fail_utf8(std::error_code& ec, std::string_view op, std::string_view endpoint, std::size_t offset,
                      std::string_view note) noexcept {
    fail(ec, op, endpoint, std::make_error_code(std::errc::illegal_byte_sequence), note);
    last_failure().offset = offset;
    return false;
}

// Runs the body of an error-code call, which is noexcept: an allocation that fails inside
// it is ENOMEM, never std::terminate.
template <class F> auto guarded(std::error_code& ec, const char* op, F&& body) noexcept -> decltype(body()) {
#if GREET_SOCKET_EXCEPTIONS
    try {
        return body();
    } catch (const std::system_error& error) { // a mutex, say
        fail(ec, op, {}, error.code());
    } catch (...) { // std::bad_alloc, std::length_error
        fail(ec, op, {}, std::make_error_code(std::errc::not_enough_memory), "out of memory");
    }
    if constexpr (!std::is_void_v<decltype(body())>) return {};
#else
    (void)ec, (void)op;
    return body();
#endif
}

// One step of RFC 3629 decoding (Unicode Table 3-7). On failure, length is the maximal
// subpart of the ill-formed sequence, which sanitize replaces with one U+FFFD.
struct Utf8Step {
    std::size_t length;
    char32_t code_point;
    bool valid;
    bool truncated; // ill-formed only because the input ended: more bytes could complete it
};
inline Utf8Step utf8_step(const unsigned char* p, std::size_t n) noexcept {
    const unsigned char lead = p[0];
    if (lead < 0x80) return {1, lead, true, false};
    std::size_t need = 0;
    char32_t cp = 0;
    unsigned char low = 0x80, high = 0xBF; // the valid range of the second byte
    if (lead >= 0xC2 && lead <= 0xDF) {
        need = 1, cp = lead & 0x1Fu;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        need = 2, cp = lead & 0x0Fu;
        if (lead == 0xE0)
            low = 0xA0; // no overlong forms
        else if (lead == 0xED)
            high = 0x9F; // no surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        need = 3, cp = lead & 0x07u;
        if (lead == 0xF0)
            low = 0x90; // no overlong forms
        else if (lead == 0xF4)
            high = 0x8F; // nothing past U+10FFFF
    } else {
        return {1, 0, false, false};
    }
    for (std::size_t i = 1; i <= need; ++i) {
        if (i >= n) return {i, 0, false, true};
        const unsigned char byte = p[i];
        if (byte < low || byte > high) return {i, 0, false, false};
        cp = (cp << 6) | (byte & 0x3Fu);
        low = 0x80, high = 0xBF;
    }
    return {need + 1, cp, true, false};
}

// User input as it goes into a message: control bytes and bytes that are not UTF-8 as
// \xNN, so a NUL cannot cut the message short and the text stays valid UTF-8.
inline std::string printable(std::string_view text) {
    const auto plain = [](char c) { return c >= 0x20 && c < 0x7F; };
    if (std::all_of(text.begin(), text.end(), plain)) return std::string(text); // host names, nearly always
    std::string out;
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    for (std::size_t i = 0; i < text.size();) {
        const Utf8Step step = utf8_step(p + i, text.size() - i);
        if (step.valid && p[i] >= 0x20 && p[i] != 0x7F) {
            out.append(text.data() + i, step.length);
            i += step.length;
            continue;
        }
        const char* digits = "0123456789ABCDEF";
        out.append({'\\', 'x', digits[p[i] >> 4], digits[p[i] & 15]});
        ++i;
    }
    return out;
}

// Brackets around an IPv6 literal are how people write it next to a port; drop them.
inline std::string host_text(std::string_view host) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    return std::string(host);
}

inline std::string ms_text(Timeout timeout) {
    return std::to_string(timeout.value_or(std::chrono::milliseconds(0)).count()) + " ms";
}

// A timeout too long to add to now() means no deadline.
inline Clock::time_point deadline_after(Timeout timeout) noexcept {
    if (!timeout) return no_deadline;
    const Clock::time_point now = Clock::now();
    if (*timeout >= std::chrono::duration_cast<std::chrono::milliseconds>(no_deadline - now)) return no_deadline;
    return now + *timeout;
}

// "host:port" for messages; "" (every interface) shows as "*".
inline std::string endpoint_text(std::string_view host, std::uint16_t port) {
    return host.empty() ? "*:" + std::to_string(port) : Address{printable(host_text(host)), port}.to_string();
}

// A Unix-domain name is as long as its text: a path with its NUL, an abstract name (a
// leading NUL) without one.
inline socklen_t sockaddr_length(const sockaddr_storage& storage) noexcept {
    if (storage.ss_family != AF_UNIX) return storage.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    const char* name = reinterpret_cast<const sockaddr_un&>(storage).sun_path;
    const std::size_t room = sizeof(sockaddr_un::sun_path);
    const std::size_t length = name[0] ? ::strnlen(name, room) + 1 : 1 + ::strnlen(name + 1, room - 1);
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + std::min(length, room));
}
// "/run/app.sock" for messages; an abstract name as "@name", as ss(8) shows it.
inline std::string unix_text(std::string_view path) {
    if (!path.empty() && path[0] == '\0') return "@" + printable(path.substr(1));
    return printable(path);
}
// What a failure to open a Unix-domain socket means where the generic hint would mislead.
inline std::string unix_note(std::error_code code) {
    if (code != std::errc::address_family_not_supported) return {};
    return "this system has no Unix-domain sockets (Windows has them from 10 version 1803; Wine 8 lacks them)";
}
// A Unix-domain address, checked before any system call: the OS would cut a long path
// short or refuse it with a bare EINVAL.
inline bool unix_address(std::string_view path, const char* op, sockaddr_storage& out, std::error_code& ec) {
    const std::string where = unix_text(path);
    const auto invalid = std::make_error_code(std::errc::invalid_argument);
    const std::size_t room =
        sizeof(sockaddr_un::sun_path) - 1; // a path needs its NUL; an abstract name its leading one
    const bool abstract = !path.empty() && path[0] == '\0';
    if (path.empty() || (abstract && path.size() == 1))
        return fail(ec, op, "\"\"", invalid, "a Unix-domain socket needs a path");
    if (abstract && !abstract_names)
        return fail(ec, op, where, invalid, "abstract names (a leading NUL byte) exist on Linux only; use a path");
    if (path.size() > room + (abstract ? 1 : 0))
        return fail(ec, op, where, invalid,
                    "the path is " + std::to_string(path.size()) + " bytes; this OS allows " + std::to_string(room) +
                        " (use a shorter folder, such as one under /tmp or $XDG_RUNTIME_DIR)");
    if (path.find('\0', abstract ? 1 : 0) != std::string_view::npos)
        return fail(ec, op, where, invalid,
                    abstract ? "an abstract name holds no NUL byte after its first" : "a path holds no NUL byte");
    out = sockaddr_storage{};
    auto& un = reinterpret_cast<sockaddr_un&>(out);
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, path.data(), path.size());
    return true;
}

// A numeric address ("127.0.0.1", "::1") with its port, parsed in place: the resolver
// would parse it too, after thousands of instructions and a few allocations of its own.
inline bool parse_numeric(const std::string& name, std::uint16_t port, sockaddr_storage& out) noexcept {
    auto& in4 = reinterpret_cast<sockaddr_in&>(out);
    auto& in6 = reinterpret_cast<sockaddr_in6&>(out);
    if (::inet_pton(AF_INET, name.c_str(), &in4.sin_addr) == 1) {
        in4.sin_family = AF_INET;
        in4.sin_port = htons(port);
        return true;
    }
    if (::inet_pton(AF_INET6, name.c_str(), &in6.sin6_addr) == 1) {
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(port);
        return true;
    }
    return false;
}

// The addresses to try, in the resolver's order, port included, each once.
inline std::vector<sockaddr_storage> resolve(std::string_view op, std::string_view endpoint, std::string_view host,
                                             std::uint16_t port, std::error_code& ec) {
    start_networking();
    const auto fail_resolve = [&](std::error_code code, std::string_view note) {
        fail(ec, op, endpoint, code, note);
        last_failure().resolve = true;
        return std::vector<sockaddr_storage>();
    };
    const std::string name = host_text(host);
    if (name.find('\0') != std::string::npos)
        return fail_resolve(std::make_error_code(std::errc::invalid_argument), "the host name holds a NUL byte");
    std::vector<sockaddr_storage> out(1);
    if (parse_numeric(name, port, out[0])) return out;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV;
    const std::string service = std::to_string(port);
    addrinfo* list = nullptr;
    const int rc = ::getaddrinfo(name.c_str(), service.c_str(), &hints, &list);
    if (rc != 0 || list == nullptr) return fail_resolve(resolver_error(rc), "is the host name right?");
    struct Free {
        void operator()(addrinfo* p) const noexcept { ::freeaddrinfo(p); }
    };
    const std::unique_ptr<addrinfo, Free> owner(list);
    out.clear();
    for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
        sockaddr_storage address{};
        std::memcpy(&address, ai->ai_addr, std::min(sizeof address, static_cast<std::size_t>(ai->ai_addrlen)));
        // A name listed twice (two lines of a hosts file) must not bind its address twice.
        const auto same = [&](const sockaddr_storage& seen) {
            return std::memcmp(&seen, &address, sizeof address) == 0;
        };
        if (std::none_of(out.begin(), out.end(), same)) out.push_back(address);
    }
    return out;
}

// RFC 8305 section 4: the families alternate, the resolver's first family first.
inline std::vector<std::size_t> interleave(const std::vector<sockaddr_storage>& addresses) {
    std::vector<std::size_t> first, other, order;
    for (std::size_t i = 0; i < addresses.size(); ++i)
        (addresses[i].ss_family == addresses[0].ss_family ? first : other).push_back(i);
    for (std::size_t i = 0; i < first.size() || i < other.size(); ++i) {
        if (i < first.size()) order.push_back(first[i]);
        if (i < other.size()) order.push_back(other[i]);
    }
    return order;
}
// Which failure tells most about why nobody answered: a refusal (a live host, no server)
// over an unreachable network over anything else over silence.
inline int telling(std::error_code code) noexcept {
    if (!code) return 0;
    if (code == std::errc::timed_out) return 1;
    if (code == std::errc::connection_refused) return 4;
    if (code == std::errc::network_unreachable || code == std::errc::host_unreachable) return 3;
    return 2;
}
inline bool set_option(native_handle_type s, int level, int name, int value, std::error_code& err) noexcept {
    if (::setsockopt(s, level, name, reinterpret_cast<const char*>(&value), sizeof value) == 0) return true;
    return err = os_error(last_error()), false;
}

// Dotted decimal by hand: inet_ntop formats through sprintf, about 1,700 instructions.
inline char* ipv4_text(const unsigned char* b, char* out) noexcept {
    for (int i = 0; i < 4; ++i) {
        if (i > 0) *out++ = '.';
        const unsigned v = b[i];
        if (v >= 100) *out++ = static_cast<char>('0' + v / 100);
        if (v >= 10) *out++ = static_cast<char>('0' + v / 10 % 10);
        *out++ = static_cast<char>('0' + v % 10);
    }
    *out = '\0';
    return out;
}

inline Address to_address(const sockaddr_storage& storage) {
    if (storage.ss_family == AF_UNIX) { // an unnamed socket's name is empty, and so all zeros here
        const char* name = reinterpret_cast<const sockaddr_un&>(storage).sun_path;
        const std::size_t room = sizeof(sockaddr_un::sun_path);
        const std::size_t length = name[0] ? ::strnlen(name, room) : name[1] ? 1 + ::strnlen(name + 1, room - 1) : 0;
        return Address{std::string(name, length), 0, true};
    }
    char text[64] = {};
    std::uint16_t port = 0;
    if (storage.ss_family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(storage);
        const unsigned char* b = reinterpret_cast<const unsigned char*>(&in6.sin6_addr);
        port = ntohs(in6.sin6_port);
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (std::memcmp(b, mapped, sizeof mapped) == 0) // ::ffff:a.b.c.d is an IPv4 peer
            ipv4_text(b + 12, text);
        else
            ::inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
        if (in6.sin6_scope_id != 0)
            return Address{std::string(text) + "%" + scope_name(in6.sin6_scope_id), port}; // fe80::1%eth0
    } else if (storage.ss_family == AF_INET) {
        const auto& in4 = reinterpret_cast<const sockaddr_in&>(storage);
        port = ntohs(in4.sin_port);
        ipv4_text(reinterpret_cast<const unsigned char*>(&in4.sin_addr), text);
    }
    return Address{text, port};
}

inline Address socket_address(native_handle_type s, bool peer, const char* op, std::string_view endpoint,
                              std::error_code& ec) {
    sockaddr_storage storage{};
    socklen_t length = sizeof storage;
    sockaddr* addr = reinterpret_cast<sockaddr*>(&storage);
    int rc = peer ? ::getpeername(s, addr, &length) : ::getsockname(s, addr, &length);
    if (rc != 0) return fail(ec, op, endpoint, os_error(last_error())), Address();
    return to_address(storage);
}

// What Server::stop(), serve()'s finished handlers and a Canceller wake pollers with: a
// UDP socket on 127.0.0.1 connected to itself. A byte sent to it makes every poll() on it
// return; one mechanism on every platform, and send() is async-signal-safe.
inline Socket open_wake_socket(const char* op, std::string_view endpoint, const char* purpose, std::error_code& ec) {
    Socket wake(open_native(AF_INET, SOCK_DGRAM));
    sockaddr_in self{};
    self.sin_family = AF_INET;
    self.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof self;
    sockaddr* address = reinterpret_cast<sockaddr*>(&self);
    if (wake == no_socket || ::bind(wake, address, length) != 0 || ::getsockname(wake, address, &length) != 0 ||
        ::connect(wake, address, length) != 0)
        return fail(ec, op, endpoint, os_error(last_error()), purpose), Socket();
    set_blocking(wake, false);
    return wake;
}
// Reads every byte a wake socket holds.
inline void drain(native_handle_type wake) noexcept {
    char bytes[64];
    while (::recv(wake, bytes, sizeof bytes, 0) > 0) {}
}
// Sends the byte that wakes every poll() on a wake socket, leaving errno as it was (the
// caller may be a signal handler). A full socket is awake already.
inline void wake_up(native_handle_type wake) noexcept {
    const int saved = last_error();
    const char byte = 0;
    (void)::send(wake, &byte, 1, 0);
    set_last_error(saved);
}

struct CancelState {
    std::atomic<bool> cancelled{false};
    Socket wake; // readable from cancel() to reset(): every poll() on it returns
};
// Server::serve's hold on one connection, shared with its Client wherever the handler
// moves it. The cut-off fails every later call (the flag) and wakes a blocked one by
// shutting the socket down: a handler's socket stays blocking and pays no poll(), which
// waiting on a Canceller's wake socket would cost. shutdown() ends the connection, which
// serve() means to; a Canceller keeps it.
struct CutOff {
    std::mutex lock;
    std::atomic<bool> on{false};
    native_handle_type socket = no_socket; // the Client's, while it is open
    void cut() noexcept {
        std::lock_guard<std::mutex> hold(lock);
        on.store(true);
        if (socket != no_socket) interrupt_native(socket);
    }
};

// Chaos mode: a splitmix64 state per socket; the next piece size is 1 to 16 bytes.
inline std::uint64_t chaos_next(std::uint64_t& state) noexcept {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}
inline std::uint64_t chaos_state(std::uint64_t seed) noexcept { return chaos_next(seed) | 1; } // never 0 (off)
// The sending direction's state, drawn from the receiving one's (0 stays off).
inline std::uint64_t chaos_send_state(std::uint64_t recv_state) noexcept {
    return recv_state ? chaos_state(recv_state) : 0;
}
inline std::size_t chaos_piece(std::uint64_t& state, std::size_t n) noexcept {
    if (state == 0 || n <= 1) return n;
    return std::min<std::size_t>(n, 1 + static_cast<std::size_t>(chaos_next(state) % 16));
}
// GREET_SOCKET_CHAOS=<seed>: each new socket gets a state from the seed and its place in
// the order sockets were made, so a single-threaded test replays exactly.
inline std::uint64_t chaos_from_environment() noexcept {
    static const char* const text = std::getenv("GREET_SOCKET_CHAOS");
    static std::atomic<std::uint64_t> sockets{0};
    if (text == nullptr || *text == '\0') return 0;
    return chaos_state(std::strtoull(text, nullptr, 10) + sockets.fetch_add(1));
}

// --- The system calls. Each returns what the OS returns and, on failure, the OS's error
// in err; a call a signal interrupted is retried here and nowhere else. The policy
// around them (timeouts, cancelling, the words of an error) belongs to their callers.

// True when the failed call should be retried; otherwise err holds its error.
inline bool retry(std::error_code& err) noexcept {
    const int e = last_error();
    if (interrupted(e)) return true;
    err = os_error(e);
    return false;
}
inline bool would_block(const std::error_code& err) noexcept {
    return err.category() == std::system_category() && would_block(err.value());
}

inline Socket open_socket(int family, int type, std::error_code& err) noexcept {
    Socket s(open_native(family, type));
    if (s == no_socket) err = os_error(last_error());
    return s;
}
inline bool bind_to(native_handle_type s, const sockaddr_storage& address, std::error_code& err) noexcept {
    if (::bind(s, reinterpret_cast<const sockaddr*>(&address), sockaddr_length(address)) == 0) return true;
    return err = os_error(last_error()), false;
}
inline bool listen_on(native_handle_type s, int backlog, std::error_code& err) noexcept {
    if (::listen(s, backlog) == 0) return true;
    return err = os_error(last_error()), false;
}
// A connected socket, or none with err set.
inline Socket accept_from(native_handle_type listener, sockaddr_storage& peer, std::error_code& err) noexcept {
    for (;;) {
        socklen_t length = sizeof peer;
        const native_handle_type s = accept_native(listener, reinterpret_cast<sockaddr*>(&peer), &length);
        if (s != no_socket || !retry(err)) return Socket(s);
    }
}
// Never retried: an interrupted connect goes on in the background, so *pending is set
// for it as for a non-blocking socket's connect, and the caller waits for POLLOUT.
inline bool connect_to(native_handle_type s, const sockaddr_storage& address, bool* pending,
                       std::error_code& err) noexcept {
    *pending = false;
    if (::connect(s, reinterpret_cast<const sockaddr*>(&address), sockaddr_length(address)) == 0) return true;
    const int e = last_error();
    *pending = in_progress(e);
    if (!*pending) err = os_error(e);
    return false;
}
// How a connect that was pending ended: its error, if any.
inline std::error_code connect_result(native_handle_type s) noexcept {
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(s, SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&error), &length) != 0)
        return os_error(last_error());
    return error ? os_error(error) : std::error_code();
}
inline long recv_some(native_handle_type s, char* into, std::size_t n, std::error_code& err) noexcept {
    for (;;) {
        const auto got = ::recv(s, into, static_cast<io_size>(std::min<std::size_t>(n, INT_MAX)), 0);
        if (got >= 0 || !retry(err)) return static_cast<long>(got);
    }
}
// a, then b, in one system call (Winsock counts in int: at most INT_MAX bytes).
inline long send_some(native_handle_type s, std::string_view a, std::string_view b, std::error_code& err) noexcept {
    a = a.substr(0, INT_MAX);
    b = b.substr(0, INT_MAX - a.size());
    for (;;) {
        const long sent = send_two(s, a.data(), a.size(), b.data(), b.size());
        if (sent >= 0 || !retry(err)) return sent;
    }
}
inline long recv_datagram(native_handle_type s, char* into, std::size_t n, sockaddr_storage* from, bool* cut,
                          std::error_code& err) noexcept {
    for (;;) {
        const long got = recv_datagram_native(s, into, n, from, cut);
        if (got >= 0 || !retry(err)) return got;
    }
}
inline long send_datagram(native_handle_type s, std::string_view bytes, const sockaddr_storage* to,
                          std::error_code& err) noexcept {
    const sockaddr* address = reinterpret_cast<const sockaddr*>(to);
    for (;;) {
        const auto sent = ::sendto(s, bytes.data(), static_cast<io_size>(bytes.size()), send_flags, address,
                                   to ? sockaddr_length(*to) : 0);
        if (sent >= 0 || !retry(err)) return static_cast<long>(sent);
    }
}
// Waits until one of fds is ready or the deadline passes: false on time-out, or with err
// set when poll() fails. Readiness includes errors and hang-ups: the next call reports them.
inline bool wait_any(pollfd_type* fds, std::size_t count, Clock::time_point deadline, std::error_code& err) noexcept {
    for (;;) {
        int ms = -1;
        if (deadline != no_deadline) {
            auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
            ms = static_cast<int>(std::clamp<decltype(left)>(left, 0, INT_MAX));
        }
        const int rc = poll_native(fds, count, ms);
        if (rc > 0) return true;
        if (rc == 0 && ms >= 0 && Clock::now() >= deadline) return false;
        if (rc < 0 && !retry(err)) return false; // rc == 0 early (a coarse clock): wait out the rest
    }
}
// Waits for s, and for waker (if any) to become readable.
inline bool wait(native_handle_type s, short events, native_handle_type waker, Clock::time_point deadline,
                 std::error_code& err) noexcept {
    pollfd_type fds[2]{};
    fds[0].fd = s;
    fds[0].events = events;
    fds[1].fd = waker;
    fds[1].events = POLLIN;
    return wait_any(fds, waker == no_socket ? 1 : 2, deadline, err);
}

inline void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

inline std::string fail_encode(std::error_code& ec, std::size_t index, const char* what, std::uint32_t unit) {
    char note[96];
    std::snprintf(note, sizeof note, "%s 0x%04X at index %zu", what, static_cast<unsigned>(unit), index);
    fail_utf8(ec, "utf8::encode", {}, index, note);
    return {};
}

template <class Unit> std::string encode_utf16(const Unit* units, std::size_t n, std::error_code& ec) {
    std::string out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint32_t u = static_cast<std::uint16_t>(units[i]);
        if (u >= 0xD800 && u <= 0xDBFF && i + 1 < n) {
            const std::uint32_t low = static_cast<std::uint16_t>(units[i + 1]);
            if (low >= 0xDC00 && low <= 0xDFFF) {
                append_utf8(out, static_cast<char32_t>(0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00)));
                ++i;
                continue;
            }
        }
        if (u >= 0xD800 && u <= 0xDFFF) return fail_encode(ec, i, "unpaired surrogate", u);
        append_utf8(out, static_cast<char32_t>(u));
    }
    return out;
}

template <class Unit> std::string encode_utf32(const Unit* units, std::size_t n, std::error_code& ec) {
    std::string out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        // Through the unsigned type: a negative wchar_t becomes a large value, never a scalar value.
        const auto u = static_cast<std::uint32_t>(static_cast<std::make_unsigned_t<Unit>>(units[i]));
        if (u > 0x10FFFF || (u >= 0xD800 && u <= 0xDFFF)) return fail_encode(ec, i, "not a Unicode scalar value:", u);
        append_utf8(out, static_cast<char32_t>(u));
    }
    return out;
}

// How many leading bytes of s are whole, valid characters; *ill_formed tells whether
// the scan stopped at bad bytes (rather than at an incomplete character at the end).
inline std::size_t utf8_prefix(std::string_view s, bool* ill_formed) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    std::size_t i = 0;
    *ill_formed = false;
    while (i < s.size()) {
        if (p[i] < 0x80) { // ASCII runs are the common case
            ++i;
            continue;
        }
        const Utf8Step step = utf8_step(p + i, s.size() - i);
        if (!step.valid) {
            *ill_formed = !step.truncated;
            break;
        }
        i += step.length;
    }
    return i;
}

inline std::string to_utf8(std::u16string_view text) {
    std::error_code ignored; // the console's text: an unpaired surrogate gives ""
    return utf8::encode(text, ignored);
}
inline std::u16string to_utf16(std::string_view utf8_text) {
    std::u16string out;
    std::error_code ignored; // sanitized text always decodes
    for (char32_t cp : utf8::decode(utf8::sanitize(utf8_text), ignored)) {
        if (cp >= 0x10000) {
            out += static_cast<char16_t>(0xD800 + ((cp - 0x10000) >> 10));
            out += static_cast<char16_t>(0xDC00 + ((cp - 0x10000) & 0x3FF));
        } else {
            out += static_cast<char16_t>(cp);
        }
    }
    return out;
}

inline Socket& Socket::operator=(Socket&& other) noexcept {
    if (this != &other) {
        reset();
        value_ = std::exchange(other.value_, no_socket);
    }
    return *this;
}
inline void Socket::reset() noexcept {
    if (value_ != no_socket) close_native(value_);
    value_ = no_socket;
}

inline Buffer& Buffer::operator=(Buffer&& other) noexcept {
    data = std::move(other.data);
    capacity = std::exchange(other.capacity, 0), begin = std::exchange(other.begin, 0),
    end = std::exchange(other.end, 0);
    return *this;
}
inline std::string Buffer::take(std::size_t n) {
    std::string out(bytes(), n);
    consume(n);
    return out;
}
inline char* Buffer::prepare(std::size_t n) {
    if (capacity - end >= n) return data.get() + end;
    if (size() + n <= capacity) { // room enough once the consumed front is dropped
        std::memmove(data.get(), bytes(), size());
    } else {
        std::size_t grown = std::max(capacity * 2, size() + n);
        std::unique_ptr<char[]> bigger(new char[grown]);
        if (size() > 0) std::memcpy(bigger.get(), bytes(), size());
        data = std::move(bigger);
        capacity = grown;
    }
    end -= begin;
    begin = 0;
    return data.get() + end;
}

inline SocketFile& SocketFile::operator=(SocketFile&& other) noexcept {
    if (this != &other) {
        reset();
        path_ = std::move(other.path_);
        identity_ = std::exchange(other.identity_, 0);
    }
    return *this;
}
inline void SocketFile::reset() noexcept {
    if (identity_ && file_kind(path_.c_str()) == 1 && file_identity(path_.c_str()) == identity_)
        remove_file(path_.c_str());
    identity_ = 0;
}

} // namespace detail

// ---------------------------------------------------------------------------
// Definitions, in the order of the declarations.

inline Error::Error(std::error_code code, const std::string& message) : std::system_error(code), message_(message) {}

inline Utf8Error::Utf8Error(std::size_t offset, const std::string& message)
    : Error(std::make_error_code(std::errc::illegal_byte_sequence), message), offset_(offset) {}

inline const std::error_category& error_category() noexcept {
    struct Category : std::error_category {
        const char* name() const noexcept override { return "greet"; }
        std::string message(int value) const override {
            switch (static_cast<errc>(value)) {
            case errc::peer_closed: return "the peer closed the connection";
            case errc::tls_protocol: return "TLS failed";
            case errc::tls_certificate: return "TLS certificate rejected";
            case errc::tls_truncated: return "TLS connection cut short";
            case errc::tls_setup: return "TLS setup failed";
            }
            return "unknown greet error";
        }
    };
    static const Category category;
    return category;
}
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

inline std::string Address::to_string() const {
    if (unix_domain) return host.empty() ? "(unnamed)" : detail::unix_text(host);
    std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    return out + ":" + std::to_string(port);
}
inline bool operator==(const Address& a, const Address& b) {
    return a.port == b.port && a.unix_domain == b.unix_domain && a.host == b.host;
}
inline bool operator!=(const Address& a, const Address& b) { return !(a == b); }
inline std::ostream& operator<<(std::ostream& out, const Address& address) { return out << address.to_string(); }

inline std::string last_error_message() { return detail::last_failure().message; }

inline std::uint16_t parse_port(std::string_view text, std::error_code& ec) noexcept {
    return detail::guarded(ec, "parse_port", [&]() -> std::uint16_t {
        ec.clear();
        unsigned long value = 0;
        bool ok = !text.empty() && text.size() <= 5;
        for (char c : text) {
            ok = ok && c >= '0' && c <= '9';
            value = value * 10 + static_cast<unsigned long>(c - '0');
        }
        if (!ok || value > 65535)
            return detail::fail_argument(ec, "parse_port \"" + detail::printable(text) + "\"",
                                         "a port is a whole number from 0 to 65535"),
                   0;
        return static_cast<std::uint16_t>(value);
    });
}

namespace utf8 {
inline std::string encode(std::u16string_view text, std::error_code& ec) noexcept {
    ec.clear();
    return detail::guarded(ec, "utf8::encode", [&] { return detail::encode_utf16(text.data(), text.size(), ec); });
}
inline std::string encode(std::u32string_view text, std::error_code& ec) noexcept {
    ec.clear();
    return detail::guarded(ec, "utf8::encode", [&] { return detail::encode_utf32(text.data(), text.size(), ec); });
}
inline std::string encode(std::wstring_view text, std::error_code& ec) noexcept {
    ec.clear();
    return detail::guarded(ec, "utf8::encode", [&] {
        if constexpr (sizeof(wchar_t) == 2)
            return detail::encode_utf16(text.data(), text.size(), ec);
        else
            return detail::encode_utf32(text.data(), text.size(), ec);
    });
}
inline std::u32string decode(std::string_view bytes, std::error_code& ec) noexcept {
    ec.clear();
    return detail::guarded(ec, "utf8::decode", [&]() -> std::u32string {
        std::u32string out;
        out.reserve(bytes.size());
        const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
        for (std::size_t i = 0; i < bytes.size();) {
            const detail::Utf8Step step = detail::utf8_step(p + i, bytes.size() - i);
            if (!step.valid) {
                char note[64];
                std::snprintf(note, sizeof note, "invalid UTF-8 at byte %zu (0x%02X)", i, static_cast<unsigned>(p[i]));
                return detail::fail_utf8(ec, "utf8::decode", {}, i, note), std::u32string();
            }
            out += step.code_point;
            i += step.length;
        }
        return out;
    });
}
inline bool is_valid(std::string_view bytes) noexcept {
    bool ill_formed = false;
    return detail::utf8_prefix(bytes, &ill_formed) == bytes.size();
}
inline std::string sanitize(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    for (std::size_t i = 0; i < bytes.size();) {
        const detail::Utf8Step step = detail::utf8_step(p + i, bytes.size() - i);
        if (step.valid)
            out.append(bytes.data() + i, step.length);
        else
            out += "\xEF\xBF\xBD";
        i += step.length;
    }
    return out;
}
} // namespace utf8

inline std::optional<std::string> input(std::string_view prompt) {
    if (!prompt.empty()) {
        if (!detail::write_console(prompt)) std::fwrite(prompt.data(), 1, prompt.size(), stdout);
        std::fflush(stdout);
    }
    std::string line;
    int c = 0;
    if (detail::read_console(line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
    }
    while ((c = std::fgetc(stdin)) != EOF && c != '\n') line += static_cast<char>(c);
    if (c == EOF && line.empty()) return std::nullopt;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

inline void print(std::string_view text) {
    const std::string line = std::string(text) + "\n";
    if (!detail::write_console(line))
        std::fwrite(line.data(), 1, line.size(), stdout); // one write: lines of threads never mix
    std::fflush(stdout);
}

// --- Canceller

inline Canceller::Canceller(std::error_code& ec) noexcept {
    detail::guarded(ec, "Canceller", [&] {
        ec.clear();
        auto state = std::make_shared<detail::CancelState>();
        state->wake = detail::open_wake_socket("Canceller", {}, "could not open the socket that cancel() signals", ec);
        if (!ec) state_ = std::move(state);
    });
}
inline void Canceller::cancel() noexcept {
    if (!state_) return; // moved from
    state_->cancelled.store(true);
    detail::wake_up(state_->wake);
}
inline void Canceller::reset() noexcept {
    if (!state_) return;
    state_->cancelled.store(false);
    detail::drain(state_->wake);
    if (state_->cancelled.load()) detail::wake_up(state_->wake); // a cancel() in between keeps its wake-up
}
inline bool Canceller::cancelled() const noexcept { return state_ && state_->cancelled.load(); }

// --- Client's transport: every step reports a failure through ec (and returns false or
// 0 with it); none throws but std::bad_alloc.

namespace detail {
inline Transport& Transport::operator=(Transport&& other) noexcept {
    if (this != &other) {
        close();
        socket = std::move(other.socket);
        endpoint = std::move(other.endpoint);
        timeout = other.timeout;
        cut_off = std::move(other.cut_off);
        canceller = std::move(other.canceller);
        chaos_recv = other.chaos_recv;
        chaos_send = other.chaos_send;
        tls = std::move(other.tls);
    }
    return *this;
}
// serve()'s hold changes under its lock, so that its cut-off never shuts down a
// descriptor the OS has since given to someone else.
inline void Transport::adopt(Socket connected) noexcept {
    std::unique_lock<std::mutex> hold;
    if (cut_off) hold = std::unique_lock<std::mutex>(cut_off->lock);
    socket = std::move(connected);
    if (cut_off) cut_off->socket = socket;
}
inline void Transport::close() noexcept {
    if (tls) tls->abandon(*this);
    tls.reset();
    if (!cut_off) return socket.reset();
    std::lock_guard<std::mutex> hold(cut_off->lock);
    cut_off->socket = no_socket;
    socket.reset();
}
inline bool Transport::fail(std::error_code& ec, const char* op, std::error_code code, std::string_view note) const {
    return detail::fail(ec, op, endpoint, code, note);
}
inline bool Transport::fail_timeout(std::error_code& ec, const char* op, std::string_view note) const {
    std::string text = "gave up after " + ms_text(timeout);
    if (!note.empty()) text.append("; ").append(note);
    return fail(ec, op, std::make_error_code(std::errc::timed_out), text);
}
inline bool Transport::begin(const char* op, std::error_code& ec) const {
    ec.clear();
    if (!is_open()) return fail(ec, op, std::make_error_code(std::errc::not_connected));
    return !(cut_off || canceller) || check_cancelled(op, ec);
}
inline bool Transport::cancelled() const noexcept {
    return (cut_off && cut_off->on.load()) || (canceller && canceller->cancelled.load());
}
// Once serve() has cut this connection off, or its Canceller was cancelled, every call
// fails with ECANCELED; note says how far a send got.
inline bool Transport::check_cancelled(const char* op, std::error_code& ec, std::string_view note) const {
    if (!cancelled()) return true;
    std::string text = cut_off && cut_off->on.load() ? "the server is stopping"
                                                     : "cancelled by its greet::Canceller; reset() it to go on";
    if (!note.empty()) text.append("; ").append(note);
    return fail(ec, op, std::make_error_code(std::errc::operation_canceled), text);
}
// Without a timeout or a canceller the socket blocks and each call is one system call;
// with either it is non-blocking and poll() runs only when the OS has nothing ready.
inline void Transport::apply_timeout() noexcept {
    if (is_open()) set_blocking(socket, !timeout && !canceller);
}
inline Transport::Deadline Transport::deadline() const noexcept { return deadline_after(timeout); }
// A call that reads in several turns ends at its deadline even while bytes keep coming:
// a trickle never leaves the OS with nothing ready, so the wait alone would never see it.
inline bool Transport::check_deadline(Deadline until, const char* op, std::error_code& ec) const {
    return until == no_deadline || Clock::now() < until || fail_timeout(ec, op);
}
// Waits until s is ready or the canceller fires (true), or the deadline passes (false;
// ec is set only when poll() itself failed). On Windows serve()'s cut-off aborts the
// poll itself (CancelIoEx): that failure is the cut-off, and the caller says so.
inline bool Transport::wait_on(native_handle_type s, short events, Deadline until, std::error_code& ec) const {
    std::error_code failed;
    const bool ready = wait(s, events, canceller ? native_handle_type(canceller->wake) : no_socket, until, failed);
    if (!failed || cancelled()) return ready || failed;
    return fail(ec, "poll", failed, "poll failed");
}
// Waits for this socket; false with ec set on a time-out (note: how far a send got), a
// cancel or a failed poll.
inline bool Transport::await(short events, Deadline until, const char* op, std::error_code& ec,
                             std::string_view note) const {
    if (!wait_on(socket, events, until, ec)) return ec ? false : fail_timeout(ec, op, note);
    return check_cancelled(op, ec, note);
}
inline std::size_t Transport::read_some(char* into, std::size_t n, Deadline until, const char* op,
                                        std::error_code& ec) {
    return tls ? tls->read_some(*this, into, n, until, op, ec) : read_plain(into, n, until, op, ec);
}
// One receive from the OS: the bytes read (0 once the peer has closed, or with ec set).
inline std::size_t Transport::read_plain(char* into, std::size_t n, Deadline until, const char* op,
                                         std::error_code& ec) {
    for (;;) {
        std::error_code failed;
        const long got = recv_some(socket, into, chaos_piece(chaos_recv, n), failed);
        if (got > 0) return static_cast<std::size_t>(got);
        if (got == 0) {
            check_cancelled(op, ec); // a connection serve() cut off reads as closed
            return 0;
        }
        if (!check_cancelled(op, ec)) return 0;
        if (!would_block(failed)) return fail(ec, op, failed), 0;
        if (!await(POLLIN, until, op, ec)) return 0;
    }
}
// Returns the bytes sent, on failure too.
inline std::size_t Transport::write(std::string_view first, std::string_view second, const char* op,
                                    std::error_code& ec) {
    ec.clear();
    if (!is_open()) return fail(ec, op, std::make_error_code(std::errc::not_connected)), 0;
    return tls ? tls->write(*this, first, second, op, ec) : write_plain(first, second, deadline(), op, ec);
}
// Sends first + second, looping over partial writes; one system call when the OS takes all.
inline std::size_t Transport::write_plain(std::string_view first, std::string_view second, Deadline until,
                                          const char* op, std::error_code& ec) {
    const std::size_t total = first.size() + second.size();
    std::size_t sent = 0;
    const auto progress = [&] { return "sent " + std::to_string(sent) + " of " + std::to_string(total) + " bytes"; };
    if (cancelled()) return check_cancelled(op, ec, progress()), 0;
    while (sent < total) {
        std::string_view a = sent < first.size() ? first.substr(sent) : second.substr(sent - first.size());
        std::string_view b = sent < first.size() ? second : std::string_view{};
        a = a.substr(0, chaos_piece(chaos_send, a.size()));
        b = chaos_send ? std::string_view{} : b;
        std::error_code failed;
        const long rc = send_some(socket, a, b, failed);
        if (rc < 0 && !would_block(failed)) return write_failed(failed, sent, total, op, ec);
        if (rc >= 0) sent += static_cast<std::size_t>(rc);
        if (sent == total || !check_cancelled(op, ec, progress())) break;
        // Small pieces (chaos mode) may never fill the socket buffer: the deadline holds all the same.
        if (rc >= 0 && until != no_deadline && Clock::now() >= until && !fail_timeout(ec, op, progress())) break;
        if (rc < 0 && !await(POLLOUT, until, op, ec, progress())) break;
    }
    return sent;
}
// A send the OS refused: the hint first (what happened), then how far the send got.
inline std::size_t Transport::write_failed(std::error_code code, std::size_t sent, std::size_t total, const char* op,
                                           std::error_code& ec) const {
    if (!check_cancelled(op, ec, "sent " + std::to_string(sent) + " of " + std::to_string(total) + " bytes"))
        return sent;
    std::string note;
    if (sent > 0) {
        const ErrorInfo* info = find_error_info(code);
        if (info && info->hint) note.append(info->hint).append("; ");
        note.append("sent " + std::to_string(sent) + " of " + std::to_string(total) + " bytes");
    }
    fail(ec, op, code, note);
    return sent;
}
} // namespace detail

// --- Client: the private steps every call is made of.

inline Client::Client(detail::Socket socket, const sockaddr_storage& peer)
    : io_(std::move(socket)), peer_(detail::to_address(peer)) {
    io_.endpoint = peer_.to_string();
    io_.chaos_recv = detail::chaos_from_environment();
    io_.chaos_send = detail::chaos_send_state(io_.chaos_recv);
}
// Appends one OS receive to the buffer, as large as the room it has (at least 64 KiB);
// the count read (0 at the end of the stream or with ec set).
inline std::size_t Client::fill(Deadline until, const char* op, std::error_code& ec) {
    char* into = buffer_.prepare(detail::chunk);
    const std::size_t n = io_.read_some(into, buffer_.capacity - buffer_.end, until, op, ec);
    buffer_.commit(n);
    return n;
}

// A result of n bytes, allocated before any byte is taken, so that failing costs none.
inline std::string Client::result_of(std::size_t n, const char* op, std::error_code& ec) const {
    std::string out;
    bool allocated = n <= out.max_size();
#if GREET_SOCKET_EXCEPTIONS
    try {
        if (allocated) out.resize(n);
    } catch (const std::bad_alloc&) { allocated = false; }
#else
    if (allocated) out.resize(n);
#endif
    if (!allocated)
        io_.fail(ec, op, std::make_error_code(std::errc::not_enough_memory),
                 "no memory for a result of " + std::to_string(n) + " bytes; the bytes stay unread");
    return out;
}
// Small receives land on the stack and large ones in the connection's buffer, so that a
// result holds the bytes received and no more, and nothing is zero-filled for max_bytes.
// A read onto the stack is kept in the buffer when its result cannot be allocated.
inline std::string Client::result_from(const char* bytes, std::size_t n, const char* op, std::error_code& ec) {
#if GREET_SOCKET_EXCEPTIONS
    try {
        return std::string(bytes, n);
    } catch (const std::bad_alloc&) {
        std::memcpy(buffer_.prepare(n), bytes, n); // the buffer is empty: bytes went to the stack only then
        buffer_.commit(n);
        io_.fail(ec, op, std::make_error_code(std::errc::not_enough_memory),
                 "no memory for the result; the bytes stay unread");
        return {};
    }
#else
    (void)op, (void)ec;
    return std::string(bytes, n);
#endif
}

// Fills out[0, size): first from the buffer, then from the OS. On any failure the
// unread_prefix and every byte that did arrive go back to the buffer, so the next
// receive returns them.
inline bool Client::read_rest(char* out, std::size_t size, std::string_view unread_prefix,
                              std::chrono::steady_clock::time_point until, const char* op, std::error_code& ec) {
    std::size_t have = std::min(size, buffer_.size());
    if (have > 0) {
        std::memcpy(out, buffer_.bytes(), have);
        buffer_.consume(have);
    }
    while (have < size) {
        if (have > 0 && !io_.check_deadline(until, op, ec)) break;
        const std::size_t got = io_.read_some(out + have, size - have, until, op, ec);
        if (ec) break;
        if (got == 0) {
            io_.fail(ec, op, make_error_code(errc::peer_closed),
                     "after " + std::to_string(have) + " of " + std::to_string(size) + " bytes; recv() returns them");
            break;
        }
        have += got;
    }
    if (!ec) return true;
    char* back = buffer_.prepare(unread_prefix.size() + have); // the buffer is empty here
    // Skipped when empty: memcpy with a null pointer (an empty view, an unallocated buffer) is UB.
    if (!unread_prefix.empty()) std::memcpy(back, unread_prefix.data(), unread_prefix.size());
    if (have > 0) std::memcpy(back + unread_prefix.size(), out, have);
    buffer_.commit(unread_prefix.size() + have);
    return false;
}

// Reads until the buffer holds a whole line; its length, '\n' included (0 with ec set).
// recv_line_view looks in the buffer itself first: a long stream of short lines costs one
// memchr per line (and recv_line one copy), and one system call per 64 to 128 KiB.
inline std::size_t Client::find_line(std::size_t max_bytes, const char* op, std::error_code& ec) {
    if (!io_.begin(op, ec)) return 0;
    if (max_bytes == 0) return detail::fail_argument(ec, op, "max_bytes must be at least 1"), 0;
    const auto until = io_.deadline();
    const std::size_t window = detail::line_window(max_bytes);
    std::size_t scanned = 0; // bytes searched for '\n'
    for (bool first = true;; first = false) {
        const std::size_t limit = std::min(buffer_.size(), window);
        // memchr on an empty, never-allocated buffer would pass it a null pointer (UB).
        const void* found = limit > scanned ? std::memchr(buffer_.bytes() + scanned, '\n', limit - scanned) : nullptr;
        if (found) return static_cast<std::size_t>(static_cast<const char*>(found) - buffer_.bytes()) + 1;
        scanned = limit;
        if (scanned >= window)
            return io_.fail(ec, op, std::make_error_code(std::errc::message_size),
                            "no line end within " + std::to_string(max_bytes) + " bytes; the bytes stay unread"),
                   0;
        if (!first && !io_.check_deadline(until, op, ec)) return 0;
        if (fill(until, op, ec) == 0) {
            if (ec) return 0;
            return io_.fail(ec, op, make_error_code(errc::peer_closed),
                            buffer_.size() ? "in the middle of a line; recv() returns its " +
                                    std::to_string(buffer_.size()) + " bytes"
                                           : std::string("no more lines")),
                   0;
        }
    }
}
// The length of the next line in the buffer, '\n' included, reading as needed (0 with ec
// set). The common case, small enough to inline: the line is already buffered (bytes are
// buffered only while the socket is open, and not with a canceller, which must see each
// call); find_line does the rest, checks included.
inline std::size_t Client::next_line(std::size_t max_bytes, std::error_code& ec) noexcept {
    ec.clear();
    const std::size_t ready =
        max_bytes == 0 || io_.canceller ? 0 : std::min(buffer_.size(), detail::line_window(max_bytes));
    const void* found = ready > 0 ? std::memchr(buffer_.bytes(), '\n', ready) : nullptr;
    if (found) return static_cast<std::size_t>(static_cast<const char*>(found) - buffer_.bytes()) + 1;
    return detail::guarded(ec, "recv_line", [&] { return find_line(max_bytes, "recv_line", ec); });
}
// The line of `taken` bytes at the buffer's front, without its "\n" or "\r\n"; or, when it
// is longer than max_bytes, nothing, with ec set and the line left unread.
inline std::string_view Client::front_line(std::size_t taken, std::size_t max_bytes, std::error_code& ec) noexcept {
    const char* text = buffer_.bytes();
    const std::size_t length = taken - 1 - (taken > 1 && text[taken - 2] == '\r');
    if (length <= max_bytes) return {text, length};
    detail::guarded(ec, "recv_line", [&] {
        io_.fail(ec, "recv_line", std::make_error_code(std::errc::message_size),
                 "a line of " + std::to_string(length) + " bytes, more than max_bytes " + std::to_string(max_bytes) +
                     "; the bytes stay unread");
    });
    return {};
}

// --- Client: the calls

// Happy Eyeballs (RFC 8305) inside a blocking connect: attempts on non-blocking sockets,
// one poll() over all of them (and the canceller), no thread. An attempt starts when the
// stagger since the last one has passed, or at once when none is running; every started
// one runs until one connects (it wins; the Race closes the rest) or the deadline passes.
class Client::Race {
public:
    Race(Client& client, const std::vector<sockaddr_storage>& addresses, const char* op)
        : client_(client), addresses_(addresses), op_(op), order_(detail::interleave(addresses)),
          failures_(addresses.size()), started_(addresses.size()) {}
    // The winner (and its index in *winner), or none: every address failed (see report),
    // or ec was set (a cancel, a failed poll).
    detail::Socket run(detail::Clock::time_point until, std::size_t* winner, std::error_code& ec) {
        const auto stagger = client_.stagger_;
        auto next_start = detail::Clock::now();
        for (;;) {
            const auto now = detail::Clock::now();
            if (now >= until && (next_ > 0 || !pending_.empty())) return time_out(), detail::Socket();
            const bool more = next_ < order_.size();
            if (more && (pending_.empty() || (stagger.count() > 0 && now >= next_start))) {
                next_start = now + stagger;
                if (start(order_[next_++])) return take(pending_.size() - 1, winner);
                continue;
            }
            if (pending_.empty()) return {};
            if (!wait(more && stagger.count() > 0 ? std::min(until, next_start) : until, ec)) return {};
            for (std::size_t i = pending_.size(); i-- > 0;)
                if (settle(i)) return take(i, winner);
        }
    }
    // Why every address failed: its code, and in what words for several addresses.
    std::error_code code() const {
        std::error_code best;
        for (std::size_t index : order_)
            if (detail::telling(failures_[index]) > detail::telling(best)) best = failures_[index];
        return best ? best : std::make_error_code(std::errc::timed_out);
    }
    std::string each() const {
        std::string out;
        for (std::size_t index : order_) {
            const detail::ErrorInfo* info = detail::find_error_info(failures_[index]);
            out.append(out.empty() ? "" : ", ").append(detail::to_address(addresses_[index]).to_string()).append(" ");
            out.append(!started_[index] ? "not tried" : info ? info->name : failures_[index].message());
        }
        return out;
    }

private:
    // Opens and starts one attempt: true when it connected at once (it is then last in
    // pending_); a failure is recorded, a pending attempt kept.
    bool start(std::size_t index) {
        started_[index] = true;
        std::error_code& failure = failures_[index];
        detail::Socket s = detail::open_socket(addresses_[index].ss_family, SOCK_STREAM, failure);
        if (failure || !client_.apply_options(s, failure)) return false;
        // One address and nothing to wait for: one blocking connect, as raw code makes.
        if (addresses_.size() > 1 || client_.io_.timeout || client_.io_.canceller) detail::set_blocking(s, false);
        bool waiting = false;
        const bool connected = detail::connect_to(s, addresses_[index], &waiting, failure);
        if (connected || waiting) pending_.push_back({std::move(s), index});
        return connected;
    }
    bool wait(detail::Clock::time_point until, std::error_code& ec) {
        if (detail::connect_check_ms >= 0)
            until = std::min(until, detail::Clock::now() + std::chrono::milliseconds(detail::connect_check_ms));
        fds_.assign(pending_.size() + 1, detail::pollfd_type{});
        for (std::size_t i = 0; i < pending_.size(); ++i) fds_[i].fd = pending_[i].socket, fds_[i].events = POLLOUT;
        const auto& canceller = client_.io_.canceller;
        fds_.back().fd = canceller ? native_handle_type(canceller->wake) : detail::no_socket;
        fds_.back().events = POLLIN;
        std::error_code failed;
        detail::wait_any(fds_.data(), pending_.size() + (canceller ? 1 : 0), until, failed);
        if (failed && !client_.io_.cancelled()) return client_.io_.fail(ec, "poll", failed, "poll failed");
        return client_.io_.check_cancelled(op_, ec);
    }
    // Attempt i: true when it connected; a failure is recorded and the attempt dropped.
    bool settle(std::size_t i) {
        const std::error_code result = detail::connect_result(pending_[i].socket);
        if (!result) return fds_[i].revents != 0; // the pending error is read even without an event (Windows)
        failures_[pending_[i].index] = result;
        pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
        return false;
    }
    void time_out() {
        for (const Attempt& attempt : pending_) failures_[attempt.index] = std::make_error_code(std::errc::timed_out);
        pending_.clear();
    }
    detail::Socket take(std::size_t i, std::size_t* winner) {
        *winner = pending_[i].index;
        return std::move(pending_[i].socket);
    }
    struct Attempt {
        detail::Socket socket;
        std::size_t index;
    };
    Client& client_;
    const std::vector<sockaddr_storage>& addresses_;
    const char* op_;
    std::vector<std::size_t> order_;
    std::vector<std::error_code> failures_;
    std::vector<bool> started_;
    std::vector<Attempt> pending_;
    std::vector<detail::pollfd_type> fds_;
    std::size_t next_ = 0;
};

inline void Client::connect(std::string_view host, std::uint16_t port, std::error_code& ec) noexcept {
    detail::guarded(ec, "connect", [&] {
        ec.clear();
        if (host.empty()) host = "localhost"; // as Python's connect(("", port)): this machine
        if (is_open())
            return (void)detail::fail(ec, "connect", detail::endpoint_text(host, port),
                                      std::make_error_code(std::errc::already_connected));
        io_.endpoint = detail::endpoint_text(host, port);
        host_ = host;
        if (!io_.check_cancelled("connect", ec)) return;
        const std::vector<sockaddr_storage> addresses = detail::resolve("connect", io_.endpoint, host, port, ec);
        if (!ec) connect_any(addresses, "connect", io_.deadline(), ec);
    });
}
// Races the addresses; on failure the error names each address's failure when there
// were several, and its code is the most telling of them.
inline void Client::connect_any(const std::vector<sockaddr_storage>& addresses, const char* op, Deadline until,
                                std::error_code& ec) {
    Race race(*this, addresses, op);
    std::size_t winner = 0;
    detail::Socket connected = race.run(until, &winner, ec);
    if (ec) return; // cancelled: every attempt closes, this Client stays unconnected
    if (connected != detail::no_socket) {
        const bool blocking = addresses.size() == 1 && !io_.timeout && !io_.canceller;
        use(std::move(connected), addresses[winner]);
        if (!blocking) io_.apply_timeout();
        return;
    }
    const std::error_code code = race.code();
    const char* hint = std::strcmp(op, "connect") == 0
        ? "no address answered; is the address right, and is the server calling accept()?"
        : "is the server calling accept()?";
    if (addresses.size() > 1) {
        const std::string where = io_.endpoint + ": " + race.each();
        if (code != std::errc::timed_out) return (void)detail::fail(ec, op, where, code);
        return (void)detail::fail(ec, op, where, code, "gave up after " + detail::ms_text(io_.timeout) + "; " + hint);
    }
    if (code == std::errc::timed_out) return (void)io_.fail_timeout(ec, op, hint);
    io_.fail(ec, op, code, addresses[0].ss_family == AF_UNIX ? detail::unix_note(code) : std::string());
}
inline void Client::use(detail::Socket connected, const sockaddr_storage& address) {
    peer_ = detail::to_address(address);
    io_.adopt(std::move(connected));
    buffer_ = detail::Buffer{};
    if (!io_.chaos_recv) {
        io_.chaos_recv = detail::chaos_from_environment();
        io_.chaos_send = detail::chaos_send_state(io_.chaos_recv);
    }
}

inline void Client::connect_unix(std::string_view path, std::error_code& ec) noexcept {
    detail::guarded(ec, "connect_unix", [&] {
        ec.clear();
        const std::string where = detail::unix_text(path);
        if (is_open())
            return (void)detail::fail(ec, "connect_unix", where, std::make_error_code(std::errc::already_connected));
        sockaddr_storage address{};
        if (!detail::unix_address(path, "connect_unix", address, ec)) return;
        io_.endpoint = where;
        host_.clear();
        const auto until = io_.deadline();
        // A full backlog fails a non-blocking connect with EAGAIN and offers nothing to poll
        // for: try again every 10 ms (a blocking connect waits in the kernel instead).
        for (;;) {
            if (!io_.check_cancelled("connect_unix", ec)) return;
            connect_any({address}, "connect_unix", until, ec);
            if (!detail::would_block(ec)) return;
            if (detail::Clock::now() >= until)
                return (void)io_.fail_timeout(ec, "connect_unix", "the server's queue of connections stayed full");
            std::error_code ignored; // a failed poll: the loop tries again
            const auto canceller = io_.canceller ? native_handle_type(io_.canceller->wake) : detail::no_socket;
            detail::wait(canceller, POLLIN, detail::no_socket,
                         std::min(until, detail::Clock::now() + std::chrono::milliseconds(10)), ignored);
        }
    });
}

inline std::size_t Client::send(std::string_view bytes, std::error_code& ec) noexcept {
    return detail::guarded(ec, "send", [&] { return io_.write(bytes, {}, "send", ec); });
}
inline std::size_t Client::send(std::u16string_view text, std::error_code& ec) noexcept {
    return detail::guarded(ec, "send", [&] {
        const std::string bytes = utf8::encode(text, ec);
        return ec ? 0 : io_.write(bytes, {}, "send", ec);
    });
}
inline std::size_t Client::send(std::u32string_view text, std::error_code& ec) noexcept {
    return detail::guarded(ec, "send", [&] {
        const std::string bytes = utf8::encode(text, ec);
        return ec ? 0 : io_.write(bytes, {}, "send", ec);
    });
}
inline std::size_t Client::send(std::wstring_view text, std::error_code& ec) noexcept {
    return detail::guarded(ec, "send", [&] {
        const std::string bytes = utf8::encode(text, ec);
        return ec ? 0 : io_.write(bytes, {}, "send", ec);
    });
}
#if defined(__cpp_char8_t)
inline std::size_t Client::send(std::u8string_view text, std::error_code& ec) noexcept {
    return send(std::string_view(reinterpret_cast<const char*>(text.data()), text.size()), ec);
}
#endif

inline std::size_t Client::send_line(std::string_view text, std::error_code& ec) noexcept {
    return detail::guarded(ec, "send_line", [&]() -> std::size_t {
        ec.clear();
        if (text.find('\n') != std::string_view::npos)
            return detail::fail_argument(ec, "send_line", "the text holds a '\\n'; send it as two lines"), 0;
        if (!text.empty() && text.back() == '\r')
            return detail::fail_argument(
                       ec, "send_line",
                       "the text ends in '\\r', which recv_line would take for part of the line's end"),
                   0;
        return io_.write(text, "\n", "send_line", ec);
    });
}

inline std::size_t Client::send_message(std::string_view payload, std::error_code& ec) noexcept {
    return detail::guarded(ec, "send_message", [&]() -> std::size_t {
        ec.clear();
        if (payload.size() > 0xFFFFFFFFu)
            return io_.fail(ec, "send_message", std::make_error_code(std::errc::message_size),
                            "a message holds less than 4 GiB"),
                   0;
        const auto n = static_cast<std::uint32_t>(payload.size());
        const char header[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                                static_cast<char>(n)};
        return io_.write(std::string_view(header, 4), payload, "send_message", ec);
    });
}

inline std::string Client::recv(std::size_t max_bytes, std::error_code& ec) noexcept {
    return detail::guarded(ec, "recv", [&]() -> std::string {
        if (!io_.begin("recv", ec)) return {};
        if (max_bytes == 0) return detail::fail_argument(ec, "recv", "max_bytes must be at least 1"), std::string();
        if (buffer_.size() == 0) {
            if (max_bytes <= detail::stack_read) {
                char bytes[detail::stack_read];
                const std::size_t n = io_.read_some(bytes, max_bytes, io_.deadline(), "recv", ec);
                return ec ? std::string() : result_from(bytes, n, "recv", ec);
            }
            if (fill(io_.deadline(), "recv", ec) == 0) return {};
        }
        return buffer_.take(std::min(max_bytes, buffer_.size()));
    });
}

inline std::size_t Client::recv_into(char* into, std::size_t max_bytes, std::error_code& ec) noexcept {
    return detail::guarded(ec, "recv_into", [&]() -> std::size_t {
        if (!io_.begin("recv_into", ec)) return 0;
        if (max_bytes == 0) return detail::fail_argument(ec, "recv_into", "max_bytes must be at least 1"), 0;
        if (buffer_.size() == 0) return io_.read_some(into, max_bytes, io_.deadline(), "recv_into", ec);
        const std::size_t n = std::min(max_bytes, buffer_.size());
        std::memcpy(into, buffer_.bytes(), n);
        buffer_.consume(n);
        return n;
    });
}

inline std::string Client::recv_text(std::size_t max_bytes, std::error_code& ec) noexcept {
    return detail::guarded(ec, "recv_text", [&]() -> std::string {
        if (!io_.begin("recv_text", ec)) return {};
        if (max_bytes < 4)
            return detail::fail_argument(ec, "recv_text", "max_bytes must be at least 4, the longest UTF-8 character"),
                   std::string();
        const auto until = io_.deadline();
        if (buffer_.size() == 0 &&
            max_bytes <= detail::stack_read) { // the tutorial's recv_text(1024) never needs the buffer
            char bytes[detail::stack_read];
            const std::size_t n = io_.read_some(bytes, max_bytes, until, "recv_text", ec);
            if (ec) return {};
            bool ill_formed = false;
            if (detail::utf8_prefix(std::string_view(bytes, n), &ill_formed) == n)
                return result_from(bytes, n, "recv_text", ec);
            std::memcpy(buffer_.prepare(n), bytes, n); // a character cut short or bad bytes: sorted out below
            buffer_.commit(n);
        }
        return text_from_buffer(max_bytes, until, ec);
    });
}
// recv_text's turns on the buffer: each returns, fails, or reads more (an incomplete
// character needs at most 3 more bytes).
inline std::string Client::text_from_buffer(std::size_t max_bytes, std::chrono::steady_clock::time_point until,
                                            std::error_code& ec) {
    for (bool first = true;; first = false) {
        bool ill_formed = false;
        const std::string_view ready(buffer_.bytes(), std::min(max_bytes, buffer_.size()));
        const std::size_t whole = detail::utf8_prefix(ready, &ill_formed);
        if (whole > 0) return buffer_.take(whole);
        if (ill_formed) {
            char note[112];
            std::snprintf(note, sizeof note,
                          "invalid UTF-8 (byte 0x%02X); read it with recv() or pass it through utf8::sanitize",
                          static_cast<unsigned>(static_cast<unsigned char>(ready[0])));
            return detail::fail_utf8(ec, "recv_text", io_.endpoint, 0, note), std::string();
        }
        if (!first && !io_.check_deadline(until, "recv_text", ec)) return {};
        const std::size_t held = buffer_.size();
        if (fill(until, "recv_text", ec) == 0) {
            if (ec || held == 0) return {};
            return detail::fail_utf8(
                       ec, "recv_text", io_.endpoint, 0,
                       "the peer closed the connection in the middle of a character; recv() returns its bytes"),
                   std::string();
        }
    }
}

inline std::string Client::recv_exact(std::size_t n, std::error_code& ec) noexcept {
    return detail::guarded(ec, "recv_exact", [&]() -> std::string {
        if (!io_.begin("recv_exact", ec)) return {};
        if (n == 0) return detail::fail_argument(ec, "recv_exact", "n must be at least 1"), std::string();
        std::string out = result_of(n, "recv_exact", ec);
        if (ec || !read_rest(out.data(), n, {}, io_.deadline(), "recv_exact", ec)) return {};
        return out;
    });
}

inline void Client::recv_exact_into(char* into, std::size_t n, std::error_code& ec) noexcept {
    detail::guarded(ec, "recv_exact_into", [&] {
        if (!io_.begin("recv_exact_into", ec)) return;
        if (n == 0) return (void)detail::fail_argument(ec, "recv_exact_into", "n must be at least 1");
        read_rest(into, n, {}, io_.deadline(), "recv_exact_into", ec);
    });
}

inline std::string Client::recv_message(std::size_t max_bytes, std::error_code& ec) noexcept {
    return detail::guarded(ec, "recv_message", [&]() -> std::string {
        if (!io_.begin("recv_message", ec)) return {};
        const auto until = io_.deadline();
        for (bool first = true; buffer_.size() < 4; first = false) {
            if (!first && !io_.check_deadline(until, "recv_message", ec)) return {};
            if (fill(until, "recv_message", ec) == 0)
                return ec ? std::string()
                          : (io_.fail(ec, "recv_message", make_error_code(errc::peer_closed),
                                      buffer_.size() ? "inside a message header; recv() returns its bytes"
                                                     : "no more messages"),
                             std::string());
        }
        const auto* h = reinterpret_cast<const unsigned char*>(buffer_.bytes());
        const std::size_t length =
            std::size_t{h[0]} << 24 | std::size_t{h[1]} << 16 | std::size_t{h[2]} << 8 | std::size_t{h[3]};
        if (length > max_bytes) // refused before allocating: a peer cannot make us reserve 4 GiB
            return io_.fail(ec, "recv_message", std::make_error_code(std::errc::message_size),
                            "the peer announced " + std::to_string(length) + " bytes, more than max_bytes " +
                                std::to_string(max_bytes)),
                   std::string();
        std::string out = result_of(length, "recv_message", ec);
        if (ec) return {};
        char header[4];
        std::memcpy(header, buffer_.bytes(), 4);
        buffer_.consume(4);
        if (!read_rest(out.data(), length, std::string_view(header, 4), until, "recv_message", ec)) return {};
        return out;
    });
}

inline std::string Client::recv_line(std::size_t max_bytes, std::error_code& ec) noexcept {
    std::string line;
    recv_line(line, max_bytes, ec);
    return line;
}

inline void Client::recv_line(std::string& line, std::size_t max_bytes, std::error_code& ec) noexcept {
    const std::size_t taken = next_line(max_bytes, ec);
    if (taken == 0) return;
    const std::string_view text = front_line(taken, max_bytes, ec);
    if (ec) return;
    // Sized before the line is taken, so that no memory for it leaves the line unread.
    if (line.size() != text.size() && !detail::guarded(ec, "recv_line", [&] { return line.resize(text.size()), true; }))
        return;
    if (!text.empty()) std::memcpy(line.data(), text.data(), text.size());
    buffer_.consume(taken);
}

inline std::string_view Client::recv_line_view(std::size_t max_bytes, std::error_code& ec) noexcept {
    const std::size_t taken = next_line(max_bytes, ec);
    if (taken == 0) return {};
    const std::string_view text = front_line(taken, max_bytes, ec);
    if (!ec) buffer_.consume(taken); // the bytes stay in place until the next receive
    return text;
}

inline void Client::set_timeout(Timeout timeout, std::error_code& ec) noexcept {
    ec.clear();
    if (timeout && timeout->count() < 0)
        return (void)detail::guarded(
            ec, "set_timeout", [&] { detail::fail_argument(ec, "set_timeout", "the timeout must not be negative"); });
    io_.timeout = timeout;
    io_.apply_timeout();
}

inline void Client::set_canceller(Canceller canceller) noexcept {
    io_.canceller = std::move(canceller.state_);
    io_.apply_timeout();
}

inline void Client::set_connect_stagger(std::chrono::milliseconds stagger) noexcept {
    stagger_ = std::max(stagger, std::chrono::milliseconds(0));
}

// Runs every option set so far on a new socket: false with failure set when one fails.
inline bool Client::apply_options(native_handle_type s, std::error_code& failure) const {
    for (const auto& option : options_)
        if ((failure = option.second(s))) return false;
    return true;
}
// Keeps apply for later connects (one per kind: the newest wins) and runs it now if open.
inline void Client::set_option(int key, std::function<std::error_code(native_handle_type)> apply, const char* op,
                               std::error_code& ec) {
    ec.clear();
    if (is_open())
        if (const std::error_code failed = apply(io_.socket)) return (void)io_.fail(ec, op, failed);
    const auto same = [key](const auto& option) { return option.first == key; };
    options_.erase(std::remove_if(options_.begin(), options_.end(), same), options_.end());
    options_.emplace_back(key, std::move(apply));
}
inline void Client::set_no_delay(bool on, std::error_code& ec) noexcept {
    detail::guarded(ec, "set_no_delay", [&] {
        set_option(
            1,
            [on](native_handle_type s) {
                std::error_code failed;
                detail::set_option(s, IPPROTO_TCP, detail::tcp_no_delay, on ? 1 : 0, failed);
                return failed;
            },
            "set_no_delay", ec);
    });
}
inline void Client::set_keep_alive(std::optional<KeepAlive> settings, std::error_code& ec) noexcept {
    detail::guarded(ec, "set_keep_alive", [&] {
        const KeepAlive k = settings.value_or(KeepAlive{});
        if (settings &&
            (k.idle.count() < 1 || k.interval.count() < 1 || k.count < 1 || k.idle.count() > 32767 ||
             k.interval.count() > 32767))
            return (void)detail::fail_argument(ec, "set_keep_alive",
                                               "idle and interval must be 1 to 32767 seconds, count at least 1");
        const int idle = static_cast<int>(k.idle.count()), interval = static_cast<int>(k.interval.count()),
                  count = k.count;
        set_option(
            2,
            [on = settings.has_value(), idle, interval, count](native_handle_type s) {
                const int e = detail::keep_alive_native(s, on, idle, interval, count);
                return e ? detail::os_error(e) : std::error_code();
            },
            "set_keep_alive", ec);
    });
}
inline void Client::set_send_buffer_size(int bytes, std::error_code& ec) noexcept {
    detail::guarded(ec, "set_send_buffer_size", [&] {
        if (bytes < 1)
            return (void)detail::fail_argument(ec, "set_send_buffer_size", "the size must be at least 1 byte");
        set_option(
            3,
            [bytes](native_handle_type s) {
                std::error_code failed;
                detail::set_option(s, SOL_SOCKET, SO_SNDBUF, bytes, failed);
                return failed;
            },
            "set_send_buffer_size", ec);
    });
}
inline void Client::set_receive_buffer_size(int bytes, std::error_code& ec) noexcept {
    detail::guarded(ec, "set_receive_buffer_size", [&] {
        if (bytes < 1)
            return (void)detail::fail_argument(ec, "set_receive_buffer_size", "the size must be at least 1 byte");
        set_option(
            4,
            [bytes](native_handle_type s) {
                std::error_code failed;
                detail::set_option(s, SOL_SOCKET, SO_RCVBUF, bytes, failed);
                return failed;
            },
            "set_receive_buffer_size", ec);
    });
}
inline void Client::set_linger(std::optional<std::chrono::seconds> linger, std::error_code& ec) noexcept {
    detail::guarded(ec, "set_linger", [&] {
        if (linger && (linger->count() < 0 || linger->count() > 32767))
            return (void)detail::fail_argument(ec, "set_linger", "the linger time must be 0 to 32767 seconds");
        set_option(
            5,
            [linger](native_handle_type s) {
                ::linger value{};
                value.l_onoff = linger ? 1 : 0;
                value.l_linger =
                    static_cast<decltype(value.l_linger)>(linger.value_or(std::chrono::seconds(0)).count());
                if (::setsockopt(s, SOL_SOCKET, SO_LINGER, reinterpret_cast<const char*>(&value), sizeof value) == 0)
                    return std::error_code();
                return detail::os_error(detail::last_error());
            },
            "set_linger", ec);
    });
}
inline void Client::set_socket_options(SocketOptions setup, std::error_code& ec) noexcept {
    detail::guarded(ec, "set_socket_options", [&] {
        ec.clear();
        const auto same = [](const auto& option) { return option.first == 6; };
        options_.erase(std::remove_if(options_.begin(), options_.end(), same), options_.end());
        options_.emplace_back(6,
                              [setup = std::move(setup)](native_handle_type s) { // a refusal fails that connect attempt
                                  std::error_code refused;
                                  if (setup) setup(s, refused);
                                  return refused;
                              });
    });
}

inline void Client::set_chaos(std::optional<std::uint64_t> seed) noexcept {
    io_.chaos_recv = seed ? detail::chaos_state(*seed) : 0;
    io_.chaos_send = detail::chaos_send_state(io_.chaos_recv);
}

inline void Client::shutdown_send(std::error_code& ec) noexcept {
    detail::guarded(ec, "shutdown_send", [&] {
        ec.clear();
        if (!is_open()) return (void)io_.fail(ec, "shutdown_send", std::make_error_code(std::errc::not_connected));
        if (io_.tls && !io_.tls->shutdown(io_, ec)) return;
        if (::shutdown(io_.socket, detail::shut_send) != 0)
            io_.fail(ec, "shutdown_send", detail::os_error(detail::last_error()));
    });
}

inline Address Client::local_address(std::error_code& ec) const noexcept {
    return detail::guarded(ec, "local_address", [&]() -> Address {
        ec.clear();
        if (!is_open()) return io_.fail(ec, "local_address", std::make_error_code(std::errc::not_connected)), Address();
        return detail::socket_address(io_.socket, false, "local_address", io_.endpoint, ec);
    });
}
inline Address Client::peer_address(std::error_code& ec) const noexcept {
    return detail::guarded(ec, "peer_address", [&]() -> Address {
        ec.clear();
        if (!is_open()) return io_.fail(ec, "peer_address", std::make_error_code(std::errc::not_connected)), Address();
        return peer_;
    });
}
inline Credentials Client::peer_credentials(std::error_code& ec) const noexcept {
    return detail::guarded(ec, "peer_credentials", [&]() -> Credentials {
        ec.clear();
        Credentials who;
        if (!is_open()) return io_.fail(ec, "peer_credentials", std::make_error_code(std::errc::not_connected)), who;
        if (!peer_.unix_domain)
            return io_.fail(ec, "peer_credentials", std::make_error_code(std::errc::invalid_argument),
                            "only a Unix-domain peer has them"),
                   who;
        if (const int e = detail::peer_ids(io_.socket, &who.pid, &who.uid, &who.gid))
            io_.fail(ec, "peer_credentials", detail::os_error(e));
        return who;
    });
}
inline void Client::close() noexcept {
    io_.close();
    buffer_ = detail::Buffer{};
}

#ifdef GREET_SOCKET_OPENSSL
// --- TLS: OpenSSL under the Transport through memory BIOs. OpenSSL never touches the
// socket: every byte on the wire goes through the Transport's plain read and write, with
// their timeout, canceller, serve()'s cut-off and chaos mode, and no SIGPIPE.

namespace detail {
// The first reason in this thread's OpenSSL error queue (the cause; the rest follow from
// it), which is left empty.
inline std::string openssl_reason() {
    std::string text;
    while (const unsigned long e = ERR_get_error()) {
        if (!text.empty()) continue;
        const char* reason = ERR_SYSTEM_ERROR(e) ? nullptr : ERR_reason_error_string(e);
        text = reason ? reason : std::generic_category().message(ERR_GET_REASON(e)); // a file's errno, say
    }
    return text.empty() ? "no reason given" : text;
}
inline bool is_ip_literal(const std::string& name) {
    unsigned char bytes[16];
    return ::inet_pton(AF_INET, name.c_str(), bytes) == 1 || ::inet_pton(AF_INET6, name.c_str(), bytes) == 1;
}
// The names a certificate is for: its DNS and IP subject alternative names, else its CN.
inline std::string certificate_names(X509* certificate) {
    std::string names;
    const auto add = [&](const std::string& name) { names += (names.empty() ? "" : ", ") + name; };
    if (auto* list =
            static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr))) {
        for (int i = 0; i < sk_GENERAL_NAME_num(list); ++i) {
            const GENERAL_NAME* name = sk_GENERAL_NAME_value(list, i);
            const auto* data = reinterpret_cast<const char*>(ASN1_STRING_get0_data(name->d.ia5));
            const auto size = static_cast<std::size_t>(ASN1_STRING_length(name->d.ia5));
            char text[INET6_ADDRSTRLEN] = "?";
            if (name->type == GEN_DNS) add(std::string(data, size));
            if (name->type == GEN_IPADD && (size == 4 || size == 16))
                add(::inet_ntop(size == 4 ? AF_INET : AF_INET6, data, text, sizeof text));
        }
        GENERAL_NAMES_free(list);
    }
    char common[256];
    if (names.empty() &&
        X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, common, sizeof common) > 0)
        add(common);
    return names.empty() ? "no name" : names;
}
// Why the peer's certificate was refused, in words that say what to do.
inline std::string verify_reason(long result, const std::string& names, const std::string& expected) {
    std::string text = "certificate verify failed: ";
    switch (result) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return text + "host name mismatch: the certificate is for " + names + ", not " + expected;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        return text + "self-signed certificate: pass its CA in TlsOptions::ca_file";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        return text + "unknown CA: pass the CA that signed it in TlsOptions::ca_file";
    case X509_V_ERR_CERT_HAS_EXPIRED: return text + "the certificate has expired";
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return text + "the certificate is not valid yet (is this machine's clock right?)";
    default: return text + X509_verify_cert_error_string(result);
    }
}
// What an OpenSSL failure means to the user: the code and its words.
inline std::pair<errc, std::string> tls_failure(SSL* ssl, const std::string& names, const std::string& expected) {
    const long verified = SSL_get_verify_result(ssl);
    if (verified != X509_V_OK) {
        std::string text = verify_reason(verified, names, expected);
        ERR_clear_error();
        return {errc::tls_certificate, text};
    }
    const std::string reason = openssl_reason();
    const auto says = [&](const char* words) { return reason.find(words) != std::string::npos; };
    if (says("wrong version number") || says("packet length too long") || says("http request") ||
        says("record layer failure"))
        return {errc::tls_protocol, "the peer does not speak TLS (" + reason + "): is it a plaintext program?"};
    if (says("did not return a certificate"))
        return {errc::tls_certificate,
                "the client sent no certificate, which this server's ca_file asks for (" + reason + ")"};
    if (says("alert") && (says("certificate") || says("unknown ca")))
        return {errc::tls_certificate, "the peer refused our certificate (" + reason + ")"};
    if (says("alert")) return {errc::tls_protocol, "the peer refused the handshake (" + reason + ")"};
    if (says("unexpected eof")) return {errc::tls_truncated, "the peer closed without close_notify"};
    return {errc::tls_protocol, reason};
}

struct TlsContextFree {
    void operator()(SSL_CTX* context) const noexcept { SSL_CTX_free(context); }
};
using TlsContext = std::unique_ptr<SSL_CTX, TlsContextFree>;

inline bool tls_files(SSL_CTX* context, bool server, const TlsOptions& options, std::string& why) {
    const std::string& certificate = options.certificate_file;
    const std::string& key = options.private_key_file.empty() ? certificate : options.private_key_file;
    if (server && certificate.empty())
        return why = "a server needs TlsOptions::certificate_file and private_key_file", false;
    if (!certificate.empty() && SSL_CTX_use_certificate_chain_file(context, certificate.c_str()) != 1)
        return why = "certificate_file " + certificate + ": " + openssl_reason(), false;
    if (!certificate.empty() && SSL_CTX_use_PrivateKey_file(context, key.c_str(), SSL_FILETYPE_PEM) != 1)
        return why = "private_key_file " + key + ": " + openssl_reason(), false;
    if (!certificate.empty() && SSL_CTX_check_private_key(context) != 1)
        return why = "private_key_file " + key + " is not the key of certificate_file " + certificate, false;
    const std::string& ca = options.ca_file;
    if (ca.empty())
        return server || SSL_CTX_set_default_verify_paths(context) == 1 ||
            (why = "the system's CAs: " + openssl_reason(), false);
    if (SSL_CTX_load_verify_locations(context, ca.c_str(), nullptr) != 1)
        return why = "ca_file " + ca + ": " + openssl_reason(), false;
    if (server) SSL_CTX_set_client_CA_list(context, SSL_load_client_CA_file(ca.c_str())); // whom the client may present
    return true;
}
inline TlsContext make_tls_context(bool server, const TlsOptions& options, std::string& why) {
    TlsContext context(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
    if (!context) return why = "SSL_CTX_new: " + openssl_reason(), nullptr;
    SSL_CTX_set_min_proto_version(context.get(), TLS1_2_VERSION);
    SSL_CTX_set_options(context.get(), SSL_OP_NO_RENEGOTIATION); // a record never needs the other direction
    if (!tls_files(context.get(), server, options, why)) return nullptr;
    const bool ask = server ? !options.ca_file.empty() : options.verify;
    const int client_mode =
        server && options.verify ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER;
    SSL_CTX_set_verify(context.get(), ask ? client_mode : SSL_VERIFY_NONE, nullptr);
    return context;
}
// A file's name and version, so that a renewed certificate is read again.
inline std::string file_stamp(const std::string& path) {
    std::error_code ignored;
    const auto when =
        path.empty() ? std::filesystem::file_time_type{} : std::filesystem::last_write_time(path, ignored);
    return path + '\n' + std::to_string(when.time_since_epoch().count()) + '\n';
}
// A new session on the context for these options, made once per process and version of
// the files (parsing a CA bundle costs milliseconds; a handshake should not pay it).
inline SSL* new_tls_session(bool server, const TlsOptions& options, std::string& why) {
    std::string key = server ? "server\n" : "client\n";
    key += options.verify ? "verify\n" : "trust\n";
    key += file_stamp(options.ca_file) + file_stamp(options.certificate_file) + file_stamp(options.private_key_file);
    static std::mutex lock;
    static std::vector<std::pair<std::string, TlsContext>> contexts;
    std::lock_guard<std::mutex> hold(lock);
    auto found = std::find_if(contexts.begin(), contexts.end(), [&](const auto& entry) { return entry.first == key; });
    if (found == contexts.end()) {
        TlsContext context = make_tls_context(server, options, why);
        if (!context) return nullptr;
        if (contexts.size() >= 16) contexts.clear(); // sessions keep their own reference
        found = contexts.emplace(contexts.end(), std::move(key), std::move(context));
    }
    SSL* ssl = SSL_new(found->second.get());
    if (!ssl) why = "SSL_new: " + openssl_reason();
    return ssl;
}

class OpenSsl final : public Tls {
public:
    explicit OpenSsl(std::string expected) : expected_(std::move(expected)) {}
    ~OpenSsl() override {
        SSL_free(ssl_);
        BIO_free(wire_);
    }
    bool open(bool server, const TlsOptions& options, std::string_view early, std::string& why);
    bool handshake(Transport& io, Deadline until, const char* op, std::error_code& ec);
    std::size_t read_some(Transport& io, char* into, std::size_t n, Deadline until, const char* op,
                          std::error_code& ec) override;
    std::size_t write(Transport& io, std::string_view first, std::string_view second, const char* op,
                      std::error_code& ec) override;
    bool shutdown(Transport& io, std::error_code& ec) override;
    void abandon(Transport& io) noexcept override;
    std::string peer_subject() const;

private:
    static constexpr std::size_t record = 16384; // TLS's largest plaintext record
    std::size_t put(Transport& io, std::string_view bytes, Deadline until, const char* op, std::error_code& ec);
    bool flush(Transport& io, Deadline until, const char* op, std::error_code& ec); // holding sending_
    bool feed(Transport& io, Deadline until, const char* op, std::error_code& ec);
    bool failed(Transport& io, const char* op, std::error_code& ec, int error); // holding sending_
    bool check_broken(Transport& io, const char* op, std::error_code& ec) const;
    static int on_verify(int ok, X509_STORE_CTX* store);

    SSL* ssl_ = nullptr;
    // The wire's end of a BIO pair whose other end is the SSL's: the Transport receives
    // straight into its ring and sends straight out of it, with no copy of our own.
    BIO* wire_ = nullptr;
    std::string expected_;   // the name the peer's certificate must carry
    std::string peer_names_; // the names it does carry, for the message when they differ
    // A failed record (in part sent, or refused): the stream cannot go on, in either direction.
    std::atomic<bool> broken_{false};
    mutable std::mutex state_; // the SSL object: one thread may send while another receives
    std::mutex sending_;       // the wire: records leave in the order OpenSSL made them
};

// The session for these options; first the bytes that came before the handshake.
inline bool OpenSsl::open(bool server, const TlsOptions& options, std::string_view early, std::string& why) {
    ssl_ = new_tls_session(server, options, why);
    if (!ssl_) return false;
    BIO* inside = nullptr;
    const std::size_t room = std::max<std::size_t>(65536, early.size()); // 4 records; more is no faster
    if (BIO_new_bio_pair(&inside, room, &wire_, room) != 1) return why = "out of memory", false;
    SSL_set_bio(ssl_, inside, inside);
    server ? SSL_set_accept_state(ssl_) : SSL_set_connect_state(ssl_);
    SSL_set_app_data(ssl_, this);
    SSL_set_verify(ssl_, SSL_get_verify_mode(ssl_), &OpenSsl::on_verify);
    const bool address = is_ip_literal(expected_);
    if (!server && !address) SSL_set_tlsext_host_name(ssl_, expected_.c_str()); // SNI
    if (!server && options.verify)
        address ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), expected_.c_str())
                : SSL_set1_host(ssl_, expected_.c_str());
    const int size = static_cast<int>(early.size());
    return early.empty() || BIO_write(wire_, early.data(), size) == size || (why = "out of memory", false);
}
// Notes the names of the peer's own certificate (depth 0): OpenSSL keeps no certificate
// it refused, and the message needs them.
inline int OpenSsl::on_verify(int ok, X509_STORE_CTX* store) {
    auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    X509* certificate = X509_STORE_CTX_get_current_cert(store);
    if (ssl && certificate && X509_STORE_CTX_get_error_depth(store) == 0) {
        auto* self = static_cast<OpenSsl*>(SSL_get_app_data(ssl));
        std::error_code no_memory; // then the message goes without the names
        guarded(no_memory, "verify", [&] { self->peer_names_ = certificate_names(certificate); });
    }
    return ok;
}
inline bool OpenSsl::handshake(Transport& io, Deadline until, const char* op, std::error_code& ec) {
    for (;;) {
        std::unique_lock<std::mutex> hold(state_);
        ERR_clear_error();
        const int rc = SSL_do_handshake(ssl_);
        const int error = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, rc);
        hold.unlock();
        std::lock_guard<std::mutex> order(sending_);
        if (rc != 1 && error != SSL_ERROR_WANT_READ) return failed(io, op, ec, error); // sends the alert that says why
        if (!flush(io, until, op, ec)) return false;                                   // the next flight
        if (rc == 1) return true;
        if (!feed(io, until, op, ec))
            return ec ? false
                      : io.fail(ec, op, make_error_code(errc::tls_protocol),
                                "the peer closed the connection during the handshake");
    }
}
inline bool OpenSsl::check_broken(Transport& io, const char* op, std::error_code& ec) const {
    return !broken_ ||
        io.fail(ec, op, make_error_code(errc::tls_protocol),
                "an earlier send or receive failed, which ends a TLS connection");
}
inline std::size_t OpenSsl::read_some(Transport& io, char* into, std::size_t n, Deadline until, const char* op,
                                      std::error_code& ec) {
    for (;;) {
        if (!check_broken(io, op, ec)) return 0;
        std::unique_lock<std::mutex> hold(state_);
        ERR_clear_error();
        std::size_t got = 0;
        const int rc = SSL_read_ex(ssl_, into, n, &got);
        const int error = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, rc);
        const bool answer = BIO_ctrl_pending(wire_) > 0; // a key update's reply, say
        hold.unlock();
        if (rc == 1) return got;
        if (error == SSL_ERROR_ZERO_RETURN) return 0; // close_notify: the end
        if (error != SSL_ERROR_WANT_READ) {
            std::lock_guard<std::mutex> order(sending_);
            return failed(io, op, ec, error), 0;
        }
        if (answer && sending_.try_lock()) { // else the sender holding it takes it along
            std::lock_guard<std::mutex> order(sending_, std::adopt_lock);
            if (!flush(io, until, op, ec)) return 0;
        }
        if (!feed(io, until, op, ec)) {
            if (!ec)
                io.fail(ec, op, make_error_code(errc::tls_truncated),
                        "the peer closed without close_notify, so what came may be cut short (Python's close() does "
                        "this: call unwrap() first)");
            return 0;
        }
    }
}
// Small writes (a message and its header, a line and its newline) go as one record.
inline std::size_t OpenSsl::write(Transport& io, std::string_view first, std::string_view second, const char* op,
                                  std::error_code& ec) {
    const Deadline until = io.deadline();
    std::lock_guard<std::mutex> order(sending_);
    if (first.size() + second.size() <= 1024) {
        char joined[1024];
        std::copy(second.begin(), second.end(), std::copy(first.begin(), first.end(), joined));
        return put(io, std::string_view(joined, first.size() + second.size()), until, op, ec);
    }
    const std::size_t sent = put(io, first, until, op, ec);
    return ec ? sent : sent + put(io, second, until, op, ec);
}
// Encrypts and sends one record at a time, so that memory stays bounded; the count is of
// plaintext bytes whose records went whole.
inline std::size_t OpenSsl::put(Transport& io, std::string_view bytes, Deadline until, const char* op,
                                std::error_code& ec) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
        if (!check_broken(io, op, ec)) return sent;
        std::unique_lock<std::mutex> hold(state_);
        ERR_clear_error();
        std::size_t written = 0;
        const int rc = SSL_write_ex(ssl_, bytes.data() + sent, std::min(bytes.size() - sent, record), &written);
        const int error = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, rc);
        hold.unlock();
        if (rc != 1) return failed(io, op, ec, error), sent;
        if (!flush(io, until, op, ec)) return sent;
        sent += written;
    }
    return sent;
}
// Sends what OpenSSL wrote, straight out of the pair's ring.
inline bool OpenSsl::flush(Transport& io, Deadline until, const char* op, std::error_code& ec) {
    for (;;) {
        std::unique_lock<std::mutex> hold(state_);
        char* bytes = nullptr;
        const int n = BIO_nread0(wire_, &bytes);
        hold.unlock();
        if (n <= 0) return true;
        const auto size = static_cast<std::size_t>(n);
        if (io.write_plain(std::string_view(bytes, size), {}, until, op, ec) != size) return !(broken_ = true);
        hold.lock();
        BIO_nread(wire_, &bytes, n);
    }
}
// Receives straight into the pair's ring: false at the peer's end (ec clear) or a failure.
// Only the receiving thread writes there, so the room stays ours while the lock is off.
inline bool OpenSsl::feed(Transport& io, Deadline until, const char* op, std::error_code& ec) {
    std::unique_lock<std::mutex> hold(state_);
    char* room = nullptr;
    const int free = BIO_nwrite0(wire_, &room);
    hold.unlock();
    if (free <= 0)
        return io.fail(ec, op, make_error_code(errc::tls_protocol),
                       "the peer sent more than TLS lets it before an answer");
    const std::size_t n = io.read_plain(room, static_cast<std::size_t>(free), until, op, ec);
    if (n == 0) return false;
    hold.lock();
    BIO_nwrite(wire_, &room, static_cast<int>(n));
    return true;
}
inline bool OpenSsl::failed(Transport& io, const char* op, std::error_code& ec, int error) {
    std::unique_lock<std::mutex> hold(state_);
    const std::pair<errc, std::string> refusal = tls_failure(ssl_, peer_names_, expected_);
    hold.unlock();
    broken_ = true;
    std::error_code alert; // the peer learns why, if the wire still takes it
    flush(io, io.deadline(), op, alert);
    return io.fail(ec, op, make_error_code(error == SSL_ERROR_SSL ? refusal.first : errc::tls_protocol),
                   refusal.second);
}
inline bool OpenSsl::shutdown(Transport& io, std::error_code& ec) {
    std::lock_guard<std::mutex> order(sending_);
    {
        std::lock_guard<std::mutex> hold(state_);
        ERR_clear_error();
        SSL_shutdown(ssl_); // 0: sent, the peer's not yet seen, which is all a half-close needs
        ERR_clear_error();
    }
    return flush(io, io.deadline(), "shutdown_send", ec);
}
// close(): close_notify if the socket takes it at once; close() never waits.
inline void OpenSsl::abandon(Transport& io) noexcept {
    std::lock_guard<std::mutex> hold(state_);
    if (broken_ || !SSL_is_init_finished(ssl_) || (SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) || !io.is_open()) return;
    SSL_shutdown(ssl_);
    ERR_clear_error();
    char* bytes = nullptr;
    const int n = BIO_nread0(wire_, &bytes);
    std::error_code ignored;
    set_blocking(io.socket, false);
    if (n > 0) send_some(io.socket, std::string_view(bytes, static_cast<std::size_t>(n)), {}, ignored);
}
// A refusal's alert must reach the peer, and closing with its bytes unread would reset
// the connection and throw the alert away with them. So the alert is followed by a FIN,
// and what the peer still sends is read until it closes too, for at most 200 ms.
inline void close_after_alert(Transport& io) {
    const Failure why = last_failure(); // the handshake's words, which the reads below must not replace
    ::shutdown(io.socket, shut_send);
    set_blocking(io.socket, false);
    const Transport::Deadline until = std::min(io.deadline(), Clock::now() + std::chrono::milliseconds(200));
    char sink[4096];
    std::error_code ignored;
    for (std::size_t total = 0, n = 1; n > 0 && total < 262144; total += n)
        n = io.read_plain(sink, sizeof sink, until, "close", ignored);
    io.close();
    last_failure() = why;
}
inline std::string OpenSsl::peer_subject() const {
    std::lock_guard<std::mutex> hold(state_);
    X509* certificate = SSL_get0_peer_certificate(ssl_);
    BIO* text = certificate ? BIO_new(BIO_s_mem()) : nullptr;
    if (!text) return {};
    X509_NAME_print_ex(text, X509_get_subject_name(certificate), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long size = BIO_get_mem_data(text, &data);
    std::string subject(data, static_cast<std::size_t>(size > 0 ? size : 0));
    BIO_free(text);
    return subject;
}
} // namespace detail

inline void Client::start_tls(const TlsOptions& options, std::error_code& ec) noexcept {
    detail::guarded(ec, "start_tls", [&] { handshake(false, options, "start_tls", ec); });
}
inline void Client::accept_tls(const TlsOptions& options, std::error_code& ec) noexcept {
    detail::guarded(ec, "accept_tls", [&] { handshake(true, options, "accept_tls", ec); });
}
// Bytes already buffered are the start of the peer's handshake (a STARTTLS protocol's
// last plaintext line may arrive with them): OpenSSL gets them first.
inline void Client::handshake(bool server, const TlsOptions& options, const char* op, std::error_code& ec) {
    if (!io_.begin(op, ec)) return;
    if (io_.tls)
        return (void)io_.fail(ec, op, std::make_error_code(std::errc::invalid_argument),
                              "this connection already uses TLS");
    std::string expected = server ? std::string() : options.server_name.empty() ? host_ : options.server_name;
    if (expected.size() > 2 && expected.front() == '[' && expected.back() == ']')
        expected = expected.substr(1, expected.size() - 2);
    if (!server && options.verify && expected.empty())
        return (void)(io_.fail(ec, op, make_error_code(errc::tls_setup),
                               "no host name to check the certificate against: set TlsOptions::server_name"),
                      close());
    auto session = std::make_unique<detail::OpenSsl>(std::move(expected));
    std::string why;
    if (!session->open(server, options, std::string_view(buffer_.bytes(), buffer_.size()), why))
        return (void)(io_.fail(ec, op, make_error_code(errc::tls_setup), why), close());
    buffer_ = detail::Buffer{};
    if (session->handshake(io_, io_.deadline(), op, ec))
        io_.tls = std::move(session);
    else if (ec.category() == error_category())
        detail::close_after_alert(io_);
    else
        io_.close();
}
inline std::string Client::tls_peer_subject() const {
    // OpenSsl is the one Tls there is (no dynamic_cast: -fno-rtti builds take this too).
    return io_.tls ? static_cast<const detail::OpenSsl*>(io_.tls.get())->peer_subject() : std::string();
}
#endif // GREET_SOCKET_OPENSSL

// --- Server

inline void Server::bind(std::string_view host, std::uint16_t port, std::error_code& ec) noexcept {
    detail::guarded(ec, "bind", [&] {
        ec.clear();
        endpoint_ = detail::endpoint_text(host, port);
        if (is_open())
            return (void)detail::fail(ec, "bind", endpoint_, std::make_error_code(std::errc::invalid_argument),
                                      "already bound; close() first");
        // "" is every interface: one dual-stack IPv6 socket, or IPv4 where IPv6 is missing.
        std::vector<sockaddr_storage> addresses;
        if (host.empty()) {
            addresses.resize(2);
            addresses[0].ss_family = AF_INET6;
            addresses[1].ss_family = AF_INET;
        } else {
            addresses = detail::resolve("bind", endpoint_, host, port, ec);
            if (ec) return;
        }
        std::vector<detail::Socket> bound = bind_all(addresses, host.empty(), port, ec);
        if (ec) return;
        const Address here = detail::socket_address(bound.front(), false, "bind", endpoint_, ec);
        if (ec) return;
        use_listeners(std::move(bound), "bind", ec);
        if (!ec) endpoint_ = detail::endpoint_text(host, here.port);
    });
}
inline void Server::use_listeners(std::vector<detail::Socket> bound, const char* op, std::error_code& ec) {
    auto wake = std::make_unique<Wake>();
    wake->socket = detail::open_wake_socket(op, endpoint_, "could not open the socket that stop() signals", ec);
    if (ec) return;
    wake_ = std::move(wake);
    listeners_ = std::move(bound);
    if (listeners_.size() == 1) wake_->listener = detail::listener_waker(listeners_.front());
    apply_timeout();
}

inline void Server::bind_unix(std::string_view path, std::error_code& ec) noexcept {
    detail::guarded(ec, "bind_unix", [&] {
        ec.clear();
        endpoint_ = detail::unix_text(path);
        if (is_open())
            return (void)detail::fail(ec, "bind_unix", endpoint_, std::make_error_code(std::errc::invalid_argument),
                                      "already bound; close() first");
        sockaddr_storage address{};
        if (!detail::unix_address(path, "bind_unix", address, ec)) return;
        std::error_code failed;
        detail::Socket s = detail::open_socket(AF_UNIX, SOCK_STREAM, failed);
        if (failed) return (void)detail::fail(ec, "bind_unix", endpoint_, failed, detail::unix_note(failed));
        if (!bind_path(s, address, ec)) return;
        const std::string file(path[0] ? path : std::string_view());
        detail::SocketFile made(
            file, file.empty() ? 0 : detail::file_identity(file.c_str())); // removed if what follows fails
        std::vector<detail::Socket> bound;
        bound.push_back(std::move(s));
        use_listeners(std::move(bound), "bind_unix", ec);
        if (ec) return;
        file_ = std::move(made);
        listening_ = true; // bind_path listened already; listen() may change the backlog
    });
}
// Binds s and listens at once, so that another server starting on this path finds this
// one live (see replace_stale); listen() then only sets the backlog.
inline bool Server::bind_path(detail::Socket& s, const sockaddr_storage& address, std::error_code& ec) {
    std::error_code failed;
    bool bound = detail::bind_to(s, address, failed);
    const bool named = reinterpret_cast<const sockaddr_un&>(address).sun_path[0] != '\0';
    if (!bound && named && failed == std::errc::address_in_use) {
        if (!replace_stale(address, ec)) return false;
        bound = detail::bind_to(s, address, failed);
    }
    if (!bound || !detail::listen_on(s, SOMAXCONN, failed)) return detail::fail(ec, "bind_unix", endpoint_, failed);
    detail::set_blocking(s, false); // accept() polls, unless apply_timeout() says otherwise
    return true;
}
// A file is at the path. A socket no process listens on (its server died) is removed; a
// live one, or a file that is not a socket, is EADDRINUSE. The test is a connect(), which
// a live server's kernel completes, or refuses with EAGAIN when its backlog is full; a
// stale file refuses it. What no test can close: two servers started on one path at the
// same moment may both find a stale file; start them one after another.
inline bool Server::replace_stale(const sockaddr_storage& address, std::error_code& ec) {
    const char* path = reinterpret_cast<const sockaddr_un&>(address).sun_path;
    const auto in_use = std::make_error_code(std::errc::address_in_use);
    const int kind = detail::file_kind(path);
    if (kind == 2)
        return detail::fail(ec, "bind_unix", endpoint_, in_use, "the file there is not a socket; it is never removed");
    if (kind == 0) return true; // gone since the bind: bind again
    std::error_code failed;
    detail::Socket probe = detail::open_socket(AF_UNIX, SOCK_STREAM, failed);
    if (failed) return detail::fail(ec, "bind_unix", endpoint_, failed);
    detail::set_blocking(probe, false); // a full backlog must not block the probe
    bool pending = false;
    if (detail::connect_to(probe, address, &pending, failed) || pending || detail::would_block(failed))
        return detail::fail(ec, "bind_unix", endpoint_, in_use, "a server is listening on this socket");
    if (failed != std::errc::connection_refused)
        return detail::fail(ec, "bind_unix", endpoint_, failed, "could not tell whether a server listens here");
    if (detail::remove_file(path) || detail::file_kind(path) == 0) return true;
    return detail::fail(ec, "bind_unix", endpoint_, detail::os_error(detail::last_error()),
                        "could not remove the stale socket file");
}
// One listening socket per address, all on one port. With port 0 every address shares the
// port the OS gave the first; should another program hold that port on a later address,
// start over with a new one (bounded).
inline std::vector<detail::Socket> Server::bind_all(const std::vector<sockaddr_storage>& addresses,
                                                    bool every_interface, std::uint16_t port, std::error_code& ec) {
    std::error_code last = std::make_error_code(std::errc::address_not_available);
    const bool dual = dual_stack_.value_or(every_interface);
    for (int attempt = 0; attempt < 16; ++attempt) {
        std::vector<detail::Socket> bound;
        std::uint16_t chosen = port; // the port every further address binds
        bool retry = false;
        for (sockaddr_storage storage : addresses) {
            detail::Socket s = bind_one(storage, !dual, chosen, last);
            if (s != detail::no_socket) {
                bound.push_back(std::move(s));
                if (every_interface && dual) break; // the dual-stack socket covers IPv4 too
                if (chosen == 0) chosen = detail::socket_address(bound.back(), false, "bind", endpoint_, ec).port;
                if (ec) return {};
                continue;
            }
            // An address of a family this machine lacks is skipped (::1 on an IPv4-only host).
            if (last == std::errc::address_family_not_supported || last == std::errc::address_not_available) continue;
            if (last == std::errc::address_in_use && port == 0 && !bound.empty())
                retry = true;
            else
                return detail::fail(ec, "bind", endpoint_, last), std::vector<detail::Socket>();
            break;
        }
        if (retry) continue;
        if (!bound.empty()) return bound;
        break;
    }
    detail::fail(ec, "bind", endpoint_, last);
    return {};
}
// A socket bound to storage's address at port; none, with the reason in last, on failure.
inline detail::Socket Server::bind_one(sockaddr_storage storage, bool v6only, std::uint16_t port,
                                       std::error_code& last) const {
    const int family = storage.ss_family;
    if (family == AF_INET6)
        reinterpret_cast<sockaddr_in6&>(storage).sin6_port = htons(port);
    else
        reinterpret_cast<sockaddr_in&>(storage).sin_port = htons(port);
    detail::Socket s = detail::open_socket(family, SOCK_STREAM, last);
    if (s == detail::no_socket) return {};
    detail::prepare_listener(s);
    if (family == AF_INET6) { // where the OS refuses 0 (OpenBSD), IPv6 stays IPv6 only
        const int flag = v6only ? 1 : 0;
        ::setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, reinterpret_cast<const char*>(&flag), sizeof flag);
    }
    std::error_code refused;
    if (setup_) setup_(s, refused);
    if (refused) return last = refused, detail::Socket();
    if (!detail::bind_to(s, storage, last)) return {};
    detail::set_blocking(s, false); // accept() polls, unless apply_timeout() says otherwise
    return s;
}

inline void Server::listen(int backlog, std::error_code& ec) noexcept {
    detail::guarded(ec, "listen", [&] {
        ec.clear();
        if (!is_open())
            return (void)detail::fail(ec, "listen", endpoint_, std::make_error_code(std::errc::invalid_argument),
                                      "bind() first");
        std::error_code failed;
        for (const detail::Socket& s : listeners_)
            if (!detail::listen_on(s, backlog, failed)) return (void)detail::fail(ec, "listen", endpoint_, failed);
        listening_ = true;
    });
}

inline bool Server::require_listening(const char* op, std::error_code& ec) const {
    ec.clear();
    if (!is_open())
        return detail::fail(ec, op, endpoint_, std::make_error_code(std::errc::invalid_argument),
                            "bind() and listen() first");
    if (!listening_)
        return detail::fail(ec, op, endpoint_, std::make_error_code(std::errc::invalid_argument), "listen() first");
    return true;
}

inline std::pair<Client, Address> Server::accept(std::error_code& ec) noexcept {
    return detail::guarded(ec, "accept", [&]() -> std::pair<Client, Address> {
        if (!require_listening("accept", ec)) return {};
        return accept_until(detail::deadline_after(timeout_), ec);
    });
}

inline std::pair<Client, Address> Server::accept_until(std::chrono::steady_clock::time_point deadline,
                                                       std::error_code& ec) {
    // No allocation per client: the listeners (one or two), the wake socket and the
    // canceller's fit on the stack.
    detail::pollfd_type few[4]{};
    std::vector<detail::pollfd_type> many;
    const std::size_t count = listeners_.size() + (canceller_ ? 2 : 1);
    if (count > 4) many.resize(count);
    detail::pollfd_type* const fds = count > 4 ? many.data() : few;
    // A lone listener on Linux without a timeout blocks in accept(): one system call per
    // client, and stop() wakes it. Otherwise poll the listeners and the wake socket, then
    // accept: two calls per client (trying accept() first would save the poll when
    // clients queue up, and cost a third call whenever none is waiting).
    const bool blocking = wake_->listener != detail::no_socket && !timeout_ && !canceller_;
    const auto canceled = std::make_error_code(std::errc::operation_canceled);
    for (;;) {
        if (stopped())
            return detail::fail(ec, "accept", endpoint_, canceled, "the server was stopped"),
                   std::pair<Client, Address>();
        if (cancelled())
            return detail::fail(ec, "accept", endpoint_, canceled,
                                "cancelled by its greet::Canceller; reset() it to go on"),
                   std::pair<Client, Address>();
        if (!blocking && !poll_listeners(fds, count, deadline, ec)) return {};
        for (std::size_t i = 0; i < listeners_.size(); ++i) {
            if (!blocking && !fds[i].revents) continue;
            sockaddr_storage storage{};
            std::error_code code;
            detail::Socket s = detail::accept_from(listeners_[i], storage, code);
            if (s != detail::no_socket) {
                Client client(std::move(s), storage);
                if (client.peer_.unix_domain) client.io_.endpoint = "client of " + endpoint_; // most have no name
                Address peer = client.peer_;
                return {std::move(client), std::move(peer)};
            }
            // A client that gave up before accept() ran is no error of the server's.
            if (detail::would_block(code) || code == std::errc::connection_aborted) continue;
            if (stopped()) break; // the listener was shut down (EINVAL): reported above
            return detail::fail(ec, "accept", endpoint_, code), std::pair<Client, Address>();
        }
    }
}
// Polls the listeners, the wake socket and the canceller's; false with ec set on a
// time-out or a failed poll.
inline bool Server::poll_listeners(detail::pollfd_type* fds, std::size_t count,
                                   std::chrono::steady_clock::time_point deadline, std::error_code& ec) {
    const native_handle_type last = canceller_ ? native_handle_type(canceller_->wake) : detail::no_socket;
    for (std::size_t i = 0; i < count; ++i) {
        fds[i].fd = i < listeners_.size() ? native_handle_type(listeners_[i])
            : i == listeners_.size()      ? native_handle_type(wake_->socket)
                                          : last;
        fds[i].events = POLLIN;
        fds[i].revents = 0;
    }
    std::error_code failed;
    if (!detail::wait_any(fds, count, deadline, failed))
        return failed ? detail::fail(ec, "accept", endpoint_, failed, "poll failed")
                      : detail::fail(ec, "accept", endpoint_, std::make_error_code(std::errc::timed_out),
                                     "no client within " + detail::ms_text(timeout_));
    if (fds[listeners_.size()].revents) drain_wake();
    return true;
}

// Empties the wake socket; true once stop() has been called.
inline bool Server::drain_wake() {
    detail::drain(wake_->socket);
    return wake_->stopped.load();
}
// Sleeps in the OS until stop(), a finished handler, the canceller, or the deadline.
inline void Server::sleep_until_woken(std::chrono::steady_clock::time_point until) {
    std::error_code ignored; // a failed poll: the loop around tries again
    detail::wait(wake_->socket, POLLIN, canceller_ ? native_handle_type(canceller_->wake) : detail::no_socket, until,
                 ignored);
    drain_wake();
}
inline bool Server::cancelled() const noexcept { return canceller_ && canceller_->cancelled.load(); }
inline void Server::set_canceller(Canceller canceller) noexcept {
    canceller_ = std::move(canceller.state_);
    apply_timeout();
}

inline std::vector<native_handle_type> Server::native_handles() const {
    return std::vector<native_handle_type>(listeners_.begin(), listeners_.end());
}

inline void Server::stop() noexcept {
    if (!wake_) return;
    const int saved = detail::last_error(); // a signal handler must leave errno as it found it
    wake_->stopped.store(true);
    detail::wake_up(wake_->socket); // send() and shutdown() are async-signal-safe
    if (wake_->listener != detail::no_socket) (void)::shutdown(wake_->listener, detail::shut_both);
    detail::set_last_error(saved);
}

inline void Server::close() noexcept {
    listeners_.clear();
    file_.reset();
    wake_.reset();
    listening_ = false;
}

// serve()'s threads and their clients. An accepted client waits in `queued_` for an idle
// worker. When none is idle or starting, one more is started, by the accept loop only when
// no worker is starting already; otherwise a starting worker starts the next, so that a
// burst of clients does not wait behind thread creation in the accept loop (the backlog
// would overflow). There are never more workers than clients being served; a worker idle
// for `linger` ends. Each step is a list splice under one lock: O(1) per client.
class Server::Sessions {
public:
    using Refuse = std::function<void(const Address& peer, std::error_code why)>;
    Sessions(native_handle_type waker, Handler work, Refuse refuse, std::size_t stack_size)
        : waker_(waker), work_(std::move(work)), refuse_(std::move(refuse)), stack_size_(stack_size) {}
    Sessions(const Sessions&) = delete;
    Sessions& operator=(const Sessions&) = delete;
    ~Sessions() { finish(detail::Clock::now()); } // serve() failed: cut every handler off at once

    // True when `limit` clients are queued or being served; a finishing one then wakes serve().
    bool full(std::size_t limit) {
        std::lock_guard<std::mutex> lock(mutex_);
        return waiting_ = queued_.size() + running_.size() >= limit;
    }
    // Queues the client for a worker. Throws std::bad_alloc before anything changed; a
    // client no thread can be started for is refused (closed and reported).
    void start(Client client, const Address& peer) {
        auto cut_off = std::make_shared<detail::CutOff>();
        cut_off->socket = client.native_handle();
        client.io_.cut_off = cut_off;
        std::list<Session> session;
        session.push_back(Session{std::move(client), peer, std::move(cut_off)});
        std::unique_lock<std::mutex> lock(mutex_);
        const bool enough = queued_.size()<idle_ + starting_, coming = starting_> 0;
        std::list<Worker> worker(enough || coming ? 0 : 1); // allocated before the client is queued
        queued_.splice(queued_.end(), session);
        if (!enough && !coming) return (void)grow(lock, std::move(worker));
        lock.unlock();
        work_ready_.notify_one();
    }
    // Joins the workers that ended for want of clients.
    void join_exited() {
        std::list<Worker> gone;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            gone.splice(gone.end(), exited_);
        }
        for (Worker& worker : gone) detail::join_thread(worker.handle);
    }
    // Waits for the clients being served until the deadline, then cuts the rest off (their
    // blocked receive or send fails with ECANCELED) and joins every thread.
    void finish(detail::Clock::time_point deadline) {
        std::unique_lock<std::mutex> lock(mutex_);
        const auto idle = [this] { return running_.empty() && queued_.empty() && creating_ == 0; };
        if (deadline == detail::no_deadline)
            finished_.wait(lock, idle);
        else if (!finished_.wait_until(lock, deadline, idle))
            cut_off();
        finished_.wait(lock, idle);
        closing_ = true;
        std::list<Worker> all;
        all.splice(all.end(), workers_);
        all.splice(all.end(), exited_);
        lock.unlock();
        work_ready_.notify_all();
        for (Worker& worker : all) detail::join_thread(worker.handle);
    }

private:
    struct Session {
        Client client;
        Address peer;
        std::shared_ptr<detail::CutOff> cut_off; // shared with the client, which the handler may move
    };
    struct Worker {
        Sessions* owner = nullptr;
        detail::thread_handle handle{};
        std::list<Worker>::iterator self; // its node, in workers_ until it ends
    };
    static constexpr std::chrono::seconds linger{2}; // a worker's wait for its next client

    // Under the lock, released while the thread starts: one more worker, in `node`. If
    // none can be started, the newest queued client is refused.
    bool grow(std::unique_lock<std::mutex>& lock, std::list<Worker> node) {
        Worker& worker = node.front();
        worker.owner = this;
        worker.self = node.begin(); // stays valid through the splices
        ++starting_, ++creating_;
        lock.unlock();
        const int failed = detail::start_thread(&worker.handle, stack_size_, &Sessions::run, &worker);
        lock.lock();
        --creating_;
        // The new worker uses its node only when it ends, after `linger` at the soonest.
        if (!failed)
            workers_.splice(workers_.end(), node);
        else
            --starting_, refuse_newest(lock, detail::os_error(failed));
        finished_.notify_all();
        return !failed;
    }
    void refuse_newest(std::unique_lock<std::mutex>& lock, std::error_code why) {
        if (queued_.empty()) return; // taken by a worker after all
        std::list<Session> refused;
        refused.splice(refused.end(), queued_, std::prev(queued_.end()));
        lock.unlock();
        refuse_(refused.front().peer, why);
        refused.clear(); // closes the connection
        lock.lock();
    }
    static detail::thread_result GREET_SOCKET_THREAD_CALL run(void* worker) {
        Worker* self = static_cast<Worker*>(worker);
        self->owner->serve_clients(*self);
        return detail::thread_result{};
    }
    void serve_clients(Worker& self) {
        std::unique_lock<std::mutex> lock(mutex_);
        // Counted as starting until it waits, this one takes a client: start workers for the
        // others, checking again after each (clients came while the lock was released).
        while (queued_.size() > idle_ + starting_ && grow_if_memory(lock)) {}
        --starting_;
        for (auto it = running_.end(); next(lock, it);) {
            lock.unlock();
            work_(it->client, it->peer);
            it->client.close();
            lock.lock();
            running_.erase(it);
            finished_.notify_all();
            if (waiting_) detail::wake_up(waker_), waiting_ = false; // a slot is free
        }
        if (!closing_) exited_.splice(exited_.end(), workers_, self.self); // else finish() holds it and joins it
    }
    // False when no worker could be started. No memory for its node: the accept loop
    // starts the next one instead.
    bool grow_if_memory(std::unique_lock<std::mutex>& lock) noexcept {
#if GREET_SOCKET_EXCEPTIONS
        try {
            return grow(lock, std::list<Worker>(1));
        } catch (...) { return false; }
#else
        return grow(lock, std::list<Worker>(1));
#endif
    }
    // Under the lock: waits up to `linger` for a client and moves it to running_.
    bool next(std::unique_lock<std::mutex>& lock, std::list<Session>::iterator& it) {
        ++idle_;
        work_ready_.wait_for(lock, linger, [this] { return !queued_.empty() || closing_; });
        --idle_;
        if (queued_.empty()) return false;
        it = queued_.begin();
        running_.splice(running_.end(), queued_, it);
        return true;
    }
    // Never touches the Clients, which their handlers own and may be moving.
    void cut_off() {
        for (Session& session : running_) session.cut_off->cut();
        for (Session& session : queued_) session.cut_off->cut();
    }

    std::mutex mutex_;
    std::condition_variable work_ready_, finished_;
    std::list<Session> queued_, running_;
    std::list<Worker> workers_, exited_;
    std::size_t idle_ = 0, starting_ = 0, creating_ = 0; // workers waiting, started and not yet waiting, being created
    bool waiting_ = false;                               // serve() sleeps until a slot is free
    bool closing_ = false;
    native_handle_type waker_;
    Handler work_;
    Refuse refuse_;
    std::size_t stack_size_;
};

// How serve() reports: a handler's failure with its client, its own (accept, a refused
// client) as they are.
struct Server::Reporter {
    const ServeOptions& options;
    const std::string& server;

    void send(const Address& peer, const std::exception& error, bool own) const noexcept {
#if GREET_SOCKET_EXCEPTIONS
        try {
#endif
            if (options.on_error)
                options.on_error(peer, error);
            else if (own)
                std::fprintf(stderr, "%s\n", error.what());
            else
                std::fprintf(stderr, "serve %s: client %s: %s\n", server.c_str(), peer.to_string().c_str(),
                             error.what());
#if GREET_SOCKET_EXCEPTIONS
        } catch (...) { // a failing error callback must not take the server down
        }
#endif
    }
    void own(const Address& here, const std::exception& error) const noexcept { send(here, error, true); }
    void run(const Handler& handler, Client& client, const Address& peer) const noexcept {
#if GREET_SOCKET_EXCEPTIONS
        try {
            handler(client, peer);
        } catch (const ClosedError&) { // the client left: the normal end of a conversation
        } catch (const std::exception& error) { send(peer, error, false); } catch (...) {
            send(peer, std::runtime_error("a handler threw something that is not a std::exception"), false);
        }
#else
        handler(client, peer);
#endif
    }
    // No memory or no thread for a client: that client is refused, the others carry on.
    void refused(const Address& peer, std::error_code code) const noexcept {
        failed("serve", peer, code,
               code == std::errc::not_enough_memory
                   ? "no memory for this client's session; it was refused"
                   : "no thread could be started for this client; it was refused (lower "
                     "ServeOptions::max_clients or raise the process's thread limit)");
    }
    // A failure of the server's own with one client, in the words of every error.
    void failed(const char* op, const Address& peer, std::error_code code, std::string_view hint) const noexcept {
#if GREET_SOCKET_EXCEPTIONS
        try {
#endif
            const std::string text = detail::describe(op, server + ": client " + peer.to_string(), code, hint);
            if (code == std::errc::timed_out)
                send(peer, TimeoutError(code, text), true);
            else
                send(peer, Error(code, text), true);
#if GREET_SOCKET_EXCEPTIONS
        } catch (...) { // no memory for the words
            send(peer, std::bad_alloc(), true);
        }
#endif
    }
};

inline void Server::serve(const Handler& handler, const ServeOptions& options, std::error_code& ec) noexcept {
    detail::guarded(ec, "serve", [&] {
        if (!require_listening("serve", ec)) return;
        if (options.idle_timeout && options.idle_timeout->count() < 0)
            return (void)detail::fail_argument(ec, "serve", "ServeOptions::idle_timeout must not be negative");
        if (options.backlog > 0 && (listen(options.backlog, ec), ec)) return;
        const Address here = local_address(ec);
        if (ec) return;
        const Reporter report{options, endpoint_};
        Sessions sessions(
            wake_->socket, [&](Client& client, const Address& peer) { report.run(handler, client, peer); },
            [&](const Address& peer, std::error_code why) { report.refused(peer, why); }, options.stack_size);
        const std::size_t max_clients = options.max_clients ? options.max_clients : 64;
        while (!stopped() && !cancelled()) {
            sessions.join_exited();
            if (sessions.full(max_clients)) { // further clients wait in the backlog
                sleep_until_woken(detail::no_deadline);
                continue;
            }
            std::error_code failed;
            std::pair<Client, Address> next =
                accept_until(detail::no_deadline, failed); // serve() waits for ever, whatever accept()'s timeout
            if (!failed) {
                admit(sessions, std::move(next), options, report);
                continue;
            }
            if (stopped() || cancelled()) break;
            report.own(here, Error(failed, last_error_message()));
            // Out of descriptors, say: wait a little (or for a handler to end) and retry.
            sleep_until_woken(detail::Clock::now() + std::chrono::milliseconds(100));
        }
        listeners_.clear(); // new clients are refused from here on
        listening_ = false;
        sessions.finish(detail::deadline_after(std::max(options.grace, std::chrono::milliseconds(0))));
    });
}

// Gives an accepted client its idle timeout and a worker; a client no memory could be had
// for is refused (closed) and reported.
inline void Server::admit(Sessions& sessions, std::pair<Client, Address> next, const ServeOptions& options,
                          const Reporter& report) {
    std::error_code ignored; // idle_timeout was checked by serve()
    if (options.idle_timeout) next.first.set_timeout(options.idle_timeout, ignored);
#if GREET_SOCKET_EXCEPTIONS
    try {
        sessions.start(std::move(next.first), next.second);
    } catch (...) { // std::bad_alloc: nothing was started
        report.refused(next.second, std::make_error_code(std::errc::not_enough_memory));
    }
#else
    (void)report; // no allocation failure to report: it ends the program
    sessions.start(std::move(next.first), next.second);
#endif
}

inline void Server::set_timeout(Timeout timeout, std::error_code& ec) noexcept {
    ec.clear();
    if (timeout && timeout->count() < 0)
        return (void)detail::guarded(
            ec, "set_timeout", [&] { detail::fail_argument(ec, "set_timeout", "the timeout must not be negative"); });
    timeout_ = timeout;
    apply_timeout();
}

// accept() blocks in the OS only on a lone Linux listener without a timeout or a canceller.
inline void Server::apply_timeout() noexcept {
    if (wake_ && wake_->listener != detail::no_socket && listeners_.size() == 1)
        detail::set_blocking(listeners_.front(), !timeout_ && !canceller_);
}

inline Address Server::local_address(std::error_code& ec) const noexcept {
    return detail::guarded(ec, "local_address", [&]() -> Address {
        ec.clear();
        if (!is_open())
            return detail::fail(ec, "local_address", endpoint_, std::make_error_code(std::errc::invalid_argument),
                                "bind() first"),
                   Address();
        return detail::socket_address(listeners_.front(), false, "local_address", endpoint_, ec);
    });
}

// --- serve_messages and serve_lines: idle connections wait in the OS, not in a thread

namespace detail {
// One connection of serve_messages or serve_lines, owned by one Reactor for its life.
struct Connection {
    Socket socket;
    Address peer;
    std::string in;                        // bytes not answered yet (unallocated between requests)
    std::string out;                       // replies the socket has not taken yet, from out_sent on
    std::size_t out_sent = 0, scanned = 0; // scanned: bytes at in's front known to hold no '\n'
    Clock::time_point active{};            // when bytes last moved (with an idle timeout only)
    std::uint64_t chaos_recv = 0, chaos_send = 0;
    std::size_t slot = 0; // poll(): its place in the Poller
    bool eof = false;     // the peer sent FIN: answer what came, then close
    bool broken = false;  // close now
    bool writing = false; // waiting to send, not reading
    std::list<Connection>::iterator self;
    std::size_t unsent() const noexcept { return out.size() - out_sent; }
};
struct Ready {
    Connection* connection; // nullptr: the wake socket
    bool in, out;           // in: readable, a hang-up or an error (the next call says which)
};
// Readiness for a Reactor, level-triggered: epoll on Linux, where a wait costs what is
// ready; poll() elsewhere (WSAPoll on Windows), where it costs every connection. kqueue
// would spare the BSDs and macOS that cost; poll() keeps one path there until measured.
#ifdef __linux__
class Poller {
public:
    Poller() noexcept : fd_(::epoll_create1(EPOLL_CLOEXEC)) {}
    Poller(const Poller&) = delete;
    Poller& operator=(const Poller&) = delete;
    ~Poller() {
        if (fd_ >= 0) ::close(fd_);
    }
    bool ok() const noexcept { return fd_ >= 0; }
    bool add(native_handle_type s, Connection* c) { return control(EPOLL_CTL_ADD, s, c, false); }
    void watch(Connection& c, bool write) noexcept { control(EPOLL_CTL_MOD, c.socket, &c, write); }
    void remove(Connection&) noexcept {} // closing the socket removes it
    const std::vector<Ready>& wait(int ms) {
        epoll_event events[64];
        const int got = ::epoll_wait(fd_, events, 64, ms);
        ready_.clear();
        for (int i = 0; i < got; ++i)
            ready_.push_back({static_cast<Connection*>(events[i].data.ptr), (events[i].events & ~EPOLLOUT) != 0,
                              (events[i].events & EPOLLOUT) != 0});
        return ready_;
    }

private:
    bool control(int op, native_handle_type s, Connection* c, bool write) noexcept {
        epoll_event event{};
        event.events = write ? EPOLLOUT : EPOLLIN;
        event.data.ptr = c;
        return ::epoll_ctl(fd_, op, s, &event) == 0;
    }
    int fd_;
    std::vector<Ready> ready_; // reused: no allocation per wait
};
#else
class Poller {
public:
    bool ok() const noexcept { return true; }
    bool add(native_handle_type s, Connection* c) {
        owners_.reserve(owners_.size() + 1); // both grow, or neither
        pollfd_type fd{};
        fd.fd = s;
        fd.events = POLLIN;
        fds_.push_back(fd);
        owners_.push_back(c);
        if (c) c->slot = fds_.size() - 1;
        return true;
    }
    void watch(Connection& c, bool write) noexcept { fds_[c.slot].events = write ? POLLOUT : POLLIN; }
    // The last one takes its place. A connection that was never added (add() threw) still has
    // slot 0, which is the wake socket's: it is left alone.
    void remove(Connection& c) noexcept {
        if (owners_[c.slot] != &c) return;
        fds_[c.slot] = fds_.back();
        owners_[c.slot] = owners_.back();
        if (owners_[c.slot]) owners_[c.slot]->slot = c.slot;
        fds_.pop_back();
        owners_.pop_back();
    }
    const std::vector<Ready>& wait(int ms) {
        ready_.clear();
        if (poll_native(fds_.data(), fds_.size(), ms) <= 0) return ready_;
        for (std::size_t i = 0; i < fds_.size(); ++i)
            if (fds_[i].revents)
                ready_.push_back({owners_[i], (fds_[i].revents & ~POLLOUT) != 0, (fds_[i].revents & POLLOUT) != 0});
        return ready_;
    }

private:
    std::vector<pollfd_type> fds_;
    std::vector<Connection*> owners_;
    std::vector<Ready> ready_;
};
#endif
} // namespace detail

// One worker of serve_messages or serve_lines: a thread that owns its share of the
// connections, waits for them in a Poller, reads their requests, runs the handler and
// sends the replies, in order, one connection at a time. The accept loop hands it
// connections through `incoming_` and a byte on its wake socket.
class Server::Reactor {
public:
    struct Shared { // one serve_messages or serve_lines call's, read by every Reactor
        const RequestHandler& handler;
        const Reporter& report;
        const char* op; // "serve_messages" or "serve_lines"
        bool lines;
        std::size_t max_request, limit; // limit: connections open at once
        Timeout idle;
        native_handle_type waker; // the Server's: wakes an accept loop waiting for a free slot
        std::atomic<std::size_t> open{0};
        std::atomic<bool> waiting{false};
        void closed() noexcept {
            open.fetch_sub(1);
            if (waiting.exchange(false)) detail::wake_up(waker);
        }
    };
    explicit Reactor(Shared& shared) : shared_(shared) {}
    Reactor(const Reactor&) = delete;
    Reactor& operator=(const Reactor&) = delete;
    ~Reactor() {
        finish(detail::Clock::now());
        join();
    }

    bool start(std::error_code& ec) {
        if (!poller_.ok())
            return detail::fail(ec, shared_.op, shared_.report.server, detail::os_error(detail::last_error()),
                                "no poller");
        wake_ = detail::open_wake_socket(shared_.op, shared_.report.server, "a worker's wake socket", ec);
        if (ec) return false;
        scratch_.reset(new char[detail::chunk]);
        poller_.add(wake_, nullptr);
        // std::thread, not start_thread: under Wine, reactor threads made by CreateThread
        // sometimes never finished exiting (WaitForSingleObject hung once they had returned).
#if GREET_SOCKET_EXCEPTIONS
        try {
            thread_ = std::thread([this] { run(); });
        } catch (const std::system_error& error) {
            return detail::fail(ec, shared_.op, shared_.report.server, error.code(),
                                "no thread could be started for a worker (lower ServeOptions::workers)");
        }
#else
        thread_ = std::thread([this] { run(); });
#endif
        return true;
    }
    // From the accept loop. A connection no memory can be had for is closed and reported.
    void hand(Client& client, const Address& peer) noexcept {
        shared_.open.fetch_add(1);
#if GREET_SOCKET_EXCEPTIONS
        try {
#endif
            std::unique_lock<std::mutex> lock(mutex_);
            const bool was_empty = incoming_.empty();
            incoming_.push_back({std::move(client.io_.socket), peer, client.io_.chaos_recv, client.io_.chaos_send});
            lock.unlock();
            if (was_empty) detail::wake_up(wake_); // else it is awake already
#if GREET_SOCKET_EXCEPTIONS
        } catch (...) {
            shared_.closed();
            shared_.report.refused(peer, std::make_error_code(std::errc::not_enough_memory));
        }
#endif
    }
    // From the accept loop: no new requests; unsent replies may leave until the deadline.
    void finish(detail::Clock::time_point deadline) noexcept {
        if (!thread_.joinable()) return; // never started, or joined
        {
            std::lock_guard<std::mutex> lock(mutex_);
            finishing_ = true;
            finish_by_ = deadline;
        }
        detail::wake_up(wake_);
    }
    void join() noexcept {
        if (thread_.joinable()) thread_.join();
    }

private:
    struct Incoming {
        detail::Socket socket;
        Address peer;
        std::uint64_t chaos_recv, chaos_send;
    };
    static constexpr std::size_t output_limit = 65536; // unsent replies before a connection's requests wait

    void run() {
        for (;;) {
            handle(poller_.wait(wait_ms()));
            // What arrived while handlers ran is not silence: look again before expiring.
            if (expiring()) handle(poller_.wait(0));
            expire();
            if (closing_ && (connections_.empty() || detail::Clock::now() >= deadline_)) break;
        }
        while (!connections_.empty()) close(connections_.front());
    }
    void handle(const std::vector<detail::Ready>& batch) {
        bool woken = false;
        for (const detail::Ready& ready : batch) {
            if (!ready.connection)
                woken = true; // after the others: it may close connections still in the batch
            else
                guard(*ready.connection, [&] { serve(*ready.connection, ready.in, ready.out); });
        }
        if (woken) take_incoming();
    }
    // Runs step; a connection it could find no memory for is closed and reported.
    template <class F> void guard(detail::Connection& c, F&& step) noexcept {
#if GREET_SOCKET_EXCEPTIONS
        try {
            step();
        } catch (...) {
            shared_.report.failed(shared_.op, c.peer, std::make_error_code(std::errc::not_enough_memory),
                                  "no memory for this connection; it was closed");
            close(c);
        }
#else
        (void)c;
        step();
#endif
    }
    void serve(detail::Connection& c, bool readable, bool writable) {
        if (c.writing) {
            flush(c);
            if (c.unsent() == 0 && !closing_) answer_buffered(c); // closing: no new requests
        } else if (readable || writable) {
            read(c);
        }
        if (c.broken || (c.unsent() == 0 && (c.eof || closing_))) return close(c);
        if (c.writing != (c.unsent() > 0)) poller_.watch(c, c.writing = c.unsent() > 0);
    }
    void read(detail::Connection& c) {
        std::error_code err;
        const long got =
            detail::recv_some(c.socket, scratch_.get(), detail::chaos_piece(c.chaos_recv, detail::chunk), err);
        if (got < 0) return detail::would_block(err) ? void() : fail(c, err);
        touch(c);
        if (got == 0) return (void)(c.eof = true); // a request cut short is dropped, as recv_message's ClosedError
        const std::size_t n = static_cast<std::size_t>(got);
        if (!c.in.empty()) {
            c.in.append(scratch_.get(), n);
            return answer_buffered(c);
        }
        const std::size_t used = answer(c, scratch_.get(), n, 0);
        if (used < n && !c.broken) c.in.assign(scratch_.get() + used, n - used);
    }
    void answer_buffered(detail::Connection& c) {
        if (c.in.empty() || c.broken) return;
        c.in.erase(0, answer(c, c.in.data(), c.in.size(), c.scanned));
        if (c.in.empty() && c.in.capacity() > 1024) std::string().swap(c.in); // an idle connection keeps nothing
    }
    // Answers the whole requests at data's front while the replies fit: the bytes used.
    std::size_t answer(detail::Connection& c, const char* data, std::size_t size, std::size_t skip) {
        std::size_t used = 0;
        c.scanned = 0;
        for (std::string_view request; !c.broken && c.unsent() <= output_limit; skip = 0) {
            const std::size_t length = next_request(c, data + used, size - used, skip, request);
            if (length == 0) break;
            used += length;
            reply(c, request);
        }
        return used;
    }
    // The length of the whole request at data's front (0: not whole yet, or refused).
    std::size_t next_request(detail::Connection& c, const char* data, std::size_t size, std::size_t skip,
                             std::string_view& request) {
        const std::size_t max = shared_.max_request;
        if (!shared_.lines) {
            if (size < 4) return 0;
            const auto* h = reinterpret_cast<const unsigned char*>(data);
            const std::size_t length =
                std::size_t{h[0]} << 24 | std::size_t{h[1]} << 16 | std::size_t{h[2]} << 8 | std::size_t{h[3]};
            if (length > max)
                return refuse(c,
                              "the peer announced " + std::to_string(length) + " bytes, more than max_request " +
                                  std::to_string(max));
            if (size - 4 < length) return 0;
            request = std::string_view(data + 4, length);
            return 4 + length;
        }
        const std::size_t window = std::min(size, detail::line_window(max));
        const void* end = window > skip ? std::memchr(data + skip, '\n', window - skip) : nullptr;
        if (!end) {
            if (size >= detail::line_window(max))
                return refuse(c, "no line end within " + std::to_string(max) + " bytes (max_request)");
            c.scanned = size;
            return 0;
        }
        std::size_t length = static_cast<std::size_t>(static_cast<const char*>(end) - data);
        const std::size_t taken = length + 1;
        if (length > 0 && data[length - 1] == '\r') --length;
        if (length > max)
            return refuse(
                c, "a line of " + std::to_string(length) + " bytes, more than max_request " + std::to_string(max));
        request = std::string_view(data, length);
        return taken;
    }
    void reply(detail::Connection& c, std::string_view request) {
        std::string answer;
#if GREET_SOCKET_EXCEPTIONS
        try {
            answer = shared_.handler(request, c.peer);
        } catch (const std::bad_alloc&) {
            throw; // guard() reports it as such
        } catch (const std::exception& error) {
            return shared_.report.send(c.peer, error, false), void(c.broken = true);
        } catch (...) {
            shared_.report.send(c.peer, std::runtime_error("a handler threw something that is not a std::exception"),
                                false);
            return void(c.broken = true);
        }
#else
        answer = shared_.handler(request, c.peer);
#endif
        char header[4];
        std::string_view first = answer, second = "\n";
        if (!shared_.lines) {
            if (answer.size() > 0xFFFFFFFFu) return (void)refuse(c, "a reply of 4 GiB or more cannot be framed");
            const auto n = static_cast<std::uint32_t>(answer.size());
            header[0] = static_cast<char>(n >> 24), header[1] = static_cast<char>(n >> 16);
            header[2] = static_cast<char>(n >> 8), header[3] = static_cast<char>(n);
            first = std::string_view(header, 4), second = answer;
        }
        if (c.unsent() == 0) { // the common case: straight to the socket
            std::size_t sent = send_now(c, first, second);
            const std::size_t from_first = std::min(sent, first.size());
            first.remove_prefix(from_first), second.remove_prefix(sent - from_first);
        }
        if (!c.broken) c.out.append(first).append(second);
    }
    // At most output_limit bytes in at most 16 calls per wake-up (chaos mode sends 16 bytes a
    // call), so that a long reply does not hold the worker's other connections.
    void flush(detail::Connection& c) {
        for (std::size_t budget = output_limit, calls = 16; c.unsent() > 0; --calls) {
            if (budget == 0 || calls == 0) return;
            const std::size_t sent = send_now(c, std::string_view(c.out).substr(c.out_sent, budget), {});
            if (sent == 0) return; // the socket is full, or the connection broken
            c.out_sent += sent, budget -= sent;
        }
        c.out.clear(), c.out_sent = 0;
        if (c.out.capacity() > 1024) std::string().swap(c.out);
    }
    // One system call: the bytes it took (0 when it would block or failed).
    std::size_t send_now(detail::Connection& c, std::string_view a, std::string_view b) {
        const std::size_t piece = detail::chaos_piece(c.chaos_send, a.size() + b.size());
        a = a.substr(0, piece), b = b.substr(0, piece - a.size());
        std::error_code err;
        const long sent = detail::send_some(c.socket, a, b, err);
        if (sent < 0) {
            if (!detail::would_block(err)) fail(c, err);
            return 0;
        }
        touch(c);
        return static_cast<std::size_t>(sent);
    }
    std::size_t refuse(detail::Connection& c, const std::string& why) {
        shared_.report.failed(shared_.op, c.peer, std::make_error_code(std::errc::message_size), why);
        c.broken = true;
        return 0;
    }
    void fail(detail::Connection& c, std::error_code err) {
        shared_.report.failed(shared_.op, c.peer, err, {});
        c.broken = true;
    }
    // With an idle timeout, connections_ runs from the longest silent to the latest active.
    void touch(detail::Connection& c) {
        if (!shared_.idle) return;
        c.active = detail::Clock::now();
        connections_.splice(connections_.end(), connections_, c.self);
    }
    bool expiring() const {
        return shared_.idle && !connections_.empty() &&
            detail::Clock::now() - connections_.front().active >= *shared_.idle;
    }
    void expire() {
        if (!shared_.idle) return;
        const auto now = detail::Clock::now();
        while (!connections_.empty() && now - connections_.front().active >= *shared_.idle) {
            detail::Connection& c = connections_.front();
            shared_.report.failed(shared_.op, c.peer, std::make_error_code(std::errc::timed_out),
                                  "silent for " + detail::ms_text(shared_.idle) + " (ServeOptions::idle_timeout)");
            close(c);
        }
    }
    int wait_ms() const {
        auto ms = [](detail::Clock::duration left) {
            const auto count = std::chrono::ceil<std::chrono::milliseconds>(left).count();
            return static_cast<int>(std::clamp<decltype(count)>(count, 0, INT_MAX));
        };
        const auto now = detail::Clock::now();
        int wait = closing_ && deadline_ != detail::no_deadline ? ms(deadline_ - now) : -1;
        if (shared_.idle && !connections_.empty()) {
            const int idle = ms(*shared_.idle - (now - connections_.front().active));
            wait = wait < 0 ? idle : std::min(wait, idle);
        }
        return wait;
    }
    // The wake socket: connections from the accept loop, or join().
    void take_incoming() {
        detail::drain(wake_);
        std::vector<Incoming> arrived;
        bool finishing;
        detail::Clock::time_point finish_by;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            arrived.swap(incoming_);
            finishing = finishing_, finish_by = finish_by_;
        }
        for (Incoming& next : arrived) admit(next);
        if (finishing && !closing_) {
            closing_ = true;
            deadline_ = finish_by;
            for (auto it = connections_.begin(); it != connections_.end();) {
                detail::Connection& c = *it++;
                if (c.unsent() == 0) close(c); // the rest leave once their replies have
            }
        }
    }
    void admit(Incoming& next) {
        detail::Connection* c = nullptr;
        guard_admit(next, [&] {
            connections_.emplace_back();
            c = &connections_.back();
            c->self = std::prev(connections_.end());
        });
        if (!c) return;
        detail::set_blocking(next.socket, false);
        if (!next.peer.unix_domain) { // a reply goes at once, not after the ACK of the one before (Nagle)
            std::error_code ignored;
            detail::set_option(next.socket, IPPROTO_TCP, detail::tcp_no_delay, 1, ignored);
        }
        c->socket = std::move(next.socket);
        c->peer = std::move(next.peer);
        c->chaos_recv = next.chaos_recv, c->chaos_send = next.chaos_send;
        if (shared_.idle) c->active = detail::Clock::now();
        bool added = false;
        guard(*c, [&] { added = poller_.add(c->socket, c); });
        if (!added && c->socket != detail::no_socket) { // guard() closed it when it threw
            fail(*c, detail::os_error(detail::last_error()));
            close(*c);
        }
    }
    template <class F> void guard_admit(Incoming& next, F&& step) noexcept {
#if GREET_SOCKET_EXCEPTIONS
        try {
            step();
        } catch (...) {
            shared_.closed();
            shared_.report.failed(shared_.op, next.peer, std::make_error_code(std::errc::not_enough_memory),
                                  "no memory for this connection; it was refused");
        }
#else
        (void)next;
        step();
#endif
    }
    void close(detail::Connection& c) noexcept {
        poller_.remove(c);
        connections_.erase(c.self); // closes the socket
        shared_.closed();
    }

    Shared& shared_;
    detail::Poller poller_;
    detail::Socket wake_;
    std::unique_ptr<char[]> scratch_; // every read lands here first: an idle connection holds no buffer
    std::list<detail::Connection> connections_;
    bool closing_ = false;
    detail::Clock::time_point deadline_ = detail::no_deadline;
    std::mutex mutex_; // guards the three below, the accept loop's way in
    std::vector<Incoming> incoming_;
    bool finishing_ = false;
    detail::Clock::time_point finish_by_ = detail::no_deadline;
    std::thread thread_;
};

inline void Server::serve_messages(const RequestHandler& handler, const ServeOptions& options,
                                   std::error_code& ec) noexcept {
    detail::guarded(ec, "serve_messages", [&] { serve_requests(handler, options, false, ec); });
}
inline void Server::serve_lines(const RequestHandler& handler, const ServeOptions& options,
                                std::error_code& ec) noexcept {
    detail::guarded(ec, "serve_lines", [&] { serve_requests(handler, options, true, ec); });
}
// The accept loop of serve_messages and serve_lines: each client goes to the next worker.
inline void Server::serve_requests(const RequestHandler& handler, const ServeOptions& options, bool lines,
                                   std::error_code& ec) {
    const char* op = lines ? "serve_lines" : "serve_messages";
    if (!require_listening(op, ec)) return;
    if (options.idle_timeout && options.idle_timeout->count() < 0)
        return (void)detail::fail_argument(ec, op, "ServeOptions::idle_timeout must not be negative");
    if (options.backlog > 0 && (listen(options.backlog, ec), ec)) return;
    const Address here = local_address(ec);
    if (ec) return;
    const Reporter report{options, endpoint_};
    const std::size_t max_request = options.max_request ? options.max_request
        : lines                                         ? 65536
                                                        : std::size_t{16} * 1024 * 1024;
    Reactor::Shared shared{handler,
                           report,
                           op,
                           lines,
                           max_request,
                           options.max_clients ? options.max_clients : SIZE_MAX,
                           options.idle_timeout,
                           wake_->socket};
    std::list<Reactor> reactors;
    const std::size_t workers = options.workers ? options.workers : std::max(1u, std::thread::hardware_concurrency());
    for (std::size_t i = 0; i < workers && !ec; ++i) reactors.emplace_back(shared).start(ec);
    for (auto next = reactors.begin(); !ec && !stopped() && !cancelled();) {
        if (shared.open.load() >= shared.limit) { // further clients wait in the backlog
            shared.waiting.store(true);
            if (shared.open.load() >= shared.limit) sleep_until_woken(detail::no_deadline);
            continue;
        }
        std::error_code failed;
        std::pair<Client, Address> client = accept_until(detail::no_deadline, failed);
        if (!failed) {
            next->hand(client.first, client.second);
            if (++next == reactors.end()) next = reactors.begin();
            continue;
        }
        if (stopped() || cancelled()) break;
        report.own(here, Error(failed, last_error_message()));
        sleep_until_woken(detail::Clock::now() + std::chrono::milliseconds(100)); // out of descriptors, say
    }
    if (ec) return;     // a worker could not start: those that did are joined on the way out
    listeners_.clear(); // new clients are refused from here on
    listening_ = false;
    const auto deadline = detail::deadline_after(std::max(options.grace, std::chrono::milliseconds(0)));
    for (Reactor& reactor : reactors) reactor.finish(deadline); // all at once: they drain in parallel
    for (Reactor& reactor : reactors) reactor.join();
}

// --- UdpSocket

namespace detail {
inline std::string as_utf8(std::u16string_view text, std::error_code& ec) noexcept { return utf8::encode(text, ec); }
inline std::string as_utf8(std::u32string_view text, std::error_code& ec) noexcept { return utf8::encode(text, ec); }
inline std::string as_utf8(std::wstring_view text, std::error_code& ec) noexcept { return utf8::encode(text, ec); }
#if defined(__cpp_char8_t)
inline std::string as_utf8(std::u8string_view text, std::error_code&) {
    return std::string(reinterpret_cast<const char*>(text.data()), text.size());
}
#endif
// The first IPv4 address, else the first: one UDP socket has one address (see UdpSocket).
inline const sockaddr_storage& ipv4_first(const std::vector<sockaddr_storage>& addresses) {
    for (const sockaddr_storage& address : addresses)
        if (address.ss_family == AF_INET) return address;
    return addresses.front();
}
inline bool is_mapped(const sockaddr_in6& in6) noexcept {
    static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(&in6.sin6_addr, prefix, sizeof prefix) == 0;
}
} // namespace detail

// Names where a datagram went (send_to) or this socket (the rest).
inline bool UdpSocket::fail(std::error_code& ec, const char* op, std::string_view where, std::error_code code,
                            std::string_view note) const {
    if (code == std::errc::connection_refused)
        note = "no program received an earlier datagram there (the OS learnt it from an ICMP answer); the next one may "
               "still arrive";
    return detail::fail(ec, op, where, code, note);
}
// Opens the socket: dual-stack or not for IPv6, broadcast as set, blocking as the timeout
// and canceller say.
inline bool UdpSocket::open(int family, bool dual, const char* op, std::error_code& ec) {
    std::error_code failed;
    detail::Socket s = detail::open_socket(family, SOCK_DGRAM, failed);
    if (failed) return io_.fail(ec, op, failed);
    if (family == AF_INET6) {
        const int flag = dual ? 0 : 1;
        ::setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, reinterpret_cast<const char*>(&flag), sizeof flag);
    }
    if (broadcast_ && !detail::set_option(s, SOL_SOCKET, SO_BROADCAST, 1, failed)) return io_.fail(ec, op, failed);
    detail::prepare_datagram(s);
    io_.socket = std::move(s);
    family_ = family;
    ipv6_only_ = family == AF_INET6 && !dual;
    io_.apply_timeout();
    return true;
}
// Where host:port is, in this socket's family; opens the socket (dual-stack where it can)
// if it is not open yet.
inline bool UdpSocket::target(std::string_view host, std::uint16_t port, const char* op, sockaddr_storage& to,
                              std::error_code& ec) {
    const std::string where = detail::endpoint_text(host, port);
    const std::vector<sockaddr_storage> addresses = detail::resolve(op, where, host, port, ec);
    if (ec) return false;
    to = detail::ipv4_first(addresses);
    const auto ipv6 = [](const sockaddr_storage& address) { return address.ss_family == AF_INET6; };
    const auto first_ipv6 = std::find_if(addresses.begin(), addresses.end(), ipv6);
    if (ipv6_only_ && first_ipv6 != addresses.end())
        to = *first_ipv6; // an IPv6-only socket takes the name's IPv6 address
    if (!is_open()) {
        if (io_.endpoint.empty()) io_.endpoint = where;
        const bool dual = dual_stack_.value_or(true);
        if (!(dual && open(AF_INET6, true, op, ec)) && (ec.clear(), !open(to.ss_family, false, op, ec))) return false;
    }
    return fit(to, op, where, ec);
}
// An IPv4 address goes to a dual-stack socket as ::ffff:a.b.c.d, and back.
inline bool UdpSocket::fit(sockaddr_storage& to, const char* op, std::string_view where, std::error_code& ec) const {
    if (to.ss_family == family_) return true;
    if (family_ == AF_INET6 && to.ss_family == AF_INET && !ipv6_only_) {
        const sockaddr_in in4 = reinterpret_cast<const sockaddr_in&>(to);
        auto& in6 = reinterpret_cast<sockaddr_in6&>(to);
        in6 = sockaddr_in6{};
        in6.sin6_family = AF_INET6;
        in6.sin6_port = in4.sin_port;
        reinterpret_cast<unsigned char*>(&in6.sin6_addr)[10] = 0xff;
        reinterpret_cast<unsigned char*>(&in6.sin6_addr)[11] = 0xff;
        std::memcpy(reinterpret_cast<unsigned char*>(&in6.sin6_addr) + 12, &in4.sin_addr, 4);
        return true;
    }
    if (family_ == AF_INET && to.ss_family == AF_INET6 &&
        detail::is_mapped(reinterpret_cast<const sockaddr_in6&>(to))) {
        const sockaddr_in6 in6 = reinterpret_cast<const sockaddr_in6&>(to);
        auto& in4 = reinterpret_cast<sockaddr_in&>(to);
        in4 = sockaddr_in{};
        in4.sin_family = AF_INET;
        in4.sin_port = in6.sin6_port;
        std::memcpy(&in4.sin_addr, reinterpret_cast<const unsigned char*>(&in6.sin6_addr) + 12, 4);
        return true;
    }
    return fail(ec, op, where, std::make_error_code(std::errc::address_family_not_supported),
                family_ == AF_INET ? "this socket is IPv4; bind an IPv6 address (or \"\") to reach IPv6 peers"
                                   : "this socket is IPv6 only (bound to an IPv6 address, or see set_dual_stack)");
}

inline void UdpSocket::bind(std::string_view host, std::uint16_t port, std::error_code& ec) noexcept {
    detail::guarded(ec, "bind", [&] {
        ec.clear();
        io_.endpoint = detail::endpoint_text(host, port);
        if (is_open())
            return (void)io_.fail(ec, "bind", std::make_error_code(std::errc::invalid_argument),
                                  "already bound or in use; close() first");
        std::vector<sockaddr_storage> addresses(1);
        if (host.empty()) { // every interface: "::" dual-stack, or "0.0.0.0" where IPv6 is missing
            addresses[0].ss_family = AF_INET6;
            sockaddr_storage any4{};
            any4.ss_family = AF_INET;
            addresses.push_back(any4);
        } else if ((addresses = detail::resolve("bind", io_.endpoint, host, port, ec)), ec) {
            return;
        }
        const sockaddr_storage& chosen = host.empty() ? addresses[0] : detail::ipv4_first(addresses);
        sockaddr_storage address = chosen;
        if (address.ss_family == AF_INET6)
            reinterpret_cast<sockaddr_in6&>(address).sin6_port = htons(port);
        else
            reinterpret_cast<sockaddr_in&>(address).sin_port = htons(port);
        std::error_code failed;
        if (!open(address.ss_family, dual_stack_.value_or(host.empty()), "bind", ec) &&
            !(host.empty() && (ec.clear(), open(AF_INET, false, "bind", ec))))
            return;
        if (family_ != address.ss_family)
            (address = addresses[1]), reinterpret_cast<sockaddr_in&>(address).sin_port = htons(port);
        if (!detail::bind_to(io_.socket, address, failed)) return (void)(io_.close(), io_.fail(ec, "bind", failed));
        // An IPv6 address other than "::" sends from that address: IPv4 peers are out of reach.
        static const in6_addr any{};
        if (family_ == AF_INET6 &&
            std::memcmp(&reinterpret_cast<const sockaddr_in6&>(address).sin6_addr, &any, sizeof any) != 0)
            ipv6_only_ = true;
        const Address here = detail::socket_address(io_.socket, false, "bind", io_.endpoint, ec);
        if (!ec) io_.endpoint = detail::endpoint_text(host, here.port);
    });
}

inline void UdpSocket::connect(std::string_view host, std::uint16_t port, std::error_code& ec) noexcept {
    detail::guarded(ec, "connect", [&] {
        ec.clear();
        sockaddr_storage to{};
        if (!target(host, port, "connect", to, ec)) return;
        bool pending = false;
        std::error_code failed;
        if (!detail::connect_to(io_.socket, to, &pending, failed)) return (void)io_.fail(ec, "connect", failed);
        connected_ = true;
        peer_ = detail::to_address(to);
        io_.endpoint = detail::endpoint_text(host, port);
    });
}

// One datagram, whole; its size (0 with ec set).
inline std::size_t UdpSocket::send_datagram(std::string_view bytes, const sockaddr_storage* to, const char* op,
                                            std::string_view where, std::error_code& ec) {
    const bool ipv6 = to ? to->ss_family == AF_INET6 && !detail::is_mapped(reinterpret_cast<const sockaddr_in6&>(*to))
                         : peer_.host.find(':') != std::string::npos;
    const std::size_t limit = ipv6 ? max_datagram + 20 : max_datagram; // IPv6's header is not counted in its 65,535
    if (bytes.size() > limit)
        return fail(ec, op, where, std::make_error_code(std::errc::message_size),
                    "a datagram holds at most " + std::to_string(limit) + " bytes; this one has " +
                        std::to_string(bytes.size())),
               0;
    if (!io_.begin(op, ec)) return 0;
    const auto until = io_.deadline();
    for (;;) {
        std::error_code failed;
        if (detail::send_datagram(io_.socket, bytes, to, failed) >= 0) return bytes.size();
        if (!io_.check_cancelled(op, ec)) return 0;
        if (!detail::would_block(failed)) return fail(ec, op, where, failed), 0;
        if (!io_.await(POLLOUT, until, op, ec)) return 0;
    }
}
inline std::size_t UdpSocket::send(std::string_view bytes, std::error_code& ec) noexcept {
    return detail::guarded(ec, "send", [&]() -> std::size_t {
        ec.clear();
        if (!connected_)
            return io_.fail(ec, "send", std::make_error_code(std::errc::not_connected),
                            "connect() first, or use send_to"),
                   0;
        return send_datagram(bytes, nullptr, "send", io_.endpoint, ec);
    });
}
inline std::size_t UdpSocket::send_to(std::string_view bytes, std::string_view host, std::uint16_t port,
                                      std::error_code& ec) noexcept {
    return detail::guarded(ec, "send_to", [&]() -> std::size_t {
        ec.clear();
        sockaddr_storage to{};
        if (!target(host, port, "send_to", to, ec)) return 0;
        return send_datagram(bytes, &to, "send_to", detail::endpoint_text(host, port), ec);
    });
}
inline std::size_t UdpSocket::send_to(std::string_view bytes, const Address& to, std::error_code& ec) noexcept {
    if (to.unix_domain)
        return detail::guarded(ec, "send_to", [&]() -> std::size_t {
            return io_.fail(ec, "send_to", std::make_error_code(std::errc::invalid_argument), "not an IP address"), 0;
        });
    return send_to(bytes, to.host, to.port, ec);
}
template <class Text, class>
std::size_t UdpSocket::send_to(const Text& text, const Address& to, std::error_code& ec) noexcept {
    return detail::guarded(ec, "send_to", [&]() -> std::size_t {
        const std::string bytes = detail::as_utf8(text, ec);
        return ec ? 0 : send_to(std::string_view(bytes), to, ec);
    });
}
template <class Text, class> std::size_t UdpSocket::send_to(const Text& text, std::string_view host, std::uint16_t port,
                                                            std::error_code& ec) noexcept {
    return detail::guarded(ec, "send_to", [&]() -> std::size_t {
        const std::string bytes = detail::as_utf8(text, ec);
        return ec ? 0 : send_to(std::string_view(bytes), host, port, ec);
    });
}

// The next datagram, whole; with ec set (EMSGSIZE), its first max_bytes.
inline std::string UdpSocket::recv_datagram(std::size_t max_bytes, sockaddr_storage* from, const char* op,
                                            std::error_code& ec) {
    if (!io_.begin(op, ec)) return {};
    if (max_bytes == 0) return detail::fail_argument(ec, op, "max_bytes must be at least 1"), std::string();
    const std::size_t room = std::min<std::size_t>(max_bytes, 65536); // no datagram is longer
    std::string out(room, '\0');
    const auto until = io_.deadline();
    for (;;) {
        std::error_code failed;
        bool cut = false;
        const long got = detail::recv_datagram(io_.socket, out.data(), room, from, &cut, failed);
        if (got >= 0) {
            out.resize(std::min(static_cast<std::size_t>(got), room));
            if (!cut) return out;
            const std::string size = static_cast<std::size_t>(got) > room
                ? "a datagram of " + std::to_string(got) + " bytes"
                : std::string("a datagram");
            detail::fail(ec, op, from ? detail::to_address(*from).to_string() : io_.endpoint,
                         std::make_error_code(std::errc::message_size),
                         size + ", more than max_bytes " + std::to_string(max_bytes) +
                             "; the OS dropped the rest of it");
            return out;
        }
        if (!io_.check_cancelled(op, ec)) return {};
        if (!detail::would_block(failed)) return fail(ec, op, io_.endpoint, failed), std::string();
        if (!io_.await(POLLIN, until, op, ec)) return {};
    }
}
inline std::string UdpSocket::recv(std::size_t max_bytes, std::error_code& ec) noexcept {
    return detail::guarded(ec, "recv", [&]() -> std::string {
        ec.clear();
        if (!connected_)
            return io_.fail(ec, "recv", std::make_error_code(std::errc::not_connected),
                            "connect() first, or use recv_from"),
                   std::string();
        return recv_datagram(max_bytes, nullptr, "recv", ec);
    });
}
inline std::pair<std::string, Address> UdpSocket::recv_from(std::size_t max_bytes, std::error_code& ec) noexcept {
    return detail::guarded(ec, "recv_from", [&]() -> std::pair<std::string, Address> {
        sockaddr_storage from{};
        std::string data = recv_datagram(max_bytes, &from, "recv_from", ec);
        if (ec && ec != std::errc::message_size) return {};
        return {std::move(data), detail::to_address(from)};
    });
}
inline std::pair<std::string, Address> UdpSocket::recv_text_from(std::size_t max_bytes, std::error_code& ec) noexcept {
    return detail::guarded(ec, "recv_text_from", [&]() -> std::pair<std::string, Address> {
        sockaddr_storage from{};
        std::string data = recv_datagram(max_bytes, &from, "recv_text_from", ec);
        if (ec) return {};
        bool ill_formed = false;
        const std::size_t valid = detail::utf8_prefix(data, &ill_formed);
        if (valid < data.size())
            return detail::fail_utf8(ec, "recv_text_from", detail::to_address(from).to_string(), valid,
                                     ill_formed
                                         ? "invalid UTF-8 at byte " + std::to_string(valid) + " of a datagram of " +
                                             std::to_string(data.size()) + " bytes; recv_from() takes any bytes"
                                         : "the datagram ends inside a character"),
                   std::pair<std::string, Address>();
        return {std::move(data), detail::to_address(from)};
    });
}

inline void UdpSocket::set_timeout(Timeout timeout, std::error_code& ec) noexcept {
    ec.clear();
    if (timeout && timeout->count() < 0)
        return (void)detail::guarded(
            ec, "set_timeout", [&] { detail::fail_argument(ec, "set_timeout", "the timeout must not be negative"); });
    io_.timeout = timeout;
    io_.apply_timeout();
}
inline void UdpSocket::set_canceller(Canceller canceller) noexcept {
    io_.canceller = std::move(canceller.state_);
    io_.apply_timeout();
}
inline void UdpSocket::set_broadcast(bool on, std::error_code& ec) noexcept {
    detail::guarded(ec, "set_broadcast", [&] {
        ec.clear();
        std::error_code failed;
        if (is_open() && !detail::set_option(io_.socket, SOL_SOCKET, SO_BROADCAST, on ? 1 : 0, failed))
            return (void)io_.fail(ec, "set_broadcast", failed);
        broadcast_ = on;
    });
}
inline void UdpSocket::membership(bool join, std::string_view group, std::string_view interface, const char* op,
                                  std::error_code& ec) {
    ec.clear();
    const auto invalid = std::make_error_code(std::errc::invalid_argument);
    const std::string where = detail::printable(group), device(interface);
    if (!is_open()) return (void)detail::fail(ec, op, where, invalid, "bind() the group's port first");
    sockaddr_storage address{};
    if (!detail::parse_numeric(std::string(group), 0, address))
        return (void)detail::fail(ec, op, where, invalid, "not an IP address");
    int rc = 0;
    if (address.ss_family == AF_INET) {
        ip_mreq request{};
        request.imr_multiaddr = reinterpret_cast<const sockaddr_in&>(address).sin_addr;
        if ((ntohl(request.imr_multiaddr.s_addr) >> 28) != 14)
            return (void)detail::fail(ec, op, where, invalid, "not a multicast group (224.0.0.0/4)");
        if (!device.empty() && ::inet_pton(AF_INET, device.c_str(), &request.imr_interface) != 1)
            return (void)detail::fail(ec, op, where, invalid,
                                      "an IPv4 group's interface is its address, such as 127.0.0.1");
        rc = ::setsockopt(io_.socket, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP,
                          reinterpret_cast<const char*>(&request), sizeof request);
    } else {
        ipv6_mreq request{};
        request.ipv6mr_multiaddr = reinterpret_cast<const sockaddr_in6&>(address).sin6_addr;
        if (reinterpret_cast<const unsigned char*>(&request.ipv6mr_multiaddr)[0] != 0xff)
            return (void)detail::fail(ec, op, where, invalid, "not a multicast group (ff00::/8)");
        request.ipv6mr_interface = device.empty() ? 0 : detail::interface_index(device.c_str());
        if (!device.empty() && request.ipv6mr_interface == 0)
            return (void)detail::fail(ec, op, where, std::make_error_code(std::errc::no_such_device),
                                      "no interface named " + detail::printable(device));
        rc = ::setsockopt(io_.socket, IPPROTO_IPV6, join ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP,
                          reinterpret_cast<const char*>(&request), sizeof request);
    }
    if (rc != 0) detail::fail(ec, op, where, detail::os_error(detail::last_error()));
}
inline void UdpSocket::join_group(std::string_view group, std::string_view interface, std::error_code& ec) noexcept {
    detail::guarded(ec, "join_group", [&] { membership(true, group, interface, "join_group", ec); });
}
inline void UdpSocket::leave_group(std::string_view group, std::string_view interface, std::error_code& ec) noexcept {
    detail::guarded(ec, "leave_group", [&] { membership(false, group, interface, "leave_group", ec); });
}
inline Address UdpSocket::local_address(std::error_code& ec) const noexcept {
    return detail::guarded(ec, "local_address", [&]() -> Address {
        ec.clear();
        if (!is_open())
            return io_.fail(ec, "local_address", std::make_error_code(std::errc::not_connected),
                            "bind() or send first"),
                   Address();
        return detail::socket_address(io_.socket, false, "local_address", io_.endpoint, ec);
    });
}
inline Address UdpSocket::peer_address(std::error_code& ec) const noexcept {
    return detail::guarded(ec, "peer_address", [&]() -> Address {
        ec.clear();
        if (!connected_)
            return io_.fail(ec, "peer_address", std::make_error_code(std::errc::not_connected), "connect() first"),
                   Address();
        return peer_;
    });
}
inline void UdpSocket::close() noexcept {
    io_.close();
    connected_ = ipv6_only_ = false;
    family_ = AF_UNSPEC;
}

// ---------------------------------------------------------------------------
// The throwing forms: each one line over its error-code twin. detail::raise is the one
// place that throws.
#if GREET_SOCKET_EXCEPTIONS
namespace detail {
[[noreturn]] inline void raise(std::error_code code) {
    const Failure& failure = last_failure();
    const std::string message = failure.code == code ? failure.message : describe("greet_socket", {}, code, {});
    if (failure.code == code && failure.resolve) throw ResolveError(code, message);
    if (code == std::errc::timed_out) throw TimeoutError(code, message);
    if (code == make_error_code(errc::peer_closed)) throw ClosedError(code, message);
    if (code.category() == error_category()) throw TlsError(code, message);
    if (code == std::errc::illegal_byte_sequence) throw Utf8Error(failure.code == code ? failure.offset : 0, message);
    throw Error(code, message);
}
// Calls call(ec) and throws what its failure calls for.
template <class F> auto checked(F&& call) {
    std::error_code ec;
    if constexpr (std::is_void_v<decltype(call(ec))>) {
        call(ec);
        if (ec) raise(ec);
    } else {
        auto result = call(ec);
        if (ec) raise(ec);
        return result;
    }
}
} // namespace detail

inline std::uint16_t parse_port(std::string_view text) {
    return detail::checked([&](std::error_code& ec) { return parse_port(text, ec); });
}
namespace utf8 {
inline std::string encode(std::u16string_view text) {
    return detail::checked([&](std::error_code& ec) { return encode(text, ec); });
}
inline std::string encode(std::u32string_view text) {
    return detail::checked([&](std::error_code& ec) { return encode(text, ec); });
}
inline std::string encode(std::wstring_view text) {
    return detail::checked([&](std::error_code& ec) { return encode(text, ec); });
}
inline std::u32string decode(std::string_view bytes) {
    return detail::checked([&](std::error_code& ec) { return decode(bytes, ec); });
}
} // namespace utf8

inline Canceller::Canceller() {
    detail::checked([&](std::error_code& ec) { *this = Canceller(ec); });
}

inline Client::Client(std::string_view host, std::uint16_t port) { connect(host, port); }
inline void Client::connect(std::string_view host, std::uint16_t port) {
    detail::checked([&](std::error_code& ec) { connect(host, port, ec); });
}
inline void Client::set_socket_options(SocketOptions setup) {
    detail::checked([&](std::error_code& ec) { set_socket_options(std::move(setup), ec); });
}
inline void Client::set_no_delay(bool on) {
    detail::checked([&](std::error_code& ec) { set_no_delay(on, ec); });
}
inline void Client::set_keep_alive(std::optional<KeepAlive> settings) {
    detail::checked([&](std::error_code& ec) { set_keep_alive(settings, ec); });
}
inline void Client::set_send_buffer_size(int bytes) {
    detail::checked([&](std::error_code& ec) { set_send_buffer_size(bytes, ec); });
}
inline void Client::set_receive_buffer_size(int bytes) {
    detail::checked([&](std::error_code& ec) { set_receive_buffer_size(bytes, ec); });
}
inline void Client::set_linger(std::optional<std::chrono::seconds> linger) {
    detail::checked([&](std::error_code& ec) { set_linger(linger, ec); });
}
inline void Client::connect_unix(std::string_view path) {
    detail::checked([&](std::error_code& ec) { connect_unix(path, ec); });
}
inline Credentials Client::peer_credentials() const {
    return detail::checked([&](std::error_code& ec) { return peer_credentials(ec); });
}
inline std::size_t Client::send(std::string_view bytes) {
    return detail::checked([&](std::error_code& ec) { return send(bytes, ec); });
}
inline std::size_t Client::send(const char* bytes) { return send(std::string_view(bytes)); }
inline std::size_t Client::send(std::u16string_view text) {
    return detail::checked([&](std::error_code& ec) { return send(text, ec); });
}
inline std::size_t Client::send(std::u32string_view text) {
    return detail::checked([&](std::error_code& ec) { return send(text, ec); });
}
inline std::size_t Client::send(std::wstring_view text) {
    return detail::checked([&](std::error_code& ec) { return send(text, ec); });
}
#if defined(__cpp_char8_t)
inline std::size_t Client::send(std::u8string_view text) {
    return detail::checked([&](std::error_code& ec) { return send(text, ec); });
}
#endif
inline std::size_t Client::send_line(std::string_view text) {
    return detail::checked([&](std::error_code& ec) { return send_line(text, ec); });
}
inline std::size_t Client::send_message(std::string_view payload) {
    return detail::checked([&](std::error_code& ec) { return send_message(payload, ec); });
}
inline std::string Client::recv_message(std::size_t max_bytes) {
    return detail::checked([&](std::error_code& ec) { return recv_message(max_bytes, ec); });
}
inline std::string Client::recv(std::size_t max_bytes) {
    return detail::checked([&](std::error_code& ec) { return recv(max_bytes, ec); });
}
inline std::string Client::recv_text(std::size_t max_bytes) {
    return detail::checked([&](std::error_code& ec) { return recv_text(max_bytes, ec); });
}
inline std::string Client::recv_exact(std::size_t n) {
    return detail::checked([&](std::error_code& ec) { return recv_exact(n, ec); });
}
inline std::string Client::recv_line(std::size_t max_bytes) {
    return detail::checked([&](std::error_code& ec) { return recv_line(max_bytes, ec); });
}
inline std::size_t Client::recv_into(char* into, std::size_t max_bytes) {
    return detail::checked([&](std::error_code& ec) { return recv_into(into, max_bytes, ec); });
}
inline void Client::recv_exact_into(char* into, std::size_t n) {
    detail::checked([&](std::error_code& ec) { recv_exact_into(into, n, ec); });
}
inline void Client::recv_line(std::string& line, std::size_t max_bytes) {
    detail::checked([&](std::error_code& ec) { recv_line(line, max_bytes, ec); });
}
inline std::string_view Client::recv_line_view(std::size_t max_bytes) {
    return detail::checked([&](std::error_code& ec) { return recv_line_view(max_bytes, ec); });
}
inline void Client::set_timeout(Timeout timeout) {
    detail::checked([&](std::error_code& ec) { set_timeout(timeout, ec); });
}
inline void Client::shutdown_send() {
    detail::checked([&](std::error_code& ec) { shutdown_send(ec); });
}
#ifdef GREET_SOCKET_OPENSSL
inline void Client::start_tls(const TlsOptions& options) {
    detail::checked([&](std::error_code& ec) { start_tls(options, ec); });
}
inline void Client::accept_tls(const TlsOptions& options) {
    detail::checked([&](std::error_code& ec) { accept_tls(options, ec); });
}
#endif
inline Address Client::local_address() const {
    return detail::checked([&](std::error_code& ec) { return local_address(ec); });
}
inline Address Client::peer_address() const {
    return detail::checked([&](std::error_code& ec) { return peer_address(ec); });
}

inline Server::Server(std::string_view host, std::uint16_t port, int backlog) {
    bind(host, port);
    listen(backlog);
}
inline void Server::bind(std::string_view host, std::uint16_t port) {
    detail::checked([&](std::error_code& ec) { bind(host, port, ec); });
}
inline void Server::bind_unix(std::string_view path) {
    detail::checked([&](std::error_code& ec) { bind_unix(path, ec); });
}
inline void Server::listen(int backlog) {
    detail::checked([&](std::error_code& ec) { listen(backlog, ec); });
}
inline std::pair<Client, Address> Server::accept() {
    return detail::checked([&](std::error_code& ec) { return accept(ec); });
}
inline void Server::set_timeout(Timeout timeout) {
    detail::checked([&](std::error_code& ec) { set_timeout(timeout, ec); });
}
inline Address Server::local_address() const {
    return detail::checked([&](std::error_code& ec) { return local_address(ec); });
}
inline void Server::serve(const Handler& handler, const ServeOptions& options) {
    detail::checked([&](std::error_code& ec) { serve(handler, options, ec); });
}
inline void Server::serve_messages(const RequestHandler& handler, const ServeOptions& options) {
    detail::checked([&](std::error_code& ec) { serve_messages(handler, options, ec); });
}
inline void Server::serve_lines(const RequestHandler& handler, const ServeOptions& options) {
    detail::checked([&](std::error_code& ec) { serve_lines(handler, options, ec); });
}

inline void UdpSocket::bind(std::string_view host, std::uint16_t port) {
    detail::checked([&](std::error_code& ec) { bind(host, port, ec); });
}
inline void UdpSocket::connect(std::string_view host, std::uint16_t port) {
    detail::checked([&](std::error_code& ec) { connect(host, port, ec); });
}
inline std::size_t UdpSocket::send(std::string_view bytes) {
    return detail::checked([&](std::error_code& ec) { return send(bytes, ec); });
}
inline std::size_t UdpSocket::send_to(std::string_view bytes, const Address& to) {
    return detail::checked([&](std::error_code& ec) { return send_to(bytes, to, ec); });
}
inline std::size_t UdpSocket::send_to(std::string_view bytes, std::string_view host, std::uint16_t port) {
    return detail::checked([&](std::error_code& ec) { return send_to(bytes, host, port, ec); });
}
template <class Text, class> std::size_t UdpSocket::send_to(const Text& text, const Address& to) {
    return detail::checked([&](std::error_code& ec) { return send_to(text, to, ec); });
}
template <class Text, class>
std::size_t UdpSocket::send_to(const Text& text, std::string_view host, std::uint16_t port) {
    return detail::checked([&](std::error_code& ec) { return send_to(text, host, port, ec); });
}
inline std::string UdpSocket::recv(std::size_t max_bytes) {
    return detail::checked([&](std::error_code& ec) { return recv(max_bytes, ec); });
}
inline std::pair<std::string, Address> UdpSocket::recv_from(std::size_t max_bytes) {
    return detail::checked([&](std::error_code& ec) { return recv_from(max_bytes, ec); });
}
inline std::pair<std::string, Address> UdpSocket::recv_text_from(std::size_t max_bytes) {
    return detail::checked([&](std::error_code& ec) { return recv_text_from(max_bytes, ec); });
}
inline void UdpSocket::set_timeout(Timeout timeout) {
    detail::checked([&](std::error_code& ec) { set_timeout(timeout, ec); });
}
inline void UdpSocket::set_broadcast(bool on) {
    detail::checked([&](std::error_code& ec) { set_broadcast(on, ec); });
}
inline void UdpSocket::join_group(std::string_view group, std::string_view interface) {
    detail::checked([&](std::error_code& ec) { join_group(group, interface, ec); });
}
inline void UdpSocket::leave_group(std::string_view group, std::string_view interface) {
    detail::checked([&](std::error_code& ec) { leave_group(group, interface, ec); });
}
inline Address UdpSocket::local_address() const {
    return detail::checked([&](std::error_code& ec) { return local_address(ec); });
}
inline Address UdpSocket::peer_address() const {
    return detail::checked([&](std::error_code& ec) { return peer_address(ec); });
}
#endif // GREET_SOCKET_EXCEPTIONS

} // namespace greet

#endif // GREET_SOCKET_HPP

// MIT License
//
// Copyright (c) 2026 the greet_socket authors
//
// Permission is hereby granted, free of charge, to any person obtaining a copy of this
// software and associated documentation files (the "Software"), to deal in the Software
// without restriction, including without limitation the rights to use, copy, modify,
// merge, publish, distribute, sublicense, and/or sell copies of the Software, and to
// permit persons to whom the Software is furnished to do so, subject to the following
// conditions:
//
// The above copyright notice and this permission notice shall be included in all copies
// or substantial portions of the Software.
//
// THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
// INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A
// PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT
// HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF
// CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE
// OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
