"""The signature types of c2sp.org/signed-note and the one key-type dispatch.

Which signature types exist (signed-note §"Signature types"), and how a verifier key string
of each type is turned into something that verifies note signatures, is decided here and only
here. The modules below it know one type each and register nothing:

====  =======================  ==========================================================
type  what                     verified by
====  =======================  ==========================================================
0x01  Ed25519 note key         :func:`ed25519_public_key` / :func:`ed25519_verify` (RFC 8032)
0x02  ECDSA note key           :func:`transparency_log.core.note_foreign.ecdsa_verifier`
0x04  cosignature/v1 key       :class:`transparency_log.core.cosignature.CosignatureVerifier`
                               (a witness key; refused as a note key)
0x05  RFC 6962 tree head key   :func:`transparency_log.core.note_foreign.rfc6962_verifier`
====  =======================  ==========================================================

Import order inside ``core`` (no circle): ``note`` <- ``checkpoint`` <- ``note_foreign`` <-
``key_types`` <- ``cosignature`` <- ``witness_policy`` <- ``tlog_proof``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from transparency_log.common.errors import TrustConfigError
from transparency_log.common.parse_cache import parse_once
from transparency_log.core.note import (
    CHECK_KEY,
    ED25519_KEY_SIZE,
    ED25519_SIG_SIZE,
    SIG_COSIGNATURE_V1,
    SIG_ECDSA,
    SIG_ED25519,
    SIG_RFC6962,
    key_id_for,
    parse_vkey,
    require_key_id,
)
from transparency_log.core.note_foreign import ecdsa_verifier, rfc6962_verifier

__all__ = [
    "NOTE_KEY_TYPES",
    "SIGNATURE_TYPES",
    "Verifier",
    "ed25519_public_key",
    "ed25519_verify",
]

SIGNATURE_TYPES: Mapping[int, str] = MappingProxyType({
    SIG_ED25519: "Ed25519",
    SIG_ECDSA: "ECDSA",
    SIG_COSIGNATURE_V1: "cosignature/v1",
    SIG_RFC6962: "RFC 6962 TreeHeadSignature",
})
"""Every signature type byte this project knows, with its name."""

VerifyFn = Callable[[bytes, bytes], bool]
"""``verify(note text, signature without key ID) -> bool``."""


def ed25519_public_key(raw: bytes, what: str) -> Ed25519PublicKey:
    """A 32-byte Ed25519 public key; TrustConfigError (check ``note.key``) otherwise."""
    if len(raw) != ED25519_KEY_SIZE:
        raise TrustConfigError(CHECK_KEY, "Ed25519 public key must be 32 bytes", field=what,
                               got=len(raw), want=ED25519_KEY_SIZE)
    try:
        return _load_ed25519_public_key(bytes(raw))
    except ValueError as err:
        raise TrustConfigError(CHECK_KEY, f"invalid Ed25519 public key: {err}",
                               field=what) from None


@parse_once(max_entries=1024, max_input=ED25519_KEY_SIZE)
def _load_ed25519_public_key(raw: bytes) -> Ed25519PublicKey:
    """The key object of 32 key bytes, loaded once per distinct bytes (an immutable object;
    a refusal is not remembered): verifiers and policies built again reuse it."""
    return Ed25519PublicKey.from_public_bytes(raw)


def ed25519_verify(public: Ed25519PublicKey, message: bytes, sig: bytes) -> bool:
    """True iff ``sig`` is a valid RFC 8032 Ed25519 signature of ``message``."""
    if len(sig) != ED25519_SIG_SIZE:
        return False
    try:
        public.verify(sig, message)
    except InvalidSignature:
        return False
    return True


def _ed25519_verifier(name: str, material: bytes) -> tuple[bytes, VerifyFn]:
    public = ed25519_public_key(material, "vkey key")

    def verify(text: bytes, sig: bytes) -> bool:
        return ed25519_verify(public, text, sig)

    return key_id_for(name, SIG_ED25519, material), verify


NOTE_KEY_TYPES: Mapping[int, Callable[[str, bytes], tuple[bytes, VerifyFn]]] = MappingProxyType({
    SIG_ED25519: _ed25519_verifier,
    SIG_ECDSA: ecdsa_verifier,
    SIG_RFC6962: rfc6962_verifier,
})
"""The types a note (log) verifier key may have: ``type -> factory(name, key material)``
returning (the key ID derived from the key, the verify function)."""


class Verifier:
    """A note verifier key string of type Ed25519 (0x01), ECDSA (0x02) or RFC 6962 (0x05).

    ``Verifier("name+hex8+base64")``; ``.name``, ``.key_id`` (4 bytes), ``.sig_type``,
    ``.public_key``, ``.verify(text, sig) -> bool``. A key ID that does not match the key, an
    unknown type, a cosignature key (0x04), a public key of the wrong size or curve:
    TrustConfigError (check ``note.key``). Immutable after construction.
    """

    def __init__(self, vkey: str) -> None:
        name, written_id, sig_type, material = parse_vkey(vkey)
        factory = NOTE_KEY_TYPES.get(sig_type)
        if factory is None and sig_type == SIG_COSIGNATURE_V1:
            raise TrustConfigError(CHECK_KEY, "type 0x04 is a cosignature key: use "
                                   "transparency_log.core.cosignature.CosignatureVerifier",
                                   field="vkey type", got=sig_type, want=SIG_ED25519)
        if factory is None:
            raise TrustConfigError(CHECK_KEY, "unsupported signature type", field="vkey type",
                                   got=f"0x{sig_type:02x}", want="0x01, 0x02 or 0x05")
        derived, verify = factory(name, material)
        require_key_id(name, written_id, derived, "vkey")
        self.name = name
        self.sig_type = sig_type
        self.vkey = vkey.strip()
        self.key_id = derived
        self.public_key = material
        self._verify = verify

    def verify(self, text: bytes, sig: bytes) -> bool:
        """True iff ``sig`` (without the key ID) signs ``text`` under this key."""
        return self._verify(text, sig)

    def __repr__(self) -> str:
        return f"Verifier({self.vkey!r})"
