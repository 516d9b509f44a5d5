"""Service log lines (issue 12): a timestamp, a level and the logger on every line, an optional
JSON format (one object per line), and a repeated warning rate-limited (a witness that is down
was one warning a second from `tlog serve`'s publisher)."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from tests.support.tlog_net import CLI, free_port, tlog
from transparency_log.cli.main import main
from transparency_log.common.service_logging import JsonFormatter, TextFormatter
from transparency_log.common.throttled_log import ThrottledLog
from transparency_log.core.note import generate_keys

ORIGIN = "example.com/logging-log"
TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARNING|ERROR) [\w.]+: .+")


def _record(level: int = logging.WARNING, msg: str = "witness w0: down") -> logging.LogRecord:
    return logging.LogRecord("transparency_log.serve.service", level, __file__, 1, msg, None, None)


def test_text_format_has_time_level_logger() -> None:
    line = TextFormatter().format(_record())
    assert TEXT_LINE.fullmatch(line), line
    assert line.endswith(" WARNING transparency_log.serve.service: witness w0: down")


def test_json_format_is_one_object_per_line() -> None:
    line = JsonFormatter().format(_record(msg='a "quoted"\nsecond line'))
    assert "\n" not in line
    doc = json.loads(line)
    assert set(doc) == {"time", "level", "logger", "message"}
    assert (doc["level"], doc["logger"]) == ("WARNING", "transparency_log.serve.service")
    assert doc["message"] == 'a "quoted"\nsecond line'
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc["time"])


def test_throttled_warning_counts_what_it_left_out(caplog) -> None:
    now = [0.0]
    throttled = ThrottledLog(logging.getLogger("t.throttle"), interval=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="t.throttle"):
        for _ in range(30):  # 30 s of a publisher that retries every second
            throttled.warning("witness w0", "witness w0: unreachable")
            now[0] += 1
        now[0] = 61
        throttled.warning("witness w0", "witness w0: unreachable")
        throttled.warning("witness w1", "witness w1: unreachable")  # its own key
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "witness w0: unreachable"),
        ("WARNING", "witness w0: unreachable (29 more like it in the last 61 s not logged)"),
        ("WARNING", "witness w1: unreachable"),
    ]


def _serve_with_a_dead_witness(tmp_path: Path, *extra: str, env: dict | None = None) -> str:
    """Run `tlog serve` for ~3 s, its publisher every 0.1 s, with a witness that is down;
    return what it wrote on stderr."""
    skey, _ = generate_keys(ORIGIN)
    (tmp_path / "log.key").write_text(skey + "\n")
    db = str(tmp_path / "log.db")
    assert tlog("init", "--db", db, "--origin", ORIGIN, "--key",
                str(tmp_path / "log.key")).returncode == 0
    wvkey = CliRunner().invoke(main, ["witness", "keygen", "w.example/w0", "--out",
                                      str(tmp_path / "w.key")]).output.strip()
    dead = free_port()  # nothing listens there
    (tmp_path / "witnesses.policy").write_text(
        f"witness w0 {wvkey} http://127.0.0.1:{dead}\nquorum w0\n")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "serve", "--db", db, "--listen", f"127.0.0.1:{port}",
         "--witness-policy", str(tmp_path / "witnesses.policy"), "--interval", "0.1",
         *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    return err


def test_serve_rate_limits_a_dead_witness_and_logs_json(tmp_path: Path) -> None:
    err = _serve_with_a_dead_witness(tmp_path, "--log-format", "json")
    lines = [line for line in err.splitlines() if line.strip()]
    docs = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(set(d) >= {"time", "level", "logger", "message"} for d in docs)
    started = [d for d in docs if "tlog serve: " + ORIGIN in d["message"]]
    assert started and started[0]["level"] == "INFO"
    witness = [d for d in docs if d["message"].startswith("witness w0:")]
    unpublished = [d for d in docs if "not published" in d["message"]]
    # ~30 publisher rounds in 3 s: one line each, not thirty
    assert len(witness) == 1 and witness[0]["level"] == "WARNING", witness
    assert len(unpublished) == 1, unpublished


def test_serve_text_lines_and_env_var(tmp_path: Path) -> None:
    env = {**os.environ, "ATTESTLOG_LOG_FORMAT": "json"}
    (tmp_path / "a").mkdir()
    err = _serve_with_a_dead_witness(tmp_path / "a", "--log-format", "text", env=env)
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and all(TEXT_LINE.fullmatch(line) for line in lines), lines
    (tmp_path / "b").mkdir()
    err = _serve_with_a_dead_witness(tmp_path / "b", env=env)  # the variable alone: JSON
    assert all(json.loads(line)["level"] for line in err.splitlines() if line.strip())
