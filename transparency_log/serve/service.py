"""The log as a service: what ``tlog serve`` runs behind its HTTP front (server.py).

:class:`LogService` adapts a :class:`~transparency_log.log.lifecycle.Log` to the server's
:class:`~transparency_log.serve.server.ServedLog` and adds **witnessed publishing**:

1. at every interval the log integrates what was sequenced and signs a checkpoint of the new
   tree (the log key);
2. the checkpoint goes to every configured witness (C2SP tlog-witness ``add-checkpoint``,
   :class:`~transparency_log.witness.client.WitnessClient`), in parallel;
3. the returned cosignatures are attached and the result is checked against the log's own
   witness policy (c2sp.org/tlog-policy: the witnesses, groups and quorum; ``quorum none``
   for development). Only a checkpoint that meets the quorum is stored as *the* published
   checkpoint, which ``GET /checkpoint`` serves and ``?wait=proof`` proofs are built on.

Only the process that holds the log's **writer lock** (``LogStorage.try_writer_lock``:
``flock`` on the SQLite file, an advisory lock on PostgreSQL) publishes: a service that
does not hold it signs and stores nothing, and tries to take the lock again at the next
interval (a standby takes over when the publisher stops).

A checkpoint that does not reach the quorum is not published: the previous one stays, the
failure is logged, and the next interval tries again. Sequencing (``POST /add``) does not
depend on publishing: entries keep being accepted and acknowledged while witnesses are down.

Reads serve the C2SP tlog-tiles resources from the store: ``checkpoint`` (the published one),
hash tiles (a partial ``.p/W`` is the prefix of the stored, possibly wider, tile) and entry
bundles (encoded from the stored entries), only for what is integrated.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from transparency_log.common.errors import AttestlogError, FormatError
from transparency_log.common.throttled_log import ThrottledLog, one_line
from transparency_log.core import merkle, tiles
from transparency_log.core.checkpoint import Checkpoint, sign_checkpoint
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import NoteSignature, NoteSigner, append_signatures
from transparency_log.core.tlog_proof import TlogProof
from transparency_log.core.witness_policy import WitnessPolicy, check_quorum
from transparency_log.log.lifecycle import Log
from transparency_log.log.storage.base import StorageConflictError
from transparency_log.witness.client import WitnessClient

log = logging.getLogger("transparency_log.serve.service")
PUBLISHER_WARNING_INTERVAL = 60.0  # seconds between two lines of one repeated warning


class LogService:
    """A log, its signer, its witnesses and its quorum policy (see the module docstring)."""

    def __init__(self, the_log: Log, signer: NoteSigner, log_vkey: str, *,
                 witnesses: Sequence[WitnessClient] = (), policy: WitnessPolicy | None = None,
                 now: Callable[[], datetime], refresh_after: float = 60.0,
                 cache_bytes: int = 64 << 20) -> None:
        self.log = the_log
        self.signer = signer
        self.log_verifier = Verifier(log_vkey)
        self.witnesses = list(witnesses)
        self.policy = policy
        self.now = now
        self.refresh_after = refresh_after
        self._last_published: datetime | None = None
        self._publish_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self.witnesses)),
                                        thread_name_prefix="witness") if self.witnesses else None
        self.last_error: str | None = None
        self._cache = _ByteLRU(cache_bytes)
        self._throttled = ThrottledLog(log)
        # The publisher retries every interval (default 1 s): a witness that is down, or a
        # quorum that is not met, is one line a minute with a count, not one a second.
        self._publisher_log = ThrottledLog(log, interval=PUBLISHER_WARNING_INTERVAL)

    # -- ServedLog ---------------------------------------------------------------------------
    def add_entries(self, entries: Sequence[bytes]) -> list[int]:
        return self.log.add(entries)

    def read(self, path: str) -> bytes | None:
        if path == "checkpoint":
            return self.log.latest_checkpoint()
        hit = self._cache.get(path)
        if hit is not None:
            return hit
        data = self._read_tile(path)
        if data is not None and ".p/" not in path:
            self._cache.put(path, data)  # full tiles and bundles never change
        return data

    def _read_tile(self, path: str) -> bytes | None:
        try:
            tile = tiles.parse_tile_path(path)
        except FormatError:
            return None
        size = self.log.tree_state().size
        if tile.level == tiles.ENTRIES:
            start = tile.index * tiles.TILE_WIDTH
            if start + tile.width > size:
                return None
            return self.log.entry_bundle(tile.index, tile.width)
        assert isinstance(tile.level, int)
        data = self.log.storage.read_tile(tile.level, tile.index)
        want = tile.width * merkle.HASH_SIZE
        if data is None or len(data) < want:
            return None
        return data[:want]

    def proof(self, index: int) -> bytes | None:
        latest = self.log.storage.latest_checkpoint()
        if latest is None or index >= latest[0]:
            return None
        size, note = latest
        path = self.log.inclusion_proof(index, size)
        return TlogProof(index, tuple(path), note).to_text()

    # -- publishing --------------------------------------------------------------------------
    def published_size(self) -> int:
        latest = self.log.storage.latest_checkpoint()
        return -1 if latest is None else latest[0]

    def publish_once(self) -> bool:
        """Integrate, sign, gather cosignatures, publish if the quorum is met. Returns whether
        a new checkpoint was published. An unchanged tree is re-published (freshly cosigned)
        once ``refresh_after`` seconds have passed, so an idle log's checkpoint stays fresh
        for clients that bound the checkpoint age."""
        with self._publish_lock:
            if not self.holds_writer_lock():
                return False
            state = self.log.integrate()
            now = self.now()
            fresh = (self._last_published is not None
                     and (now - self._last_published).total_seconds() < self.refresh_after)
            if state.size == self.published_size() and fresh:
                return False
            note = sign_checkpoint(Checkpoint(self.log.origin, state.size, state.root),
                                   self.signer)
            cosigned = append_signatures(note, self._gather(note, state.size))
            if self.policy is not None:
                try:
                    check_quorum(cosigned, self.policy, [self.log_verifier])
                except AttestlogError as err:
                    self.last_error = str(err)
                    self._publisher_log.warning(
                        "quorum", f"checkpoint {state.size} not published: {one_line(err)}")
                    return False
            try:
                self.log.storage.write_checkpoint(state.size, cosigned)
            except StorageConflictError:  # another writer published a larger tree first
                return False
            self.log.storage.set_meta("checkpoint_time", now.isoformat())
            self._last_published = now
            self.last_error = None
            return True

    def holds_writer_lock(self) -> bool:
        """Whether this service may publish: it holds the log's writer lock, or just took it
        (logged: a standby taking over, or a lost lock taken back)."""
        storage = self.log.storage
        if storage.holds_writer_lock():
            return True
        if storage.try_writer_lock():
            log.warning("took the log's writer lock: this process now publishes checkpoints")
            return True
        return False

    def _gather(self, note: bytes, size: int) -> list[NoteSignature]:
        if not self.witnesses:
            return []
        assert self._pool is not None

        def proof_for(old: int) -> list[bytes]:
            return self.log.consistency_proof(old, size)

        def ask(w: WitnessClient) -> list[NoteSignature]:
            try:
                return w.cosign(note, size, proof_for)
            except AttestlogError as err:
                self._publisher_log.warning(f"witness {w.name}",
                                            f"witness {w.name}: {one_line(err)}")
                return []

        sigs: list[NoteSignature] = []
        for got in self._pool.map(ask, self.witnesses):
            sigs.extend(got)
        return sigs

    def run_publisher(self, stop: threading.Event, interval: float) -> None:
        """Publish every ``interval`` seconds until ``stop`` is set (a background thread)."""
        while True:
            try:
                self.publish_once()
            except Exception as err:  # keep publishing; the next round may succeed
                self.last_error = one_line(err)
                self._throttled.error("publish", f"publishing failed: {self.last_error}")
            if stop.wait(interval):
                return

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


class _ByteLRU:
    """A thread-safe LRU of immutable resources (full tiles and bundles), bounded in bytes."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: bytes) -> None:
        if len(value) > self.budget:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self.used += len(value)
            while self.used > self.budget:
                _, old = self._items.popitem(last=False)
                self.used -= len(old)
