"""Simulated NVIDIA Remote Attestation Service (NRAS) answers: ES384 JWTs signed by a
simulated PKI (:mod:`attest.simulate.gpu`), their JWKS, and per-GPU claims in NRAS's shape
(tests/vectors/nvidia/nvtrust-sdk-claims). Test keys only; the verifier trusts them only when a
caller passes them explicitly.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization

from attest.simulate.gpu import Pki

__all__ = ["NRAS_ISSUER", "dump_json", "good_gpu_claims", "jwks_for", "nras_tokens"]

NRAS_ISSUER = "https://nras.attestation.nvidia.com"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwks_for(pki: Pki, kid: str) -> dict[str, Any]:
    """A JWKS with the leaf's P-384 key, its ``kid`` and the chain as ``x5c``."""
    nums = pki.leaf_key.public_key().public_numbers()
    return {"keys": [{
        "kty": "EC", "crv": "P-384", "alg": "ES384", "use": "sig", "kid": kid,
        "x": _b64url(nums.x.to_bytes(48, "big")), "y": _b64url(nums.y.to_bytes(48, "big")),
        "x5c": [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
                for c in pki.certificates],
    }]}


def nras_tokens(pki: Pki, kid: str, *, nonce: bytes, now: datetime,
                gpu_claims: dict[str, dict[str, Any]], overall: bool = True,
                lifetime: timedelta = timedelta(hours=1),
                extra_overall: dict[str, Any] | None = None) -> list[Any]:
    """NRAS's answer shape: ``[["JWT", overall], {"GPU-0": detached, ...}]``."""
    import jwt

    iat = int(now.timestamp())
    base = {"iss": NRAS_ISSUER, "iat": iat, "nbf": iat, "exp": iat + int(lifetime.total_seconds()),
            "eat_nonce": nonce.hex()}
    key = pki.leaf_key
    detached: dict[str, str] = {}
    submods: dict[str, Any] = {}
    for name, claims in gpu_claims.items():
        token = jwt.encode({**base, **claims, "jti": f"{name}-jti"}, key, algorithm="ES384",
                           headers={"kid": kid})
        detached[name] = token
        submods[name] = ["DIGEST", ["SHA-256", hashlib.sha256(token.encode()).hexdigest()]]
    overall_claims = {**base, "sub": "NVIDIA-PLATFORM-ATTESTATION", "x-nvidia-ver": "2.0",
                      "x-nvidia-overall-att-result": overall, "submods": submods,
                      "jti": "overall-jti", **(extra_overall or {})}
    overall_token = jwt.encode(overall_claims, key, algorithm="ES384", headers={"kid": kid})
    return [["JWT", overall_token], detached]


def good_gpu_claims(nonce: bytes, *, driver: str = "550.90.07",
                    vbios: str = "96.00.9F.00.01") -> dict[str, Any]:
    """Per-GPU claims in NRAS's shape (tests/vectors/nvidia/nvtrust-sdk-claims)."""
    return {
        "sub": "NVIDIA-GPU-ATTESTATION", "x-nvidia-ver": "2.0", "measres": "success",
        "hwmodel": "GH100 A01 GSP BROM", "oemid": "5703", "ueid": "1234", "secboot": True,
        "dbgstat": "disabled", "eat_nonce": nonce.hex(),
        "x-nvidia-gpu-driver-version": driver, "x-nvidia-gpu-vbios-version": vbios,
        "x-nvidia-gpu-arch-check": True, "x-nvidia-gpu-attestation-report-cert-chain-validated":
        True, "x-nvidia-gpu-attestation-report-parsed": True,
        "x-nvidia-gpu-attestation-report-nonce-match": True,
        "x-nvidia-gpu-attestation-report-signature-verified": True,
        "x-nvidia-gpu-driver-rim-fetched": True, "x-nvidia-gpu-driver-rim-schema-validated": True,
        "x-nvidia-gpu-driver-rim-signature-verified": True,
        "x-nvidia-gpu-driver-rim-version-match": True,
        "x-nvidia-gpu-driver-rim-cert-validated": True,
        "x-nvidia-gpu-driver-rim-measurements-available": True,
        "x-nvidia-gpu-vbios-rim-fetched": True, "x-nvidia-gpu-vbios-rim-schema-validated": True,
        "x-nvidia-gpu-vbios-rim-signature-verified": True,
        "x-nvidia-gpu-vbios-rim-version-match": True,
        "x-nvidia-gpu-vbios-rim-cert-validated": True,
        "x-nvidia-gpu-vbios-rim-measurements-available": True,
        "x-nvidia-gpu-vbios-index-no-conflict": True,
    }


def dump_json(value: Any) -> bytes:
    return json.dumps(value, indent=1, sort_keys=True).encode()
