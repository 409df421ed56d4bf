#!/usr/bin/env python3
"""examples/kv_server (serve_lines) against real peers: Python sockets and socat.

Many Python clients at once pipeline their requests, half-close and must read every
reply, in order, before the server closes; socat does the same from the shell; a line
over the limit ends that client only; SIGTERM stops the server with exit code 0. Every
wait is bounded.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading

TIMEOUT = 20
CLIENTS = 300


def read_all(sock):
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def conversation(port, index, results):
    key, value = "k%d" % index, "Zoë 世界 🚀 %d" % index
    requests = "SET %s %s\r\nGET %s\nGET nothing-%d\nHELLO\n" % (key, value, key, index)
    expected = "OK\n%s\n(none)\nERROR expected SET <key> <value> or GET <key>\n" % value
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(requests.encode("utf-8"))
        sock.shutdown(socket.SHUT_WR)  # the replies must still come, then the close
        results[index] = read_all(sock).decode("utf-8") == expected


def main():
    server_path = sys.argv[1]
    server = subprocess.Popen([server_path, "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = server.stdout.readline().decode("utf-8").strip()
        assert first.startswith("key-value store on 127.0.0.1:"), first
        port = int(first.rsplit(":", 1)[1])

        results = [False] * CLIENTS
        threads = [threading.Thread(target=conversation, args=(port, i, results)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT)
        assert all(results), "%d of %d clients got wrong replies" % (results.count(False), CLIENTS)
        print("python: %d clients at once, every reply right and in order" % CLIENTS)

        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            sock.sendall(b"x" * 70000)  # no '\n' within recv_line's 65,536 bytes
            try:
                rest = read_all(sock)
            except ConnectionResetError:
                rest = b""
            assert rest == b"", rest
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            sock.sendall(b"GET k7\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = sock.recv(100)
                assert chunk, "closed before the reply"
                reply += chunk
            assert reply.decode("utf-8") == "Zoë 世界 🚀 7\n", reply
        print("python: a line over the limit closed that client only")

        if shutil.which("socat"):
            done = subprocess.run(["socat", "-t", "10", "-", "TCP:127.0.0.1:%d,shut-down" % port],
                                  input="SET shell socat\nGET shell\n".encode("utf-8"),
                                  stdout=subprocess.PIPE, timeout=TIMEOUT)
            assert done.stdout == b"OK\nsocat\n", done.stdout
            print("socat: replies, then the close")
        else:
            print("socat not found: that peer skipped")

        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=TIMEOUT)
        assert server.returncode == 0, (server.returncode, err)
        assert out.decode("utf-8").strip().endswith("goodbye"), out
        assert b"EMSGSIZE" in err and b"no line end within 65536 bytes" in err, err
        print("SIGTERM: goodbye, exit code 0; the refused line reported: %s" % err.decode("utf-8").strip())
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(TIMEOUT)


if __name__ == "__main__":
    main()
