"""Check that a bundle's evidence is bound to its nonce, node keys and GPUs (DESIGN.md, "Binding").

The caller (the pipeline) has already verified each report's signature and extracted the
bound fields with the evidence parsers; this step only compares them with the values
:mod:`attest.binding` derives from the bundle (docs/formats.md, "Binding"):

1. ``binding.report_data``: the SEV-SNP ``REPORT_DATA`` or TDX ``REPORTDATA`` equals
   SHA-512("attestlog/v2" || nonce || SHA-256(node_key) || SHA-256(ohttp_keys) ||
   gpu_digest). A bundle without a CPU item has nothing that binds its GPUs to the node key,
   and fails here. ``binding.ohttp_keys`` instead when the bundle carries an HPKE key
   configuration and the report binds *no* key configuration (REPORT_DATA is the value for
   the same bundle without ``ohttp_keys``): a key added to a node's evidence after the fact.
   Any other HPKE key swap (evidence made for key A, bundle showing key B) cannot be told
   apart from other tampering and fails ``binding.report_data``.
2. ``binding.gpu_nonce``: the report of the GPU item at index ``i`` carries the SPDM
   requester nonce SHA-256("attestlog/gpu/v3" || nonce || SHA-256(node_key) ||
   SHA-256(ohttp_keys) || uint32be(i)); a nonce must be given for exactly the bundle's GPU
   indices. The index fixes each report's position: a report moved to another index (GPUs
   swapped, one report presented twice) fails here.

A mismatch is a VerificationError (well formed, but not bound: relayed, swapped or meant for
another key) naming the field, got and want in hex. Stops at the first failure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from attest.binding import bundle_gpu_nonce, bundle_report_data, gpu_digest
from attest.certificates import register_parse_memo
from attest.formats.bundle import EvidenceBundle, GpuEvidence, GpuState, SnpEvidence
from transparency_log.common.errors import VerificationError

__all__ = ["CHECK_GPU_NONCE", "CHECK_OHTTP_KEYS", "CHECK_REPORT_DATA", "BindingResult",
           "check_binding"]

CHECK_REPORT_DATA = "binding.report_data"
CHECK_GPU_NONCE = "binding.gpu_nonce"
CHECK_OHTTP_KEYS = "binding.ohttp_keys"


@dataclass(frozen=True)
class BindingResult:
    """What was compared (for the transcript): the derived values and the GPUs covered."""

    report_data: bytes
    gpu_nonces: tuple[bytes, ...]  # the bound SPDM nonce of each GPU, in ``gpu_indices`` order
    gpu_digest: bytes
    gpu_indices: tuple[int, ...]
    checks: tuple[str, ...] = (CHECK_REPORT_DATA, CHECK_GPU_NONCE)


@lru_cache(maxsize=32)
def _gpu_digest(cc_mode: str, attached: int, items: tuple[tuple[int, bytes, bytes], ...]
                ) -> bytes:
    """:func:`attest.binding.gpu_digest` (encoded once, shown in the result), once per exact
    inputs: the GPU reports and chains by their bytes (a bytes object keeps its hash, so a
    bundle seen before costs no re-encoding of some 60 kB; other bytes compare unequal)."""
    return gpu_digest(GpuState(cc_mode, attached), [GpuEvidence(i, r, c) for i, r, c in items])


register_parse_memo(_gpu_digest.cache_clear)  # a cold run encodes afresh


def check_binding(bundle: EvidenceBundle, *, report_data: bytes | None,
                  gpu_nonces: Mapping[int, bytes]) -> BindingResult:
    """Compare the extracted ``report_data`` (None when the bundle has no CPU report) and
    each GPU's request nonce (by GPU index) with the values the bundle implies."""
    cpu = bundle.cpu_evidence
    gpus = _gpu_digest(bundle.gpu_state.cc_mode, bundle.gpu_state.attached,
                       tuple((g.index, g.report, g.cert_chain) for g in bundle.gpu_evidence))
    want_rd = bundle_report_data(bundle, gpus=gpus)
    if cpu is None:
        raise VerificationError(CHECK_REPORT_DATA, "no SEV-SNP or TDX report binds the bundle",
                                field="evidence", got="no CPU item", want="sev-snp or tdx")
    field = "REPORT_DATA" if isinstance(cpu, SnpEvidence) else "REPORTDATA"
    if report_data is None:
        raise VerificationError(CHECK_REPORT_DATA, f"no {field} extracted from the report",
                                field=field, want=want_rd)
    if report_data != want_rd and bundle.ohttp_keys is not None and report_data == (
            bundle_report_data(dataclasses.replace(bundle, ohttp_keys=None), gpus=gpus)):
        raise VerificationError(CHECK_OHTTP_KEYS, f"{cpu.TYPE} {field} binds no HPKE key "
                                "configuration: the bundle's ohttp_keys is not the node's",
                                field="ohttp_keys", got=report_data, want=want_rd)
    if report_data != want_rd:
        raise VerificationError(CHECK_REPORT_DATA, f"{cpu.TYPE} {field} does not bind this "
                                "nonce, node key, HPKE key configuration and GPU evidence",
                                field=field, got=report_data, want=want_rd)

    indices = tuple(g.index for g in bundle.gpu_evidence)
    if set(gpu_nonces) != set(indices):
        raise VerificationError(CHECK_GPU_NONCE, "GPU nonces given for other GPUs than the "
                                "bundle's", field="evidence.index",
                                got=sorted(gpu_nonces), want=list(indices))
    wanted: dict[int, bytes] = {}
    for i, item in enumerate(bundle.evidence):
        if not isinstance(item, GpuEvidence):
            continue
        want_gn = wanted[item.index] = bundle_gpu_nonce(bundle, item.index)
        got = gpu_nonces[item.index]
        if got != want_gn:
            raise VerificationError(
                CHECK_GPU_NONCE, f"GPU {item.index} report was made for another nonce, node key "
                "or GPU index", field=f"evidence[{i}].report nonce", got=got, want=want_gn)
    return BindingResult(want_rd, tuple(wanted[i] for i in indices), gpus, indices)
