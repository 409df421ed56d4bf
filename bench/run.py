"""Runs every workload for every implementation, interleaved, and prints the table.

Called by scripts/bench.sh, which builds build/bench/bench first. Each round runs each
workload once per implementation, in an order that rotates from round to round, so a
burst of load from elsewhere on the machine hits every implementation alike. The table
gives the median of the rounds, the min-max spread, and the ratio of the medians to
raw POSIX (per wall-clock second, and per CPU second of client and server together).
"""
import argparse
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKLOADS = [  # name, unit, full count, short count, what the count is
    ("w1", "MB/s", 256, 4, "MiB in 64 KiB sends"),
    ("w2", "round trips/s", 20000, 300, "32-byte round trips"),
    ("w3", "connections/s", 3000, 50, "tutorial connections"),
    ("w4", "round trips/s", 20000, 300, "64-byte framed round trips"),
    ("w5", "lines/s", 4000000, 50000, "24-byte lines"),
    ("w1unix", "MB/s", 256, 4, "MiB in 64 KiB sends"),
    ("w2unix", "round trips/s", 20000, 300, "32-byte round trips"),
    ("w6", "round trips/s", 20000, 300, "64-byte UDP round trips"),
]
TITLES = {
    "w1": "W1 bulk",
    "w2": "W2 ping-pong",
    "w3": "W3 tutorial exchange",
    "w4": "W4 framed messages",
    "w5": "W5 lines",
    "w1unix": "W1 bulk over a Unix-domain socket",
    "w2unix": "W2 ping-pong over a Unix-domain socket",
    "w6": "W6 UDP ping-pong",
}


def implementations(workload, bench, has_asio):
    """(label, command, count scale) for each implementation of a workload; raw first."""
    python = [sys.executable, os.path.join(ROOT, "bench", "bench.py")]
    if workload.endswith("unix"):  # raw and greet over Unix, then the same two over TCP loopback
        tcp = workload[:-len("unix")]
        return [("raw POSIX, Unix", [bench, "raw", workload], 1.0), ("greet_socket, Unix", [bench, "greet", workload], 1.0),
                ("raw POSIX, TCP", [bench, "raw", tcp], 1.0), ("greet_socket, TCP", [bench, "greet", tcp], 1.0)]
    if workload == "w6":  # UDP: raw and greet (server recvfrom/sendto, client connect()ed)
        return [("raw POSIX", [bench, "raw", workload], 1.0), ("greet_socket", [bench, "greet", workload], 1.0)]
    raw_label = {"w4": "raw writev", "w5": "raw memchr parser"}.get(workload, "raw POSIX")
    rows = [(raw_label, [bench, "raw", workload], 1.0)]
    if workload == "w4":
        # The two-send framing stalls about 80 ms a round trip: a few dozen are enough.
        rows.append(("raw two sends (naive)", [bench, "raw", "w4naive"], 0.0012))
    greet_label = {"w4": "greet send_message/recv_message", "w5": "greet recv_line(line)"}.get(workload, "greet_socket")
    rows.append((greet_label, [bench, "greet", workload], 1.0))
    if workload == "w5":
        rows.append(("greet recv_line_view", [bench, "greet", "w5view"], 1.0))
    if has_asio:
        rows.append(({"w5": "asio read_until"}.get(workload, "asio (sync)"), [bench, "asio", workload], 1.0))
    rows.append(({"w5": "python readline"}.get(workload, "python socket"), python + [workload], 1.0))
    return rows


def run_once(command, count):
    out = subprocess.run(command + [str(count)], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit("%s failed: %s" % (" ".join(command), out.stderr.strip()))
    wall, cpu = out.stdout.split()
    return float(wall), float(cpu)


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def compile_seconds(source, level, include_dirs):
    """CPU seconds (user + system) of one g++ -c; the busy machine stretches wall time, not CPU time."""
    command = ["g++", "-std=c++17", level, "-c", source, "-o", os.devnull] + ["-I" + d for d in include_dirs]
    before = children_cpu()
    subprocess.run(command, check=True)
    return children_cpu() - before


def header_includes():
    """The standard and POSIX headers the default build of greet_socket.hpp includes: not
    its Windows block, its opt-in TLS block or the include that stops a pre-C++17 compile."""
    text = open(os.path.join(ROOT, "greet_socket.hpp")).read()
    posix = re.sub(r"#ifdef _WIN32.*?#else // POSIX", "", text, flags=re.S)
    posix = re.sub(r"#ifdef GREET_SOCKET_OPENSSL.*?#endif\n#endif", "", posix, flags=re.S)
    posix = re.sub(r"#if defined\(_MSVC_LANG\).*?#endif\n#endif", "", posix, flags=re.S)
    return re.findall(r"^#include (<[^>]+>)", posix, flags=re.M)


SERVE_SCALES = [(100, 10), (1000, 2), (10000, 1)]  # clients at once, waves of them per run
SERVE_SHORT_SCALES = [(100, 1), (1000, 1)]
SERVE_SERVERS = [("epoll", "single-thread epoll echo (baseline)"), ("serve", "serve(), thread pool"),
                 ("messages", "serve_messages(), workers")]
IDLE_WANTED = 50000


def serve_figures(serve_bench, command):
    out = subprocess.run([serve_bench] + command, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit("serve_bench %s failed: %s" % (" ".join(command), out.stderr.strip()))
    words = out.stdout.split()
    return dict(zip(words[0::2], (float(w) for w in words[1::2])))


def serve_workload(serve_bench, rounds, short):
    """Many clients at once against serve() and the epoll baseline: server CPU per round
    trip, failures, listen-queue overflows, and resident memory per idle connection."""
    scales = SERVE_SHORT_SCALES if short else SERVE_SCALES
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    idle = min(2000 if short else IDLE_WANTED, (hard if hard != resource.RLIM_INFINITY else 10 ** 6) - 200)
    runs, idles = {}, {}
    start = time.time()
    for round_index in range(rounds):
        k = round_index % len(SERVE_SERVERS)
        servers = SERVE_SERVERS[k:] + SERVE_SERVERS[:k]
        for clients, waves in scales:
            for server, _ in servers:
                runs.setdefault((clients, server), []).append(serve_figures(serve_bench, ["run", server, str(clients), "20", str(waves)]))
        for server, _ in servers:
            idles.setdefault(server, []).append(serve_figures(serve_bench, ["idle", server, str(idle)]))
        print("serve round %d of %d done (%.0f s)" % (round_index + 1, rounds, time.time() - start), file=sys.stderr)
    print("Serve: clients at once, each 20 round trips of a 64-byte send_message (every byte checked); "
          "server CPU (getrusage of the server process) per round trip, connects and closes included.")
    print()
    print("| clients | server | CPU us per round trip | min-max | x epoll | failures | listen overflows |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for clients, waves in scales:
        base = statistics.median(r["cpu_us_per_round_trip"] for r in runs[(clients, "epoll")])
        for server, label in SERVE_SERVERS:
            samples = runs[(clients, server)]
            cpu = [r["cpu_us_per_round_trip"] for r in samples]
            print("| %d%s | %s | %.1f | %.1f-%.1f | %.2f | %d | %d |" % (
                clients, " x %d" % waves if waves > 1 else "", label, statistics.median(cpu), min(cpu), max(cpu),
                statistics.median(cpu) / base, sum(r["failures"] for r in samples), sum(r["listen_overflows"] for r in samples)))
    print()
    if idle < IDLE_WANTED and not short:
        print("note: %d idle connections, not %d: the hard descriptor limit is %d (ulimit -Hn)" % (idle, IDLE_WANTED, hard))
    print("| server | resident bytes per idle connection (%d connections) | min-max | failures |" % idle)
    print("|---|---:|---:|---:|")
    for server, label in SERVE_SERVERS:
        sizes = [r["bytes_per_idle_connection"] for r in idles[server]]
        print("| %s | %.0f | %.0f-%.0f | %d |" % (label, statistics.median(sizes), min(sizes), max(sizes),
                                                 sum(r["failures"] for r in idles[server])))
    print()


def fmt(value):
    if value >= 1e6:
        return "%.2fM" % (value / 1e6)
    if value >= 1e4:
        return "%.1fk" % (value / 1e3)
    if value >= 100:
        return "%.0f" % value
    return "%.1f" % value


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", action="store_true", help="one small round: proves that everything builds and runs")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5; 1 with --short)")
    parser.add_argument("--bench", default=os.path.join(ROOT, "build", "bench", "bench"))
    parser.add_argument("--asio", action="store_true", help="the bench binary was built with asio")
    parser.add_argument("--workloads", default=None, help="only these, comma-separated (w1,w2,...,w1unix,w2unix,serve)")
    args = parser.parse_args()
    chosen = [w for w in WORKLOADS if args.workloads is None or w[0] in args.workloads.split(",")]
    serve = args.workloads is None or "serve" in args.workloads.split(",")
    if not chosen and not serve:
        raise SystemExit("--workloads: none of %s, serve" % ", ".join(w[0] for w in WORKLOADS))
    rounds = args.rounds or (1 if args.short else 5)
    build = os.path.dirname(args.bench)

    print("greet_socket benchmarks: %d round(s)%s; %s, %s, %d CPUs, load average %s" % (
        rounds, " (--short)" if args.short else "", platform.platform(), subprocess.run(
            ["g++", "--version"], capture_output=True, text=True).stdout.splitlines()[0],
        os.cpu_count(), " ".join(open("/proc/loadavg").read().split()[:3]) if os.path.exists("/proc/loadavg") else "?"))
    if not args.asio:
        print("note: asio skipped: <asio.hpp> not found (Debian: apt-get install libasio-dev)")
    print()

    results = {}  # (workload, label) -> [(wall, cpu)]
    start = time.time()
    for round_index in range(rounds):
        for workload, _, full, short, _ in chosen:
            rows = implementations(workload, args.bench, args.asio)
            shift = round_index % len(rows)
            for label, command, scale in rows[shift:] + rows[:shift]:
                count = max(2, int((short if args.short else full) * scale))
                results.setdefault((workload, label), []).append(run_once(command, count))
        print("round %d of %d done (%.0f s)" % (round_index + 1, rounds, time.time() - start), file=sys.stderr)

    if serve:
        serve_workload(os.path.join(build, "serve_bench"), rounds, args.short)
    if not chosen:
        return
    print("| workload | implementation | median | min-max | x raw | x raw, CPU |")
    print("|---|---|---:|---:|---:|---:|")
    for workload, unit, full, short, what in chosen:
        rows = implementations(workload, args.bench, args.asio)
        base = results[(workload, rows[0][0])]
        base_wall = statistics.median(r[0] for r in base)
        base_cpu = statistics.median(r[1] for r in base)
        title = "%s, %s (%d %s)" % (TITLES[workload], unit, short if args.short else full, what)
        for i, (label, _, _) in enumerate(rows):
            samples = results[(workload, label)]
            walls = [r[0] for r in samples]
            median = statistics.median(walls)
            cpu = statistics.median(r[1] for r in samples)
            print("| %s | %s | %s | %s-%s | %.2f | %.2f |" % (
                title if i == 0 else "", label, fmt(median), fmt(min(walls)), fmt(max(walls)),
                median / base_wall, cpu / base_cpu))
    print()
    for workload, _, _, _, _ in chosen:  # the Unix-domain socket against TCP loopback, greet_socket on both
        if workload.endswith("unix"):
            unix, tcp = results[(workload, "greet_socket, Unix")], results[(workload, "greet_socket, TCP")]
            print("%s: greet_socket over Unix / over TCP loopback = %.2f (by CPU %.2f)" % (
                TITLES[workload], statistics.median(r[0] for r in unix) / statistics.median(r[0] for r in tcp),
                statistics.median(r[1] for r in unix) / statistics.median(r[1] for r in tcp)))
        if workload == "w6":  # greet over raw, of the medians and round by round (each pair ran in the same round)
            greet, raw = results[(workload, "greet_socket")], results[(workload, "raw POSIX")]
            paired = sorted(g[0] / r[0] for g, r in zip(greet, raw))
            print("%s: greet_socket / raw POSIX = %.2f (by CPU %.2f); per round %s" % (
                TITLES[workload], statistics.median(r[0] for r in greet) / statistics.median(r[0] for r in raw),
                statistics.median(r[1] for r in greet) / statistics.median(r[1] for r in raw),
                ", ".join("%.2f" % p for p in paired)))
    print()
    if args.workloads is not None:
        return  # a chosen few: no compile cost or sizes

    # Compile cost: CPU seconds of g++ -c, median of the rounds, interleaved.
    compile_dir = os.path.join(build, "compile")
    os.makedirs(compile_dir, exist_ok=True)
    units = []
    with open(os.path.join(compile_dir, "greet.cpp"), "w") as f:
        f.write('#include "greet_socket.hpp"\nint main() { return 0; }\n')
    units.append(("#include \"greet_socket.hpp\"", os.path.join(compile_dir, "greet.cpp")))
    with open(os.path.join(compile_dir, "system.cpp"), "w") as f:
        f.write("".join("#include %s\n" % h for h in header_includes()) + "int main() { return 0; }\n")
    units.append(("the %d system and standard headers it includes" % len(header_includes()), os.path.join(compile_dir, "system.cpp")))
    if args.asio:
        with open(os.path.join(compile_dir, "asio.cpp"), "w") as f:
            f.write("#include <asio.hpp>\nint main() { return 0; }\n")
        units.append(("#include <asio.hpp>", os.path.join(compile_dir, "asio.cpp")))
    units.append(("examples/server.cpp (the tutorial server)", os.path.join(ROOT, "examples", "server.cpp")))
    times = {}
    for _ in range(1 if args.short else 5):
        for level in ("-O0", "-O2"):
            for label, source in units:
                times.setdefault((label, level), []).append(compile_seconds(source, level, [ROOT]))
    print("| translation unit | g++ -O0, CPU s | g++ -O2, CPU s | -O0 x system headers |")
    print("|---|---:|---:|---:|")
    system_o0 = statistics.median(times[(units[1][0], "-O0")])
    for label, _ in units:
        o0 = statistics.median(times[(label, "-O0")])
        o2 = statistics.median(times[(label, "-O2")])
        print("| %s | %.2f | %.2f | %.2f |" % (label, o0, o2, o0 / system_o0))
    print()

    # Size: the tutorial's programs, -O2, stripped.
    print("| program (g++ -O2, stripped) | bytes |")
    print("|---|---:|")
    for name in ("server", "client"):
        binary = os.path.join(build, name)
        subprocess.run(["g++", "-std=c++17", "-O2", "-I" + ROOT, os.path.join(ROOT, "examples", name + ".cpp"),
                        "-o", binary, "-pthread"], check=True)
        if shutil.which("strip"):
            subprocess.run(["strip", binary], check=True)
        print("| examples/%s | %d |" % (name, os.path.getsize(binary)))


if __name__ == "__main__":
    main()
