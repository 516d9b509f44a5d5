"""Bench: the log rows of issue 15, each as a ratio to a reference timed in the same process.

Rows (these machines are noisy: every figure is next to its reference, measured interleaved):

1. **whole-log audit** of a log of ``--leaves`` entries (``--entry-size`` bytes each, served
   as C2SP tiles from memory by a source with ``many``, like the pipelined HTTP source):
   the log level of ``verifier audit`` (steps 1-3 of :meth:`verifier.audit.Auditor.run`:
   :func:`transparency_log.client.monitor` from the start, with the entries kept) over the
   time of the **pure-Python RFC 6962 root** of the same entries on the same interpreter
   (``hashlib`` leaf hashes, then pairwise levels: the least any replay can do).
   Best of ``--repeat`` runs each. Peer: aics-tlog 2.92x (from the issue: it needs
   Python >= 3.12 and is not installable here).
2. **inclusion proof built from tiles + verified** in the same tree:
   :meth:`transparency_log.client.LogClient.prove`, median of ``--runs`` random indices, in
   ms, next to one Ed25519 verify: cold (a new client each proof: no tile cached) and warm
   (one client: the tiles of earlier proofs are reused, so mostly the leaf's tiles are read).
   Peer: aics-tlog 929 ms (from the issue).
3. **checkpoint + 2 cosignatures + inclusion proof** (:func:`transparency_log.tlog_proof.
   verify_tlog_proof` with a 2-of-2 witness policy, 20-hash path) over **one bare Ed25519
   verify** (``cryptography``, key loaded once); it contains 3 of them.
4. **entry open** (what audit and the verifier's log checks do per release entry: DSSE parse,
   RFC 8785 decode, statement parse, one Ed25519 verify) over one bare Ed25519 verify.

Run: ``.venv/bin/python bench/log_rows_bench.py [--leaves N] [--entry-size B] [--runs R]
[--repeat K] [--skip-audit]``. 10^6 leaves take ~1 GiB of memory and minutes.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from note_bench import build, timed  # noqa: E402

from transparency_log import tiles  # noqa: E402
from transparency_log.checkpoint import Checkpoint, sign_checkpoint  # noqa: E402
from transparency_log.client import LogClient, VerifiedCheckpoint, monitor  # noqa: E402
from transparency_log.cosignature import (  # noqa: E402
    CosignatureSigner,
    cosignature,
    generate_cosigner_keys,
)
from transparency_log.note import Signer, Verifier, append_signatures, generate_keys  # noqa: E402
from transparency_log.tlog_proof import TlogProof, verify_tlog_proof  # noqa: E402
from transparency_log.witness_policy import parse_witness_policy  # noqa: E402

ORIGIN = "bench.example/log"
PEER_AUDIT = "aics-tlog 2.92x (from the issue)"
PEER_PROOF = "aics-tlog 929 ms (from the issue)"


def make_entries(n: int, size: int) -> list[bytes]:
    pad = b"\xa5" * max(0, size - 8)
    return [i.to_bytes(8, "big") + pad for i in range(n)]


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


class MemorySource:
    """A tlog-tiles source over a dict (``many`` streams, as the pipelined HTTP source)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def __call__(self, path: str) -> bytes:
        try:
            return self.files[path]
        except KeyError:
            raise FileNotFoundError(path) from None

    def many(self, paths: Sequence[str]) -> Iterator[bytes]:
        for p in paths:
            yield self(p)


def build_tiles(entries: Sequence[bytes]) -> tuple[dict[str, bytes], bytes]:
    """Every entry bundle and hash tile of the log of ``entries``, and its root."""
    files: dict[str, bytes] = {}
    w = tiles.TILE_WIDTH
    for b in range(0, len(entries), w):
        chunk = entries[b:b + w]
        files[tiles.entries_path(b // w, len(chunk))] = tiles.encode_entry_bundle(chunk)
    sha = hashlib.sha256
    hashes = [sha(b"\x00" + e).digest() for e in entries]
    level = 0
    while hashes:
        for t in range(0, len(hashes), w):
            chunk = hashes[t:t + w]
            files[tiles.tile_path(level, t // w, len(chunk))] = b"".join(chunk)
        up = []
        for t in range(0, len(hashes) - w + 1, w):
            run = hashes[t:t + w]
            while len(run) > 1:
                run = [sha(b"\x01" + run[i] + run[i + 1]).digest() for i in range(0, len(run), 2)]
            up.append(run[0])
        hashes, level = up, level + 1
    return files, reference_root(entries)


def audit_log_level(source: MemorySource, verifier: Verifier) -> int:
    """What :meth:`verifier.audit.Auditor.run` does at the log level (steps 1-3): the
    monitor from the start, every entry kept for the entry level."""
    kept: list[bytes] = []

    def collect(first: int, batch: list[bytes]) -> None:
        del kept[first:]
        kept.extend(batch)

    result = monitor(LogClient(source, verifier), from_start=True, on_entries=collect)
    assert len(kept) == result.current.size
    return len(kept)


def best(fn: Callable[[], object], repeat: int) -> float:
    out = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leaves", type=int, default=100_000)
    ap.add_argument("--entry-size", type=int, default=256)
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-audit", action="store_true", help="rows 2-4 only")
    args = ap.parse_args()

    ed_key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    ed_pub = ed_key.public_key()
    msg = b"x" * 120
    ed_sig = ed_key.sign(msg)
    ed_us = timed(lambda: ed_pub.verify(ed_sig, msg), args.runs * 4)[0]

    rows: list[tuple[str, str, str, str]] = []

    build_s = tree_rows(args, ed_us, rows)
    # row 3: checkpoint + 2 cosignatures + a real 20-hash path in a 10^6 tree
    rows.append(tlog_proof_row(args.runs, ed_us))
    rows.append(entry_open_row(args.runs, ed_us))

    print(f"built {args.leaves:,}-leaf tile tree in {build_s:.1f} s; "
          f"best of {args.repeat} (audit), median of {args.runs} (others)")
    width = max(len(r[0]) for r in rows)
    print(f"{'row':<{width}}  {'attestlog':>34}  {'reference (same process)':<42}  peer")
    for name, got, ref, peer in rows:
        print(f"{name:<{width}}  {got:>34}  {ref:<42}  {peer}")


def tree_rows(args: argparse.Namespace, ed_us: float,
              rows: list[tuple[str, str, str, str]]) -> float:
    """Rows 1 and 2 over a tile tree of ``--leaves`` entries; returns its build time."""
    log_skey, log_vkey = generate_keys(ORIGIN, seed=bytes(32))
    signer, verifier = Signer(log_skey), Verifier(log_vkey)
    t0 = time.perf_counter()
    entries = make_entries(args.leaves, args.entry_size)
    files, root = build_tiles(entries)
    cp = Checkpoint(ORIGIN, args.leaves, root)
    files["checkpoint"] = sign_checkpoint(cp, signer)
    build_s = time.perf_counter() - t0
    source = MemorySource(files)
    client = LogClient(source, verifier)

    if not args.skip_audit:
        ref_s = audit_s = float("inf")
        for _ in range(args.repeat):  # interleaved, best of each
            ref_s = min(ref_s, best(lambda: reference_root(entries), 1))
            audit_s = min(audit_s, best(lambda: audit_log_level(source, verifier), 1))
        rows.append((f"whole-log audit, log level, {args.leaves:,} x {args.entry_size} B",
                     f"{audit_s / ref_s:.2f}x ({args.leaves / audit_s:,.0f} leaves/s)",
                     f"pure-Python RFC 6962 root {args.leaves / ref_s:,.0f} leaves/s",
                     PEER_AUDIT))

    vcp = VerifiedCheckpoint(cp, files["checkpoint"])
    rng = random.Random(7)
    picks = [rng.randrange(args.leaves) for _ in range(args.runs)]
    for label, fresh in (("cold: a new client each proof", True),
                         ("warm: one client, random indices", False)):
        samples = []
        for i in picks:
            t0 = time.perf_counter()
            (LogClient(source, verifier) if fresh else client).prove(entries[i], i, vcp)
            samples.append(time.perf_counter() - t0)
        proof_ms = statistics.median(samples) * 1e3
        rows.append((f"inclusion proof from tiles + verified, {args.leaves:,}, {label}",
                     f"{proof_ms:.3f} ms = {proof_ms * 1e3 / ed_us:.1f}x Ed25519",
                     f"1 Ed25519 verify {ed_us:.1f} µs", PEER_PROOF))
    return build_s



def tlog_proof_row(runs: int, ed_us: float) -> tuple[str, str, str, str]:
    leaves = 1_000_000
    index = leaves * 2 // 3 + 1
    entry, path, root = build(leaves, index)
    log_skey, log_vkey = generate_keys("example.com/log", seed=bytes(32))
    wits = [generate_cosigner_keys(f"w{i}.example", seed=bytes([i + 1]) * 32) for i in range(2)]
    cp = Checkpoint("example.com/log", leaves, root)
    note = append_signatures(
        sign_checkpoint(cp, Signer(log_skey)),
        [cosignature(cp.to_text(), CosignatureSigner(s), 1700000000) for s, _ in wits])
    policy = parse_witness_policy(
        (f"log {log_vkey}\n" + "".join(f"witness W{i} {v}\n" for i, (_, v) in enumerate(wits))
         + "group both all W0 W1\nquorum both\n").encode())
    verifier = Verifier(log_vkey)
    proof = TlogProof(index, tuple(path), note)
    verify_tlog_proof(entry, proof, verifier, policy)
    us = timed(lambda: verify_tlog_proof(entry, proof, verifier, policy), runs * 2)[0]
    return ("checkpoint + 2 cosignatures + inclusion proof (10^6)",
            f"{us:.1f} µs = {us / ed_us:.2f}x Ed25519", f"1 Ed25519 verify {ed_us:.1f} µs",
            "-")


def entry_open_row(runs: int, ed_us: float) -> tuple[str, str, str, str]:
    """Open distinct release entries (a new one each run, so no cache can answer)."""
    from log_fixtures import RELEASE_KEY, release_entry

    from attest.release.dsse import open_entry
    keys = [RELEASE_KEY.public]
    pool = iter([release_entry(1000 + i) for i in range(runs + 1)])
    entry = next(pool)
    open_entry(entry, keys)
    us = timed(lambda: open_entry(next(pool), keys), runs)[0]
    return (f"open one release entry ({len(entry)} B)", f"{us:.1f} µs = {us / ed_us:.2f}x Ed25519",
            f"1 Ed25519 verify {ed_us:.1f} µs", "-")


if __name__ == "__main__":
    main()
