"""Sample release statements shared by the tests/test_release_*.py modules."""

from __future__ import annotations

import hashlib

from attest.release.measurements import GpuAllowList, Measurements, SnpMeasurement, TdxMeasurement
from attest.release.statement import Artifact, Release, Subject

# The SNP launch MEASUREMENT of tests/vectors/snp MANIFEST's second vector.
SNP_MEASUREMENT = bytes.fromhex(
    "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba"
    "7e534442e7e1e17895dfe778d0228977")


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def sample_release() -> Release:
    return Release(
        subjects=(Subject("inference-node.qcow2", digest("image")),),
        repository="https://github.com/example/inference-node",
        commit="d8b4a6445f38c48b9137a8099706d9b8073146e4",
        builder="https://github.com/example/inference-node/.github/workflows/release.yml",
        artifacts=(
            Artifact("firmware", "OVMF.fd", digest("ovmf")),
            Artifact("kernel", "vmlinuz", digest("kernel")),
            Artifact("initrd", "initrd.img", digest("initrd")),
            Artifact("cmdline", "cmdline.txt", digest("console=ttyS0")),
            Artifact("disk", "inference-node.qcow2", digest("image")),
        ),
        measurements=Measurements(
            snp=(SnpMeasurement(1, "EPYC-v4", "qemu", SNP_MEASUREMENT),
                 SnpMeasurement(8, "EPYC-v4", "qemu", bytes(range(48)))),
            tdx=TdxMeasurement(bytes([1]) * 48, bytes([2]) * 48, bytes([3]) * 48,
                               bytes([4]) * 48),
            gpu=GpuAllowList(drivers=("550.90.07",), vbios=("96.00.9F.00.01",)),
        ),
    )


def big_release() -> Release:
    """A statement of about 52 KB: within the cap itself, over it once base64 in DSSE."""
    base = sample_release()
    arts = tuple(Artifact("other", f"{i:03d}" + "x" * 253, digest(str(i))) for i in range(64))
    snp = tuple(SnpMeasurement(i + 1, "EPYC-v4" + "x" * 57, "qemu", bytes(48)) for i in range(64))
    versions = tuple(f"{i:03d}" + "9" * 61 for i in range(64))
    subjects = tuple(Subject(f"{i:03d}" + "s" * 253, digest(str(i))) for i in range(16))
    return Release(subjects, base.repository, base.commit, base.builder, arts,
                   Measurements(snp, base.measurements.tdx, GpuAllowList(versions, versions)))
