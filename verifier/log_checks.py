"""The log half of the client verifier: one function per step, each with one stable check id.

The steps, in the order :func:`verify_log` runs them (issue 7, "The pipeline"):

1. ``release.signature`` (:func:`check_release_signature`): the DSSE entry is signed by
   ``threshold`` accepted release keys and holds a Release.
2. ``release.sigstore`` (:func:`check_release_sigstore`), only with ``[release.sigstore]``:
   a Sigstore bundle by that CI identity over the statement, or over a digest the statement
   lists when the policy's ``signs`` allows it (absent: PolicyError; over anything else:
   ``release.sigstore.artifact``).
3. ``log.signature`` (:func:`check_log_signature`): the checkpoint is signed by
   ``[log].vkey`` and has origin ``[log].origin``.
4. ``log.witness.quorum`` (:func:`check_witness_quorum`): policy witnesses' cosignatures
   verify and meet the quorum; none is dated after ``at`` + ``max_cosignature_skew``.
5. ``log.inclusion`` (:func:`check_inclusion`): the entry is at ``index`` under the root.
6. ``log.consistency`` (:func:`check_consistency`): no fork with the client's last-seen
   checkpoint (evidence kept otherwise); last-seen moves forward.
7. ``log.checkpoint.age`` (:func:`check_checkpoint_age`): the checkpoint is at most
   ``max_checkpoint_age`` old at ``at`` (PolicyError otherwise).
8. ``release.revoked`` (:func:`check_revoked`): no valid revocation of this release is known,
   neither of its statement (the DSSE payload's SHA-256, so re-logging the same statement
   in another envelope does not escape it) nor of any measurement it lists (PolicyError
   otherwise; docs/formats.md, "Revocation predicate").
   With ``[log] revocations = "mirror"`` it needs a mirror that covers the node's
   checkpoint; without one (no ``--state``/``--log-url``, or a mirror behind) the check
   cannot run and the refusal is ``release.revocations.unavailable``, which says what to
   configure (issue 12).

Steps 1-6 are authenticity: the first failure stops. Steps 7-8 are policy: both run and their
failures are reported together in one PolicyError (house rule 5). Steps 6, 7 and 8 may be
unable to run (no checkpoint store; no cosignature to date the checkpoint by; no revocation
mirror): they then raise :class:`verifier.checks.CheckNotRun`, which is a failure unless the
policy lists the check id in ``waive`` (then the transcript records it as ``waived``).

**Checkpoint time** (step 7). A C2SP checkpoint carries no time. Each ``cosignature/v1`` from
a policy witness carries the witness's POSIX timestamp, signed together with the checkpoint: a
statement "at this time, this checkpoint was (consistent with) the newest tree I had seen".
The checkpoint's time is the **newest** verified timestamp among the policy's witnesses
(cosignatures from unknown keys do not count). Its age at ``at`` is ``at - time`` (0 if the
timestamp is within the allowed skew ahead of ``at``). A cosignature dated more than
``[log] max_cosignature_skew`` seconds after ``at`` is refused in step 4, so a witness with a
fast clock cannot make an old checkpoint look fresh for long. With no witness cosignature at
all (``quorum none``) the age cannot be known and step 7 cannot run.

Times: ``at`` is a timezone-aware :class:`datetime.datetime` (a saved bundle verifies the same
way with ``--at``); nothing here reads the clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from attest.release.dsse import VerifiedEntry, open_entry, parse_entry
from attest.release.sigstore_binding import sigstore_targets
from attest.release.sigstore_check import signed_digest, verify_blob_bundle
from attest.release.statement import Release
from transparency_log.client.checkpoint_store import (
    CheckpointStore,
    ConsistencyFetch,
    ConsistencyResult,
)
from transparency_log.common.errors import (
    AttestlogError,
    PolicyError,
    PolicyFailure,
    SignatureError,
    VerificationError,
)
from transparency_log.core.checkpoint import Checkpoint, open_checkpoint
from transparency_log.core.merkle import leaf_hash, verify_inclusion
from transparency_log.core.note import Note
from transparency_log.core.tlog_proof import TlogProof, parse_tlog_proof
from transparency_log.core.witness_policy import QuorumResult, check_cosignatures
from verifier.checks import with_check
from verifier.log_view_checks import (
    CHECK_CHECKPOINT_AGE,
    CHECK_CONSISTENCY,
    CHECK_REVOCATIONS_UNAVAILABLE,
    CHECK_REVOKED,
    check_checkpoint_age,
    check_consistency,
    check_revocations_available,
    check_revoked,
    iso_utc,
    mirror_covers,
    posix_seconds,
)
from verifier.policy import LogPolicy, Policy, ReleasePolicy, SigstorePolicy
from verifier.revocations import KnownRevocations
from verifier.transcript import Transcript

__all__ = [
    "CHECK_INCLUSION",
    "CHECK_LOG_SIGNATURE",
    "CHECK_RELEASE_SIGNATURE",
    "CHECK_RELEASE_SIGSTORE",
    "CHECK_WITNESS_QUORUM",
    "LOG_CHECKS",
    "LogEvidence",
    "LogResult",
    "check_inclusion",
    "check_log_signature",
    "check_release_signature",
    "check_release_sigstore",
    "check_witness_quorum",
    "release_sigstore_targets",
    "statement_sha256",
    "verify_log",
]

CHECK_RELEASE_SIGNATURE = "release.signature"
CHECK_RELEASE_SIGSTORE = "release.sigstore"
CHECK_LOG_SIGNATURE = "log.signature"
CHECK_WITNESS_QUORUM = "log.witness.quorum"
CHECK_INCLUSION = "log.inclusion"

LOG_CHECKS = (CHECK_RELEASE_SIGNATURE, CHECK_RELEASE_SIGSTORE, CHECK_LOG_SIGNATURE,
              CHECK_WITNESS_QUORUM, CHECK_INCLUSION, CHECK_CONSISTENCY, CHECK_CHECKPOINT_AGE,
              CHECK_REVOKED)
"""The log half's check ids, in pipeline order (CHECK_REVOCATIONS_UNAVAILABLE, before
CHECK_REVOKED, is recorded only when the mirror is missing or behind)."""

T = TypeVar("T")


@contextmanager
def _as_check(check: str) -> Iterator[None]:
    try:
        yield
    except AttestlogError as err:
        renamed = with_check(err, check)
        if renamed is err:
            raise
        raise renamed from None


# --------------------------------------------------------------------------------------------
# 1, 2: the release entry


def check_release_signature(entry: bytes, release: ReleasePolicy) -> VerifiedEntry:
    """Step 1, ``release.signature``: the DSSE entry is signed by ``release.threshold`` of the
    accepted keys (a failing signature by an accepted key refuses it) and holds a Release."""
    with _as_check(CHECK_RELEASE_SIGNATURE):
        verified = open_entry(entry, release.keys, threshold=release.threshold)
    if not isinstance(verified.statement, Release):
        raise VerificationError(CHECK_RELEASE_SIGNATURE, "the entry is not a release",
                                field="predicateType",
                                got=verified.statement.predicate_type,
                                want=Release.predicate_type)
    return verified


def statement_sha256(verified: VerifiedEntry) -> bytes:
    """SHA-256 of the signed statement bytes (the DSSE payload): what CI signs with Sigstore
    and what a revocation names."""
    return verified.statement_digest


def release_sigstore_targets(verified: VerifiedEntry,
                             sigstore: SigstorePolicy) -> dict[bytes, str]:
    """The digests of this release a Sigstore bundle may sign under the policy's ``signs``
    (:func:`attest.release.sigstore_binding.sigstore_targets`)."""
    if not isinstance(verified.statement, Release):
        raise VerificationError(CHECK_RELEASE_SIGSTORE, "the entry is not a release",
                                field="predicateType")
    return sigstore_targets(parse_entry(verified.entry).payload, verified.statement,
                            sigstore.signs)


def check_release_sigstore(targets: Mapping[bytes, str], bundle: bytes | None,
                           sigstore: SigstorePolicy) -> str:
    """Step 2, ``release.sigstore``: a Sigstore bundle by the policy's CI identity, verified
    offline against the policy's trusted root, over one of the release's ``targets``
    (:func:`release_sigstore_targets`). Returns "SAN over WHAT".

    The binding is checked first: the digest the bundle signs must be a target
    (SignatureError ``release.sigstore.artifact`` otherwise: a valid bundle for another
    artifact), then the signature, certificate, log entry and identity over that digest."""
    if not isinstance(targets, Mapping):  # bytes would mean substring tests: never
        raise TypeError("targets must map digests to what they are")
    if bundle is None:
        raise PolicyError([PolicyFailure(CHECK_RELEASE_SIGSTORE, "sigstore bundle", "absent",
                                         sigstore.identity.san,
                                         "the policy requires a Sigstore bundle per release")])
    with _as_check(CHECK_RELEASE_SIGSTORE):
        digest = signed_digest(bundle)
        if digest not in targets:
            raise SignatureError(
                "release.sigstore.artifact", "the Sigstore bundle signs a digest this release "
                f"does not name (policy signs = {sigstore.signs!r})",
                field="messageSignature.messageDigest", got=digest,
                want=" | ".join(f"{d.hex()} ({what})" for d, what in targets.items()))
        san = verify_blob_bundle(bundle, sigstore.trusted_root, sigstore.identity,
                                 artifact_sha256=digest)
    return f"{san} over {targets[digest]}"


# --------------------------------------------------------------------------------------------
# 3, 4, 5: the checkpoint and the entry's place under it


def check_log_signature(checkpoint_note: bytes, log: LogPolicy) -> tuple[Checkpoint, Note]:
    """Step 3, ``log.signature``: the checkpoint note is signed by ``[log].vkey`` and its
    origin is ``[log].origin``. Returns the checkpoint and the opened note (cosignatures are
    left in ``note.unverified_sigs`` for step 4)."""
    with _as_check(CHECK_LOG_SIGNATURE):
        return open_checkpoint(checkpoint_note, log.verifier, log.origin)


def check_witness_quorum(note: Note, checkpoint: Checkpoint, log: LogPolicy,
                         at: datetime) -> QuorumResult:
    """Step 4, ``log.witness.quorum``: every cosignature of a policy witness verifies, they meet
    the quorum, and none is dated more than ``max_cosignature_skew`` seconds after ``at``."""
    with _as_check(CHECK_WITNESS_QUORUM):
        quorum = check_cosignatures(note, checkpoint, log.witness_policy)
    limit = posix_seconds(at) + log.max_cosignature_skew
    future = sorted((ts, name) for name, ts in quorum.cosigned.items() if ts > limit)
    if future:
        ts, name = future[-1]
        raise VerificationError(CHECK_WITNESS_QUORUM, "cosignature dated in the future",
                                field=f"timestamp of {name}", got=f"{ts} ({iso_utc(ts)})",
                                want=f"<= {limit} (at + {log.max_cosignature_skew} s)")
    return quorum


def check_inclusion(entry: bytes, index: int, hashes: Sequence[bytes],
                    checkpoint: Checkpoint) -> None:
    """Step 5, ``log.inclusion``: RFC 9162 §2.1.3.2 inclusion of ``SHA-256(0x00 || entry)`` at
    ``index`` under the checkpoint's root (FormatError for a malformed path, ProofError for
    one that leads elsewhere)."""
    with _as_check(CHECK_INCLUSION):
        verify_inclusion(index, checkpoint.size, leaf_hash(entry), hashes, checkpoint.root)


# --------------------------------------------------------------------------------------------
# The log half of the pipeline


@dataclass(frozen=True)
class LogEvidence:
    """What a node staples for the log half: the release entry, its inclusion path and the
    cosigned checkpoint, and optionally the release's Sigstore bundle."""

    entry: bytes
    index: int
    hashes: tuple[bytes, ...]
    checkpoint_note: bytes
    sigstore_bundle: bytes | None = None

    @classmethod
    def from_tlog_proof(cls, entry: bytes, proof: TlogProof | bytes,
                        sigstore_bundle: bytes | None = None) -> LogEvidence:
        """From a ``c2sp.org/tlog-proof@v1`` (parsed, or its bytes: FormatError
        ``log.inclusion`` when malformed)."""
        if not isinstance(proof, TlogProof):
            with _as_check(CHECK_INCLUSION):
                proof = parse_tlog_proof(proof)
        return cls(entry, proof.index, proof.hashes, proof.checkpoint_note, sigstore_bundle)


@dataclass(frozen=True)
class LogResult:
    """What the log half established."""

    release: VerifiedEntry
    checkpoint: Checkpoint
    quorum: QuorumResult
    sigstore_san: str | None
    consistency: ConsistencyResult | None  # None when waived
    checkpoint_age: int | None  # None when waived


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_log(evidence: LogEvidence, policy: Policy, at: datetime, *,
               store: CheckpointStore | None = None,
               fetch_consistency: ConsistencyFetch | None = None,
               revocations: KnownRevocations | None = None,
               transcript: Transcript | None = None) -> LogResult:
    """Run steps 1-8 in order, recording each in ``transcript``; see the module table.

    ``store``/``fetch_consistency``: the client's last-seen checkpoints and how to get a
    consistency proof (None offline); ``revocations``: the client's mirror, synced (None in
    stapled-only mode).
    """
    waive = policy.waive
    t = transcript if transcript is not None else Transcript()
    entry_in = {"entry_sha256": _sha(evidence.entry)}
    note_in = {"checkpoint_sha256": _sha(evidence.checkpoint_note)}

    def step(check: str, fn: Callable[[], T], detail: Callable[[T], str] | None = None,
             **inputs: str) -> T | None:
        return t.run(check, fn, detail=detail, waive=waive, **inputs)

    verified = step(CHECK_RELEASE_SIGNATURE,
                    lambda: check_release_signature(evidence.entry, policy.release),
                    lambda v: f"signed by {len(v.signers)} accepted key(s)", **entry_in)
    assert verified is not None
    san = None
    if policy.release.sigstore is not None:
        sigstore = policy.release.sigstore
        san = step(CHECK_RELEASE_SIGSTORE,
                   lambda: check_release_sigstore(release_sigstore_targets(verified, sigstore),
                                                  evidence.sigstore_bundle, sigstore),
                   lambda s: f"signed by {s}", **entry_in)
    opened = step(CHECK_LOG_SIGNATURE,
                  lambda: check_log_signature(evidence.checkpoint_note, policy.log),
                  lambda r: f"{r[0].origin} size {r[0].size}", **note_in)
    assert opened is not None
    cp, note = opened
    quorum = step(CHECK_WITNESS_QUORUM, lambda: check_witness_quorum(note, cp, policy.log, at),
                  lambda q: "cosigned by " + (", ".join(sorted(q.cosigned)) or "nobody")
                  + f"; quorum {q.quorum}", **note_in)
    assert quorum is not None
    step(CHECK_INCLUSION,
         lambda: check_inclusion(evidence.entry, evidence.index, evidence.hashes, cp),
         lambda _: f"index {evidence.index} of {cp.size}", **entry_in, **note_in)
    consistency = step(CHECK_CONSISTENCY,
                       lambda: check_consistency(evidence.checkpoint_note, cp, store,
                                                 fetch_consistency),
                       lambda r: r.describe(), **note_in)
    # Policy steps: run both, report every failure together.
    failures: list[PolicyFailure] = []
    age = None
    try:
        age = step(CHECK_CHECKPOINT_AGE, lambda: check_checkpoint_age(quorum, policy.log, at),
                   lambda a: f"{a} s old (max {policy.log.max_checkpoint_age} s)", **note_in)
    except PolicyError as err:
        failures.extend(err.failures)
    try:
        # A missing or stale mirror is its own step (release.revocations.unavailable), recorded
        # only when it fails or is waived, so the refusal names the configuration rather than
        # a revocation; waived, the revocations the client does know still count.
        if policy.log.revocations == "mirror" and not mirror_covers(revocations, cp):
            step(CHECK_REVOCATIONS_UNAVAILABLE,  # raises unless waived
                 lambda: check_revocations_available(cp, revocations, policy.log))
        step(CHECK_REVOKED, lambda: check_revoked(verified, cp, revocations, policy.log,
                                                  require_mirror=False),
             lambda d: d, **entry_in)
    except PolicyError as err:
        failures.extend(err.failures)
    if failures:
        raise PolicyError(failures)
    return LogResult(verified, cp, quorum, san, consistency, age)
