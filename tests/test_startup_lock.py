"""A process that fails to start writes nothing (issue 16, part 6).

Two real processes each time: a running `tlog serve` (witnessed), `tlog witness serve` or
`attest agent --simulate`, and a second one started on the same state, on the same port and
on another port. The second stops with one line and exit 7 (StartupError), and what the
first one serves (its cosigned checkpoint; its key, certificate and trust files) is
byte-identical afterwards.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from attest.simulate.node_fixture import make_node_fixture, release_key
from tests.support.pg_fixtures import pg_schema, postgres_dsn  # noqa: F401
from tests.support.tlog_net import CLI, ORIGIN, free_port, tlog
from transparency_log.common.errors import StartupError
from transparency_log.core.checkpoint import open_checkpoint
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import generate_keys
from transparency_log.core.witness_policy import check_quorum, parse_witness_policy

EXIT_STARTUP = StartupError.exit_code
AGENT_CLI = "from attest.cli import main; main()"


def spawn(code: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def run(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a command to its end; one that is still running after ``timeout`` seconds (it
    started when it should have refused) is stopped and reported as such."""
    try:
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        return subprocess.CompletedProcess(err.cmd, -1, "", f"still running: {err.stderr!r}")


def wait_for(proc: subprocess.Popen[bytes], ready, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
        try:
            if ready():
                return
        except (requests.RequestException, OSError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{what} did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    if proc.stderr is not None:
        proc.stderr.close()


def refused(result: subprocess.CompletedProcess[str], check: str) -> None:
    """Exit 7 and one line naming ``check``, no traceback."""
    assert result.returncode == EXIT_STARTUP, result.stderr
    assert check in result.stderr and "Traceback" not in result.stderr, result.stderr


@pytest.fixture(params=["sqlite", "postgres"])
def witnessed_log(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A log (SQLite, or a PostgreSQL schema) served by `tlog serve` with one
    `tlog witness serve`, quorum 1."""
    skey, vkey = generate_keys(ORIGIN)
    key = tmp_path / "log.key"
    key.write_text(skey + "\n")
    if request.param == "sqlite":
        db = [str(tmp_path / "log.db")]
        init = tlog("init", "--db", db[0], "--origin", ORIGIN, "--key", str(key))
    else:
        db = [request.getfixturevalue("postgres_dsn"),
              "--pg-schema", request.getfixturevalue("pg_schema")()]
        init = tlog("init-postgres", "--db", *db, "--origin", ORIGIN, "--key", str(key))
    assert init.returncode == 0, init.stderr
    r = tlog("witness", "keygen", "witness.example/w1", "--out", str(tmp_path / "w.key"))
    assert r.returncode == 0, r.stderr
    wport, lport = free_port(), free_port()
    policy_text = f"log {vkey}\nwitness w1 {r.stdout.strip()} http://127.0.0.1:{wport}\nquorum w1\n"
    (tmp_path / "policy").write_text(policy_text)
    wdb = str(tmp_path / "w.db")
    witness_argv = ["witness", "serve", "--db", wdb, "--key", str(tmp_path / "w.key"),
                    "--log", vkey]
    procs = [spawn(CLI, *witness_argv, "--listen", f"127.0.0.1:{wport}")]
    try:
        wait_for(procs[0], lambda: requests.get(f"http://127.0.0.1:{wport}/",
                                                timeout=1) is not None, "tlog witness serve")
        procs.append(spawn(CLI, "serve", "--db", *db, "--listen", f"127.0.0.1:{lport}",
                           "--witness-policy", str(tmp_path / "policy"),
                           "--interval", "0.05", "--refresh", "3600"))
        base = f"http://127.0.0.1:{lport}"
        wait_for(procs[1], lambda: requests.get(base + "/checkpoint", timeout=1)
                 .status_code == 200, "tlog serve")
        yield {"db": db, "port": lport, "base": base, "wdb": wdb, "wport": wport,
               "witness_argv": witness_argv, "vkey": vkey,
               "policy": parse_witness_policy(policy_text.encode())}
    finally:
        for p in procs:
            stop(p)


def served_checkpoint(log: dict) -> bytes:  # type: ignore[type-arg]
    """The served checkpoint, checked: log signature and the witness quorum."""
    note = requests.get(log["base"] + "/checkpoint", timeout=10).content
    open_checkpoint(note, Verifier(log["vkey"]), ORIGIN)
    check_quorum(note, log["policy"], [Verifier(log["vkey"])])
    return note


def test_second_tlog_serve_writes_nothing(witnessed_log) -> None:  # type: ignore[no-untyped-def]
    """The attack: a second `tlog serve` on the same log, without a witness policy, so that
    anything it published would be unwitnessed. On the taken port it stops at the bind
    (serve.listen); on a free port at the writer lock (log.writer_lock). Either way the
    running server's cosigned checkpoint is unchanged."""
    log = witnessed_log
    before = served_checkpoint(log)
    for port, check in [(log["port"], "serve.listen"), (free_port(), "log.writer_lock")]:
        result = run(CLI, "serve", "--db", *log["db"], "--listen", f"127.0.0.1:{port}",
                     "--interval", "0.05", timeout=15)
        time.sleep(0.3)  # several publisher intervals of the running server
        assert served_checkpoint(log) == before
        refused(result, check)
    # `tlog checkpoint` would sign an unwitnessed checkpoint too: the lock refuses it.
    if len(log["db"]) == 1:  # `tlog checkpoint` is for SQLite logs
        refused(run(CLI, "checkpoint", "--db", *log["db"]), "log.writer_lock")
        assert served_checkpoint(log) == before


@pytest.mark.parametrize("witnessed_log", ["sqlite"], indirect=True)
def test_second_witness_writes_nothing(witnessed_log) -> None:  # type: ignore[no-untyped-def]
    log = witnessed_log
    state = Path(log["wdb"]).read_bytes()
    for port, check in [(log["wport"], "witness.listen"), (free_port(), "witness.state_lock")]:
        refused(run(CLI, *log["witness_argv"], "--listen", f"127.0.0.1:{port}", timeout=30),
                check)
    assert Path(log["wdb"]).read_bytes() == state
    assert served_checkpoint(log)


def test_standby_serve_sequences_and_does_not_publish(witnessed_log, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`--standby` starts without the lock: it serves reads and never publishes while the
    first server holds the lock."""
    log = witnessed_log
    before = served_checkpoint(log)
    port = free_port()
    proc = spawn(CLI, "serve", "--db", *log["db"], "--listen", f"127.0.0.1:{port}",
                 "--standby", "--interval", "0.05")
    try:
        wait_for(proc, lambda: requests.get(f"http://127.0.0.1:{port}/checkpoint",
                                            timeout=1).status_code == 200, "standby")
        time.sleep(0.3)
        assert requests.get(f"http://127.0.0.1:{port}/checkpoint", timeout=10).content == before
        assert served_checkpoint(log) == before
    finally:
        stop(proc)


AGENT_FILES = ("node-key.pem", "node-cert.pem", "simulated-trust.json")


def _agent_config(path: Path, tiles: Path, vkey: str, port: int, state: Path) -> Path:
    pub = release_key().public.to_text().strip()
    path.write_text(f'listen = "127.0.0.1:{port}"\nstate_dir = "{state}"\n'
                    f'[log]\nurl = "{tiles}"\nvkey = "{vkey}"\n'
                    f'[release]\nkeys = ["{pub}"]\n'
                    '[simulate]\ncpu = "sev-snp"\ngpus = 1\ncc_mode = "on"\n'
                    'seed = "attestlog-sim-node"\n')
    return path


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_second_agent_writes_nothing(tmp_path: Path) -> None:
    f = make_node_fixture(tmp_path / "world", gpus=1)
    state = tmp_path / "state"
    port = free_port()
    config = _agent_config(tmp_path / "a.toml", f.tiles_dir, f.log_vkey, port, state)
    first = spawn(AGENT_CLI, "agent", "--config", str(config), "--simulate")
    try:
        wait_for(first, lambda: requests.get(
            f"https://127.0.0.1:{port}/.well-known/attestlog/bundle", timeout=5,
            verify=False).status_code == 200, "attest agent", timeout=120)
        files = {name: (state / name).read_bytes() for name in AGENT_FILES}
        other = _agent_config(tmp_path / "b.toml", f.tiles_dir, f.log_vkey, free_port(), state)
        for cfg, check in [(config, "agent.listen"), (other, "agent.state_lock")]:
            result = run(AGENT_CLI, "agent", "--config", str(cfg), "--simulate", timeout=30)
            assert {name: (state / name).read_bytes() for name in AGENT_FILES} == files
            refused(result, check)
        assert first.poll() is None
    finally:
        stop(first)
