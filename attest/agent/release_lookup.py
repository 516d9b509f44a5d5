"""The agent's boot-time self-check: is this node's build logged, and not revoked?

DESIGN.md: "attest never imports verifier (the boot-time self-check uses transparency_log's
client and a plain measurement lookup)". :class:`ReleaseTracker` reads the release log
through a :class:`transparency_log.client.log_client.LogClient` (its checkpoint is verified with the
log key and, when configured, the witness quorum), opens every entry with the accepted
release keys (entries that are not releases, or not signed by them, are skipped), and keeps:

- the releases whose expected measurements match this node's launch identity (SNP
  ``MEASUREMENT`` in ``predicate.measurements.snp[]``; TDX ``MRTD`` and ``RTMR0``-``2``);
- the valid revocations, in a :class:`attest.release.revocation_index.RevocationIndex`: the
  same rule the client verifier applies (a revoked statement digest, whatever entry carries
  it, or a revoked measurement that the release lists), so the agent staples only a release
  that clients will accept.

It scans incrementally (only entries added since the last checkpoint it read), so the
periodic refresh costs what the log grew by. :meth:`ReleaseTracker.current` returns the
newest matching release that is not revoked with a fresh c2sp.org/tlog-proof under the
current checkpoint, or raises :class:`~transparency_log.common.errors.PolicyError`:

- ``agent.release.not_logged``: no logged release lists this measurement;
- ``agent.release.revoked``: every release listing it is revoked.

:meth:`ReleaseTracker.siblings` lists the other unrevoked releases that cover this node, so
that a switch from a revoked release to another one can be said out loud (issue 16).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from attest.platform import CPU_SEV_SNP, LaunchIdentity
from attest.release.dsse import VerifiedEntry, open_entry
from attest.release.keys import ReleasePublicKey
from attest.release.revocation_index import RevocationIndex, RevocationRecord
from attest.release.statement import Release, Revocation
from transparency_log.client.log_client import LogClient, VerifiedCheckpoint
from transparency_log.common.errors import AttestlogError, PolicyError, PolicyFailure
from transparency_log.core.tlog_proof import TlogProof

__all__ = ["CHECK_NOT_LOGGED", "CHECK_REVOKED", "OwnRelease", "ReleaseTracker",
           "release_matches"]

CHECK_NOT_LOGGED = "agent.release.not_logged"
CHECK_REVOKED = "agent.release.revoked"


def release_matches(release: Release, identity: LaunchIdentity) -> bool:
    """Whether ``release`` lists ``identity``'s launch measurement."""
    m = release.measurements
    if identity.cpu == CPU_SEV_SNP:
        return m.snp_match(identity.measurement) is not None
    t = m.tdx
    return t is not None and (t.mrtd, t.rtmr0, t.rtmr1, t.rtmr2) == (
        identity.mrtd, identity.rtmr0, identity.rtmr1, identity.rtmr2)


@dataclass(frozen=True)
class OwnRelease:
    """This node's release: the entry as logged, its index, entry digest and tlog-proof text,
    and its statement digest (what revocations name)."""

    entry: bytes
    index: int
    digest: bytes
    tlog_proof: bytes
    checkpoint_size: int
    statement_digest: bytes = b""

    def describe(self) -> str:
        return f"entry {self.index} (statement sha256:{self.statement_digest.hex()})"


class ReleaseTracker:
    """Incremental scan of the release log for this node's release (module docstring)."""

    def __init__(self, client: LogClient, keys: Sequence[ReleasePublicKey],
                 identity: LaunchIdentity, *, threshold: int = 1) -> None:
        self.client = client
        self.keys = list(keys)
        self.identity = identity
        self.threshold = threshold
        self.scanned = 0
        self.matching: list[tuple[int, VerifiedEntry]] = []
        self.revocations = RevocationIndex()

    def _scan(self, cp: VerifiedCheckpoint) -> None:
        size = cp.checkpoint.size
        if size <= self.scanned:
            return
        for index, entry in self.client.entries(self.scanned, size, size):
            try:
                opened = open_entry(entry, self.keys, threshold=self.threshold)
            except AttestlogError:
                continue  # not ours to judge: another signer's entry, or not a release
            st = opened.statement
            if isinstance(st, Revocation):
                self.revocations.add(RevocationRecord(st, index, opened.digest, opened.signers))
            elif isinstance(st, Release) and release_matches(st, self.identity):
                self.matching.append((index, opened))
        self.scanned = size

    def revocation(self, opened: VerifiedEntry) -> RevocationRecord | None:
        """The valid revocation (known so far) of a matching release, or None."""
        assert isinstance(opened.statement, Release)
        return self.revocations.match(opened.statement_digest, opened.statement)

    def revoked_at(self, index: int) -> RevocationRecord | None:
        """The valid revocation of the matching release logged at ``index``, or None."""
        return next((self.revocation(v) for i, v in self.matching if i == index), None)

    def live(self) -> list[tuple[int, VerifiedEntry]]:
        """Matching releases not revoked (as of the last scan), oldest first."""
        return [m for m in self.matching if self.revocation(m[1]) is None]

    def current(self) -> OwnRelease:
        """Read the log up to its current checkpoint and return this node's release."""
        cp = self.client.checkpoint()
        self._scan(cp)
        live = self.live()
        if not live:
            if self.matching:
                index, opened = self.matching[-1]
                record = self.revocation(opened)
                assert record is not None
                raise PolicyError([PolicyFailure(
                    CHECK_REVOKED, "release", f"entry {index} statement "
                    f"sha256:{opened.statement_digest.hex()}",
                    "a release listing this measurement that is not revoked",
                    f"all {len(self.matching)} release(s) listing it are revoked; newest "
                    f"{record.describe()}")])
            raise PolicyError([PolicyFailure(
                CHECK_NOT_LOGGED, "measurement", self.identity.hex(),
                f"listed by a release in {cp.checkpoint.origin} (size {cp.checkpoint.size})",
                "this build was never published to the release log")])
        index, opened = live[-1]
        hashes = self.client.prove(opened.entry, index, cp)
        proof = TlogProof(index, tuple(hashes), cp.note).to_text()
        return OwnRelease(opened.entry, index, opened.digest, proof, cp.checkpoint.size,
                          opened.statement_digest)
