"""Release keys: Ed25519 or ECDSA P-256, their key ids and their file formats.

- **Key id**: lowercase hex of SHA-256 over the public key's DER SubjectPublicKeyInfo
  (RFC 5280 §4.1.2.7; RFC 8410 for Ed25519, RFC 5480 for P-256).
- **Public key file** (text, one line, ``\\n`` at the end)::

      attestlog-release-key:v1 <base64 of the SPKI DER, standard alphabet, padded>

  Any other content is a TrustConfigError (``release.key.format``); a release key is trust
  configuration, not evidence.
- **Private key file**: unencrypted PKCS#8 PEM (``-----BEGIN PRIVATE KEY-----``), written
  with mode 0600; loading refuses a file that its group or others can read.
- **Signatures** (what the DSSE ``sig`` holds): Ed25519 (RFC 8032) over the PAE bytes, 64
  bytes; ECDSA P-256 with SHA-256 over the PAE bytes, DER ``Ecdsa-Sig-Value`` (RFC 3279).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from transparency_log.common.errors import TrustConfigError

__all__ = [
    "ALG_ED25519",
    "ALG_P256",
    "PUBLIC_KEY_PREFIX",
    "ReleasePublicKey",
    "ReleaseSigningKey",
    "generate_signing_key",
    "load_public_key_file",
    "load_signing_key_file",
    "write_signing_key_file",
]

PUBLIC_KEY_PREFIX = "attestlog-release-key:v1"
ALG_ED25519 = "ed25519"
ALG_P256 = "ecdsa-p256-sha256"

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def _spki(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _algorithm(key: PublicKey | PrivateKey) -> str:
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return ALG_ED25519
    if (isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey)
            and isinstance(key.curve, ec.SECP256R1)):
        return ALG_P256
    raise TrustConfigError("release.key.algorithm", "release keys are Ed25519 or ECDSA P-256",
                           got=type(key).__name__)


@dataclass(frozen=True)
class ReleasePublicKey:
    """An accepted release signer: its SPKI DER; ``keyid`` and ``algorithm`` derive from it."""

    spki: bytes

    def __post_init__(self) -> None:
        _algorithm(self.key)  # refuse other algorithms at construction

    @cached_property
    def key(self) -> PublicKey:
        """The parsed key (parsed once per object: the SPKI of a frozen object never
        changes)."""
        try:
            key = serialization.load_der_public_key(self.spki)
        except UnsupportedAlgorithm as err:  # an algorithm OID cryptography does not know
            raise TrustConfigError("release.key.algorithm",
                                   "release keys are Ed25519 or ECDSA P-256", field="spki",
                                   got=str(err)) from None
        except ValueError as err:
            raise TrustConfigError("release.key.format", f"bad SubjectPublicKeyInfo: {err}",
                                   field="spki") from None
        if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
            raise TrustConfigError("release.key.algorithm",
                                   "release keys are Ed25519 or ECDSA P-256",
                                   got=type(key).__name__)
        return key

    @cached_property
    def keyid(self) -> str:
        return hashlib.sha256(self.spki).hexdigest()

    @property
    def algorithm(self) -> str:
        return _algorithm(self.key)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True when ``signature`` is valid over ``message`` under this key."""
        key = self.key
        try:
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, message)
            else:
                key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    def to_text(self) -> str:
        """The public key file's content."""
        return f"{PUBLIC_KEY_PREFIX} {base64.b64encode(self.spki).decode('ascii')}\n"

    @classmethod
    def from_text(cls, text: str) -> ReleasePublicKey:
        prefix = PUBLIC_KEY_PREFIX + " "
        body = text[len(prefix):-1] if text.startswith(prefix) and text.endswith("\n") else None
        if body is None or "\n" in body:
            raise TrustConfigError("release.key.format", "not a release public key file",
                                   got=text[:60], want=f"{PUBLIC_KEY_PREFIX} <base64 SPKI>")
        try:
            spki = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise TrustConfigError("release.key.format", "bad base64", got=body[:60]) from None
        if base64.b64encode(spki).decode("ascii") != body:
            raise TrustConfigError("release.key.format", "non-canonical base64", got=body[:60])
        return cls(spki)


@dataclass(frozen=True, eq=False)
class ReleaseSigningKey:
    """A release private key (Ed25519 or ECDSA P-256)."""

    private_key: PrivateKey

    def __post_init__(self) -> None:
        _algorithm(self.private_key)

    @property
    def public(self) -> ReleasePublicKey:
        return ReleasePublicKey(_spki(self.private_key.public_key()))

    @property
    def keyid(self) -> str:
        return self.public.keyid

    def sign(self, message: bytes) -> bytes:
        key = self.private_key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(message)
        return key.sign(message, ec.ECDSA(hashes.SHA256()))

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())

    @classmethod
    def from_pem(cls, pem: bytes) -> ReleaseSigningKey:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except UnsupportedAlgorithm as err:
            raise TrustConfigError("release.key.algorithm",
                                   "release keys are Ed25519 or ECDSA P-256",
                                   got=str(err)) from None
        except (ValueError, TypeError) as err:
            raise TrustConfigError("release.key.format", f"bad private key PEM: {err}") from None
        if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise TrustConfigError("release.key.algorithm",
                                   "release keys are Ed25519 or ECDSA P-256",
                                   got=type(key).__name__)
        return cls(key)


def generate_signing_key(algorithm: str = ALG_ED25519) -> ReleaseSigningKey:
    """A fresh release key: ``ed25519`` (default) or ``ecdsa-p256-sha256``."""
    if algorithm == ALG_ED25519:
        return ReleaseSigningKey(ed25519.Ed25519PrivateKey.generate())
    if algorithm == ALG_P256:
        return ReleaseSigningKey(ec.generate_private_key(ec.SECP256R1()))
    raise TrustConfigError("release.key.algorithm", "unknown algorithm", got=algorithm,
                           want=f"{ALG_ED25519} | {ALG_P256}")


def write_signing_key_file(path: Path, key: ReleaseSigningKey) -> None:
    """Write the PKCS#8 PEM with mode 0600 (refuses to overwrite an existing file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.to_pem())


def load_signing_key_file(path: Path) -> ReleaseSigningKey:
    """Load a private key file; refuse one that group or others may read."""
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise TrustConfigError("release.key.permissions",
                               "private key file is accessible to group or others",
                               field=str(path), got=oct(mode & 0o777), want="0o600")
    return ReleaseSigningKey.from_pem(Path(path).read_bytes())


def load_public_key_file(path: Path) -> ReleasePublicKey:
    return ReleasePublicKey.from_text(Path(path).read_text(encoding="ascii", errors="replace"))
