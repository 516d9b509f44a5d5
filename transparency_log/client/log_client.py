"""A verifying client of any C2SP tlog-tiles log, over HTTP or from a local directory.

The client trusts nothing it fetches until it has checked it:

1. **checkpoint** (:meth:`LogClient.checkpoint`): the log's signature and origin
   (c2sp.org/tlog-checkpoint), and, when a witness policy is given, the witnesses'
   cosignatures and quorum (c2sp.org/tlog-policy, :func:`check_quorum`);
2. **consistency** (:meth:`LogClient.update`): the new checkpoint must extend the last one
   this client verified for the origin (kept on disk by
   :class:`transparency_log.client.checkpoint_store.CheckpointStore`, the one store of attestlog).
   The proof is built from the log's hash tiles and verified against both roots (RFC 9162
   §2.1.4.2). The stored checkpoint only moves forward, by compare-and-swap. An
   inconsistency is saved as evidence (both checkpoints, the proof) and raised as
   ConsistencyError; an older checkpoint (a stale cache) must be consistent too, and the
   store is not moved back;
3. **inclusion** (:meth:`LogClient.prove`): an entry's inclusion proof is built from tiles and
   verified against the checkpoint's root (RFC 9162 §2.1.3.2), so a lying tile is caught;
4. **entries** (:meth:`LogClient.entries`): entry bundles are decoded strictly and, in
   :func:`monitor`, every leaf hash, every hash tile and the root are recomputed.

Sources (:data:`transparency_log.core.tiles.Fetch`, ``path -> bytes``, FileNotFoundError for an
absent file): :func:`http_source` (:class:`HttpSource`, pipelined keep-alive GETs, for
``http://``; requests via :class:`HttpFetcher` for HTTPS and proxies: timeouts, retries,
gzip) and :func:`directory_source` (a published tile tree on disk). A source may also offer
``many(paths) -> Iterator[bytes]``, which :func:`monitor` uses to stream the tiles.
"""

from __future__ import annotations

import contextlib
import os
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from transparency_log.client.checkpoint_store import (
    CHECK_CONSISTENCY,
    CheckpointStore,
    ConsistencyResult,
)
from transparency_log.common.errors import ConsistencyError, FetchError, FormatError, ProofError
from transparency_log.common.http_fetch import HttpFetcher, PipelinedFetcher
from transparency_log.core import merkle, tile_reader, tiles
from transparency_log.core.checkpoint import Checkpoint, open_checkpoint
from transparency_log.core.note import NoteVerifier
from transparency_log.core.witness_policy import QuorumResult, WitnessPolicy, check_quorum

CHECK_TILES = "log.tiles"


class HttpSource:
    """tlog-tiles paths under a ``http://`` base URL over pipelined keep-alive connections
    (:class:`PipelinedFetcher`): ``source(path) -> bytes`` (404 -> FileNotFoundError), and
    ``source.many(paths)``, which the monitor uses to stream thousands of tiles."""

    def __init__(self, base_url: str, fetcher: PipelinedFetcher | None = None) -> None:
        self.base = base_url.rstrip("/") + "/"
        self.fetcher = fetcher or PipelinedFetcher(pass_statuses=frozenset({404}))

    def __call__(self, path: str) -> bytes:
        resp = self.fetcher(self.base + path)
        if resp.status == 404:
            raise FileNotFoundError(path)
        return resp.body

    def many(self, paths: Sequence[str]) -> Iterator[bytes]:
        """The bodies of ``paths``, in order; FileNotFoundError at the first 404."""
        for path, resp in zip(paths, self.fetcher.many([self.base + p for p in paths]),
                              strict=True):
            if resp.status == 404:
                raise FileNotFoundError(path)
            yield resp.body


def http_source(base_url: str, fetcher: HttpFetcher | None = None) -> tiles.Fetch:
    """Fetch tlog-tiles paths under ``base_url`` over HTTP (404 -> FileNotFoundError).

    A plain ``http://`` URL that no proxy applies to is read by :class:`HttpSource`
    (pipelined keep-alive); HTTPS, proxies, or an explicit ``fetcher`` go through requests."""
    if fetcher is None and _direct_http(base_url):
        return HttpSource(base_url)
    get = fetcher or HttpFetcher(pass_statuses=frozenset({404}))
    base = base_url.rstrip("/") + "/"

    def fetch(path: str) -> bytes:
        resp = get(base + path)
        if resp.status == 404:
            raise FileNotFoundError(path)
        return resp.body

    return fetch


def _direct_http(url: str) -> bool:
    host = urlsplit(url).hostname
    proxies = urllib.request.getproxies()
    return (url.startswith("http://") and host is not None
            and ("http" not in proxies or bool(urllib.request.proxy_bypass(host))))


def directory_source(root: str | os.PathLike[str]) -> tiles.Fetch:
    """Read tlog-tiles paths from a published directory (the paths are checked first)."""
    base = Path(root)

    def fetch(path: str) -> bytes:
        if path != "checkpoint":
            tiles.parse_tile_path(path)  # FormatError for anything but a tile path
        try:
            return (base / path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise FileNotFoundError(path) from None
        except OSError as err:
            raise FetchError("log.fetch", f"cannot read {path}: {err}", field=str(base)) from None

    return fetch


def source_for(url_or_dir: str) -> tiles.Fetch:
    if url_or_dir.startswith(("http://", "https://")):
        return http_source(url_or_dir)
    if not Path(url_or_dir).is_dir():
        raise FetchError("log.fetch", "not a URL or a directory", field="source",
                         got=url_or_dir)
    return directory_source(url_or_dir)


@dataclass(frozen=True)
class VerifiedCheckpoint:
    """A checkpoint whose log signature (and, with a policy, quorum) verified."""

    checkpoint: Checkpoint
    note: bytes
    quorum: QuorumResult | None = None


class LogClient:
    """Verify and read one log (see the module docstring)."""

    def __init__(self, fetch: tiles.Fetch, log_verifier: NoteVerifier, *,
                 origin: str | None = None, policy: WitnessPolicy | None = None,
                 store: CheckpointStore | None = None) -> None:
        self.fetch = fetch
        self.log_verifier = log_verifier
        self.origin = origin if origin is not None else log_verifier.name
        self.policy = policy
        self.store = store
        # Hash tiles read for inclusion proofs, kept across prove() calls: a tile of one
        # (level, index, width) never changes in an append-only log, and every proof built
        # from them is verified against a signed root, so a cached tile can only make a
        # proof fail, never pass; the cache is emptied when one fails.
        self._proof_tiles = tile_reader.TileCache()

    def _get(self, path: str) -> bytes:
        try:
            return self.fetch(path)
        except FileNotFoundError:
            raise FetchError("log.fetch", "not found on the log", field=path) from None

    def verify_note(self, note: bytes) -> VerifiedCheckpoint:
        cp, _ = open_checkpoint(note, self.log_verifier, self.origin)
        quorum = None
        if self.policy is not None:
            quorum = check_quorum(note, self.policy, [self.log_verifier])
        return VerifiedCheckpoint(cp, note, quorum)

    def checkpoint(self) -> VerifiedCheckpoint:
        """Fetch and verify the log's current checkpoint (no state involved)."""
        return self.verify_note(self._get("checkpoint"))

    def reader(self, size: int,
               cache: tile_reader.TileCache | None = None) -> tile_reader.TileReader:
        def fetch(path: str) -> bytes:
            return self.fetch(path)

        return tile_reader.TileReader(fetch, size, cache)

    def fetch_consistency(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 PROOF(old_size, D[0:new_size]) built from the log's hash tiles (a
        :data:`transparency_log.client.checkpoint_store.ConsistencyFetch`)."""
        return self.reader(new_size).consistency_proof(old_size)

    def check_consistent(self, new: VerifiedCheckpoint) -> ConsistencyResult:
        """Compare ``new`` with the stored checkpoint without moving the store: ConsistencyError
        (with the evidence kept) unless one extends the other (:class:`CheckpointStore`)."""
        if self.store is None:
            raise ValueError("no checkpoint store")
        return self.store.check(new.note, new.checkpoint, self.fetch_consistency)

    def update(self) -> tuple[VerifiedCheckpoint | None, VerifiedCheckpoint]:
        """Fetch and verify the current checkpoint, check it against the stored one, and
        move the store forward (compare-and-swap). Returns (previous, current)."""
        new = self.checkpoint()
        if self.store is None:
            return None, new
        stored = self.store.load(self.origin)
        old = self.verify_note(stored) if stored is not None else None
        self.store.update(new.note, new.checkpoint, self.fetch_consistency)
        return old, new

    def prove(self, entry: bytes, index: int, at: VerifiedCheckpoint) -> list[bytes]:
        """Build the inclusion proof of ``entry`` at ``index`` from tiles and verify it
        against the checkpoint root (ProofError ``log.inclusion`` otherwise). Tiles read
        for earlier proofs are reused (the fewest reads: consecutive proofs share the tree's
        right border and top tiles); a failed proof empties that cache, so the next one
        reads every tile again."""
        cp = at.checkpoint
        try:
            proof = self.reader(cp.size, self._proof_tiles).inclusion_proof(index)
            merkle.verify_inclusion(index, cp.size, merkle.leaf_hash(entry), proof, cp.root)
        except ProofError as err:
            self._proof_tiles.clear()
            raise ProofError("log.inclusion", "entry is not in the log at this index",
                             expected_root=err.expected_root,
                             calculated_root=err.calculated_root) from None
        except FormatError:  # a tile of the wrong size, an index out of range
            self._proof_tiles.clear()
            raise
        return proof

    def entries(self, start: int, end: int, size: int) -> Iterator[tuple[int, bytes]]:
        """``(index, entry)`` for ``start <= index < end`` from the bundles of tree ``size``."""
        for bundle_index in range(start // tiles.TILE_WIDTH,
                                  (end + tiles.TILE_WIDTH - 1) // tiles.TILE_WIDTH):
            width = tiles.tile_width(size, 0, bundle_index)
            data = self._bundle(bundle_index, width)
            first = bundle_index * tiles.TILE_WIDTH
            for i, e in enumerate(tiles.decode_entry_bundle(data, width)):
                if start <= first + i < end:
                    yield first + i, e

    def _bundle(self, index: int, width: int) -> bytes:
        try:
            return self.fetch(tiles.entries_path(index, width))
        except FileNotFoundError:
            if width == tiles.TILE_WIDTH:
                raise FetchError("log.fetch", "entry bundle missing",
                                 field=tiles.entries_path(index)) from None
            # the partial bundle may have been replaced by a fuller one
            full = self._get(tiles.entries_path(index))
            return tiles.encode_entry_bundle(tiles.decode_entry_bundle(full)[:width])


@dataclass(frozen=True)
class MonitorResult:
    previous: Checkpoint | None
    current: Checkpoint
    new_entries: int
    checked_tiles: int
    verified: VerifiedCheckpoint | None = None  # the checkpoint the log presented


def monitor(client: LogClient, *, progress: Callable[[int, int], None] | None = None,
            prefetch: int = 8, from_start: bool = False,
            on_entries: Callable[[int, list[bytes]], None] | None = None) -> MonitorResult:
    """Follow the log one step: verify the checkpoint, its consistency with the stored one,
    then download every entry bundle since the stored size (everything the first time, or
    with ``from_start``), recompute every leaf hash, every hash tile at every level and the
    root, and compare them with what the log serves. Moves the stored checkpoint forward only
    when all matched.

    ``on_entries(first_index, entries)`` sees each bundle's entries, in log order, once their
    leaf hashes matched the level-0 tile; they are proven only when monitor returns (the root
    check comes last). With ``from_start`` an older but consistent checkpoint (a stale cache)
    is recomputed too; otherwise monitor stays at the stored one and reads nothing.

    Bundles and level-0 tiles are fetched ``prefetch`` ahead by a small thread pool. Raises
    ConsistencyError, or ProofError ``log.tiles`` naming the first tile that does not match.
    """
    stored = client.store.load(client.origin) if client.store is not None else None
    old = client.verify_note(stored) if stored is not None else None
    new = client.checkpoint()
    if old is not None:
        client.check_consistent(new)
        if new.checkpoint.size < old.checkpoint.size and not from_start:  # stale: stay
            return MonitorResult(old.checkpoint, old.checkpoint, 0, 0, new)
    start = old.checkpoint.size if old is not None and not from_start else 0
    size = new.checkpoint.size
    checker = _TileChecker(client, size)
    first, end = start // tiles.TILE_WIDTH, -(-size // tiles.TILE_WIDTH)
    with contextlib.closing(_tile_pairs(client, checker, first, end, prefetch)) as pairs:
        for b, (bundle, served) in enumerate(pairs, first):
            width = tiles.tile_width(size, 0, b)
            if on_entries is None:
                hashes = tiles.bundle_leaf_hashes(bundle, width)
            else:
                entries, hashes = tiles.bundle_entries_and_leaf_hashes(bundle, width)
            checker.check(0, b, hashes, served)
            if on_entries is not None:
                on_entries(b * tiles.TILE_WIDTH, entries)
            if width == tiles.TILE_WIDTH:
                checker.push(1, b, _fold(hashes))
            else:  # the last, partial tile (checked above): kept for the root
                checker.border[0] = (b * tiles.TILE_WIDTH, hashes)
            if progress is not None:
                progress(min(size, (b + 1) * tiles.TILE_WIDTH) - start, size - start)
    root = checker.finish()
    if root != new.checkpoint.root:
        raise ProofError(CHECK_TILES, "entries do not hash to the checkpoint root",
                         expected_root=new.checkpoint.root, calculated_root=root)
    if client.store is not None and (old is None or size > old.checkpoint.size):
        if not client.store.compare_and_swap(client.origin, stored, new.note):
            raise ConsistencyError(CHECK_CONSISTENCY, "stored checkpoint changed "
                                   "concurrently; run again", field="state")
    return MonitorResult(old.checkpoint if old else None, new.checkpoint, size - start,
                         checker.checked, new)


def _tile_pairs(client: LogClient, checker: _TileChecker, first: int, end: int,
                prefetch: int) -> Iterator[tuple[bytes, bytes]]:
    """``(entry bundle, level-0 tile)`` for bundles ``first .. end - 1`` of the checked size,
    in order. Full ones are streamed: by the source's ``many`` (pipelined HTTP) when it has
    one, else fetched ``prefetch`` ahead by a small thread pool; the last, partial pair
    (which may have been replaced by a full one) is fetched on its own."""
    size = checker.size
    full_end = min(end, size // tiles.TILE_WIDTH)
    many = getattr(client.fetch, "many", None)
    if many is not None and first < full_end:
        paths = [p for b in range(first, full_end)
                 for p in (tiles.entries_path(b), tiles.tile_path(0, b))]
        stream = many(paths)
        try:
            for bundle in stream:
                yield bundle, next(stream)
        except FileNotFoundError as err:
            path = str(err.args[0]) if err.args else "?"
            what = "entry bundle" if path.startswith("tile/entries/") else "hash tile"
            raise FetchError("log.fetch", f"{what} missing", field=path) from None
        finally:
            stream.close()
        first = full_end

    def fetch_pair(b: int) -> tuple[bytes, bytes]:
        width = tiles.tile_width(size, 0, b)
        return client._bundle(b, width), checker.served(0, b, width)

    if end - first == 1:  # one pair (the partial one after a stream): no pool for it
        yield fetch_pair(first)
        return
    with ThreadPoolExecutor(max_workers=max(1, min(prefetch, 8))) as pool:
        window: deque[Future[tuple[bytes, bytes]]] = deque()
        nxt = first
        for _ in range(first, end):
            while nxt < end and len(window) < prefetch:
                window.append(pool.submit(fetch_pair, nxt))
                nxt += 1
            yield window.popleft().result()


def _fold(hashes: list[bytes]) -> bytes:
    """The root of a power-of-two run of hashes (folded back to back, :func:`merkle.fold_bytes`)."""
    return merkle.fold_bytes(b"".join(hashes))


class _TileChecker:
    """Recomputed hashes of the tile levels above 0, checked against the served tiles as
    each tile fills up; the last (partial) tile of every level is kept to derive the root.

    ``last[L] = (position of its first hash at tile level L, hashes)`` for the levels above
    0, ``border[0]`` the same for level 0's partial tile, which is checked on arrival.
    """

    def __init__(self, client: LogClient, size: int) -> None:
        self.client = client
        self.size = size
        self.last: dict[int, tuple[int, list[bytes]]] = {}
        self.border: dict[int, tuple[int, list[bytes]]] = {}
        self.checked = 0

    def served(self, level: int, index: int, width: int) -> bytes:
        path = tiles.tile_path(level, index, width)
        try:
            return self.client.fetch(path)
        except FileNotFoundError:
            if width == tiles.TILE_WIDTH:
                raise FetchError("log.fetch", "hash tile missing", field=path) from None
            return self.client._get(tiles.tile_path(level, index))[:width * merkle.HASH_SIZE]

    def check(self, level: int, index: int, hashes: list[bytes], served: bytes) -> None:
        if b"".join(hashes) != served:
            raise ProofError(CHECK_TILES, "hash tile does not match the entries",
                             field=tiles.tile_path(level, index, len(hashes)))
        self.checked += 1

    def push(self, level: int, position: int, h: bytes) -> None:
        """Add the hash at ``position`` of tile level ``level``; check and fold full tiles."""
        index = position // tiles.TILE_WIDTH
        first, hashes = self.last.get(level, (index * tiles.TILE_WIDTH, []))
        if first // tiles.TILE_WIDTH != index:  # pragma: no cover - tiles fill in order
            raise ProofError(CHECK_TILES, "tile level out of order", field=f"level {level}")
        if not hashes and position % tiles.TILE_WIDTH:
            # Resuming mid-tile: the hashes before ours come from the served tile. The root
            # check at the end covers them (it depends on every one of them).
            width = tiles.tile_width(self.size, level, index)
            hashes = tiles.decode_hash_tile(self.served(level, index, width), width)[
                :position % tiles.TILE_WIDTH]
        hashes.append(h)
        if len(hashes) == tiles.TILE_WIDTH:
            self.check(level, index, hashes, self.served(level, index, tiles.TILE_WIDTH))
            self.last.pop(level, None)
            self.push(level + 1, index, _fold(hashes))
        else:
            self.last[level] = (first, hashes)

    def finish(self) -> bytes:
        """Check the partial tiles and compute the root from the kept border."""
        for level, (first, hashes) in sorted(self.last.items()):
            index = first // tiles.TILE_WIDTH
            width = tiles.tile_width(self.size, level, index)
            if len(hashes) != width:
                raise ProofError(CHECK_TILES, "tile level has the wrong width",
                                 field=f"level {level}", got=len(hashes), want=width)
            self.check(level, index, hashes, self.served(level, index, width))
        self.border.update(self.last)
        fallback = self.client.reader(self.size)

        def read(level: int, index: int) -> bytes:
            tile_level, sub = divmod(level, tiles.TILE_HEIGHT)
            start, n = index << sub, 1 << sub
            kept = self.border.get(tile_level)
            if kept is not None and kept[0] <= start and start + n <= kept[0] + len(kept[1]):
                return _fold(kept[1][start - kept[0]:start - kept[0] + n])
            return fallback.read(level, index)  # covered by the root check

        return merkle.subtree_hash(0, self.size, read)


__all__ = [
    "CheckpointStore",
    "HttpSource",
    "LogClient",
    "MonitorResult",
    "VerifiedCheckpoint",
    "directory_source",
    "http_source",
    "monitor",
    "source_for",
]
