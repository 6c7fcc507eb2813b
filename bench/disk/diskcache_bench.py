#!/usr/bin/env python3
"""Worker for cachekit's bench/disk: runs the benchmark's phases against
diskcache.Cache(dir), the way the Go workers run them against their stores.

The Go program (bench/disk) starts this script and drives it with one JSON
object per line on stdin; see the protocol comment in worker.go. Each op is
timed on its own with time.perf_counter_ns. The reply to a phase carries the
raw latencies (lat_ns, so that the parent can merge two processes exactly)
and a summary per phase: op count n, median_us and p99_us (nearest rank).

Keys are str ("<prefix>key-%015d") and values bytes, so DiskCache stores both
raw, without pickling; values under 32 KiB stay in the SQLite row.
"""

import argparse
import json
import math
import os
import sys
import threading
import time

import diskcache

FILL_CHUNK = 500


def emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def key_name(prefix, i):
    return "%skey-%015d" % (prefix, i)


def percentile(sorted_ns, p):
    """Nearest-rank percentile, in µs (the Go report uses the same rule)."""
    if not sorted_ns:
        return 0.0
    rank = max(1, math.ceil(p * len(sorted_ns)))
    return sorted_ns[rank - 1] / 1000.0


def run_part(cache, req, barrier, keys, kinds, val, out):
    op, expect, record = req["op"], req.get("expect", ""), req.get("record", False)
    pc = time.perf_counter_ns
    get, set_, delete = cache.get, cache.set, cache.delete
    lat = []
    errors = unexpected = 0
    first_error = ""
    barrier.wait()
    start = time.time_ns()
    if op in ("fill", "purge"):
        for c in range(0, len(keys), FILL_CHUNK):
            try:
                with cache.transact():
                    for k in keys[c : c + FILL_CHUNK]:
                        if op == "fill":
                            set_(k, val)
                        else:
                            delete(k)
            except Exception as e:  # counted and reported, like the Go workers
                errors += 1
                first_error = first_error or repr(e)
    else:
        for i, k in enumerate(keys):
            kind = kinds[i] if op == "mix" else op[0]
            try:
                t0 = pc()
                if kind == "g":
                    ok = get(k) is not None
                elif kind == "s":
                    ok = set_(k, val)
                else:
                    ok = delete(k)
                t1 = pc()
            except Exception as e:
                errors += 1
                first_error = first_error or repr(e)
                continue
            if record:
                lat.append(t1 - t0)
            if expect in ("hit", "found"):
                ok = not ok
            if expect and ok:
                unexpected += 1
    out.update(
        lat_ns=lat,
        start_ns=start,
        end_ns=time.time_ns(),
        errors=errors,
        first_error=first_error,
        unexpected=unexpected,
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--prefix", default="")
    args = ap.parse_args()
    try:
        cache = diskcache.Cache(args.dir)
    except Exception as e:
        emit({"error": "diskcache.Cache(%r): %r" % (args.dir, e)})
        return 1
    emit({"ready": True, "info": "diskcache " + diskcache.__version__})
    lines = iter(sys.stdin.readline, "")
    for line in lines:
        req = json.loads(line)
        if req["cmd"] == "close":
            break
        parts = req.get("parts") or []
        size = req.get("size", 0)
        work = []
        for p in parts:
            keys = [key_name(args.prefix, i) for i in p.get("keys") or []]
            work.append((keys, p.get("kinds", ""), os.urandom(size), {}))
        emit({"ready": True})
        start = json.loads(next(lines))
        if start.get("cmd") != "go":
            emit({"error": "expected go, got %r" % start})
            return 1
        barrier = threading.Barrier(max(1, len(work)))
        threads = [
            threading.Thread(target=run_part, args=(cache, req, barrier) + w)
            for w in work[1:]
        ]
        for t in threads:
            t.start()
        if work:
            run_part(cache, req, barrier, *work[0])
        for t in threads:
            t.join()
        res = {"lat_ns": [], "start_ns": 0, "end_ns": 0, "errors": 0, "unexpected": 0}
        for *_, out in work:
            res["lat_ns"] += out["lat_ns"]
            res["start_ns"] = min(res["start_ns"] or out["start_ns"], out["start_ns"])
            res["end_ns"] = max(res["end_ns"], out["end_ns"])
            res["errors"] += out["errors"]
            res["unexpected"] += out["unexpected"]
            res["first_error"] = res.get("first_error") or out["first_error"]
        srt = sorted(res["lat_ns"])
        res["summary"] = {
            "workload": req.get("workload", req["op"]),
            "n": len(srt),
            "median_us": percentile(srt, 0.50),
            "p99_us": percentile(srt, 0.99),
        }
        emit(res)
    cache.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
