#!/usr/bin/env python3
"""Unix-domain sockets against real peers, in both directions: examples/unix_echo (a
greet::Server from bind_unix, a greet::Client from connect_unix) with Python's
socket.AF_UNIX, or with socat's UNIX-CONNECT/UNIX-LISTEN (and the Linux abstract names).

    unix_interop_test.py python|socat <unix_echo binary>

Everything happens in a private temporary folder (mode 0700). Servers say when they
listen (a ready line), every wait is bounded, and a missing peer program exits 77
(a skip for ctest and meson).
"""
import os
import queue
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading

TIMEOUT = 20
LINES = ["Ada", "Zoë", "世界", "🚀", "a longer line " * 100]
ENV = dict(os.environ, PYTHONIOENCODING="utf-8")
LINUX = sys.platform.startswith("linux")


class Lines:
    """The lines a stream prints, read on a thread of its own, each wait bounded."""

    def __init__(self, stream):
        self.queue = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for raw in stream:
            self.queue.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
        self.queue.put(None)

    def expect(self, wanted, what):
        while True:
            try:
                line = self.queue.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError("no %s within %d s; saw %r" % (what, TIMEOUT, self.seen)) from None
            if line is None:
                raise AssertionError("the stream ended before %s; saw %r" % (what, self.seen))
            self.seen.append(line)
            if wanted(line):
                return line


class EchoServer:
    """examples/unix_echo serve <name>, once it has printed its ready line."""

    def __init__(self, binary, name, shown):
        self.proc = subprocess.Popen([binary, "serve", name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
        self.out = Lines(self.proc.stdout)
        self.out.expect(lambda line: line == "echoing lines on " + shown, "the ready line")

    def joined(self, pid):
        line = self.out.expect(lambda l: l.endswith(" joined"), "a joined line")
        assert line == "pid %d uid %d joined" % (pid, os.getuid()), "the server printed %r" % line

    def stop(self):
        """SIGTERM: serve() returns, the program says goodbye and exits 0."""
        self.proc.send_signal(signal.SIGTERM)
        self.out.expect(lambda line: line == "goodbye", "goodbye")
        assert self.proc.wait(TIMEOUT) == 0, "exit code %s" % self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(TIMEOUT)


def echo_client(binary, name, lines):
    """examples/unix_echo connect <name>: the replies it prints, and its process id."""
    proc = subprocess.Popen([binary, "connect", name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    try:
        out, err = proc.communicate("".join(line + "\n" for line in lines).encode("utf-8"), timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT)
    assert proc.returncode == 0, "unix_echo connect failed (%d): %s" % (proc.returncode, err.decode())
    return out.decode("utf-8").splitlines(), proc.pid


def python_round_trips(address, lines):
    """Python's AF_UNIX client: each line sent, its echo read back whole."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(TIMEOUT)
        c.connect(address)
        reader = c.makefile("rb")
        for line in lines:
            c.sendall((line + "\n").encode("utf-8"))
            echoed = reader.readline()
            assert echoed == (line + "\n").encode("utf-8"), "echoed %r for %r" % (echoed[:80], line[:80])
        c.shutdown(socket.SHUT_WR)
        assert reader.read() == b"", "bytes after the last echo"
        reader.close()


class PythonServer:
    """Python's AF_UNIX server on a thread: one client, each line answered with 'py: ' + line;
    records the client's pid as the kernel gives it (SO_PEERCRED)."""

    def __init__(self, address):
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.settimeout(TIMEOUT)
        self.listener.bind(address)
        self.listener.listen(1)  # listening before the client starts: no race
        self.result = queue.Queue()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            c, _ = self.listener.accept()
            with c:
                c.settimeout(TIMEOUT)
                pid = struct.unpack("3i", c.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0] if LINUX else None
                reader = c.makefile("rb")
                for raw in reader:
                    c.sendall(b"py: " + raw)
                reader.close()
            self.result.put(pid)
        except Exception as e:  # reported by the test's own thread
            self.result.put(e)

    def client_pid(self):
        pid = self.result.get(timeout=TIMEOUT)
        if isinstance(pid, Exception):
            raise pid
        return pid

    def close(self):
        self.listener.close()


def check_python(binary, folder, tag):
    path = os.path.join(folder, "greet.sock")

    # A greet server, Python's client; the server names the client's process.
    server = EchoServer(binary, path, path)
    try:
        assert stat.S_ISSOCK(os.lstat(path).st_mode), "no socket file at " + path
        python_round_trips(path, LINES)
        server.joined(os.getpid())
        python_round_trips(path, LINES[:1])  # a second client after the first left
        server.joined(os.getpid())
        server.stop()
    finally:
        server.kill()
    assert not os.path.lexists(path), "the socket file outlived the server"
    print("PASS greet server (bind_unix), Python AF_UNIX clients; the file went with the server")

    # A crashed server's file is replaced; a live server's is refused.
    crashed = EchoServer(binary, path, path)
    crashed.proc.kill()
    crashed.proc.wait(TIMEOUT)
    assert os.path.lexists(path), "SIGKILL left no file to replace"
    server = EchoServer(binary, path, path)
    try:
        python_round_trips(path, LINES[:2])
        second = subprocess.run([binary, "serve", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                timeout=TIMEOUT, env=ENV)
        assert second.returncode == 1 and b"EADDRINUSE" in second.stderr, \
            "a second server on a live socket: %d %r" % (second.returncode, second.stderr)
        python_round_trips(path, LINES[:1])  # the live server was left alone
        server.stop()
    finally:
        server.kill()
    print("PASS a killed server's socket file replaced; a live one refused with EADDRINUSE")

    # A Python server, the greet client.
    py_path = os.path.join(folder, "python.sock")
    py = PythonServer(py_path)
    try:
        replies, pid = echo_client(binary, py_path, LINES)
        assert replies == ["py: " + line for line in LINES], "the greet client printed %r" % replies
        assert py.client_pid() in (pid, None), "SO_PEERCRED names another process"
    finally:
        py.close()
    print("PASS Python AF_UNIX server, greet client (connect_unix)")

    if LINUX:  # abstract names: no file, "@name" printed, "\0name" to Python
        name = "greet-test-%s-server" % tag
        server = EchoServer(binary, "@" + name, "@" + name)
        try:
            python_round_trips("\0" + name, LINES)
            server.joined(os.getpid())
            server.stop()
        finally:
            server.kill()
        py = PythonServer("\0greet-test-%s-python" % tag)
        try:
            replies, pid = echo_client(binary, "@greet-test-%s-python" % tag, LINES)
            assert replies == ["py: " + line for line in LINES], "the greet client printed %r" % replies
            assert py.client_pid() == pid, "SO_PEERCRED names another process"
        finally:
            py.close()
        print("PASS Linux abstract names, both ways, with Python")


def socat_server(address):
    """socat serving one connection with cat (an echo), once it says it listens (-d -d)."""
    proc = subprocess.Popen(["socat", "-d", "-d", address, "EXEC:cat"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        Lines(proc.stderr).expect(lambda line: " listening on " in line, "socat's listening line")
    except BaseException:
        proc.kill()
        proc.wait(TIMEOUT)
        raise
    return proc


def socat_client(address, lines):
    """socat - <address>: stdin to the socket, the socket to stdout; -t: after stdin's end,
    wait up to TIMEOUT for the server to close (the greet server closes at once)."""
    done = subprocess.run(["socat", "-t", str(TIMEOUT), "-", address],
                          input="".join(line + "\n" for line in lines).encode("utf-8"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT * 2)
    assert done.returncode == 0, "socat failed (%d): %s" % (done.returncode, done.stderr.decode())
    return done.stdout.decode("utf-8").splitlines()


def check_socat(binary, folder, tag):
    names = [("UNIX", os.path.join(folder, "greet.sock"), os.path.join(folder, "socat.sock"))]
    if LINUX:
        names.append(("ABSTRACT", "@greet-test-%s-server" % tag, "@greet-test-%s-socat" % tag))
    for kind, greet_name, socat_name in names:
        to_socat = (lambda n: n[1:]) if kind == "ABSTRACT" else (lambda n: n)

        # A greet server, socat's client (its pid checked through peer_credentials).
        server = EchoServer(binary, greet_name, greet_name)
        try:
            proc_lines = socat_client("%s-CONNECT:%s" % (kind, to_socat(greet_name)), LINES)
            assert proc_lines == LINES, "socat printed %r" % proc_lines
            line = server.out.expect(lambda l: l.endswith(" joined"), "a joined line")
            assert line.startswith("pid ") and line.endswith(" uid %d joined" % os.getuid()), line
            server.stop()
        finally:
            server.kill()
        if kind == "UNIX":
            assert not os.path.lexists(greet_name), "the socket file outlived the server"
        print("PASS greet server, socat %s-CONNECT client" % kind)

        # A socat server, the greet client.
        proc = socat_server("%s-LISTEN:%s" % (kind, to_socat(socat_name)))
        try:
            replies, _ = echo_client(binary, socat_name, LINES)
            assert replies == LINES, "the greet client printed %r" % replies
            assert proc.wait(TIMEOUT) == 0, "socat exited with %s" % proc.returncode
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(TIMEOUT)
        print("PASS socat %s-LISTEN server, greet client" % kind)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("python", "socat"):
        raise SystemExit("usage: unix_interop_test.py python|socat <unix_echo binary>")
    peer, binary = sys.argv[1], sys.argv[2]
    if not hasattr(socket, "AF_UNIX"):
        print("SKIP: this Python has no socket.AF_UNIX")
        return 77
    if peer == "socat" and shutil.which("socat") is None:
        print("SKIP: socat not found (Debian: apt-get install socat; scripts/test.sh installs it)")
        return 77
    folder = tempfile.mkdtemp(prefix="greet-unix-")  # 0700: only this user reaches the sockets
    tag = "%d-%s" % (os.getpid(), os.path.basename(folder))  # abstract names unique per run
    try:
        (check_python if peer == "python" else check_socat)(binary, folder, tag)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
