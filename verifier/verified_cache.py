"""Bounded, thread-safe caches of verification outcomes (issue 15).

Two kinds of fact are cached, and nothing else:

- a **verified certificate path** (``chains``), keyed by the exact DER of every certificate and
  the fingerprints of the pinned roots, valid only inside the path's common validity window
  (the latest notBefore .. the earliest notAfter, RFC 5280 §4.1.2.5): a lookup at an instant
  outside the window misses, so the chain is verified again and its own time check refuses;
- a **verified signature** (``signatures``) over exact bytes by an exact key or certificate
  (a CRL by its issuer, TCB Info / QE Identity by the TCB signing certificate, a QE report by
  the PCK leaf). A signature does not depend on the time, so such an entry has no window; the
  time checks of the signed object (thisUpdate/nextUpdate, issueDate/nextUpdate) are not
  cached and run on every verification.

Only successes are stored (a failed verification raises before ``put``), so a cache can never
turn a refusal into an acceptance. Entries are immutable; one lock guards each map; the maps
are LRU-bounded. A step satisfied from a cache says so in the transcript (``source=cache``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

__all__ = ["CACHE_SOURCE", "DEFAULT_MAXSIZE", "VendorCaches", "VerifiedCache"]

K = TypeVar("K")
V = TypeVar("V")
CACHE_SOURCE = "cache"
DEFAULT_MAXSIZE = 512


@dataclass(frozen=True)
class _Entry(Generic[V]):
    value: V
    not_before: datetime | None
    not_after: datetime | None

    def holds_at(self, at: datetime | None) -> bool:
        if at is None:
            return self.not_before is None and self.not_after is None
        return ((self.not_before is None or self.not_before <= at)
                and (self.not_after is None or at <= self.not_after))


class VerifiedCache(Generic[K, V]):
    """An LRU map from exact inputs to a verified outcome and the window in which it holds."""

    def __init__(self, maxsize: int = DEFAULT_MAXSIZE) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, at: datetime | None = None) -> V | None:
        """The outcome for ``key`` if it holds at ``at`` (None for a time-independent fact);
        None on a miss or outside the window (the caller then verifies again)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or not entry.holds_at(at):
                return None
            self._entries.move_to_end(key)
            return entry.value

    def put(self, key: K, value: V, not_before: datetime | None = None,
            not_after: datetime | None = None) -> None:
        """Record a verified outcome (call only after the verification succeeded)."""
        with self._lock:
            self._entries[key] = _Entry(value, not_before, not_after)
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@dataclass
class VendorCaches:
    """The verified-chain and verified-signature caches one verifier shares across calls
    (and threads). A fresh instance is a cold verifier."""

    chains: VerifiedCache[object, object] = field(default_factory=VerifiedCache)
    signatures: VerifiedCache[object, bool] = field(default_factory=VerifiedCache)

    def signature_known(self, key: object) -> bool:
        """Whether this exact signature over these exact bytes verified before."""
        return self.signatures.get(key) is True

    def signature_verified(self, key: object) -> None:
        self.signatures.put(key, True)
