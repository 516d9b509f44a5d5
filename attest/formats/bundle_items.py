"""The evidence bundle's data model (docs/formats.md, "Evidence bundle (CBOR)"): one frozen
dataclass per evidence item type, the node-reported GPU state and the bundle itself.
attest/formats/bundle.py encodes and decodes them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from attest.formats.bundle_limits import BUNDLE_VERSION, TYPE_GPU, TYPE_SNP, TYPE_TDX


def _frozen_map(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(sorted(value.items())))


# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class SnpEvidence:
    """An AMD SEV-SNP attestation report with its certificates (``type: "sev-snp"``).

    ``certs`` maps a role (:data:`SNP_CERT_ROLES`) to one DER certificate; ``collateral``
    maps ``"crl"`` to the name of the stapled ARK-signed CRL in the bundle's collateral.
    """

    TYPE: ClassVar[str] = TYPE_SNP
    report: bytes
    certs: Mapping[str, bytes] = field(default_factory=dict)
    collateral: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "certs", _frozen_map(self.certs))
        object.__setattr__(self, "collateral", _frozen_map(self.collateral))

    def references(self) -> Iterable[tuple[str, str]]:
        """(role path, collateral name) pairs this item uses."""
        return ((f"collateral.{k}", v) for k, v in self.collateral.items())


@dataclass(frozen=True)
class TdxEvidence:
    """An Intel TDX quote (``type: "tdx"``); ``collateral`` maps a role
    (:data:`TDX_COLLATERAL_ROLES`) to a name in the bundle's collateral."""

    TYPE: ClassVar[str] = TYPE_TDX
    quote: bytes
    collateral: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "collateral", _frozen_map(self.collateral))

    def references(self) -> Iterable[tuple[str, str]]:
        return ((f"collateral.{k}", v) for k, v in self.collateral.items())


@dataclass(frozen=True)
class GpuEvidence:
    """One NVIDIA GPU's SPDM attestation report (``type: "nvidia-gpu"``).

    ``index`` is the GPU's index on the node (NVML order); ``report`` the SPDM
    GET_MEASUREMENTS response with its signature; ``cert_chain`` the PEM device certificate
    chain, leaf first; ``rims`` maps ``driver``/``vbios`` to collateral names, ``ocsp`` lists
    the collateral names of stapled OCSP responses for the chain.
    """

    TYPE: ClassVar[str] = TYPE_GPU
    index: int
    report: bytes
    cert_chain: bytes
    rims: Mapping[str, str] = field(default_factory=dict)
    ocsp: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "rims", _frozen_map(self.rims))
        object.__setattr__(self, "ocsp", tuple(self.ocsp))

    def references(self) -> Iterable[tuple[str, str]]:
        yield from ((f"rims.{k}", v) for k, v in self.rims.items())
        yield from ((f"ocsp[{i}]", v) for i, v in enumerate(self.ocsp))


Evidence = SnpEvidence | TdxEvidence | GpuEvidence


@dataclass(frozen=True)
class GpuState:
    """The node-reported (NVML, unsigned) NVIDIA confidential-computing state.

    ``cc_mode`` is one of :data:`CC_MODES` (system-wide CC feature and DEVTOOLS, or
    ``"absent"`` when the node has no NVIDIA stack); ``attached`` counts the GPUs the node
    sees, so a verifier can tell a GPU left out of ``evidence``. Unsigned by the GPUs, but
    bound into REPORT_DATA (docs/formats.md, "Binding"): it is the measured agent's claim.
    """

    cc_mode: str = "absent"
    attached: int = 0


@dataclass(frozen=True)
class EvidenceBundle:
    """A decoded evidence bundle (docs/formats.md, "Evidence bundle (CBOR)").

    ``sigstore_bundle`` (optional, key absent when None) is the release's Sigstore bundle as
    stapled by the node: opaque here, judged by the verifier's ``release.sigstore`` step.
    ``ohttp_keys`` (optional, key absent when None) is the node's HPKE request key
    configuration (``application/ohttp-keys``, RFC 9458 §3.2), bound into REPORT_DATA and
    the GPU nonces (docs/formats.md, "Binding")."""

    nonce: bytes
    node_key: bytes
    simulated: bool
    evidence: tuple[Evidence, ...]
    release: bytes
    tlog_proof: bytes
    collateral: Mapping[str, bytes] = field(default_factory=dict)
    gpu_state: GpuState = GpuState()
    version: int = BUNDLE_VERSION
    sigstore_bundle: bytes | None = None
    ohttp_keys: bytes | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "evidence", tuple(self.evidence))
        object.__setattr__(self, "collateral", _frozen_map(self.collateral))

    @property
    def cpu_evidence(self) -> SnpEvidence | TdxEvidence | None:
        """The SEV-SNP or TDX item, if any (there is at most one, and it comes first)."""
        first = self.evidence[0] if self.evidence else None
        return first if isinstance(first, SnpEvidence | TdxEvidence) else None

    @property
    def gpu_evidence(self) -> tuple[GpuEvidence, ...]:
        """The GPU items in increasing index order."""
        return tuple(e for e in self.evidence if isinstance(e, GpuEvidence))

    def encode(self) -> bytes:
        from attest.formats.bundle import encode_bundle  # the codec sits above the model

        return encode_bundle(self)
