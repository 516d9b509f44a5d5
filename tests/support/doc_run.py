"""Running one document's executable blocks (tests/test_docs_commands.py; what a block is and
how it is marked: :mod:`tests.support.doc_blocks`).

The blocks run in order, in one temporary directory, with the project's virtualenv first on
PATH and a private HOME/XDG tree; shell variables set by one block are seen by the next (the
state is saved after each block and sourced before the next). Each `127.0.0.1:PORT` of the
document becomes a free port; a block that starts a server in the background is waited for on
the address it listens on; every process group started is killed at the end.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.doc_blocks import PYTHON_LANGS, ROOT, Block, logical_lines

__all__ = ["DocRun", "free_port", "group_alive", "wait_for_port"]

LOOPBACK_PORT = re.compile(r"(?<![\d.])(127\.0\.0\.1|localhost):(\d{2,5})\b")
LISTEN_ARG = re.compile(r"--listen[ =]['\"]?(?:127\.0\.0\.1|localhost):(\d+)")
LISTEN_KEY = re.compile(r"^\s*listen\s*=\s*['\"](?:127\.0\.0\.1|localhost):(\d+)['\"]", re.M)
CONFIG_ARG = re.compile(r"--config[ =]['\"]?([^\s'\"]+)")

_SAVE_STATE = r"""
__doc_state_save() {
  local __doc_rc=$? __doc_v
  {
    for __doc_v in $(compgen -v); do
      case "$__doc_v" in
        __doc_*|BASH*|FUNCNAME|PIPESTATUS|_|OPTIND|OPTARG|LINENO|RANDOM|SECONDS) continue;;
      esac
      grep -qxF "$__doc_v" <<<"$__doc_base" && continue
      declare -p "$__doc_v" 2>/dev/null \
        | sed 's/^declare -\([a-zA-Z]*\)/declare -g\1/;s/^declare -g- /declare -g /'
    done
    printf 'cd %q\n' "$PWD"
  } > "$__DOC_STATE.new" && mv "$__DOC_STATE.new" "$__DOC_STATE"
  exit "$__doc_rc"
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


@dataclass
class DocRun:
    """One document's executable blocks run in order in `work` (see the module docstring)."""

    doc: Path
    work: Path
    ports: dict[str, int] = field(default_factory=dict)
    groups: list[int] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)

    def localise(self, text: str) -> str:
        """Each `127.0.0.1:PORT` of the document becomes a free port (the same one each time)."""
        def sub(m: re.Match[str]) -> str:
            if m.group(2) not in self.ports:
                self.ports[m.group(2)] = free_port()
            return f"{m.group(1)}:{self.ports[m.group(2)]}"
        return LOOPBACK_PORT.sub(sub, text)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ATTESTLOG_", "PYTEST", "XDG_"))}
        home = self.work / ".home"
        env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                   HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
                   XDG_STATE_HOME=str(home / ".local/state"),
                   XDG_CACHE_HOME=str(home / ".cache"), NO_COLOR="1",
                   PYTHONDONTWRITEBYTECODE="1", __DOC_STATE=str(self.work / ".doc-state.sh"))
        return env

    def prepare(self) -> None:
        shutil.copytree(ROOT / "examples", self.work / "examples")
        (self.work / "tests").mkdir()
        (self.work / "tests" / "vectors").symlink_to(ROOT / "tests" / "vectors")
        (self.work / ".home").mkdir()

    def run_block(self, n: int, block: Block, timeout: float = 120.0) -> str | None:
        """Run one block; the failure as text, or None."""
        text = self.localise(block.text)
        out_path = self.work / f".block{n}.out"
        if block.lang in PYTHON_LANGS:
            script = self.work / f".block{n}.py"
            script.write_text(text)
            argv = [sys.executable, str(script)]
        else:
            script = self.work / f".block{n}.sh"
            script.write_text(
                '__doc_base="$(compgen -v)"\n' + _SAVE_STATE
                + '[ -f "$__DOC_STATE" ] && source "$__DOC_STATE"\n'
                + "trap __doc_state_save EXIT\nset -euo pipefail\n" + text)
            argv = ["bash", str(script)]
        started = time.monotonic()
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(argv, cwd=self.work, env=self.env(), stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
            self.groups.append(proc.pid)
            try:
                rc = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                rc = None
        output = out_path.read_text(errors="replace")
        took = time.monotonic() - started
        self.transcript.append(f"--- {block.where} ({took:.1f}s, exit {rc})\n{output}")
        if rc is None:
            return f"{block.where}: did not finish within {timeout:.0f}s\n{output[-3000:]}"
        want = 0 if block.expect_exit is None else block.expect_exit
        if rc != want:
            return (f"{block.where}: exit status {rc}, want {want}\n--- block:\n{text}"
                    f"--- output:\n{output[-4000:]}")
        for port in self.listen_ports(text):
            if not wait_for_port(port, 30.0):
                return (f"{block.where}: nothing listens on 127.0.0.1:{port} 30 s after the "
                        f"block started it\n--- output:\n{output[-3000:]}")
        return None

    def listen_ports(self, text: str) -> list[int]:
        """The ports a block starts servers on: `--listen` in a line ending in `&`, or the
        `listen` key of that line's `--config` file."""
        ports: list[int] = []
        for line in logical_lines(text):
            if not line.rstrip().endswith("&") or line.rstrip().endswith("&&"):
                continue
            ports += [int(p) for p in LISTEN_ARG.findall(line)]
            for config in CONFIG_ARG.findall(line):
                path = self.work / config
                if path.is_file():
                    ports += [int(p) for p in LISTEN_KEY.findall(path.read_text())]
        return ports

    def stop(self) -> list[str]:
        """SIGTERM every process group the blocks started, then SIGKILL what is left;
        returns the groups that needed SIGKILL."""
        alive = []
        for pgid in self.groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGTERM)
                alive.append(pgid)
        deadline = time.monotonic() + 10
        stubborn = []
        for pgid in alive:
            while time.monotonic() < deadline and group_alive(pgid):
                time.sleep(0.05)
            if group_alive(pgid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
                stubborn.append(str(pgid))
        return stubborn


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie leader still counts; reap what we can
    with contextlib.suppress(ChildProcessError):
        os.waitpid(-pgid, os.WNOHANG)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
