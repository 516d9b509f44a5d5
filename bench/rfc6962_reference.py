"""The reference the log rows are timed against (issue 15): MTH(D[0:n]) of RFC 6962 §2.1 in
plain Python. Imported by bench/log_rows_bench.py and sent as source to the peer's process
(bench/log_peer.py), so both sides time the very same function."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["reference_root"]


def reference_root(entries: Sequence[bytes]) -> bytes:
    """MTH(D[0:n]) of RFC 6962 §2.1 in plain Python: leaf hashes, then pairwise levels (an
    odd last node moves up unchanged, which is the same tree as the recursive split)."""
    sha = hashlib.sha256
    level = [sha(b"\x00" + e).digest() for e in entries]
    while len(level) > 1:
        nxt = [sha(b"\x01" + level[i] + level[i + 1]).digest()
               for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            nxt.append(level[-1])
        level = nxt
    return level[0] if level else sha(b"").digest()
