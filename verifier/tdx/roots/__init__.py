"""The embedded Intel SGX Root CA, pinned by the SHA-256 of its DER encoding.

Intel SGX PCK Certificate and CRL Profile Specification, section 1.2: every PCK certificate,
PCK CRL, Root CA CRL and TCB signing certificate chains to this root.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from verifier.x509chain import PinnedRoot, pinned_root

INTEL_SGX_ROOT_CA_SHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"


@cache
def intel_sgx_root_ca() -> PinnedRoot:
    """The production trust anchor (package data: intel_sgx_root_ca.pem beside this file)."""
    pem = resources.files("verifier.tdx.roots").joinpath("intel_sgx_root_ca.pem").read_bytes()
    return pinned_root("Intel SGX Root CA", pem, INTEL_SGX_ROOT_CA_SHA256)


def production_roots() -> tuple[PinnedRoot, ...]:
    return (intel_sgx_root_ca(),)
