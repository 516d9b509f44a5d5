"""Issue 15: the checkpoint store recognises the tree it already holds without its lock
(transparency_log/client/checkpoint_store.py ``CheckpointStore._same_tree``); nothing else
changed. After a warm-up (the store knows the log's file), a fork or an older view is still
refused with evidence, an older consistent view still needs its proof and never moves
last-seen back, a newer tree is still written before ``update`` returns, and a file changed
behind the store's back (another verifier, a corrupt file, a removed one) is read again.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.support.log_fixtures import ORIGIN, FakeLog, Recording, release_entry
from transparency_log.client.checkpoint_store import CheckpointStore, ConsistencyResult
from transparency_log.common.errors import ConsistencyError, FetchError, FormatError
from transparency_log.common.state_files import locked

ENTRIES = [release_entry(i) for i in range(6)]


@pytest.fixture
def log() -> FakeLog:
    return FakeLog(list(ENTRIES))


@pytest.fixture
def store(tmp_path: Path, log: FakeLog) -> CheckpointStore:
    """A store that holds the log at size 3 and has compared against it since (warm)."""
    s = CheckpointStore(tmp_path / "state")
    assert s.update(log.note(3), log.checkpoint(3)).outcome == "first"
    assert s.update(log.note(3), log.checkpoint(3)).outcome == "same"
    return s


def _file(store: CheckpointStore) -> Path:
    (folder,) = [p for p in store.directory.iterdir() if p.is_dir()]
    return folder / "checkpoint"


def test_the_same_tree_is_recognised_without_the_lock_or_a_write(store: CheckpointStore,
                                                                 log: FakeLog) -> None:
    before = _file(store).stat()
    other_note = log.note(3, times={0: 1_700_000_000})  # same tree, other cosignature bytes
    assert other_note != log.note(3)
    got: list[ConsistencyResult] = []
    with locked(_file(store).parent):  # a writer holds the lock: a same-tree check still runs
        th = threading.Thread(target=lambda: got.append(
            store.update(other_note, log.checkpoint(3))))
        th.start()
        th.join(timeout=10)
        assert not th.is_alive(), "update waited for the lock though nothing was to be written"
    assert [r.outcome for r in got] == ["same"]
    assert got[0].last_seen == got[0].previous == log.checkpoint(3)
    assert got[0].previous_note == log.note(3)  # the stored note, kept verbatim
    after = _file(store).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_fork_at_the_same_size_is_still_refused_with_evidence(store: CheckpointStore) -> None:
    forked = FakeLog([*ENTRIES[:2], release_entry(60)])
    with pytest.raises(ConsistencyError) as err:
        store.update(forked.note(3), forked.checkpoint(3))
    assert err.value.check == "log.consistency" and "same size" in err.value.message
    assert len(store.evidence(ORIGIN)) == 1


def test_an_older_view_needs_its_proof_and_a_forked_one_is_refused(store: CheckpointStore,
                                                                   log: FakeLog) -> None:
    fetch = Recording(log.consistency)
    result = store.update(log.note(2), log.checkpoint(2), fetch)
    assert result.outcome == "older" and fetch.calls == [(2, 3)]
    assert store.last_seen(ORIGIN).checkpoint.size == 3  # type: ignore[union-attr]
    forked = FakeLog([ENTRIES[0], release_entry(50)])
    with pytest.raises(ConsistencyError):
        store.update(forked.note(2), forked.checkpoint(2), Recording(log.consistency))
    assert store.last_seen(ORIGIN).note == log.note(3)  # type: ignore[union-attr]


def test_a_newer_tree_is_written_before_update_returns(store: CheckpointStore,
                                                       log: FakeLog) -> None:
    result = store.update(log.note(5), log.checkpoint(5), Recording(log.consistency))
    assert result.outcome == "advanced"
    assert _file(store).read_bytes() == log.note(5)
    forked = FakeLog([*ENTRIES[:4], release_entry(70), release_entry(71)])  # forks size 5
    with pytest.raises(ConsistencyError):
        store.update(forked.note(6), forked.checkpoint(6), Recording(forked.consistency))
    assert _file(store).read_bytes() == log.note(5)


def test_a_tree_stored_by_another_verifier_is_read_again(store: CheckpointStore,
                                                         log: FakeLog) -> None:
    other = CheckpointStore(store.directory)  # another process on the same state
    other.update(log.note(5), log.checkpoint(5), log.consistency)
    with pytest.raises(FetchError):  # 3 is now an older view: it needs a proof 3 -> 5
        store.update(log.note(3), log.checkpoint(3))
    assert store.update(log.note(3), log.checkpoint(3), log.consistency).outcome == "older"


def test_a_corrupt_or_removed_file_is_not_taken_for_the_same_tree(store: CheckpointStore,
                                                                  log: FakeLog) -> None:
    _file(store).write_bytes(b"garbage")
    with pytest.raises(FormatError) as err:
        store.update(log.note(3), log.checkpoint(3))
    assert err.value.check == "log.consistency"
    _file(store).unlink()
    assert store.update(log.note(3), log.checkpoint(3)).outcome == "first"
    assert _file(store).read_bytes() == log.note(3)
