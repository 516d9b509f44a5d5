"""Run the npm interop scripts of tests/interop/ (pinned in its package-lock.json).

Each script speaks one JSON object per line on stdin and stdout (tests/interop/jsonlines.mjs);
byte strings travel as hex. :class:`NodeScript` keeps one process for a test, so a script
can keep state between two lines (a client that finishes what it began).

Skips when node or tests/interop/node_modules is missing, unless
``ATTESTLOG_REQUIRE_NODE_INTEROP=1`` (set by .ci/run after ``npm ci --prefix
tests/interop``): then it fails. Nothing is installed or downloaded here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.support.system_tools import missing_system_tool

INTEROP_DIR = Path(__file__).resolve().parents[1] / "interop"
REQUIRE_ENV = "ATTESTLOG_REQUIRE_NODE_INTEROP"
TIMEOUT_S = 60


def node_binary() -> str:
    """The node binary, or skip (fail under ``ATTESTLOG_REQUIRE_NODE_INTEROP=1``)."""
    node = shutil.which("node")
    missing = None
    if node is None:
        missing = "node is not installed"
    elif not (INTEROP_DIR / "node_modules").is_dir():
        missing = "tests/interop/node_modules is missing (run `npm ci --prefix tests/interop`)"
    if missing is not None:
        missing_system_tool(missing, REQUIRE_ENV, "install node and npm, then `make test` "
                            "runs `npm ci --prefix tests/interop`")
    assert node is not None
    return node


class NodeScript:
    """One running ``node tests/interop/<name>.mjs``; :meth:`call` sends a line, reads one."""

    def __init__(self, node: str, name: str) -> None:
        self._proc = subprocess.Popen(
            [node, str(INTEROP_DIR / f"{name}.mjs")], cwd=INTEROP_DIR, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send ``{"op": op, **fields}`` (bytes as hex); the reply with hex left as str.
        A reply ``{"error": ...}`` is an AssertionError carrying the node stack."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        message = {"op": op, **{k: v.hex() if isinstance(v, bytes) else v
                                for k, v in fields.items()}}
        self._proc.stdin.write(json.dumps(message) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            self.close()
            raise AssertionError(f"node exited: {self._stderr()}")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise AssertionError(f"node {op}: {reply['error']}")
        return reply

    def _stderr(self) -> str:
        assert self._proc.stderr is not None
        return self._proc.stderr.read()

    def close(self) -> None:
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            self._proc.stdin.close()
        try:
            self._proc.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()
