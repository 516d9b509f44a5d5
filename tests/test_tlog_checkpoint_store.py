"""The last-seen checkpoint store (transparency_log/client/checkpoint_store.py): forward only, CAS,
evidence, the smaller-checkpoint rule."""

from __future__ import annotations

import base64
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.log_fixtures import ORIGIN, FakeLog, Recording, release_entry
from transparency_log.client.checkpoint_store import CheckpointStore, StoredCheckpoint
from transparency_log.common.errors import ConsistencyError, FetchError, FormatError
from transparency_log.core.checkpoint import Checkpoint, sign_checkpoint
from transparency_log.core.merkle import EMPTY_ROOT

ENTRIES = [release_entry(i) for i in range(6)]


def put(store: CheckpointStore, log: FakeLog, size: int, fetch=None):
    note = log.note(size)
    return store.update(note, log.checkpoint(size), fetch)


@pytest.fixture
def log() -> FakeLog:
    return FakeLog(list(ENTRIES))


@pytest.fixture
def store(tmp_path: Path) -> CheckpointStore:
    return CheckpointStore(tmp_path / "state")


def last_size(store: CheckpointStore) -> int:
    stored = store.last_seen(ORIGIN)
    assert stored is not None
    return stored.checkpoint.size


def test_first_checkpoint_is_stored_verbatim(store: CheckpointStore, log: FakeLog) -> None:
    assert store.last_seen(ORIGIN) is None
    result = put(store, log, 3)
    assert (result.outcome, result.previous) == ("first", None)
    stored = store.last_seen(ORIGIN)
    assert stored == StoredCheckpoint(log.note(3), log.checkpoint(3))
    folder = next(p for p in (store.directory).iterdir())
    assert (folder / "origin").read_text() == ORIGIN + "\n"
    assert (folder / "checkpoint").read_bytes() == log.note(3)
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_same_tree_needs_no_proof(store: CheckpointStore, log: FakeLog) -> None:
    put(store, log, 3)
    result = put(store, log, 3)
    assert result.outcome == "same" and "same tree" in result.describe()


def test_advances_with_a_verified_proof(store: CheckpointStore, log: FakeLog) -> None:
    put(store, log, 2)
    fetch = Recording(log.consistency)
    result = put(store, log, 5, fetch)
    assert result.outcome == "advanced" and fetch.calls == [(2, 5)]
    assert result.previous == log.checkpoint(2)
    assert last_size(store) == 5
    assert "advanced from size 2 to 5" in result.describe()


def test_older_consistent_view_never_moves_backwards(store: CheckpointStore,
                                                     log: FakeLog) -> None:
    put(store, log, 5)
    fetch = Recording(log.consistency)
    result = put(store, log, 3, fetch)
    assert result.outcome == "older" and fetch.calls == [(3, 5)]
    assert last_size(store) == 5 and result.last_seen == log.checkpoint(5)


def test_from_and_to_the_empty_tree(store: CheckpointStore, log: FakeLog) -> None:
    empty = FakeLog([])
    assert put(store, empty, 0).outcome == "first"
    assert put(store, log, 4).outcome == "advanced"  # no proof needed from size 0
    assert put(store, empty, 0).outcome == "older"
    assert last_size(store) == 4


def test_fork_at_a_larger_size_keeps_evidence(store: CheckpointStore, log: FakeLog) -> None:
    put(store, log, 3)
    forked = FakeLog([*ENTRIES[:2], release_entry(40), release_entry(41)])
    with pytest.raises(ConsistencyError) as err:
        put(store, forked, 4, Recording(forked.consistency))
    e = err.value
    assert e.check == "log.consistency" and e.field == "evidence"
    assert e.old == log.note(3) and e.new == forked.note(4)
    assert e.proof == forked.consistency(3, 4)
    assert last_size(store) == 3 and store.last_seen(ORIGIN).note == log.note(3)  # type: ignore[union-attr]
    (folder,) = store.evidence(ORIGIN)
    assert folder.name.startswith("fork-3-4-") and str(folder) == e.got
    assert (folder / "last-seen.checkpoint").read_bytes() == log.note(3)
    assert (folder / "presented.checkpoint").read_bytes() == forked.note(4)
    proof_lines = (folder / "consistency-proof").read_text().splitlines()
    assert proof_lines[:2] == ["old_size 3", "new_size 4"]
    assert [base64.b64decode(x) for x in proof_lines[2:]] == e.proof
    assert "fork" in (folder / "README").read_text()


def test_fork_at_a_smaller_size(store: CheckpointStore, log: FakeLog) -> None:
    put(store, log, 5)
    forked = FakeLog([ENTRIES[0], release_entry(50)])
    with pytest.raises(ConsistencyError):
        put(store, forked, 2, Recording(log.consistency))  # honest proof 2 -> 5 refutes it
    assert last_size(store) == 5
    assert len(store.evidence(ORIGIN)) == 1


def test_fork_at_the_same_size(store: CheckpointStore, log: FakeLog) -> None:
    put(store, log, 3)
    forked = FakeLog([*ENTRIES[:2], release_entry(60)])
    fetch = Recording(forked.consistency)
    with pytest.raises(ConsistencyError) as err:
        put(store, forked, 3, fetch)
    assert fetch.calls == [] and err.value.proof == []
    assert "same size" in err.value.message


def test_empty_tree_with_a_wrong_root(store: CheckpointStore, log: FakeLog) -> None:
    put(store, log, 3)
    bogus = Checkpoint(ORIGIN, 0, bytes(32))
    assert bogus.root != EMPTY_ROOT
    with pytest.raises(ConsistencyError):
        store.update(sign_checkpoint(bogus, log.signer), bogus)


def test_malformed_proof_is_not_evidence(store: CheckpointStore, log: FakeLog) -> None:
    put(store, log, 2)
    with pytest.raises(FormatError) as err:
        put(store, log, 5, lambda old, new: log.consistency(old, new)[:-1])
    assert err.value.check == "log.consistency"
    assert last_size(store) == 2 and store.evidence(ORIGIN) == []


def test_offline_cannot_compare(store: CheckpointStore, log: FakeLog) -> None:
    """Unreachable, not invalid: FetchError (the verifier maps it to a check not run)."""
    put(store, log, 2)
    with pytest.raises(FetchError) as err:
        put(store, log, 5, None)
    assert err.value.check == "log.consistency" and "offline" in err.value.message
    assert last_size(store) == 2
    assert put(store, log, 2, None).outcome == "same"  # no proof needed: runs offline


def test_check_compares_without_writing(store: CheckpointStore, log: FakeLog) -> None:
    assert store.check(log.note(2), log.checkpoint(2)).outcome == "first"
    assert store.last_seen(ORIGIN) is None
    put(store, log, 2)
    result = store.check(log.note(5), log.checkpoint(5), log.consistency)
    assert (result.outcome, result.last_seen, result.previous_note) == (
        "advanced", log.checkpoint(5), log.note(2))
    assert last_size(store) == 2
    fork = FakeLog([b"x%d" % i for i in range(5)])
    with pytest.raises(ConsistencyError):
        store.check(fork.note(5), fork.checkpoint(5), fork.consistency)
    assert len(store.evidence(ORIGIN)) == 1 and last_size(store) == 2


def test_compare_and_swap_only_forward(store: CheckpointStore, log: FakeLog) -> None:
    assert store.compare_and_swap(ORIGIN, None, log.note(3))
    assert not store.compare_and_swap(ORIGIN, None, log.note(4))  # not what is stored
    assert not store.compare_and_swap(ORIGIN, log.note(3), log.note(2))  # backwards
    assert not store.compare_and_swap(ORIGIN, log.note(3), log.note(3))  # not larger
    assert store.compare_and_swap(ORIGIN, log.note(3), log.note(5))
    assert last_size(store) == 5
    with pytest.raises(ValueError):
        store.compare_and_swap("other.example/log", None, log.note(6))


def test_fetch_failure_propagates(store: CheckpointStore, log: FakeLog) -> None:
    put(store, log, 2)

    def unreachable(old: int, new: int) -> list[bytes]:
        raise FetchError("log.fetch", "connection refused")

    with pytest.raises(FetchError):
        put(store, log, 5, unreachable)
    assert last_size(store) == 2


def test_origins_are_kept_apart(store: CheckpointStore, log: FakeLog) -> None:
    other = FakeLog([b"a", b"b"], origin="other.example/log")
    put(store, log, 3)
    put(store, other, 2)
    assert last_size(store) == 3
    assert store.last_seen("other.example/log").checkpoint.size == 2  # type: ignore[union-attr]


def test_note_and_checkpoint_must_agree(store: CheckpointStore, log: FakeLog) -> None:
    with pytest.raises(ValueError):
        store.update(log.note(3), log.checkpoint(2))


def test_corrupt_state_is_reported(store: CheckpointStore, log: FakeLog) -> None:
    put(store, log, 3)
    folder = next(p for p in store.directory.iterdir())
    (folder / "checkpoint").write_bytes(b"garbage")
    with pytest.raises(FormatError) as err:
        store.last_seen(ORIGIN)
    assert err.value.check == "log.consistency"


@given(sizes=st.lists(st.integers(0, len(ENTRIES)), min_size=1, max_size=8))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_last_seen_is_the_largest_size_presented(sizes: list[int]) -> None:
    """Property: presenting honest checkpoints in any order leaves last-seen at the maximum."""
    log = FakeLog(list(ENTRIES))
    with tempfile.TemporaryDirectory() as tmp:
        store = CheckpointStore(tmp)
        for size in sizes:
            put(store, log, size, log.consistency)
        assert last_size(store) == max(sizes)
        assert store.evidence(ORIGIN) == []


def test_concurrent_updates_are_serialised(store: CheckpointStore, log: FakeLog) -> None:
    """Compare-and-swap under a lock: racing writers end at the largest size, no torn file."""
    errors: list[BaseException] = []

    def advance(size: int) -> None:
        try:
            put(store, log, size, log.consistency)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=advance, args=(n,)) for n in (1, 6, 3, 5, 2, 4) * 2]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert last_size(store) == 6
