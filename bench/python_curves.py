#!/usr/bin/env python3
"""CPython's multiprocessing on the curve workloads: one workload measured
at several sizes or counts, the parameter in the workload's name.

Prints one JSON object per line on stdout, in the shared format that
multiproc-bench prints (see bench/README.md):

  {"workload": "pipe_bulk_65536", "impl": "python-mp", "start_method": "fork",
   "unit": "GB/s", "median": 7.2, "p10": 6.9, "p90": 7.4, "n": 5}

Workloads (multiproc-bench measures the same ones, next to their floors):

  pipe_bulk_N        N = 64, 4096, 65536, 1048576, 16777216 (bytes): the
                     parent sends T bytes as messages of N bytes with
                     send_bytes over the default duplex Pipe() to a running
                     child, which receives them with recv_bytes and checks
                     each one's length and its sequence number in its first
                     and last 8 bytes; timed until the child acknowledges.
                     T is 8 MiB for 64 B, 128 MiB for 4 KiB, 512 MiB above.
  queue_producers_P  P = 1, 2, 4, 8 running children together put 200,000
                     ints on one Queue (200,000 / P each, tagged with the
                     producer's number), and the parent gets them all;
                     timed from the go command to the last get. Every
                     producer's items arrive, each producer's in order.
  spawn_many_N       N = 1, 8, 32, 128: start N children running an empty
                     function, all before any is joined, then join them
                     all; one sample is the time divided by N (us per child).

Usage:
  python3 python_curves.py [--quick] [--only NAME[,NAME...]]
                           [--methods fork,spawn,forkserver]
  python3 python_curves.py --compare PYTHON.jsonl OTHER.jsonl

--compare prints the table of a side-by-side run (bench/curves.sh makes
one): for every workload, the other implementation's median, its floor's
(measured in the same run) and the ratio, then CPython's best start method
and the ratio against it. A key seen in several rounds counts with the
median of its medians.

NAME is a workload (pipe_bulk_4096) or a curve (pipe_bulk, queue_producers,
spawn_many). Progress goes to stderr, on lines starting with '#'; a failed
check, a crashed child or a hang (180 s per workload and method) prints
FAIL and exits with status 1. Stdlib only: spawn and forkserver children
import this file again, so its top-level imports are what multiprocessing
loads anyway.
"""

import os
import sys
import time
import multiprocessing

IMPL = "python-mp"
MiB = 1 << 20

PIPE_SIZES = [64, 4096, 65536, MiB, 16 * MiB]
PRODUCERS = [1, 2, 4, 8]
SPAWN_COUNTS = [1, 8, 32, 128]
QUEUE_ITEMS = 200_000
ALL_METHODS = ["fork", "spawn", "forkserver"]
WATCHDOG_S = 180

now = time.perf_counter


class BenchFailure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise BenchFailure(msg)


def pipe_total(size, quick):
    """Bytes sent per sample at message size `size`."""
    if size <= 64:
        total = 8 * MiB
    elif size <= 4096:
        total = 128 * MiB
    else:
        total = 512 * MiB
    return total // 8 if quick else total


# --------------------------------------------------------------------------
# Child-side functions, at top level so that spawn children find them.
# --------------------------------------------------------------------------

def noop():
    pass


def bulk_sink(conn):
    # (nmsg, size) -> receive nmsg messages of `size` bytes, each tagged with
    # its sequence number in its first and last 8 bytes; reply ("ok", total).
    # None: stop.
    recv_bytes = conn.recv_bytes
    while True:
        cmd = conn.recv()
        if cmd is None:
            break
        nmsg, size = cmd
        total = 0
        for i in range(nmsg):
            data = recv_bytes()
            tag = i.to_bytes(8, "little")
            if len(data) != size or data[:8] != tag or data[-8:] != tag:
                conn.send(("bad", i, len(data)))
                sys.exit(3)
            total += len(data)
        conn.send(("ok", total))
    conn.close()


def tagged_producer(q, me, cmd):
    # n -> put (me << 32) + i for i in 0..n-1, in order. None: stop.
    put = q.put
    base = me << 32
    while True:
        n = cmd.recv()
        if n is None:
            break
        for i in range(n):
            put(base + i)
    q.close()
    q.join_thread()
    cmd.close()


# --------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------

class Children:
    """Started processes; leftovers are killed on the way out."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.procs = []

    def start(self, target, args=()):
        p = self.ctx.Process(target=target, args=args, daemon=True)
        p.start()
        self.procs.append(p)
        return p

    def join_all(self, timeout=30):
        for p in self.procs:
            p.join(timeout)
            check(not p.is_alive(), "child %s did not exit" % p.pid)
            check(p.exitcode == 0, "child %s exited with code %s" % (p.pid, p.exitcode))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            try:
                if p.is_alive():
                    p.kill()
                    p.join(5)
            except Exception:
                pass
        return False


def recv_checked(conn, timeout=120):
    check(conn.poll(timeout), "no reply from child within %ss" % timeout)
    return conn.recv()


def pipe_bulk(size):
    def run(ctx, method, cfg):
        nmsg = pipe_total(size, cfg.quick) // size
        reps = 2 if cfg.quick else 5
        parent, child = ctx.Pipe()
        buf = bytearray(os.urandom(size))
        send_bytes = parent.send_bytes

        def one_run(count):
            parent.send((count, size))
            t0 = now()
            for i in range(count):
                tag = i.to_bytes(8, "little")
                buf[:8] = tag
                buf[-8:] = tag
                send_bytes(buf)
            reply = recv_checked(parent)
            t1 = now()
            check(reply == ("ok", count * size), "pipe_bulk_%d: child reported %r" % (size, reply))
            return t1 - t0

        with Children(ctx) as kids:
            kids.start(bulk_sink, (child,))
            child.close()
            one_run(max(1, nmsg // 8))  # warm-up
            samples = [nmsg * size / one_run(nmsg) / 1e9 for _ in range(reps)]
            parent.send(None)
            kids.join_all()
        parent.close()
        return "GB/s", samples
    return run


def queue_producers(p):
    def run(ctx, method, cfg):
        per = QUEUE_ITEMS // p
        reps = 2 if cfg.quick else 5
        q = ctx.Queue()
        get = q.get
        cmds = []

        def one_run(count):
            nxt = [0] * p
            t0 = now()
            for c in cmds:
                c.send(count)
            for _ in range(count * p):
                v = get()
                who, i = v >> 32, v & 0xFFFFFFFF
                if who >= p or nxt[who] != i:
                    raise BenchFailure("queue_producers_%d: got item %d of producer %d" % (p, i, who))
                nxt[who] += 1
            t1 = now()
            return t1 - t0

        with Children(ctx) as kids:
            for me in range(p):
                ours, theirs = ctx.Pipe()
                kids.start(tagged_producer, (q, me, theirs))
                theirs.close()
                cmds.append(ours)
            one_run(max(1, 5000 // p))  # warm-up
            samples = [per * p / one_run(per) for _ in range(reps)]
            check(q.empty(), "queue_producers_%d: extra items left in the queue" % p)
            for c in cmds:
                c.send(None)
            kids.join_all()
        for c in cmds:
            c.close()
        q.close()
        q.join_thread()
        return "msg/s", samples
    return run


def spawn_many(n):
    def run(ctx, method, cfg):
        # About as many children per (workload, method) at every N.
        full = {1: 40, 8: 8, 32: 3, 128: 2}[n]
        if method == "spawn":
            full = max(2, full // 2)
        reps = 2 if cfg.quick else full
        samples = []
        for r in range(reps + 1):
            t0 = now()
            procs = [ctx.Process(target=noop) for _ in range(n)]
            for pr in procs:
                pr.start()
            for pr in procs:
                pr.join()
            t1 = now()
            for pr in procs:
                check(pr.exitcode == 0, "spawn_many_%d: exitcode %r" % (n, pr.exitcode))
                pr.close()
            if r > 0:  # the first round warms up
                samples.append((t1 - t0) * 1e6 / n)
        return "us", samples
    return run


FUNCS = {}
for _n in PIPE_SIZES:
    FUNCS["pipe_bulk_%d" % _n] = pipe_bulk(_n)
for _p in PRODUCERS:
    FUNCS["queue_producers_%d" % _p] = queue_producers(_p)
for _n in SPAWN_COUNTS:
    FUNCS["spawn_many_%d" % _n] = spawn_many(_n)
CURVES = ("pipe_bulk", "queue_producers", "spawn_many")


# --------------------------------------------------------------------------
# Statistics and output, as in the shared reference script
# --------------------------------------------------------------------------

def percentile(sorted_vals, q):
    pos = (len(sorted_vals) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


def sig(x, digits=5):
    return 0.0 if x == 0 else float("%.*g" % (digits, x))


def summarize(workload, method, unit, samples):
    s = sorted(samples)
    return {
        "workload": workload,
        "impl": IMPL,
        "start_method": method,
        "unit": unit,
        "median": sig(percentile(s, 0.5)),
        "p10": sig(percentile(s, 0.1)),
        "p90": sig(percentile(s, 0.9)),
        "n": len(s),
    }


FLOORS = {"pipe_bulk": "raw_bulk", "queue_producers": "raw_queue_producers", "spawn_many": "raw_spawn_many"}


def load(path):
    import json
    seen = {}
    with open(path) as f:
        for line in f:
            if line.startswith("{"):
                d = json.loads(line)
                seen.setdefault((d["workload"], d["start_method"]), []).append(d)
    rows = {}
    for key, ds in seen.items():
        ds.sort(key=lambda d: d["median"])
        rows[key] = ds[len(ds) // 2]
    return rows


def compare(py_path, other_path):
    py, other = load(py_path), load(other_path)

    def times(unit, a, b):
        # How many times better a is than b.
        return b / a if unit == "us" else a / b

    print("%-22s %-6s %12s %12s %8s %12s %-11s %8s"
          % ("workload", "unit", "other", "floor", "x floor", "CPython", "(best of)", "x CPy"))
    for name in FUNCS:
        ours = [d for (w, _), d in other.items() if w == name and d["impl"] != IMPL]
        if not ours:
            continue
        d = ours[0]
        unit = d["unit"]
        curve = name.rsplit("_", 1)[0]
        floor = [f for (w, _), f in other.items() if w == FLOORS[curve] + name[len(curve):]]
        cands = [c for (w, _), c in py.items() if w == name]
        best = None
        for c in cands:
            if best is None or times(unit, c["median"], best["median"]) > 1:
                best = c
        print("%-22s %-6s %12.4g %12s %8s %12s %-11s %8s" % (
            name, unit, d["median"],
            "%.4g" % floor[0]["median"] if floor else "-",
            "%.2f" % times(unit, d["median"], floor[0]["median"]) if floor else "",
            "%.4g" % best["median"] if best else "-",
            "(%s)" % best["start_method"] if best else "",
            "%.2f" % times(unit, d["median"], best["median"]) if best else ""))


def _on_alarm(signum, frame):
    raise BenchFailure("timed out after %ss" % WATCHDOG_S)


def main(argv=None):
    import argparse
    import json
    import signal

    ap = argparse.ArgumentParser(description="CPython multiprocessing on the curve workloads.")
    ap.add_argument("--quick", action="store_true", help="fewer and smaller samples, for smoke tests")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="a workload or a curve (repeatable, or comma-separated): "
                         + ", ".join(CURVES + tuple(FUNCS)))
    ap.add_argument("--methods", default=",".join(ALL_METHODS),
                    help="comma-separated start methods (default: %(default)s)")
    ap.add_argument("--compare", nargs=2, metavar=("PYTHON.jsonl", "OTHER.jsonl"),
                    help="print the side-by-side table of two outputs instead of measuring")
    args = ap.parse_args(argv)
    if args.compare:
        compare(*args.compare)
        return 0

    selected = set()
    for item in args.only:
        for name in filter(None, (s.strip() for s in item.split(","))):
            if name in CURVES:
                selected.update(w for w in FUNCS if w.startswith(name + "_"))
            elif name in FUNCS:
                selected.add(name)
            else:
                ap.error("unknown workload %r" % name)
    workloads = [w for w in FUNCS if not selected or w in selected]
    available = multiprocessing.get_all_start_methods()
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in available:
            ap.error("start method %r not available here" % m)

    signal.signal(signal.SIGALRM, _on_alarm)
    for w in workloads:
        for m in methods:
            t0 = now()
            signal.alarm(WATCHDOG_S)
            try:
                unit, samples = FUNCS[w](multiprocessing.get_context(m), m, args)
            except BaseException as e:
                signal.alarm(0)
                print("FAIL %s/%s: %s: %s" % (w, m, type(e).__name__, e), file=sys.stderr)
                return 1
            signal.alarm(0)
            rec = summarize(w, m, unit, samples)
            print(json.dumps(rec), flush=True)
            print("#   %-22s %-10s %12s %-7s (%.1fs)" % (w, m, rec["median"], unit, now() - t0), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
