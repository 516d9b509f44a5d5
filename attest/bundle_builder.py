"""Assemble an evidence bundle from a platform (DESIGN.md "Binding"; docs/formats.md
"Evidence bundle (CBOR)").

:func:`build_bundle` does, in order:

1. ask the GPU at index ``i`` for a report over ``attest.binding.gpu_nonce(nonce, node_key,
   i, ohttp_keys=...)`` (:meth:`attest.platform.Platform.collect_gpus` with ``gpu_nonces``);
2. ``REPORT_DATA = attest.binding.report_data(nonce, node_key, gpu_state, gpu_items,
   ohttp_keys=...)``; ask the CPU TEE for a report/quote over it
   (:meth:`~attest.platform.Platform.collect_cpu`);
3. staple the collateral both steps returned, the release entry and its tlog-proof (and the
   release's Sigstore bundle, when the node has one), and encode (the encoder re-decodes,
   so the node never serves what a client would refuse).

A simulated platform makes a bundle with ``simulated = true`` only: asking for a
non-simulated bundle from simulated hardware is a ValueError (a programming error), so no
path can hide the label.
"""

from __future__ import annotations

from attest.binding import gpu_nonces, report_data
from attest.formats.bundle import EvidenceBundle, encode_bundle
from attest.platform import CollectedEvidence, Platform
from transparency_log.common.errors import FormatError

__all__ = ["build_bundle", "collect_evidence"]


def collect_evidence(platform: Platform, nonce: bytes, node_key_der: bytes, *,
                     ohttp_keys: bytes | None = None) -> CollectedEvidence:
    """Steps 1-2: GPU reports over their GPU nonces, then the CPU report over REPORT_DATA
    (both commit to ``ohttp_keys``, the node's HPKE key configuration, when it has one)."""
    gpus = platform.collect_gpus(gpu_nonces(nonce, node_key_der, ohttp_keys=ohttp_keys))
    cpu = platform.collect_cpu(report_data(nonce, node_key_der, gpus.state, gpus.items,
                                           ohttp_keys=ohttp_keys))
    collateral = dict(gpus.collateral)
    for name, blob in cpu.collateral.items():
        if collateral.get(name, blob) != blob:
            raise FormatError("bundle.collateral", "two different blobs under one name",
                              field=f"collateral[{name}]")
        collateral[name] = blob
    return CollectedEvidence(cpu.item, gpus.items, gpus.state, collateral)


def build_bundle(platform: Platform, nonce: bytes, node_key_der: bytes, release_entry: bytes,
                 tlog_proof: bytes, *, simulated: bool,
                 sigstore_bundle: bytes | None = None,
                 ohttp_keys: bytes | None = None) -> EvidenceBundle:
    """A fresh bundle for the client's ``nonce`` (32..64 bytes), bound to ``node_key_der``
    (the node's TLS key, DER SubjectPublicKeyInfo) and to ``ohttp_keys`` (the node's HPKE
    key configuration, ``application/ohttp-keys``; None: the node offers none). See the
    module docstring."""
    if platform.simulated and not simulated:
        raise ValueError("a simulated platform only makes bundles marked simulated = true")
    got = collect_evidence(platform, nonce, node_key_der, ohttp_keys=ohttp_keys)
    bundle = EvidenceBundle(nonce=nonce, node_key=node_key_der, simulated=simulated,
                            evidence=got.evidence, release=release_entry,
                            tlog_proof=tlog_proof, collateral=got.collateral,
                            gpu_state=got.gpu_state, sigstore_bundle=sigstore_bundle,
                            ohttp_keys=ohttp_keys)
    encode_bundle(bundle)  # refuse here what a client's decoder would refuse
    return bundle
