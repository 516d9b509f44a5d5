"""C2SP signed-note (c2sp.org/signed-note@v1.0.0): keys, signing, strict parsing, verification.

Wire format (signed-note §"Format"), byte by byte::

    note      = text "\\n" sigline+          ; text ends in "\\n"; the blank line separates
    sigline   = U+2014 " " name " " base64(key_id[4] || signature) "\\n"

- The whole note is valid UTF-8 with no ASCII control character other than ``\\n``.
- The text is everything up to and including the newline before the *last* blank line.
- Key names are non-empty, contain no Unicode space and no ``+``.
- ``key_id`` is the big-endian uint32 ``SHA-256(name || 0x0A || type || public key)[:4]``
  (§"Signatures"); type ``0x01`` is Ed25519 over the note text (§"Ed25519 signatures").

Key strings (the Go ``golang.org/x/mod/sumdb/note`` encodings the spec's "vkeys" follow)::

    verifier key  name "+" hex8(key_id) "+" base64(type || public key)
    signer key    "PRIVATE+KEY+" name "+" hex8(key_id) "+" base64(type || private seed)

Verification (§"Signatures"): signatures from unknown (name, key ID) pairs are ignored; each
signature from a known key is verified and one that fails rejects the whole note
(``SignatureError``, check ``note.signature``); a note with no verified signature from a known
key is rejected (``VerificationError``, check ``note.unverified``). Malformed input is a
``FormatError`` (check ``note.format``); a bad key string is a ``TrustConfigError`` (check
``note.key``).

Caps (the spec asks for a limit and at least 16 signatures): at most
:data:`MAX_SIGNATURES` signature lines (counted before duplicates are dropped, as Go does) and
:data:`MAX_NOTE_SIZE` bytes. Identical signature lines are counted once.

This module knows the signature type *bytes* and Ed25519 signing; which types a verifier key
may have and what verifies each (Ed25519 here, ECDSA and RFC 6962 in
:mod:`transparency_log.core.note_foreign`, cosignatures in
:mod:`transparency_log.core.cosignature`) is decided in one place,
:mod:`transparency_log.core.key_types` (its :class:`~transparency_log.core.key_types.Verifier`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from transparency_log.common.errors import (
    FormatError,
    SignatureError,
    TrustConfigError,
    VerificationError,
)
from transparency_log.common.parse_cache import frozen_value, parse_once
from transparency_log.core.note_text import (
    _b64decode_bytes,
    _is_valid_name,
    b64decode_canonical,
    check_note_chars,
)

__all__ = [
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "SIG_COSIGNATURE_V1",
    "SIG_ECDSA",
    "SIG_ED25519",
    "SIG_RFC6962",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "Signer",
    "append_signatures",
    "b64decode_canonical",
    "check_note_chars",
    "generate_key_pair",
    "generate_keys",
    "key_id_for",
    "open_note",
    "open_signer_key",
    "parse_note",
    "parse_vkey",
    "sign_note",
]

# Signature type identifier bytes (signed-note §"Signature types").
SIG_ED25519 = 0x01
SIG_ECDSA = 0x02
SIG_COSIGNATURE_V1 = 0x04
SIG_RFC6962 = 0x05

MAX_SIGNATURES = 100
"""Signature lines accepted per note (golang.org/x/mod's limit; the spec requires >= 16)."""
MAX_NOTE_SIZE = 1_000_000
PARSE_CACHE_MAX_NOTE = 8192
"""Notes up to this size (every checkpoint in practice) are parsed once per process."""
"""Bytes accepted per note (the same cap golang.org/x/mod/sumdb/tlog puts on tree notes)."""

KEY_ID_SIZE = 4
ED25519_KEY_SIZE = 32
ED25519_SIG_SIZE = 64
SIG_PREFIX = "\u2014 ".encode()  # em dash, space
PRIVATE_PREFIX = "PRIVATE+KEY+"

CHECK_FORMAT = "note.format"
CHECK_SIGNATURE = "note.signature"
CHECK_UNVERIFIED = "note.unverified"
CHECK_KEY = "note.key"


# --------------------------------------------------------------------------------------------
# Key IDs


def key_id_for(name: str, sig_type: int, public_key: bytes) -> bytes:
    """``SHA-256(name || 0x0A || type || public key)[:4]`` (signed-note §"Signatures")."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


# --------------------------------------------------------------------------------------------
# Keys


def split_key_string(key: str, what: str) -> tuple[str, bytes, int, bytes]:
    """``name+hex8+base64(type||material)`` -> (name, key_id, type, material)."""
    parts = key.split("+", 2)  # the base64 part may itself contain '+'
    if len(parts) != 3:
        raise TrustConfigError(CHECK_KEY, f"{what} must be name+hex8+base64", field=what,
                               got=len(parts), want="3 '+'-separated parts")
    name, hex_id, b64 = parts
    if not _is_valid_name(name):
        raise TrustConfigError(CHECK_KEY, "invalid key name", field=f"{what} name", got=name)
    if len(hex_id) != 8 or any(c not in "0123456789abcdef" for c in hex_id):
        raise TrustConfigError(CHECK_KEY, "key ID must be 8 lowercase hex digits",
                               field=f"{what} key ID", got=hex_id)
    try:
        raw = b64decode_canonical(b64, CHECK_KEY, f"{what} key")
    except FormatError as err:  # never echo key material: it may be a private key
        raise TrustConfigError(CHECK_KEY, err.message, field=err.field,
                               got=f"{len(b64)} characters") from None
    if not raw:
        raise TrustConfigError(CHECK_KEY, "empty key material", field=f"{what} key")
    return name, bytes.fromhex(hex_id), raw[0], raw[1:]


def parse_vkey(vkey: str) -> tuple[str, bytes, int, bytes]:
    """Split a verifier key string into (name, key ID as written, type byte, public key).

    Only the syntax is checked here; the key ID is checked against the key by the verifier
    class of that type.
    """
    if not isinstance(vkey, str):
        raise TrustConfigError(CHECK_KEY, "verifier key must be a string", field="vkey",
                               got=type(vkey).__name__)
    return split_key_string(vkey.strip(), "vkey")


def require_key_id(name: str, written: bytes, derived: bytes, what: str) -> None:
    if written != derived:
        raise TrustConfigError(CHECK_KEY, "key ID does not match the key", field=f"{what} key ID",
                               got=written, want=derived)


@runtime_checkable
class NoteVerifier(Protocol):
    """Anything that can check note signatures of one (name, key ID)."""

    name: str
    key_id: bytes

    def verify(self, text: bytes, sig: bytes) -> bool:
        """``sig`` is the signature with the 4-byte key ID already removed."""
        ...


class NoteSigner(Protocol):
    """Anything that can sign a note text as one (name, key ID)."""

    name: str
    key_id: bytes

    def sign(self, text: bytes) -> bytes:
        """The signature bytes, without the 4-byte key ID."""
        ...


def open_signer_key(skey: str, types: tuple[int, ...]
                    ) -> tuple[str, int, Ed25519PrivateKey, bytes]:
    """An Ed25519 signer key string ``PRIVATE+KEY+name+hex8+base64(type || 32-byte seed)`` whose
    type is one of ``types`` -> (name, type, private key, raw public key), its written key ID
    checked. Errors never echo key material (TrustConfigError ``note.key``)."""
    skey = skey.strip() if isinstance(skey, str) else ""
    if not skey.startswith(PRIVATE_PREFIX):
        raise TrustConfigError(CHECK_KEY, "signer key must start with PRIVATE+KEY+",
                               field="skey")
    name, written_id, sig_type, seed = split_key_string(skey[len(PRIVATE_PREFIX):], "skey")
    if sig_type not in types:
        raise TrustConfigError(CHECK_KEY, "unsupported signer key type", field="skey type",
                               got=f"0x{sig_type:02x}",
                               want=" or ".join(f"0x{t:02x}" for t in types))
    if len(seed) != ED25519_KEY_SIZE:
        raise TrustConfigError(CHECK_KEY, "Ed25519 seed must be 32 bytes", field="skey key",
                               got=len(seed), want=ED25519_KEY_SIZE)
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    require_key_id(name, written_id, key_id_for(name, sig_type, public), "skey")
    return name, sig_type, private, public


class Signer:
    """An Ed25519 signer key string ``PRIVATE+KEY+name+hex8+base64(0x01 || seed)``."""

    def __init__(self, skey: str) -> None:
        name, sig_type, self._private, self.public_key = open_signer_key(skey, (SIG_ED25519,))
        self.name = name
        self.key_id = key_id_for(name, sig_type, self.public_key)

    def sign(self, text: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``text`` (without the key ID)."""
        return self._private.sign(text)

    def verifier_key(self) -> str:
        """The matching verifier key string."""
        return _format_key(self.name, SIG_ED25519, self.public_key)

    def __repr__(self) -> str:  # never show the seed
        return f"Signer(name={self.name!r}, key_id={self.key_id.hex()})"


def _format_key(name: str, sig_type: int, material: bytes, key_id: bytes | None = None) -> str:
    kid = key_id if key_id is not None else key_id_for(name, sig_type, material)
    b64 = base64.b64encode(bytes([sig_type]) + material).decode("ascii")
    return f"{name}+{kid.hex()}+{b64}"


def generate_keys(name: str, seed: bytes | None = None) -> tuple[str, str]:
    """A fresh Ed25519 key pair: (signer key string, verifier key string).

    ``seed`` (32 bytes) makes it deterministic, for tests; by default the seed is random.
    """
    return generate_key_pair(name, SIG_ED25519, seed)


def generate_key_pair(name: str, sig_type: int, seed: bytes | None = None) -> tuple[str, str]:
    """An Ed25519 key pair whose strings carry ``sig_type`` (0x01 note key, 0x04 cosigner)."""
    if not _is_valid_name(name):
        raise TrustConfigError(CHECK_KEY, "invalid key name", field="key name", got=name,
                               want="non-empty, no spaces, no '+'")
    if seed is None:
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
    elif len(seed) != ED25519_KEY_SIZE:
        raise TrustConfigError(CHECK_KEY, "Ed25519 seed must be 32 bytes", field="seed",
                               got=len(seed), want=ED25519_KEY_SIZE)
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key_id = key_id_for(name, sig_type, public)
    skey = PRIVATE_PREFIX + _format_key(name, sig_type, seed, key_id)
    return skey, _format_key(name, sig_type, public)


# --------------------------------------------------------------------------------------------
# Notes


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID, and the signature without the key ID."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> bytes:
        """The signature line, ``— name base64(key_id || signature)\\n``."""
        b64 = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return SIG_PREFIX + f"{self.name} {b64}\n".encode()


@dataclass(frozen=True)
class Note:
    """An opened note: its text, the verified signatures, and those from unknown keys."""

    text: bytes
    sigs: list[NoteSignature] = field(default_factory=list)
    unverified_sigs: list[NoteSignature] = field(default_factory=list)


def parse_note(msg: bytes) -> tuple[bytes, list[NoteSignature]]:
    """Split a signed note into its text and signature lines, checking only the format.

    Identical signature lines are returned once. No signature is verified: callers that
    trust the text must use :func:`open_note`. The parse of a note seen before is reused
    (:mod:`transparency_log.common.parse_cache`).
    """
    text, sigs = _parse_note(msg)
    return text, list(sigs)


@parse_once(max_entries=256, max_input=PARSE_CACHE_MAX_NOTE)
def _parse_note(msg: bytes) -> tuple[bytes, tuple[NoteSignature, ...]]:
    if not isinstance(msg, bytes | bytearray):
        raise FormatError(CHECK_FORMAT, "note must be bytes", got=type(msg).__name__)
    msg = bytes(msg)
    if len(msg) > MAX_NOTE_SIZE:
        raise FormatError(CHECK_FORMAT, "note too large", field="note", got=len(msg),
                          want=f"<= {MAX_NOTE_SIZE} bytes")
    check_note_chars(msg, CHECK_FORMAT, "note")
    split = msg.rfind(b"\n\n")
    if split < 0:
        raise FormatError(CHECK_FORMAT, "no blank line before the signatures", field="note")
    text, block = msg[: split + 1], msg[split + 2 :]
    if not block:
        raise FormatError(CHECK_FORMAT, "no signature lines", field="signatures")
    if not block.endswith(b"\n"):
        raise FormatError(CHECK_FORMAT, "note must end with a newline", field="signatures")
    lines = block[:-1].split(b"\n")
    if len(lines) > MAX_SIGNATURES:
        raise FormatError(CHECK_FORMAT, "too many signatures", field="signatures",
                          got=len(lines), want=f"<= {MAX_SIGNATURES}")
    sigs: list[NoteSignature] = []
    seen: set[bytes] = set()
    skip = len(SIG_PREFIX)
    for n, line in enumerate(lines):
        if not line.startswith(SIG_PREFIX):
            raise FormatError(CHECK_FORMAT, "signature line must start with an em dash and "
                              "a space", field=f"signature line {n + 1}")
        # the note is valid UTF-8 and the cuts are at ASCII bytes: each part decodes
        name_bytes, sep, b64 = line[skip:].partition(b" ")
        name = name_bytes.decode("utf-8")
        if not sep or not _is_valid_name(name):
            raise FormatError(CHECK_FORMAT, "invalid key name in signature line",
                              field=f"signature line {n + 1}", got=name)
        raw = _b64decode_bytes(b64)
        if raw is None:  # not canonical base64: the precise error
            raw = b64decode_canonical(b64.decode("utf-8"), CHECK_FORMAT,
                                      f"signature line {n + 1}")
        if len(raw) <= KEY_ID_SIZE:
            where = f"signature line {n + 1}"
            raise FormatError(CHECK_FORMAT, "signature too short", field=where, got=len(raw),
                              want=f"> {KEY_ID_SIZE} bytes")
        if line in seen:
            continue
        seen.add(line)
        sigs.append(frozen_value(NoteSignature, {  # every field checked above
            "name": name, "key_id": raw[:KEY_ID_SIZE], "signature": raw[KEY_ID_SIZE:]}))
    return text, tuple(sigs)


def _index_verifiers(verifiers: Sequence[NoteVerifier]) -> dict[tuple[str, bytes], NoteVerifier]:
    known: dict[tuple[str, bytes], NoteVerifier] = {}
    for v in verifiers:
        k = (v.name, bytes(v.key_id))
        other = known.get(k)
        if other is not None and getattr(other, "public_key", None) != getattr(
            v, "public_key", None
        ):
            raise TrustConfigError(CHECK_KEY, "two different keys share a name and key ID",
                                   field="key name", got=f"{v.name}+{v.key_id.hex()}")
        known[k] = v
    return known


def open_note(msg: bytes, verifiers: Sequence[NoteVerifier]) -> Note:
    """Parse ``msg`` and verify its signatures against ``verifiers`` (signed-note §"Signatures").

    Returns the :class:`Note` with ``sigs`` (verified, one per known key) and
    ``unverified_sigs`` (unknown keys, ignored). Raises FormatError (malformed),
    SignatureError (a known key's signature fails) or VerificationError check
    ``note.unverified`` (no signature from a known key).
    """
    text, lines = parse_note(msg)
    known = _index_verifiers(verifiers)
    verified: list[NoteSignature] = []
    verified_keys: set[tuple[str, bytes]] = set()
    unverified: list[NoteSignature] = []
    for sig in lines:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            unverified.append(sig)
            continue
        if not v.verify(text, sig.signature):
            raise SignatureError(CHECK_SIGNATURE, "signature from a known key does not verify",
                                 field="signature",
                                 got=f"{sig.name}+{sig.key_id.hex()}")
        if (sig.name, sig.key_id) not in verified_keys:
            verified_keys.add((sig.name, sig.key_id))
            verified.append(sig)
    note = frozen_value(Note, {"text": text, "sigs": verified, "unverified_sigs": unverified})
    if not verified:
        want = ", ".join(f"{v.name}+{v.key_id.hex()}" for v in verifiers) or "(no trusted key)"
        got = ", ".join(f"{s.name}+{s.key_id.hex()}" for s in unverified)
        raise VerificationError(CHECK_UNVERIFIED, "note has no signature from a trusted key",
                                field="signatures", got=got, want=want)
    return note


def _check_text(text: bytes) -> None:
    if not isinstance(text, bytes | bytearray):
        raise FormatError(CHECK_FORMAT, "note text must be bytes", got=type(text).__name__)
    check_note_chars(bytes(text), CHECK_FORMAT, "text")
    if not text.endswith(b"\n"):
        raise FormatError(CHECK_FORMAT, "note text must end with a newline", field="text")


def sign_note(text: bytes, signers: Sequence[NoteSigner]) -> bytes:
    """The signed note of ``text`` (which must end in a newline) signed by each signer."""
    _check_text(text)
    if not signers:
        raise FormatError(CHECK_FORMAT, "a note needs at least one signer", field="signatures")
    lines = [NoteSignature(s.name, s.key_id, s.sign(bytes(text))) for s in signers]
    return _assemble(bytes(text), lines)


def _assemble(text: bytes, sigs: Sequence[NoteSignature]) -> bytes:
    msg = text + b"\n" + b"".join(s.line() for s in sigs)
    parse_note(msg)  # never emit what we would refuse (size, count, names)
    return msg


def append_signatures(msg: bytes, sigs: Sequence[NoteSignature]) -> bytes:
    """Add signature lines (e.g. witness cosignatures) to a signed note, dropping duplicates."""
    text, existing = parse_note(msg)
    merged = list(existing)
    for s in sigs:
        if s not in merged:
            merged.append(s)
    return _assemble(text, merged)
