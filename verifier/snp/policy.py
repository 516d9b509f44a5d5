"""The ``[snp]`` table of the policy file (docs/policy.md) and its check.

Applied to an *authentic* report (a :class:`SnpVerification`); every failure is collected
and raised together as one PolicyError, each naming its check, the field by spec name, got and
want. Fail-closed: unknown keys are TrustConfigError; with no allowed measurement at all (from
the policy or the caller, i.e. the log) the measurement check fails.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from transparency_log.errors import TrustConfigError
from verifier.policy_base import FailureCollector, StrictTable, parse_hex
from verifier.snp.verify import SnpVerification

TCB_KEYS = {"fmc": "FMC", "boot_loader": "BOOT_LOADER", "tee": "TEE", "snp": "SNP",
            "microcode": "MICROCODE"}


def _uint(t: StrictTable, key: str, default: int, bits: int) -> int:
    value = t.get(key, int, default)
    if not 0 <= value < (1 << bits):
        raise TrustConfigError("policy.schema", "out of range", field=f"snp.{key}",
                               got=value, want=f"0..{(1 << bits) - 1}")
    return value


def _hex_list(t: StrictTable, key: str, size: int) -> tuple[bytes, ...]:
    items = t.get_list(key, str, [])
    return tuple(parse_hex(v, size, field=f"snp.{key}[{i}]") for i, v in enumerate(items))


@dataclass(frozen=True)
class SnpPolicy:
    """What an SNP report must show to be accepted. Defaults are the safe ones."""

    allow_debug: bool = False
    allow_migration_agent: bool = False
    allow_smt: bool = True
    require_single_socket: bool = False
    min_abi_major: int = 0
    min_abi_minor: int = 0
    vmpl: int = 0
    min_tcb: dict[str, int] = field(default_factory=dict)  # spec component name -> minimum
    measurements: tuple[bytes, ...] = ()
    host_data: bytes | None = None
    report_data: bytes | None = None
    id_key_digests: tuple[bytes, ...] = ()
    author_key_digests: tuple[bytes, ...] = ()
    family_id: bytes | None = None
    image_id: bytes | None = None
    min_guest_svn: int = 0
    chip_ids: tuple[bytes, ...] = ()

    @classmethod
    def from_table(cls, t: StrictTable) -> SnpPolicy:
        """Read the ``[snp]`` table; unknown keys are TrustConfigError."""
        min_tcb: dict[str, int] = {}
        tcb_table = t.table("min_tcb")
        if tcb_table is not None:
            for key, name in TCB_KEYS.items():
                value = tcb_table.get(key, int, None)
                if value is not None:
                    if not 0 <= value <= 255:
                        raise TrustConfigError("policy.schema", "out of range",
                                               field=f"snp.min_tcb.{key}", got=value,
                                               want="0..255")
                    min_tcb[name] = value
            tcb_table.finish()
        policy = cls(
            allow_debug=t.get("allow_debug", bool, False),
            allow_migration_agent=t.get("allow_migration_agent", bool, False),
            allow_smt=t.get("allow_smt", bool, True),
            require_single_socket=t.get("require_single_socket", bool, False),
            min_abi_major=_uint(t, "min_abi_major", 0, 8),
            min_abi_minor=_uint(t, "min_abi_minor", 0, 8),
            vmpl=_uint(t, "vmpl", 0, 2),
            min_tcb=min_tcb,
            measurements=_hex_list(t, "measurements", 48),
            host_data=t.get_hex("host_data", 32, None),
            report_data=t.get_hex("report_data", 64, None),
            id_key_digests=_hex_list(t, "id_key_digests", 48),
            author_key_digests=_hex_list(t, "author_key_digests", 48),
            family_id=t.get_hex("family_id", 16, None),
            image_id=t.get_hex("image_id", 16, None),
            min_guest_svn=_uint(t, "min_guest_svn", 0, 32),
            chip_ids=_hex_list(t, "chip_ids", 64),
        )
        t.finish()
        return policy

    def check(self, v: SnpVerification, *, measurements: Iterable[bytes] = (),
              report_data: bytes | None = None) -> None:
        """Raise one PolicyError listing every failure. ``measurements`` are allowed launch
        measurements from the log; ``report_data`` the expected binding (DESIGN.md)."""
        r, f = v.report, FailureCollector()
        gp, pi = r.guest_policy, r.platform
        f.require(self.allow_debug or not gp.DEBUG, "snp.policy.debug", "POLICY.DEBUG",
                  True, False, "debug guests are refused (allow_debug = false)")
        f.require(self.allow_migration_agent or not gp.MIGRATE_MA, "snp.policy.migrate_ma",
                  "POLICY.MIGRATE_MA", True, False, "migration agent not allowed")
        if not self.allow_smt:
            f.require(not gp.SMT, "snp.policy.smt", "POLICY.SMT", True, False)
            f.require(not pi.SMT_EN, "snp.policy.smt", "PLATFORM_INFO.SMT_EN", True, False)
        if self.require_single_socket:
            f.require(gp.SINGLE_SOCKET, "snp.policy.single_socket", "POLICY.SINGLE_SOCKET",
                      False, True)
        abi = (r.current_major, r.current_minor)
        want_abi = (self.min_abi_major, self.min_abi_minor)
        f.require(abi >= want_abi, "snp.policy.abi", "CURRENT_MAJOR.CURRENT_MINOR",
                  "{}.{}".format(*abi), ">= {}.{}".format(*want_abi))
        f.require(r.vmpl == self.vmpl, "snp.policy.vmpl", "VMPL", r.vmpl, self.vmpl)
        self._check_tcb(v, f)
        allowed = set(self.measurements) | {bytes(m) for m in measurements}
        if not allowed:
            f.fail("snp.policy.measurement", "MEASUREMENT", r.measurement,
                   "an allowed list (policy measurements or the log)",
                   "no allowed measurement given: nothing can match")
        else:
            f.require(r.measurement in allowed, "snp.policy.measurement", "MEASUREMENT",
                      r.measurement, " | ".join(sorted(m.hex() for m in allowed)))
        for want in (self.report_data, report_data):
            if want is not None:
                f.require(r.report_data == want, "snp.policy.report_data", "REPORT_DATA",
                          r.report_data, want)
        if self.host_data is not None:
            f.require(r.host_data == self.host_data, "snp.policy.host_data", "HOST_DATA",
                      r.host_data, self.host_data)
        _one_of(f, "snp.policy.id_key_digest", "ID_KEY_DIGEST", r.id_key_digest,
                self.id_key_digests)
        _one_of(f, "snp.policy.author_key_digest", "AUTHOR_KEY_DIGEST",
                r.author_key_digest, self.author_key_digests)
        if self.family_id is not None:
            f.require(r.family_id == self.family_id, "snp.policy.family_id", "FAMILY_ID",
                      r.family_id, self.family_id)
        if self.image_id is not None:
            f.require(r.image_id == self.image_id, "snp.policy.image_id", "IMAGE_ID",
                      r.image_id, self.image_id)
        f.require(r.guest_svn >= self.min_guest_svn, "snp.policy.guest_svn", "GUEST_SVN",
                  r.guest_svn, f">= {self.min_guest_svn}")
        _one_of(f, "snp.policy.chip_id", "CHIP_ID", r.chip_id, self.chip_ids)
        f.raise_if_any()

    def _check_tcb(self, v: SnpVerification, f: FailureCollector) -> None:
        """Minimum per component, on REPORTED_TCB and on the signing key's TCB (its SPLs)."""
        reported = v.reported_tcb.components()
        key_spls = v.key_tcb
        for name, minimum in self.min_tcb.items():
            if name not in reported:
                continue  # FMC on Milan/Genoa: the component does not exist there
            f.require(reported[name] >= minimum, "snp.policy.tcb.minimum",
                      f"REPORTED_TCB.{name}", reported[name], f">= {minimum}")
            got = key_spls.get(name)
            f.require(got is not None and got >= minimum, "snp.policy.tcb.minimum",
                      f"{v.key.role}.{name}", got, f">= {minimum}")


def _one_of(f: FailureCollector, check: str, field_name: str, got: bytes,
            allowed: tuple[bytes, ...]) -> None:
    if allowed:
        f.require(got in allowed, check, field_name, got,
                  " | ".join(a.hex() for a in allowed))

