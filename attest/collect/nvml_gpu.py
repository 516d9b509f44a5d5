"""Collect every NVIDIA GPU's evidence through NVML (``nvidia-ml-py``, extra ``gpu``).

For a 32-byte nonce (one for every GPU, or one per GPU index: a node binding a bundle asks
GPU ``i`` for ``attest.binding.gpu_nonce(nonce, node_key, i)``): the system CC state
(feature, DEVTOOLS), then per GPU its UUID, the SPDM attestation report for its nonce and
the device certificate chain (PEM, leaf first).
The NVML module is a parameter, so tests inject a fake and nodes without GPUs fail clearly:

- ``gpu.collect.nvml``     the ``pynvml`` module is not installed (``pip install attestlog[gpu]``);
- ``gpu.collect.driver``   NVML cannot load or the driver is not loaded;
- ``gpu.collect.no_gpu``   NVML sees no GPU;
- ``gpu.collect.cc_mode``  CC mode is off (no attestation report can be had);
- ``gpu.collect.report``   an NVML call failed for one GPU (named by index).

They are FetchErrors: the evidence could not be obtained (exit 3), which never means "invalid".
NOT YET RUN ON HARDWARE: the NVML calls follow NVIDIA's documented CC API (nvml.h
``nvmlDeviceGetConfComputeGpuAttestationReport`` / ``...GpuCertificate``).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from attest.binding import gpu_nonce
from transparency_log.common.errors import FetchError

NONCE_SIZE = 32
CC_FEATURE_ENABLED = 1
DEVTOOLS_ON = 1


@dataclass(frozen=True)
class CcState:
    """``nvmlSystemGetConfComputeState``: the node-reported (unsigned) CC settings."""

    cc_feature: bool
    devtools: bool
    environment: int | None = None

    @property
    def mode(self) -> str:
        if not self.cc_feature:
            return "off"
        return "devtools" if self.devtools else "on"


@dataclass(frozen=True)
class CollectedGpu:
    index: int
    uuid: str
    report: bytes
    chain_pem: bytes
    nonce: bytes  # the SPDM nonce this GPU was asked to sign


@dataclass(frozen=True)
class CollectedEvidence:
    nonce: bytes | None  # the nonce every GPU signed; None when each GPU had its own
    driver_version: str
    cc: CcState
    gpus: tuple[CollectedGpu, ...]


#: The SPDM nonce for the GPU at an index (``attest.binding.gpu_nonces``).
NonceFor = Callable[[int], bytes]


def gpu_spdm_nonce(nonce: bytes, node_key: bytes, index: int, *,
                   ohttp_keys: bytes | None = None) -> bytes:
    """docs/formats.md "Binding": SHA-256(b"attestlog/gpu/v3" || nonce || SHA-256(node key)
    || SHA-256(ohttp_keys) || uint32be(index))."""
    return gpu_nonce(nonce, node_key, index, ohttp_keys=ohttp_keys)


def load_nvml() -> ModuleType:
    """Import ``pynvml`` (from nvidia-ml-py) or say how to get it."""
    try:
        import pynvml
    except ImportError:
        raise FetchError("gpu.collect.nvml", "NVML bindings not installed: "
                         "pip install 'attestlog[gpu]' (nvidia-ml-py)",
                         field="pynvml") from None
    return pynvml


def _error_name(nvml: ModuleType, err: Exception) -> str:
    value = getattr(err, "value", None)
    for name in dir(nvml):
        if name.startswith("NVML_ERROR_") and getattr(nvml, name) == value:
            return name
    return str(err)


def _is(nvml: ModuleType, err: Exception, *names: str) -> bool:
    value = getattr(err, "value", object())
    return any(getattr(nvml, n, None) == value for n in names)


def _bytes(buffer: Any, size: int, *, check: str, field: str) -> bytes:
    data = bytes(buffer)
    if not 0 < size <= len(data):
        raise FetchError(check, "NVML returned a size outside its buffer", field=field,
                         got=size, want=f"1..{len(data)}")
    return data[:size]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_cc_state(nvml: ModuleType) -> CcState:
    state = nvml.nvmlSystemGetConfComputeState()
    return CcState(cc_feature=state.ccFeature == CC_FEATURE_ENABLED,
                   devtools=state.devToolsMode == DEVTOOLS_ON,
                   environment=getattr(state, "environment", None))


def _attestation_report(nvml: ModuleType, handle: Any, nonce: bytes) -> Any:
    """Call NVML with a report struct whose nonce is set (nvml.h layout)."""
    struct_type = getattr(nvml, "c_nvmlConfComputeGpuAttestationReport_t", None)
    if struct_type is None:  # older or fake bindings take the nonce directly
        return nvml.nvmlDeviceGetConfComputeGpuAttestationReport(handle, nonce)
    report = struct_type()
    ctypes.memmove(report.nonce, nonce, NONCE_SIZE)
    return nvml.nvmlDeviceGetConfComputeGpuAttestationReport(handle, report)


def _checked(nonce: bytes) -> bytes:
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"nonce must be {NONCE_SIZE} bytes, got {len(nonce)}")
    return nonce


def _nonce_source(nonce: bytes | NonceFor) -> tuple[NonceFor, bytes | None]:
    """(index -> nonce, the common nonce or None)."""
    if isinstance(nonce, bytes | bytearray):
        common = _checked(bytes(nonce))
        return (lambda _index: common), common
    return nonce, None


def collect_gpu_evidence(nonce: bytes | NonceFor, nvml: Any = None) -> CollectedEvidence:
    """Evidence of every GPU for ``nonce``: 32 bytes for every GPU, or a function of the GPU
    index returning its 32 bytes (the bundle binding's per-GPU nonce)."""
    nonce_for, common = _nonce_source(nonce)
    nvml = nvml or load_nvml()
    error = getattr(nvml, "NVMLError", Exception)
    try:
        nvml.nvmlInit()
    except error as err:
        raise FetchError("gpu.collect.driver", "NVML did not initialise: no NVIDIA driver "
                         f"loaded? ({_error_name(nvml, err)})", field="nvmlInit") from None
    try:
        return _collect(nvml, nonce_for, error, common)
    finally:
        try:
            nvml.nvmlShutdown()
        except error:
            pass


def _collect(nvml: ModuleType, nonce_for: NonceFor, error: type[Exception],
             common: bytes | None) -> CollectedEvidence:
    try:
        count = nvml.nvmlDeviceGetCount()
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        cc = read_cc_state(nvml)
    except error as err:
        raise FetchError("gpu.collect.driver", f"NVML query failed ({_error_name(nvml, err)})",
                         field="nvmlSystemGetConfComputeState") from None
    if count == 0:
        raise FetchError("gpu.collect.no_gpu", "NVML sees no GPU", field="nvmlDeviceGetCount",
                         got=0, want=">= 1")
    if cc.mode == "off":
        raise FetchError("gpu.collect.cc_mode", "confidential computing is off on this node: "
                         "the GPUs cannot produce attestation reports", field="ccFeature",
                         got="off", want="on")
    gpus = []
    for i in range(count):
        where = f"GPU {i}"
        nonce = _checked(nonce_for(i))
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            uuid = _text(nvml.nvmlDeviceGetUUID(handle))
            rep = _attestation_report(nvml, handle, nonce)
            cert = nvml.nvmlDeviceGetConfComputeGpuCertificate(handle)
        except error as err:
            hint = (" (CC mode not supported or not ready on this GPU)"
                    if _is(nvml, err, "NVML_ERROR_NOT_SUPPORTED") else "")
            raise FetchError("gpu.collect.report", f"{where}: NVML failed: "
                             f"{_error_name(nvml, err)}{hint}", field=where) from None
        report = _bytes(rep.attestationReport, rep.attestationReportSize,
                        check="gpu.collect.report", field=f"{where}.attestationReport")
        chain = _bytes(cert.attestationCertChain, cert.attestationCertChainSize,
                       check="gpu.collect.report", field=f"{where}.attestationCertChain")
        gpus.append(CollectedGpu(i, uuid, report, chain, nonce))
    return CollectedEvidence(common, driver, cc, tuple(gpus))
