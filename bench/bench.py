"""The workloads of bench.cpp with Python's socket module, written the usual way.

    python3 bench/bench.py <w1|w2|w3|w4|w5> <count>

The server is a forked child (threads would share the GIL); the rate is measured in
the parent, and the CPU time counts both processes.
"""
import os
import resource
import socket
import struct
import sys
import time

BULK_PIECE = 64 * 1024
PING_SIZE = 32
MESSAGE_SIZE = 64
NAME = "Zo\u00eb".encode()
REPLY = b"message from server"


def line_block():
    lines = [b"line %08d of text  \n" % i for i in range(BULK_PIECE // 24)]
    return b"".join(lines)


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def send_message(s, payload):
    s.sendall(struct.pack("!I", len(payload)) + payload)


def recv_message(s):
    header = recv_exact(s, 4)
    if header is None:
        return None
    return recv_exact(s, struct.unpack("!I", header)[0])


def serve(listener, workload, count):
    if workload == "w3":
        for _ in range(count):
            c, _ = listener.accept()
            c.recv(1024).decode()
            c.sendall(REPLY)
            c.close()
        return
    c, _ = listener.accept()
    if workload == "w1":
        buffer = bytearray(BULK_PIECE)
        while c.recv_into(buffer):
            pass
        c.sendall(b"k")
    elif workload == "w2":
        while True:
            data = recv_exact(c, PING_SIZE)
            if data is None:
                break
            c.sendall(data)
    elif workload == "w4":
        while True:
            payload = recv_message(c)
            if payload is None:
                break
            send_message(c, payload)
    elif workload == "w5":
        block = line_block()
        sent = 0
        while sent < count:
            c.sendall(block)
            sent += len(block) // 24
    c.close()


def client(port, workload, count):
    if workload == "w3":
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(NAME)
            s.recv(1024).decode()
            s.close()
        return count
    s = socket.create_connection(("127.0.0.1", port))
    if workload == "w1":
        block = bytes(BULK_PIECE)
        for _ in range(count * 16):
            s.sendall(block)
        s.shutdown(socket.SHUT_WR)
        recv_exact(s, 1)
        result = count * 16 * BULK_PIECE / 1e6
    elif workload == "w2":
        ping = b"p" * PING_SIZE
        for _ in range(count):
            s.sendall(ping)
            recv_exact(s, PING_SIZE)
        result = count
    elif workload == "w4":
        message = b"m" * MESSAGE_SIZE
        for _ in range(count):
            send_message(s, message)
            if len(recv_message(s)) != MESSAGE_SIZE:
                raise SystemExit("w4 reply")
        result = count
    elif workload == "w5":
        lines = 0
        with s.makefile("rb") as stream:
            for line in stream:
                lines += 1
        result = lines
    s.close()
    return result


def cpu(usage):
    return usage.ru_utime + usage.ru_stime


def main():
    workload, count = sys.argv[1], int(sys.argv[2])
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(socket.SOMAXCONN)
    port = listener.getsockname()[1]
    pid = os.fork()
    if pid == 0:
        try:
            serve(listener, workload, count)
        finally:
            os._exit(0)
    listener.close()
    cpu_start = cpu(resource.getrusage(resource.RUSAGE_SELF))
    start = time.perf_counter()
    work = client(port, workload, count)
    wall = time.perf_counter() - start
    cpu_parent = cpu(resource.getrusage(resource.RUSAGE_SELF)) - cpu_start
    _, _, child_usage = os.wait4(pid, 0)
    cpu_seconds = cpu_parent + cpu(child_usage)
    print("%.6g %.6g" % (work / wall, work / cpu_seconds if cpu_seconds > 0 else 0))


if __name__ == "__main__":
    main()
