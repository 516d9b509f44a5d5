"""A log world for the tests of the verifier's log half (tests/test_verifier_log_checks.py,
tests/test_verifier_log_view_checks.py): a FakeLog of release entries, the client's checkpoint
store and a synced revocation mirror, and :func:`verifier.log_checks.verify_log` run over them.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from tests.support.log_fixtures import AT, ORIGIN, FakeLog, policy_toml, release_entry
from transparency_log.client.checkpoint_store import CheckpointStore
from verifier.log_checks import LogEvidence, verify_log
from verifier.policy import Policy, parse_policy
from verifier.revocations import RevocationMirror
from verifier.transcript import Transcript

__all__ = ["ENTRIES", "ENTRY", "ENTRY_DIGEST", "POLICY", "World", "failed_steps", "policy"]

ENTRIES = [release_entry(i) for i in range(3)]
ENTRY = ENTRIES[1]
ENTRY_DIGEST = hashlib.sha256(ENTRY).digest()
POLICY = parse_policy(policy_toml().encode())


def policy(**kw: object) -> Policy:
    return parse_policy(policy_toml(**kw).encode())  # type: ignore[arg-type]


class World:
    """A log, the client's state directory, and a synced revocation mirror."""

    def __init__(self, tmp: Path, entries: list[bytes] = ENTRIES,
                 pol: Policy = POLICY) -> None:
        self.log = FakeLog(list(entries))
        self.policy = pol
        self.store = CheckpointStore(tmp / "checkpoints")
        self.mirror = RevocationMirror(tmp / "mirror", ORIGIN, pol.release)
        self.mirror.sync(self.log.checkpoint(), self.log.entries_range)

    def evidence(self, index: int = 1, entry: bytes | None = None, **note: object) -> LogEvidence:
        proof = self.log.proof(index, **note)  # type: ignore[arg-type]
        return LogEvidence.from_tlog_proof(ENTRIES[index] if entry is None else entry, proof)

    def verify(self, ev: LogEvidence | None = None, at: datetime = AT,
               transcript: Transcript | None = None, **kw: object):
        args: dict[str, object] = {"store": self.store,
                                   "fetch_consistency": self.log.consistency,
                                   "revocations": self.mirror}
        args.update(kw)
        return verify_log(ev or self.evidence(), self.policy, at, transcript=transcript,
                          **args)  # type: ignore[arg-type]


def failed_steps(t: Transcript) -> list[str]:
    return [s.check for s in t.steps if s.result == "fail"]
