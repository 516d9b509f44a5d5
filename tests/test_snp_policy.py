"""The [snp] policy table: strict parsing, one failing check at a time, all collected."""

from __future__ import annotations

import tomllib

import pytest

from attest.formats.snp_report import MILAN, TURIN, encode_tcb
from attest.simulate.snp import der
from tests.support.snp_fixtures import AT, sim, sim_roots
from transparency_log.common.errors import PolicyError, TrustConfigError
from verifier.policy_base import FailureCollector, StrictTable
from verifier.snp.policy import SnpPolicy
from verifier.snp.verify import SnpCollateral, SnpVerification, SnpVerifier

M = b"\x5a" * 48


def verified(product: str = MILAN, **fields) -> SnpVerification:
    """A simulated report, signed now with the simulator's VCEK at its REPORTED_TCB."""
    s = sim(product)
    fields.setdefault("measurement", M)
    raw = s.report(version=3, **fields)
    vcek = s.vcek(fields.get("reported_tcb"))
    return SnpVerifier(sim_roots(product)).verify(
        raw, at=AT, collateral=SnpCollateral(vcek=der(vcek), crl=s.crl()))


def policy(text: str) -> SnpPolicy:
    return SnpPolicy.from_table(StrictTable(tomllib.loads(text), "snp"))


def failures(p: SnpPolicy, v: SnpVerification, **kw) -> list[tuple[str, str]]:
    collector = FailureCollector()
    p.check(v, collector, **kw)
    try:
        collector.raise_if_any()
    except PolicyError as e:
        return [(f.check, f.field) for f in e.failures]
    return []


def test_defaults_accept_a_plain_guest_with_an_allowed_measurement() -> None:
    assert failures(SnpPolicy(), verified(), measurements=[M]) == []
    assert failures(policy(f'measurements = ["{M.hex()}"]'), verified()) == []


def test_no_allowed_measurement_is_a_failure() -> None:
    assert failures(SnpPolicy(), verified()) == [("snp.policy.measurement", "MEASUREMENT")]


POL = 0x30000


@pytest.mark.parametrize(("toml", "fields", "want"), [
    ("", {"policy": POL | 1 << 19}, ("snp.policy.debug", "POLICY.DEBUG")),
    ("", {"policy": POL | 1 << 18}, ("snp.policy.migrate_ma", "POLICY.MIGRATE_MA")),
    ("allow_smt = false", {"platform_info": 0}, ("snp.policy.smt", "POLICY.SMT")),
    ("require_single_socket = true", {}, ("snp.policy.single_socket", "POLICY.SINGLE_SOCKET")),
    ("min_abi_major = 1\nmin_abi_minor = 55", {}, ("snp.policy.abi",
                                                   "CURRENT_MAJOR.CURRENT_MINOR")),
    ("", {"vmpl": 1}, ("snp.policy.vmpl", "VMPL")),
    (f'host_data = "{"11" * 32}"', {}, ("snp.policy.host_data", "HOST_DATA")),
    (f'report_data = "{"22" * 64}"', {}, ("snp.policy.report_data", "REPORT_DATA")),
    (f'id_key_digests = ["{"33" * 48}"]', {}, ("snp.policy.id_key_digest", "ID_KEY_DIGEST")),
    (f'author_key_digests = ["{"44" * 48}"]', {},
     ("snp.policy.author_key_digest", "AUTHOR_KEY_DIGEST")),
    (f'family_id = "{"55" * 16}"', {}, ("snp.policy.family_id", "FAMILY_ID")),
    (f'image_id = "{"66" * 16}"', {}, ("snp.policy.image_id", "IMAGE_ID")),
    ("min_guest_svn = 2", {}, ("snp.policy.guest_svn", "GUEST_SVN")),
    (f'chip_ids = ["{"77" * 64}"]', {}, ("snp.policy.chip_id", "CHIP_ID")),
    (f'measurements = ["{"88" * 48}"]', {}, ("snp.policy.measurement", "MEASUREMENT")),
])
def test_each_check_fails_alone(toml: str, fields: dict, want: tuple[str, str]) -> None:
    got = failures(policy(toml), verified(**fields), measurements=[M])
    if toml.startswith("measurements"):
        got = failures(policy(toml), verified(**fields))
    assert got == [want]


def test_smt_also_checks_the_platform() -> None:
    got = failures(policy("allow_smt = false"), verified(policy=POL & ~(1 << 16) | 1 << 17),
                   measurements=[M])
    assert got == [("snp.policy.smt", "PLATFORM_INFO.SMT_EN")]


def test_min_tcb_applies_to_reported_tcb_and_the_vcek() -> None:
    got = failures(policy("[min_tcb]\nsnp = 9\nmicrocode = 115\nfmc = 5"), verified(),
                   measurements=[M])
    assert got == [("snp.policy.tcb.minimum", "REPORTED_TCB.SNP"),
                   ("snp.policy.tcb.minimum", "VCEK.SNP")]
    turin = failures(policy("[min_tcb]\nfmc = 2"), verified(TURIN), measurements=[M])
    assert turin == [("snp.policy.tcb.minimum", "REPORTED_TCB.FMC"),
                     ("snp.policy.tcb.minimum", "VCEK.FMC")]


def test_caller_report_data_is_checked() -> None:
    v = verified(report_data=b"\x01" * 64)
    assert failures(SnpPolicy(), v, measurements=[M], report_data=b"\x01" * 64) == []
    assert failures(SnpPolicy(), v, measurements=[M], report_data=b"\x02" * 64) == [
        ("snp.policy.report_data", "REPORT_DATA")]


def test_every_failure_is_collected() -> None:
    v = verified(policy=POL | 1 << 19 | 1 << 18, vmpl=2, guest_svn=0)
    got = failures(policy("min_guest_svn = 1\n[min_tcb]\nboot_loader = 4"), v)
    assert [c for c, _ in got] == ["snp.policy.debug", "snp.policy.migrate_ma",
                                   "snp.policy.vmpl", "snp.policy.tcb.minimum",
                                   "snp.policy.tcb.minimum", "snp.policy.measurement",
                                   "snp.policy.guest_svn"]


def tcb(product: str = MILAN, **parts: int) -> int:
    """The simulator's default TCB (BL 3, TEE 0, SNP 8, microcode 115; FMC 1 on Turin)
    with ``parts`` changed."""
    d = {"boot_loader": 3, "tee": 0, "snp": 8, "microcode": 115,
         "fmc": 1 if product == TURIN else 0} | parts
    return encode_tcb(product, **d)


# Every TCB field has its own minimum; CURRENT_TCB runs provisional firmware (microcode 120)
# above the committed one (115), as real machines do (the trustee vector).
EVERY_MINIMUM = """
[min_tcb]
microcode = 115
[min_current_tcb]
microcode = 120
[min_committed_tcb]
microcode = 115
[min_launch_tcb]
microcode = 115
"""
PROVISIONAL = {"current_tcb": tcb(microcode=120)}


def test_a_report_meeting_every_minimum_passes() -> None:
    assert failures(policy(EVERY_MINIMUM), verified(**PROVISIONAL), measurements=[M]) == []


@pytest.mark.parametrize(("fields", "want"), [
    ({"reported_tcb": tcb(microcode=114)},
     [("snp.policy.tcb.minimum", "REPORTED_TCB.MICROCODE"),
      ("snp.policy.tcb.minimum", "VCEK.MICROCODE")]),
    ({"current_tcb": tcb(microcode=118)},
     [("snp.policy.tcb.current_minimum", "CURRENT_TCB.MICROCODE")]),
    ({"committed_tcb": tcb(microcode=114)},
     [("snp.policy.tcb.committed_minimum", "COMMITTED_TCB.MICROCODE")]),
    ({"launch_tcb": tcb(microcode=114)},
     [("snp.policy.tcb.launch_minimum", "LAUNCH_TCB.MICROCODE")]),
])
def test_each_tcb_field_below_its_minimum_is_refused_alone(fields: dict, want: list) -> None:
    v = verified(**(PROVISIONAL | fields))
    assert failures(policy(EVERY_MINIMUM), v, measurements=[M]) == want


@pytest.mark.parametrize(("key", "field", "check"), [
    ("min_current_tcb", "current_tcb", "snp.policy.tcb.current_minimum"),
    ("min_committed_tcb", "committed_tcb", "snp.policy.tcb.committed_minimum"),
    ("min_launch_tcb", "launch_tcb", "snp.policy.tcb.launch_minimum"),
])
def test_turin_fmc_minimum_applies_to_every_field(key: str, field: str, check: str) -> None:
    # Turin's TCB layout has FMC in byte 0; LAUNCH/COMMITTED/CURRENT are decoded per product.
    p = policy(f"[{key}]\nfmc = 2")
    ok = {f: tcb(TURIN, fmc=2) for f in ("current_tcb", "committed_tcb", "launch_tcb")}
    assert failures(p, verified(TURIN, **ok), measurements=[M]) == []
    low = ok | {field: tcb(TURIN, fmc=1)}
    if field == "current_tcb":  # keep CURRENT >= COMMITTED so that only the minimum fails
        low["committed_tcb"] = tcb(TURIN, fmc=1)
    assert failures(p, verified(TURIN, **low), measurements=[M]) == [
        (check, f"{field.upper()}.FMC")]


@pytest.mark.parametrize(("fields", "want"), [
    ({"committed_tcb": tcb(snp=9)}, ("snp.policy.tcb.order", "COMMITTED_TCB.SNP")),
    ({"reported_tcb": tcb(boot_loader=4)}, ("snp.policy.tcb.order", "REPORTED_TCB.BOOT_LOADER")),
    ({"current_tcb": tcb(tee=0, microcode=114)},
     ("snp.policy.tcb.order", "COMMITTED_TCB.MICROCODE")),
])
def test_tcb_order_the_abi_guarantees_is_checked_by_default(fields: dict, want: tuple) -> None:
    got = failures(SnpPolicy(), verified(**fields), measurements=[M])
    if "current_tcb" in fields:  # CURRENT below both COMMITTED and REPORTED
        assert got == [want, ("snp.policy.tcb.order", "REPORTED_TCB.MICROCODE")]
    else:
        assert got == [want]


def test_launch_tcb_is_not_ordered() -> None:
    # A migrated guest keeps the LAUNCH_TCB of the machine it started on: higher or lower.
    for launch in (tcb(snp=9, microcode=200), tcb(snp=1)):
        assert failures(SnpPolicy(), verified(launch_tcb=launch), measurements=[M]) == []


def test_provisional_firmware_refused_only_when_the_policy_says_so() -> None:
    v = verified(**PROVISIONAL)
    assert failures(SnpPolicy(), v, measurements=[M]) == []
    strict = policy("allow_provisional_firmware = false")
    assert failures(strict, v, measurements=[M]) == [("snp.policy.tcb.provisional",
                                                      "COMMITTED_TCB")]
    v2 = verified(committed_build=3)
    assert failures(strict, v2, measurements=[M]) == [("snp.policy.tcb.provisional",
                                                       "COMMITTED_MAJOR.MINOR.BUILD")]
    assert failures(strict, verified(), measurements=[M]) == []


@pytest.mark.parametrize("toml", [
    "allow_debugg = true", "[min_current_tcb]\nsnp = 256", "[min_launch_tcb]\ntcb = 1",
    "[min_committed_tcb]\nmicrocode = true", "allow_provisional_firmware = 1",
    "allow_debug = 1", "vmpl = 4", 'host_data = "11"',
    'measurements = ["zz"]', "[min_tcb]\nsnpp = 1", "[min_tcb]\nsnp = 256",
    "min_guest_svn = -1",
])
def test_bad_policy_tables_are_trust_config_errors(toml: str) -> None:
    with pytest.raises(TrustConfigError):
        policy(toml)


def test_tcb_encoding_used_above() -> None:
    assert sim(MILAN).default_tcb() == encode_tcb(MILAN, boot_loader=3, tee=0, snp=8,
                                                  microcode=115)
