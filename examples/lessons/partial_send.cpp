// Lesson 3: "c.send(...)" does not promise to send everything.
// The OS takes what fits in its buffers and returns the count; the rest is the caller's job.
// Build: g++ -std=c++17 -I. examples/lessons/partial_send.cpp -o partial_send -pthread
#include "greet_socket.hpp"

#include <string>
#include <thread>

int main() try {
    greet::Server server("127.0.0.1", 0);
    greet::Client sender("127.0.0.1", server.local_address().port);
    auto [reader, address] = server.accept();
    const std::string big(32 << 20, 'x'); // 32 MiB, far more than the socket buffers hold

#ifdef MSG_DONTWAIT // POSIX: one raw send() that may not wait, as Python's send() on a non-blocking socket
    const long taken = static_cast<long>(::send(sender.native_handle(), big.data(), big.size(), MSG_DONTWAIT));
    greet::print("raw send() of " + std::to_string(big.size()) + " bytes returned " + std::to_string(taken) +
                 ": the rest was not sent");
    std::size_t drained = 0; // the reader takes what did go, so the next send starts clean
    while (taken > 0 && drained < static_cast<std::size_t>(taken)) drained += reader.recv(65536).size();
#endif

    std::thread slow_reader([&reader = reader, &big] { // reads 64 KiB at a time, as a slow peer would
        std::size_t got = 0;
        for (std::size_t i = 0; i < big.size() && got < big.size(); ++i) got += reader.recv(65536).size();
        greet::print("the reader received " + std::to_string(got) + " bytes");
    });
    const std::size_t sent = sender.send(big); // loops over partial sends until every byte is gone
    greet::print("greet::Client::send returned " + std::to_string(sent) + " (Python needs sendall for this)");
    slow_reader.join();
} catch (const greet::Error& e) {
    greet::print(e.what());
    return 1;
}
