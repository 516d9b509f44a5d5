"""Steps 6, 7 and 8 of the log half of the client verifier: the client's own view of the log
(the step table is :mod:`verifier.log_checks`; :func:`verifier.log_checks.verify_log` runs
them in order).

6. ``log.consistency`` (:func:`check_consistency`): no fork with the client's last-seen
   checkpoint (RFC 9162 §2.1.4 consistency proof); last-seen moves forward.
7. ``log.checkpoint.age`` (:func:`check_checkpoint_age`): the checkpoint, dated by its newest
   policy-witness cosignature (C2SP tlog-cosignature timestamp), is young enough.
8. ``release.revoked`` (:func:`check_revoked`), with its precondition
   ``release.revocations.unavailable`` (:func:`check_revocations_available`): no known
   revocation of the release, from a mirror that covers the node's checkpoint.

Each may be unable to run (no store, offline, nothing dates the checkpoint, no mirror): it then
raises :class:`verifier.checks.CheckNotRun`, a failure unless the policy waives the check.
"""

from __future__ import annotations

from datetime import UTC, datetime

from attest.release.dsse import VerifiedEntry
from attest.release.statement import Release
from transparency_log.client.checkpoint_store import (
    CHECK_CONSISTENCY,  # the store raises ConsistencyError with this check id on a fork
    CheckpointStore,
    ConsistencyFetch,
    ConsistencyResult,
)
from transparency_log.common.errors import PolicyError, PolicyFailure, VerificationError
from transparency_log.core.checkpoint import Checkpoint
from transparency_log.core.witness_policy import QuorumResult
from verifier.checks import CheckNotRun
from verifier.policy import LogPolicy
from verifier.revocations import KnownRevocations

__all__ = [
    "CHECK_CHECKPOINT_AGE",
    "CHECK_CONSISTENCY",
    "CHECK_REVOCATIONS_UNAVAILABLE",
    "CHECK_REVOKED",
    "check_checkpoint_age",
    "check_consistency",
    "check_revocations_available",
    "check_revoked",
    "checkpoint_time",
    "iso_utc",
    "mirror_covers",
    "posix_seconds",
]

CHECK_CHECKPOINT_AGE = "log.checkpoint.age"
CHECK_REVOKED = "release.revoked"
# Step 8 could not run: the policy wants a revocation mirror covering the node's checkpoint and
# the client has none, or one that is behind (a configuration problem, not a revoked release).
CHECK_REVOCATIONS_UNAVAILABLE = "release.revocations.unavailable"
_CONFIGURE_MIRROR = ("keep a revocation mirror: pass --state DIR and --log-url URL (the log's "
                     "tiles) to the verifier, or set [log] revocations = \"stapled\" in the "
                     "policy to rely on the node's stapled checkpoint and max_checkpoint_age")


def posix_seconds(at: datetime) -> int:
    """``at`` (timezone-aware) as POSIX seconds."""
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    return int(at.timestamp())


def iso_utc(ts: int) -> str:
    """POSIX seconds as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_consistency(checkpoint_note: bytes, checkpoint: Checkpoint,
                      store: CheckpointStore | None,
                      fetch_proof: ConsistencyFetch | None) -> ConsistencyResult:
    """Step 6, ``log.consistency``: compare-and-swap against the client's last-seen checkpoint
    (:class:`transparency_log.client.checkpoint_store.CheckpointStore`); a fork raises
    ConsistencyError with the evidence kept. Without a store, or offline when a proof is
    needed, the check cannot run."""
    if store is None:
        raise CheckNotRun(CHECK_CONSISTENCY, "no last-seen checkpoint store configured",
                          field="checkpoint store")

    def offline(old_size: int, new_size: int) -> list[bytes]:
        raise CheckNotRun(CHECK_CONSISTENCY, f"a consistency proof {old_size} -> {new_size} "
                          "is needed and no log is reachable (offline)",
                          field="consistency proof", want="fetchable")

    return store.update(checkpoint_note, checkpoint, fetch_proof or offline)


def checkpoint_time(quorum: QuorumResult) -> int | None:
    """The checkpoint's time: the newest verified policy-witness cosignature timestamp."""
    return max(quorum.cosigned.values(), default=None)


def check_checkpoint_age(quorum: QuorumResult, log: LogPolicy, at: datetime) -> int:
    """Step 7, ``log.checkpoint.age``: ``at - checkpoint_time <= max_checkpoint_age``.

    Returns the age in seconds. PolicyError when too old; CheckNotRun when no policy witness
    cosigned (nothing dates the checkpoint).
    """
    when = checkpoint_time(quorum)
    if when is None:
        raise CheckNotRun(CHECK_CHECKPOINT_AGE, "no witness cosignature dates the checkpoint",
                          field="cosignature timestamp", want="a policy witness cosignature")
    now = posix_seconds(at)
    age = max(0, now - when)
    if age > log.max_checkpoint_age:
        raise PolicyError([PolicyFailure(
            CHECK_CHECKPOINT_AGE, "checkpoint age (s)", age, f"<= {log.max_checkpoint_age}",
            f"newest cosignature {iso_utc(when)}, verifying at {iso_utc(now)}")])
    return age


def check_revocations_available(checkpoint: Checkpoint, known: KnownRevocations | None,
                                log: LogPolicy) -> str:
    """Step 8's precondition, ``release.revocations.unavailable``: with ``[log] revocations =
    "mirror"`` the client's mirror (``known``) must cover at least the node's checkpoint (sync
    it first); otherwise :class:`CheckNotRun` naming what to configure. Always passes in
    ``"stapled"`` mode. Returns a one-line detail."""
    if log.revocations != "mirror":
        return "stapled-only: no mirror needed"
    if mirror_covers(known, checkpoint):
        assert known is not None
        return f"mirror at tree size {known.size} covers the checkpoint (size {checkpoint.size})"
    if known is None:
        raise CheckNotRun(CHECK_REVOCATIONS_UNAVAILABLE,
                          f"policy wants a revocation mirror and the client has none; "
                          f"{_CONFIGURE_MIRROR}", field="revocation mirror")
    raise CheckNotRun(CHECK_REVOCATIONS_UNAVAILABLE,
                      f"revocation mirror at size {known.size} is behind the node's checkpoint "
                      f"(size {checkpoint.size}); pass --log-url URL with --state so the mirror "
                      f"is synced before verifying",
                      field="revocation mirror size", want=f">= {checkpoint.size}")


def mirror_covers(known: KnownRevocations | None, checkpoint: Checkpoint) -> bool:
    """The client's revocation mirror reaches at least the node's checkpoint."""
    return known is not None and known.size >= checkpoint.size


def check_revoked(verified: VerifiedEntry, checkpoint: Checkpoint,
                  known: KnownRevocations | None, log: LogPolicy, *,
                  require_mirror: bool = True) -> str:
    """Step 8, ``release.revoked``: no valid revocation of this release is known: none of
    its statement digest (whatever entry carries it) and none of a measurement it lists.

    ``[log] revocations = "mirror"``: ``known`` (the client's mirror) must cover at least the
    node's checkpoint (:func:`check_revocations_available`, unless ``require_mirror`` is
    False because the policy waived it); ``"stapled"``: the client keeps no mirror; any
    ``known`` revocations given are still honoured, and freshness rests on step 7. Returns a
    one-line detail for the transcript.
    """
    if require_mirror:
        check_revocations_available(checkpoint, known, log)
    release = verified.statement
    if not isinstance(release, Release):  # step 1 refuses these; fail closed all the same
        raise VerificationError(CHECK_REVOKED, "the entry is not a release",
                                field="predicateType", got=release.predicate_type)
    record = (known.revocation_of(verified.statement_digest, release)
              if known is not None else None)
    if record is not None:
        raise PolicyError([PolicyFailure(
            CHECK_REVOKED, "release statement digest", verified.statement_digest,
            "not revoked", record.describe())])
    if known is None:
        if log.revocations == "mirror":
            return "no revocation mirror (waived): no revocation known"
        return "stapled-only: no revocation known; freshness bounded by log.checkpoint.age"
    return f"not revoked as of tree size {known.size}"
