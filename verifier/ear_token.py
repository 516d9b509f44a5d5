"""An EAR as a signed JWT (draft-ietf-rats-ear §2 claims, RFC 7519 / RFC 7515 compact JWS):
the claims set built from a verification :class:`~verifier.pipeline.Result`, the verifier's
signing key, and verifying a token the way a relying party should (docs/ear.md "Verifying an
EAR"). The appraisals themselves (transcript -> submodules, tiers) are :mod:`verifier.ear`.

The algorithm is pinned by the key's type (EdDSA for Ed25519, ES256 for ECDSA P-256; ``none``,
HMAC and any other are refused). This module reads no clock, file or network.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from transparency_log.common.errors import (
    FormatError,
    SignatureError,
    TrustConfigError,
    VerificationError,
)
from verifier.ear import (
    CHECK_CLAIMS,
    CLAIMS,
    DEVELOPER,
    EXT_BUNDLE,
    EXT_TRANSCRIPT,
    EXT_VERDICT,
    PROFILE,
    TIER_NAMES,
    appraise,
    tier_of,
    transcript_sha256,
)
from verifier.result import Result

__all__ = [
    "CHECK_ALG",
    "CHECK_FORMAT",
    "CHECK_KEY",
    "CHECK_NONCE",
    "CHECK_SIGNATURE",
    "EarSigner",
    "VerifiedEar",
    "build_claims",
    "load_signing_key",
    "load_verification_key",
    "verify_ear",
]

_TIER_BY_NAME = {v: k for k, v in TIER_NAMES.items()}
MIN_NONCE, MAX_NONCE = 8, 88  # eat_nonce length (veraison/ear ear.go validate)
MAX_TOKEN = 64 * 1024
_B64URL = "[A-Za-z0-9_-]+"
_JWS_COMPACT = re.compile(rf"{_B64URL}\.{_B64URL}\.{_B64URL}")

CHECK_FORMAT = "ear.format"
CHECK_ALG = "ear.alg"
CHECK_SIGNATURE = "ear.signature"
CHECK_NONCE = "ear.nonce"
CHECK_KEY = "ear.key"


def build_claims(result: Result, *, nonce: bytes, build: str,
                 developer: str = DEVELOPER) -> dict[str, Any]:
    """The EAR claims set (draft-ietf-rats-ear §2) for ``result``; ``iat`` is the
    verification time (``result.at``)."""
    policy_id = f"sha-256:{result.policy_digest.hex()}"
    subs = appraise(result)
    claims: dict[str, Any] = {
        "eat_profile": PROFILE,
        "iat": int(result.at.timestamp()),
        "ear.verifier-id": {"build": build, "developer": developer},
        "eat_nonce": _b64url(nonce),
        "submods": {name: sub.to_json(policy_id) for name, sub in sorted(subs.items())},
        EXT_VERDICT: result.verdict,
        EXT_BUNDLE: result.bundle_sha256.hex(),
        EXT_TRANSCRIPT: transcript_sha256(result).hex(),
    }
    _validate(claims)
    return claims


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# --------------------------------------------------------------------------------------------
# Keys and signing


def _alg_for(key: Any) -> str:
    """The one algorithm a key may be used with: EdDSA for Ed25519, ES256 for ECDSA P-256."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and \
            isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    raise TrustConfigError(CHECK_KEY, "unsupported EAR key", field="key",
                           got=type(key).__name__, want="Ed25519 or ECDSA P-256")


def _load_pem_key(pem: bytes, private: bool, field: str) -> Any:
    kind = "private" if private else "public"
    try:
        key = (serialization.load_pem_private_key(pem, password=None) if private
               else serialization.load_pem_public_key(pem))
    except (ValueError, TypeError) as err:
        raise TrustConfigError(CHECK_KEY, f"not a PEM {kind} key ({err})",
                               field=field) from None
    _alg_for(key)
    return key


def load_signing_key(pem: bytes) -> ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey:
    """A PEM (PKCS#8) Ed25519 or ECDSA P-256 private key, or TrustConfigError ``ear.key``."""
    key = _load_pem_key(pem, True, "--ear-key")
    assert isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey)
    return key


def load_verification_key(pem: bytes) -> ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey:
    """A PEM (SubjectPublicKeyInfo) Ed25519 or ECDSA P-256 public key, or TrustConfigError."""
    key = _load_pem_key(pem, False, "--key")
    assert isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey)
    return key


@dataclass(frozen=True)
class EarSigner:
    """The verifier's signing key and identity (``ear.verifier-id.build``)."""

    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    build: str
    developer: str = DEVELOPER

    @property
    def alg(self) -> str:
        return _alg_for(self.key)

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, result: Result, nonce: bytes) -> str:
        """The EAR for ``result`` as a compact JWS (RFC 7515 §7.1)."""
        claims = build_claims(result, nonce=nonce, build=self.build, developer=self.developer)
        return jwt.encode(claims, self.key, algorithm=self.alg, headers={"typ": "JWT"})


# --------------------------------------------------------------------------------------------
# Verifying an EAR


@dataclass(frozen=True)
class VerifiedEar:
    """A verified EAR's claims, and each submodule's status by name."""

    claims: Mapping[str, Any]

    @property
    def statuses(self) -> dict[str, str]:
        return {name: _status_name(sub["ear.status"])
                for name, sub in sorted(self.claims["submods"].items())}

    @property
    def all_affirming(self) -> bool:
        return all(s == "affirming" for s in self.statuses.values())


def _status_name(value: Any) -> str:
    return value if isinstance(value, str) else TIER_NAMES[value]


def verify_ear(token: str | bytes, key: Any, *, expected_nonce: bytes | None = None
               ) -> VerifiedEar:
    """Check an EAR: strict compact-JWS form, the algorithm pinned by the key's type
    (``none``, HMAC and any other refused), the signature, then the claims (profile, ``iat``,
    ``ear.verifier-id``, ``eat_nonce`` of 8..88 characters, at least one submod, each status
    a tier and each vector claim in range). ``expected_nonce``: the nonce the relying party
    sent; ``eat_nonce`` must then be present and equal."""
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise FormatError(CHECK_FORMAT, "not ASCII", field="token") from None
    if len(token) > MAX_TOKEN:
        raise FormatError(CHECK_FORMAT, "token too long", field="token", got=len(token),
                          want=f"<= {MAX_TOKEN}")
    if not _JWS_COMPACT.fullmatch(token):
        raise FormatError(CHECK_FORMAT, "not a compact JWS (three base64url segments)",
                          field="token")
    alg = _alg_for(key)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as err:
        raise FormatError(CHECK_FORMAT, f"bad JWS header ({err})", field="header") from None
    if header.get("alg") != alg:
        raise SignatureError(CHECK_ALG, "algorithm is not the one the key is pinned to",
                             field="alg", got=header.get("alg"), want=alg)
    if "crit" in header:
        raise FormatError(CHECK_FORMAT, "critical header parameters are not supported",
                          field="crit")
    try:
        claims = jwt.decode(token, key, algorithms=[alg], options={
            "verify_signature": True, "verify_exp": False, "verify_nbf": False,
            "verify_iat": False, "verify_aud": False, "verify_iss": False})
    except jwt.InvalidSignatureError:
        raise SignatureError(CHECK_SIGNATURE, f"signature does not verify under the {alg} key",
                             field="signature") from None
    except jwt.PyJWTError as err:
        raise FormatError(CHECK_FORMAT, f"cannot decode the token ({err})",
                          field="payload") from None
    _validate(claims)
    if expected_nonce is not None:
        got = claims.get("eat_nonce")
        want = _b64url(expected_nonce)
        if not isinstance(got, str) or not hmac.compare_digest(got.encode(), want.encode()):
            raise VerificationError(CHECK_NONCE, "the EAR answers another nonce",
                                    field="eat_nonce", got=got, want=want)
    return VerifiedEar(claims)


def _validate(claims: Any) -> None:
    """Every problem with an EAR claims set, in one FormatError ``ear.claims``
    (veraison/ear ``validate``: profile, iat, verifier-id, nonce length, submods)."""
    problems: list[str] = []
    if not isinstance(claims, dict):
        raise FormatError(CHECK_CLAIMS, "claims are not a JSON object")
    if claims.get("eat_profile") != PROFILE:
        problems.append(f"eat_profile is {claims.get('eat_profile')!r}, want {PROFILE!r}")
    if not _is_int(claims.get("iat")):
        problems.append("iat missing or not an integer")
    vid = claims.get("ear.verifier-id")
    if not (isinstance(vid, dict) and isinstance(vid.get("build"), str)
            and isinstance(vid.get("developer"), str)):
        problems.append("ear.verifier-id missing or without build and developer strings")
    if "eat_nonce" in claims:
        nonce = claims["eat_nonce"]
        if not isinstance(nonce, str) or not MIN_NONCE <= len(nonce) <= MAX_NONCE:
            size = len(nonce) if isinstance(nonce, str) else type(nonce).__name__
            problems.append(f"eat_nonce is {size}, want a string of {MIN_NONCE}..{MAX_NONCE}")
    subs = claims.get("submods")
    if not isinstance(subs, dict) or not subs:
        problems.append("submods missing or empty (at least one appraisal)")
    else:
        for name, sub in subs.items():
            problems += [f"submods[{name}]: {p}" for p in _appraisal_problems(sub)]
    if problems:
        raise FormatError(CHECK_CLAIMS, "; ".join(problems), field="claims")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _appraisal_problems(sub: Any) -> Iterable[str]:
    if not isinstance(sub, dict):
        yield "not a JSON object"
        return
    status = sub.get("ear.status")
    if isinstance(status, str) and status in _TIER_BY_NAME:
        tier = _TIER_BY_NAME[status]
    elif _is_int(status) and status in TIER_NAMES:
        tier = status
    else:
        yield f"ear.status is {status!r}, want none | affirming | warning | contraindicated"
        return
    vector = sub.get("ear.trustworthiness-vector", {})
    if not isinstance(vector, dict):
        yield "ear.trustworthiness-vector is not a JSON object"
        return
    for name, value in vector.items():
        if name not in CLAIMS:
            yield f"unknown trustworthiness claim {name!r}"
        elif not _is_int(value) or not -128 <= value <= 127:
            yield f"{name} is {value!r}, want an integer in -128..127"
        elif tier_of(value) > tier:
            yield (f"ear.status {TIER_NAMES[tier]} is below {name}'s tier "
                   f"{TIER_NAMES[tier_of(value)]}")

