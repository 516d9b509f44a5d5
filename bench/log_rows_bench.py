"""Bench: the log rows of issue 15, each as a ratio to a reference timed in the same process.

Rows (these machines are noisy: every figure is next to its reference, measured interleaved):

1. **whole-log audit** of a log of ``--leaves`` entries (``--entry-size`` bytes each, served
   as C2SP tiles from memory by a source with ``many``, like the pipelined HTTP source):
   the log level of ``verifier audit`` (steps 1-3 of :meth:`verifier.audit.Auditor.run`:
   :func:`transparency_log.client.log_client.monitor` from the start, with the entries kept)
   over the
   time of the **pure-Python RFC 6962 root** of the same entries on the same interpreter
   (``hashlib`` leaf hashes, then pairwise levels: the least any replay can do).
   CPU time of this process (both sides single-threaded here; wall time on a shared
   machine measures the other tenants too), ``--repeat`` alternated pairs. Peer
   (``--peer-python``, a Python >= 3.12 venv with aics-tlog, bench/peers.md): its
   ``audit_tiles`` over the same reference in its process.
2. **inclusion proof built from tiles + verified** in the same tree:
   :meth:`transparency_log.client.log_client.LogClient.prove`, median of ``--runs`` random
   indices, in
   ms, next to one Ed25519 verify: cold (a new client each proof: no tile cached) and warm
   (one client: the tiles of earlier proofs are reused, so mostly the leaf's tiles are read).
   Peer: aics-tlog's ``inclusion_proof_from_tiles`` through a new ``VerifiedTileReader``.
3. **checkpoint + 2 cosignatures + inclusion proof** (:func:`transparency_log.core.tlog_proof.
   verify_tlog_proof` with a 2-of-2 witness policy, 20-hash path) over **one bare Ed25519
   verify** (``cryptography``, key loaded once); it contains 3 of them. Twice: the same
   proof each call (a verifier seeing the checkpoint every bundle staples: its parse and the
   verified path are reused, the 3 signatures are checked every call), and with the parse
   caches and the verified-inclusion memo emptied before each call.
4. **entry open** (what audit and the verifier's log checks do per release entry: DSSE parse,
   RFC 8785 decode, statement parse, one Ed25519 verify) over one bare Ed25519 verify, the
   parse caches emptied before each.

Run: ``.venv/bin/python -m bench.log_rows_bench [--leaves N] [--entry-size B] [--runs R]
[--repeat K] [--skip-audit] [--peer-python P]``. 10^6 leaves take ~1 GiB of memory and minutes.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import itertools
import random
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from bench.log_peer import PEER_AUDIT, PEER_PROOF, peer_figures, peer_texts  # noqa: E402
from bench.note_bench import build  # noqa: E402
from bench.rfc6962_reference import reference_root  # noqa: E402
from bench.vendor_ratio import IssueRow  # noqa: E402
from transparency_log.client.log_client import LogClient, VerifiedCheckpoint, monitor  # noqa: E402
from transparency_log.core import merkle, tiles  # noqa: E402
from transparency_log.core.checkpoint import Checkpoint, sign_checkpoint  # noqa: E402
from transparency_log.core.cosignature import (  # noqa: E402
    CosignatureSigner,
    cosignature,
    generate_cosigner_keys,
)
from transparency_log.core.key_types import Verifier  # noqa: E402
from transparency_log.core.note import Signer, append_signatures, generate_keys  # noqa: E402
from transparency_log.core.tlog_proof import TlogProof, verify_tlog_proof  # noqa: E402
from transparency_log.core.witness_policy import parse_witness_policy  # noqa: E402

try:  # so that the same script measures the code before issue 15 too
    from transparency_log.common.parse_cache import clear_parse_caches
except ImportError:  # pragma: no cover
    def clear_parse_caches() -> None:
        pass


def clear_caches() -> None:
    """Empty the parse caches and the verified-inclusion memo (a cold verifier)."""
    clear_parse_caches()
    memo = getattr(merkle, "_verified_inclusion", None)
    if memo is not None:
        memo.cache_clear()


ORIGIN = "bench.example/log"
def make_entries(n: int, size: int) -> list[bytes]:
    pad = b"\xa5" * max(0, size - 8)
    return [i.to_bytes(8, "big") + pad for i in range(n)]


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


def paired(fn: Callable[[], object], ref: Callable[[], object], blocks: int,
           per_block: int) -> tuple[float, float, float]:
    """(median of the per-block ratios fn/ref, median µs of fn, median µs of ref): blocks of
    ``per_block`` calls of each, alternated, so that a load change on a shared machine hits
    both sides of a ratio alike."""
    ratios, fn_us, ref_us = [], [], []
    gc.collect()
    gc.disable()  # as timeit does: no collection pause lands on one side only
    try:
        _blocks(fn, ref, blocks, per_block, ratios, fn_us, ref_us)
    finally:
        gc.enable()
    med = statistics.median
    return med(ratios), med(fn_us), med(ref_us)


def _blocks(fn: Callable[[], object], ref: Callable[[], object], blocks: int, per_block: int,
            ratios: list[float], fn_us: list[float], ref_us: list[float]) -> None:
    for _ in range(blocks):
        t0 = time.perf_counter()
        for _ in range(per_block):
            ref()
        t1 = time.perf_counter()
        for _ in range(per_block):
            fn()
        t2 = time.perf_counter()
        ratios.append((t2 - t1) / (t1 - t0))
        fn_us.append((t2 - t1) / per_block * 1e6)
        ref_us.append((t1 - t0) / per_block * 1e6)


def best(fn: Callable[[], object], repeat: int) -> float:
    """Best CPU time of this process (``time.process_time``, every thread of it) over
    ``repeat`` calls: both sides of the audit ratio run on one core, so on a shared machine
    CPU time measures them, where wall time would also measure the other tenants."""
    out = []
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            t0 = time.process_time()
            fn()
            out.append(time.process_time() - t0)
        finally:
            gc.enable()
    return min(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leaves", type=int, default=100_000)
    ap.add_argument("--entry-size", type=int, default=256)
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-audit", action="store_true", help="rows 2-4 only")
    ap.add_argument("--peer-python", help="python (>= 3.12) of a venv with aics-tlog")
    args = ap.parse_args()

    ed_verify = bare_ed25519()

    rows: list[tuple[str, str, str, str]] = []
    peer = peer_texts(peer_figures(args.peer_python, args.leaves, args.entry_size, args.repeat)
                      if args.peer_python else "not run (give --peer-python)")
    build_s = tree_rows(args, ed_verify, rows, peer)
    # row 3: checkpoint + 2 cosignatures + a real 20-hash path in a 10^6 tree
    rows.extend(tlog_proof_row(args.runs, ed_verify))
    rows.append(entry_open_row(args.runs, ed_verify))

    print(f"built {args.leaves:,}-leaf tile tree in {build_s:.1f} s; "
          f"audit: median ratio of {args.repeat} alternated pairs; others: median ratio of "
          f"blocks alternated with the Ed25519 verify ({args.runs} calls each)")
    width = max(len(r[0]) for r in rows)
    print(f"{'row':<{width}}  {'attestlog':>34}  {'reference (same process)':<42}  peer")
    for name, got, ref, peer in rows:
        print(f"{name:<{width}}  {got:>34}  {ref:<42}  {peer}")


def bare_ed25519() -> Callable[[], None]:
    """One bare Ed25519 verify (key loaded once): the reference of rows 2-4."""
    ed_key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    ed_pub = ed_key.public_key()
    msg = b"x" * 120
    ed_sig = ed_key.sign(msg)

    def ed_verify() -> None:
        ed_pub.verify(ed_sig, msg)

    return ed_verify


def issue_rows(leaves: int = 1_000_000, *, entry_size: int = 256, runs: int = 500,
               repeat: int = 3, peer_python: str | None = None) -> list[IssueRow]:
    """Issue 15's three log rows: whole-log audit (ratio to the pure-Python root), inclusion
    proof from tiles + verified (cold: a new client, in ms), checkpoint + 2 cosignatures +
    inclusion proof (caches emptied, ratio to one Ed25519 verify)."""
    args = argparse.Namespace(leaves=leaves, entry_size=entry_size, runs=runs, repeat=repeat,
                              skip_audit=False)
    got = (peer_figures(peer_python, leaves, entry_size, repeat) if peer_python
           else "not run: no aics-tlog venv given (--peer-log; it needs Python >= 3.12)")
    audit_peer, proof_peer = peer_texts(got)
    figures: dict[str, float] = {}
    ed_verify = bare_ed25519()
    tree_rows(args, ed_verify, [], figures=figures)
    tlog_proof_row(runs, ed_verify, figures)
    return [
        IssueRow(f"whole-log audit at {leaves:,} (vs the pure-Python RFC 6962 root)",
                 f"{figures['audit']:.2f}x its time", figures["audit"], 1.2, audit_peer),
        IssueRow(f"inclusion proof built from tiles + verified, {leaves:,} (new client)",
                 f"{figures['proof cold']:.3f} ms (warm client {figures['proof warm']:.3f} ms)",
                 figures["proof cold"], 0.5, proof_peer, unit="ms"),
        IssueRow("checkpoint + 2 cosignatures + inclusion proof (caches emptied)",
                 f"{figures['tlog_proof cold']:.2f}x one Ed25519 verify (same proof again: "
                 f"{figures['tlog_proof warm']:.2f}x)", figures["tlog_proof cold"], 3.2),
    ]


def tree_rows(args: argparse.Namespace, ed_verify: Callable[[], None],
              rows: list[tuple[str, str, str, str]], peer: tuple[str, str] = (PEER_AUDIT,
                                                                              PEER_PROOF),
              figures: dict[str, float] | None = None) -> float:
    """Rows 1 and 2 over a tile tree of ``--leaves`` entries; returns its build time.
    ``figures`` receives the numbers: "audit" (ratio), "proof cold" / "proof warm" (ms)."""
    figures = {} if figures is None else figures
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
        ratios, ref_best, audit_best = [], float("inf"), float("inf")
        for _ in range(args.repeat):  # alternated pairs
            ref_s = best(lambda: reference_root(entries), 1)
            audit_s = best(lambda: audit_log_level(source, verifier), 1)
            ratios.append(audit_s / ref_s)
            ref_best, audit_best = min(ref_best, ref_s), min(audit_best, audit_s)
        figures["audit"] = statistics.median(ratios)
        rows.append((f"whole-log audit, log level, {args.leaves:,} x {args.entry_size} B",
                     f"{statistics.median(ratios):.2f}x ({args.leaves / audit_best:,.0f}"
                     " leaves/s)",
                     f"pure-Python RFC 6962 root {args.leaves / ref_best:,.0f} leaves/s",
                     peer[0]))

    vcp = VerifiedCheckpoint(cp, files["checkpoint"])
    rng = random.Random(7)
    picks = itertools.cycle([rng.randrange(args.leaves) for _ in range(997)])
    for label, fresh in (("cold: a new client each proof", True),
                         ("warm: one client, random indices", False)):

        def prove(fresh: bool = fresh) -> None:
            i = next(picks)
            (LogClient(source, verifier) if fresh else client).prove(entries[i], i, vcp)

        ratio, us, ed_us = paired(prove, ed_verify, max(args.runs // 20, 5), 20)
        figures["proof cold" if fresh else "proof warm"] = us / 1e3
        rows.append((f"inclusion proof from tiles + verified, {args.leaves:,}, {label}",
                     f"{us / 1e3:.3f} ms = {ratio:.2f}x Ed25519",
                     f"1 Ed25519 verify {ed_us:.1f} µs", peer[1]))
    return build_s



def tlog_proof_row(runs: int, ed_verify: Callable[[], None],
                   figures: dict[str, float] | None = None) -> list[tuple[str, str, str, str]]:
    """Row 3, twice (same proof each call; caches emptied); ``figures`` receives the ratios
    as "tlog_proof warm" / "tlog_proof cold"."""
    figures = {} if figures is None else figures
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
    out = []
    for label, cold in (("same proof each call", False), ("caches emptied", True)):

        def check(cold: bool = cold) -> None:
            if cold:
                clear_caches()
            verify_tlog_proof(entry, proof, verifier, policy)

        ratio, us, ed_us = paired(check, ed_verify, max(runs // 10, 5), 20)
        figures["tlog_proof cold" if cold else "tlog_proof warm"] = ratio
        out.append((f"checkpoint + 2 cosignatures + inclusion proof (10^6), {label}",
                    f"{us:.1f} µs = {ratio:.2f}x Ed25519", f"1 Ed25519 verify {ed_us:.1f} µs",
                    "-"))
    return out


def entry_open_row(runs: int, ed_verify: Callable[[], None]) -> tuple[str, str, str, str]:
    """Open release entries with every parse cache emptied first (what a new entry costs)."""
    from attest.release.dsse import open_entry
    from tests.support.log_fixtures import RELEASE_KEY, release_entry
    keys = [RELEASE_KEY.public]
    entries = [release_entry(1000 + i) for i in range(runs)]
    pool = itertools.cycle(entries)
    open_entry(entries[0], keys)

    def open_cold() -> None:
        clear_caches()
        open_entry(next(pool), keys)

    ratio, us, ed_us = paired(open_cold, ed_verify, max(runs // 10, 5), 10)
    return (f"open one release entry ({len(entries[0])} B), cold",
            f"{us:.1f} µs = {ratio:.2f}x Ed25519",
            f"1 Ed25519 verify {ed_us:.1f} µs", "-")


if __name__ == "__main__":
    main()
