"""NVIDIA Remote Attestation Service (NRAS) tokens: the remote alternative to local checks.

NRAS answers ``[["JWT", <overall EAT>], {"GPU-0": <detached EAT>, ...}]``. A token is never
accepted unverified. Authenticity (first failure stops):

1. ``gpu.nras.format``    compact JWS, header ``alg`` = ES384 with a ``kid``;
2. ``gpu.nras.key``       the ``kid`` is in the JWKS, its ``x5c`` chain ends in a pinned root
   (checked at ``at``, ``gpu.nras.chain``) and the JWK is the leaf certificate's key;
3. ``gpu.nras.signature`` the ES384 signature verifies (pyjwt, clock checks done by us);
4. ``gpu.nras.claims``    ``iss`` accepted, ``iat``/``nbf`` <= at (+ leeway) < ``exp``,
   ``eat_nonce`` = the expected nonce;
5. ``gpu.nras.submods``   each detached token's SHA-256 equals the overall token's
   ``submods[name]`` = ``["DIGEST", ["SHA-256", hex]]`` and every submod has a token.

Then the verdicts (all collected into one PolicyError): the overall
``x-nvidia-overall-att-result`` is true; per GPU ``measres`` = "success", ``secboot`` true,
``dbgstat`` = "disabled", every boolean ``x-nvidia-gpu-*`` claim true and every granular
cert-chain claim ``valid``/``good``. Claim shapes: tests/vectors/nvidia/nvtrust-sdk-claims.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from attest.certificates import load_certificate
from transparency_log.common.errors import FormatError, SignatureError, VerificationError
from verifier.policy_base import FailureCollector
from verifier.x509chain import PinnedRoot, verify_chain

NRAS_ISSUER = "https://nras.attestation.nvidia.com"
LEEWAY = timedelta(seconds=60)
MAX_TOKEN = 64 << 10


@dataclass(frozen=True)
class NrasResult:
    overall: dict[str, Any]
    gpus: dict[str, dict[str, Any]]


def parse_nras_answer(data: bytes) -> tuple[str, dict[str, str]]:
    """``[["JWT", overall], {name: detached}]`` -> (overall, detached by name)."""
    try:
        value = json.loads(data)
        (kind, overall), detached = value[0], value[1]
        if kind != "JWT" or not isinstance(overall, str) or not isinstance(detached, dict):
            raise ValueError("unexpected shape")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in detached.items()):
            raise ValueError("detached tokens must be strings")
    except (ValueError, TypeError, IndexError, KeyError) as err:
        raise FormatError("gpu.nras.format", f"not an NRAS answer: {err}",
                          field="NRAS answer") from None
    return overall, detached


def _jwk_public_key(jwk: dict[str, Any]) -> ec.EllipticCurvePublicKey:
    try:
        if jwk.get("kty") != "EC" or jwk.get("crv") != "P-384":
            raise ValueError("not a P-384 EC key")
        x = int.from_bytes(_b64url(jwk["x"]), "big")
        y = int.from_bytes(_b64url(jwk["y"]), "big")
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP384R1()).public_key()
    except (KeyError, ValueError, TypeError) as err:
        raise FormatError("gpu.nras.key", f"JWKS key unusable: {err}", field="jwks.keys") from None


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def resolve_key(kid: str, jwks: dict[str, Any], roots: Sequence[PinnedRoot],
                at: datetime) -> ec.EllipticCurvePublicKey:
    """Step 2: the JWKS entry for ``kid``, whose x5c chains to a pinned root."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    matches = [k for k in keys or [] if isinstance(k, dict) and k.get("kid") == kid]
    if len(matches) != 1:
        raise VerificationError("gpu.nras.key", "kid not found exactly once in the JWKS",
                                field="kid", got=kid)
    jwk = matches[0]
    x5c = jwk.get("x5c")
    if not isinstance(x5c, list) or not x5c:
        raise VerificationError("gpu.nras.key", "JWKS key has no x5c chain", field="x5c")
    certs: list[x509.Certificate] = []
    for i, b64 in enumerate(x5c):
        try:
            der = base64.b64decode(b64, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise FormatError("gpu.nras.key", "x5c entry is not base64",
                              field=f"x5c[{i}]") from None
        certs.append(load_certificate(der, check="gpu.nras.key", field=f"x5c[{i}]"))
    verify_chain(certs, roots, at=at, check="gpu.nras.chain")
    key = _jwk_public_key(jwk)
    leaf_key = certs[0].public_key()
    if not isinstance(leaf_key, ec.EllipticCurvePublicKey) or \
            leaf_key.public_numbers() != key.public_numbers():
        raise VerificationError("gpu.nras.key", "JWK differs from its x5c leaf certificate",
                                field="x5c[0]")
    return key


def verify_token(token: str, *, jwks: dict[str, Any], roots: Sequence[PinnedRoot],
                 at: datetime, nonce: bytes, issuers: Sequence[str] = (NRAS_ISSUER,),
                 what: str = "overall") -> dict[str, Any]:
    """Steps 1-4 for one token; returns its verified claims."""
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    if len(token) > MAX_TOKEN:
        raise FormatError("gpu.nras.format", "token too large", field=what, got=len(token))
    if not token.isascii():  # RFC 7515 §7.1: compact JWS is base64url parts and dots
        raise FormatError("gpu.nras.format", "token is not ASCII", field=what)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as err:
        raise FormatError("gpu.nras.format", f"not a compact JWS: {err}", field=what) from None
    if header.get("alg") != "ES384" or not isinstance(header.get("kid"), str):
        raise FormatError("gpu.nras.format", "header must be alg ES384 with a kid",
                          field=f"{what}.header", got=header.get("alg"), want="ES384")
    key = resolve_key(header["kid"], jwks, roots, at)
    try:
        claims = jwt.decode(token, key=key, algorithms=["ES384"], options={
            "verify_exp": False, "verify_nbf": False, "verify_iat": False,
            "verify_iss": False, "verify_aud": False})
    except jwt.InvalidSignatureError:
        raise SignatureError("gpu.nras.signature", "token signature does not verify",
                             field=what) from None
    except jwt.PyJWTError as err:
        raise FormatError("gpu.nras.format", f"token does not decode: {err}",
                          field=what) from None
    _check_claims(claims, at=at, nonce=nonce, issuers=issuers, what=what)
    return claims


def _check_claims(claims: dict[str, Any], *, at: datetime, nonce: bytes,
                  issuers: Sequence[str], what: str) -> None:
    if claims.get("iss") not in issuers:
        raise VerificationError("gpu.nras.claims", "token issuer not accepted",
                                field=f"{what}.iss", got=claims.get("iss"), want=list(issuers))
    now = at.timestamp()
    times = {k: claims.get(k) for k in ("iat", "nbf", "exp")}
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in times.values()):
        raise VerificationError("gpu.nras.claims", "iat, nbf and exp must be integers",
                                field=f"{what}.iat/nbf/exp", got=times)
    leeway = LEEWAY.total_seconds()
    if times["iat"] > now + leeway or times["nbf"] > now + leeway:
        raise VerificationError("gpu.nras.claims", "token not yet valid",
                                field=f"{what}.nbf", got=at.isoformat(), want=times)
    if now >= times["exp"]:
        raise VerificationError("gpu.nras.claims", "token expired", field=f"{what}.exp",
                                got=at.isoformat(), want=times["exp"])
    if claims.get("eat_nonce") != nonce.hex():
        raise VerificationError("gpu.nras.claims", "token is not bound to our nonce",
                                field=f"{what}.eat_nonce", got=claims.get("eat_nonce"),
                                want=nonce.hex())


def check_gpu_claims(name: str, claims: dict[str, Any], collector: FailureCollector) -> None:
    """The per-GPU verdict claims (collected, not stopped at the first)."""
    check = "gpu.nras.result"
    collector.require(claims.get("measres") == "success", check, f"{name}.measres",
                      claims.get("measres"), "success")
    collector.require(claims.get("secboot") is True, check, f"{name}.secboot",
                      claims.get("secboot"), True)
    collector.require(claims.get("dbgstat") == "disabled", check, f"{name}.dbgstat",
                      claims.get("dbgstat"), "disabled")
    for key, value in sorted(claims.items()):
        if not key.startswith("x-nvidia-gpu-"):
            continue
        if isinstance(value, bool):
            collector.require(value, check, f"{name}.{key}", value, True)
        elif isinstance(value, dict) and "x-nvidia-cert-status" in value:
            collector.require(value.get("x-nvidia-cert-status") == "valid", check,
                              f"{name}.{key}.x-nvidia-cert-status",
                              value.get("x-nvidia-cert-status"), "valid")
            collector.require(value.get("x-nvidia-cert-ocsp-status") == "good", check,
                              f"{name}.{key}.x-nvidia-cert-ocsp-status",
                              value.get("x-nvidia-cert-ocsp-status"), "good")


def verify_nras(
    overall_token: str, detached: dict[str, str], *, jwks: dict[str, Any],
    roots: Sequence[PinnedRoot], at: datetime, nonce: bytes,
    issuers: Sequence[str] = (NRAS_ISSUER,),
) -> NrasResult:
    """Verify the overall token and every detached GPU token; raise PolicyError listing every
    negative verdict."""
    overall = verify_token(overall_token, jwks=jwks, roots=roots, at=at, nonce=nonce,
                           issuers=issuers)
    submods = overall.get("submods")
    if not isinstance(submods, dict) or not submods:
        raise VerificationError("gpu.nras.submods", "overall token lists no GPU",
                                field="submods")
    if set(submods) != set(detached):
        raise VerificationError("gpu.nras.submods", "detached tokens differ from submods",
                                field="submods", got=sorted(detached), want=sorted(submods))
    gpus: dict[str, dict[str, Any]] = {}
    for name in sorted(submods):
        token = detached[name]
        entry = submods[name]
        digest = hashlib.sha256(token.encode("ascii")).hexdigest()
        if entry != ["DIGEST", ["SHA-256", digest]]:
            raise VerificationError("gpu.nras.submods", "detached token digest mismatch",
                                    field=f"submods.{name}", got=digest, want=entry)
        gpus[name] = verify_token(token, jwks=jwks, roots=roots, at=at, nonce=nonce,
                                  issuers=issuers, what=name)
    collector = FailureCollector()
    collector.require(overall.get("x-nvidia-overall-att-result") is True, "gpu.nras.result",
                      "x-nvidia-overall-att-result", overall.get("x-nvidia-overall-att-result"),
                      True)
    for name, claims in gpus.items():
        check_gpu_claims(name, claims, collector)
    collector.raise_if_any()
    return NrasResult(overall, gpus)
