#!/usr/bin/env python3
"""The tutorial's Python programs against the C++ examples, in both directions.

Each server starts on port 0 and prints the port it got; every client sends a name
(ASCII, Latin, CJK, emoji) and must get the greeting back whole; the server must print
the name it received. Every wait is bounded.
"""
import argparse
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

NAMES = ["Ada", "Zoë", "世界", "🚀"]
GREETING = "message from server: hello "
TIMEOUT = 20

ENV = dict(os.environ, PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")


class Server:
    def __init__(self, argv):
        self.proc = subprocess.Popen(argv + ["0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.port = None
        while self.port is None:
            line = self.next_line()
            if line.startswith("waiting for connection on "):
                self.port = line.rsplit(":", 1)[1]

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8").rstrip("\r\n"))
        self.lines.put(None)

    def next_line(self):
        line = self.lines.get(timeout=TIMEOUT)
        if line is None:
            raise AssertionError("server exited early with code %s" % self.proc.wait(TIMEOUT))
        return line

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(TIMEOUT)


def run_client(argv, port, name):
    done = subprocess.run(argv + [port], input=(name + "\n").encode("utf-8"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT, env=ENV)
    out = done.stdout.decode("utf-8")
    assert done.returncode == 0, "client failed (%d): %s %s" % (done.returncode, out, done.stderr.decode())
    return out


def check(server_argv, client_argv, label):
    server = Server(server_argv)
    try:
        for name in NAMES:
            out = run_client(client_argv, server.port, name)
            assert out.strip().endswith(GREETING + name), "%s: client printed %r" % (label, out)
            line = server.next_line()
            assert line.startswith("client connected") and line.endswith(" " + name), \
                "%s: server printed %r" % (label, line)
        if server_argv[0] != sys.executable:
            # A client that connects and leaves without a word must not end the C++ server's loop.
            socket.create_connection(("127.0.0.1", int(server.port)), timeout=TIMEOUT).close()
            line = server.next_line()
            assert "left without a word" in line, "%s: server printed %r" % (label, line)
            out = run_client(client_argv, server.port, NAMES[1])
            assert out.strip().endswith(GREETING + NAMES[1]), "%s: after a silent client: %r" % (label, out)
            assert server.next_line().endswith(" " + NAMES[1]), label
            if os.name == "posix":
                # SIGTERM (like Ctrl+C's SIGINT) ends the C++ server cleanly: goodbye, exit code 0.
                server.proc.send_signal(signal.SIGTERM)
                last = server.next_line()
                assert last == "goodbye", "%s: %r" % (label, last)
                assert server.proc.wait(TIMEOUT) == 0, "%s: exit code %s" % (label, server.proc.returncode)
    finally:
        server.stop()
    print("PASS", label)


def check_reply_in_pieces(client_argv):
    """A server that writes its reply in two pieces 300 ms apart, then closes: the client
    must print the whole reply once. The pause is the subject: the second piece arrives
    after the first recv has returned, as it can from any server over a real network."""
    listener = socket.create_server(("localhost", 0))
    listener.settimeout(TIMEOUT)
    served = queue.Queue()

    def serve():
        try:
            c, _ = listener.accept()
            with c:
                c.settimeout(TIMEOUT)
                c.recv(1024)  # the name
                c.sendall("message".encode("utf-8"))
                time.sleep(0.3)
                c.sendall(" from server ✓".encode("utf-8"))
            served.put(None)
        except Exception as e:  # reported by the test's own thread
            served.put(e)

    threading.Thread(target=serve, daemon=True).start()
    try:
        out = run_client(client_argv, str(listener.getsockname()[1]), "Ada")
        error = served.get(timeout=TIMEOUT)
        assert error is None, "the two-piece server failed: %r" % error
    finally:
        listener.close()
    assert out == "enter your name - message from server ✓\n", "the client printed %r" % out
    print("PASS", "C++ client, a reply in two pieces 300 ms apart")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--client", required=True)
    parser.add_argument("--fixtures", required=True)
    args = parser.parse_args()
    py_server = [sys.executable, os.path.join(args.fixtures, "server.py")]
    py_client = [sys.executable, os.path.join(args.fixtures, "client.py")]
    check([args.server], [args.client], "C++ server, C++ client")
    check([args.server], py_client, "C++ server, Python client")
    check(py_server, [args.client], "Python server, C++ client")
    check(py_server, py_client, "Python server, Python client")
    check_reply_in_pieces([args.client])


if __name__ == "__main__":
    main()
