"""Benchmark the SQLite log (not a test: prints figures, asserts nothing about time).

    python -m bench.tlog_bench                      # sizes 10^4, 10^5, 10^6 (slow: ~2 GB disk)
    python -m bench.tlog_bench --sizes 10000,100000 --json
    python -m bench.tlog_bench --sizes 1000000 --keep /tmp/tlb  # keep the databases
    python -m bench.tlog_bench --replay /tmp/tlb/1000000 --repeat 5  # replay only

Each size runs in a fresh subprocess (so its peak RSS is its own) that, with durable commits
(WAL, synchronous=FULL) in a temporary directory:

- appends 1 KiB entries in batches of ``--batch`` through ``Log.add`` (one group commit per
  call), integrating after each batch; reports sequencing, integration and combined rates,
  and the combined rate over the last 10% of the log ("sustained");
- appends from 16 threads at once with small batches (group commit at work);
- times inclusion and consistency proofs from the stored tiles (warm tile cache: median of
  ``--proofs`` random proofs each);
- replays the whole tree from its entry bundles (``recompute_tree``), reported both for the
  hashing alone (in wall time and per CPU second) and including reading the bundles out of
  SQLite;
- reports the process's peak RSS (ru_maxrss) and the tracemalloc peak of a proof+integration
  phase.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

from transparency_log.core import merkle, tiles
from transparency_log.log.lifecycle import Log, recompute_tree
from transparency_log.log.storage.base import TreeState
from transparency_log.log.storage.sqlite import SqliteStorage

ENTRY_SIZE = 1024


def make_entries(start: int, end: int) -> list[bytes]:
    pad = b"\xa5" * (ENTRY_SIZE - 8)
    return [i.to_bytes(8, "big") + pad for i in range(start, end)]


def median_ms(fn, args_list) -> float:  # type: ignore[no-untyped-def]
    times = []
    for args in args_list:
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def _rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(size: int, batch: int, proofs: int, directory: str) -> dict[str, float]:
    out: dict[str, float] = {"size": size}
    storage = SqliteStorage(Path(directory) / "bench.db")
    log = Log(storage, "bench.example/log")
    t_seq = t_int = 0.0
    tail_start = size - max(size // 10, 1)
    tail_time, tail_entries = 0.0, 0
    n = 0
    while n < size:
        chunk = make_entries(n, min(n + batch, size))
        t0 = time.perf_counter()
        log.add(chunk)
        t1 = time.perf_counter()
        log.integrate()
        t2 = time.perf_counter()
        t_seq += t1 - t0
        t_int += t2 - t1
        if n + len(chunk) > tail_start:  # batches reaching into the last 10%
            tail_time += t2 - t0
            tail_entries += len(chunk)
        n += len(chunk)
    out["append_seq_per_s"] = size / t_seq
    out["integrate_per_s"] = size / t_int
    out["append_total_per_s"] = size / (t_seq + t_int)
    out["append_sustained_last10pct_per_s"] = tail_entries / tail_time

    # group commit: 16 threads, batches of 10
    threads, per_thread, small = 16, 40, 10
    base = size + 1_000_000_000

    def hammer(t: int) -> None:
        for i in range(per_thread):
            start = base + (t * per_thread + i) * small
            log.add(make_entries(start, start + small))

    pool = [threading.Thread(target=hammer, args=(t,)) for t in range(threads)]
    t0 = time.perf_counter()
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    out["concurrent_16x10_per_s"] = threads * per_thread * small / (time.perf_counter() - t0)
    state = log.integrate()
    total = state.size

    out["rss_after_append_mib"] = _rss_mib()

    rng = random.Random(42)
    idx = [(rng.randrange(total), None) for _ in range(proofs)]
    out["inclusion_ms_median"] = median_ms(log.inclusion_proof, idx)
    sizes = [(rng.randrange(1, total), None) for _ in range(proofs)]
    out["consistency_ms_median"] = median_ms(log.consistency_proof, sizes)
    tracemalloc.start()  # a separate pass: tracing slows allocation down
    median_ms(log.inclusion_proof, idx[: proofs // 4])
    median_ms(log.consistency_proof, sizes[: proofs // 4])
    out["tracemalloc_peak_proofs_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    out["rss_after_proofs_mib"] = _rss_mib()
    # check one proof, so the figures are for correct work
    i = idx[0][0]
    merkle.verify_inclusion(i, total, merkle.leaf_hash(log.entry(i)), log.inclusion_proof(i),
                            state.root)

    out.update(replay(log, state))
    out["db_mib"] = sum(p.stat().st_size for p in Path(directory).iterdir()) / 2**20
    out["peak_rss_mib"] = _rss_mib()
    storage.close()
    return out


def replay(log: Log, state: TreeState) -> dict[str, float]:
    """Time ``recompute_tree`` over the log's entry bundles read from SQLite: wall and CPU
    time (``time.process_time``: what the replay itself costs, whatever else the machine
    runs), the hashing alone (reading the bundles subtracted) and including the reads."""
    bundles = list(tiles.bundles_for_size(state.size))
    t_read = c_read = 0.0

    def stream():  # type: ignore[no-untyped-def]
        nonlocal t_read, c_read
        for b in bundles:
            t, c = time.perf_counter(), time.process_time()
            data = log.entry_bundle(b.index, b.width)
            t_read += time.perf_counter() - t
            c_read += time.process_time() - c
            yield data

    t0, c0 = time.perf_counter(), time.process_time()
    replayed = recompute_tree(stream())
    t_all, c_all = time.perf_counter() - t0, time.process_time() - c0
    assert replayed == state, "replayed tree differs"
    return {"recompute_hash_leaves_per_s": state.size / (t_all - t_read),
            "recompute_hash_cpu_leaves_per_s": state.size / (c_all - c_read),
            "recompute_with_sqlite_read_leaves_per_s": state.size / t_all}


def replay_only(directory: str, repeat: int) -> int:
    """``--replay DIR``: replay a database kept by ``--keep`` ``repeat`` times (the 10^6
    database takes minutes to build); min and median of each rate, and the load average."""
    storage = SqliteStorage(Path(directory) / "bench.db")
    log = Log(storage, "bench.example/log")
    state = log.tree_state()
    runs = []
    for _ in range(repeat):
        runs.append(replay(log, state))
        runs[-1]["loadavg_1min"] = float(Path("/proc/loadavg").read_text().split()[0])
    storage.close()
    print(f"replay of {state.size:,} leaves, {repeat} runs, {os.cpu_count()} CPUs")
    print(f"{'metric':<44}  {'min':>10}  {'median':>10}  {'max':>10}")
    for key in runs[0]:
        values = sorted(r[key] for r in runs)
        print(f"{key:<44}  {values[0]:>10,.1f}  {statistics.median(values):>10,.1f}  "
              f"{values[-1]:>10,.1f}")
    return 0


ROWS = [
    ("append_seq_per_s", "append 1 KiB (sequencing, durable), entries/s", ">= 20,000"),
    ("integrate_per_s", "integration into tiles, leaves/s", ""),
    ("append_total_per_s", "append + integrate, entries/s", ">= 20,000"),
    ("append_sustained_last10pct_per_s", "  ... over the last 10% of the log", ">= 20,000"),
    ("concurrent_16x10_per_s", "16 threads x batches of 10 (group commit), entries/s", ""),
    ("inclusion_ms_median", "inclusion proof, median ms", "<= 1"),
    ("consistency_ms_median", "consistency proof, median ms", "<= 1"),
    ("recompute_hash_leaves_per_s", "replay tree from entry bundles, leaves/s", ">= 500,000"),
    ("recompute_hash_cpu_leaves_per_s", "  ... per CPU second (process_time)", ">= 500,000"),
    ("recompute_with_sqlite_read_leaves_per_s", "  ... including reading bundles from SQLite",
     ""),
    ("rss_after_append_mib", "peak RSS after appends, MiB", "flat"),
    ("rss_after_proofs_mib", "peak RSS after proofs, MiB", "flat"),
    ("peak_rss_mib", "peak RSS after replay (whole run), MiB", "flat"),
    ("tracemalloc_peak_proofs_mib", "tracemalloc peak during proofs, MiB", "flat"),
    ("db_mib", "database size, MiB", ""),
]


def fmt(key: str, value: float) -> str:
    if key.endswith("_ms_median"):
        return f"{value:.3f}"
    if key.endswith("_mib"):
        return f"{value:.1f}"
    return f"{value:,.0f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--batch", type=int, default=10000)
    ap.add_argument("--proofs", type=int, default=2000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", metavar="DIR",
                    help="build each size's database in DIR/<size> and keep it")
    ap.add_argument("--replay", metavar="DIR",
                    help="only replay the database kept in DIR (see --keep), --repeat times")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.batch, args.proofs, args.dir)))
        return 0
    if args.replay is not None:
        return replay_only(args.replay, args.repeat)
    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        with contextlib.ExitStack() as stack:
            if args.keep is not None:
                d = str(Path(args.keep) / str(size))
                Path(d).mkdir(parents=True)
            else:
                d = stack.enter_context(tempfile.TemporaryDirectory(
                    prefix="tlog-bench-", dir=os.environ.get("TMPDIR")))
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", str(size), "--batch", str(args.batch),
                 "--proofs", str(args.proofs), "--dir", d],
                capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr)
                return 1
            results.append(json.loads(proc.stdout))
    if args.json:
        print(json.dumps({"entry_size": ENTRY_SIZE, "cpus": os.cpu_count(),
                          "results": results}, indent=2))
        return 0
    sizes = [f"{r['size']:,}" for r in results]
    width = max(len(label) for _, label, _ in ROWS)
    print(f"{'metric':<{width}}  " + "  ".join(f"{s:>12}" for s in sizes) + "  target")
    for key, label, target in ROWS:
        cells = "  ".join(f"{fmt(key, r[key]):>12}" for r in results)
        print(f"{label:<{width}}  {cells}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
