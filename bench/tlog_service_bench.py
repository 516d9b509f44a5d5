"""Benchmark the log service over HTTP (not a test: prints figures, asserts nothing).

    python -m bench.tlog_service_bench                     # defaults below
    python -m bench.tlog_service_bench --adds 20000 --monitor-size 1000000 --json
    python -m bench.tlog_service_bench --monitor-only --monitor-size 1000000 \\
        --monitor-dir /tmp/tlm --repeat 5       # build the 10^6 log once, reuse it

On 127.0.0.1, with durable commits (SQLite WAL + synchronous=FULL):

1. ``POST /add``: ``--clients`` client *processes* (keep-alive sessions, bearer token) add
   ``--adds`` distinct 256-byte entries in all to a fresh ``tlog serve`` subprocess;
   entries/s acknowledged (each one durable when answered);
2. tile reads: the same clients GET random full hash tiles and entry bundles for
   ``--seconds`` from ``tlog serve`` itself, then from the static tree written by
   ``tlog publish-tiles`` behind nginx when nginx is installed (else Python's
   ThreadingHTTPServer, named as such in the table); requests/s;
3. ``tlog monitor``'s work (:func:`transparency_log.client.log_client.monitor`): a log of
   ``--monitor-size`` entries (built through the library, not timed) is monitored from a
   fresh state over HTTP from ``tlog serve``, from its published tree behind the static
   server, and from the directory itself; leaves/s (min and median over ``--repeat`` runs,
   per wall second and per CPU second of the monitor, and the server's CPU seconds).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from transparency_log.client.log_client import (
    CheckpointStore,
    LogClient,
    directory_source,
    http_source,
    monitor,
)
from transparency_log.core import tiles
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import Signer, generate_keys
from transparency_log.log.lifecycle import Log
from transparency_log.log.publish import publish_tiles
from transparency_log.log.storage.sqlite import SqliteStorage

CLI = "from transparency_log.cli.main import main; main()"
TOKEN = "bench-token"
ORIGIN = "bench.example/log"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    for _ in range(600):
        if proc is not None and proc.poll() is not None:
            raise SystemExit("server exited")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not start")


def serve(db: Path, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    subs = tmp / "submitters.toml"
    subs.write_text(f'[tokens]\nb = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"\n')
    proc = subprocess.Popen([sys.executable, "-c", CLI, "serve", "--db", str(db), "--listen",
                             f"127.0.0.1:{port}", "--submitters", str(subs),
                             "--interval", "1"], stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_up(base + "/checkpoint", proc)
    return proc, base


def init_log(tmp: Path, name: str) -> tuple[Path, str]:
    skey, vkey = generate_keys(ORIGIN)
    (tmp / f"{name}.key").write_text(skey + "\n")
    db = tmp / f"{name}.db"
    subprocess.run([sys.executable, "-c", CLI, "init", "--db", str(db), "--origin", ORIGIN,
                    "--key", str(tmp / f"{name}.key")], check=True, capture_output=True)
    return db, vkey


def _conn(base: str) -> http.client.HTTPConnection:
    """A keep-alive connection (http.client: far less client CPU than requests, so the
    client processes take less of the machine from the server they measure)."""
    host, port = base.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=60)


def add_worker(base: str, worker: int, count: int, start: mp.Barrier) -> None:
    conn = _conn(base)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = os.urandom(120).hex().encode()[:240]
    start.wait()
    for i in range(count):
        conn.request("POST", "/add", body=b"%d-%d-" % (worker, i) + body, headers=headers)
        r = conn.getresponse()
        text = r.read()
        if r.status != 200:
            raise SystemExit(f"add failed: {r.status} {text!r}")


def read_worker(base: str, paths: list[str], seconds: float, start: mp.Barrier,
                out: mp.Queue) -> None:
    conn = _conn(base)
    rng = random.Random(os.getpid())
    start.wait()
    n, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        path = "/" + rng.choice(paths)
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit(f"read failed: {r.status} {path}")
        n += 1
    out.put(n)


def bench_adds(base: str, clients: int, total: int) -> float:
    barrier = mp.Barrier(clients + 1)
    procs = [mp.Process(target=add_worker, args=(base, w, total // clients, barrier))
             for w in range(clients)]
    for p in procs:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    for p in procs:
        p.join()
    return (total // clients * clients) / (time.perf_counter() - t0)


def bench_reads(base: str, paths: list[str], clients: int, seconds: float) -> float:
    barrier, out = mp.Barrier(clients + 1), mp.Queue()
    procs = [mp.Process(target=read_worker, args=(base, paths, seconds, barrier, out))
             for _ in range(clients)]
    for p in procs:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    counts = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(counts) / (time.perf_counter() - t0)


def static_server(directory: Path, tmp: Path) -> tuple[str, str, object]:
    """nginx on the directory if installed, else Python's threading server."""
    port = free_port()
    if shutil.which("nginx"):
        conf = tmp / "nginx.conf"
        conf.write_text(
            f"daemon off; worker_processes 2; pid {tmp}/nginx.pid; error_log {tmp}/err.log;\n"
            "events { worker_connections 1024; }\n"
            f"http {{ access_log off; client_body_temp_path {tmp}; proxy_temp_path {tmp};\n"
            f"  fastcgi_temp_path {tmp}; uwsgi_temp_path {tmp}; scgi_temp_path {tmp};\n"
            f"  server {{ listen 127.0.0.1:{port}; root {directory}; }} }}\n")
        proc = subprocess.Popen(["nginx", "-c", str(conf)], stderr=subprocess.DEVNULL)
        wait_up(f"http://127.0.0.1:{port}/checkpoint")
        return f"http://127.0.0.1:{port}", "nginx", proc
    handler = partial(SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}", "python http.server (nginx not installed)", httpd


def build_log(db: Path, key: Path, size: int) -> None:
    storage = SqliteStorage(db)
    log = Log(storage, ORIGIN)
    batch = 50_000
    for start in range(0, size, batch):
        log.add([b"monitor entry %d" % i for i in range(start, min(size, start + batch))])
    log.publish(Signer(key.read_text().strip()), datetime.now(UTC))
    storage.close()


def stop(handle: object) -> None:
    if isinstance(handle, subprocess.Popen):
        handle.send_signal(signal.SIGTERM)
        handle.wait(10)
    else:
        handle.shutdown()  # type: ignore[attr-defined]


def bench_service(args: argparse.Namespace, tmp: Path, results: dict[str, object]) -> None:
    """Parts 1 and 2: ``POST /add`` and tile reads."""
    db, _ = init_log(tmp, "adds")
    proc, base = serve(db, tmp)
    try:
        results["post_add_per_s"] = bench_adds(base, args.clients, args.adds)
        time.sleep(1.5)  # let the publisher integrate and sign
        size = int(requests.get(base + "/checkpoint", timeout=10).text.split("\n")[1])
        paths = [t.path for t in tiles.tiles_for_size(size) if t.width == 256 and
                 t.level == 0] + [t.path for t in tiles.bundles_for_size(size)
                                  if t.width == 256]
        results["tiles_in_read_set"] = len(paths)
        results["tile_reads_per_s_tlog_serve"] = bench_reads(base, paths, args.clients,
                                                             args.seconds)
        storage = SqliteStorage(db)
        publish_tiles(Log(storage, ORIGIN), tmp / "static")
        storage.close()
    finally:
        stop(proc)
    sbase, kind, handle = static_server(tmp / "static", tmp)
    try:
        results["static_server"] = kind
        results["tile_reads_per_s_static"] = bench_reads(sbase, paths, args.clients,
                                                         args.seconds)
    finally:
        stop(handle)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` and its children (nginx's workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):  # pid, or ppid == pid
            total += int(fields[11]) + int(fields[12])
    return total / tick


def monitor_data(args: argparse.Namespace, tmp: Path) -> tuple[Path, str]:
    """The monitored log (database, published tree, vkey): built in ``--monitor-dir`` once and
    reused from there, else in the temporary directory."""
    where = Path(args.monitor_dir) if args.monitor_dir else tmp
    where.mkdir(parents=True, exist_ok=True)
    done = where / "monitor.vkey"
    if not done.exists():
        mdb, mvkey = init_log(where, "monitor")
        build_log(mdb, where / "monitor.key", args.monitor_size)
        storage = SqliteStorage(mdb)
        publish_tiles(Log(storage, ORIGIN), where / "mstatic")
        storage.close()
        done.write_text(mvkey + "\n")
    return where, done.read_text().strip()


def bench_monitor(args: argparse.Namespace, tmp: Path, results: dict[str, object]) -> None:
    """Part 3: ``tlog monitor``'s work from ``tlog serve``, the static server and the
    directory, ``--repeat`` times each from a fresh state; wall and CPU time of the monitor
    (``time.process_time``, this process) and of the server (``/proc``)."""
    where, mvkey = monitor_data(args, tmp)
    runs: dict[str, list[dict[str, float]]] = {}

    def run_monitor(fetch: tiles.Fetch, name: str, server: int | None) -> None:
        for i in range(args.repeat):
            client = LogClient(fetch, Verifier(mvkey), store=CheckpointStore(tmp / f"{name}{i}"))
            s0 = process_cpu(server) if server else 0.0
            t0, c0 = time.perf_counter(), time.process_time()
            r = monitor(client)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            results["monitor_leaves"] = r.new_entries
            runs.setdefault(name, []).append({
                "leaves_per_s": r.new_entries / wall,
                "leaves_per_cpu_s": r.new_entries / cpu,
                "server_cpu_s": (process_cpu(server) - s0) if server else 0.0,
                "loadavg": float(Path("/proc/loadavg").read_text().split()[0])})

    proc, base = serve(where / "monitor.db", tmp)
    try:
        run_monitor(http_source(base), "tlog_serve", proc.pid)
    finally:
        stop(proc)
    sbase, kind, handle = static_server(where / "mstatic", tmp)
    results["static_server"] = kind
    try:
        run_monitor(http_source(sbase), "static",
                    handle.pid if isinstance(handle, subprocess.Popen) else None)
    finally:
        stop(handle)
    run_monitor(directory_source(where / "mstatic"), "directory", None)
    for name, rs in runs.items():
        results[f"monitor_leaves_per_s_{name}"] = statistics.median(
            r["leaves_per_s"] for r in rs)
        results[f"monitor_runs_{name}"] = rs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--adds", type=int, default=8000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--monitor-size", type=int, default=100_000)
    ap.add_argument("--monitor-only", action="store_true", help="skip parts 1 and 2")
    ap.add_argument("--monitor-dir", metavar="DIR",
                    help="build the monitored log in DIR once and reuse it on later runs")
    ap.add_argument("--repeat", type=int, default=1, help="monitor runs per source")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tlog-service-bench-"))
    results: dict[str, object] = {"cpus": os.cpu_count(), "clients": args.clients}
    try:
        if not args.monitor_only:
            bench_service(args, tmp, results)
        bench_monitor(args, tmp, results)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(results))
        return 0
    rows = []
    if not args.monitor_only:
        rows += [
            ("POST /add, entries/s", results["post_add_per_s"], ">= 3000"),
            ("tile reads/s, tlog serve", results["tile_reads_per_s_tlog_serve"], "(reported)"),
            (f"tile reads/s, {results['static_server']}", results["tile_reads_per_s_static"],
             ">= 5000 (nginx)"),
        ]
    leaves = results["monitor_leaves"]
    for name, label, target in [("tlog_serve", "tlog serve", "(reported)"),
                                ("static", str(results["static_server"]), ">= 300000"),
                                ("directory", "local directory", "(reported)")]:
        rows.append((f"monitor leaves/s ({leaves} leaves), {label}",
                     results[f"monitor_leaves_per_s_{name}"], target))
    width = max(len(r[0]) for r in rows)
    print(f"{args.clients} client processes, {os.cpu_count()} CPUs")
    print(f"{'metric':<{width}}  {'value':>10}  target")
    for label, value, target in rows:
        print(f"{label:<{width}}  {value:>10.0f}  {target}")
    print(f"\nmonitor, {args.repeat} run(s) each: min / median")
    for name in ("tlog_serve", "static", "directory"):
        rs = results[f"monitor_runs_{name}"]
        assert isinstance(rs, list)
        cells = []
        for key in ("leaves_per_s", "leaves_per_cpu_s", "server_cpu_s", "loadavg"):
            values = sorted(r[key] for r in rs)
            cells.append(f"{key} {values[0]:,.2f} / {statistics.median(values):,.2f}")
        print(f"  {name:<10}  " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
