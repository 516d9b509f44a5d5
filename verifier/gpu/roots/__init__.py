"""Embedded NVIDIA trust anchors (package data), pinned by the SHA-256 of their DER.

- NVIDIA Device Identity CA: root of every GPU's device certificate chain
  (tests/vectors/nvidia/MANIFEST.md, ``verifier_device_root.pem`` of NVIDIA/nvtrust).
- NVIDIA CoRIM signing Root CA: root of the chains embedded in RIMs.

These are the production defaults; simulator roots are trusted only when a caller passes them.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from verifier.x509chain import PinnedRoot, pinned_root

DEVICE_IDENTITY_CA_SHA256 = "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48"
RIM_ROOT_SHA256 = "12977b5115acb0381179279fffeb5a8c4d264971ebb32298023a465fa41df5d1"


@cache
def device_identity_root() -> PinnedRoot:
    """The pinned NVIDIA Device Identity CA."""
    pem = files(__package__).joinpath("nvidia_device_identity_ca.pem").read_bytes()
    return pinned_root("NVIDIA Device Identity CA", pem, DEVICE_IDENTITY_CA_SHA256)


@cache
def rim_root() -> PinnedRoot:
    """The pinned NVIDIA CoRIM signing Root CA."""
    pem = files(__package__).joinpath("nvidia_rim_root.pem").read_bytes()
    return pinned_root("NVIDIA CoRIM signing Root CA", pem, RIM_ROOT_SHA256)
