#!/usr/bin/env python3
"""The tutorial's greeting over UDP against real peers, in both directions:
examples/udp_server and examples/udp_client (greet::UdpSocket) with Python's
socket.SOCK_DGRAM, or with socat's UDP4/UDP6-SENDTO and -RECVFROM, over IPv4 or IPv6.

    udp_interop_test.py python|socat ipv4|ipv6 <udp_server binary> <udp_client binary>

Loopback only. Servers say when they are bound (a ready line), every wait is bounded,
and a missing peer program or a machine without ::1 exits 77 (a skip for ctest and meson).
"""
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading

TIMEOUT = 20
NAMES = ["Ada", "Zoë", "日本", "🚀", "a longer name " * 50]
GREETING = "message from server: hello "
PROMPT = "enter your name - "
ENV = dict(os.environ, PYTHONIOENCODING="utf-8")


class Output:
    """What a process writes, read on a thread of its own; each wait bounded."""

    def __init__(self, stream):
        self.queue = queue.Queue()
        self.seen = b""
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        while True:
            data = os.read(stream.fileno(), 65536)
            self.queue.put(data)
            if not data:
                return

    def until(self, done, what):
        """Reads until done(bytes so far) is true; returns everything read."""
        while not done(self.seen):
            try:
                data = self.queue.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError("no %s within %d s; saw %r" % (what, TIMEOUT, self.seen)) from None
            if not data:
                raise AssertionError("the stream ended before %s; saw %r" % (what, self.seen))
            self.seen += data
        return self.seen

    def line(self, wanted, what):
        """The next complete line for which wanted(line) holds (earlier lines are passed over)."""
        while True:
            text = self.until(lambda seen: b"\n" in seen, what)
            raw, self.seen = text.split(b"\n", 1)
            line = raw.decode("utf-8", "replace").rstrip("\r")
            if wanted(line):
                return line


def shown(family, host, port):
    return ("[%s]:%d" if family == socket.AF_INET6 else "%s:%d") % (host, port)


class GreetServer:
    """examples/udp_server 0 <host>, once it has printed its ready line."""

    def __init__(self, binary, host):
        self.proc = subprocess.Popen([binary, "0", host], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
        self.out = Output(self.proc.stdout)
        line = self.out.line(lambda l: l.startswith("waiting for datagrams on "), "the ready line")
        self.port = int(line.rsplit(":", 1)[1])
        assert line == "waiting for datagrams on " + shown(family_of(host), host, self.port), line

    def greeted(self, sender, name):
        line = self.out.line(lambda l: True, "the server's line for %r" % name[:20])
        assert line == "datagram from %s %s" % (sender, name), "the server printed %r" % line

    def stop(self):
        """SIGTERM: the canceller ends recv_text_from, the program says goodbye and exits 0."""
        self.proc.send_signal(signal.SIGTERM)
        self.out.line(lambda l: l == "goodbye", "goodbye")
        assert self.proc.wait(TIMEOUT) == 0, "exit code %s" % self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(TIMEOUT)


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def greet_client(binary, host, port, name, expect_answer=True):
    """examples/udp_client <port> <host> with the name on stdin: (stdout, stderr, exit code)."""
    done = subprocess.run([binary, str(port), host], input=(name + "\n").encode("utf-8"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT, env=ENV)
    out, err = done.stdout.decode("utf-8"), done.stderr.decode("utf-8", "replace")
    if expect_answer:
        assert done.returncode == 0, "udp_client failed (%d): %r %r" % (done.returncode, out, err)
    return out, err, done.returncode


class PythonServer:
    """Python's SOCK_DGRAM server on a thread: bound before the client starts (no race).
    drop: how many datagrams it receives without answering before it answers."""

    def __init__(self, host, drop=0, answers=True):
        self.sock = socket.socket(family_of(host), socket.SOCK_DGRAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.drop, self.answers = drop, answers
        self.received = queue.Queue()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            count = 0
            while True:
                data, addr = self.sock.recvfrom(65536)
                self.received.put(data)
                count += 1
                if self.answers and count > self.drop:
                    self.sock.sendto(GREETING.encode("utf-8") + data, addr)
        except OSError:  # closed by the test (or its timeout): the thread ends
            self.received.put(None)

    def datagrams(self, count):
        got = [self.received.get(timeout=TIMEOUT) for _ in range(count)]
        assert None not in got, "the Python server stopped early: %r" % got
        return got

    def close(self):
        self.sock.close()


def check_python(family, host, server_binary, client_binary):
    # A greet server, Python clients: each greeting whole, the sender named.
    server = GreetServer(server_binary, host)
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as c:
            c.settimeout(TIMEOUT)
            c.bind((host, 0))
            me = shown(family, host, c.getsockname()[1])
            for name in NAMES:
                c.sendto(name.encode("utf-8"), (host, server.port))
                reply, addr = c.recvfrom(65536)
                assert reply == (GREETING + name).encode("utf-8"), "the greet server answered %r" % reply[:80]
                assert addr[:2] == (host, server.port), "the answer came from %r" % (addr,)
                server.greeted(me, name)
            # Datagrams the server cannot take end neither its loop nor the next greeting.
            c.sendto(b"Zo\xc3", (host, server.port))  # not UTF-8 (a cut sequence)
            line = server.out.line(lambda l: True, "the server's complaint about bad UTF-8")
            assert line.startswith("recv_text_from") and "EILSEQ" in line, "bad UTF-8: the server printed %r" % line
            c.sendto(b"x" * 2000, (host, server.port))  # longer than recv_text_from(1024) takes
            line = server.out.line(lambda l: True, "the server's complaint about a long datagram")
            assert "EMSGSIZE" in line, "a 2000-byte datagram: the server printed %r" % line
            c.sendto("Zoë".encode("utf-8"), (host, server.port))
            assert c.recvfrom(65536)[0] == (GREETING + "Zoë").encode("utf-8"), "no greeting after bad datagrams"
            server.greeted(me, "Zoë")
        print("PASS greet udp_server, Python SOCK_DGRAM client (%d names, bad UTF-8, a long datagram)" % len(NAMES))
        # The greet client against the greet server.
        for name in NAMES[:3]:
            out, _, _ = greet_client(client_binary, host, server.port, name)
            assert out == PROMPT + GREETING + name + "\n", "udp_client printed %r" % out
            server.out.line(lambda l: l.endswith(" " + name), "the server's line for " + name)
        print("PASS greet udp_server, greet udp_client")
        if os.name == "posix":
            server.stop()
    finally:
        server.kill()

    # A Python server, the greet client.
    for name in NAMES:
        py = PythonServer(host)
        try:
            out, _, _ = greet_client(client_binary, host, py.port, name)
            assert out == PROMPT + GREETING + name + "\n", "udp_client printed %r" % out
            assert py.datagrams(1) == [name.encode("utf-8")]
        finally:
            py.close()
    print("PASS Python SOCK_DGRAM server, greet udp_client (%d names)" % len(NAMES))

    # The first datagram lost (the server takes it and says nothing): the retry gets the answer.
    py = PythonServer(host, drop=1)
    try:
        out, _, _ = greet_client(client_binary, host, py.port, "Zoë")
        assert out == PROMPT + GREETING + "Zoë\n", "udp_client printed %r" % out
        assert py.datagrams(2) == ["Zoë".encode("utf-8")] * 2, "the client did not send again"
    finally:
        py.close()
    print("PASS the first datagram unanswered: udp_client sent again and printed the answer")

    # A server that never answers: two tries, then a clear message and exit code 1.
    py = PythonServer(host, answers=False)
    try:
        out, err, code = greet_client(client_binary, host, py.port, "Ada", expect_answer=False)
        assert code == 1 and out == PROMPT, "udp_client with no answer: %d %r" % (code, out)
        assert err.startswith("no answer from %s port %d after 2 tries" % (host, py.port)), err
        assert py.datagrams(2) == [b"Ada"] * 2
    finally:
        py.close()
    print("PASS no answer at all: udp_client tried twice and said so (exit 1)")


def socat_client(kind, host, port, name):
    """socat - UDPn-SENDTO: the name as one datagram (stdin kept open, so no second, empty
    read); the greeting read from its stdout, then socat is stopped."""
    target = ("[%s]" if kind == "UDP6" else "%s") % host
    proc = subprocess.Popen(["socat", "-T", str(TIMEOUT), "-", "%s-SENDTO:%s:%d" % (kind, target, port)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out = Output(proc.stdout)
        proc.stdin.write(name.encode("utf-8"))
        proc.stdin.flush()
        want = (GREETING + name).encode("utf-8")
        return out.until(lambda seen: len(seen) >= len(want), "socat's greeting")
    finally:
        proc.kill()
        proc.wait(TIMEOUT)


def socat_server(kind, host):
    """socat UDPn-RECVFROM with cat: echoes the first datagram to its sender. socat prints
    the port it was given, not the one the OS picked for 0, so the port is a free one
    found first; if another program takes it meanwhile, another is tried (5 at most)."""
    family = socket.AF_INET6 if kind == "UDP6" else socket.AF_INET
    bind = ("[%s]" if kind == "UDP6" else "%s") % host
    for _ in range(5):
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
        proc = subprocess.Popen(["socat", "-d", "-d", "%s-RECVFROM:%d,bind=%s" % (kind, port, bind), "EXEC:cat"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            Output(proc.stderr).line(lambda l: " receiving on " in l, "socat's receiving line")
            return proc, port
        except AssertionError:
            proc.kill()
            proc.wait(TIMEOUT)
    raise AssertionError("socat could not bind a free UDP port in 5 tries")


def check_socat(family, host, server_binary, client_binary):
    kind = "UDP6" if family == socket.AF_INET6 else "UDP4"
    # A greet server, socat clients.
    server = GreetServer(server_binary, host)
    try:
        for name in NAMES:
            reply = socat_client(kind, host, server.port, name)
            assert reply == (GREETING + name).encode("utf-8"), "socat printed %r" % reply[:80]
            line = server.out.line(lambda l: True, "the server's line for %r" % name[:20])
            prefix = "datagram from " + ("[%s]:" if family == socket.AF_INET6 else "%s:") % host
            assert line.startswith(prefix) and line.endswith(" " + name), "the server printed %r" % line
        if os.name == "posix":
            server.stop()
    finally:
        server.kill()
    print("PASS greet udp_server, socat %s-SENDTO clients (%d names)" % (kind, len(NAMES)))

    # socat servers (an echo), the greet client.
    for name in NAMES:
        proc, port = socat_server(kind, host)
        try:
            out, _, _ = greet_client(client_binary, host, port, name)
            assert out == PROMPT + name + "\n", "udp_client printed %r" % out
        finally:
            proc.kill()
            proc.wait(TIMEOUT)
    print("PASS socat %s-RECVFROM servers (EXEC:cat), greet udp_client (%d names)" % (kind, len(NAMES)))


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("python", "socat") or sys.argv[2] not in ("ipv4", "ipv6"):
        raise SystemExit("usage: udp_interop_test.py python|socat ipv4|ipv6 <udp_server> <udp_client>")
    peer, version, server_binary, client_binary = sys.argv[1:]
    family, host = (socket.AF_INET6, "::1") if version == "ipv6" else (socket.AF_INET, "127.0.0.1")
    if peer == "socat" and shutil.which("socat") is None:
        print("SKIP: socat not found (Debian: apt-get install socat; scripts/test.sh installs it)")
        return 77
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
    except OSError as e:
        print("SKIP: no %s loopback here (%s)" % (host, e))
        return 77
    (check_python if peer == "python" else check_socat)(family, host, server_binary, client_binary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
