"""Bench: verifying a tlog-proof offline (checkpoint + 2 cosignatures + inclusion proof).

The proof is a *real* RFC 9162 inclusion proof in a tree of 1,000,000 leaves (entries
``b"entry %d"``): each path hash is the root of its subtree, computed streaming (leaf hashes
of one range at a time, folded with CompactRange), so memory stays small; building it takes a
few seconds once. The timed part never hashes more than the 20-hash path.

Rows (median and p90 of --runs runs, microseconds):
- open checkpoint (log Ed25519 signature + strict parse)
- verify one cosignature
- inclusion proof only (RFC 9162 §2.1.3.2, 20 hashes)
- full verify_tlog_proof with a 2-of-2 witness policy (1 log sig + 2 cosignatures + path)
- parse tlog-proof file + full verify (what `tlog verify-proof` does after reading files)

Run: ``.venv/bin/python -m bench.note_bench [--leaves N] [--runs R] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from transparency_log.core.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from transparency_log.core.cosignature import (
    CosignatureSigner,
    CosignatureVerifier,
    cosignature,
    generate_cosigner_keys,
)
from transparency_log.core.key_types import Verifier
from transparency_log.core.merkle import (
    CompactRange,
    inclusion_ranges,
    leaf_hash,
    root_from_inclusion_proof,
    verify_inclusion,
)
from transparency_log.core.note import Signer, append_signatures, generate_keys
from transparency_log.core.tlog_proof import TlogProof, parse_tlog_proof, verify_tlog_proof
from transparency_log.core.witness_policy import parse_witness_policy


def _range_root(start: int, end: int) -> bytes:
    rng = CompactRange()
    for i in range(start, end):
        rng.append(leaf_hash(b"entry %d" % i))
    return rng.root()


def build(leaves: int, index: int) -> tuple[bytes, list[bytes], bytes]:
    """(entry, inclusion path, root) for ``index`` in a tree of ``leaves`` synthetic entries."""
    path = [_range_root(a, b) for a, b in inclusion_ranges(index, leaves)]
    entry = b"entry %d" % index
    root = root_from_inclusion_proof(index, leaves, leaf_hash(entry), path)
    return entry, path, root


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--leaves", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    index = args.leaves * 2 // 3 + 1
    t0 = time.perf_counter()
    entry, path, root = build(args.leaves, index)
    build_s = time.perf_counter() - t0

    log_skey, log_vkey = generate_keys("example.com/log", seed=bytes(32))
    wits = [generate_cosigner_keys(f"w{i}.example", seed=bytes([i + 1]) * 32) for i in range(2)]
    cp = Checkpoint("example.com/log", args.leaves, root)
    note = append_signatures(
        sign_checkpoint(cp, Signer(log_skey)),
        [cosignature(cp.to_text(), CosignatureSigner(s), 1700000000) for s, _ in wits])
    policy = parse_witness_policy(
        (f"log {log_vkey}\n" + "".join(f"witness W{i} {v}\n" for i, (_, v) in enumerate(wits))
         + "group both all W0 W1\nquorum both\n").encode())
    verifier = Verifier(log_vkey)
    w0 = CosignatureVerifier(wits[0][1])
    w0_sig = cosignature(cp.to_text(), CosignatureSigner(wits[0][0]), 1700000000).signature
    proof = TlogProof(index, tuple(path), note)
    proof_file = proof.to_text()
    lh = leaf_hash(entry)
    text = cp.to_text()

    rows = [
        ("open checkpoint (log signature + parse)", lambda: open_checkpoint(note, verifier)),
        ("verify one cosignature", lambda: w0.verify_timestamp(text, w0_sig)),
        (f"inclusion proof only ({len(path)} hashes)",
         lambda: verify_inclusion(index, args.leaves, lh, path, root)),
        ("verify_tlog_proof: checkpoint + 2 cosigs + inclusion",
         lambda: verify_tlog_proof(entry, proof, verifier, policy)),
        ("parse tlog-proof file + full verify",
         lambda: verify_tlog_proof(entry, parse_tlog_proof(proof_file), verifier, policy)),
    ]
    results = []
    for name, fn in rows:
        fn()  # warm up and make sure it verifies
        med, p90 = timed(fn, args.runs)
        results.append({"case": name, "median_us": round(med, 1), "p90_us": round(p90, 1)})

    if args.json:
        print(json.dumps({"leaves": args.leaves, "index": index, "runs": args.runs,
                          "build_seconds": round(build_s, 2), "results": results}, indent=2))
        return
    print(f"tree: {args.leaves:,} leaves, index {index:,}, path {len(path)} hashes "
          f"(built in {build_s:.1f} s); {args.runs} runs each")
    print(f"{'case':<56} {'median µs':>10} {'p90 µs':>10}")
    for r in results:
        print(f"{r['case']:<56} {r['median_us']:>10.1f} {r['p90_us']:>10.1f}")
    full = results[3]["median_us"]
    print(f"target <= 1000 µs median for the full check: {'met' if full <= 1000 else 'MISSED'}")


if __name__ == "__main__":
    main()
