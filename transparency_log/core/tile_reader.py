"""Proofs from C2SP tlog-tiles (c2sp.org/tlog-tiles): a Merkle node reader over hash tiles.

:class:`TileReader` is a ``merkle.NodeReader`` over an injected fetch function
``(path) -> bytes``. The node ``(level, index)`` lives in the tiles of level ``level // 8``: it
covers ``2 ** (level % 8)`` consecutive hashes of one tile, which are rehashed up to it. A
reader is built for one tree size and only ever asks for the tile widths that size implies, so
a tile tree published for a larger size serves it too (a partial tile that has since filled up
is read from the full tile). Expanded tiles are kept in a bounded, locked LRU cache
(:class:`TileCache`) that readers of one log may share between threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from transparency_log.core import merkle
from transparency_log.core.tiles import (
    HASH_SIZE,
    TILE_HEIGHT,
    TILE_WIDTH,
    Fetch,
    decode_hash_tile,
    tile_path,
    tile_width,
)

__all__ = ["TileCache", "TileReader", "expand_tile"]


def expand_tile(hashes: Sequence[bytes] | bytes) -> list[bytes]:
    """Every complete node inside one tile, one byte string per sub-level: bytes
    ``[32·i, 32·i + 32)`` of ``levels[r]`` are the node of ``2**r`` tile hashes starting at
    tile hash ``i << r`` (r = 0..8). Byte strings, not lists of hashes: a cached full tile
    costs 16 KiB, not ~36 KiB of small objects. ``hashes`` may be the tile's bytes as served
    (its size checked by the caller), which are hashed without being split first."""
    level = hashes if isinstance(hashes, bytes) else b"".join(hashes)
    levels = [level]
    while len(level) > HASH_SIZE:
        level = merkle.hash_level_bytes(level)
        levels.append(level)
    return levels


class TileCache:
    """A thread-safe LRU cache of expanded tiles, keyed by ``(level, index, width)`` (a tile of
    a given width never changes, so entries never go stale)."""

    def __init__(self, max_tiles: int = 256) -> None:
        self.max_tiles = max_tiles
        self._tiles: OrderedDict[tuple[int, int, int], list[bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, int, int]) -> list[bytes] | None:
        with self._lock:
            hit = self._tiles.get(key)
            if hit is not None:
                self._tiles.move_to_end(key)
            return hit

    def put(self, key: tuple[int, int, int], expanded: list[bytes]) -> None:
        with self._lock:
            self._tiles[key] = expanded
            while len(self._tiles) > self.max_tiles:
                self._tiles.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._tiles.clear()


class TileReader:
    """A ``merkle.NodeReader`` for a tree of ``size`` leaves, reading C2SP hash tiles.

    ``fetch(path) -> bytes`` is injected (HTTP, files, a database). Tiles are fetched at the
    width ``size`` implies; when a partial tile is missing (it filled up since) the full tile
    is fetched and its prefix used. Expanded tiles are kept in ``cache`` (shared by the
    readers :meth:`at_size` makes; a new 256-tile cache by default).
    """

    def __init__(self, fetch: Fetch, size: int, cache: TileCache | None = None) -> None:
        if size < 0:
            raise ValueError("tree size must be non-negative")
        self.fetch = fetch
        self.size = size
        self.cache = TileCache() if cache is None else cache

    def at_size(self, size: int) -> TileReader:
        """A reader for another tree size of the same log, sharing this one's cache."""
        return TileReader(self.fetch, size, self.cache)

    def _load(self, level: int, index: int, width: int) -> list[bytes]:
        key = (level, index, width)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        path = tile_path(level, index, width)
        try:
            data = self.fetch(path)
        except FileNotFoundError:
            if width == TILE_WIDTH:
                raise
            data = self.fetch(tile_path(level, index))[: width * HASH_SIZE]
        if len(data) != width * HASH_SIZE:
            decode_hash_tile(data, width)  # FormatError tiles.hash_tile, naming the sizes
        expanded = expand_tile(bytes(data))
        self.cache.put(key, expanded)
        return expanded

    def read(self, level: int, index: int) -> bytes:
        """The hash of node ``(level, index)``: it must be complete in this tree size."""
        if (index + 1) << level > self.size or index < 0:
            raise ValueError(f"node ({level}, {index}) is not in a tree of size {self.size}")
        tile_level, sub = divmod(level, TILE_HEIGHT)
        first = index << sub  # first tile-level hash covered by the node
        tile_index = first >> TILE_HEIGHT
        width = tile_width(self.size, tile_level, tile_index)
        pos = ((first & (TILE_WIDTH - 1)) >> sub) * HASH_SIZE
        return self._load(tile_level, tile_index, width)[sub][pos:pos + HASH_SIZE]

    __call__ = read

    def root(self) -> bytes:
        return merkle.subtree_hash(0, self.size, self.read)

    def inclusion_proof(self, index: int) -> list[bytes]:
        """PATH(index) of RFC 9162 §2.1.3.1 from the tiles: a perfect range is one node read
        (one tile per tile level on the leaf's path, each fetched and expanded once); the
        others (the tree's right border) are folded from the partial tiles' nodes."""
        out = []
        read = self.read
        for start, end in merkle.inclusion_ranges(index, self.size):
            n = end - start
            if n & (n - 1):
                out.append(merkle.subtree_hash(start, end, read))
            else:
                level = n.bit_length() - 1
                out.append(read(level, start >> level))
        return out

    def consistency_proof(self, size1: int) -> list[bytes]:
        return merkle.consistency_proof(size1, self.size, self.read)
