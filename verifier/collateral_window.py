"""What a piece of collateral is and when it is valid, for the verification transcript.

The transcript lists every collateral blob the pipeline used (stapled by the node, or an
inline certificate) with its SHA-256, its kind and its validity window, so a reader can see
*which* CRL, TCB Info or OCSP answer a verdict rested on and whether ``at`` was inside it.
This module only describes; the evidence verifiers judge (and refuse stale collateral).

Kinds recognised, by content: a DER X.509 certificate (notBefore..notAfter, RFC 5280
§4.1.2.5), a DER CRL (thisUpdate..nextUpdate, RFC 5280 §5.1.2.4-5), a DER OCSP response
(thisUpdate..nextUpdate, RFC 6960 §4.2.1), a PEM certificate chain (the intersection of the
certificates' windows), Intel PCS JSON (``issueDate``..``nextUpdate`` of ``tcbInfo`` or
``enclaveIdentity``), an NVIDIA RIM (SWID XML; its window is that of the signer the GPU step
verified, so it is given as unknown here). Anything else is ``"opaque"``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from cryptography.x509 import ocsp

from attest.certificates import load_certificate, load_crl, load_pem_bundle
from transparency_log.common.errors import FormatError

__all__ = ["CollateralUse", "describe_collateral"]


@dataclass(frozen=True)
class CollateralUse:
    """One collateral blob the verification used."""

    name: str
    sha256: str
    kind: str
    not_before: str | None = None
    not_after: str | None = None
    used_by: str = ""
    source: str = "stapled"  # stapled (by the node) | cache | fetched (by this client)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "sha256": self.sha256, "kind": self.kind,
                               "source": self.source}
        if self.not_before is not None or self.not_after is not None:
            out["valid"] = {"from": self.not_before, "until": self.not_after}
        if self.used_by:
            out["used_by"] = self.used_by
        return out


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _window(data: bytes) -> tuple[str, datetime | str | None, datetime | str | None]:
    if data[:1] == b"\x30":  # DER: a certificate, a CRL or an OCSP response
        try:
            cert = load_certificate(data, check="collateral.describe", field="blob")
            return "x509-certificate", cert.not_valid_before_utc, cert.not_valid_after_utc
        except FormatError:
            pass
        try:
            crl = load_crl(data, check="collateral.describe", field="blob")
            return "x509-crl", crl.last_update_utc, crl.next_update_utc
        except FormatError:
            pass
        try:
            resp = ocsp.load_der_ocsp_response(data)
        except (ValueError, TypeError):
            return "opaque", None, None
        if resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL:
            return "ocsp-response", resp.this_update_utc, resp.next_update_utc
        return "ocsp-response", None, None
    if data.lstrip().startswith(b"-----BEGIN CERTIFICATE"):
        try:
            certs = load_pem_bundle(data, check="collateral.describe", field="blob")
        except FormatError:
            return "pem", None, None
        return ("x509-chain", max(c.not_valid_before_utc for c in certs),
                min(c.not_valid_after_utc for c in certs))
    if data.lstrip().startswith(b"{"):
        try:
            doc = json.loads(data)
        except ValueError:
            return "json", None, None
        for member, kind in (("tcbInfo", "intel-tcb-info"),
                             ("enclaveIdentity", "intel-qe-identity")):
            body = doc.get(member) if isinstance(doc, dict) else None
            if isinstance(body, dict):
                return kind, body.get("issueDate"), body.get("nextUpdate")
        return "json", None, None
    if data.lstrip().startswith(b"<"):
        return "nvidia-rim", None, None
    return "opaque", None, None


DESCRIBED_MAX = 4096
"""How many distinct blobs :func:`described` remembers (least recently used forgotten)."""


@lru_cache(maxsize=DESCRIBED_MAX)
def described(data: bytes) -> tuple[str, str, str | None, str | None]:
    """(sha256 hex, kind, from, until) of one blob, by its exact bytes. A pure function of
    the bytes, so remembered (bounded; ``lru_cache`` is thread-safe): a warm run lists the
    same stapled blobs without parsing them again (issue 15). It only describes: every blob
    is still judged by its own check."""
    kind, start, end = _window(data)
    return (hashlib.sha256(data).hexdigest(), kind,
            start if isinstance(start, str) or start is None else _iso(start),
            end if isinstance(end, str) or end is None else _iso(end))


def describe_collateral(name: str, data: bytes, used_by: str = "",
                        source: str = "stapled") -> CollateralUse:
    """The transcript entry for one blob (never raises: unknown content is ``opaque``)."""
    sha, kind, start, end = described(bytes(data))
    return CollateralUse(name, sha, kind, start, end, used_by, source)
