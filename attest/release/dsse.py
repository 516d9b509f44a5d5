"""DSSE envelopes around release statements, and the log entry they form.

DSSE v1 (https://github.com/secure-systems-lab/dsse, envelope.md and protocol.md)::

    {"payload": BASE64(STATEMENT), "payloadType": "application/vnd.in-toto+json",
     "signatures": [{"keyid": KEYID, "sig": BASE64(SIG)}]}

Each signature is over the pre-authentication encoding (protocol.md)::

    PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

with LEN the ASCII decimal byte length and SP one space (0x20).

attestlog's profile (docs/formats.md, "Release entries"):
- the **log entry** is the RFC 8785 canonical JSON of the envelope, at most
  :data:`~attest.release.statement.MAX_ENTRY_SIZE` bytes;
- ``payload`` and ``sig`` are standard base64 with padding, canonical (decode then re-encode
  gives the same text); ``keyid`` is the signer's key id (:mod:`attest.release.keys`);
  1..:data:`MAX_SIGNATURES` signatures with distinct key ids;
- the **entry digest** (what `attest publish` prints, and how a node's stapled entry is
  named in transcripts) is SHA-256 over the log entry bytes exactly as logged (not the RFC
  9162 leaf hash, which is SHA-256(0x00 || entry));
- the **statement digest** (what a revocation names) is SHA-256 over the DSSE payload. The
  same signed statement can be logged in several entries (the signature list is not signed:
  anyone can add a signature under an unknown key id, or drop one), so only the statement
  digest names a release whatever signatures surround it (issue 16).

Verification (:func:`open_entry`, like sumdb's ``note.Open``: no trusted statement without
it): a signature whose key id names an accepted key MUST verify (else SignatureError
``release.dsse.signature``); signatures by unknown key ids are ignored; with fewer than
``threshold`` accepted signers the entry is refused (VerificationError
``release.dsse.signer``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from attest.release import canonical_json
from attest.release.json_fields import as_object
from attest.release.keys import ReleasePublicKey, ReleaseSigningKey
from attest.release.statement import MAX_ENTRY_SIZE, Release, Revocation, parse_statement
from transparency_log.common.errors import FormatError, SignatureError, VerificationError
from transparency_log.common.parse_cache import parse_once

__all__ = [
    "MAX_SIGNATURES",
    "PAYLOAD_TYPE",
    "Envelope",
    "Signature",
    "VerifiedEntry",
    "entry_digest",
    "entry_statement_digest",
    "open_entry",
    "pae",
    "parse_entry",
    "sign_statement",
    "statement_digest",
]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
MAX_SIGNATURES = 8
CHECK = "release.dsse"
_KEYID = re.compile(r"[0-9a-f]{64}")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding (protocol.md)."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _b64decode(text: Any, field: str) -> bytes:
    if not isinstance(text, str):
        raise FormatError(CHECK, "wrong type", field=field, got=type(text).__name__,
                          want="base64 string")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError(CHECK, "bad base64", field=field, got=text[:60]) from None
    if base64.b64encode(data).decode("ascii") != text:
        raise FormatError(CHECK, "non-canonical base64", field=field, got=text[:60])
    return data


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope with an in-toto payload; :meth:`encode` gives the log entry."""

    payload: bytes
    signatures: tuple[Signature, ...]
    payload_type: str = PAYLOAD_TYPE

    def to_json(self) -> dict[str, Any]:
        return {"payload": base64.b64encode(self.payload).decode("ascii"),
                "payloadType": self.payload_type,
                "signatures": [{"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")}
                               for s in self.signatures]}

    def encode(self) -> bytes:
        """The log entry: canonical JSON of the envelope, at most MAX_ENTRY_SIZE bytes."""
        data = canonical_json.encode(self.to_json())
        if len(data) > MAX_ENTRY_SIZE:
            raise FormatError("release.entry.size", "envelope larger than a log entry",
                              got=len(data), want=f"<= {MAX_ENTRY_SIZE}")
        return data


@parse_once(max_entries=1024, max_input=MAX_ENTRY_SIZE)
def parse_entry(data: bytes) -> Envelope:
    """Strictly parse a log entry into an Envelope (signatures NOT checked: see open_entry).

    An entry parsed before is not parsed again (:mod:`transparency_log.common.parse_cache`): audit
    and the verifier's log checks look at one entry in several steps."""
    if len(data) > MAX_ENTRY_SIZE:
        raise FormatError("release.entry.size", "entry larger than a log entry",
                          got=len(data), want=f"<= {MAX_ENTRY_SIZE}")
    f = as_object(canonical_json.decode(data), "", CHECK)
    payload = _b64decode(f.raw("payload"), "payload")
    payload_type = f.string("payloadType", choices=(PAYLOAD_TYPE,))
    sigs: list[Signature] = []
    for i, item in enumerate(f.list("signatures", max_items=MAX_SIGNATURES, min_items=1)):
        s = as_object(item, f"signatures[{i}]", CHECK)
        keyid = s.string("keyid", max_len=64, pattern=_KEYID)
        sig = _b64decode(s.raw("sig"), f"signatures[{i}].sig")
        s.finish()
        sigs.append(Signature(keyid, sig))
    f.finish()
    if len({s.keyid for s in sigs}) != len(sigs):
        raise FormatError(CHECK, "duplicate keyid", field="signatures")
    return Envelope(payload, tuple(sigs), payload_type)


def entry_digest(entry: bytes) -> bytes:
    """SHA-256 of a log entry's bytes as logged (names one entry, not its statement)."""
    return hashlib.sha256(entry).digest()


def statement_digest(payload: bytes) -> bytes:
    """SHA-256 of a DSSE payload (the signed statement): the digest a revocation names."""
    return hashlib.sha256(payload).digest()


def entry_statement_digest(entry: bytes) -> bytes:
    """The statement digest of a log entry (parsed strictly; signatures NOT checked)."""
    return statement_digest(parse_entry(entry).payload)


def sign_statement(statement: Release | Revocation,
                   keys: Sequence[ReleaseSigningKey]) -> Envelope:
    """Sign a statement's canonical JSON with each key; returns the envelope."""
    if not 1 <= len(keys) <= MAX_SIGNATURES:
        raise FormatError(CHECK, "wrong number of signing keys", field="signatures",
                          got=len(keys), want=f"1..{MAX_SIGNATURES}")
    payload = statement.encode()
    message = pae(PAYLOAD_TYPE, payload)
    sigs = tuple(Signature(k.keyid, k.sign(message)) for k in keys)
    if len({s.keyid for s in sigs}) != len(sigs):
        raise FormatError(CHECK, "duplicate signing key", field="signatures")
    envelope = Envelope(payload, sigs)
    envelope.encode()  # size cap
    return envelope


@dataclass(frozen=True)
class VerifiedEntry:
    """A log entry whose signatures verified: the statement, who signed, the entry digest
    and the statement digest (SHA-256 of the payload, what revocations name)."""

    statement: Release | Revocation
    signers: tuple[str, ...]
    digest: bytes
    entry: bytes
    statement_digest: bytes


def open_entry(entry: bytes, accepted: Iterable[ReleasePublicKey], *,
               threshold: int = 1) -> VerifiedEntry:
    """Parse a log entry, verify its signatures against ``accepted`` keys, parse the statement.

    SignatureError when an accepted key's signature fails; VerificationError when fewer than
    ``threshold`` accepted keys signed. The statement is parsed only after that.
    """
    envelope = parse_entry(entry)
    keys = {k.keyid: k for k in accepted}
    message = pae(envelope.payload_type, envelope.payload)
    signers: list[str] = []
    for i, sig in enumerate(envelope.signatures):
        key = keys.get(sig.keyid)
        if key is None:
            continue
        if not key.verify(sig.sig, message):
            raise SignatureError(f"{CHECK}.signature", "release signature does not verify",
                                 field=f"signatures[{i}]", got=sig.keyid)
        signers.append(sig.keyid)
    if len(signers) < max(threshold, 1):
        raise VerificationError(f"{CHECK}.signer", "not signed by enough accepted release keys",
                                field="signatures",
                                got=",".join(s.keyid for s in envelope.signatures),
                                want=f"{max(threshold, 1)} of {sorted(keys)}")
    statement = parse_statement(envelope.payload)
    return VerifiedEntry(statement, tuple(signers), entry_digest(entry), entry,
                         statement_digest(envelope.payload))
