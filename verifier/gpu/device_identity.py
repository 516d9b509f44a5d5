"""Which physical GPU signed a report, and ``gpu.device.distinct``: N GPU items are N devices
(issue 16; docs/verification.md, "GPU device identity").

A Hopper GPU's device chain (verifier/gpu/report_verify.py, ``DEVICE_CHAIN_ROLES``) is a TCG
DICE layering: NVIDIA's Provisioner ICA certifies, at manufacturing, the per-device
**DeviceID** key of the GPU's boot ROM ("GH100 A01 GSP BROM", chain[1]); that key certifies
the **attestation** (alias) key of the running GSP firmware ("GH100 A01 GSP FMC LF",
chain[0]), which signs the SPDM report. So, once ``gpu.chain`` has verified the chain:

- ``device_key``: SHA-256 of chain[1]'s DER SubjectPublicKeyInfo. One per physical GPU, the
  same across firmware updates and reboots: the identity this check counts.
- ``attestation_key``: SHA-256 of chain[0]'s DER SubjectPublicKeyInfo (one per device and
  firmware; the key that signed the report).
- ``ueid``: chain[0]'s serial number, what NVIDIA's local verifier reports as the EAT
  ``ueid`` claim (nvtrust ``local_gpu_verifier`` cc_admin.py takes the attestation
  certificate's serial number; tests/vectors/nvidia/nvtrust-sdk-claims shows its shape).

Two GPU items are the same device when any of the three is equal; the first repeat is
refused as a VerificationError (a duplicated device is a forgery of the GPU count, not a
policy matter). The FWID (TcbInfo extension, opaque FWID field) is **not** an identity: it is
the digest of the firmware, equal on every GPU that runs the same firmware.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from transparency_log.common.errors import VerificationError

__all__ = ["CHECK_DEVICE_DISTINCT", "DeviceIdentity", "check_distinct_devices",
           "device_identity"]

CHECK_DEVICE_DISTINCT = "gpu.device.distinct"


@lru_cache(maxsize=1024)
def _spki_digest(cert: x509.Certificate) -> bytes:
    # Remembered by the certificate itself (hashed and compared by its DER, bounded): a warm
    # run reuses the digests of the chains it saw before (issue 15).
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


@dataclass(frozen=True)
class DeviceIdentity:
    """What identifies the GPU behind one verified device chain (module docstring)."""

    device_key: bytes  # SHA-256(DER SPKI) of the GSP BROM (DeviceID) certificate
    attestation_key: bytes  # SHA-256(DER SPKI) of the GSP FMC leaf (attestation) certificate
    ueid: int  # the attestation certificate's serial number (NVIDIA's EAT "ueid")

    def shared_with(self, other: DeviceIdentity) -> str | None:
        """The name of the first component equal to ``other``'s, or None."""
        for name in ("device_key", "attestation_key", "ueid"):
            if getattr(self, name) == getattr(other, name):
                return name
        return None


def device_identity(chain: Sequence[x509.Certificate]) -> DeviceIdentity:
    """The identity of a device chain that ``gpu.chain`` verified (leaf first)."""
    if len(chain) < 2:
        raise VerificationError(CHECK_DEVICE_DISTINCT, "the device chain has no DeviceID "
                                "(GSP BROM) certificate", field="chain length",
                                got=len(chain), want=">= 2")
    return DeviceIdentity(_spki_digest(chain[1]), _spki_digest(chain[0]),
                          chain[0].serial_number)


_FIELDS = {"device_key": "GSP BROM subjectPublicKeyInfo (DeviceID key)",
           "attestation_key": "GSP FMC leaf subjectPublicKeyInfo (attestation key)",
           "ueid": "GSP FMC leaf serialNumber (UEID)"}


def check_distinct_devices(
        chains: Sequence[tuple[int, Sequence[x509.Certificate]]]) -> tuple[DeviceIdentity, ...]:
    """``gpu.device.distinct``: every (GPU index, verified chain) comes from another device.

    Returns the identities in the order given; raises VerificationError naming both GPU
    indexes and the shared component (hex) at the first repeat.
    """
    seen: list[tuple[int, DeviceIdentity]] = []
    for index, chain in chains:
        ident = device_identity(chain)
        for earlier, other in seen:
            shared = ident.shared_with(other)
            if shared is not None:
                value = getattr(ident, shared)
                got = value if isinstance(value, bytes) else f"{value:x}"
                raise VerificationError(
                    CHECK_DEVICE_DISTINCT, f"GPU {index} is the same device as GPU {earlier}: "
                    "one GPU's evidence counted twice", field=f"GPU-{index} {_FIELDS[shared]}",
                    got=got, want=f"a device other than GPU {earlier}'s")
        seen.append((index, ident))
    return tuple(ident for _, ident in seen)
