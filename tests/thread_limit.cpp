// A server with no thread to spare, for test_alloc_faults.cpp: it binds 127.0.0.1:0,
// prints "port <n>", then drops root with RLIMIT_NPROC at 1 (root ignores the limit), so
// the thread serve() starts for a client fails with EAGAIN. Each on_error report is
// printed as "report <what()>" and stops the server.
// Exit status: 0 after serve() returned, 3 if a handler ran (a thread was started after
// all), 77 when the limit cannot be put in place (the test skips).
#include "greet_socket.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#include <sys/resource.h>
#include <unistd.h>

int main() {
    greet::Server server("127.0.0.1", 0);
    std::printf("port %u\n", static_cast<unsigned>(server.local_address().port));
    std::fflush(stdout);

    const rlimit one{1, 1};
    if (::setrlimit(RLIMIT_NPROC, &one) != 0) {
        std::printf("skip: setrlimit(RLIMIT_NPROC): %s\n", std::strerror(errno));
        return 77;
    }
    // 65534 is "nobody" on Linux: an unprivileged user, to whom the limit applies.
    if (::getuid() == 0 && ::setuid(65534) != 0) {
        std::printf("skip: setuid(65534): %s\n", std::strerror(errno));
        return 77;
    }

    bool handler_ran = false;
    greet::ServeOptions options;
    options.on_error = [&](const greet::Address&, const std::exception& error) {
        std::printf("report %s\n", error.what());
        std::fflush(stdout);
        server.stop();
    };
    server.serve([&](greet::Client&, const greet::Address&) {
        handler_ran = true;
        std::printf("handler ran\n");
        std::fflush(stdout);
        server.stop();
    }, options);
    std::fflush(stdout);
    // _Exit: LeakSanitizer's exit check starts a thread, which the limit forbids.
    std::_Exit(handler_ran ? 3 : 0);
}
