"""Decode an evidence bundle once per exact bytes (issue 15, "Parse once").

:func:`attest.formats.bundle.decode_bundle` is a pure function of the bytes: size cap, head
scan, CBOR decode, schema, deterministic-encoding comparison (docs/formats.md, "Evidence bundle
(CBOR)"). A client that verifies the same bundle again (a saved bundle re-verified, a
verifier serving one node's cached answer, the warm row of bench/verify_bench.py) may reuse the
first decode: :class:`BundleMemo` keeps the decoded :class:`EvidenceBundle` keyed by the
SHA-256 of the bundle bytes. Only the decode is reused; every check of the pipeline (nonce,
simulated, evidence, binding, log, policy) still runs on every verification.

Rules that keep the memo from ever turning a refusal into an acceptance:

- the key is SHA-256 of the exact bytes (with their length): other bytes, one bit apart, are
  decoded afresh;
- refusals are never stored: refused bytes are decoded, and refused, again each time;
- the stored value is immutable (a frozen dataclass of bytes, tuples and read-only maps), so
  no caller can change what the next one gets;
- bounded: at most ``max_entries`` bundles and ``max_bytes`` encoded bytes in all (least
  recently used first out); one lock guards it, so it may be shared between threads.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from attest.formats.bundle import EvidenceBundle, decode_bundle
from attest.formats.bundle_limits import MAX_BUNDLE_SIZE

__all__ = ["BUNDLE_MEMO", "BundleMemo"]


class BundleMemo:
    """An LRU map from (SHA-256, length) of bundle bytes to the decoded bundle."""

    def __init__(self, max_entries: int = 32, max_bytes: int = 8 * MAX_BUNDLE_SIZE) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be at least 1")
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._entries: OrderedDict[tuple[bytes, int], EvidenceBundle] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def _key(data: bytes, sha256: bytes | None) -> tuple[bytes, int]:
        return (hashlib.sha256(data).digest() if sha256 is None else bytes(sha256), len(data))

    def get(self, data: bytes, sha256: bytes | None = None) -> EvidenceBundle | None:
        """The bundle these exact bytes decoded to before, or None (never decoded, or
        forgotten). ``sha256``: the digest of ``data`` when the caller has already computed
        it (it must be exactly ``hashlib.sha256(data).digest()``)."""
        return self._lookup(self._key(data, sha256))

    def _lookup(self, key: tuple[bytes, int]) -> EvidenceBundle | None:
        with self._lock:
            bundle = self._entries.get(key)
            if bundle is not None:
                self._entries.move_to_end(key)
            return bundle

    def decode(self, data: bytes, sha256: bytes | None = None) -> EvidenceBundle:
        """:func:`decode_bundle` of ``data``, memoized: the stored bundle when these exact
        bytes were decoded before, else a strict decode (FormatError on refusal, never
        stored). ``sha256`` as for :meth:`get`."""
        data = bytes(data)
        key = self._key(data, sha256)
        hit = self._lookup(key)
        if hit is not None:
            return hit
        bundle = decode_bundle(data)  # outside the lock: raises on refusal, nothing stored
        if len(data) <= self.max_bytes:
            with self._lock:
                if key not in self._entries:
                    self._bytes += len(data)
                self._entries[key] = bundle
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                    (_, size), _ = self._entries.popitem(last=False)
                    self._bytes -= size
        return bundle

    def cache_clear(self) -> None:
        """Forget every decoded bundle (cold benches, tests)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    clear = cache_clear

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


BUNDLE_MEMO = BundleMemo()
"""The verifier's memo (verifier/pipeline.py, step 1 ``bundle.format``)."""
