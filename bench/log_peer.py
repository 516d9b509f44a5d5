"""The log rows' peer (issue 15): aics-tlog, run by bench/log_rows_bench.py in a venv of its own
(it needs Python >= 3.12; see bench/peers.md), timed against references in its own process."""

from __future__ import annotations

import inspect

from bench.rfc6962_reference import reference_root
from bench.vendor_ratio import run_peer

PEER_AUDIT = "aics-tlog 2.92x (from the issue)"
PEER_PROOF = "aics-tlog 929 ms (from the issue)"

# aics-tlog (PyPI; needs Python >= 3.12) over the same entries, in its own process: its
# materialised tiles in memory, ``audit_tiles`` (every tile and entry bundle authenticated
# against the root) over the same pure-Python RFC 6962 root, and inclusion proofs built from
# tiles through a new ``VerifiedTileReader`` each (cold, as our cold row) and verified.
PEER_SCRIPT = r"""
from __future__ import annotations
import gc, hashlib, json, random, statistics, sys, time
from aics_tlog.tiles import MemoryTileReader, inclusion_proof_from_tiles, materialise_tiles
from aics_tlog.tree import verify_leaf_inclusion
from aics_tlog.verified import VerifiedTileReader, audit_tiles
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
n, size, repeat, proofs = (int(a) for a in sys.argv[1:5])
pad = b"\xa5" * max(0, size - 8)
entries = [i.to_bytes(8, "big") + pad for i in range(n)]
# REFERENCE_ROOT
reader = MemoryTileReader(materialise_tiles(entries))
def timed(fn):
    gc.collect(); gc.disable()
    try:
        t = time.perf_counter(); out = fn(); return time.perf_counter() - t, out
    finally:
        gc.enable()
ratios = []
for _ in range(repeat):
    ref_s, root = timed(lambda: reference_root(entries))
    audit_s, _ = timed(lambda: audit_tiles(reader, n, root))
    ratios.append(audit_s / ref_s)
rng = random.Random(7)
proof_ms = []
for i in [rng.randrange(n) for _ in range(proofs)]:
    def prove(i=i):
        p = inclusion_proof_from_tiles(VerifiedTileReader(reader, n, root), i, n)
        assert verify_leaf_inclusion(entries[i], i, n, p, root)
    proof_ms.append(timed(prove)[0] * 1e3)
key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
pub, msg = key.public_key(), b"x" * 120
sig = key.sign(msg)
t = time.perf_counter()
for _ in range(2000):
    pub.verify(sig, msg)
ed_us = (time.perf_counter() - t) / 2000 * 1e6
print(json.dumps({"audit_ratio": statistics.median(ratios), "proof_ms": statistics.median(proof_ms),
                  "ed25519_us": ed_us}))
"""


def peer_figures(python: str | None, leaves: int, entry_size: int, repeat: int,
                 proofs: int = 5) -> dict | str:  # type: ignore[type-arg]
    """aics-tlog on a log of the same ``leaves`` entries: {"audit_ratio", "proof_ms",
    "ed25519_us"}, or why it was not run."""
    if python is None:
        return "not run: no aics-tlog venv given (--peer-python; it needs Python >= 3.12)"
    script = PEER_SCRIPT.replace("# REFERENCE_ROOT\n", inspect.getsource(reference_root))
    return run_peer(python, script, [str(leaves), str(entry_size), str(repeat), str(proofs)],
                    what="aics-tlog", timeout=3600)


def peer_texts(got: dict | str) -> tuple[str, str]:  # type: ignore[type-arg]
    """(audit, proof) peer cells."""
    if isinstance(got, str):
        return f"{got} (issue: {PEER_AUDIT})", f"{got} (issue: {PEER_PROOF})"
    return (f"aics-tlog {got['audit_ratio']:.2f}x (audit_tiles over the same reference root)",
            f"aics-tlog {got['proof_ms']:.1f} ms (new VerifiedTileReader per proof; its Ed25519"
            f" verify {got['ed25519_us']:.1f} µs)")
