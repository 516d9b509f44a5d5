"""Bench: the verifier's log half (verifier/log_checks.verify_log) next to its signature floor.

Setup (tests/support/log_fixtures.py, seeded keys): a release log of --entries entries, the node's
release entry at the middle, a checkpoint cosigned by 2 of 3 witnesses (quorum 2).

Rows (median and p90 of --runs runs, microseconds):
- floor: the bare signature verifications verify_log contains (1 DSSE Ed25519 + 1 log
  Ed25519 + 2 cosignature Ed25519), nothing else
- verify_log, stateless: stapled-only, no store (log.consistency waived)
- verify_log with a last-seen store (same checkpoint: file read + flock) and a synced mirror
- parse the policy file (examples/policy.example.toml)

Run: ``.venv/bin/python -m bench.log_verify_bench [--entries N] [--runs R]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from attest.release.dsse import pae, parse_entry  # noqa: E402
from bench.note_bench import timed  # noqa: E402
from tests.support.log_fixtures import (  # noqa: E402
    AT,
    ORIGIN,
    WITNESS_SIGNERS,
    FakeLog,
    policy_toml,
    release_entry,
)
from transparency_log.client.checkpoint_store import CheckpointStore  # noqa: E402
from transparency_log.core.cosignature import CosignatureVerifier  # noqa: E402
from transparency_log.core.note import parse_note  # noqa: E402
from verifier.log_checks import LogEvidence, verify_log  # noqa: E402
from verifier.policy import load_policy, parse_policy  # noqa: E402
from verifier.revocations import RevocationMirror  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=300)
    args = ap.parse_args()

    log = FakeLog([release_entry(i) for i in range(args.entries)])
    index = args.entries // 2
    entry = log.entries[index]
    ev = LogEvidence.from_tlog_proof(entry, log.proof(index))
    stateless = parse_policy(policy_toml(top={"waive": ["log.consistency"]},
                                         log={"revocations": "stapled"}).encode())
    stateful = parse_policy(policy_toml().encode())

    release_key = stateful.release.keys[0]
    envelope = parse_entry(entry)
    message = pae(envelope.payload_type, envelope.payload)
    log_verifier = stateful.log.verifier
    text, sigs = parse_note(ev.checkpoint_note)
    cosigners = {w.key_id: CosignatureVerifier(w.verifier_key()) for w in WITNESS_SIGNERS}

    def floor() -> None:
        assert release_key.verify(envelope.signatures[0].sig, message)
        for s in sigs:
            if s.key_id == log_verifier.key_id:
                assert log_verifier.verify(text, s.signature)
            else:
                assert cosigners[s.key_id].verify(text, s.signature)

    with tempfile.TemporaryDirectory() as tmp:
        store = CheckpointStore(Path(tmp) / "checkpoints")
        mirror = RevocationMirror(Path(tmp) / "mirror", ORIGIN, stateful.release)
        t0 = time.perf_counter()
        mirror.sync(log.checkpoint(), log.entries_range)
        sync_ms = (time.perf_counter() - t0) * 1e3
        verify_log(ev, stateful, AT, store=store, revocations=mirror)
        rows = [
            ("floor: 4 bare Ed25519 verifications", timed(floor, args.runs)),
            ("verify_log, stateless (stapled-only)",
             timed(lambda: verify_log(ev, stateless, AT), args.runs)),
            ("verify_log, store + mirror",
             timed(lambda: verify_log(ev, stateful, AT, store=store, revocations=mirror),
                   args.runs)),
            ("parse examples/policy.example.toml",
             timed(lambda: load_policy(ROOT / "examples" / "policy.example.toml"), args.runs)),
        ]
    print(f"log of {args.entries} entries, proof for index {index}, {args.runs} runs; "
          f"initial mirror sync: {sync_ms:.1f} ms")
    print(f"{'operation':<42} {'median µs':>10} {'p90 µs':>10}")
    for name, (med, p90) in rows:
        print(f"{name:<42} {med:>10.1f} {p90:>10.1f}")


if __name__ == "__main__":
    main()
