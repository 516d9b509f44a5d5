"""verifier: the client side. Authenticity, collateral, policy, pipeline and audit.

The Python API (docs/verification.md): :func:`verify_bundle` (verifier/pipeline.py) and the
attested ``requests`` session :class:`verifier.requests.AttestedSession`. Loaded lazily so
that importing one verifier submodule does not import them all.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Result", "VerifierTrust", "verify_bundle"]


def __getattr__(name: str) -> Any:
    if name in ("verify_bundle", "Result"):
        from verifier import pipeline

        return getattr(pipeline, name)
    if name == "VerifierTrust":
        from verifier.pipeline_trust import VerifierTrust

        return VerifierTrust
    raise AttributeError(f"module 'verifier' has no attribute {name!r}")
