"""``verifier audit``: replay a whole release log and judge every entry in it.

An audit (:meth:`Auditor.run`) has two levels.

**Log level** (any failure raises, with its check id; nothing is listed):

1. the checkpoint the log presents and the one kept in the state are verified: log signature
   and origin (``log.signature``), and with a policy the witnesses' cosignatures and quorum
   (``log.witness.quorum``, c2sp.org/tlog-policy);
2. consistency with the saved state (``log.consistency``, :class:`transparency_log.
   checkpoint_store.CheckpointStore`): a fork keeps both checkpoints and the proof as
   evidence; the state only moves forward;
3. the whole tree is recomputed by :func:`transparency_log.client.log_client.monitor` (every leaf
   hash,
   every hash tile, the root: ``log.tiles``); every entry of the log is read.

**Entry level** (every problem is a :class:`AuditFlag`; no entry is ever dropped silently):

4. each entry is opened as a DSSE envelope (:func:`attest.release.dsse.open_entry`) against
   the policy's accepted release keys and threshold (``release.signature``); a malformed
   envelope or statement is ``release.entry.format``. Without a policy the statements are
   parsed and listed, and the signatures are reported as not checked;
5. with ``[release.sigstore]`` in the policy and a bundle folder, each release needs a
   Sigstore bundle ``<folder>/<hex SHA-256 of the DSSE payload>.sigstore.json`` that verifies
   offline for the policy's CI identity, over the statement or a digest it lists as the
   policy's ``signs`` allows (``release.sigstore``);
6. revocations are matched to the releases they revoke
   (:class:`attest.release.revocation_index.RevocationIndex`: by statement digest, or every
   release listing a revoked measurement); a statement revocation that names no release of
   this log is ``release.revocation.target`` (a measurement revocation may precede any
   release of that build, so it is not flagged);
7. with an artifact folder, each release's SNP MEASUREMENTs and TDX MRTD are recomputed
   (:mod:`verifier.audit_reproduce`): ``release.reproduce`` when one does not match,
   ``release.artifacts.missing`` when an artifact is not there.

The report lists every release (index, digest, subjects, source repository and commit,
measurements, signers, revoked-by) and every revocation; :attr:`AuditReport.ok` is False when
any entry was flagged. Nothing here reads the clock; the caller wires the network and files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attest.measure.tdx_mrtd import PageOrder
from attest.release.dsse import (
    VerifiedEntry,
    entry_digest,
    open_entry,
    parse_entry,
    statement_digest,
)
from attest.release.revocation_index import RevocationIndex, RevocationRecord
from attest.release.statement import REVOKES_STATEMENT, Release, Revocation, parse_statement
from transparency_log.client.log_client import LogClient, monitor
from transparency_log.common.errors import AttestlogError, FormatError
from transparency_log.core.checkpoint import Checkpoint
from verifier.audit_reproduce import (
    CHECK_ARTIFACTS_MISSING,
    CHECK_REPRODUCE,
    DEFAULT_SNP_GUEST_FEATURES,
    MISMATCH,
    MISSING,
    Reproduction,
    reproduce_release,
)
from verifier.log_checks import (
    CHECK_RELEASE_SIGNATURE,
    CHECK_RELEASE_SIGSTORE,
    check_release_sigstore,
    release_sigstore_targets,
)
from verifier.policy import ReleasePolicy

__all__ = [
    "CHECK_ENTRY_FORMAT",
    "CHECK_REVOCATION_TARGET",
    "AuditFlag",
    "AuditOptions",
    "AuditReport",
    "AuditedRelease",
    "AuditedRevocation",
    "Auditor",
    "audit_entries",
]

CHECK_ENTRY_FORMAT = "release.entry.format"
CHECK_REVOCATION_TARGET = "release.revocation.target"
SIGSTORE_SUFFIX = ".sigstore.json"


@dataclass(frozen=True)
class AuditFlag:
    """One entry-level problem: the check id, the entry's index and digest, why."""

    check: str
    index: int
    digest: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "index": self.index, "digest": self.digest,
                "message": self.message}

    def __str__(self) -> str:
        return f"{self.check}: entry {self.index} ({self.digest[:16]}): {self.message}"


@dataclass(frozen=True)
class AuditedRevocation:
    """A revocation entry: what it revokes (a statement or a measurement), the indexes of the
    releases of this log it revokes, why, who signed."""

    index: int
    digest: bytes
    revocation: Revocation
    signers: tuple[str, ...]
    release_indexes: tuple[int, ...] = ()

    @property
    def reason(self) -> str:
        return self.revocation.reason

    def to_json(self) -> dict[str, Any]:
        r = self.revocation
        return {"index": self.index, "digest": self.digest.hex(), "target": r.target,
                "revokes": r.value.hex(), "revokes_indexes": list(self.release_indexes),
                "reason": r.reason, "signers": list(self.signers)}


@dataclass(frozen=True)
class AuditedRelease:
    """A release entry as audited."""

    index: int
    digest: bytes
    release: Release
    signers: tuple[str, ...]
    sigstore_san: str | None = None
    revoked_by: tuple[AuditedRevocation, ...] = ()
    reproduction: Reproduction | None = None
    statement_digest: bytes = b""

    def to_json(self) -> dict[str, Any]:
        r = self.release
        return {
            "index": self.index, "digest": self.digest.hex(),
            "subjects": [s.to_json() for s in r.subjects],
            "source": {"repository": r.repository, "commit": r.commit},
            "builder": r.builder,
            "artifacts": [a.to_json() for a in r.artifacts],
            "measurements": r.measurements.to_json(),
            "signers": list(self.signers),
            "sigstore": self.sigstore_san,
            "revoked_by": [{"index": v.index, "digest": v.digest.hex(), "reason": v.reason}
                           for v in self.revoked_by],
            "reproduce": self.reproduction.to_json() if self.reproduction else None,
        }


@dataclass(frozen=True)
class AuditOptions:
    """What to judge entries against. ``release`` None: signatures are not checked."""

    release: ReleasePolicy | None = None
    reproduce_dir: Path | None = None
    sigstore_dir: Path | None = None
    snp_guest_features: tuple[int, ...] = DEFAULT_SNP_GUEST_FEATURES
    tdx_orders: tuple[PageOrder, ...] = (PageOrder.SINGLE, PageOrder.TWO)


@dataclass(frozen=True)
class AuditReport:
    """The outcome of one audit round."""

    origin: str
    checkpoint: Checkpoint
    previous: Checkpoint | None
    cosigners: tuple[str, ...] | None  # None: no witness policy given
    new_entries: int
    releases: tuple[AuditedRelease, ...]
    revocations: tuple[AuditedRevocation, ...]
    flags: tuple[AuditFlag, ...]
    signatures_checked: bool
    sigstore_checked: bool
    reproduce_checked: bool

    @property
    def ok(self) -> bool:
        return not self.flags

    def to_json(self) -> dict[str, Any]:
        cp = self.checkpoint
        return {
            "origin": self.origin,
            "checkpoint": {"size": cp.size, "root": cp.root.hex()},
            "previous_size": self.previous.size if self.previous else None,
            "cosigners": list(self.cosigners) if self.cosigners is not None else None,
            "new_entries": self.new_entries,
            "checks": {"log": "pass", "signatures": self.signatures_checked,
                       "sigstore": self.sigstore_checked, "reproduce": self.reproduce_checked},
            "releases": [r.to_json() for r in self.releases],
            "revocations": [v.to_json() for v in self.revocations],
            "flags": [f.to_json() for f in self.flags],
            "ok": self.ok,
        }


def _open(entry: bytes, release: ReleasePolicy | None) -> VerifiedEntry:
    """The entry opened under the accepted keys, or (no policy) parsed with its signers'
    key ids unverified. FormatError / VerificationError otherwise."""
    if release is not None:
        return open_entry(entry, release.keys, threshold=release.threshold)
    envelope = parse_entry(entry)
    return VerifiedEntry(parse_statement(envelope.payload),
                         tuple(s.keyid for s in envelope.signatures), entry_digest(entry), entry,
                         statement_digest(envelope.payload))


class _Judge:
    """Per-entry judgements that cost more than a signature check, cached by entry digest."""

    def __init__(self, options: AuditOptions) -> None:
        self.options = options
        self.opened: dict[bytes, VerifiedEntry | AttestlogError] = {}
        self.sigstore: dict[bytes, str | AttestlogError] = {}
        self.reproduced: dict[bytes, Reproduction] = {}

    def open(self, entry: bytes, digest: bytes) -> VerifiedEntry | AttestlogError:
        """Step 4 for one entry (cached by digest: ``--follow`` rounds reopen nothing)."""
        if digest not in self.opened:
            try:
                self.opened[digest] = _open(entry, self.options.release)
            except AttestlogError as err:
                self.opened[digest] = err
        return self.opened[digest]

    def sigstore_san(self, v: VerifiedEntry) -> str | AttestlogError | None:
        policy = self.options.release.sigstore if self.options.release else None
        folder = self.options.sigstore_dir
        if policy is None or folder is None:
            return None
        if v.digest not in self.sigstore:
            payload_sha = v.statement_digest
            path = folder / (payload_sha.hex() + SIGSTORE_SUFFIX)
            bundle = path.read_bytes() if path.is_file() else None
            try:
                self.sigstore[v.digest] = check_release_sigstore(
                    release_sigstore_targets(v, policy), bundle, policy)
            except AttestlogError as err:
                self.sigstore[v.digest] = err
        return self.sigstore[v.digest]

    def reproduction(self, v: VerifiedEntry) -> Reproduction | None:
        o = self.options
        if o.reproduce_dir is None or not isinstance(v.statement, Release):
            return None
        if v.digest not in self.reproduced:
            self.reproduced[v.digest] = reproduce_release(
                v.statement, o.reproduce_dir, snp_guest_features=o.snp_guest_features,
                tdx_orders=o.tdx_orders)
        return self.reproduced[v.digest]


def _error_text(err: AttestlogError) -> str:
    return str(err)


def audit_entries(entries: Sequence[bytes], options: AuditOptions, *,
                  judge: _Judge | None = None
                  ) -> tuple[tuple[AuditedRelease, ...], tuple[AuditedRevocation, ...],
                             tuple[AuditFlag, ...]]:
    """Steps 4-7 over ``entries`` (index = position): releases, revocations, flags."""
    judge = judge or _Judge(options)
    flags: list[AuditFlag] = []
    releases: list[AuditedRelease] = []
    revocations: list[AuditedRevocation] = []
    for index, entry in enumerate(entries):
        digest = entry_digest(entry)
        v = judge.open(entry, digest)
        if isinstance(v, AttestlogError):
            check = CHECK_ENTRY_FORMAT if isinstance(v, FormatError) else CHECK_RELEASE_SIGNATURE
            flags.append(AuditFlag(check, index, digest.hex(), _error_text(v)))
            continue
        if isinstance(v.statement, Revocation):
            revocations.append(AuditedRevocation(index, digest, v.statement, v.signers))
            continue
        san = judge.sigstore_san(v)
        if isinstance(san, AttestlogError):
            flags.append(AuditFlag(CHECK_RELEASE_SIGSTORE, index, digest.hex(),
                                   _error_text(san)))
            san = None
        reproduction = judge.reproduction(v)
        if reproduction is not None and reproduction.status in (MISSING, MISMATCH):
            check = CHECK_ARTIFACTS_MISSING if reproduction.status == MISSING else CHECK_REPRODUCE
            flags.append(AuditFlag(check, index, digest.hex(), reproduction.describe()))
        releases.append(AuditedRelease(index, digest, v.statement, v.signers, san, (),
                                       reproduction, v.statement_digest))
    linked: list[AuditedRevocation] = []
    revoking: dict[int, list[AuditedRevocation]] = {}
    for rev in revocations:
        one = RevocationIndex([RevocationRecord(rev.revocation, rev.index, rev.digest,
                                                rev.signers)])
        targets = tuple(r.index for r in releases
                        if one.match(r.statement_digest, r.release) is not None)
        if not targets and rev.revocation.target == REVOKES_STATEMENT:
            flags.append(AuditFlag(CHECK_REVOCATION_TARGET, rev.index, rev.digest.hex(),
                                   f"revokes {rev.revocation.describe()}, which is no release "
                                   "of this log (accepted by the policy)"))
        rev = dataclasses.replace(rev, release_indexes=targets)
        linked.append(rev)
        for target in targets:
            revoking.setdefault(target, []).append(rev)
    out = tuple(dataclasses.replace(r, revoked_by=tuple(revoking.get(r.index, ())))
                for r in releases)
    flags.sort(key=lambda f: (f.index, f.check))
    return out, tuple(linked), tuple(flags)


@dataclass
class Auditor:
    """Audits one log, round after round (``--follow``): entries already proven are kept in
    memory, so a later round reads only the new part (the store must be set for that)."""

    client: LogClient
    options: AuditOptions = field(default_factory=AuditOptions)
    entries: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._judge = _Judge(self.options)

    def run(self, progress: Callable[[int, int], None] | None = None) -> AuditReport:
        """One round: steps 1-3 (raising on any log-level failure), then steps 4-7."""
        store = self.client.store
        stored = store.last_seen(self.client.origin) if store is not None else None
        incremental = (stored is not None and bool(self.entries)
                       and stored.checkpoint.size == len(self.entries))
        kept = self.entries if incremental else []

        def collect(first: int, batch: list[bytes]) -> None:
            del kept[first:]
            kept.extend(batch)

        self.entries = []  # nothing is kept across a failed round
        result = monitor(self.client, progress=progress, from_start=not incremental,
                         on_entries=collect)
        if len(kept) != result.current.size:  # a stale, consistent view: the prefix we have
            del kept[result.current.size:]
        self.entries = kept
        releases, revocations, flags = audit_entries(kept, self.options, judge=self._judge)
        verified = result.verified
        cosigners = None
        if verified is not None and verified.quorum is not None:
            cosigners = tuple(sorted(verified.quorum.cosigned))
        o = self.options
        return AuditReport(
            origin=self.client.origin, checkpoint=result.current, previous=result.previous,
            cosigners=cosigners, new_entries=result.new_entries, releases=releases,
            revocations=revocations, flags=flags,
            signatures_checked=o.release is not None,
            sigstore_checked=(o.release is not None and o.release.sigstore is not None
                              and o.sigstore_dir is not None),
            reproduce_checked=o.reproduce_dir is not None)
