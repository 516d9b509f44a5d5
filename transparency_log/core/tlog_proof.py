"""c2sp.org/tlog-proof@v1: an offline proof that an entry is in a (witnessed) log.

Format (tlog-proof §"Format"), lines separated by ``\\n``::

    c2sp.org/tlog-proof@v1
    [extra <base64 opaque data>]          optional, unauthenticated, never trusted
    index <decimal>                       zero-based, canonical (no sign, no leading zero)
    <base64 hash>                         zero or more: the RFC 6962 §2.1.1 inclusion path,
    ...                                   leaf's sibling first, 32 bytes each
    <empty line>
    <checkpoint signed note, verbatim>    c2sp.org/tlog-checkpoint, with any cosignatures

Strictness (ours, documented in docs/formats.md): canonical base64 everywhere; ``extra`` data
non-empty (an empty one is omitted per the spec); at most :data:`MAX_PROOF_HASHES` path
hashes (a tree of 2**63 - 1 leaves has paths of at most 63); the whole file at most
:data:`transparency_log.core.note.MAX_NOTE_SIZE` + 8 KiB bytes. Malformed: FormatError
``tlog_proof.format``.

:func:`verify_tlog_proof` performs, in order: the log's checkpoint signature and origin
(:func:`transparency_log.core.checkpoint.open_checkpoint`), the witness quorum when a policy is
given (:func:`transparency_log.core.witness_policy.check_quorum`), and RFC 9162 §2.1.3.2
inclusion of ``SHA-256(0x00 || entry)`` at ``index`` (ProofError / FormatError
``log.inclusion``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from transparency_log.common.errors import FormatError, ProofError
from transparency_log.core.checkpoint import Checkpoint, open_checkpoint, parse_decimal
from transparency_log.core.merkle import leaf_hash, verify_inclusion
from transparency_log.core.note import MAX_NOTE_SIZE, NoteVerifier, b64decode_canonical, parse_note
from transparency_log.core.witness_policy import (
    QuorumResult,
    WitnessPolicy,
    check_cosignatures,
    check_quorum,
    policy_lists_log,
)

__all__ = [
    "HEADER",
    "MAX_PROOF_HASHES",
    "TlogProof",
    "parse_tlog_proof",
    "verify_tlog_proof",
    "verify_tlog_proof_detailed",
]

HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_HASHES = 63
MAX_PROOF_SIZE = MAX_NOTE_SIZE + 8192
CHECK_FORMAT = "tlog_proof.format"
CHECK_INCLUSION = "log.inclusion"


@dataclass(frozen=True)
class TlogProof:
    """An entry's index, its inclusion path, the signed checkpoint note, optional extra data."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint_note: bytes
    extra: bytes | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.hashes, tuple):
            object.__setattr__(self, "hashes", tuple(self.hashes))
        if isinstance(self.index, bool) or not isinstance(self.index, int) or self.index < 0:
            raise FormatError(CHECK_FORMAT, "index must be a non-negative integer",
                              field="index", got=self.index)
        if len(self.hashes) > MAX_PROOF_HASHES:
            raise FormatError(CHECK_FORMAT, "too many proof hashes", field="proof",
                              got=len(self.hashes), want=f"<= {MAX_PROOF_HASHES}")
        for i, h in enumerate(self.hashes):
            if not isinstance(h, bytes) or len(h) != 32:
                raise FormatError(CHECK_FORMAT, "proof hashes are 32 bytes",
                                  field=f"proof[{i}]")
        if self.extra is not None and (not isinstance(self.extra, bytes) or not self.extra):
            raise FormatError(CHECK_FORMAT, "extra data must be non-empty bytes or None",
                              field="extra")
        parse_note(self.checkpoint_note)

    def to_text(self) -> bytes:
        """The ``.tlog-proof`` file bytes."""
        lines = [HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode("ascii"))
        lines.append(f"index {self.index}")
        lines.extend(base64.b64encode(h).decode("ascii") for h in self.hashes)
        return ("\n".join(lines) + "\n\n").encode() + self.checkpoint_note


def _field_line(line: str, keyword: str) -> str | None:
    prefix = keyword + " "
    return line[len(prefix):] if line.startswith(prefix) else None


def parse_tlog_proof(data: bytes) -> TlogProof:
    """Parse a ``c2sp.org/tlog-proof@v1`` file strictly (FormatError ``tlog_proof.format``)."""
    if not isinstance(data, bytes | bytearray):
        raise FormatError(CHECK_FORMAT, "proof must be bytes", got=type(data).__name__)
    data = bytes(data)
    if len(data) > MAX_PROOF_SIZE:
        raise FormatError(CHECK_FORMAT, "proof too large", got=len(data),
                          want=f"<= {MAX_PROOF_SIZE} bytes")
    split = data.find(b"\n\n")
    if split < 0:
        raise FormatError(CHECK_FORMAT, "no empty line before the checkpoint", field="proof")
    head, note = data[:split], data[split + 2:]
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise FormatError(CHECK_FORMAT, "proof header must be ASCII", field="proof") from None
    if lines[0] != HEADER:
        raise FormatError(CHECK_FORMAT, "first line must be the tlog-proof header",
                          field="header", got=lines[0][:64], want=HEADER)
    pos = 1
    extra = None
    if pos < len(lines) and (b64 := _field_line(lines[pos], "extra")) is not None:
        extra = b64decode_canonical(b64, CHECK_FORMAT, "extra")
        if not extra:
            raise FormatError(CHECK_FORMAT, "empty extra data (omit the line instead)",
                              field="extra")
        pos += 1
    if pos >= len(lines) or (index_text := _field_line(lines[pos], "index")) is None:
        raise FormatError(CHECK_FORMAT, "missing index line", field="index",
                          got=lines[pos][:64] if pos < len(lines) else None, want="index N")
    index = parse_decimal(index_text, CHECK_FORMAT, "index")
    hash_lines = lines[pos + 1:]
    if len(hash_lines) > MAX_PROOF_HASHES:
        raise FormatError(CHECK_FORMAT, "too many proof hashes", field="proof",
                          got=len(hash_lines), want=f"<= {MAX_PROOF_HASHES}")
    hashes = []
    for i, line in enumerate(hash_lines):
        h = b64decode_canonical(line, CHECK_FORMAT, f"proof[{i}]")
        if len(h) != 32:
            raise FormatError(CHECK_FORMAT, "proof hashes are 32 bytes", field=f"proof[{i}]",
                              got=len(h), want=32)
        hashes.append(h)
    return TlogProof(index, tuple(hashes), note, extra)


def verify_tlog_proof_detailed(
    entry: bytes,
    proof: TlogProof,
    log_verifier: NoteVerifier,
    witness_policy: WitnessPolicy | None = None,
    origin: str | None = None,
) -> tuple[Checkpoint, QuorumResult | None]:
    """:func:`verify_tlog_proof`, also returning the quorum evidence (None without a policy)."""
    # (1) the log's signature on the checkpoint, and its origin
    cp, note = open_checkpoint(proof.checkpoint_note, log_verifier, origin)
    # (2) the witnesses' cosignatures meet the policy's quorum (and, if the policy lists
    #     logs and the caller's key is not one of them, a policy log signed it too)
    quorum = None
    if witness_policy is not None:
        if not witness_policy.logs or policy_lists_log(witness_policy, log_verifier):
            quorum = check_cosignatures(note, cp, witness_policy)
        else:
            quorum = check_quorum(proof.checkpoint_note, witness_policy)
    # (3) RFC 9162 §2.1.3.2 inclusion of the entry's leaf hash under the checkpoint's root
    try:
        verify_inclusion(proof.index, cp.size, leaf_hash(entry), proof.hashes, cp.root)
    except ProofError as err:
        raise ProofError(CHECK_INCLUSION, "entry is not in the log at this index",
                         expected_root=err.expected_root,
                         calculated_root=err.calculated_root) from None
    except FormatError as err:
        raise FormatError(CHECK_INCLUSION, err.message, field=err.field, got=err.got,
                          want=err.want) from None
    return cp, quorum


def verify_tlog_proof(
    entry: bytes,
    proof: TlogProof,
    log_verifier: NoteVerifier,
    witness_policy: WitnessPolicy | None = None,
    origin: str | None = None,
) -> Checkpoint:
    """Verify a tlog-proof for ``entry`` offline; return the checkpoint it is included in."""
    return verify_tlog_proof_detailed(entry, proof, log_verifier, witness_policy, origin)[0]
