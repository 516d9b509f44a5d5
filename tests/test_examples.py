"""Every script in examples/ runs and succeeds."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(script: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, str(ROOT / "examples" / script)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_log_demo_runs() -> None:
    assert "refused" in _run("log_demo.py").stdout


def test_demo_end_to_end() -> None:
    """`make demo`: log + 2 witnesses, publish, two simulated nodes, client verdicts, a private
    request to node A through issuer, router and relay, revoke."""
    out = _run("demo.py").stdout
    assert "REFUSING TO START: agent.release.not_logged" in out
    assert "node A: verdict: ACCEPTED" in out
    assert "node B: verdict: REFUSED  by log.inclusion" in out
    assert "node A: verdict: REFUSED  by release.revoked" in out
    assert re.search(r"^   node node-a \(of 1 verified\): HTTP 200$", out, re.M)
    assert '"prompt": "hello from a private client"' in out
    assert "stopped all 9 background processes" in out
    assert re.search(r"^explorer: http://127\.0\.0\.1:[0-9]+/ ", out, re.M)
