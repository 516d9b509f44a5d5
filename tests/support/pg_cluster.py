"""A throw-away PostgreSQL cluster for the tests (stdlib only; also run by .ci/run).

The PostgreSQL tests use ``$ATTESTLOG_POSTGRES_DSN`` when it is set. Otherwise, when the
server binaries are installed (Debian's ``postgresql`` package puts them in
``/usr/lib/postgresql/<version>/bin``), a temporary cluster is started on 127.0.0.1 and a
free port, run as the ``postgres`` user when we are root (initdb refuses root). When
PostgreSQL is not installed the tests skip, unless ``ATTESTLOG_REQUIRE_POSTGRES=1`` (CI),
in which case they fail.

Command line (for CI)::

    python3 tests/support/pg_cluster.py start DIR   # prints the DSN; the server keeps running
    python3 tests/support/pg_cluster.py stop DIR
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

DSN_ENV = "ATTESTLOG_POSTGRES_DSN"
REQUIRE_ENV = "ATTESTLOG_REQUIRE_POSTGRES"


def server_bin() -> Path | None:
    """The directory holding initdb and pg_ctl, or None if PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit()
                        else 0)
    return Path(candidates[-1]).parent if candidates else None


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(directory: str | os.PathLike[str]) -> str:
    """Create and start a cluster in ``directory`` (which must not exist); return its DSN."""
    bindir = server_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed")
    root = Path(directory)
    root.mkdir(parents=True)
    data = root / "data"
    if os.geteuid() == 0:
        import pwd

        pw = pwd.getpwnam("postgres")
        os.chmod(root, 0o755)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                                 "--auth=trust", "-E", "UTF8", "--no-instructions"]),
                   check=True, capture_output=True)
    port = _free_port()
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=on"
    subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-o", opts,
                                 "-l", str(root / "server.log"), "-w", "start"]),
                   check=True, capture_output=True)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def stop(directory: str | os.PathLike[str]) -> None:
    bindir = server_bin()
    if bindir is None:
        return
    subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(Path(directory) / "data"),
                                 "-m", "immediate", "stop"]), check=False, capture_output=True)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.exit("usage: pg_cluster.py start|stop DIR")
    if sys.argv[1] == "start":
        print(start(sys.argv[2]))
    else:
        stop(sys.argv[2])
