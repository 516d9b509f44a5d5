"""Hostile input and a full disk against the real log (SQLite) and its CLI (issue 16 part 8):
a clean 4xx or one line with a documented exit code, never a 5xx caused by the request, a
traceback, or a log line per refused request."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import requests
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from attest.cli import main as attest_main
from tests.support.tlog_net import log_network
from transparency_log.cli.main import main as tlog_main
from transparency_log.core.note import generate_keys

BEYOND_UINT64_TREES = [
    "tile/0/x009/x223/x372/x036/x854/x775/808",       # 2**63
    "tile/entries/x018/x446/x744/x073/x709/x551/616",  # 2**64
    "tile/3/x072/x057/x594/x037/x927/936",            # MAX_TILE_INDEX + 1
]


def test_tile_index_beyond_any_uint64_tree_is_404(tmp_path: Path) -> None:
    """A tile index >= 2**63 reached SQLite (OverflowError): 503 and a traceback."""
    with log_network(tmp_path, n_witnesses=0) as net:
        for path in BEYOND_UINT64_TREES:
            assert net.service.read(path) is None, path
            r = requests.get(f"{net.base}/{path}", timeout=10)
            assert r.status_code == 404, (path, r.text)


def _wait_published(base: str) -> None:
    for _ in range(500):
        if requests.get(f"{base}/checkpoint", timeout=10).status_code == 200:
            return
        time.sleep(0.01)
    raise AssertionError("no checkpoint published")


def test_full_disk_add_is_503_and_logged_once_in_one_line(tmp_path: Path, caplog) -> None:
    """SQLite answers SQLITE_FULL (``PRAGMA max_page_count`` at the database's size: the same
    error a full disk gives, deterministically). Every add is a one-line 503, reads go on,
    and the log gets one line, not a traceback per request."""
    caplog.set_level(logging.ERROR, logger="transparency_log.serve.server")
    with log_network(tmp_path, n_witnesses=0) as net:
        _wait_published(net.base)
        write = net.service.log.storage._write  # the storage's writer connection
        pages = write.execute("PRAGMA page_count").fetchone()[0]
        write.execute(f"PRAGMA max_page_count = {pages}")
        for i in range(40):
            r = requests.post(f"{net.base}/add", data=bytes([i]) * 30000, headers=net.auth(),
                              timeout=10)
            assert r.status_code == 503 and r.text.count("\n") == 1, r.text
            assert r.headers["retry-after"] == "1"
        assert requests.get(f"{net.base}/checkpoint", timeout=10).status_code == 200
    records = [r for r in caplog.records if r.name == "transparency_log.serve.server"]
    assert len(records) == 1, [r.getMessage() for r in records]
    assert records[0].exc_info is None
    message = records[0].getMessage()
    assert "\n" not in message and "database or disk is full" in message, message


def _one_line_error(result, code: int, text: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], lines


def test_checkpoint_on_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# not a log\n" * 100)
    result = CliRunner().invoke(tlog_main, ["checkpoint", "--db", str(tmp_path / "README.md")])
    _one_line_error(result, 66, "storage.sqlite: not a SQLite database")
    assert (tmp_path / "README.md").read_text() == "# not a log\n" * 100


NO_SPACE = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # every file write fails: a full disk
from transparency_log.cli.main import main
sys.argv = ["tlog", *sys.argv[1:]]
main()
"""


def _tlog_without_space(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-B", "-c", NO_SPACE, *args], cwd=cwd, text=True,
                          capture_output=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def test_log_opens_and_reads_on_a_full_disk(tmp_path: Path, monkeypatch) -> None:
    """Opening a SQLite log wrote to it (the schema version), so on a full disk even
    `tlog prove` failed with a traceback. Reads now go on; writes fail in one line, exit 74.
    The disk is made full for the child process only: RLIMIT_FSIZE 0 fails every write
    (EFBIG) deterministically, no mount or root needed."""
    monkeypatch.chdir(tmp_path)
    skey, _ = generate_keys("example.com/full-disk", seed=b"\x05" * 32)
    Path("log.key").write_text(skey + "\n")
    Path("e0").write_bytes(b"release 0")
    Path("e1").write_bytes(b"release 1")
    run = CliRunner()
    assert run.invoke(tlog_main, ["init", "--db", "log.db", "--origin",
                                  "example.com/full-disk", "--key", "log.key"]).exit_code == 0
    assert run.invoke(tlog_main, ["add", "--db", "log.db", "e0"]).exit_code == 0
    assert run.invoke(tlog_main, ["checkpoint", "--db", "log.db"]).exit_code == 0
    holder = sqlite3.connect("log.db")  # a running server: its WAL and shared memory exist
    try:
        holder.execute("SELECT COUNT(*) FROM entries").fetchone()
        proof = _tlog_without_space(tmp_path, "prove", "--db", "log.db", "0")
        assert proof.returncode == 0, proof.stderr
        assert proof.stdout.startswith("c2sp.org/tlog-proof@v1\n")
        added = _tlog_without_space(tmp_path, "add", "--db", "log.db", "e1")
    finally:
        holder.close()
    assert added.returncode == 74, added.stderr  # ExitStatus.IO_ERROR
    assert "Traceback" not in added.stderr
    lines = added.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: OperationalError: "), lines


def test_release_key_with_unknown_algorithm_oid_is_trust_config_error(tmp_path: Path) -> None:
    """An SPKI whose algorithm OID cryptography does not know raised UnsupportedAlgorithm
    out of the key loader: a traceback, exit 1."""
    spki = Ed25519PrivateKey.generate().public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert spki[4:9] == bytes.fromhex("06032b6570")  # OID 1.3.101.112 (Ed25519)
    unknown = spki[:8] + b"\x63" + spki[9:]           # OID 1.3.101.99: no such algorithm
    import base64

    key = tmp_path / "bad.pub"
    key.write_text(f"attestlog-release-key:v1 {base64.b64encode(unknown).decode()}\n")
    (tmp_path / "entry.json").write_text("{}")
    result = CliRunner().invoke(attest_main, ["release", "verify", str(tmp_path / "entry.json"),
                                              "--key", str(key)])
    _one_line_error(result, 4, "release.key.algorithm")
