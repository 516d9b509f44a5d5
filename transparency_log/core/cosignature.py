"""C2SP tlog-cosignature, Ed25519 ``cosignature/v1`` (c2sp.org/tlog-cosignature).

A cosignature is a note signature line added to a checkpoint by a witness (§"Format")::

    — <witness name> base64(key_id[4] || timestamp[8] || ed25519_signature[64])

- ``key_id = SHA-256(name || 0x0A || 0x04 || 32-byte Ed25519 public key)[:4]``: type byte
  0x04, *not* the 0x01 of plain note keys, even when the witness's vkey string is written with
  type 0x01 (as tessera's test keys are). We accept witness vkeys and signer keys of type 0x04
  (the spec's encoding) and 0x01 (re-deriving the ID with 0x04).
- ``timestamp``: big-endian u64 POSIX seconds, at most 2**63 - 1 (§"Format",
  ``timestamped_signature``).
- The signed message (§"Ed25519 signed message") is::

      "cosignature/v1\\n" "time " decimal(timestamp) "\\n" <checkpoint note text>

  where the checkpoint note text is the whole body including extension lines and its final
  newline, without any signature line.

A cosignature line of another key type (ML-DSA-44, 0x06) is simply an unknown signature.
Errors: FormatError ``cosignature.format`` (wrong length, timestamp over 2**63 - 1),
SignatureError ``cosignature.signature``; bad key strings are TrustConfigError ``note.key``.
"""

from __future__ import annotations

import base64
import struct

from transparency_log.common.errors import FormatError, SignatureError, TrustConfigError
from transparency_log.core.checkpoint import parse_checkpoint
from transparency_log.core.key_types import ed25519_public_key, ed25519_verify
from transparency_log.core.note import (
    CHECK_KEY,
    ED25519_KEY_SIZE,
    ED25519_SIG_SIZE,
    SIG_COSIGNATURE_V1,
    SIG_ED25519,
    NoteSignature,
    generate_key_pair,
    key_id_for,
    open_signer_key,
    parse_vkey,
    require_key_id,
    split_key_string,
)

__all__ = [
    "COSIGNATURE_HEADER",
    "COSIGNATURE_SIZE",
    "MAX_TIMESTAMP",
    "CosignatureSigner",
    "CosignatureVerifier",
    "cosign",
    "cosignature",
    "cosigned_message",
    "generate_cosigner_keys",
    "parse_cosignature",
    "verify_cosignature",
]

COSIGNATURE_HEADER = b"cosignature/v1\n"
TIMESTAMP_SIZE = 8
COSIGNATURE_SIZE = TIMESTAMP_SIZE + ED25519_SIG_SIZE  # after the 4-byte key ID
MAX_TIMESTAMP = 2**63 - 1
CHECK_FORMAT = "cosignature.format"
CHECK_SIGNATURE = "cosignature.signature"
_ACCEPTED_TYPES = (SIG_COSIGNATURE_V1, SIG_ED25519)


def _check_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not (
        0 <= timestamp <= MAX_TIMESTAMP
    ):
        raise FormatError(CHECK_FORMAT, "timestamp out of range", field="timestamp",
                          got=timestamp, want=f"0..{MAX_TIMESTAMP}")


def cosigned_message(checkpoint_text: bytes, timestamp: int) -> bytes:
    """The bytes an Ed25519 cosigner signs (tlog-cosignature §"Ed25519 signed message")."""
    _check_timestamp(timestamp)
    return COSIGNATURE_HEADER + b"time %d\n" % timestamp + checkpoint_text


def parse_cosignature(sig: bytes) -> tuple[int, bytes]:
    """Split a cosignature (after the key ID) into (timestamp, 64-byte Ed25519 signature)."""
    if len(sig) != COSIGNATURE_SIZE:
        raise FormatError(CHECK_FORMAT, "cosignature must be timestamp(8) || signature(64)",
                          field="timestamped_signature", got=len(sig), want=COSIGNATURE_SIZE)
    timestamp = int.from_bytes(sig[:TIMESTAMP_SIZE], "big")
    if timestamp > MAX_TIMESTAMP:
        raise FormatError(CHECK_FORMAT, "timestamp exceeds 2**63 - 1", field="timestamp",
                          got=timestamp, want=f"<= {MAX_TIMESTAMP}")
    return timestamp, sig[TIMESTAMP_SIZE:]


def _cosigner_key(key: str, what: str) -> tuple[str, bytes, int, bytes]:
    """(name, written key ID, type, material) of a 0x04 or 0x01 key string."""
    name, written_id, sig_type, material = split_key_string(key, what)
    if sig_type not in _ACCEPTED_TYPES:
        raise TrustConfigError(CHECK_KEY, "a cosigner key must have type 0x04 (or 0x01)",
                               field=f"{what} type", got=f"0x{sig_type:02x}",
                               want="0x04 or 0x01")
    if len(material) != ED25519_KEY_SIZE:
        raise TrustConfigError(CHECK_KEY, "Ed25519 key must be 32 bytes", field=f"{what} key",
                               got=len(material), want=ED25519_KEY_SIZE)
    return name, written_id, sig_type, material


class CosignatureVerifier:
    """Verifies ``cosignature/v1`` lines of one witness (a NoteVerifier for :func:`open_note`).

    ``CosignatureVerifier(vkey)`` takes a vkey of type 0x04 or 0x01; ``.key_id`` is always
    the 0x04-derived ID that appears in cosignature lines.
    """

    def __init__(self, vkey: str) -> None:
        parse_vkey(vkey)  # type check and syntax
        name, written_id, sig_type, public = _cosigner_key(vkey.strip(), "vkey")
        require_key_id(name, written_id, key_id_for(name, sig_type, public), "vkey")
        self._public = ed25519_public_key(public, "vkey key")
        self.name = name
        self.public_key = public
        self.key_id = key_id_for(name, SIG_COSIGNATURE_V1, public)
        self.vkey = vkey.strip()

    def verify(self, text: bytes, sig: bytes) -> bool:
        """True iff ``sig`` (timestamp || signature) cosigns the checkpoint ``text``."""
        if len(sig) != COSIGNATURE_SIZE:
            return False
        (timestamp,) = struct.unpack(">Q", sig[:TIMESTAMP_SIZE])
        if timestamp > MAX_TIMESTAMP:
            return False
        return ed25519_verify(self._public, cosigned_message(text, timestamp),
                              sig[TIMESTAMP_SIZE:])

    def verify_timestamp(self, text: bytes, sig: bytes) -> int:
        """Verify and return the cosignature's timestamp; FormatError / SignatureError."""
        timestamp, ed_sig = parse_cosignature(sig)
        # cosigned_message with the timestamp parse_cosignature has range-checked: one join
        message = b"".join((COSIGNATURE_HEADER, b"time %d\n" % timestamp, text))
        if not ed25519_verify(self._public, message, ed_sig):
            raise SignatureError(CHECK_SIGNATURE, "cosignature does not verify",
                                 field="cosignature", got=f"{self.name}+{self.key_id.hex()}")
        return timestamp

    def __repr__(self) -> str:
        return f"CosignatureVerifier({self.vkey!r})"


class CosignatureSigner:
    """A witness's Ed25519 key ``PRIVATE+KEY+name+hex8+base64(type || seed)``, type 0x04/0x01."""

    def __init__(self, skey: str) -> None:
        name, _, self._private, public = open_signer_key(skey, _ACCEPTED_TYPES)
        self.name = name
        self.public_key = public
        self.key_id = key_id_for(name, SIG_COSIGNATURE_V1, public)

    def sign_cosignature(self, checkpoint_text: bytes, timestamp: int) -> bytes:
        """``timestamp(8) || Ed25519 signature(64)`` over the cosigned message."""
        message = cosigned_message(checkpoint_text, timestamp)
        return struct.pack(">Q", timestamp) + self._private.sign(message)

    def verifier_key(self) -> str:
        """The witness's vkey, type 0x04 (tlog-cosignature §"Format")."""
        b64 = base64.b64encode(bytes([SIG_COSIGNATURE_V1]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{b64}"

    def __repr__(self) -> str:  # never show the seed
        return f"CosignatureSigner(name={self.name!r}, key_id={self.key_id.hex()})"


def generate_cosigner_keys(name: str, seed: bytes | None = None) -> tuple[str, str]:
    """A fresh witness key pair of type 0x04: (signer key string, verifier key string)."""
    return generate_key_pair(name, SIG_COSIGNATURE_V1, seed)


def cosignature(checkpoint_text: bytes, signer: CosignatureSigner,
                timestamp: int) -> NoteSignature:
    """The cosignature of a checkpoint note text (parsed first: only checkpoints are cosigned)."""
    parse_checkpoint(checkpoint_text)
    return NoteSignature(signer.name, signer.key_id,
                         signer.sign_cosignature(checkpoint_text, timestamp))


def cosign(checkpoint_text: bytes, signer: CosignatureSigner, timestamp: int) -> bytes:
    """The cosignature as a note signature line, ``— name base64(...)\\n``."""
    return cosignature(checkpoint_text, signer, timestamp).line()


def verify_cosignature(checkpoint_text: bytes, sig: NoteSignature,
                       verifier: CosignatureVerifier) -> int:
    """Verify one cosignature line of ``verifier``'s witness; return its timestamp.

    A line of another (name, key ID) is a FormatError ``cosignature.format`` (the caller
    passed the wrong line); a bad signature is a SignatureError ``cosignature.signature``.
    """
    if (sig.name, sig.key_id) != (verifier.name, verifier.key_id):
        raise FormatError(CHECK_FORMAT, "signature line is not from this witness",
                          field="key", got=f"{sig.name}+{sig.key_id.hex()}",
                          want=f"{verifier.name}+{verifier.key_id.hex()}")
    return verifier.verify_timestamp(checkpoint_text, sig.signature)
