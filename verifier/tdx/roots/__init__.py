"""The embedded Intel SGX Root CA, pinned by the SHA-256 of its DER encoding, with the Intel
intermediates it issued that ship as trust configuration too.

Intel SGX PCK Certificate and CRL Profile Specification, section 1.2: every PCK certificate,
PCK CRL, Root CA CRL and TCB signing certificate chains to this root. The embedded
intermediates (each pinned by its SHA-256) are the Intel SGX PCK Platform CA and the Intel
SGX TCB Signing certificate of 2018: a chain link from one of these exact certificates to the
root is verified once per process (verifier/x509chain.py); their validity and their Root CA
CRL revocation are checked on every quote, and any other certificate (a re-issued TCB
Signing certificate, the PCK Processor CA) is verified under the root on every call.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from verifier.x509chain import PinnedRoot, pinned_root

INTEL_SGX_ROOT_CA_SHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"

INTEL_INTERMEDIATES = (
    ("Intel SGX PCK Platform CA", "intel_sgx_pck_platform_ca.pem",
     "22eb770dca215b607b5ccfc21a672b1da5cc660b1ad0365020567979edcaa0e1"),
    ("Intel SGX TCB Signing (2018)", "intel_sgx_tcb_signing_2018.pem",
     "ec37d98107bfb7dab6ff8de4d4dda6fde30a6f50b0d7b03eefb5652f1e652969"),
)
"""(name, package data file, SHA-256 of the DER) of each embedded intermediate."""


def _data(name: str) -> bytes:
    return resources.files("verifier.tdx.roots").joinpath(name).read_bytes()


@cache
def intel_sgx_root_ca() -> PinnedRoot:
    """The production trust anchor (package data: intel_sgx_root_ca.pem beside this file),
    with the embedded intermediates of :data:`INTEL_INTERMEDIATES`."""
    return pinned_root("Intel SGX Root CA", _data("intel_sgx_root_ca.pem"),
                       INTEL_SGX_ROOT_CA_SHA256,
                       intermediates=[(n, _data(f), pin) for n, f, pin in INTEL_INTERMEDIATES])


def production_roots() -> tuple[PinnedRoot, ...]:
    return (intel_sgx_root_ca(),)
