"""The expected measurements a release statement lists (docs/formats.md, "Release entries"):
the SNP launch MEASUREMENT per vCPU configuration and VMM, TDX MRTD and RTMR0-2, and the
allowed GPU driver and VBIOS versions; the ``measurements`` object of the
``https://attestlog.dev/release/v1`` predicate (:mod:`attest.release.statement`).

Parsing is as strict as the statement's: unknown or missing fields, wrong types, hex of the
wrong size or case, duplicates and over-cap lists are FormatErrors (check
``release.statement``) naming the field by its dotted path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from attest.release.json_fields import Fields, as_object
from transparency_log.common.errors import FormatError

__all__ = [
    "CHECK",
    "MEASUREMENT_SIZE",
    "SHA256_SIZE",
    "VMM_TYPES",
    "GpuAllowList",
    "Measurements",
    "SnpMeasurement",
    "TdxMeasurement",
    "statement_error",
]

CHECK = "release.statement"
VMM_TYPES = ("qemu", "ec2", "gce")
SHA256_SIZE = 32
MEASUREMENT_SIZE = 48  # SNP MEASUREMENT, TDX MRTD/RTMRn: SHA-384
MAX_SNP = 64
MAX_VERSIONS = 64

_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z._+-]*")


def statement_error(message: str, field: str, got: Any = None, want: Any = None) -> FormatError:
    """A FormatError of a release statement (check ``release.statement``) at ``field``."""
    return FormatError(CHECK, message, field=field, got=got, want=want)


@dataclass(frozen=True)
class SnpMeasurement:
    """The SNP launch MEASUREMENT (48 bytes) for one vCPU count/type and VMM type."""

    vcpus: int
    vcpu_type: str
    vmm_type: str
    measurement: bytes

    def to_json(self) -> dict[str, Any]:
        return {"vcpus": self.vcpus, "vcpu_type": self.vcpu_type, "vmm_type": self.vmm_type,
                "measurement": self.measurement.hex()}

    @classmethod
    def from_json(cls, value: Any, path: str) -> SnpMeasurement:
        f = as_object(value, path, CHECK)
        out = cls(f.integer("vcpus", lo=1, hi=4096),
                  f.string("vcpu_type", max_len=64, pattern=_VERSION),
                  f.string("vmm_type", choices=VMM_TYPES),
                  f.hex("measurement", size=MEASUREMENT_SIZE))
        f.finish()
        return out


@dataclass(frozen=True)
class TdxMeasurement:
    """TDX MRTD and RTMR0-2 (48 bytes each); RTMR3 is the workload's and is not pinned."""

    mrtd: bytes
    rtmr0: bytes
    rtmr1: bytes
    rtmr2: bytes

    def to_json(self) -> dict[str, Any]:
        return {"mrtd": self.mrtd.hex(), "rtmr0": self.rtmr0.hex(), "rtmr1": self.rtmr1.hex(),
                "rtmr2": self.rtmr2.hex()}

    @classmethod
    def from_json(cls, value: Any, path: str) -> TdxMeasurement:
        f = as_object(value, path, CHECK)
        out = cls(*(f.hex(k, size=MEASUREMENT_SIZE) for k in ("mrtd", "rtmr0", "rtmr1", "rtmr2")))
        f.finish()
        return out


def _versions(f: Fields, key: str) -> tuple[str, ...]:
    items = f.list(key, max_items=MAX_VERSIONS, min_items=1)
    path = f.sub(key)
    for i, item in enumerate(items):
        if not isinstance(item, str) or not 0 < len(item) <= 64 or not _VERSION.fullmatch(item):
            raise statement_error("malformed version", f"{path}[{i}]", got=repr(item)[:80],
                                  want=_VERSION.pattern)
    if len(set(items)) != len(items):
        raise statement_error("duplicate version", path)
    return tuple(items)


@dataclass(frozen=True)
class GpuAllowList:
    """The NVIDIA GPU driver and VBIOS versions this release accepts."""

    drivers: tuple[str, ...]
    vbios: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"drivers": list(self.drivers), "vbios": list(self.vbios)}

    @classmethod
    def from_json(cls, value: Any, path: str) -> GpuAllowList:
        f = as_object(value, path, CHECK)
        out = cls(_versions(f, "drivers"), _versions(f, "vbios"))
        f.finish()
        return out


@dataclass(frozen=True)
class Measurements:
    """Expected measurements; at least one of ``snp``/``tdx`` (a node needs a CPU TEE)."""

    snp: tuple[SnpMeasurement, ...] = ()
    tdx: TdxMeasurement | None = None
    gpu: GpuAllowList | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.snp:
            out["snp"] = [m.to_json() for m in self.snp]
        if self.tdx is not None:
            out["tdx"] = self.tdx.to_json()
        if self.gpu is not None:
            out["gpu"] = self.gpu.to_json()
        return out

    def validate(self, path: str) -> None:
        if not self.snp and self.tdx is None:
            raise statement_error("no CPU TEE measurement (need snp or tdx)", path)
        if len(self.snp) > MAX_SNP:
            raise statement_error("too many snp entries", f"{path}.snp", got=len(self.snp),
                                  want=f"<= {MAX_SNP}")
        keys = [(m.vcpus, m.vcpu_type, m.vmm_type) for m in self.snp]
        if len(set(keys)) != len(keys):
            raise statement_error("duplicate (vcpus, vcpu_type, vmm_type)", f"{path}.snp")

    @classmethod
    def from_json(cls, value: Any, path: str) -> Measurements:
        f = as_object(value, path, CHECK)
        snp: tuple[SnpMeasurement, ...] = ()
        if f.has("snp"):
            items = f.list("snp", max_items=MAX_SNP, min_items=1)
            snp = tuple(SnpMeasurement.from_json(v, f"{f.sub('snp')}[{i}]")
                        for i, v in enumerate(items))
        tdx = TdxMeasurement.from_json(f.raw("tdx"), f.sub("tdx")) if f.has("tdx") else None
        gpu = GpuAllowList.from_json(f.raw("gpu"), f.sub("gpu")) if f.has("gpu") else None
        f.finish()
        out = cls(snp, tdx, gpu)
        out.validate(path)
        return out

    def listed(self) -> frozenset[bytes]:
        """Every 48-byte measurement this release lists: each ``snp[].measurement`` and the
        TDX ``mrtd``/``rtmr0``-``2``. A measurement revocation of any of them revokes the
        release (docs/formats.md, "Revocation predicate")."""
        out = {m.measurement for m in self.snp}
        if self.tdx is not None:
            out.update((self.tdx.mrtd, self.tdx.rtmr0, self.tdx.rtmr1, self.tdx.rtmr2))
        return frozenset(out)

    def snp_match(self, measurement: bytes) -> SnpMeasurement | None:
        """The SNP configuration whose MEASUREMENT equals ``measurement``, if any."""
        return next((m for m in self.snp if m.measurement == measurement), None)
