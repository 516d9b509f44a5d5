"""The [snp] policy table: strict parsing, one failing check at a time, all collected."""

from __future__ import annotations

import tomllib

import pytest
from snp_fixtures import AT, sim, sim_roots

from attest.formats.snp_report import MILAN, TURIN, encode_tcb
from attest.simulate.snp import der
from transparency_log.errors import PolicyError, TrustConfigError
from verifier.policy_base import StrictTable
from verifier.snp.policy import SnpPolicy
from verifier.snp.verify import SnpCollateral, SnpVerification, SnpVerifier

M = b"\x5a" * 48


def verified(product: str = MILAN, **fields) -> SnpVerification:
    s = sim(product)
    fields.setdefault("measurement", M)
    raw = s.report(version=3, **fields)
    return SnpVerifier(sim_roots(product)).verify(
        raw, at=AT, collateral=SnpCollateral(vcek=der(s.vcek()), crl=s.crl()))


def policy(text: str) -> SnpPolicy:
    return SnpPolicy.from_table(StrictTable(tomllib.loads(text), "snp"))


def failures(p: SnpPolicy, v: SnpVerification, **kw) -> list[tuple[str, str]]:
    try:
        p.check(v, **kw)
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


@pytest.mark.parametrize("toml", [
    "allow_debugg = true", "allow_debug = 1", "vmpl = 4", 'host_data = "11"',
    'measurements = ["zz"]', "[min_tcb]\nsnpp = 1", "[min_tcb]\nsnp = 256",
    "min_guest_svn = -1",
])
def test_bad_policy_tables_are_trust_config_errors(toml: str) -> None:
    with pytest.raises(TrustConfigError):
        policy(toml)


def test_tcb_encoding_used_above() -> None:
    assert sim(MILAN).default_tcb() == encode_tcb(MILAN, boot_loader=3, tee=0, snp=8,
                                                  microcode=115)
