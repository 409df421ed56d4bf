#!/usr/bin/env python3
"""Three examples/peer nodes on one machine: each line typed into one reaches the other
two with its sender's address, UTF-8 intact; closing a node's input makes it leave and
exit 0, and the others see it go. Every wait is bounded."""
import queue
import subprocess
import sys
import threading

TIMEOUT = 20


class Peer:
    def __init__(self, binary, targets):
        self.proc = subprocess.Popen([binary, "0"] + targets, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        first = self.expect(lambda line: line.startswith("listening on "))
        self.port = first.rsplit(":", 1)[1]
        self.address = "localhost:" + self.port

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8").rstrip("\n"))
        self.lines.put(None)

    def expect(self, wanted):
        while True:
            line = self.lines.get(timeout=TIMEOUT)
            assert line is not None, "peer exited early"
            if wanted(line):
                return line

    def say(self, text):
        self.proc.stdin.write((text + "\n").encode("utf-8"))
        self.proc.stdin.flush()

    def leave(self):
        self.proc.stdin.close()
        assert self.proc.wait(TIMEOUT) == 0, "peer exited with %s" % self.proc.returncode


def main():
    binary = sys.argv[1]
    one = Peer(binary, [])
    two = Peer(binary, [one.address])
    three = Peer(binary, [one.address, two.address])
    for peer in (one, two, three):  # each sees the other two join
        for _ in range(2):
            peer.expect(lambda line: line.endswith("] joined"))
    messages = {one: "hello from one, Zoë", two: "二 says hi", three: "three 🚀"}
    for sender, text in messages.items():
        sender.say(text)
        for receiver in messages:
            if receiver is not sender:
                receiver.expect(lambda line, t=text: line.startswith("[") and line.endswith("] " + t))
    three.leave()
    one.expect(lambda line: line.endswith("] left"))
    two.expect(lambda line: line.endswith("] left"))
    two.leave()
    one.expect(lambda line: line.endswith("] left"))
    one.leave()
    print("PASS three peers exchanged %d lines and left cleanly" % (2 * len(messages)))


if __name__ == "__main__":
    main()
