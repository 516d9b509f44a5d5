"""Shared SNP test support: real vectors by name, and simulated products (generated once)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from attest.simulate.snp import SimulatedAmd
from tests.support.vectors import vector_path
from verifier.snp.roots import AmdProductRoots
from verifier.x509chain import PinnedRoot

AT = datetime(2026, 11, 23, tzinfo=UTC)  # MANIFEST "valid_now"

# report file -> VCEK file (tests/vectors/snp, MANIFEST.md)
REAL = {
    "go-sev-guest/attestation.bin": "go-sev-guest/vcek.testcer",
    "virtee-sev/report_milan.bin": "virtee-sev/vcek_milan.der",
    "trustee/test-report.bin": "trustee/test-vcek.der",
}


def vec(name: str) -> bytes:
    return vector_path("snp", *name.split("/")).read_bytes()


@cache
def sim(product: str) -> SimulatedAmd:
    return SimulatedAmd.create(product)


def sim_roots(*products: str) -> dict[str, AmdProductRoots]:
    out = {}
    for p in products or ("Milan", "Genoa", "Turin"):
        s = sim(p)
        out[p] = AmdProductRoots(p, PinnedRoot(f"ARK-{p} (simulated)", s.ark), s.ask, s.asvk,
                                 simulated=True)
    return out
