"""Release and revocation statements (in-toto Statement v1): strict parse, serializer, caps."""

from __future__ import annotations

import json
from typing import Any

import pytest

from attest.release import canonical_json
from attest.release.measurements import Measurements
from attest.release.statement import (
    MAX_ENTRY_SIZE,
    RELEASE_PREDICATE_TYPE,
    REVOCATION_PREDICATE_TYPE,
    Artifact,
    Release,
    Revocation,
    parse_statement,
)
from tests.support.release_samples import SNP_MEASUREMENT, digest, sample_release
from transparency_log.common.errors import FormatError


def _tamper(edit: Any) -> bytes:
    value = sample_release().to_json()
    edit(value)
    return canonical_json.encode(value)


def test_release_roundtrip() -> None:
    release = sample_release()
    data = release.encode()
    assert parse_statement(data) == release
    assert parse_statement(data).encode() == data
    value = json.loads(data)
    assert value["_type"] == "https://in-toto.io/Statement/v1"
    assert value["predicateType"] == RELEASE_PREDICATE_TYPE
    assert value["subject"][0]["digest"]["sha256"] == digest("image").hex()
    assert list(value["predicate"]) == ["artifacts", "builder", "measurements", "source"]


def test_revocation_roundtrip() -> None:
    rev = Revocation.of_statement(digest("statement"), "kernel CVE-2026-0001")
    data = rev.encode()
    assert parse_statement(data) == rev
    value = json.loads(data)
    assert value["predicateType"] == REVOCATION_PREDICATE_TYPE
    assert value["subject"] == [{"name": "attestlog-release-statement",
                                 "digest": {"sha256": digest("statement").hex()}}]
    build = Revocation.of_measurement(b"\x5a" * 48, "bad build")
    assert parse_statement(build.encode()) == build
    assert json.loads(build.encode())["subject"] == [
        {"name": "attestlog-measurement", "digest": {"sha384": "5a" * 48}}]
    assert value["predicate"] == {"reason": "kernel CVE-2026-0001"}


def test_revocation_revokes_statement_or_listed_measurement() -> None:
    release = sample_release()
    listed = release.measurements.listed()
    assert release.measurements.snp[0].measurement in listed
    assert Revocation.of_statement(digest("s"), "x").revokes(digest("s"), release)
    assert not Revocation.of_statement(digest("s"), "x").revokes(digest("t"), release)
    for m in listed:
        assert Revocation.of_measurement(m, "x").revokes(digest("t"), release)
    assert not Revocation.of_measurement(b"\x09" * 48, "x").revokes(digest("t"), release)


def test_snp_match() -> None:
    m = sample_release().measurements
    assert m.snp_match(SNP_MEASUREMENT) is not None
    assert m.snp_match(SNP_MEASUREMENT).vcpus == 1
    assert m.snp_match(bytes(48)) is None


def _set(path: list[Any], value: Any) -> Any:
    def edit(doc: Any) -> None:
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value
    return edit


def _delete(path: list[Any]) -> Any:
    def edit(doc: Any) -> None:
        for key in path[:-1]:
            doc = doc[key]
        del doc[path[-1]]
    return edit


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (_set(["extra"], 1), "extra"),
        (_set(["predicate", "extra"], "x"), "predicate.extra"),
        (_set(["predicate", "source", "branch"], "main"), "predicate.source.branch"),
        (_set(["subject", 0, "digest", "sha512"], "00"), "subject[0].digest.sha512"),
        (_set(["_type"], "https://in-toto.io/Statement/v0.1"), "_type"),
        (_set(["predicateType"], "https://slsa.dev/provenance/v1"), "predicateType"),
        (_set(["subject"], []), "subject"),
        (_set(["subject", 0, "digest", "sha256"], "AB" * 32), "subject[0].digest.sha256"),
        (_set(["subject", 0, "digest", "sha256"], "ab" * 31), "subject[0].digest.sha256"),
        (_set(["predicate", "source", "commit"], "abc"), "predicate.source.commit"),
        (_set(["predicate", "source", "repository"], "not a uri"),
         "predicate.source.repository"),
        (_set(["predicate", "artifacts", 0, "kind"], "bootloader"),
         "predicate.artifacts[0].kind"),
        (_set(["predicate", "artifacts", 1, "sha256"], 5), "predicate.artifacts[1].sha256"),
        (_delete(["predicate", "builder"]), "predicate.builder"),
        (_set(["predicate", "measurements", "snp", 0, "vcpus"], 0),
         "predicate.measurements.snp[0].vcpus"),
        (_set(["predicate", "measurements", "snp", 0, "vcpus"], "1"),
         "predicate.measurements.snp[0].vcpus"),
        (_set(["predicate", "measurements", "snp", 0, "vcpus"], True),
         "predicate.measurements.snp[0].vcpus"),
        (_set(["predicate", "measurements", "snp", 1, "vmm_type"], "kvm"),
         "predicate.measurements.snp[1].vmm_type"),
        (_set(["predicate", "measurements", "snp", 1, "measurement"], "00" * 32),
         "predicate.measurements.snp[1].measurement"),
        (_set(["predicate", "measurements", "snp"], []), "predicate.measurements.snp"),
        (_set(["predicate", "measurements", "tdx", "rtmr3"], "00" * 48),
         "predicate.measurements.tdx.rtmr3"),
        (_delete(["predicate", "measurements", "tdx", "rtmr2"]),
         "predicate.measurements.tdx.rtmr2"),
        (_set(["predicate", "measurements", "gpu", "drivers"], ["550 90"]),
         "predicate.measurements.gpu.drivers[0]"),
        (_set(["predicate", "measurements", "gpu", "vbios"], ["1", "1"]),
         "predicate.measurements.gpu.vbios"),
        (_set(["predicate", "measurements"], {"gpu": {"drivers": ["1"], "vbios": ["2"]}}),
         "predicate.measurements"),
        (_set(["predicate", "measurements", "snp", 1, "vcpus"], 1),
         "predicate.measurements.snp"),
        (_set(["predicate", "artifacts", 1, "name"], "OVMF.fd"), "predicate.artifacts"),
    ],
)
def test_release_refuses(edit: Any, field: str) -> None:
    with pytest.raises(FormatError) as err:
        parse_statement(_tamper(edit))
    assert err.value.check == "release.statement"
    assert err.value.field == field


def test_revocation_refuses() -> None:
    good = json.loads(Revocation.of_statement(digest("e"), "why").encode())
    for edit, field in [
        (_set(["predicate", "reason"], ""), "predicate.reason"),
        (_set(["predicate", "release"], "x"), "predicate.release"),
        (_set(["subject", 0, "name"], "other"), "subject[0].name"),
        (_set(["subject", 0, "name"], "attestlog-release-entry"), "subject[0].name"),
        (_set(["subject", 0, "name"], "attestlog-measurement"), "subject[0].digest.sha384"),
        (_set(["subject", 0, "digest", "sha384"], "00" * 48), "subject[0].digest.sha384"),
        (lambda d: d["subject"].append(d["subject"][0]), "subject"),
    ]:
        doc = json.loads(json.dumps(good))
        edit(doc)
        with pytest.raises(FormatError) as err:
            parse_statement(canonical_json.encode(doc))
        assert err.value.field == field


def test_non_canonical_refused() -> None:
    data = sample_release().encode()
    with pytest.raises(FormatError) as err:
        parse_statement(json.dumps(json.loads(data), indent=1).encode())
    assert err.value.check == "release.json.canonical"


def test_entry_size_cap() -> None:
    base = sample_release()
    arts = tuple(Artifact("other", f"{'x' * 200}-{i}", digest(str(i))) for i in range(64))
    big = Release(base.subjects, base.repository, base.commit, base.builder, arts,
                  base.measurements)
    assert len(big.encode()) <= MAX_ENTRY_SIZE  # 64 artifacts still fit
    value = big.to_json()
    value["predicate"]["measurements"]["gpu"]["drivers"] = [f"{i}" * 60 for i in range(10)]
    value["predicate"]["source"]["repository"] = "https://" + "r" * 60000
    with pytest.raises(FormatError) as err:
        parse_statement(canonical_json.encode(value))
    assert err.value.check == "release.entry.size"


def test_constructor_checks() -> None:
    base = sample_release()
    with pytest.raises(FormatError):
        Release((), base.repository, base.commit, base.builder, (), base.measurements)
    with pytest.raises(FormatError):
        Release(base.subjects, base.repository, base.commit, base.builder, (), Measurements())
    with pytest.raises(FormatError):
        Revocation.of_statement(b"short", "x")
    with pytest.raises(FormatError):
        Revocation.of_measurement(bytes(32), "x")
    with pytest.raises(FormatError):
        Revocation("entry", bytes(32), "x")


def test_encode_refuses_what_parse_refuses() -> None:
    """A statement built in code with a malformed value is refused before it can be signed."""
    base = sample_release()
    bad = Release(base.subjects, base.repository, "not-a-commit", base.builder,
                  base.artifacts, base.measurements)
    with pytest.raises(FormatError) as err:
        bad.encode()
    assert err.value.field == "predicate.source.commit"
