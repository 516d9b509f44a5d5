"""The one conformance suite every storage backend runs (transparency_log/log/storage/base.py).

A backend's test module is a few lines::

    from tests.support.storage_conformance import *  # noqa: F403

    @pytest.fixture
    def storage_factory(tmp_path):
        # returns a zero-argument callable that opens (or re-opens) ONE backing store,
        # empty at the start of each test
        return lambda: SqliteStorage(tmp_path / "log.db")

Each test opens the store through the factory, and the reopen tests open it a second time
(after ``close``) to check durability.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from transparency_log.common.errors import FormatError
from transparency_log.core import merkle
from transparency_log.log.storage.base import LogStorage, StorageConflictError, TreeState

__all__ = [
    "store",
    "test_append_is_dense_and_reads_back",
    "test_checkpoint_only_moves_forward",
    "test_concurrent_appends_get_distinct_dense_indexes",
    "test_duplicates_get_existing_index",
    "test_empty_store",
    "test_find_index",
    "test_integrate_compare_and_swap",
    "test_meta",
    "test_oversized_entry_refuses_whole_batch",
    "test_read_beyond_sequenced_refused",
    "test_reopen_keeps_everything",
    "test_store_implements_protocol",
    "test_tiles_grow_by_replacement",
    "test_writer_lock_is_exclusive",
]

Factory = Callable[[], LogStorage]


@pytest.fixture
def store(storage_factory: Factory) -> Iterator[LogStorage]:
    s = storage_factory()
    yield s
    s.close()


def entry(i: int) -> bytes:
    return f"entry {i}".encode()


def test_store_implements_protocol(store: LogStorage) -> None:
    assert isinstance(store, LogStorage)


def test_empty_store(store: LogStorage) -> None:
    assert store.sequenced_size() == 0
    assert store.tree_state() == TreeState.empty()
    assert store.latest_checkpoint() is None
    assert store.read_tile(0, 0) is None
    assert store.read_entries(0, 0) == []
    assert store.append([]) == []
    assert store.get_meta("origin") is None


def test_append_is_dense_and_reads_back(store: LogStorage) -> None:
    assert store.append([entry(0), entry(1)]) == [0, 1]
    assert store.append([entry(2)]) == [2]
    assert store.append([b"", b"\x00" * 65535]) == [3, 4]
    assert store.sequenced_size() == 5
    assert store.read_entries(0, 5) == [entry(0), entry(1), entry(2), b"", b"\x00" * 65535]
    assert store.read_entries(1, 3) == [entry(1), entry(2)]
    assert store.read_leaf_hashes(2, 4) == [merkle.leaf_hash(entry(2)), merkle.leaf_hash(b"")]


def test_duplicates_get_existing_index(store: LogStorage) -> None:
    assert store.append([entry(0), entry(1)]) == [0, 1]
    assert store.append([entry(1), entry(2), entry(0), entry(2)]) == [1, 2, 0, 2]
    assert store.append([entry(3), entry(3)]) == [3, 3]
    assert store.sequenced_size() == 4
    assert store.read_entries(0, 4) == [entry(i) for i in range(4)]


def test_find_index(store: LogStorage) -> None:
    store.append([entry(i) for i in range(10)])
    assert store.find_index(merkle.leaf_hash(entry(7))) == 7
    assert store.find_index(merkle.leaf_hash(b"absent")) is None


def test_oversized_entry_refuses_whole_batch(store: LogStorage) -> None:
    with pytest.raises(FormatError):
        store.append([entry(0), b"x" * 65536])
    with pytest.raises(FormatError):
        store.append(["text"])  # type: ignore[list-item]
    assert store.sequenced_size() == 0


def test_read_beyond_sequenced_refused(store: LogStorage) -> None:
    store.append([entry(0)])
    with pytest.raises(ValueError):
        store.read_entries(0, 2)
    with pytest.raises(ValueError):
        store.read_leaf_hashes(1, 0)


def test_concurrent_appends_get_distinct_dense_indexes(store: LogStorage) -> None:
    threads, per_thread = 8, 40
    got: dict[bytes, int] = {}
    lock = threading.Lock()

    def worker(t: int) -> None:
        for i in range(per_thread):
            # every thread also re-adds entry(0..3): duplicates across threads
            batch = [f"t{t} e{i}".encode(), entry(i % 4)]
            indexes = store.append(batch)
            with lock:
                for e, index in zip(batch, indexes, strict=True):
                    assert got.setdefault(e, index) == index

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    n = threads * per_thread + 4
    assert store.sequenced_size() == n
    assert sorted(got.values()) == list(range(n))
    stored = store.read_entries(0, n)
    for e, index in got.items():
        assert stored[index] == e


def _state_of(entries: list[bytes]) -> TreeState:
    cr = merkle.CompactRange()
    for e in entries:
        cr.append(merkle.leaf_hash(e))
    return TreeState(cr.size, cr.root(), tuple(cr.hashes))


def test_integrate_compare_and_swap(store: LogStorage) -> None:
    entries = [entry(i) for i in range(3)]
    store.append(entries)
    state = _state_of(entries)
    tile = b"".join(merkle.leaf_hash(e) for e in entries)
    store.integrate(0, state, {(0, 0): tile})
    assert store.tree_state() == state
    assert store.read_tile(0, 0) == tile
    with pytest.raises(StorageConflictError):
        store.integrate(0, _state_of(entries[:1]), {(0, 0): tile[:32], (1, 0): tile[:32]})
    assert store.tree_state() == state
    assert store.read_tile(0, 0) == tile  # nothing of the losing call was written
    assert store.read_tile(1, 0) is None


def test_tiles_grow_by_replacement(store: LogStorage) -> None:
    a, b = bytes(range(32)), bytes(range(32, 64))
    store.integrate(0, _state_of([b"1"]), {(0, 0): a})
    store.integrate(1, _state_of([b"1", b"2"]), {(0, 0): a + b, (2, 7): b})
    assert store.read_tile(0, 0) == a + b
    assert store.read_tile(2, 7) == b
    assert store.read_tile(0, 1) is None


def test_checkpoint_only_moves_forward(store: LogStorage) -> None:
    store.write_checkpoint(5, b"note 5\n")
    store.write_checkpoint(5, b"note 5 again\n")
    store.write_checkpoint(9, b"note 9\n")
    with pytest.raises(StorageConflictError):
        store.write_checkpoint(8, b"note 8\n")
    assert store.latest_checkpoint() == (9, b"note 9\n")


def test_meta(store: LogStorage) -> None:
    store.set_meta("origin", "example.com/log")
    store.set_meta("origin", "example.com/log2")
    assert store.get_meta("origin") == "example.com/log2"


def test_reopen_keeps_everything(storage_factory: Factory) -> None:
    s = storage_factory()
    entries = [entry(i) for i in range(300)]
    assert s.append(entries) == list(range(300))
    state = _state_of(entries)
    s.integrate(0, state, {(0, 0): b"\x01" * 32 * 256, (0, 1): b"\x02" * 32 * 44})
    s.write_checkpoint(300, b"cp\n")
    s.set_meta("origin", "o")
    s.close()
    s = storage_factory()
    try:
        assert s.sequenced_size() == 300
        assert s.read_entries(0, 300) == entries
        assert s.tree_state() == state
        assert s.read_tile(0, 1) == b"\x02" * 32 * 44
        assert s.latest_checkpoint() == (300, b"cp\n")
        assert s.get_meta("origin") == "o"
        assert s.append([entry(5), entry(300)]) == [5, 300]
    finally:
        s.close()


def test_writer_lock_is_exclusive(storage_factory: Factory) -> None:
    """One holder of the writer lock per log (as two `tlog serve` processes would open it);
    taking it writes nothing; closing the holder frees it."""
    first, second = storage_factory(), storage_factory()
    try:
        assert not first.holds_writer_lock()
        assert first.try_writer_lock() and first.holds_writer_lock()
        assert first.try_writer_lock()  # again: still ours
        assert not second.try_writer_lock() and not second.holds_writer_lock()
        assert second.latest_checkpoint() is None and second.sequenced_size() == 0
        first.close()
        assert second.try_writer_lock() and second.holds_writer_lock()
    finally:
        second.close()
