// Lesson 12: UDP, "not sure that the packet will reach there". Even on loopback, where no
// network can lose anything: a sender that outruns its receiver loses datagrams, silently,
// because a full receive buffer drops what arrives. 10,000 datagrams of 64 bytes, twice:
// first to a receiver that reads only after the sender is done (a receiver busy elsewhere),
// then to one reading on a thread of its own as fast as it can. Each datagram that arrives
// is checked byte for byte: UDP loses whole datagrams, it never delivers a damaged or cut one.
// Exits 1 if a datagram arrived damaged, none arrived, or (the busy receiver) all arrived.
// Build: g++ -std=c++17 -I. examples/lessons/udp_loss.cpp -o udp_loss -pthread      Run: ./udp_loss
#include "greet_socket.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

constexpr int total = 10000;

std::string datagram(int n) { // "#00042 " and 57 letters that depend on n: 64 bytes
    char text[65];
    std::snprintf(text, sizeof text, "#%05d ", n);
    std::string out(text);
    for (int i = 0; out.size() < 64; ++i) out += static_cast<char>('a' + (n * 7 + i) % 26);
    return out;
}

struct Tally {
    int arrived = 0, damaged = 0, duplicated = 0, out_of_order = 0;
    std::vector<bool> seen = std::vector<bool>(total, false);
    int last = -1;
    void take(const std::string& data) {
        int n = -1;
        if (data.size() == 64 && data[0] == '#') n = static_cast<int>(std::strtol(data.c_str() + 1, nullptr, 10)); // datagram(n) checks it whole
        if (n < 0 || n >= total || data != datagram(n)) { ++damaged; return; }
        if (seen[static_cast<std::size_t>(n)]) ++duplicated;
        if (n < last) ++out_of_order;
        seen[static_cast<std::size_t>(n)] = true;
        last = n;
        ++arrived;
    }
};

// Linux counts the datagrams it drops for a full receive buffer (netstat -su: "receive
// buffer errors"), for the whole machine; -1 elsewhere.
long rcvbuf_errors() {
    std::ifstream snmp("/proc/net/snmp");
    std::string names, values;
    while (std::getline(snmp, names) && std::getline(snmp, values)) {
        if (names.rfind("Udp:", 0) != 0) continue;
        std::istringstream n(names), v(values);
        std::string name, value;
        while (n >> name && v >> value)
            if (name == "RcvbufErrors") return std::stol(value);
    }
    return -1;
}

// The receiver: bound on loopback, its receive buffer made small (the OS may round it).
greet::UdpSocket small_receiver(bool tell) {
    greet::UdpSocket receiver;
    receiver.bind("127.0.0.1", 0);
    int size = 4096;
    ::setsockopt(receiver.native_handle(), SOL_SOCKET, SO_RCVBUF, reinterpret_cast<const char*>(&size), sizeof size);
    socklen_t length = sizeof size;
    ::getsockopt(receiver.native_handle(), SOL_SOCKET, SO_RCVBUF, reinterpret_cast<char*>(&size), &length);
    if (tell) greet::print("receive buffer: asked for 4096 bytes, the OS gave " + std::to_string(size));
    return receiver;
}

// Everything that is waiting, then (the receive times out) nothing more: once the sender
// has returned from its last send, loopback has queued or dropped every datagram.
void drain(greet::UdpSocket& receiver, const greet::Address& sender, Tally& tally) {
    receiver.set_timeout(200ms);
    for (int i = 0; i < total + 100; ++i) {
        try {
            auto [data, from] = receiver.recv_from(1024);
            if (from == sender) tally.take(data); // anyone may send to our port: theirs are not counted
        } catch (const greet::TimeoutError&) {
            return;
        }
    }
}

int sent_all(greet::UdpSocket& sender) { // the error-code form: a refused send is counted, not thrown
    int sent = 0;
    for (int n = 0; n < total; ++n) {
        std::error_code ec;
        sender.send(datagram(n), ec);
        if (!ec) ++sent;
    }
    return sent;
}

bool report(const char* who, int sent, const Tally& t) {
    greet::print(std::string(who) + ": " + std::to_string(sent) + " sent, " + std::to_string(t.arrived) + " arrived (" +
                 std::to_string(sent - t.arrived + t.duplicated) + " lost), " + std::to_string(t.damaged) + " damaged, " +
                 std::to_string(t.duplicated) + " duplicated, " + std::to_string(t.out_of_order) + " out of order");
    return t.damaged == 0 && t.arrived >= 1 && t.arrived <= sent;
}

int main() try {
    bool ok = true;
    { // 1. A busy receiver: it reads only after the sender has sent all 10,000.
        greet::UdpSocket receiver = small_receiver(true);
        greet::UdpSocket sender;
        sender.connect("127.0.0.1", receiver.local_address().port);
        const long errors_before = rcvbuf_errors();
        const int sent = sent_all(sender);
        Tally tally;
        drain(receiver, sender.local_address(), tally);
        ok = report("a receiver busy while the sender sends", sent, tally) && ok;
        ok = ok && tally.arrived < sent; // what a full buffer cannot hold is lost
        if (errors_before >= 0)
            greet::print("    Linux counted " + std::to_string(rcvbuf_errors() - errors_before) +
                         " more receive buffer errors meanwhile (netstat -su; the whole machine's)");
    }
    { // 2. A receiver reading as fast as it can, on a thread of its own.
        greet::UdpSocket receiver = small_receiver(false);
        greet::UdpSocket sender;
        sender.connect("127.0.0.1", receiver.local_address().port);
        const greet::Address from = sender.local_address();
        std::atomic<bool> done{false};
        Tally tally;
        std::thread reader([&] {
            receiver.set_timeout(50ms);
            for (long turn = 0; turn < 1000000; ++turn) { // bounded: at most 10,000 datagrams and 50 s of silence
                const bool finished = done; // read before the receive: all sent were queued by then
                try {
                    auto [data, peer] = receiver.recv_from(1024);
                    if (peer == from) tally.take(data);
                } catch (const greet::TimeoutError&) {
                    if (finished) break; // nothing is left
                }
            }
        });
        const int sent = sent_all(sender);
        done = true;
        reader.join();
        ok = report("a receiver reading as fast as it can", sent, tally) && ok;
    }
    if (!ok) greet::print("FAILED: a datagram arrived damaged, none arrived, or the busy receiver lost none");
    return ok ? 0 : 1;
} catch (const greet::Error& e) {
    greet::print(e.what());
    return 1;
}
