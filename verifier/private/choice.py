"""The client's choice of node (issue 13, "Non-targetability"): among the nodes whose
evidence verified, one drawn with the client's own randomness, weighted only by what the
evidence attests.

Definition (the privacy analyses of PCC-style services): for servers S with capacities
C(S_i) and any subset T an attacker controls, the system is non-targetable when the
probability that a given user's request is processed by T is ΣC(T)/ΣC(S). The client makes
this hold against a hostile router by choosing itself:

- the weight of a node is its **attested** GPU count (the GPU evidence items that verified,
  each from a distinct device: check ``device.distinct``), never the directory's ``gpus``
  claim, never its order;
- a node that attests no GPU has weight 0 and is not a candidate;
- the draw uses the client's randomness (``rng(n) -> n bytes``, :func:`os.urandom` by
  default; tests inject a seeded one) by rejection sampling, so it is exactly proportional;
- fewer than ``min_nodes`` candidates (``[private] min_nodes``): the client refuses to send
  (``private.min_nodes``, a PolicyError) rather than let a router that withheld the others
  steer it. docs/threats.md says how far withholding can still raise the router's share.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from transparency_log.common.errors import PolicyError, PolicyFailure

__all__ = ["CHECK_MIN_NODES", "Rng", "Weighted", "choose", "uniform_below"]

CHECK_MIN_NODES = "private.min_nodes"

Rng = Callable[[int], bytes]
T = TypeVar("T")


@dataclass(frozen=True)
class Weighted(Generic[T]):
    """A candidate and its attested weight (GPU count)."""

    item: T
    weight: int


def uniform_below(n: int, rng: Rng = os.urandom) -> int:
    """A uniform integer in ``0..n-1`` from ``rng`` bytes (rejection sampling: no modulo bias)."""
    if n < 1:
        raise ValueError("n must be >= 1")
    if n == 1:
        return 0
    bits = (n - 1).bit_length()
    size = (bits + 7) // 8
    mask = (1 << bits) - 1
    while True:
        raw = rng(size)
        if len(raw) != size:
            raise ValueError(f"rng returned {len(raw)} bytes, want {size}")
        value = int.from_bytes(raw, "big") & mask
        if value < n:
            return value


def choose(candidates: Sequence[Weighted[T]], min_nodes: int, rng: Rng = os.urandom) -> T:
    """One candidate, with probability weight / Σweight over those with weight > 0.

    ``private.min_nodes`` (PolicyError) when fewer than ``min_nodes`` have weight > 0. The
    order of ``candidates`` does not change the distribution (the draw is over cumulative
    weights, and any order gives each candidate an interval of its own weight's length)."""
    live = [c for c in candidates if c.weight > 0]
    if len(live) < min_nodes:
        raise PolicyError([PolicyFailure(
            CHECK_MIN_NODES, "verified nodes with attested GPUs", len(live), f">= {min_nodes}",
            "too few nodes verified to choose among; refusing to send")])
    point = uniform_below(sum(c.weight for c in live), rng)
    for c in live:
        if point < c.weight:
            return c.item
        point -= c.weight
    raise AssertionError("unreachable: point < total weight")
