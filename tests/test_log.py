"""The log lifecycle on SQLite: integration into tiles, proofs, publishing, static tile tree."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transparency_log.common.errors import FormatError, ProofError
from transparency_log.core import merkle, tile_reader, tiles
from transparency_log.core.checkpoint import open_checkpoint
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import Signer, generate_keys
from transparency_log.core.tlog_proof import parse_tlog_proof, verify_tlog_proof
from transparency_log.log.lifecycle import Log, extend_tree, recompute_tree
from transparency_log.log.publish import publish_tiles
from transparency_log.log.storage.base import TreeState
from transparency_log.log.storage.sqlite import SqliteStorage

ORIGIN = "example.com/test-log"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SKEY, VKEY = generate_keys(ORIGIN, seed=bytes(range(32)))


@pytest.fixture
def log(tmp_path: Path):
    storage = SqliteStorage(tmp_path / "log.db")
    yield Log(storage, ORIGIN, chunk=1000)
    storage.close()


def entries(start: int, end: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(start, end)]


def file_fetcher(root: Path):
    def fetch(path: str) -> bytes:
        return (root / path).read_bytes()  # FileNotFoundError for a missing tile
    return fetch


def test_integration_matches_reference_tree_in_every_chunking(log: Log) -> None:
    tree = merkle.MemoryTree()
    rng = random.Random(7)
    n = 0
    for step in [1, 1, 6, 248, 1, 255, 513, 3000, 7, 65536 - 4033, 300]:
        log.add(entries(n, n + step))
        tree_entries = entries(n, n + step)
        for e in tree_entries:
            tree.append(e)
        n += step
        state = log.integrate()
        assert (state.size, state.root) == (n, tree.root())
        for index in rng.sample(range(n), min(n, 10)):
            assert log.inclusion_proof(index) == tree.inclusion_proof(index)
        for size1 in rng.sample(range(1, n + 1), min(n, 10)):
            assert log.consistency_proof(size1) == tree.consistency_proof(size1)
            assert log.root(size1) == tree.root(size1)
    # every stored tile is exactly the reference tree's hashes at its widest width
    for t in tiles.tiles_for_size(n):
        assert isinstance(t.level, int)
        level = tree.levels[8 * t.level]
        want = b"".join(level[t.index * 256: t.index * 256 + t.width])
        assert log.storage.read_tile(t.level, t.index) == want


def test_extend_tree_refuses_a_missing_partial_tile() -> None:
    state, changed = extend_tree(TreeState.empty(), [merkle.leaf_hash(b"a")], lambda level, i: None)
    assert changed == {(0, 0): merkle.leaf_hash(b"a")}
    with pytest.raises(FormatError, match="partial tile"):
        extend_tree(state, [merkle.leaf_hash(b"b")], lambda level, i: None)


def test_duplicates_keep_their_index(log: Log) -> None:
    assert log.add([b"a", b"b", b"a"]) == [0, 1, 0]
    assert log.add([b"b", b"c"]) == [1, 2]
    assert log.find(b"c") == 2 and log.find(b"zz") is None
    assert log.integrate().size == 3
    assert log.entry(2) == b"c"


def test_oversized_entry_refused(log: Log) -> None:
    with pytest.raises(FormatError, match="too large"):
        log.add([b"x" * 65536])


def test_reopen_continues_the_same_tree(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "log.db")
    log = Log(storage, ORIGIN)
    log.add(entries(0, 300))
    log.integrate()
    log.add(entries(300, 310))  # sequenced, not integrated, then "crash"
    storage.close()
    storage = SqliteStorage(tmp_path / "log.db")
    try:
        log = Log(storage, ORIGIN)
        assert log.tree_state().size == 300
        assert log.integrate().root == merkle.MemoryTree(entries(0, 310)).root()
    finally:
        storage.close()


def test_publish_signs_a_checkpoint(log: Log) -> None:
    log.add(entries(0, 5))
    note = log.publish(Signer(SKEY), NOW)
    cp, _ = open_checkpoint(note, Verifier(VKEY))
    assert (cp.origin, cp.size, cp.root) == (ORIGIN, 5, merkle.MemoryTree(entries(0, 5)).root())
    assert log.latest_checkpoint() == note
    assert log.storage.get_meta("checkpoint_time") == NOW.isoformat()


def test_proof_for_size_not_integrated_refused(log: Log) -> None:
    log.add(entries(0, 3))
    log.integrate()
    log.add(entries(3, 4))
    with pytest.raises(FormatError, match="not integrated"):
        log.inclusion_proof(0, 4)


def test_published_tile_tree_gives_the_databases_proofs(log: Log, tmp_path: Path) -> None:
    out = tmp_path / "public"
    with pytest.raises(FormatError, match="no signed checkpoint"):
        publish_tiles(log, out)
    signer = Signer(SKEY)
    n = 0
    rng = random.Random(1)
    for step in [3, 253, 70000 - 256, 1000]:
        log.add(entries(n, n + step))
        n += step
        log.publish(signer, NOW)
        stats = publish_tiles(log, out)
        assert stats.size == n
        cp, _ = open_checkpoint((out / "checkpoint").read_bytes(), Verifier(VKEY))
        assert cp.size == n
        remote = tile_reader.TileReader(file_fetcher(out), n)
        assert remote.root() == cp.root
        for index in [0, n - 1, *rng.sample(range(n), min(n, 20))]:
            assert remote.inclusion_proof(index) == log.inclusion_proof(index)
        for size1 in [1, n, *rng.sample(range(1, n + 1), min(n, 20))]:
            assert remote.consistency_proof(size1) == log.consistency_proof(size1)
        for t in tiles.bundles_for_size(n):
            start = t.index * 256
            assert tiles.decode_entry_bundle((out / t.path).read_bytes(), t.width) == \
                entries(start, start + t.width)
    # full tiles are written once; partial tiles of older sizes stay for older clients
    assert (out / "tile/0/000").stat().st_size == 8192
    assert (out / "tile/0/000.p/3").stat().st_size == 96
    assert (out / "tile/1/000.p/1").exists() and (out / "tile/2/000.p/1").exists()
    again = publish_tiles(log, out)
    assert again.skipped == n // 256 + len([t for t in tiles.tiles_for_size(n)
                                            if t.width == 256])
    # a reader of an older size whose partial tile was deleted falls back to the full tile
    (out / "tile/0/000.p/3").unlink()
    old = tile_reader.TileReader(file_fetcher(out), 3)
    assert old.inclusion_proof(1) == log.inclusion_proof(1, 3)


def test_recompute_tree_from_bundles(log: Log) -> None:
    log.add(entries(0, 70000))
    state = log.integrate()
    bundles = [log.entry_bundle(t.index, t.width) for t in tiles.bundles_for_size(70000)]
    assert recompute_tree(bundles) == state
    assert recompute_tree([]) == TreeState.empty()
    with pytest.raises(FormatError, match="not the last"):
        recompute_tree([bundles[-1], bundles[0]])


@pytest.mark.parametrize("size", [1, 255, 256, 257, 511, 512, 768, 1027, 4096 + 256 * 3 + 5])
def test_recompute_tree_matches_the_reference_at_bundle_boundaries(size: int) -> None:
    # entries of mixed sizes (the parsing loop) and of one size (the strided fast path)
    for make in (lambda i: b"e%d" % i, lambda i: i.to_bytes(4, "big") * 3):
        leaves = [make(i) for i in range(size)]
        bundles = [tiles.encode_entry_bundle(leaves[i:i + 256]) for i in range(0, size, 256)]
        tree = merkle.CompactRange()
        for e in leaves:
            tree.append(merkle.leaf_hash(e))
        want = TreeState(size, merkle.MemoryTree(leaves).root(), tuple(tree.hashes))
        assert want.root == tree.root()
        assert recompute_tree(bundles) == want


def test_prove_gives_a_verifiable_tlog_proof(log: Log) -> None:
    with pytest.raises(FormatError, match="no signed checkpoint"):
        log.prove(0)
    log.add(entries(0, 300))
    log.publish(Signer(SKEY), NOW)
    log.add(entries(300, 301))  # sequenced after the checkpoint: not provable yet
    log.integrate()
    for index in (0, 255, 256, 299):
        proof = parse_tlog_proof(log.prove(index).to_text())
        cp = verify_tlog_proof(entries(index, index + 1)[0], proof, Verifier(VKEY))
        assert cp.size == 300
    with pytest.raises(FormatError, match="not covered"):
        log.prove(300)
    with pytest.raises(ProofError):
        verify_tlog_proof(b"another entry", log.prove(3), Verifier(VKEY))


def test_proofs_from_many_threads_share_one_cache(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "log.db")
    try:
        log = Log(storage, ORIGIN, cache_tiles=3)  # tiny cache: constant eviction
        log.add(entries(0, 5000))
        log.integrate()
        tree = merkle.MemoryTree(entries(0, 5000))
        errors: list[BaseException] = []

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            try:
                for _ in range(50):
                    i = rng.randrange(5000)
                    assert log.inclusion_proof(i) == tree.inclusion_proof(i)
            except BaseException as err:  # reported below
                errors.append(err)

        pool = [threading.Thread(target=worker, args=(s,)) for s in range(6)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        assert not errors
    finally:
        storage.close()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=8))
def test_extend_tree_in_any_steps_matches_reference(steps: list[int]) -> None:
    stored: dict[tuple[int, int], bytes] = {}
    state = TreeState.empty()
    tree = merkle.MemoryTree()
    for step in steps:
        leaves = [merkle.leaf_hash(e) for e in entries(tree.size, tree.size + step)]
        for h in leaves:
            tree.append_hash(h)
        state, changed = extend_tree(state, leaves, lambda lv, i: stored.get((lv, i)))
        stored.update(changed)
        assert (state.size, state.root) == (tree.size, tree.root())
        assert state.border == tuple(merkle.CompactRange.from_reader(tree.size, tree.read).hashes)
    for t in tiles.tiles_for_size(tree.size):
        assert isinstance(t.level, int)
        level = tree.levels[8 * t.level]
        assert stored[(t.level, t.index)] == b"".join(level[t.index * 256:][:t.width])
