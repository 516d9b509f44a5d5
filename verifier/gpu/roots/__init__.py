"""Embedded NVIDIA trust anchors (package data), pinned by the SHA-256 of their DER.

- NVIDIA Device Identity CA: root of every GPU's device certificate chain
  (tests/vectors/nvidia/MANIFEST.md, ``verifier_device_root.pem`` of NVIDIA/nvtrust), with
  the two fleet-wide intermediates every H100 chain passes through embedded as trust
  configuration too (:data:`GH100_INTERMEDIATES`, README.txt beside this file): the link
  from one of these exact certificates to its pinned issuer is verified once per process
  (verifier/x509chain.py); their validity is checked on every call and their OCSP status as
  before; a certificate with any other bytes (another Provisioner ICA, a look-alike) and
  every per-device certificate are verified on every call.
- NVIDIA CoRIM signing Root CA: root of the chains embedded in RIMs.

These are the production defaults; simulator roots are trusted only when a caller passes them.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from verifier.x509chain import PinnedRoot, pinned_root

DEVICE_IDENTITY_CA_SHA256 = "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48"
RIM_ROOT_SHA256 = "12977b5115acb0381179279fffeb5a8c4d264971ebb32298023a465fa41df5d1"

GH100_INTERMEDIATES = (
    ("NVIDIA GH100 Identity", "nvidia_gh100_identity.pem",
     "24713555df10fcfd2cb8941e94a064edd1e14e028be12c6523b2136694bbe5f5"),
    ("NVIDIA GH100 Provisioner ICA 1", "nvidia_gh100_provisioner_ica_1.pem",
     "b20040bdc80f6961a2b9c9493cb804b61f41f1008f14ba80010039f4dd467ee9"),
)
"""(name, package data file, SHA-256 of the DER) of each embedded NVIDIA intermediate."""


def _data(name: str) -> bytes:
    return files(__package__).joinpath(name).read_bytes()


@cache
def device_identity_root() -> PinnedRoot:
    """The pinned NVIDIA Device Identity CA, with the GH100 intermediates of
    :data:`GH100_INTERMEDIATES`."""
    return pinned_root("NVIDIA Device Identity CA", _data("nvidia_device_identity_ca.pem"),
                       DEVICE_IDENTITY_CA_SHA256,
                       intermediates=[(n, _data(f), pin) for n, f, pin in GH100_INTERMEDIATES])


@cache
def rim_root() -> PinnedRoot:
    """The pinned NVIDIA CoRIM signing Root CA."""
    return pinned_root("NVIDIA CoRIM signing Root CA", _data("nvidia_rim_root.pem"),
                       RIM_ROOT_SHA256)
