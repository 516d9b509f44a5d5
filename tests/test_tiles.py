"""C2SP tlog-tiles: paths (tests/vectors/tlog/tiles/tile_paths.json), tiles, bundles, proofs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.vectors import load_json_vector
from transparency_log.common.errors import FormatError
from transparency_log.core import merkle, tile_reader, tiles

PATHS = load_json_vector("tlog", "tiles", "tile_paths.json")


@pytest.mark.parametrize("case", PATHS["c2sp_tlog_tiles"]["index_encoding"],
                         ids=lambda c: str(c["n"]))
def test_index_encoding_vectors(case: dict) -> None:
    assert tiles.encode_index(case["n"]) == case["path"]
    assert tiles.decode_index(case["path"]) == case["n"]
    assert tiles.tile_path(0, case["n"]) == f"tile/0/{case['path']}"
    assert tiles.entries_path(case["n"], 7) == f"tile/entries/{case['path']}.p/7"


@pytest.mark.parametrize("case", PATHS["c2sp_tlog_tiles"]["partial_tiles_examples"],
                         ids=lambda c: str(c["tree_size"]))
def test_partial_tile_examples(case: dict) -> None:
    got: dict[str, int] = {}
    for t in tiles.tiles_for_size(case["tree_size"]):
        if t.width == tiles.TILE_WIDTH:
            key = f"level{t.level}_full"
            got[key] = got.get(key, 0) + 1
        else:
            got[f"level{t.level}_partial_width"] = t.width
    assert got == case["tiles"]


def test_sumdb_paths_with_height_are_not_c2sp() -> None:
    # sumdb writes tile/<H>/<L>/<N>: a different format (C2SP fixes H = 8). We refuse it, but
    # the index encoding of its N is the same as C2SP's.
    for case in PATHS["sumdb_tlog_paths_with_height"]["cases"]:
        with pytest.raises(FormatError):
            tiles.parse_tile_path(case["path"])
        if case["valid"]:
            n_text = case["path"].split("/", 3)[3].split(".p/")[0]
            assert tiles.decode_index(n_text) == case["N"]
            assert tiles.encode_index(case["N"]) == n_text


@pytest.mark.parametrize("path,want", [
    ("tile/0/000", tiles.TileId(0, 0)),
    ("tile/3/x001/x234/067.p/9", tiles.TileId(3, 1234067, 9)),
    ("tile/entries/x001/000", tiles.TileId("entries", 1000)),
    ("tile/entries/005.p/255", tiles.TileId("entries", 5, 255)),
    ("tile/63/001", tiles.TileId(63, 1)),
])
def test_parse_path_round_trip(path: str, want: tiles.TileId) -> None:
    assert tiles.parse_tile_path(path) == want
    assert want.path == path


@pytest.mark.parametrize("path", [
    "tile/0/1", "tile/0/0001", "tile/0/x000/001", "tile/0/001/002", "tile/00/001",
    "tile/64/001", "tile/0/001.p/0", "tile/0/001.p/256", "tile/0/001.p/07", "tile/data/001",
    "tile/-1/001", "tile/0/001.p/", "/tile/0/001", "tile/0/x1234/000", "tile/0/001 ",
])
def test_parse_path_refuses(path: str) -> None:
    with pytest.raises(FormatError):
        tiles.parse_tile_path(path)


def test_path_builders_refuse_bad_arguments() -> None:
    for bad in [lambda: tiles.tile_path(64, 0), lambda: tiles.tile_path(0, -1),
                lambda: tiles.tile_path(0, 0, 0), lambda: tiles.entries_path(0, 257)]:
        with pytest.raises(ValueError):
            bad()


def test_entry_bundle_round_trip() -> None:
    entries = [b"", b"a", bytes(range(256)) * 3, b"x" * tiles.MAX_ENTRY_SIZE]
    data = tiles.encode_entry_bundle(entries)
    assert data[:4] == b"\x00\x00\x00\x01"
    assert tiles.decode_entry_bundle(data) == entries
    assert tiles.decode_entry_bundle(data, width=4) == entries


def test_entry_bundle_refuses() -> None:
    with pytest.raises(FormatError, match="too large"):
        tiles.encode_entry_bundle([b"x" * (tiles.MAX_ENTRY_SIZE + 1)])
    good = tiles.encode_entry_bundle([b"abc", b"de"])
    for bad in [good[:-1], good + b"\x00", good[:1], b"", good + b"\x00\x05ab"]:
        with pytest.raises(FormatError):
            tiles.decode_entry_bundle(bad)
    with pytest.raises(FormatError, match="number of entries"):
        tiles.decode_entry_bundle(good, width=3)
    with pytest.raises(FormatError, match="too many"):
        tiles.decode_entry_bundle(b"\x00\x00" * 257)


def test_hash_tile_sizes() -> None:
    hashes = [bytes([i]) * 32 for i in range(3)]
    data = tiles.encode_hash_tile(hashes)
    assert tiles.decode_hash_tile(data, 3) == hashes
    with pytest.raises(FormatError):
        tiles.decode_hash_tile(data, 4)
    with pytest.raises(FormatError):
        tiles.decode_hash_tile(data + b"\x00")


def publish_memory_tree(tree: merkle.MemoryTree) -> dict[str, bytes]:
    """The C2SP hash tiles of a reference tree, computed independently of the log's code."""
    files: dict[str, bytes] = {}
    for t in tiles.tiles_for_size(tree.size):
        assert isinstance(t.level, int)
        level = tree.levels[8 * t.level]
        start = t.index * 256
        files[t.path] = b"".join(level[start:start + t.width])
    return files


def fetcher(files: dict[str, bytes]):
    def fetch(path: str) -> bytes:
        try:
            return files[path]
        except KeyError:
            raise FileNotFoundError(path) from None
    return fetch


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 70000 // 8), st.data())
def test_proofs_from_tiles_match_reference(size: int, data: st.DataObject) -> None:
    tree = merkle.MemoryTree(i.to_bytes(4, "big") for i in range(size))
    reader = tile_reader.TileReader(fetcher(publish_memory_tree(tree)), size)
    assert reader.root() == tree.root()
    index = data.draw(st.integers(0, size - 1))
    assert reader.inclusion_proof(index) == tree.inclusion_proof(index)
    size1 = data.draw(st.integers(1, size))
    assert reader.consistency_proof(size1) == tree.consistency_proof(size1)


def test_reader_for_older_size_uses_full_tile_when_partial_is_gone() -> None:
    tree = merkle.MemoryTree(i.to_bytes(4, "big") for i in range(70000))
    files = publish_memory_tree(tree)  # level 0 partials of size 70000 only
    reader = tile_reader.TileReader(fetcher(files), 70000)
    old = reader.at_size(1000)  # needs tile/0/003.p/232, published only as full tile
    assert "tile/0/003.p/232" not in files
    assert old.root() == tree.root(1000)
    assert old.inclusion_proof(999) == tree.inclusion_proof(999, 1000)
    for index in (0, 255, 256, 65535, 65536, 69999):
        merkle.verify_inclusion(index, 70000, tree.levels[0][index],
                                reader.inclusion_proof(index), tree.root())


def test_reader_refuses_nodes_outside_the_tree() -> None:
    reader = tile_reader.TileReader(fetcher({}), 10)
    with pytest.raises(ValueError):
        reader.read(0, 10)
    with pytest.raises(ValueError):
        reader.read(3, 1)
    with pytest.raises(FileNotFoundError):
        reader.read(0, 0)


def test_changed_tiles() -> None:
    got = [t.path for t in tiles.changed_tiles(250, 300)]
    assert got == ["tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1"]
    assert list(tiles.changed_tiles(0, 0)) == []
    assert [t.path for t in tiles.bundles_for_size(257)] == [
        "tile/entries/000", "tile/entries/001.p/1"]


def test_bundle_leaf_hashes_match_decode() -> None:
    entries = [b"", b"a", bytes(range(256)) * 3, b"x" * tiles.MAX_ENTRY_SIZE]
    data = tiles.encode_entry_bundle(entries)
    assert tiles.bundle_leaf_hashes(data, 4) == [merkle.leaf_hash(e) for e in entries]
    assert data == tiles.encode_entry_bundle(entries)  # the input is not modified
    good = tiles.encode_entry_bundle([b"abc", b"de"])
    for bad in [good[:-1], good + b"\x00", good[:1], b"", b"\x00\x00" * 257]:
        with pytest.raises(FormatError):
            tiles.bundle_leaf_hashes(bad)
    with pytest.raises(FormatError):
        tiles.bundle_leaf_hashes(good, 3)


def test_bundle_leaf_hashes_of_same_size_entries() -> None:
    # all length prefixes equal: the strided fast path, which must agree with the loop
    entries = [bytes([i]) * 300 for i in range(256)]
    data = tiles.encode_entry_bundle(entries)
    assert tiles.bundle_leaf_hashes(data, 256) == [merkle.leaf_hash(e) for e in entries]
    assert tiles.bundle_leaf_hashes(b"\x00\x00" * 256) == [merkle.leaf_hash(b"")] * 256
    mixed = bytearray(data)
    mixed[302 * 5 + 1] -= 1  # entry 5 one byte shorter: the records no longer line up
    with pytest.raises(FormatError):
        tiles.bundle_leaf_hashes(bytes(mixed))
    shorter = tiles.encode_entry_bundle([*entries[:5], entries[5][:-1], *entries[6:]])
    assert tiles.bundle_leaf_hashes(shorter) == [
        merkle.leaf_hash(e) for e in [*entries[:5], entries[5][:-1], *entries[6:]]]
    for bad in [data[:-1], data + b"\x01", data[:302 * 3] + data[302 * 3 + 1:]]:
        with pytest.raises(FormatError):
            tiles.bundle_leaf_hashes(bad)


def _decoded_outcome(fn: object, data: bytes, width: int | None) -> object:
    try:
        return fn(data, width)  # type: ignore[operator]
    except FormatError as err:
        return ("refused", err.check)


@given(st.lists(st.binary(max_size=40), min_size=0, max_size=260), st.integers(0, 3),
       st.booleans(), st.binary(max_size=3))
def test_bundle_entries_and_leaf_hashes_match_decode(entries: list[bytes], size: int,
                                                     same: bool, junk: bytes) -> None:
    """The audit's one-pass (entries, hashes) agrees with decode_entry_bundle + leaf hashes
    on every bundle, good or bad: same-size entries (the strided path), mixed sizes, too
    many entries, trailing junk, a given width right or wrong."""
    if same:
        entries = [e[:size].ljust(size, b"\x07") for e in entries]
    data = b"".join(len(e).to_bytes(2, "big") + e for e in entries) + junk
    for width in (None, len(entries), len(entries) + 1):

        def reference(d: bytes, w: int | None) -> tuple[list[bytes], list[bytes]]:
            got = tiles.decode_entry_bundle(d, w)
            return got, [merkle.leaf_hash(e) for e in got]

        assert (_decoded_outcome(tiles.bundle_entries_and_leaf_hashes, data, width)
                == _decoded_outcome(reference, data, width))


def test_tile_cache_is_bounded_lru() -> None:
    cache = tile_reader.TileCache(2)
    cache.put((0, 0, 256), [b"a"])
    cache.put((0, 1, 256), [b"b"])
    assert cache.get((0, 0, 256)) == [b"a"]  # now most recent
    cache.put((0, 2, 256), [b"c"])
    assert cache.get((0, 1, 256)) is None
    assert cache.get((0, 0, 256)) == [b"a"] and cache.get((0, 2, 256)) == [b"c"]
