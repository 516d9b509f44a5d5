"""HPKE base mode (RFC 9180 §5.1.1) for the suites of the private-request path, on pyhpke.

Suites: KEM DHKEM(X25519, HKDF-SHA256) (0x0020), KDF HKDF-SHA256 (0x0001), AEAD AES-128-GCM
(0x0001) or ChaCha20-Poly1305 (0x0003). pyhpke does the key schedule (§5.1), encryption
(§5.2) and secret export (§5.3); tests/test_hpke_vectors.py checks it against RFC 9180
Appendix A.1.1 and A.2.1 (every encryption and export listed there).

What this layer adds:
- randomness is a parameter: the ephemeral key is ``rng(32)`` read as an X25519 private key
  (RFC 9180 §7.1.3 GenerateKeyPair for X25519 is 32 random bytes), so a test can inject the
  RFC's skEm;
- every failure to open (bad tag, bad enc, low-order point) is the one :class:`DecryptError`;
- only the suites above are accepted (:func:`suite`), anything else is ``ohttp.format``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from pyhpke import AEADId, CipherSuite, KDFId, KEMId, KEMKey, KEMKeyPair
from pyhpke import ContextInterface as _Context

from attest.formats.ohttp import (
    AEAD_SIZES,
    CHECK,
    KEM_X25519_HKDF_SHA256,
    NENC,
    check_suite,
)
from attest.private.errors import DecryptError
from transparency_log.common.errors import FormatError

Rng = Callable[[int], bytes]

NSK_X25519 = 32  # RFC 9180 §7.1: Nsk for DHKEM(X25519, HKDF-SHA256)


@dataclass(frozen=True)
class Suite:
    """An HPKE ciphersuite by its RFC 9180 §7 identifiers."""

    kem_id: int
    kdf_id: int
    aead_id: int

    @property
    def nk(self) -> int:
        return AEAD_SIZES[self.aead_id][0]

    @property
    def nn(self) -> int:
        return AEAD_SIZES[self.aead_id][1]

    @property
    def nt(self) -> int:
        return AEAD_SIZES[self.aead_id][2]

    @property
    def nenc(self) -> int:
        return NENC[self.kem_id]


def suite(kem_id: int, kdf_id: int, aead_id: int) -> Suite:
    """The suite, if it is one we implement; otherwise ``ohttp.format``."""
    check_suite(kem_id, kdf_id, aead_id)
    return Suite(kem_id, kdf_id, aead_id)


@cache
def _cipher(s: Suite) -> CipherSuite:
    return CipherSuite.new(KEMId(s.kem_id), KDFId(s.kdf_id), AEADId(s.aead_id))


class PrivateKey:
    """An X25519 HPKE private key (the node's request key; never leaves the TEE)."""

    def __init__(self, raw: bytes) -> None:
        if len(raw) != NSK_X25519:
            raise ValueError("an X25519 private key is 32 bytes")
        self._key = X25519PrivateKey.from_private_bytes(bytes(raw))

    @classmethod
    def generate(cls, rng: Rng) -> PrivateKey:
        """GenerateKeyPair (RFC 9180 §7.1.3 for X25519: 32 random bytes)."""
        return cls(rng(NSK_X25519))

    @classmethod
    def derive(cls, ikm: bytes) -> PrivateKey:
        """DeriveKeyPair(ikm) (RFC 9180 §7.1.3)."""
        pair = _cipher(Suite(KEM_X25519_HKDF_SHA256, 1, 1)).kem.derive_key_pair(ikm)
        return cls(pair.private_key.to_private_bytes())

    def private_bytes(self) -> bytes:
        """SerializePrivateKey (RFC 9180 §7.1.2). Handle with care: this is the secret."""
        return KEMKey.from_pyca_cryptography_key(self._key).to_private_bytes()

    def public_bytes(self) -> bytes:
        """SerializePublicKey (RFC 9180 §7.1.1): the 32-byte X25519 public key."""
        return KEMKey.from_pyca_cryptography_key(self._key.public_key()).to_public_bytes()

    def _kem_key(self):  # type: ignore[no-untyped-def]
        return KEMKey.from_pyca_cryptography_key(self._key)


class SenderContext:
    """The sender's context (RFC 9180 §5.2 Seal, §5.3 Export)."""

    def __init__(self, ctx: _Context) -> None:
        self._ctx = ctx

    def seal(self, pt: bytes, aad: bytes = b"") -> bytes:
        return self._ctx.seal(pt, aad)

    def export(self, exporter_context: bytes, length: int) -> bytes:
        return self._ctx.export(exporter_context, length)


class RecipientContext:
    """The recipient's context (RFC 9180 §5.2 Open, §5.3 Export)."""

    def __init__(self, ctx: _Context) -> None:
        self._ctx = ctx

    def open(self, ct: bytes, aad: bytes = b"") -> bytes:
        try:
            return self._ctx.open(ct, aad)
        except Exception:
            raise DecryptError() from None

    def export(self, exporter_context: bytes, length: int) -> bytes:
        return self._ctx.export(exporter_context, length)


def setup_base_s(s: Suite, pk_r: bytes, info: bytes, *, rng: Rng) -> tuple[bytes, SenderContext]:
    """SetupBaseS(pkR, info) (RFC 9180 §5.1.1): ``(enc, context)``; the ephemeral key is
    ``rng(32)``."""
    if len(pk_r) != NENC[s.kem_id]:
        raise FormatError(CHECK, "wrong public key size", field="HPKE Public Key",
                          got=len(pk_r), want=NENC[s.kem_id])
    eph = X25519PrivateKey.from_private_bytes(rng(NSK_X25519))
    eks = KEMKeyPair(KEMKey.from_pyca_cryptography_key(eph),
                     KEMKey.from_pyca_cryptography_key(eph.public_key()))
    pk = KEMKey.from_pyca_cryptography_key(X25519PublicKey.from_public_bytes(pk_r))
    try:
        enc, ctx = _cipher(s).create_sender_context(pk, info, eks=eks)
    except ValueError:
        # cryptography refuses a DH output of all zeros (a low-order public key, RFC 9180 §7.1.4)
        raise FormatError(CHECK, "not a usable X25519 public key", field="HPKE Public Key",
                          got=pk_r) from None
    return enc, SenderContext(ctx)


def setup_base_r(s: Suite, enc: bytes, sk_r: PrivateKey, info: bytes) -> RecipientContext:
    """SetupBaseR(enc, skR, info) (RFC 9180 §5.1.1). A bad ``enc`` is a DecryptError."""
    try:
        ctx = _cipher(s).create_recipient_context(enc, sk_r._kem_key(), info)
    except Exception:
        raise DecryptError() from None
    return RecipientContext(ctx)
