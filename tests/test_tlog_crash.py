"""Crash safety: `tlog serve` is SIGKILLed repeatedly during a stream of concurrent adds.
After every restart each acknowledged entry is at its acknowledged index, and the tree,
tiles and entry bundles verify (the monitor recomputes all of them)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.support.pg_fixtures import pg_schema, postgres_dsn  # noqa: F401
from tests.support.tlog_net import CLI, free_port, tlog
from transparency_log.client.log_client import LogClient, http_source, monitor
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import generate_keys

ORIGIN = "example.com/crash-test"
TOKEN = "crash-token"

class Server:
    def __init__(self, db_args: list[str], submitters: Path) -> None:
        self.db_args = db_args
        self.submitters = submitters
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = ""

    def start(self) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CLI, "serve", *self.db_args, "--listen",
             f"127.0.0.1:{port}", "--submitters", str(self.submitters), "--interval", "0.05"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(self.proc.stderr.read().decode())  # type: ignore[union-attr]
            try:
                if requests.get(self.base + "/checkpoint", timeout=1).status_code in (200, 404):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError("tlog serve did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc.stderr.close()  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc.stderr.close()  # type: ignore[union-attr]


def add_stream(base: Callable[[], str], acked: dict[bytes, int], stop: threading.Event,
               worker: int, lock: threading.Lock) -> None:
    session = requests.Session()
    n = 0
    while not stop.is_set():
        entry = b"w%d-%d-%s" % (worker, n, os.urandom(4).hex().encode())
        n += 1
        try:
            r = session.post(base() + "/add", data=entry, timeout=5,
                             headers={"Authorization": f"Bearer {TOKEN}"})
        except requests.RequestException:
            session = requests.Session()
            time.sleep(0.01)
            continue
        if r.status_code == 200:
            with lock:
                acked[entry] = int(r.text)


def wait_published(base: str, size: int, vkey: str) -> LogClient:
    client = LogClient(http_source(base), Verifier(vkey))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if client.checkpoint().checkpoint.size >= size:
            return client
        time.sleep(0.05)
    raise AssertionError(f"checkpoint never reached size {size}")


def check_log(base: str, vkey: str, acked: dict[bytes, int]) -> None:
    client = wait_published(base, max(acked.values(), default=-1) + 1, vkey)
    vc = client.checkpoint()
    size = vc.checkpoint.size
    stored = dict(client.entries(0, size, size))
    for entry, index in acked.items():
        assert stored[index] == entry, f"acknowledged entry lost or moved: {index}"
    for entry, index in list(acked.items())[:: max(1, len(acked) // 50)]:
        client.prove(entry, index, vc)
    assert monitor(client).current.size == size  # every tile and the root recomputed


@pytest.fixture(params=["sqlite", "postgres"])
def log_db(request, tmp_path):
    """``(tlog serve storage arguments, vkey)`` of an initialised log on each backend."""
    skey, vkey = generate_keys(ORIGIN)
    key_file = tmp_path / "log.key"
    key_file.write_text(skey + "\n")
    if request.param == "sqlite":
        db = str(tmp_path / "log.db")
        r = tlog("init", "--db", db, "--origin", ORIGIN, "--key", str(key_file))
        assert r.returncode == 0, r.stderr
        return ["--db", db], vkey
    dsn = request.getfixturevalue("postgres_dsn")
    schema = request.getfixturevalue("pg_schema")()
    r = tlog("init-postgres", "--db", dsn, "--pg-schema", schema, "--origin", ORIGIN,
             "--key", str(key_file))
    assert r.returncode == 0 and r.stdout.strip() == vkey, r.stderr
    again = tlog("init-postgres", "--db", dsn, "--pg-schema", schema, "--origin", ORIGIN,
                 "--key", str(key_file))
    assert again.returncode == 4 and "existing" in again.stderr
    return ["--db", dsn, "--pg-schema", schema], vkey


def test_sigkill_during_concurrent_adds_loses_nothing(tmp_path, log_db) -> None:
    db_args, vkey = log_db
    submitters = tmp_path / "submitters.toml"
    submitters.write_text(f'[tokens]\nci = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"\n')

    server = Server(db_args, submitters)
    acked: dict[bytes, int] = {}
    lock = threading.Lock()
    try:
        for _round in range(3):
            server.start()
            stop = threading.Event()
            workers = [threading.Thread(target=add_stream,
                                        args=(lambda: server.base, acked, stop, w, lock))
                       for w in range(4)]
            for t in workers:
                t.start()
            before = len(acked)
            deadline = time.monotonic() + 20
            while len(acked) < before + 150 and time.monotonic() < deadline:
                time.sleep(0.01)
            server.kill()  # mid-stream: requests are in flight
            stop.set()
            for t in workers:
                t.join(10)
            assert len(acked) > before, "no entry acknowledged in this round"
            indexes = list(acked.values())
            assert len(set(indexes)) == len(indexes), "an index was assigned twice"
            server.start()
            check_log(server.base, vkey, acked)
            server.stop()
    finally:
        server.stop()


def test_two_serve_writers_share_one_postgres(tmp_path, postgres_dsn, pg_schema) -> None:  # noqa: F811
    """Two `tlog serve` processes on one PostgreSQL schema, adds spread over both: every
    index is assigned once, and the log verifies from either server."""
    skey, vkey = generate_keys(ORIGIN)
    key_file = tmp_path / "log.key"
    key_file.write_text(skey + "\n")
    schema = pg_schema()
    assert tlog("init-postgres", "--db", postgres_dsn, "--pg-schema", schema, "--origin",
                ORIGIN, "--key", str(key_file)).returncode == 0
    submitters = tmp_path / "submitters.toml"
    submitters.write_text(f'[tokens]\nci = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"\n')
    # One publisher (the writer lock) and one --standby writer that only sequences.
    servers = [Server(["--db", postgres_dsn, "--pg-schema", schema, *extra], submitters)
               for extra in ([], ["--standby"])]
    acked: dict[bytes, int] = {}
    lock = threading.Lock()
    try:
        for s in servers:
            s.start()
        stop = threading.Event()
        workers = [threading.Thread(target=add_stream,
                                    args=(lambda w=w: servers[w % 2].base, acked, stop, w, lock))
                   for w in range(4)]
        for t in workers:
            t.start()
        deadline = time.monotonic() + 20
        while len(acked) < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        for t in workers:
            t.join(10)
        indexes = sorted(acked.values())
        assert indexes == list(range(len(indexes))), "indexes not dense and unique"
        for s in servers:
            check_log(s.base, vkey, acked)
    finally:
        for s in servers:
            s.stop()
