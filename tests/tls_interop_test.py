#!/usr/bin/env python3
"""The tutorial's greeting over TLS against real peers, in both directions:
examples/tls_server (accept_tls) and examples/tls_client (start_tls) with OpenSSL's
s_client and s_server, or with Python's ssl module.

    tls_interop_test.py openssl|python <tls_server> <tls_client> <make-tls-certs.sh>

Throwaway certificates are made in a private temporary folder. Everything listens on
127.0.0.1 port 0; servers say when they listen (a printed line), every wait is bounded,
and a missing openssl program exits 77 (a skip for ctest).
"""
import os
import queue
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading

TIMEOUT = 20
NAME = "Zoë"
GREETING = "message from server: hello " + NAME
ENV = dict(os.environ, PYTHONIOENCODING="utf-8")


class Output:
    """What a process writes to a pipe, read on a thread of its own; each wait bounded.
    Chunks, not lines: s_server prints the client's bytes without a newline."""

    def __init__(self, stream):
        self.queue = queue.Queue()
        self.text = ""
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for chunk in iter(lambda: os.read(stream.fileno(), 4096), b""):
            self.queue.put(chunk)
        self.queue.put(None)

    def expect(self, wanted, what):
        """Waits until wanted(text so far) holds; returns the text."""
        ended = False
        while not wanted(self.text):
            if ended:
                raise AssertionError("the output ended before %s; saw %r" % (what, self.text))
            try:
                chunk = self.queue.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError("no %s within %d s; saw %r" % (what, TIMEOUT, self.text)) from None
            if chunk is None:
                ended = True
            else:
                self.text += chunk.decode("utf-8", "replace")
        return self.text


def port_in(text, prefix):
    """The port after prefix + "127.0.0.1:" in text."""
    rest = text.split(prefix + "127.0.0.1:", 1)[1]
    return int(rest.split()[0])


def stop(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait(TIMEOUT)


class GreetServer:
    """examples/tls_server 0 <certificate> <key>, once it has printed where it listens."""

    def __init__(self, binary, certs):
        self.proc = subprocess.Popen([binary, "0", os.path.join(certs, "server.pem"), os.path.join(certs, "server.key")],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
        self.out = Output(self.proc.stdout)
        self.port = port_in(self.out.expect(lambda t: "waiting for connection on " in t and t.endswith("\n"), "the ready line"),
                            "waiting for connection on ")

    def greeted(self, name):
        self.out.expect(lambda t: (" " + name + "\n") in t, "the client's name")

    def stop(self):
        """SIGTERM: the loop ends, the program says goodbye and exits 0."""
        self.proc.send_signal(signal.SIGTERM)
        self.out.expect(lambda t: "goodbye" in t, "goodbye")
        assert self.proc.wait(TIMEOUT) == 0, "exit code %s" % self.proc.returncode


def greet_client(binary, port, certs):
    """examples/tls_client <port> <ca.pem> with NAME on stdin: (exit code, stdout, stderr)."""
    done = subprocess.run([binary, str(port), os.path.join(certs, "ca.pem")], input=NAME.encode("utf-8"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT, env=ENV)
    return done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8")


def greeted_ok(result):
    code, out, err = result
    assert code == 0, "tls_client failed (%d): %s" % (code, err)
    assert out.endswith(GREETING + "\n"), "tls_client printed %r" % out


def check_openssl(server_binary, client_binary, certs):
    # A greet server, OpenSSL's client: it checks the certificate and the name localhost.
    server = GreetServer(server_binary, certs)
    try:
        done = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % server.port, "-CAfile",
                               os.path.join(certs, "ca.pem"), "-verify_return_error", "-verify_hostname", "localhost",
                               "-quiet", "-ign_eof"],
                              input=NAME.encode("utf-8"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT)
        assert done.returncode == 0, "s_client failed (%d): %s" % (done.returncode, done.stderr.decode())
        assert done.stdout.decode("utf-8") == GREETING, "s_client printed %r" % done.stdout
        server.greeted(NAME)
        server.stop()
    finally:
        stop(server.proc)
    print("PASS greet server (accept_tls), openssl s_client (certificate and host name verified)")

    # OpenSSL's server, the greet client. s_server prints what the client sends and sends
    # what comes on its stdin; at stdin's end it closes the socket before its close_notify
    # can go (apps/s_server.c), so the greet client must report the stream cut short.
    for cert, refused in (("server", "without close_notify"), ("wrong-ca-server", "certificate verify failed: unknown CA"),
                          ("self-signed", "certificate verify failed: self-signed certificate")):
        proc = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1",
                                 "-cert", os.path.join(certs, cert + ".pem"), "-key", os.path.join(certs, cert + ".key")],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            out = Output(proc.stdout)
            port = port_in(out.expect(lambda t: "ACCEPT 127.0.0.1:" in t and t.endswith("\n"), "s_server's ACCEPT line"), "ACCEPT ")
            result = queue.Queue()
            threading.Thread(target=lambda: result.put(greet_client(client_binary, port, certs)), daemon=True).start()
            if cert == "server":
                out.expect(lambda t: t.endswith(NAME), "the client's name")  # decrypted: the handshake and the name went through
                proc.stdin.write(GREETING.encode("utf-8"))
                proc.stdin.close()
            code, _, err = result.get(timeout=TIMEOUT * 2)
            assert code == 1 and refused in err, "tls_client: %d %r" % (code, err)
        finally:
            stop(proc)
        print("PASS openssl s_server (%s.pem), greet client (start_tls): %s" % (cert, refused))


class PythonServer:
    """Python's ssl server on a thread: one client, greeted; unwrap() (close_notify) before
    close() unless clean is False, as a plain SSLSocket.close() does."""

    def __init__(self, certs, clean):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(os.path.join(certs, "server.pem"), os.path.join(certs, "server.key"))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(TIMEOUT)
        self.port = self.listener.getsockname()[1]  # listening before the client starts: no race
        self.clean = clean
        self.result = queue.Queue()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            raw, _ = self.listener.accept()
            raw.settimeout(TIMEOUT)
            with self.context.wrap_socket(raw, server_side=True) as c:
                name = c.recv(1024).decode("utf-8")
                c.sendall(("message from server: hello " + name).encode("utf-8"))
                if self.clean:
                    c.unwrap()
            self.result.put(name)
        except Exception as e:  # reported by the test's own thread
            self.result.put(e)

    def name(self):
        got = self.result.get(timeout=TIMEOUT)
        if isinstance(got, Exception):
            raise got
        return got

    def close(self):
        self.listener.close()


def python_client(port, certs):
    """Python's ssl client: certificate and host name checked; the whole reply, to close_notify."""
    context = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as c:
            c.sendall(NAME.encode("utf-8"))
            reply = b""
            for _ in range(1000):
                part = c.recv(1024)
                if not part:
                    break
                reply += part
            return reply.decode("utf-8")


def check_python(server_binary, client_binary, certs):
    # A greet server, Python's client, twice (the server goes on after the first).
    server = GreetServer(server_binary, certs)
    try:
        for _ in range(2):
            reply = python_client(server.port, certs)
            assert reply == GREETING, "Python's client got %r" % reply
            server.greeted(NAME)
        server.stop()
    finally:
        stop(server.proc)
    print("PASS greet server (accept_tls), Python ssl clients")

    # Python's server, the greet client: with close_notify the reply is whole; without it
    # (close() alone) the greet client says the stream may be cut short.
    py = PythonServer(certs, clean=True)
    try:
        greeted_ok(greet_client(client_binary, py.port, certs))
        assert py.name() == NAME
    finally:
        py.close()
    print("PASS Python ssl server (unwrap, then close), greet client (start_tls)")
    py = PythonServer(certs, clean=False)
    try:
        code, out, err = greet_client(client_binary, py.port, certs)
        assert code == 1 and "without close_notify" in err, "tls_client: %d %r %r" % (code, out, err)
        assert py.name() == NAME
    finally:
        py.close()
    print("PASS Python ssl server closing without close_notify: the greet client reports it")


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("openssl", "python"):
        raise SystemExit("usage: tls_interop_test.py openssl|python <tls_server> <tls_client> <make-tls-certs.sh>")
    peer, server_binary, client_binary, make_certs = sys.argv[1:]
    if peer == "openssl" and shutil.which("openssl") is None:
        print("SKIP: openssl not found (Debian: apt-get install openssl)")
        return 77
    folder = tempfile.mkdtemp(prefix="greet-tls-")  # 0700: the keys stay this user's
    try:
        subprocess.run([make_certs, folder], check=True, timeout=TIMEOUT)
        (check_openssl if peer == "openssl" else check_python)(server_binary, client_binary, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
