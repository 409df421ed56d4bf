// The TLS build's consumer: greet_socket.hpp with GREET_SOCKET_OPENSSL defined by the
// route (CMake target, pkg-config, meson dependency), and OpenSSL 3 linked by it.
#include "greet_socket.hpp"

#include <openssl/crypto.h>

#include <cstdio>

#ifndef GREET_SOCKET_OPENSSL
#error "the TLS build's route did not define GREET_SOCKET_OPENSSL"
#endif

int main() {
    // Once the header has its TLS API, this program also names it here:
    //     greet::TlsOptions options;
    if (OPENSSL_version_major() < 3) {
        std::fprintf(stderr, "OpenSSL %s is older than 3\n", OpenSSL_version(OPENSSL_VERSION));
        return 1;
    }
    std::printf("greet_socket %s with GREET_SOCKET_OPENSSL, linked to %s\n", GREET_SOCKET_VERSION,
                OpenSSL_version(OPENSSL_VERSION));
    return 0;
}
