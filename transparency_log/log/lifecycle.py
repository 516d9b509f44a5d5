"""The transparency log's lifecycle on a :class:`~transparency_log.log.storage.base.LogStorage`.

The three stages are named as Tessera names them:

1. **Sequencing** (:meth:`Log.add`): the store durably assigns each entry an index (a duplicate
   gets its existing index). An index returned is never lost.
2. **Integration** (:meth:`Log.integrate`): newly sequenced leaf hashes are merged into the
   tree, level by level, starting from the stored compact range (``merkle.CompactRange``): the
   hash tiles they change (full and partial, C2SP tlog-tiles) and the new tree state are
   written in one compare-and-swap transaction. Work is done in chunks of at most
   ``chunk`` leaves, so memory does not grow with the log.
3. **Publishing** (:meth:`Log.publish`): the integrated tree head is signed by the log's note
   signer as a C2SP tlog-checkpoint and stored. The time is a parameter (the caller's clock).

Proofs (:meth:`Log.inclusion_proof`, :meth:`Log.consistency_proof`) are built from the stored
hash tiles by the same :class:`~transparency_log.core.tile_reader.TileReader` a remote client
uses on the published tile tree, so what the log serves and what it proves cannot disagree.
Entry bundles are not stored twice: they are encoded from the stored entries when published.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from transparency_log.common.errors import FormatError, StartupError
from transparency_log.core import merkle, tile_reader, tiles
from transparency_log.core.checkpoint import Checkpoint, sign_checkpoint
from transparency_log.core.note import NoteSigner
from transparency_log.core.tlog_proof import TlogProof
from transparency_log.log.storage.base import LogStorage, StorageConflictError, TreeState

DEFAULT_CHUNK = 1 << 16
"""Leaves integrated per transaction: bounds integration memory (~10 MB of hashes)."""


StoredTile = Callable[[int, int], "bytes | None"]
"""``(tile level, tile index) -> stored hash tile bytes or None`` (``LogStorage.read_tile``)."""


def extend_tree(state: TreeState, leaves: Sequence[bytes], stored_tile: StoredTile | None,
                ) -> tuple[TreeState, dict[tuple[int, int], bytes]]:
    """Integrate ``leaves`` (leaf hashes) into the tree ``state``.

    Returns the new state and the hash tiles that changed, ``{(tile level, tile index):
    bytes}`` at their new widths. ``stored_tile`` supplies the existing partial tiles the new
    hashes extend (None: build no tiles, only the new state). Nodes are hashed level by level
    (one list comprehension per level): at level ``h`` the new complete nodes are
    ``[n >> h, new_size >> h)``, and when the first is a right child its left sibling is the
    old tree's unpaired node at that level, i.e. a compact-range hash.
    """
    n = state.size
    new_size = n + len(leaves)
    border = dict(zip(merkle.subtree_nodes(0, n), state.border, strict=True))
    last: dict[tuple[int, int], bytes] = {}
    changed: dict[tuple[int, int], bytes] = {}
    level, start, hashes = 0, n, list(leaves)
    while hashes:
        if stored_tile is not None and level % tiles.TILE_HEIGHT == 0:
            _update_tiles(level // tiles.TILE_HEIGHT, start, hashes, stored_tile, changed)
        last[(level, start + len(hashes) - 1)] = hashes[-1]
        pairs = [border[(level, start - 1)], *hashes] if start & 1 else hashes
        hashes = merkle.hash_level(pairs)
        start >>= 1
        level += 1
    # The new border holds, per level, the last complete node: new if the level grew, else old.
    new_border = tuple(last[node] if node in last else border[node]
                       for node in merkle.subtree_nodes(0, new_size))
    root = merkle.CompactRange(new_size, new_border).root()
    return TreeState(new_size, root, new_border), changed


def _update_tiles(tile_level: int, start: int, hashes: list[bytes], stored_tile: StoredTile,
                  changed: dict[tuple[int, int], bytes]) -> None:
    """Put the new hashes ``[start, start + len)`` of tree level ``8·tile_level`` into their
    tiles, after the stored prefix when the first tile is partial."""
    width, pos = tiles.TILE_WIDTH, 0
    while pos < len(hashes):
        tile_index, offset = divmod(start + pos, width)
        take = min(width - offset, len(hashes) - pos)
        prefix = b""
        if offset:
            stored = stored_tile(tile_level, tile_index)
            if stored is None or len(stored) < offset * merkle.HASH_SIZE:
                raise FormatError("log.integrate", "stored partial tile is missing or short",
                                  field=f"tile {tile_level}/{tile_index}",
                                  got=0 if stored is None else len(stored) // merkle.HASH_SIZE,
                                  want=offset)
            prefix = stored[: offset * merkle.HASH_SIZE]
        changed[(tile_level, tile_index)] = prefix + b"".join(hashes[pos:pos + take])
        pos += take


def recompute_tree(bundles: Iterable[bytes]) -> TreeState:
    """Replay a log from its entry bundles, in order (the last may be partial): the size, root
    and compact range they produce. Every bundle but the last must be full.

    A full bundle is 256 leaves, i.e. one perfect subtree at tree level 8: its leaf hashes
    are folded to that subtree's root at once, and the roots are merged on a stack exactly as
    a compact range merges leaves (RFC 9162 §2.1.1 trees are built from perfect subtrees
    left to right), so memory is O(log n) and each node is hashed once, by one list
    comprehension per level. The leaves of a last, partial bundle are appended one by one.
    """
    stack: list[bytes] = []  # roots of the perfect subtrees of full bundles, highest first
    full = 0  # full bundles so far
    partial: list[bytes] | None = None  # the leaf hashes of a partial bundle
    fold = merkle.hash_level
    for data in bundles:
        if partial is not None:
            raise FormatError("log.replay", "a partial entry bundle is not the last",
                              field="entry bundle", got=full * tiles.TILE_WIDTH + len(partial))
        level = tiles.bundle_leaf_hashes(data)
        if len(level) < tiles.TILE_WIDTH:
            partial = level
            continue
        while len(level) > 1:
            level = fold(level)
        h, merged = level[0], full
        while merged & 1:  # a right child: merge it with its left sibling on the stack
            h = merkle.node_hash(stack.pop(), h)
            merged >>= 1
        stack.append(h)
        full += 1
    tree = merkle.CompactRange(full * tiles.TILE_WIDTH, stack)
    for leaf in partial or ():
        tree.append(leaf)
    return TreeState(tree.size, tree.root(), tuple(tree.hashes))


CHECK_WRITER_LOCK = "log.writer_lock"


def require_writer_lock(storage: LogStorage) -> None:
    """Take the log's writer lock or raise StartupError ``log.writer_lock``."""
    if not storage.try_writer_lock():
        raise StartupError(CHECK_WRITER_LOCK, "another process holds this log's writer lock "
                           "(a running `tlog serve`?); nothing was written", field="db")


class Log:
    """A transparency log on a store. Not tied to a clock, a network, or key files."""

    def __init__(self, storage: LogStorage, origin: str, *, chunk: int = DEFAULT_CHUNK,
                 cache_tiles: int = 256) -> None:
        self.storage = storage
        self.origin = origin
        self.chunk = chunk
        self._reader = tile_reader.TileReader(self._fetch_stored, 0,
                                              tile_reader.TileCache(cache_tiles))

    # -- 1. sequencing -----------------------------------------------------------------------
    def add(self, entries: Sequence[bytes]) -> list[int]:
        """Durably sequence ``entries``; returns their indexes (existing ones for duplicates)."""
        return self.storage.append(entries)

    def find(self, entry: bytes) -> int | None:
        """The index of ``entry`` if it was sequenced."""
        return self.storage.find_index(merkle.leaf_hash(entry))

    # -- 2. integration ----------------------------------------------------------------------
    def integrate(self) -> TreeState:
        """Integrate everything sequenced so far; returns the new tree state."""
        while True:
            state = self.storage.tree_state()
            end = min(self.storage.sequenced_size(), state.size + self.chunk)
            if end == state.size:
                return state
            leaves = self.storage.read_leaf_hashes(state.size, end)
            new_state, changed = extend_tree(state, leaves, self.storage.read_tile)
            try:
                self.storage.integrate(state.size, new_state, changed)
            except StorageConflictError:
                continue  # another integrator got there first: start from its state

    def tree_state(self) -> TreeState:
        return self.storage.tree_state()

    # -- 3. publishing ----------------------------------------------------------------------
    def publish(self, signer: NoteSigner, now: datetime) -> bytes:
        """Integrate, sign the tree head as a C2SP checkpoint and store it; returns the note.

        ``now`` is the caller's clock: it is recorded as the ``checkpoint_time`` meta value
        (ISO 8601), which tells an operator how fresh the published checkpoint is. Only the
        holder of the log's writer lock publishes: StartupError ``log.writer_lock`` (nothing
        written) while another process, e.g. a running ``tlog serve``, holds it.
        """
        require_writer_lock(self.storage)
        state = self.integrate()
        note = sign_checkpoint(Checkpoint(self.origin, state.size, state.root), signer)
        self.storage.write_checkpoint(state.size, note)
        self.storage.set_meta("checkpoint_time", now.isoformat())
        return note

    def latest_checkpoint(self) -> bytes | None:
        """The latest signed checkpoint note, or None."""
        latest = self.storage.latest_checkpoint()
        return None if latest is None else latest[1]

    # -- proofs from the stored tiles --------------------------------------------------------
    def _fetch_stored(self, path: str) -> bytes:
        tile = tiles.parse_tile_path(path)
        assert isinstance(tile.level, int)
        data = self.storage.read_tile(tile.level, tile.index)
        want = tile.width * merkle.HASH_SIZE
        if data is None or len(data) < want:
            raise FileNotFoundError(path)
        return data[:want]

    def reader(self, size: int | None = None) -> tile_reader.TileReader:
        """A node reader over the stored tiles for tree ``size`` (default: integrated size)."""
        integrated = self.storage.tree_state().size
        size = integrated if size is None else size
        if not 0 <= size <= integrated:
            raise FormatError("log.size", "tree size not integrated", field="tree size",
                              got=size, want=f"<= {integrated}")
        return self._reader.at_size(size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
        return self.reader(size).inclusion_proof(index)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """RFC 9162 consistency proof from ``size1`` to ``size2`` leaves."""
        return self.reader(size2).consistency_proof(size1)

    def root(self, size: int | None = None) -> bytes:
        return self.reader(size).root()

    def prove(self, index: int) -> TlogProof:
        """A c2sp.org/tlog-proof@v1 for entry ``index`` under the latest signed checkpoint."""
        latest = self.storage.latest_checkpoint()
        if latest is None:
            raise FormatError("log.prove", "the log has no signed checkpoint yet",
                              field="checkpoint", want="run `tlog checkpoint` first")
        size, note = latest
        if not 0 <= index < size:
            raise FormatError("log.prove", "entry is not covered by the latest checkpoint",
                              field="index", got=index, want=f"< {size}")
        return TlogProof(index, tuple(self.inclusion_proof(index, size)), note)

    # -- entries -----------------------------------------------------------------------------
    def entry(self, index: int) -> bytes:
        return self.storage.read_entries(index, index + 1)[0]

    def entry_bundle(self, index: int, width: int = tiles.TILE_WIDTH) -> bytes:
        """Entry bundle ``index`` of ``width`` entries (C2SP tlog-tiles)."""
        start = index * tiles.TILE_WIDTH
        return tiles.encode_entry_bundle(self.storage.read_entries(start, start + width))
