"""Verifying note signatures of the non-Ed25519 types assigned by c2sp.org/signed-note.

We never *produce* these; we verify them so that real logs that use them (Rekor v1, the Pixel
binary-transparency log, Static CT logs) can be read, and so that their signatures are never
mistaken for signatures of our Ed25519 keys.

- ``0x02`` ECDSA (signed-note §"Signature types", as implemented by transparency-dev):
  vkey material = DER SubjectPublicKeyInfo of a P-256/P-384/P-521 key; key ID =
  ``SHA-256(SPKI)[:4]`` (the name is *not* hashed); signature = ASN.1 DER ECDSA over
  ``SHA-256(note text)``.
- ``0x05`` RFC 6962 ``TreeHeadSignature`` (c2sp.org/static-ct-api §"Checkpoints"): vkey
  material = DER SPKI of a P-256 key; key ID = ``SHA-256(name || 0x0A || 0x05 ||
  SHA-256(SPKI))[:4]``; signature = ``timestamp (u64 ms) || DigitallySigned`` where
  ``DigitallySigned = hash 0x04 (sha256) || sig 0x03 (ecdsa) || u16 length || DER sig`` over
  the RFC 6962 §3.5 ``TreeHeadSignature`` ``0x00 (v1) || 0x01 (tree_hash) || timestamp u64 ||
  tree_size u64 || root[32]`` built from the checkpoint in the note text, whose origin must
  equal the key name.

Each type's ``*_verifier(name, spki) -> (key_id, verify)`` is chosen by the one
key-type dispatch, :mod:`transparency_log.core.key_types`; nothing is registered on import.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from transparency_log.common.errors import FormatError, TrustConfigError
from transparency_log.core.checkpoint import parse_checkpoint
from transparency_log.core.note import CHECK_KEY, SIG_RFC6962

__all__ = ["ecdsa_key_id", "ecdsa_verifier", "rfc6962_key_id", "rfc6962_verifier",
           "rfc6962_vkey"]

_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


def _load_ec_key(spki: bytes, curves: tuple[type, ...]) -> ec.EllipticCurvePublicKey:
    try:
        key = load_der_public_key(spki)
    except (ValueError, UnsupportedAlgorithm) as err:
        raise TrustConfigError(CHECK_KEY, f"vkey is not a DER SPKI: {err}", field="vkey key",
                               got=len(spki)) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, curves):
        raise TrustConfigError(CHECK_KEY, "vkey is not an ECDSA key on an allowed curve",
                               field="vkey key", got=type(key).__name__,
                               want="/".join(c.name for c in curves))
    return key


def _ecdsa_ok(key: ec.EllipticCurvePublicKey, der_sig: bytes, message: bytes) -> bool:
    try:
        key.verify(der_sig, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def ecdsa_key_id(spki: bytes) -> bytes:
    """Key ID of a type-0x02 key: ``SHA-256(DER SPKI)[:4]``."""
    return hashlib.sha256(spki).digest()[:4]


def ecdsa_verifier(name: str, spki: bytes) -> tuple[bytes, Callable[[bytes, bytes], bool]]:
    """A type-0x02 key's (key ID, verify); the key ID as written is checked by
    the caller."""
    key = _load_ec_key(spki, _CURVES)

    def verify(text: bytes, sig: bytes) -> bool:
        return _ecdsa_ok(key, sig, text)

    return ecdsa_key_id(spki), verify


def rfc6962_key_id(name: str, spki: bytes) -> bytes:
    """Key ID of a type-0x05 key: ``SHA-256(name || 0x0A || 0x05 || SHA-256(SPKI))[:4]``."""
    inner = hashlib.sha256(spki).digest()
    return hashlib.sha256(name.encode() + b"\n" + bytes([SIG_RFC6962]) + inner).digest()[:4]


def rfc6962_vkey(name: str, spki: bytes) -> str:
    """The vkey string of a Static CT log (name = its submission prefix without scheme)."""
    _load_ec_key(spki, (ec.SECP256R1,))
    b64 = base64.b64encode(bytes([SIG_RFC6962]) + spki).decode("ascii")
    return f"{name}+{rfc6962_key_id(name, spki).hex()}+{b64}"


def _tree_head_signature_input(name: str, text: bytes, timestamp: int) -> bytes | None:
    try:
        cp = parse_checkpoint(text)
    except FormatError:
        return None
    if cp.origin != name or cp.extensions:
        return None
    return struct.pack(">BBQQ", 0, 1, timestamp, cp.size) + cp.root


def rfc6962_verifier(name: str, spki: bytes) -> tuple[bytes, Callable[[bytes, bytes], bool]]:
    """A type-0x05 key's (key ID, verify); the key ID as written is checked by
    the caller."""
    key = _load_ec_key(spki, (ec.SECP256R1,))

    def verify(text: bytes, sig: bytes) -> bool:
        if len(sig) < 12:
            return False
        (timestamp,) = struct.unpack(">Q", sig[:8])
        hash_alg, sig_alg, length = sig[8], sig[9], int.from_bytes(sig[10:12], "big")
        if hash_alg != 4 or sig_alg != 3 or len(sig) != 12 + length:
            return False
        signed = _tree_head_signature_input(name, text, timestamp)
        return signed is not None and _ecdsa_ok(key, sig[12:], signed)

    return rfc6962_key_id(name, spki), verify

