"""Parse once: bounded caches of pure parsers, keyed by the exact input bytes (issue 15).

A strict parser (bytes in, immutable value out, or FormatError) gives the same answer for the
same bytes every time, so a verifier that sees one checkpoint note, one release entry or one
statement again (every bundle of a node staples the same ones; audit and the verifier's log
checks look at each entry in several steps) may reuse the first parse. Only parsing is
cached, never a verification: signatures, proofs and policy still run on every call.

Rules that keep a cache from ever turning a refusal into an acceptance:

- the key is the input itself (``bytes`` only, compared by value): other bytes, even one bit,
  are parsed afresh;
- a refusal is never cached (:func:`functools.lru_cache` does not store exceptions): refused
  bytes are parsed, and refused, again each time;
- cached values are immutable (frozen dataclasses, tuples, bytes), so no caller can change
  what the next one gets;
- inputs over ``max_input`` bytes are not cached, and at most ``max_entries`` are kept (least
  recently used first out), so memory stays bounded. :func:`functools.lru_cache` is safe to
  share between threads.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["ObjectMemo", "clear_parse_caches", "frozen_value", "parse_once"]

T = TypeVar("T")
ObjT = TypeVar("ObjT")
_new = object.__new__

_CACHES: list[Any] = []


def parse_once(max_entries: int, max_input: int
               ) -> Callable[[Callable[[bytes], T]], Callable[[Any], T]]:
    """Decorate a pure ``parse(data: bytes) -> immutable value`` with a bounded cache."""

    def decorate(parse: Callable[[bytes], T]) -> Callable[[Any], T]:
        cached = functools.lru_cache(maxsize=max_entries)(parse)
        _CACHES.append(cached)

        @functools.wraps(parse)
        def wrapper(data: Any) -> T:
            if type(data) is bytes and len(data) <= max_input:
                return cached(data)
            return parse(data)

        wrapper.cache_info = cached.cache_info  # type: ignore[attr-defined]
        return wrapper

    return decorate


def clear_parse_caches() -> None:
    """Empty every parse cache (tests and benchmarks measuring cold parses)."""
    for cache in _CACHES:
        cache.cache_clear()


def frozen_value(cls: type[T], values: dict[str, Any]) -> T:
    """An instance of the frozen dataclass ``cls`` with exactly ``values`` as its fields,
    without running ``__init__`` / ``__post_init__``: for a parser that has already checked
    every field (the same value ``cls(**values)`` gives, at half the cost; issue 15). Never
    for values a caller supplied unchecked."""
    obj = _new(cls)
    obj.__dict__.update(values)
    return obj


class ObjectMemo(Generic[ObjT, T]):
    """``compute(obj)`` remembered per object, for objects that hash slowly or not by value
    (a parsed certificate re-encodes its DER to hash): keyed by the object's identity, each
    entry holding the object itself, so an id is never reused while its entry lives. At most
    ``maxsize`` entries (the oldest first out). Lookups take no lock (a builtin dict's ``get``
    is atomic); inserts and evictions are serialized. ``compute`` must be a pure function of
    an immutable object."""

    def __init__(self, compute: Callable[[ObjT], T], maxsize: int) -> None:
        self._compute = compute
        self._maxsize = maxsize
        self._entries: dict[int, tuple[ObjT, T]] = {}
        self._lock = threading.Lock()

    def __call__(self, obj: ObjT) -> T:
        hit = self._entries.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        value = self._compute(obj)
        self.put(obj, value)
        return value

    def put(self, obj: ObjT, value: T) -> None:
        """Remember ``value`` for ``obj`` (a value the caller already has, e.g. the bytes an
        object was loaded from)."""
        with self._lock:
            self._entries[id(obj)] = (obj, value)
            while len(self._entries) > self._maxsize:
                del self._entries[next(iter(self._entries))]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
