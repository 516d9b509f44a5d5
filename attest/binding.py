"""Binding evidence to the client's nonce, the node's keys and the GPUs (DESIGN.md, "Binding").

docs/formats.md, "Binding", specifies it byte by byte::

    node_key_digest  = SHA-256(node_key)                         node_key: DER SPKI bytes
    ohttp_keys_digest = SHA-256(ohttp_keys)                      b"" when the bundle has none
    gpu_digest       = SHA-256(CBOR([cc_mode, attached, [[index, report, cert_chain], ...]]))
    REPORT_DATA      = SHA-512("attestlog/v2" || nonce || node_key_digest || ohttp_keys_digest
                               || gpu_digest)
    GPU nonce(i)     = SHA-256("attestlog/gpu/v3" || nonce || node_key_digest
                               || ohttp_keys_digest || uint32be(i))

- ``ohttp_keys`` is the node's HPKE request key configuration exactly as the bundle carries
  it and the agent serves it at ``/.well-known/ohttp-gateway`` (``application/ohttp-keys``,
  RFC 9458 §3.2; RFC 9540 §3). A list is never empty, so "no key" (SHA-256 of the empty
  string) and any key list are distinct. Domains ``v2``/``gpu/v3`` (issue 13) replace
  ``v1``/``gpu/v2``, which did not commit to the HPKE key; only the current domains verify.

- ``REPORT_DATA`` is the SEV-SNP report's 64-byte REPORT_DATA (SEV-SNP ABI spec, Table 22,
  offset 0x50) or the TDX TD report's 64-byte REPORTDATA.
- ``gpu_digest`` ("SHA-256(GPU evidence items)") is over the RFC 8949 §4.2.1 deterministic
  CBOR encoding of a 3-array: the bundle's ``gpu_state.cc_mode`` (text) and
  ``gpu_state.attached`` (uint), then an array with one ``[index, report, cert_chain]``
  array (uint, bytes, bytes) per GPU item, in increasing index order, exactly as the items
  are in the bundle (empty, ``0x80``, with no GPU). The node-reported CC state is bound so
  that it is the measured agent's claim. RIM and OCSP references are not covered: collateral
  can be refreshed without a new CPU report, and is verified against vendor signatures.
- The GPU at index ``i`` (its ``nvidia-gpu`` item's ``index``, NVML order) is asked for the
  32-byte SPDM nonce ``GPU nonce(i)``; the GPU signs it inside its report, and the CPU report
  commits to the GPU reports, so a GPU report from another node or session, a report relayed
  for another nonce, evidence bound to another TLS key, or a report moved to another index
  (two GPUs swapped, one report presented twice) fails the comparison. The GPU domain's
  ``gpu/v1`` gave every GPU the same nonce (issue 16).

The string prefixes are ASCII without a terminator; ``||`` is concatenation.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable

from attest.formats.bundle import (
    MAX_GPU_INDEX,
    MAX_NONCE,
    MIN_NONCE,
    EvidenceBundle,
    GpuEvidence,
    GpuState,
    deterministic_cbor,
)
from transparency_log.common.errors import FormatError

__all__ = [
    "GPU_INDEX_SIZE",
    "GPU_NONCE_DOMAIN",
    "GPU_NONCE_SIZE",
    "REPORT_DATA_DOMAIN",
    "REPORT_DATA_SIZE",
    "bundle_gpu_nonce",
    "bundle_report_data",
    "gpu_digest",
    "gpu_encoding",
    "gpu_nonce",
    "gpu_nonces",
    "node_key_digest",
    "ohttp_keys_digest",
    "report_data",
    "report_data_over",
]

REPORT_DATA_DOMAIN = b"attestlog/v2"
GPU_NONCE_DOMAIN = b"attestlog/gpu/v3"
REPORT_DATA_SIZE = 64  # SNP REPORT_DATA, TDX REPORTDATA
GPU_NONCE_SIZE = 32  # SPDM GET_MEASUREMENTS requester nonce (DSP0274 §10.11)
GPU_INDEX_SIZE = 4  # the GPU index, big-endian, last in the GPU nonce's input


def _check_nonce(nonce: bytes) -> None:
    if not MIN_NONCE <= len(nonce) <= MAX_NONCE:
        raise FormatError("binding.nonce", "nonce has the wrong size", field="nonce",
                          got=len(nonce), want=f"{MIN_NONCE}..{MAX_NONCE}")


def node_key_digest(node_key: bytes) -> bytes:
    """SHA-256 of the node key's DER SubjectPublicKeyInfo bytes."""
    return hashlib.sha256(node_key).digest()


def ohttp_keys_digest(ohttp_keys: bytes | None) -> bytes:
    """SHA-256 of the ``application/ohttp-keys`` bytes the bundle carries (of ``b""`` when
    it carries none: the evidence then binds no HPKE key)."""
    return hashlib.sha256(ohttp_keys if ohttp_keys is not None else b"").digest()


def gpu_encoding(gpu_state: GpuState, gpu_items: Iterable[GpuEvidence]) -> bytes:
    """The bytes :func:`gpu_digest` hashes: CBOR
    ``[cc_mode, attached, [[index, report, cert_chain], ...]]``.

    Items are taken in increasing index order; two items with one index are refused.
    """
    items = sorted(gpu_items, key=lambda g: g.index)
    if len({g.index for g in items}) != len(items):
        raise FormatError("binding.gpu_items", "two GPU items share an index",
                          field="evidence.index", got=[g.index for g in items])
    return deterministic_cbor([gpu_state.cc_mode, gpu_state.attached,
                               [[g.index, g.report, g.cert_chain] for g in items]])


def gpu_digest(gpu_state: GpuState, gpu_items: Iterable[GpuEvidence]) -> bytes:
    """SHA-256 over :func:`gpu_encoding` ("SHA-256(GPU evidence items)" in DESIGN.md)."""
    return hashlib.sha256(gpu_encoding(gpu_state, gpu_items)).digest()


def report_data(nonce: bytes, node_key: bytes, gpu_state: GpuState,
                gpu_items: Iterable[GpuEvidence], *, ohttp_keys: bytes | None = None) -> bytes:
    """The 64-byte SNP REPORT_DATA / TDX REPORTDATA binding nonce, node key, HPKE key
    configuration (``ohttp_keys``; None: the node offers none) and GPU evidence."""
    return report_data_over(nonce, node_key, gpu_digest(gpu_state, gpu_items),
                            ohttp_keys=ohttp_keys)


def report_data_over(nonce: bytes, node_key: bytes, gpus: bytes, *,
                     ohttp_keys: bytes | None = None) -> bytes:
    """:func:`report_data` from an already computed :func:`gpu_digest` ``gpus`` (a verifier
    that shows the digest computes the GPU evidence's encoding once)."""
    _check_nonce(nonce)
    return hashlib.sha512(REPORT_DATA_DOMAIN + nonce + node_key_digest(node_key)
                          + ohttp_keys_digest(ohttp_keys) + gpus).digest()


def gpu_nonce(nonce: bytes, node_key: bytes, index: int, *,
              ohttp_keys: bytes | None = None) -> bytes:
    """The 32-byte SPDM nonce the GPU at ``index`` is asked to sign."""
    _check_nonce(nonce)
    if not 0 <= index <= MAX_GPU_INDEX:
        raise FormatError("binding.gpu_nonce", "GPU index out of range", field="evidence.index",
                          got=index, want=f"0..{MAX_GPU_INDEX}")
    return hashlib.sha256(GPU_NONCE_DOMAIN + nonce + node_key_digest(node_key)
                          + ohttp_keys_digest(ohttp_keys)
                          + index.to_bytes(GPU_INDEX_SIZE, "big")).digest()


def gpu_nonces(nonce: bytes, node_key: bytes, *,
               ohttp_keys: bytes | None = None) -> Callable[[int], bytes]:
    """``index -> gpu_nonce(nonce, node_key, index, ohttp_keys=...)``: what a node hands its
    GPU collector."""
    _check_nonce(nonce)
    return functools.partial(_gpu_nonce_at, nonce, node_key, ohttp_keys)


def _gpu_nonce_at(nonce: bytes, node_key: bytes, ohttp_keys: bytes | None, index: int) -> bytes:
    return gpu_nonce(nonce, node_key, index, ohttp_keys=ohttp_keys)


def bundle_report_data(bundle: EvidenceBundle, *, gpus: bytes | None = None) -> bytes:
    """The REPORT_DATA a bundle's CPU report must carry (``gpus``: its :func:`gpu_digest`,
    when the caller computed it already)."""
    if gpus is None:
        gpus = gpu_digest(bundle.gpu_state, bundle.gpu_evidence)
    return report_data_over(bundle.nonce, bundle.node_key, gpus, ohttp_keys=bundle.ohttp_keys)


def bundle_gpu_nonce(bundle: EvidenceBundle, index: int) -> bytes:
    """The SPDM nonce a bundle's GPU report at ``index`` must carry."""
    return gpu_nonce(bundle.nonce, bundle.node_key, index, ohttp_keys=bundle.ohttp_keys)
