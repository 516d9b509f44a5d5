"""The policy file (verifier/policy.py, docs/policy.md): fail-closed parsing, the typed vendor
tables, the waivers (the command line: test_verifier_policy_cli.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.support.log_fixtures import (
    LOG_VKEY,
    ORIGIN,
    OTHER_RELEASE_KEY,
    RELEASE_KEY,
    WITNESS_VKEYS,
    policy_toml,
)
from tests.support.vectors import vector_path
from transparency_log.common.errors import PolicyError, TrustConfigError
from verifier.gpu.policy import GpuPolicy
from verifier.policy import (
    LOG_WAIVABLE,
    EvidencePolicy,
    load_policy,
    parse_policy,
)
from verifier.policy_base import FailureCollector
from verifier.snp.policy import SnpPolicy
from verifier.tdx.policy import TdxPolicy

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "policy.example.toml"


def parse(text: str, **kw: object):
    return parse_policy(text.encode(), **kw)  # type: ignore[arg-type]


def refused(text: str, **kw: object) -> TrustConfigError:
    with pytest.raises(TrustConfigError) as err:
        parse(text, **kw)
    return err.value


# --- the documented example and the fixture policy -------------------------------------------


def test_example_file_loads() -> None:
    policy = load_policy(EXAMPLE)
    assert policy.digest == hashlib.sha256(EXAMPLE.read_bytes()).digest()
    assert policy.log.origin == ORIGIN
    assert policy.log.vkey == LOG_VKEY  # the example's keys are log_fixtures' seeded keys
    assert policy.release.keys == (RELEASE_KEY.public,)
    assert policy.log.witness_policy.quorum == "two-of-three"
    assert [w.vkey for w in policy.log.witness_policy.witnesses] == WITNESS_VKEYS
    assert policy.log.max_checkpoint_age == 86400
    assert policy.log.revocations == "mirror"
    assert policy.release.threshold == 1 and len(policy.release.keys) == 1
    assert policy.release.sigstore is None
    assert policy.evidence == EvidencePolicy(("sev-snp", "tdx"), True, True)
    assert policy.waive == frozenset({"log.consistency"})
    assert policy.unsafe_allow_simulated_hardware is False
    assert (policy.snp, policy.tdx, policy.gpu) == (SnpPolicy(), TdxPolicy(), GpuPolicy())
    assert policy.tables == frozenset()  # no vendor table: the vendors' defaults


def test_fixture_policy_defaults() -> None:
    policy = parse(policy_toml())
    assert policy.log.max_cosignature_skew == 60
    assert policy.log.witness_policy.groups[0].threshold == 2
    assert len(policy.log.witness_policy.witnesses) == 3
    assert policy.waive == frozenset()
    assert policy.version == 1
    assert policy.unsafe_allow_simulated_hardware is False
    unsafe = parse(policy_toml(top={"unsafe_allow_simulated_hardware": True}))
    assert unsafe.unsafe_allow_simulated_hardware is True


def test_digest_is_of_the_exact_bytes() -> None:
    a, b = policy_toml(), policy_toml() + "# comment\n"
    assert parse(a).digest != parse(b).digest
    assert parse(a).digest == hashlib.sha256(a.encode()).digest()


# --- fail closed --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (policy_toml(top={"colour": "blue"}), "colour"),
        (policy_toml(log={"max_age": 5}), "log.max_age"),
        (policy_toml(release={"treshold": 1}), "release.treshold"),
        (policy_toml(evidence={"gpus": 8}), "evidence.gpus"),
        (policy_toml(extra="[release.sigstor]\nrepository = 'a/b'\n"), "release.sigstor"),
    ],
    ids=["top", "log", "release", "evidence", "nested-table"],
)
def test_unknown_key_is_refused_by_name(text: str, field: str) -> None:
    err = refused(text)
    assert err.check == "policy.schema"
    assert err.field == field
    assert "unknown" in err.message


def test_unknown_section_is_refused() -> None:
    err = refused(policy_toml(extra="[sgx]\nx = 1\n"))
    assert (err.check, err.field) == ("policy.schema", "sgx")
    assert "unknown section [sgx]" in err.message


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (policy_toml(top={"version": "1"}), "version"),
        (policy_toml(log={"quorum": "2"}), "log.quorum"),
        (policy_toml(log={"max_checkpoint_age": True}), "log.max_checkpoint_age"),
        (policy_toml(evidence={"gpu_required": 1}), "evidence.gpu_required"),
        (policy_toml(top={"waive": "log.consistency"}), "waive"),
        (policy_toml(release={"keys": [1]}), "release.keys[0]"),
        (policy_toml(top={"unsafe_allow_simulated_hardware": "yes"}),
         "unsafe_allow_simulated_hardware"),
    ],
)
def test_wrong_type_is_refused_by_name(text: str, field: str) -> None:
    err = refused(text)
    assert err.field == field


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (policy_toml(log={"origin": None}), "log.origin"),
        (policy_toml(log={"vkey": None}), "log.vkey"),
        (policy_toml(log={"max_checkpoint_age": None}), "log.max_checkpoint_age"),
        (policy_toml(release={"keys": None}), "release.keys"),
    ],
)
def test_required_key_missing(text: str, field: str) -> None:
    err = refused(text)
    assert (err.check, err.field) == ("policy.schema", field)


def test_required_tables() -> None:
    assert refused("version = 1\n[release]\nkeys = []\n").field == "log"
    text = policy_toml().split("[release]")[0]
    assert refused(text).field == "release"


def test_version_must_be_1() -> None:
    err = refused(policy_toml(top={"version": 2}))
    assert (err.check, err.got, err.want) == ("policy.version", 2, 1)
    assert refused("[log]\n").field == "version"


def test_syntax_and_encoding() -> None:
    assert refused("version = \n").check == "policy.syntax"
    with pytest.raises(TrustConfigError) as err:
        parse_policy(b"version = 1 # \xff\n")
    assert err.value.check == "policy.syntax"
    with pytest.raises(TrustConfigError):
        parse_policy(b" " * (1 << 20 + 1))


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(TrustConfigError) as err:
        load_policy(tmp_path / "missing.toml")
    assert err.value.check == "policy.syntax"


# --- [log] -------------------------------------------------------------------------------------


def test_inline_witness_policy() -> None:
    inline = "\n".join([f"witness a {WITNESS_VKEYS[0]}", f"witness b {WITNESS_VKEYS[1]}",
                        "group g all a b", "quorum g"])
    policy = parse(policy_toml(log={"witnesses": None, "quorum": None,
                                    "witness_policy": inline}))
    assert policy.log.witness_policy.groups[0].threshold == 2


def test_quorum_none_must_be_explicit() -> None:
    policy = parse(policy_toml(log={"witnesses": None, "quorum": None,
                                    "witness_policy": "quorum none"}))
    assert policy.log.witness_policy.quorum == "none"
    err = refused(policy_toml(log={"witnesses": None, "quorum": None}))
    assert err.field == "log.witness_policy"
    assert refused(policy_toml(log={"witnesses": [], "quorum": 1})).field == "log.witnesses"


def test_both_witness_forms_refused() -> None:
    err = refused(policy_toml(log={"witness_policy": "quorum none"}))
    assert err.check == "policy.log"


@pytest.mark.parametrize("k", [0, 4, -1])
def test_quorum_out_of_range(k: int) -> None:
    err = refused(policy_toml(log={"quorum": k}))
    assert err.field == "log.quorum"


def test_inline_policy_naming_another_log_is_refused() -> None:
    from transparency_log.core.note import generate_keys

    _, other = generate_keys("other.example/log", seed=bytes([9]) * 32)
    err = refused(policy_toml(log={"witnesses": None, "quorum": None,
                                   "witness_policy": f"log {other}\nquorum none\n"}))
    assert err.check == "policy.log" and "log.vkey" in err.message


def test_bad_inline_policy_names_its_line() -> None:
    err = refused(policy_toml(log={"witnesses": None, "quorum": None,
                                   "witness_policy": "witness a nonsense\nquorum a\n"}))
    assert err.check == "policy.log"
    assert err.field == "log.witness_policy line 1"


def test_bad_log_vkey() -> None:
    err = refused(policy_toml(log={"vkey": LOG_VKEY[:-4] + "AAAA"}))
    assert (err.check, err.field) == ("policy.log", "log.vkey")


def test_duplicate_witness_keys_refused() -> None:
    err = refused(policy_toml(log={"witnesses": [WITNESS_VKEYS[0], WITNESS_VKEYS[0]]}))
    assert err.field == "log.witnesses[1]"


@pytest.mark.parametrize("bad", ["nonsense", "a b+12345678+AAAA", WITNESS_VKEYS[1][:-2]])
def test_bad_witness_vkey_named_by_index(bad: str) -> None:
    err = refused(policy_toml(log={"witnesses": [WITNESS_VKEYS[0], bad], "quorum": 1}))
    assert (err.check, err.field) == ("policy.log", "log.witnesses[1]")


@pytest.mark.parametrize(
    ("key", "value"),
    [("revocations", "sometimes"), ("max_checkpoint_age", 0),
     ("max_cosignature_skew", 7200), ("origin", "")],
)
def test_log_values_checked(key: str, value: object) -> None:
    err = refused(policy_toml(log={key: value}))
    assert err.field == f"log.{key}"


DAY = 86400


def test_checkpoint_age_is_capped_at_seven_days() -> None:
    # Stapled revocations: a node may show a checkpoint this old, so a revoked build is
    # accepted this long after its revocation was logged. Beyond a week it must say unsafe_.
    assert parse(policy_toml(log={"max_checkpoint_age": 7 * DAY})).log.max_checkpoint_age == (
        7 * DAY)
    err = refused(policy_toml(log={"max_checkpoint_age": 7 * DAY + 1,
                                   "revocations": "stapled"}))
    assert (err.check, err.field) == ("policy.schema", "log.max_checkpoint_age")
    assert "unsafe_max_checkpoint_age" in str(err)
    assert refused(policy_toml(log={"max_checkpoint_age": 10 * 365 * DAY})).field == (
        "log.max_checkpoint_age")


def test_unsafe_checkpoint_age_is_accepted_and_still_bounded() -> None:
    policy = parse(policy_toml(log={"max_checkpoint_age": None,
                                    "unsafe_max_checkpoint_age": 90 * DAY}))
    assert policy.log.max_checkpoint_age == 90 * DAY
    assert policy.warnings == (f"unsafe setting log.unsafe_max_checkpoint_age = {90 * DAY}",)
    err = refused(policy_toml(log={"max_checkpoint_age": None,
                                   "unsafe_max_checkpoint_age": 11 * 366 * DAY}))
    assert err.field == "log.unsafe_max_checkpoint_age"
    err = refused(policy_toml(log={"unsafe_max_checkpoint_age": 90 * DAY}))  # both given
    assert err.field == "log.unsafe_max_checkpoint_age"
    assert refused(policy_toml(log={"max_checkpoint_age": None})).field == (
        "log.max_checkpoint_age")


# --- [release] ---------------------------------------------------------------------------------


def test_release_keys_and_threshold() -> None:
    two = [OTHER_RELEASE_KEY.public.to_text().strip()]
    keys = [RELEASE_KEY.public.to_text().strip(), *two]
    policy = parse(policy_toml(release={"keys": keys, "threshold": 2}))
    assert policy.release.threshold == 2
    assert policy.release.keyids == (RELEASE_KEY.keyid, OTHER_RELEASE_KEY.keyid)
    assert refused(policy_toml(release={"threshold": 2})).field == "release.threshold"
    assert refused(policy_toml(release={"keys": []})).field == "release.keys"
    assert refused(policy_toml(release={"keys": ["ssh-ed25519 AAAA"]})).field == \
        "release.keys[0]"
    dup = refused(policy_toml(release={"keys": two + two}))
    assert dup.field == "release.keys[1]" and "duplicate" in dup.message


def _sigstore(root: str, **over: str) -> str:
    values = {"repository": "trailofbits/rfc8785.py", "workflow": ".github/workflows/release.yml",
              "ref": "refs/tags/v0.1.2", "trusted_root": root, **over}
    body = "".join(f'{k} = "{v}"\n' for k, v in values.items() if v)
    return policy_toml(extra="[release.sigstore]\n" + body)


def test_sigstore_identity(tmp_path: Path) -> None:
    root = vector_path("sigstore", "trusted_root", "production.trusted_root.json")
    (tmp_path / "root.json").write_bytes(root.read_bytes())
    (tmp_path / "policy.toml").write_text(_sigstore("root.json"))
    policy = load_policy(tmp_path / "policy.toml")  # relative to the policy file
    sig = policy.release.sigstore
    assert sig is not None
    assert sig.identity.san == ("https://github.com/trailofbits/rfc8785.py/.github/workflows/"
                                "release.yml@refs/tags/v0.1.2")
    assert sig.trusted_root_path == tmp_path / "root.json"
    assert sig.signs == "statement"  # the default: the strongest binding
    (tmp_path / "policy.toml").write_text(_sigstore("root.json", signs="artifact"))
    assert load_policy(tmp_path / "policy.toml").release.sigstore.signs == "artifact"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("over", "field"),
    [({"repository": "no-slash"}, "release.sigstore.repository"),
     ({"workflow": "release.yml"}, "release.sigstore.workflow"),
     ({"ref": "v1.0"}, "release.sigstore.ref"),
     ({"trusted_root": "missing.json"}, "release.sigstore.trusted_root"),
     ({"ref": ""}, "release.sigstore.ref"),
     ({"signs": "anything"}, "release.sigstore.signs")],
)
def test_sigstore_values_checked(tmp_path: Path, over: dict[str, str], field: str) -> None:
    root = str(vector_path("sigstore", "trusted_root", "production.trusted_root.json"))
    err = refused(_sigstore(root, **over), base_dir=tmp_path)
    assert err.field == field


# --- [evidence] --------------------------------------------------------------------------------


def test_evidence_values_checked() -> None:
    assert refused(policy_toml(evidence={"cpu": ["sgx"]})).field == "evidence.cpu[0]"
    assert refused(policy_toml(evidence={"cpu": []})).field == "evidence.cpu"
    assert refused(policy_toml(evidence={"cpu": ["tdx", "tdx"]})).field == "evidence.cpu"
    policy = parse(policy_toml(evidence={"cpu": ["tdx"], "gpu_required": False}))
    assert policy.evidence == EvidencePolicy(("tdx",), False, True)


def test_evidence_defaults_without_table() -> None:
    text = policy_toml().split("[evidence]")[0]
    assert parse(text).evidence == EvidencePolicy()


def test_evidence_check_collects_every_failure() -> None:
    failures = FailureCollector()
    EvidencePolicy(("sev-snp",), True, True).check({"tdx"}, [], failures)
    assert [f.check for f in failures.failures] == ["policy.evidence.cpu",
                                                    "policy.evidence.gpu"]
    failures = FailureCollector()
    EvidencePolicy().check({"sev-snp"}, [True, False, True], failures)
    with pytest.raises(PolicyError) as err:
        failures.raise_if_any()
    assert [f.check for f in err.value.failures] == ["policy.evidence.gpu_cc"]
    assert "GPU 1" in str(err.value)
    ok = FailureCollector()
    EvidencePolicy().check({"tdx"}, [True] * 8, ok)
    assert not ok.failures


# --- waivers and the section registry ------------------------------------------------------------


def test_waivable_checks() -> None:
    policy = parse(policy_toml(top={"waive": list(LOG_WAIVABLE)}))
    assert policy.waive == frozenset(LOG_WAIVABLE)
    assert policy.waives("release.revocations.unavailable")


@pytest.mark.parametrize("check", ["log.signature", "log.inclusion", "nonsense", "snp.vcek.crl"])
def test_unknown_or_unwaivable_check_refused(check: str) -> None:
    err = refused(policy_toml(top={"waive": [check]}))
    assert (err.check, err.field, err.got) == ("policy.waive", "waive[0]", check)


def test_waiving_twice_refused() -> None:
    err = refused(policy_toml(top={"waive": ["log.consistency", "log.consistency"]}))
    assert err.check == "policy.waive"


def test_vendor_tables_are_typed_fields() -> None:
    text = policy_toml(top={"waive": ["snp.crl"]}, extra="[snp]\nallow_debug = true\n")
    policy = parse(text)
    assert isinstance(policy.snp, SnpPolicy) and policy.snp.allow_debug
    assert policy.tables == frozenset({"snp"})
    assert policy.tdx == TdxPolicy()  # absent: the vendor's defaults
    assert policy.waives("snp.crl")
    err = refused(policy_toml(extra="[snp]\nallow_debugg = true\n"))
    assert err.field == "snp.allow_debugg"
    assert refused(policy_toml(extra="[snp]\nallow_debug = 1\n")).field == "snp.allow_debug"


def test_vendor_table_unknown_key_fails_closed() -> None:
    err = refused(policy_toml(extra="[gpu]\nvbios = []\n"))
    assert (err.check, err.field) == ("policy.schema", "gpu.vbios")


def test_waivers_are_the_policys_not_the_vendor_tables() -> None:
    """A waiver reaches a check through the transcript's waive set (verifier/transcript.py):
    the vendor tables carry no waiver flags of their own, so there is one place to look."""
    policy = parse(policy_toml(top={"waive": ["gpu.ocsp", "tdx.root_crl.validity"]}))
    assert policy.waive == frozenset({"gpu.ocsp", "tdx.root_crl.validity"})
    for table in (policy.gpu, policy.tdx, policy.snp):
        assert not any("waive" in name or "stale" in name for name in vars(table)), table
    more = policy.with_waivers({"gpu.rim.fetch"})
    assert more.waive == policy.waive | {"gpu.rim.fetch"} and more.tdx == policy.tdx
    assert more.warnings[-1].startswith("waiver: gpu.rim.fetch")
