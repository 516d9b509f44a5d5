"""The ``[gpu]`` table of the policy file (docs/policy.md "[gpu]").

Fail-closed (unknown keys are TrustConfigError). Checks never stop at the first failure: every
unacceptable fact becomes a PolicyFailure and one PolicyError carries them all.

Facts judged: what the verified reports say (driver, VBIOS, chip SKU, CHIP_INFO, the
FEATURE_FLAG mode and OPAQUE_DATA_VERSION), what the verifier did
(OCSP, RIM comparison) and what the node reports from NVML (CC mode, DEVTOOLS, attached GPU
count; unsigned, so they can only make a node *fail*, never vouch for it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from attest.formats.nvidia_opaque import LATEST_OPAQUE_DATA_VERSION, FeatureFlag
from transparency_log.common.errors import PolicyFailure, TrustConfigError
from verifier.policy_base import FailureCollector, StrictTable

OCSP_GOOD = "good"
RIMS_MATCH = "match"
RIMS_MISMATCH = "mismatch"  # the gpu.rim.* failures name each index
NOT_CHECKED = "not-checked"
# No answer / RIM could be had, and the policy waives exactly that (gpu.ocsp, gpu.rim.fetch);
# whatever could be had was checked and held.
UNAVAILABLE_WAIVED = "unavailable (waived)"


@dataclass(frozen=True)
class GpuFacts:
    """What policy judges about one GPU."""

    name: str
    driver_version: str | None
    vbios_version: str | None
    chip_sku: str | None
    ocsp: str = NOT_CHECKED  # "good" once the whole chain answered good
    rims: str = NOT_CHECKED  # "match" once versions and every active index matched
    # Either may be UNAVAILABLE_WAIVED: only verify_gpu_evidence says so, and only when the
    # transcript waived gpu.ocsp / gpu.rim.fetch (the policy's waive list) for what could not
    # be had, everything at hand having been checked and held.
    cc_mode: str | None = None  # node-reported (NVML): "on", "off" or "devtools"
    chip_info: str | None = None  # opaque CHIP_INFO (Blackwell and later)
    feature_mode: str | None = None  # opaque FEATURE_FLAG: SPT, MPT, PPCIE or UNKNOWN(n)
    opaque_data_version: int = 0  # opaque OPAQUE_DATA_VERSION (0: absent)
    # The RIM comparison's findings (gpu.rim.driver, gpu.rim.vbios, gpu.rim.measurements with
    # got and want, and gpu.rim.fetch for a RIM not had, not waived, beside a mismatch).
    rim_failures: tuple[PolicyFailure, ...] = ()


@dataclass(frozen=True)
class GpuPolicy:
    """``[gpu]``: which GPUs must be present and what they must run."""

    count: int | None = None
    require_all_attached: bool = True
    require_cc_mode: bool = True
    unsafe_allow_devtools: bool = False
    driver_versions: tuple[str, ...] | None = None  # None: any version
    vbios_versions: tuple[str, ...] | None = None
    chip_skus: tuple[str, ...] | None = None
    chip_infos: tuple[str, ...] | None = None
    feature_modes: tuple[str, ...] | None = None  # names of FeatureFlag
    max_opaque_data_version: int = LATEST_OPAQUE_DATA_VERSION

    @classmethod
    def from_table(cls, table: StrictTable) -> GpuPolicy:
        count = table.get("count", int, None)
        if count is not None and count < 0:
            raise TrustConfigError("policy.schema", "count must be >= 0", field="gpu.count",
                                   got=count)

        def versions(key: str) -> tuple[str, ...] | None:
            value = table.get_list(key, str, None)
            if value is not None and not value:
                raise TrustConfigError("policy.schema", "an empty list allows nothing; omit "
                                       "the key to allow any", field=f"gpu.{key}")
            return None if value is None else tuple(value)

        modes = versions("feature_modes")
        known = {m.name for m in FeatureFlag}
        if modes is not None and (bad := [m for m in modes if m.upper() not in known]):
            raise TrustConfigError("policy.schema", "unknown feature mode",
                                   field="gpu.feature_modes", got=", ".join(bad),
                                   want=" | ".join(sorted(known)))
        max_version = table.get("max_opaque_data_version", int, LATEST_OPAQUE_DATA_VERSION)
        if not 0 <= max_version <= LATEST_OPAQUE_DATA_VERSION:
            raise TrustConfigError("policy.schema", "no known opaque data layout is newer",
                                   field="gpu.max_opaque_data_version", got=max_version,
                                   want=f"0..{LATEST_OPAQUE_DATA_VERSION}")
        policy = cls(
            count=count,
            require_all_attached=table.get("require_all_attached", bool, True),
            require_cc_mode=table.get("require_cc_mode", bool, True),
            unsafe_allow_devtools=table.get("unsafe_allow_devtools", bool, False),
            driver_versions=versions("driver_versions"),
            vbios_versions=versions("vbios_versions"),
            chip_skus=versions("chip_skus"),
            chip_infos=versions("chip_infos"),
            feature_modes=None if modes is None else tuple(m.upper() for m in modes),
            max_opaque_data_version=max_version,
        )
        table.removed("unsafe_waive_ocsp", 'waive = ["gpu.ocsp"] at the top of the policy '
                      "(or --waive gpu.ocsp)")
        table.removed("unsafe_waive_rim_checks", 'waive = ["gpu.rim.fetch"] at the top of '
                      "the policy (or --waive gpu.rim.fetch; only a RIM that cannot be had is "
                      "waived)")
        table.finish()
        return policy

    @classmethod
    def for_lone_report(cls) -> GpuPolicy:
        """The default of ``verifier gpu`` without ``--policy``: OCSP and RIMs required, no
        version pins, and no CC-mode demand (a lone report carries no NVML state)."""
        return cls(require_all_attached=False, require_cc_mode=False)

    def check(self, gpus: Sequence[GpuFacts], *, attached: int | None,
              collector: FailureCollector | None = None) -> None:
        """Add every failure to ``collector`` (or raise one PolicyError when none is given)."""
        own = collector is None
        c = collector if collector is not None else FailureCollector()
        if self.count is not None:
            c.require(len(gpus) == self.count, "gpu.policy.count", "GPU count", len(gpus),
                      self.count)
        if self.require_all_attached:
            c.require(attached is not None and len(gpus) == attached, "gpu.policy.attached",
                      "GPUs with evidence", len(gpus),
                      attached if attached is not None else "(attached count not reported)",
                      "every attached GPU must send evidence")
        for g in gpus:
            if self.require_cc_mode:
                ok = g.cc_mode == "on" or (g.cc_mode == "devtools" and self.unsafe_allow_devtools)
                c.require(ok, "gpu.policy.cc_mode", f"{g.name}.cc_mode",
                          g.cc_mode or "(not reported)", "on")
            if g.cc_mode == "devtools" and not self.unsafe_allow_devtools:
                c.fail("gpu.policy.devtools", f"{g.name}.devtools", "on", "off")
            _allowed(c, "gpu.policy.driver", f"{g.name}.DRIVER_VERSION", g.driver_version,
                     self.driver_versions)
            _allowed(c, "gpu.policy.vbios", f"{g.name}.VBIOS_VERSION", g.vbios_version,
                     self.vbios_versions)
            _allowed(c, "gpu.policy.chip_sku", f"{g.name}.CHIP_SKU", g.chip_sku, self.chip_skus)
            _allowed(c, "gpu.policy.chip_info", f"{g.name}.CHIP_INFO", g.chip_info,
                     self.chip_infos)
            _allowed(c, "gpu.policy.feature_mode", f"{g.name}.FEATURE_FLAG", g.feature_mode,
                     self.feature_modes)
            c.require(g.opaque_data_version <= self.max_opaque_data_version,
                      "gpu.policy.opaque_version", f"{g.name}.OPAQUE_DATA_VERSION",
                      g.opaque_data_version, f"<= {self.max_opaque_data_version}",
                      "fields of a newer opaque data layout are not known")
            for f in g.rim_failures:
                c.fail(f.check, f.field, f.got, f.want, f.message)
            c.require(g.ocsp in (OCSP_GOOD, UNAVAILABLE_WAIVED), "gpu.policy.ocsp",
                      f"{g.name}.ocsp", g.ocsp, OCSP_GOOD)
            c.require(g.rims in (RIMS_MATCH, UNAVAILABLE_WAIVED), "gpu.policy.rims",
                      f"{g.name}.rims", g.rims, RIMS_MATCH)
        modes = {g.feature_mode for g in gpus} & {FeatureFlag.SPT.name, FeatureFlag.MPT.name}
        c.require(len(modes) < 2, "gpu.policy.feature_mode", "FEATURE_FLAG of the node's GPUs",
                  ", ".join(sorted(modes)), "one of SPT or MPT for every GPU",
                  "NVIDIA refuses a node whose GPUs mix SPT and MPT")
        if own:
            c.raise_if_any()


def _allowed(c: FailureCollector, check: str, field_name: str, got: str | None,
             allowed: tuple[str, ...] | None) -> None:
    if allowed is None:
        return
    c.require(got is not None and got.lower() in {a.lower() for a in allowed}, check,
              field_name, got or "(absent)", " | ".join(allowed))
