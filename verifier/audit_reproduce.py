"""Re-derive a release's logged launch measurements from its published artifacts.

``verifier audit --reproduce DIR`` looks up each artifact a release lists
(:class:`attest.release.statement.Artifact`: kind, name, sha256) in ``DIR`` by content
(:func:`find_artifact`):

1. ``DIR/<sha256 hex>`` (a content-addressed store; the recommended layout);
2. ``DIR/sha256/<sha256 hex>``;
3. ``DIR/<artifact name>`` (a build's output folder).

A candidate file is used only if its SHA-256 equals the logged one; otherwise (or if there is
no candidate) the artifact is *missing*. Then (:func:`reproduce_release`):

- **SEV-SNP**: for each logged ``snp`` configuration (vcpus, vcpu_type, vmm_type) the launch
  MEASUREMENT is recomputed with :func:`attest.measure.snp_launch.snp_launch_measurement`
  from the ``firmware`` artifact (OVMF AmdSevX64, or its suffix) and, when the release lists a
  ``kernel``, the hashes table of ``kernel``, ``initrd`` (absent: empty) and ``cmdline`` (the
  artifact's bytes are the command line, UTF-8, without a trailing newline). The VMSA
  SEV_FEATURES value is not part of the release statement: each of ``snp_guest_features``
  (default QEMU's ``0x1``) is tried and the one that matched is reported.
- **TDX**: ``MRTD`` is recomputed with :func:`attest.measure.tdx_mrtd.tdx_mrtd` from the
  ``firmware`` artifact (TDVF) under each of ``tdx_orders`` (the host kernel's page
  add/extend order, also not in the statement). ``RTMR0-2`` depend on the boot-time event
  log and are not re-derived here (reported as not checked).
- GPU driver/VBIOS allow-lists are versions, not measurements: nothing to re-derive.

With several ``firmware`` artifacts every one that parses as the right image type is tried.
The outcome is ``reproduced`` (every SNP/TDX measurement matched), ``mismatch`` (one did not:
flag ``release.reproduce``), or ``missing`` (an artifact needed is not in ``DIR``: flag
``release.artifacts.missing``; nothing is recomputed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attest.measure.snp_launch import (
    VCPU_SIGNATURES,
    KernelHashes,
    OvmfImage,
    VmmType,
    ovmf_hash,
    snp_launch_measurement,
)
from attest.measure.tdx_mrtd import PageOrder, TdvfImage, tdx_mrtd
from attest.release.statement import Artifact, Release
from transparency_log.common.errors import FormatError

__all__ = [
    "CHECK_ARTIFACTS_MISSING",
    "CHECK_REPRODUCE",
    "DEFAULT_SNP_GUEST_FEATURES",
    "MISMATCH",
    "MISSING",
    "REPRODUCED",
    "Reproduction",
    "find_artifact",
    "reproduce_release",
]

CHECK_REPRODUCE = "release.reproduce"
CHECK_ARTIFACTS_MISSING = "release.artifacts.missing"
REPRODUCED, MISMATCH, MISSING = "reproduced", "mismatch", "missing"
DEFAULT_SNP_GUEST_FEATURES = (0x1,)
MAX_ARTIFACT_SIZE = 1 << 30  # a firmware/kernel/initrd larger than 1 GiB is not read


@dataclass(frozen=True)
class Reproduction:
    """The outcome for one release; ``measurements`` has one dict per logged measurement."""

    status: str
    missing: tuple[str, ...] = ()
    measurements: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "missing": list(self.missing),
                "measurements": list(self.measurements), "notes": list(self.notes)}

    def describe(self) -> str:
        if self.status == MISSING:
            return "artifacts missing: " + ", ".join(self.missing)
        bad = [m for m in self.measurements if m["ok"] is False]
        if bad:
            return "does not reproduce: " + "; ".join(m["what"] for m in bad)
        return f"{len(self.measurements)} measurement(s) reproduced"


def find_artifact(directory: Path, artifact: Artifact) -> bytes | None:
    """The artifact's bytes from ``directory`` (see the module docstring), or None."""
    hexdigest = artifact.sha256.hex()
    for path in (directory / hexdigest, directory / "sha256" / hexdigest,
                 directory / artifact.name):
        try:
            if not path.is_file() or path.stat().st_size > MAX_ARTIFACT_SIZE:
                continue
            data = path.read_bytes()
        except (OSError, ValueError):  # ValueError: a name that is no valid path
            continue
        if hashlib.sha256(data).digest() == artifact.sha256:
            return data
    return None


def _parsed(images: Sequence[bytes], parse: Any) -> list[Any]:
    out = []
    for data in images:
        try:
            out.append(parse(data))
        except FormatError:
            continue
    return out


def reproduce_release(release: Release, directory: Path, *,
                      snp_guest_features: Sequence[int] = DEFAULT_SNP_GUEST_FEATURES,
                      tdx_orders: Sequence[PageOrder] = (PageOrder.SINGLE, PageOrder.TWO),
                      ) -> Reproduction:
    """Recompute ``release``'s SNP MEASUREMENTs and TDX MRTD from artifacts in ``directory``."""
    ms = release.measurements
    if not ms.snp and ms.tdx is None:  # pragma: no cover - a Release always has one
        return Reproduction(REPRODUCED)
    by_kind: dict[str, list[Artifact]] = {}
    for a in release.artifacts:
        by_kind.setdefault(a.kind, []).append(a)
    needed = list(by_kind.get("firmware", []))
    if ms.snp:
        needed += [a for k in ("kernel", "initrd", "cmdline") for a in by_kind.get(k, [])]
    found = {a.name: find_artifact(directory, a) for a in needed}
    missing = tuple(sorted(name for name, data in found.items() if data is None))
    if not by_kind.get("firmware"):
        missing = ("(no firmware artifact listed)",)
    if missing:
        return Reproduction(MISSING, missing=missing)
    firmware = [found[a.name] or b"" for a in by_kind["firmware"]]
    results: list[dict[str, Any]] = []
    notes: list[str] = []
    if ms.snp:
        results += _snp(release, found, firmware, snp_guest_features, notes)
    if ms.tdx is not None:
        images = _parsed(firmware, TdvfImage.parse)
        computed = [(o, tdx_mrtd(img, order=o)) for img in images for o in tdx_orders]
        match = next((o for o, v in computed if v == ms.tdx.mrtd), None)
        if not images:
            notes.append("no firmware artifact is a TDVF image")
        results.append({"what": "tdx MRTD", "logged": ms.tdx.mrtd.hex(),
                        "computed": sorted({v.hex() for _, v in computed}),
                        "ok": match is not None,
                        "config": {"page_order": match.value} if match else None})
        notes.append("TDX RTMR0-2 are not re-derived (they depend on the boot event log)")
    ok = all(r["ok"] for r in results)
    return Reproduction(REPRODUCED if ok else MISMATCH, measurements=tuple(results),
                        notes=tuple(notes))


def _snp(release: Release, found: dict[str, bytes | None], firmware: list[bytes],
         guest_features: Sequence[int], notes: list[str]) -> list[dict[str, Any]]:
    def one(kind: str) -> bytes | None:
        arts = [a for a in release.artifacts if a.kind == kind]
        return found.get(arts[0].name) if arts else None

    kernel, initrd, cmdline = one("kernel"), one("initrd"), one("cmdline")
    hashes = None
    if kernel is not None:
        try:
            text = cmdline.decode("utf-8") if cmdline is not None else None
        except UnicodeDecodeError:
            text = None
            notes.append("cmdline artifact is not UTF-8")
        hashes = KernelHashes.of(kernel, initrd, text)
    images = [img for img in _parsed(firmware, OvmfImage.parse) if img.sections]
    if not images:
        notes.append("no firmware artifact is an OVMF image with SEV metadata")
    digests = [(img, ovmf_hash(img)) for img in images]
    results = []
    for m in release.measurements.snp:
        computed: dict[str, int] = {}
        for img, digest in digests:
            for gf in guest_features:
                try:
                    value = snp_launch_measurement(
                        img, vcpus=m.vcpus, vcpu_signature=VCPU_SIGNATURES.get(m.vcpu_type, 0),
                        vmm_type=VmmType(m.vmm_type), guest_features=gf, kernel_hashes=hashes,
                        ovmf_digest=digest)
                except FormatError as err:
                    notes.append(f"snp {m.vcpus} x {m.vcpu_type}: {err.message}")
                    continue
                computed.setdefault(value.hex(), gf)
        gf_match = computed.get(m.measurement.hex())
        results.append({
            "what": f"snp MEASUREMENT ({m.vcpus} x {m.vcpu_type}, {m.vmm_type})",
            "logged": m.measurement.hex(), "computed": sorted(computed),
            "ok": gf_match is not None,
            "config": {"guest_features": hex(gf_match)} if gf_match is not None else None})
    return results
