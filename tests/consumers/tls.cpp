// The TLS build's consumer: greet_socket.hpp with GREET_SOCKET_OPENSSL defined by the
// route (CMake target, pkg-config, meson dependency), and OpenSSL 3 linked by it.
#include "greet_socket.hpp"

#include <openssl/crypto.h>

#include <cstdio>

#ifndef GREET_SOCKET_OPENSSL
#error "the TLS build's route did not define GREET_SOCKET_OPENSSL"
#endif

int main() {
    // The TLS API, linked: start_tls on a Client that is not connected fails with ENOTCONN
    // (the error-code form, so the program needs no exceptions).
    greet::Client client;
    std::error_code ec;
    client.start_tls(greet::TlsOptions{}, ec);
    if (ec != std::errc::not_connected) {
        std::fprintf(stderr, "start_tls on an unconnected Client: %s\n", ec.message().c_str());
        return 1;
    }
    if (OPENSSL_version_major() < 3) {
        std::fprintf(stderr, "OpenSSL %s is older than 3\n", OpenSSL_version(OPENSSL_VERSION));
        return 1;
    }
    std::printf("greet_socket %s with GREET_SOCKET_OPENSSL, linked to %s\n", GREET_SOCKET_VERSION,
                OpenSSL_version(OPENSSL_VERSION));
    return 0;
}
