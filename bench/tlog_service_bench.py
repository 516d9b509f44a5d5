"""Benchmark the log service over HTTP (not a test: prints figures, asserts nothing).

    python bench/tlog_service_bench.py                     # defaults below
    python bench/tlog_service_bench.py --adds 20000 --monitor-size 1000000 --json

On 127.0.0.1, with durable commits (SQLite WAL + synchronous=FULL):

1. ``POST /add``: ``--clients`` client *processes* (keep-alive sessions, bearer token) add
   ``--adds`` distinct 256-byte entries in all to a fresh ``tlog serve`` subprocess;
   entries/s acknowledged (each one durable when answered);
2. tile reads: the same clients GET random full hash tiles and entry bundles for
   ``--seconds`` from ``tlog serve`` itself, then from the static tree written by
   ``tlog publish-tiles`` behind nginx when nginx is installed (else Python's
   ThreadingHTTPServer, named as such in the table); requests/s;
3. ``tlog monitor``'s work (:func:`transparency_log.client.monitor`): a log of
   ``--monitor-size`` entries (built through the library, not timed) is monitored from a
   fresh state over HTTP from ``tlog serve``, from its published tree behind the static
   server, and from the directory itself; leaves/s.
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

from transparency_log import tiles
from transparency_log.client import (
    CheckpointStore,
    LogClient,
    directory_source,
    http_source,
    monitor,
)
from transparency_log.log import Log
from transparency_log.note import Signer, Verifier, generate_keys
from transparency_log.publish import publish_tiles
from transparency_log.storage.sqlite import SqliteStorage

CLI = "from transparency_log.cli import main; main()"
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--adds", type=int, default=8000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--monitor-size", type=int, default=100_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tlog-service-bench-"))
    results: dict[str, object] = {"cpus": os.cpu_count(), "clients": args.clients}
    try:
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
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        sbase, kind, handle = static_server(tmp / "static", tmp)
        try:
            results["static_server"] = kind
            results["tile_reads_per_s_static"] = bench_reads(sbase, paths, args.clients,
                                                             args.seconds)
        finally:
            if isinstance(handle, subprocess.Popen):
                handle.terminate()
                handle.wait(10)
            else:
                handle.shutdown()  # type: ignore[attr-defined]

        mdb, mvkey = init_log(tmp, "monitor")
        build_log(mdb, tmp / "monitor.key", args.monitor_size)
        storage = SqliteStorage(mdb)
        publish_tiles(Log(storage, ORIGIN), tmp / "mstatic")
        storage.close()

        def run_monitor(fetch: tiles.Fetch, name: str) -> None:
            client = LogClient(fetch, Verifier(mvkey), store=CheckpointStore(tmp / name))
            t0 = time.perf_counter()
            r = monitor(client)
            results["monitor_leaves"] = r.new_entries
            results[f"monitor_leaves_per_s_{name}"] = r.new_entries / (time.perf_counter() - t0)

        proc, base = serve(mdb, tmp)
        try:
            run_monitor(http_source(base), "tlog_serve")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        sbase, _, handle = static_server(tmp / "mstatic", tmp)
        try:
            run_monitor(http_source(sbase), "static")
        finally:
            if isinstance(handle, subprocess.Popen):
                handle.terminate()
                handle.wait(10)
            else:
                handle.shutdown()  # type: ignore[attr-defined]
        run_monitor(directory_source(tmp / "mstatic"), "directory")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(results))
        return 0
    rows = [
        ("POST /add, entries/s", results["post_add_per_s"], ">= 3000"),
        ("tile reads/s, tlog serve", results["tile_reads_per_s_tlog_serve"], "(reported)"),
        (f"tile reads/s, {results['static_server']}", results["tile_reads_per_s_static"],
         ">= 5000 (nginx)"),
        (f"monitor leaves/s ({results['monitor_leaves']} leaves), tlog serve",
         results["monitor_leaves_per_s_tlog_serve"], "(reported)"),
        (f"monitor leaves/s ({results['monitor_leaves']} leaves), {results['static_server']}",
         results["monitor_leaves_per_s_static"], ">= 300000"),
        (f"monitor leaves/s ({results['monitor_leaves']} leaves), local directory",
         results["monitor_leaves_per_s_directory"], "(reported)"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{args.clients} client processes, {os.cpu_count()} CPUs")
    print(f"{'metric':<{width}}  {'value':>10}  target")
    for label, value, target in rows:
        print(f"{label:<{width}}  {value:>10.0f}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
