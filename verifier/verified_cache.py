"""Bounded, thread-safe caches of verification outcomes (issue 15).

Three kinds of fact are cached, and nothing else:

- a **verified certificate path** (``chains``), keyed by the exact DER of every certificate and
  the fingerprints of the pinned roots, valid only inside the path's common validity window
  (the latest notBefore .. the earliest notAfter, RFC 5280 §4.1.2.5): a lookup at an instant
  outside the window misses, so the chain is verified again and its own time check refuses;
- a **verified signature** (``signatures``) over exact bytes by an exact key or certificate
  (a CRL by its issuer, TCB Info / QE Identity by the TCB signing certificate, a QE report by
  the PCK leaf). A signature does not depend on the time, so such an entry has no window; the
  time checks of the signed object (thisUpdate/nextUpdate, issueDate/nextUpdate) are not
  cached and run on every verification;
- a **composite** result (``collateral``): for TDX, the outcome of every collateral step for one
  exact collateral set under one exact PCK chain, with the windows of each instant it used,
  checked by its user before it is reused (verifier/tdx/verified_collateral.py).

Only successes are stored (a failed verification raises before ``put``), so a cache can never
turn a refusal into an acceptance. Entries are immutable; lookups take no lock, one lock
serializes the writes of each map; the maps are bounded (second-chance eviction, near
LRU). A step satisfied from a cache says so in the transcript (``source=cache``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

__all__ = ["CACHE_SOURCE", "DEFAULT_MAXSIZE", "VendorCaches", "VerifiedCache"]

K = TypeVar("K")
V = TypeVar("V")
CACHE_SOURCE = "cache"
DEFAULT_MAXSIZE = 512


class VerifiedCache(Generic[K, V]):
    """A bounded map from exact inputs to a verified outcome and the window in which it holds.

    A lookup takes no lock (issue 15: a warm TDX verification makes some 17 lookups): a
    builtin dict's ``get`` is atomic, the keys are tuples of bytes and strings (hashed and
    compared without running Python code) and an entry is an immutable tuple. Inserts and
    evictions are serialized by the lock. Eviction is second-chance (CLOCK), close to LRU: an
    entry read since it was last considered is kept once more, the oldest unread one goes.
    """

    def __init__(self, maxsize: int = DEFAULT_MAXSIZE) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        # key -> (value, not_before, not_after); insertion order is the eviction order
        self._entries: dict[K, tuple[V, datetime | None, datetime | None]] = {}
        self._read: dict[K, bool] = {}  # keys read since last considered for eviction
        self._lock = threading.Lock()

    def get(self, key: K, at: datetime | None = None) -> V | None:
        """The outcome for ``key`` if it holds at ``at`` (None for a time-independent fact);
        None on a miss or outside the window (the caller then verifies again)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, not_before, not_after = entry
        if at is None:
            if not_before is not None or not_after is not None:
                return None  # a windowed fact needs a time
        elif ((not_before is not None and at < not_before)
              or (not_after is not None and not_after < at)):
            return None
        self._read[key] = True
        return value

    def put(self, key: K, value: V, not_before: datetime | None = None,
            not_after: datetime | None = None) -> None:
        """Record a verified outcome (call only after the verification succeeded)."""
        with self._lock:
            entries, read = self._entries, self._read
            entries.pop(key, None)
            entries[key] = (value, not_before, not_after)
            while len(entries) > self.maxsize:
                oldest = next(iter(entries))
                kept = entries.pop(oldest)
                if read.pop(oldest, False):
                    entries[oldest] = kept  # read since: a second chance, at the end
            if len(read) > self.maxsize:  # marks a lookup left for an entry evicted meanwhile
                for gone in [k for k in list(read) if k not in entries]:
                    read.pop(gone, None)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._read.clear()


@dataclass
class VendorCaches:
    """The verified-chain and verified-signature caches one verifier shares across calls
    (and threads). A fresh instance is a cold verifier."""

    chains: VerifiedCache[object, object] = field(default_factory=VerifiedCache)
    signatures: VerifiedCache[object, bool] = field(default_factory=VerifiedCache)
    # composite results: one entry per exact collateral set, checked against its own windows
    # by its user (verifier/tdx/verified_collateral.py)
    collateral: VerifiedCache[object, object] = field(default_factory=VerifiedCache)

    def signature_known(self, key: object) -> bool:
        """Whether this exact signature over these exact bytes verified before."""
        return self.signatures.get(key) is True

    def signature_verified(self, key: object) -> None:
        self.signatures.put(key, True)
