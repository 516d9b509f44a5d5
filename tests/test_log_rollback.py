"""A log that shrinks is a named consistency failure (issue 16, part 7).

Each test builds the attack at run time: a log of N entries is seen by the client (its
last-seen checkpoint is size N), then the same log key presents a validly signed checkpoint
of a smaller tree, a prefix of the first, and no longer serves the tiles of tree N. Every
client path refuses with ``log.consistency`` (exit 2 on the command line) and keeps both
checkpoints as evidence, in a ``rollback-N-n-*`` folder next to the forks.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from attest.simulate.node_fixture import LOG_ORIGIN, NodeFixture, make_node_fixture
from transparency_log.cli.main import main as tlog_main
from transparency_log.client.checkpoint_store import CHECK_CONSISTENCY, CheckpointStore
from transparency_log.client.log_client import LogClient, directory_source, monitor
from transparency_log.common.asgi_serving import serve_in_thread
from transparency_log.common.errors import ConsistencyError, FetchError
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import Signer, generate_keys
from transparency_log.log.lifecycle import Log
from transparency_log.log.publish import publish_tiles
from transparency_log.log.storage.sqlite import SqliteStorage
from transparency_log.serve.server import Submitters, create_app
from transparency_log.serve.service import LogService
from verifier.cli import main as verifier_main
from verifier.cli_verify import _state
from verifier.log_view_checks import check_consistency
from verifier.policy import load_policy

ORIGIN = "example.com/rollback-test"
ENTRIES = [b"entry %d" % i for i in range(300)]  # more than one full tile
SMALL = 5


def _log(path: Path, entries: list[bytes], skey: str) -> Log:
    storage = SqliteStorage(path)
    storage.set_meta("origin", ORIGIN)
    the_log = Log(storage, ORIGIN)
    the_log.add(entries)
    the_log.publish(Signer(skey), datetime.now(UTC))
    return the_log


def _directory(tmp: Path, name: str, entries: list[bytes], skey: str) -> Path:
    """A published tile tree of a log holding ``entries``."""
    the_log = _log(tmp / f"{name}.db", entries, skey)
    try:
        publish_tiles(the_log, tmp / name)
    finally:
        the_log.storage.close()
    return tmp / name


@contextmanager
def _served(tmp: Path, name: str, entries: list[bytes], skey: str,
            vkey: str) -> Iterator[str]:
    """The log holding ``entries`` behind the log's HTTP server; yields its URL."""
    the_log = _log(tmp / f"{name}.db", entries, skey)
    service = LogService(the_log, Signer(skey), vkey, now=lambda: datetime.now(UTC))
    try:
        with serve_in_thread(create_app(service, submitters=Submitters())) as (host, port):
            yield f"http://{host}:{port}"
    finally:
        service.close()
        the_log.storage.close()


def _assert_rollback(store_dir: Path, origin: str, big: int, small: int) -> None:
    (folder,) = CheckpointStore(store_dir).evidence(origin)
    assert folder.name.startswith(f"rollback-{big}-{small}-")
    assert (folder / "last-seen.checkpoint").read_bytes().splitlines()[1] == str(big).encode()
    assert (folder / "presented.checkpoint").read_bytes().splitlines()[1] == str(small).encode()
    assert (folder / "missing-tile").read_text().startswith("tile/")


def _tlog_monitor(source: str, vkey: str, state: Path) -> tuple[int, str]:
    r = CliRunner().invoke(tlog_main, ["monitor", source, "--vkey", vkey, "--state", str(state)])
    return r.exit_code, r.output


@pytest.fixture
def keys() -> tuple[str, str]:
    return generate_keys(ORIGIN)


def test_monitor_over_a_directory(tmp_path: Path, keys: tuple[str, str]) -> None:
    skey, vkey = keys
    big = _directory(tmp_path, "big", ENTRIES, skey)
    small = _directory(tmp_path, "small", ENTRIES[:SMALL], skey)
    state = tmp_path / "state"
    assert _tlog_monitor(str(big), vkey, state)[0] == 0
    code, out = _tlog_monitor(str(small), vkey, state)
    assert code == 2 and f"{CHECK_CONSISTENCY}: log rollback" in out, out
    assert "Traceback" not in out
    _assert_rollback(state, ORIGIN, len(ENTRIES), SMALL)
    assert CheckpointStore(state).last_seen(ORIGIN).checkpoint.size == len(ENTRIES)


def test_monitor_over_http(tmp_path: Path, keys: tuple[str, str]) -> None:
    skey, vkey = keys
    state = tmp_path / "state"
    with _served(tmp_path, "big", ENTRIES, skey, vkey) as url:
        assert _tlog_monitor(url, vkey, state)[0] == 0
    with _served(tmp_path, "small", ENTRIES[:SMALL], skey, vkey) as url:
        code, out = _tlog_monitor(url, vkey, state)
    assert code == 2 and f"{CHECK_CONSISTENCY}: log rollback" in out, out
    _assert_rollback(state, ORIGIN, len(ENTRIES), SMALL)


def test_a_stale_but_consistent_view_is_still_accepted(tmp_path: Path,
                                                       keys: tuple[str, str]) -> None:
    """Only a log that cannot prove the smaller tree is a prefix is refused: a smaller
    checkpoint next to the tiles of the larger tree (a stale cache) is consistent."""
    skey, vkey = keys
    big = _directory(tmp_path, "big", ENTRIES, skey)
    stale = tmp_path / "stale"
    shutil.copytree(big, stale)
    shutil.copy(_directory(tmp_path, "small", ENTRIES[:SMALL], skey) / "checkpoint",
                stale / "checkpoint")
    store = CheckpointStore(tmp_path / "state")
    client = LogClient(directory_source(big), Verifier(vkey), store=store)
    monitor(client)
    result = monitor(LogClient(directory_source(stale), Verifier(vkey), store=store))
    assert result.current.size == len(ENTRIES) and store.evidence(ORIGIN) == []


def test_a_missing_tile_of_a_larger_tree_is_unreachable_not_rollback(
        tmp_path: Path, keys: tuple[str, str]) -> None:
    skey, vkey = keys
    small = _directory(tmp_path, "small", ENTRIES[:SMALL], skey)
    big = _directory(tmp_path, "big", ENTRIES, skey)
    for tile in (big / "tile" / "0").glob("000*"):
        shutil.rmtree(tile) if tile.is_dir() else tile.unlink()
    store = CheckpointStore(tmp_path / "state")
    monitor(LogClient(directory_source(small), Verifier(vkey), store=store))
    with pytest.raises(FetchError) as err:
        LogClient(directory_source(big), Verifier(vkey), store=store).update()
    assert err.value.check == "log.fetch" and store.evidence(ORIGIN) == []


# ------------------------------------------------------------------------ verifier paths


@pytest.fixture
def shrunk(tmp_path: Path) -> tuple[NodeFixture, Path, Path]:
    """The node fixture's log (cosigned, size 2) published twice: ``small`` as it is and,
    after a revocation was logged, the fixture's own ``tiles_dir`` (size 3)."""
    f = make_node_fixture(tmp_path / "world")
    small = tmp_path / "small-tiles"
    shutil.copytree(f.tiles_dir, small)
    f.revoke()
    return f, f.tiles_dir, small


def test_verifier_audit(tmp_path: Path, shrunk: tuple[NodeFixture, Path, Path]) -> None:
    f, big, small = shrunk
    state = tmp_path / "audit-state"
    args = ["audit", "--vkey", f.log_vkey, "--state", str(state)]
    r = CliRunner().invoke(verifier_main, [*args[:1], str(big), *args[1:]])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(verifier_main, [*args[:1], str(small), *args[1:]])
    assert r.exit_code == 2 and f"{CHECK_CONSISTENCY}: log rollback" in r.output, r.output
    _assert_rollback(state, LOG_ORIGIN, 3, 2)


def test_verifier_state_and_revocation_mirror(tmp_path: Path,
                                              shrunk: tuple[NodeFixture, Path, Path]) -> None:
    """`verifier node --state --log-url`: the log's checkpoint goes through last-seen before
    the revocation mirror syncs to it, so a shrunk log stops there."""
    f, big, small = shrunk
    policy = load_policy(f.write()["policy"])
    state = tmp_path / "client"
    out = _state(policy, str(state), str(big), offline=False)
    assert out["revocations"].size == 3
    with pytest.raises(ConsistencyError) as err:
        _state(policy, str(state), str(small), offline=False)
    assert err.value.check == CHECK_CONSISTENCY and err.value.exit_code == 2
    _assert_rollback(state / "checkpoints", LOG_ORIGIN, 3, 2)


def test_verifier_log_checks(tmp_path: Path, shrunk: tuple[NodeFixture, Path, Path]) -> None:
    """Step 6 of the log checks: a node staples a checkpoint of the shrunk log."""
    f, big, small = shrunk
    store = CheckpointStore(tmp_path / "client")
    seen = LogClient(directory_source(big), Verifier(f.log_vkey)).checkpoint()
    check_consistency(seen.note, seen.checkpoint, store, None)
    shrunk_log = LogClient(directory_source(small), Verifier(f.log_vkey))
    stapled = shrunk_log.checkpoint()
    with pytest.raises(ConsistencyError) as err:
        check_consistency(stapled.note, stapled.checkpoint, store, shrunk_log.fetch_consistency)
    assert err.value.check == CHECK_CONSISTENCY
    _assert_rollback(tmp_path / "client", LOG_ORIGIN, 3, 2)
