"""Trust roots and warm caches for :func:`verifier.pipeline.verify_bundle`.

DESIGN.md house rule 6: trust roots are parameters, and defaults live only in named
factories. :meth:`VerifierTrust.production` is the embedded, pinned vendor roots (AMD ARKs,
the Intel SGX Root CA, NVIDIA's Device Identity CA and CoRIM root). Simulator roots
(``attest.simulate``) can be added with :meth:`VerifierTrust.with_simulated`; the pipeline
uses them **only** for a bundle marked ``simulated`` and only when the policy says
``unsafe_allow_simulated_hardware = true`` — never for a bundle that claims real hardware,
and never when the policy does not allow it (check ``policy.simulated``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from cryptography import x509

from attest.certificates import load_pem_bundle
from transparency_log.common.errors import TrustConfigError
from transparency_log.common.http_fetch import DiskCache
from verifier.gpu.evidence import GpuCaches, GpuTrust
from verifier.snp.roots import AmdProductRoots, amd_roots
from verifier.snp.verify import SnpCaches
from verifier.tdx.roots import production_roots
from verifier.verified_cache import VendorCaches
from verifier.x509chain import PinnedRoot

__all__ = ["TrustRoots", "VerifierCaches", "VerifierTrust"]


@dataclass(frozen=True)
class TrustRoots:
    """One set of anchors for all three evidence kinds.

    ``snp``: product name -> AMD anchors; ``tdx``: Intel roots; ``gpu``: NVIDIA device and RIM
    roots. ``simulated`` marks a set made by ``attest.simulate``.
    """

    snp: Mapping[str, AmdProductRoots]
    tdx: tuple[PinnedRoot, ...]
    gpu: GpuTrust
    simulated: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "snp", MappingProxyType(dict(self.snp)))
        object.__setattr__(self, "tdx", tuple(self.tdx))

    @classmethod
    def production(cls) -> TrustRoots:
        """The embedded, pinned vendor roots (package data of verifier/snp, tdx, gpu)."""
        return cls(amd_roots(), production_roots(), GpuTrust.production())

    @classmethod
    def from_simulated(cls, sim: Any) -> TrustRoots:
        """Simulator roots from an ``attest.simulate.platform.SimulatedTrust`` (PEM fields
        ``amd_product``, ``amd_ark``, ``amd_ask``, ``amd_asvk``, ``intel_root``,
        ``nvidia_device_root``, ``nvidia_rim_root``; empty when absent)."""

        def cert(pem: bytes, name: str) -> x509.Certificate:
            return load_pem_bundle(pem, check="trust.simulated", field=name)[0]

        def root(pem: bytes, name: str) -> tuple[PinnedRoot, ...]:
            return (PinnedRoot(f"SIMULATED {name}", cert(pem, name)),) if pem else ()

        snp: dict[str, AmdProductRoots] = {}
        if sim.amd_product:
            ark = PinnedRoot(f"SIMULATED ARK-{sim.amd_product}", cert(sim.amd_ark, "amd_ark"))
            snp[sim.amd_product] = AmdProductRoots(
                sim.amd_product, ark, cert(sim.amd_ask, "amd_ask"),
                cert(sim.amd_asvk, "amd_asvk") if sim.amd_asvk else None, simulated=True)
        gpu = GpuTrust(root(sim.nvidia_device_root, "NVIDIA device root"),
                       root(sim.nvidia_rim_root, "NVIDIA RIM root"))
        return cls(snp, root(sim.intel_root, "Intel root"), gpu, simulated=True)


@dataclass(frozen=True)
class VerifierTrust:
    """The production roots, and optionally simulator roots (used only as described above)."""

    roots: TrustRoots
    simulated_roots: TrustRoots | None = None

    @classmethod
    def production(cls) -> VerifierTrust:
        return cls(TrustRoots.production())

    def with_simulated(self, roots: TrustRoots | Any) -> VerifierTrust:
        """These roots plus simulator roots: a :class:`TrustRoots` marked ``simulated``, or an
        ``attest.simulate.platform.SimulatedTrust``."""
        if not isinstance(roots, TrustRoots):
            roots = TrustRoots.from_simulated(roots)
        if not roots.simulated:
            raise ValueError("simulator roots must be marked simulated=True")
        return VerifierTrust(self.roots, roots)

    def for_bundle(self, simulated: bool) -> TrustRoots:
        """The roots for a bundle: production ones for real hardware; simulator ones for a
        simulated bundle (the caller has already checked the policy allows it)."""
        if not simulated:
            return self.roots
        if self.simulated_roots is None:
            raise TrustConfigError("policy.simulated", "simulated bundle allowed by the policy, "
                                   "but no simulator roots were configured",
                                   field="trust.simulated_roots", want="TrustRoots(simulated)")
        return self.simulated_roots


@dataclass
class VerifierCaches:
    """Warm state reused across verifications (house rule: caches never change a verdict,
    each entry is re-checked against ``at``): SNP chains/CRLs (``snp``; keyed by the exact
    certificates and pinned ARK, so one set serves every root set), GPU chains/RIMs/OCSP,
    TDX verified chains and collateral signatures (``vendor``), and an optional on-disk
    collateral cache (KDS/PCS/RIM responses). Bounded, and safe to share between threads."""

    gpu: GpuCaches = field(default_factory=GpuCaches)
    vendor: VendorCaches = field(default_factory=VendorCaches)
    disk: DiskCache | None = None
    snp: SnpCaches = field(default_factory=SnpCaches)
