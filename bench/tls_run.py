"""W7, TLS: greet_socket over OpenSSL against raw OpenSSL, interleaved rounds; prints the table.

Called by scripts/bench.sh, which builds build/bench/tls_bench and makes throwaway
certificates first. Every round runs each row once, the order rotating from round to
round, as run.py does for the other workloads:
  bulk       tls_bench raw|greet bulk: MiB in 64 KiB sends over one TLS connection
  handshake  tls_bench raw|greet handshake: a new TCP connection and a full handshake each
  s_time     `openssl s_time -new` (OpenSSL's own client, an outside reference) against
             tls_bench's greet server and its raw one, for a fixed time
The cipher suite and group are pinned for every OpenSSL context of every process (greet's,
raw's, s_time's) by an OPENSSL_CONF file written here; the negotiated values are printed.
"""
import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, fmt, run_once  # noqa: E402  (the same process runner and number format)

SUITE, GROUP = "TLS_AES_128_GCM_SHA256", "X25519"
CONFIG = """openssl_conf = init
[init]
ssl_conf = ssl
[ssl]
system_default = pinned
[pinned]
Ciphersuites = %s
Groups = %s
""" % (SUITE, GROUP)

WORKLOADS = [  # name, unit, full count, short count, what the count is
    ("bulk", "MB/s", 64, 4, "MiB in 64 KiB sends, one connection"),
    ("handshake", "connections/s", 400, 20, "connections, each a full handshake and the tutorial exchange"),
]


def s_time(bench, implementation, certs, seconds):
    """Connections per wall-clock second of `openssl s_time -new` against tls_bench's server,
    and per user-CPU second of s_time itself (the client side only)."""
    server = subprocess.Popen([bench, "serve", implementation, certs], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = server.stdout.readline().strip()
        start = time.monotonic()
        out = subprocess.run(["openssl", "s_time", "-connect", "127.0.0.1:" + port, "-new", "-time", str(seconds),
                              "-CAfile", os.path.join(certs, "ca.pem")], capture_output=True, text=True, timeout=seconds + 60)
        wall = time.monotonic() - start
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    found = re.search(r"(\d+) connections in [\d.]+s; ([\d.]+) connections/user sec", out.stdout)
    if out.returncode != 0 or not found:
        raise SystemExit("openssl s_time failed: %s %s" % (out.stdout[-500:], out.stderr[-500:]))
    return int(found.group(1)) / wall, float(found.group(2))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", action="store_true", help="one small round: proves that it builds and runs")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 9; 1 with --short)")
    parser.add_argument("--bench", default=os.path.join(ROOT, "build", "bench", "tls_bench"))
    parser.add_argument("--certs", default=os.path.join(ROOT, "build", "bench", "tls-certs"))
    parser.add_argument("--workloads", default=None, help="runs only if this list names w7")
    parser.add_argument("--asio", action="store_true", help=argparse.SUPPRESS)  # run.py's, ignored
    args = parser.parse_args()
    if args.workloads is not None and "w7" not in args.workloads.split(","):
        return
    rounds = args.rounds or (1 if args.short else 9)
    seconds = 1 if args.short else 2
    config = os.path.join(os.path.dirname(args.bench), "tls-pinned.cnf")
    with open(config, "w") as f:
        f.write(CONFIG)
    os.environ["OPENSSL_CONF"] = config  # every child: tls_bench and s_time

    version = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip() if shutil.which("openssl") else "?"
    print("W7 TLS: %d round(s)%s; %s, %s, %d CPUs, load average %s" % (
        rounds, " (--short)" if args.short else "", platform.platform(), version, os.cpu_count(),
        " ".join(open("/proc/loadavg").read().split()[:3]) if os.path.exists("/proc/loadavg") else "?"))
    check = subprocess.run([args.bench, "check", args.certs], capture_output=True, text=True, timeout=60)
    if check.returncode != 0:
        raise SystemExit("tls_bench check failed: " + check.stderr.strip())
    print("negotiated (pinned: %s, %s): %s" % (SUITE, GROUP, "; ".join(check.stdout.strip().splitlines())))
    print()

    rows = []  # (workload, label, runner)
    for workload, _, full, short, _ in WORKLOADS:
        count = short if args.short else full
        for implementation in ("raw", "greet"):
            rows.append((workload, implementation, lambda i=implementation, w=workload, n=count: run_once([args.bench, i, w, args.certs], n)))
    has_s_time = shutil.which("openssl") is not None
    if has_s_time:
        for implementation in ("raw", "greet"):
            rows.append(("s_time", implementation, lambda i=implementation: s_time(args.bench, i, args.certs, seconds)))
    else:
        print("note: s_time skipped: no openssl command")

    results = {}  # (workload, implementation) -> [(wall rate, cpu rate)] in round order
    start = time.time()
    for round_index in range(rounds):
        shift = round_index % len(rows)
        for workload, implementation, runner in rows[shift:] + rows[:shift]:
            results.setdefault((workload, implementation), []).append(runner())
        print("round %d of %d done (%.0f s)" % (round_index + 1, rounds, time.time() - start), file=sys.stderr)

    titles = {w: "W7 %s, %s (%d %s)" % (w, unit, short if args.short else full, what) for w, unit, full, short, what in WORKLOADS}
    titles["s_time"] = "W7 openssl s_time -new against the server, connections/s (%d s each; CPU column: s_time's own user CPU)" % seconds
    labels = {"raw": "raw OpenSSL (SSL_set_fd)", "greet": "greet_socket (start_tls/accept_tls)"}
    print("| workload | implementation | median | min-max | x raw | x raw, CPU | greet / raw, round by round |")
    print("|---|---|---:|---:|---:|---:|---|")
    for workload in [w[0] for w in WORKLOADS] + (["s_time"] if has_s_time else []):
        raw, greet = results[(workload, "raw")], results[(workload, "greet")]
        for implementation, samples in (("raw", raw), ("greet", greet)):
            walls = [s[0] for s in samples]
            ratio = statistics.median(walls) / statistics.median(s[0] for s in raw)
            cpu = statistics.median(s[1] for s in samples) / statistics.median(s[1] for s in raw)
            paired = ", ".join("%.2f" % (g[0] / r[0]) for g, r in sorted(zip(greet, raw), key=lambda p: p[0][0] / p[1][0]))
            print("| %s | %s | %s | %s-%s | %.2f | %.2f | %s |" % (
                titles[workload] if implementation == "raw" else "", labels[implementation] if workload != "s_time" else
                "against the %s server" % labels[implementation], fmt(statistics.median(walls)), fmt(min(walls)), fmt(max(walls)),
                ratio, cpu, paired if implementation == "greet" else ""))
    print()


if __name__ == "__main__":
    main()
