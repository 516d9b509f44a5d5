"""Where a node's evidence comes from: the :class:`Platform` protocol, the real-hardware
platform and :func:`detect_platform` (DESIGN.md, "a node runs `attest agent` at boot").

A platform is asked for evidence in the two steps the binding needs (docs/formats.md,
"Binding"): REPORT_DATA commits to the GPU reports, so the GPUs are asked first.

1. :meth:`Platform.collect_gpus` with the per-GPU 32-byte SPDM nonces
   (``attest.binding.gpu_nonces``: GPU ``i`` signs ``gpu_nonce(nonce, node_key, i)``)
   returns the node-reported CC state, one ``nvidia-gpu`` item per GPU and the collateral
   those items name (RIMs, OCSP responses).
2. :meth:`Platform.collect_cpu` with the 64-byte REPORT_DATA
   (``attest.binding.report_data`` over the nonce, the node key and step 1's result) returns
   the ``sev-snp`` or ``tdx`` item and its collateral (CRL, TCB info, QE identity ...).

:mod:`attest.bundle_builder` runs both and assembles the bundle. :func:`launch_identity`
reads the measurement a CPU item carries (SNP MEASUREMENT; TDX MRTD and RTMR0-2), which the
agent looks up in the release log at boot.

Detection (:func:`detect_platform`) looks, in order, at configfs-tsm
(``/sys/kernel/config/tsm/report``: a probe entry's ``provider`` is ``sev_guest`` or
``tdx_guest``), ``/dev/sev-guest``, ``/dev/tdx_guest``, and NVML for GPUs. Every root is a
parameter, so tests run against fake trees. NOT YET RUN ON HARDWARE: the real platform
hands out only what the device does (the SNP certificate table); the agent wraps it in
:class:`attest.collateral.stapler.StaplingPlatform`, which fetches and staples the vendor
collateral (or a ``collateral`` hook adds it).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from attest.collect import nvml_gpu
from attest.collect.snp import SEV_GUEST_DEVICE, Ioctl, collect_snp_report
from attest.collect.tdx import TDX_GUEST_DEVICE, TSM_REPORT_ROOT, TsmFs, get_quote
from attest.formats.bundle import (
    GpuEvidence,
    GpuState,
    SnpEvidence,
    TdxEvidence,
)
from attest.formats.snp_certtable import parse_cert_table
from attest.formats.snp_report import parse_report
from attest.formats.tdx_quote import parse_quote
from transparency_log.common.errors import FetchError

__all__ = [
    "CPU_SEV_SNP",
    "CPU_TDX",
    "CollectedEvidence",
    "CpuCollection",
    "GpuCollection",
    "HardwarePlatform",
    "LaunchIdentity",
    "Platform",
    "detect_platform",
    "launch_identity",
]

CPU_SEV_SNP = "sev-snp"
CPU_TDX = "tdx"
CHECK_DETECT = "platform.detect"

# Roles of the SEV-SNP extended-report certificate table (GHCB spec, "SNP Extended Guest
# Request") as the bundle names them.
_CERT_TABLE_ROLES = {"VCEK": "vcek", "VLEK": "vlek", "ASK": "ask", "ARK": "ark"}


def _frozen(value: Mapping[str, bytes]) -> Mapping[str, bytes]:
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class GpuCollection:
    """Step 1's result: CC state as NVML reports it, GPU items (by index), their collateral."""

    state: GpuState
    items: tuple[GpuEvidence, ...] = ()
    collateral: Mapping[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))
        object.__setattr__(self, "collateral", _frozen(self.collateral))


@dataclass(frozen=True)
class CpuCollection:
    """Step 2's result: the SEV-SNP or TDX item and the collateral it names."""

    item: SnpEvidence | TdxEvidence
    collateral: Mapping[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "collateral", _frozen(self.collateral))


@dataclass(frozen=True)
class CollectedEvidence:
    """Everything a platform produced for one nonce: the bundle's evidence and collateral."""

    cpu: SnpEvidence | TdxEvidence
    gpus: tuple[GpuEvidence, ...]
    gpu_state: GpuState
    collateral: Mapping[str, bytes]

    @property
    def evidence(self) -> tuple[SnpEvidence | TdxEvidence | GpuEvidence, ...]:
        """CPU item first, then GPUs by index (the bundle's order)."""
        return (self.cpu, *self.gpus)


class Platform(Protocol):
    """An evidence source (see the module docstring for the two steps).

    ``cpu`` is ``"sev-snp"`` or ``"tdx"``; ``simulated`` is true only for
    :mod:`attest.simulate` platforms, and every bundle built from one says so.
    Implementations raise FetchError when evidence cannot be had (no device, CC off ...).
    """

    cpu: str
    simulated: bool

    def collect_gpus(self, nonce_for: nvml_gpu.NonceFor) -> GpuCollection: ...

    def collect_cpu(self, report_data: bytes) -> CpuCollection: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class LaunchIdentity:
    """The launch measurement a CPU item carries: SNP ``MEASUREMENT`` or TDX ``MRTD`` and
    ``RTMR0``-``RTMR2`` (what a release entry lists, docs/formats.md "Release entries")."""

    cpu: str
    measurement: bytes = b""  # SNP MEASUREMENT (48 bytes)
    mrtd: bytes = b""
    rtmr0: bytes = b""
    rtmr1: bytes = b""
    rtmr2: bytes = b""

    def hex(self) -> str:
        if self.cpu == CPU_SEV_SNP:
            return f"MEASUREMENT={self.measurement.hex()}"
        return f"MRTD={self.mrtd.hex()}"


def launch_identity(item: SnpEvidence | TdxEvidence) -> LaunchIdentity:
    """Read the launch measurement out of an SNP report or a TDX quote (pure parsing)."""
    if isinstance(item, SnpEvidence):
        return LaunchIdentity(CPU_SEV_SNP, measurement=parse_report(item.report).measurement)
    body = parse_quote(item.quote).body
    return LaunchIdentity(CPU_TDX, mrtd=body.mrtd, rtmr0=body.rtmr0, rtmr1=body.rtmr1,
                          rtmr2=body.rtmr2)


# --------------------------------------------------------------------------- real hardware

CollateralHook = Callable[[SnpEvidence | TdxEvidence], tuple[SnpEvidence | TdxEvidence,
                                                             Mapping[str, bytes]]]
"""Adds vendor collateral to a CPU item: returns the item (with collateral names) and the
named blobs. The agent's CLI may wire in fetchers; tests pass fakes."""


@dataclass
class HardwarePlatform:
    """A real SEV-SNP or TDX guest, with the NVIDIA GPUs NVML sees (``nvml=None``: none)."""

    cpu: str
    tsm_root: Path = TSM_REPORT_ROOT
    sev_device: Path = SEV_GUEST_DEVICE
    tdx_fs: TsmFs = field(default_factory=TsmFs)
    nvml: Any = None
    collateral: CollateralHook | None = None
    snp_ioctl: Ioctl | None = None  # tests: a fake SNP_GET_EXT_REPORT
    simulated: bool = False

    def describe(self) -> str:
        gpus = "NVIDIA GPUs via NVML" if self.nvml is not None else "no GPUs"
        return f"{self.cpu} guest ({self.tsm_root if self.tsm_root.is_dir() else 'ioctl'}), " \
               f"{gpus}"

    def collect_gpus(self, nonce_for: nvml_gpu.NonceFor) -> GpuCollection:
        if self.nvml is None:
            return GpuCollection(GpuState("absent", 0))
        got = nvml_gpu.collect_gpu_evidence(nonce_for, self.nvml)
        items = tuple(GpuEvidence(g.index, g.report, g.chain_pem) for g in got.gpus)
        return GpuCollection(GpuState(got.cc.mode, len(got.gpus)), items)

    def collect_cpu(self, report_data: bytes) -> CpuCollection:
        item: SnpEvidence | TdxEvidence
        if self.cpu == CPU_SEV_SNP:
            got = collect_snp_report(report_data, tsm_root=self.tsm_root,
                                     device=self.sev_device, ioctl=self.snp_ioctl)
            certs: dict[str, bytes] = {}
            if got.cert_table:
                table = parse_cert_table(got.cert_table)
                vlek = table.get("VLEK") is not None
                for role, name in _CERT_TABLE_ROLES.items():
                    der = table.get(role)
                    if der is not None:  # with a VLEK, the ASK entry carries the ASVK
                        certs["asvk" if vlek and name == "ask" else name] = der
            item = SnpEvidence(got.report[:0x4A0], certs)
        else:
            item = TdxEvidence(get_quote(report_data, root=self.tsm_root, fs=self.tdx_fs))
        if self.collateral is None:
            return CpuCollection(item)
        item, blobs = self.collateral(item)
        return CpuCollection(item, blobs)


def _tsm_provider(root: Path, fs: TsmFs) -> str | None:
    """The provider of configfs-tsm under ``root`` (a probe entry, removed again)."""
    if not root.is_dir():
        return None
    entry = root / f"attestlog-probe-{uuid.uuid4().hex[:12]}"
    try:
        fs.mkdir(entry)
    except OSError:
        return None
    try:
        return fs.read(entry / "provider").decode("ascii", "replace").strip()
    except OSError:
        return None
    finally:
        with contextlib.suppress(OSError):
            fs.rmdir(entry)


def _probe_nvml(nvml: Any) -> Any:
    """The NVML module when it loads and sees at least one GPU, else None (no GPUs)."""
    if nvml is False:
        return None
    if nvml is None:
        try:
            nvml = nvml_gpu.load_nvml()
        except FetchError:
            return None
    error = getattr(nvml, "NVMLError", Exception)
    try:
        nvml.nvmlInit()
    except error:
        return None
    try:
        return nvml if nvml.nvmlDeviceGetCount() > 0 else None
    except error:
        return None
    finally:
        with contextlib.suppress(error):
            nvml.nvmlShutdown()


def detect_platform(*, tsm_root: Path = TSM_REPORT_ROOT, sev_device: Path = SEV_GUEST_DEVICE,
                    tdx_device: Path = TDX_GUEST_DEVICE, tsm_fs: TsmFs | None = None,
                    nvml: Any = None, collateral: CollateralHook | None = None,
                    snp_ioctl: Ioctl | None = None) -> HardwarePlatform:
    """Find the node's TEE: configfs-tsm's provider, else ``/dev/sev-guest``, else
    ``/dev/tdx_guest``; and its GPUs through NVML (``nvml=None`` loads ``pynvml`` if
    installed, ``nvml=False`` skips GPUs, a module/fake is used as is).

    FetchError ``platform.detect`` names every place looked at when there is no TEE.
    """
    fs = tsm_fs or TsmFs()
    provider = _tsm_provider(tsm_root, fs)
    if provider == "sev_guest" or (provider is None and sev_device.exists()):
        cpu = CPU_SEV_SNP
    elif provider == "tdx_guest" or (provider is None and tdx_device.exists()):
        cpu = CPU_TDX
    elif provider is not None:
        raise FetchError(CHECK_DETECT, "configfs-tsm has a provider attestlog does not know",
                         field="provider", got=provider, want="sev_guest or tdx_guest")
    else:
        raise FetchError(CHECK_DETECT, "no confidential-computing guest found (not an SEV-SNP "
                         "or TDX guest, or the guest drivers are not loaded)", field="device",
                         got=f"none of {tsm_root}, {sev_device}, {tdx_device}",
                         want="configfs-tsm, /dev/sev-guest or /dev/tdx_guest")
    # configfs-tsm serves quotes for TDX; the SNP collector falls back to the ioctl itself.
    root = tsm_root if provider is not None else tsm_root / "absent"
    return HardwarePlatform(cpu, tsm_root=root, sev_device=sev_device, tdx_fs=fs,
                            nvml=_probe_nvml(nvml), collateral=collateral, snp_ioctl=snp_ioctl)
