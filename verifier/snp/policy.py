"""The ``[snp]`` table of the policy file (docs/policy.md) and its check.

Applied to an *authentic* report (a :class:`SnpVerification`, what
:meth:`verifier.snp.verify.SnpVerifier.verify` returns); every failure is added to the
caller's FailureCollector (raised together as one PolicyError), each naming its check, the
field by spec name, got and want. Fail-closed: unknown keys are TrustConfigError; with no
allowed measurement at all (from the policy or the caller, i.e. the log) the measurement
check fails.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from attest.formats.snp_report import decode_tcb
from transparency_log.common.errors import TrustConfigError
from verifier.policy_base import FailureCollector, StrictTable, parse_hex
from verifier.snp.verify import SnpVerification

TCB_KEYS = {"fmc": "FMC", "boot_loader": "BOOT_LOADER", "tee": "TEE", "snp": "SNP",
            "microcode": "MICROCODE"}

#: ``[snp.<key>]`` minimum table -> (report field it judges, check id). ``min_tcb`` judges
#: REPORTED_TCB and also the signing key's SPLs (see :meth:`SnpPolicy._check_tcb`).
TCB_MINIMUMS = {
    "min_tcb": ("REPORTED_TCB", "snp.policy.tcb.minimum"),
    "min_current_tcb": ("CURRENT_TCB", "snp.policy.tcb.current_minimum"),
    "min_committed_tcb": ("COMMITTED_TCB", "snp.policy.tcb.committed_minimum"),
    "min_launch_tcb": ("LAUNCH_TCB", "snp.policy.tcb.launch_minimum"),
}
CHECK_TCB_ORDER = "snp.policy.tcb.order"
CHECK_TCB_PROVISIONAL = "snp.policy.tcb.provisional"


def _uint(t: StrictTable, key: str, default: int, bits: int) -> int:
    value = t.get(key, int, default)
    if not 0 <= value < (1 << bits):
        raise TrustConfigError("policy.schema", "out of range", field=f"snp.{key}",
                               got=value, want=f"0..{(1 << bits) - 1}")
    return value


def _tcb_minimum(t: StrictTable, key: str) -> dict[str, int]:
    """``[snp.<key>]``: a minimum per TCB component, by spec component name."""
    out: dict[str, int] = {}
    table = t.table(key)
    if table is None:
        return out
    for name, spec_name in TCB_KEYS.items():
        value = table.get(name, int, None)
        if value is not None:
            if not 0 <= value <= 255:
                raise TrustConfigError("policy.schema", "out of range",
                                       field=f"snp.{key}.{name}", got=value, want="0..255")
            out[spec_name] = value
    table.finish()
    return out


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
    min_current_tcb: dict[str, int] = field(default_factory=dict)
    min_committed_tcb: dict[str, int] = field(default_factory=dict)
    min_launch_tcb: dict[str, int] = field(default_factory=dict)
    allow_provisional_firmware: bool = True
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
        policy = cls(
            allow_debug=t.get("allow_debug", bool, False),
            allow_migration_agent=t.get("allow_migration_agent", bool, False),
            allow_smt=t.get("allow_smt", bool, True),
            require_single_socket=t.get("require_single_socket", bool, False),
            min_abi_major=_uint(t, "min_abi_major", 0, 8),
            min_abi_minor=_uint(t, "min_abi_minor", 0, 8),
            vmpl=_uint(t, "vmpl", 0, 2),
            min_tcb=_tcb_minimum(t, "min_tcb"),
            min_current_tcb=_tcb_minimum(t, "min_current_tcb"),
            min_committed_tcb=_tcb_minimum(t, "min_committed_tcb"),
            min_launch_tcb=_tcb_minimum(t, "min_launch_tcb"),
            allow_provisional_firmware=t.get("allow_provisional_firmware", bool, True),
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

    def check(self, v: SnpVerification, f: FailureCollector, *,
              measurements: Iterable[bytes] = (), report_data: bytes | None = None) -> None:
        """Judge every ``[snp]`` rule on the authentic result ``v`` and add each failure to
        ``f`` (never stops at the first; ``f.raise_if_any()`` raises them as one PolicyError).
        ``measurements`` are allowed launch measurements from the log; ``report_data`` the
        expected binding (DESIGN.md)."""
        r = v.report
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

    def _check_tcb(self, v: SnpVerification, f: FailureCollector) -> None:
        """Judge every TCB_VERSION in the report (ABI spec 56860, "ATTESTATION_REPORT").

        Minimums: ``min_tcb`` on REPORTED_TCB and on the signing key's SPLs (the VCEK/VLEK is
        certified for exactly REPORTED_TCB), ``min_current_tcb`` / ``min_committed_tcb`` /
        ``min_launch_tcb`` on CURRENT_TCB / COMMITTED_TCB / LAUNCH_TCB. A component the
        product's layout does not have (FMC before Turin) is not judged.

        Relations, always checked: the firmware never runs below its committed TCB (SNP_COMMIT
        and the firmware's anti-rollback), and it can only derive a VCEK, hence report a TCB,
        at or below the one it runs: CURRENT_TCB >= COMMITTED_TCB and CURRENT_TCB >=
        REPORTED_TCB, componentwise (as go-sev-guest's validate does). LAUNCH_TCB is related
        to nothing: a migrated guest keeps the LAUNCH_TCB of the machine it started on.
        With ``allow_provisional_firmware = false``, CURRENT must equal COMMITTED (TCB and
        firmware version): the running firmware cannot be rolled back.
        """
        r, prod = v.report, v.product
        tcbs = {"REPORTED_TCB": v.reported_tcb.components(),
                "CURRENT_TCB": decode_tcb(r.current_tcb, prod).components(),
                "COMMITTED_TCB": decode_tcb(r.committed_tcb, prod).components(),
                "LAUNCH_TCB": decode_tcb(r.launch_tcb, prod).components()}
        key_spls = v.key_tcb
        for key, (report_field, check) in TCB_MINIMUMS.items():
            have = tcbs[report_field]
            for name, minimum in getattr(self, key).items():
                if name not in have:
                    continue  # FMC on Milan/Genoa: the component does not exist there
                f.require(have[name] >= minimum, check, f"{report_field}.{name}", have[name],
                          f">= {minimum}")
                if key == "min_tcb":
                    got = key_spls.get(name)
                    f.require(got is not None and got >= minimum, check,
                              f"{v.key.role}.{name}", got, f">= {minimum}")
        current = tcbs["CURRENT_TCB"]
        for lower in ("COMMITTED_TCB", "REPORTED_TCB"):
            for name, value in tcbs[lower].items():
                f.require(value <= current[name], CHECK_TCB_ORDER, f"{lower}.{name}", value,
                          f"<= CURRENT_TCB.{name} = {current[name]}",
                          "the firmware cannot run or report above its running TCB")
        if not self.allow_provisional_firmware:
            f.require(r.committed_tcb == r.current_tcb, CHECK_TCB_PROVISIONAL, "COMMITTED_TCB",
                      _show(tcbs["COMMITTED_TCB"]), f"== CURRENT_TCB {_show(current)}",
                      "provisional firmware refused (allow_provisional_firmware = false)")
            committed = (r.committed_major, r.committed_minor, r.committed_build)
            running = (r.current_major, r.current_minor, r.current_build)
            f.require(committed == running, CHECK_TCB_PROVISIONAL,
                      "COMMITTED_MAJOR.MINOR.BUILD", "{}.{}.{}".format(*committed),
                      "== CURRENT {}.{}.{}".format(*running),
                      "provisional firmware refused (allow_provisional_firmware = false)")


def _show(components: dict[str, int]) -> str:
    return " ".join(f"{name}={value}" for name, value in components.items())


def _one_of(f: FailureCollector, check: str, field_name: str, got: bytes,
            allowed: tuple[bytes, ...]) -> None:
    if allowed:
        f.require(got in allowed, check, field_name, got,
                  " | ".join(a.hex() for a in allowed))

