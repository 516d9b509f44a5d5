"""`verifier audit`: a whole release log replayed, on a tile directory and over HTTP on
127.0.0.1 (verifier/audit.py, verifier/audit_reproduce.py, verifier/cli_audit.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import requests

import verifier.cli_audit as cli_audit
from attest.release.dsse import entry_digest, entry_statement_digest, sign_statement
from attest.release.measurements import Measurements, SnpMeasurement
from attest.release.statement import Artifact, Release, Subject
from tests.support.audit_log import ReleaseLog, audit, sha
from tests.support.log_fixtures import (
    LOG_VKEY,
    ORIGIN,
    OTHER_RELEASE_KEY,
    RELEASE_KEY,
    measurement_revocation_entry,
    policy_toml,
    release_entry,
    relogged_variant,
    revocation_entry,
)
from tests.support.release_samples import sample_release
from tests.support.tdvf_image import build_image, expected_mrtd
from tests.support.tlog_net import TOKEN, log_network
from transparency_log.client.checkpoint_store import CheckpointStore
from transparency_log.client.log_client import LogClient, directory_source
from transparency_log.common.errors import ConsistencyError
from transparency_log.core.key_types import Verifier
from verifier.audit import AuditOptions, Auditor, audit_entries
from verifier.audit_reproduce import find_artifact, reproduce_release
from verifier.policy import load_policy

VECTORS = Path(__file__).parent / "vectors" / "snp" / "sev-snp-measure"
OVMF = (VECTORS / "ovmf_AmdSev_suffix.bin").read_bytes()
CMDLINE = b"console=ttyS0 loglevel=7"
# tests/vectors/snp/MANIFEST.md, "Launch measurement vectors": 1 vCPU EPYC-v4, guest features
# 0x21, the AmdSev suffix as OVMF; with empty kernel/initrd and CMDLINE, and without kernel.
SNP_WITH_KERNEL = bytes.fromhex(
    "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba"
    "7e534442e7e1e17895dfe778d0228977")
SNP_NO_KERNEL = bytes.fromhex(
    "e1e1ca029dd7973ab9513295be68198472dcd4fc834bd9af9b63f6e8a1674dbf"
    "281a9278a4a2ebe0eed9f22adbcd0e2b")


def snp_release(n: int, measurement: bytes, *, kernel: bool = True) -> Release:
    arts = [Artifact("firmware", "OVMF.fd", sha(OVMF))]
    if kernel:
        arts += [Artifact("kernel", "vmlinuz", sha(b"")),
                 Artifact("initrd", "initrd.img", sha(b"")),
                 Artifact("cmdline", "cmdline.txt", sha(CMDLINE))]
    return Release((Subject(f"node-{n}.qcow2", sha(b"image %d" % n)),),
                   "https://github.com/example/inference-node", f"{n + 1:040x}",
                   "https://github.com/example/inference-node/.github/workflows/release.yml",
                   tuple(arts),
                   Measurements(snp=(SnpMeasurement(1, "EPYC-v4", "qemu", measurement),)))


def signed(release: Release, key=RELEASE_KEY) -> bytes:
    return sign_statement(release, [key]).encode()


@pytest.fixture()
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(policy_toml())
    return path


@pytest.fixture()
def artifacts(tmp_path: Path) -> Path:
    """The published artifacts, content-addressed: DIR/<sha256 hex>."""
    d = tmp_path / "artifacts"
    d.mkdir()
    for data in (OVMF, b"", CMDLINE):
        (d / sha(data).hex()).write_bytes(data)
    return d


def test_clean_log_audits_ok_and_lists_releases_and_revocations(tmp_path, policy_file) -> None:
    rel = [release_entry(i) for i in range(3)]
    log = ReleaseLog(tmp_path)
    log.add(*rel, revocation_entry(rel[1], reason="CVE-2026-0001"))
    code, out, err = audit(str(log.dir), "--policy", str(policy_file), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["ok"] and report["flags"] == []
    assert report["checkpoint"]["size"] == 4 and report["cosigners"]
    assert report["checks"] == {"log": "pass", "signatures": True, "sigstore": False,
                                "reproduce": False}
    assert [r["index"] for r in report["releases"]] == [0, 1, 2]
    first = report["releases"][0]
    assert first["digest"] == entry_digest(rel[0]).hex()
    assert first["subjects"][0]["name"] == "inference-node.qcow2"
    assert first["source"] == {"repository": "https://github.com/example/inference-node",
                               "commit": f"{1:040x}"}
    assert first["signers"] == [RELEASE_KEY.keyid]
    assert first["measurements"] == sample_release().measurements.to_json()
    assert report["releases"][1]["revoked_by"] == [
        {"index": 3, "digest": entry_digest(log.log.entry(3)).hex(), "reason": "CVE-2026-0001"}]
    (revocation,) = report["revocations"]
    assert (revocation["target"], revocation["revokes"], revocation["revokes_indexes"]) == (
        "statement", entry_statement_digest(rel[1]).hex(), [1])

    code, out, _ = audit(str(log.dir), "--policy", str(policy_file))  # the table
    assert code == 0
    assert "releases (3):" in out and "revocations (1):" in out and "verdict: OK" in out


def test_audit_over_http_on_loopback(tmp_path) -> None:
    """The real `tlog serve` with two witnesses on 127.0.0.1, the policy naming them."""
    with log_network(tmp_path, n_witnesses=2) as net:
        entries = [release_entry(i) for i in range(2)]
        entries.append(revocation_entry(entries[0]))
        for e in entries:
            r = requests.post(net.base + "/add?wait=proof", data=e,
                              headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
            assert r.status_code == 200, r.text
        policy = tmp_path / "policy.toml"
        policy.write_text(policy_toml(log={
            "origin": "example.com/attestlog-test", "vkey": net.log_vkey, "witnesses": None,
            "quorum": None, "witness_policy": net.policy_text.decode()}))
        code, out, err = audit(net.base, "--policy", str(policy), "--json",
                               "--state", str(tmp_path / "state"))
    assert code == 0, err
    report = json.loads(out)
    assert report["cosigners"] == ["w1", "w2"]
    assert len(report["releases"]) == 2 and report["releases"][0]["revoked_by"]
    assert len(report["revocations"]) == 1


def test_forked_log_is_caught_against_saved_state_with_evidence(tmp_path, policy_file) -> None:
    state = tmp_path / "state"
    honest = ReleaseLog(tmp_path, "honest")
    honest.add(*(release_entry(i) for i in range(3)))
    assert audit(str(honest.dir), "--policy", str(policy_file), "--state", str(state))[0] == 0
    fork = ReleaseLog(tmp_path, "fork")  # same log key, other history
    fork.add(*(release_entry(i + 10) for i in range(4)))
    code, out, err = audit(str(fork.dir), "--policy", str(policy_file), "--state", str(state))
    assert code == 2 and "log.consistency" in err and out == ""
    store = CheckpointStore(state)
    (evidence,) = store.evidence(ORIGIN)
    presented = (evidence / "presented.checkpoint").read_bytes()
    assert presented == (fork.dir / "checkpoint").read_bytes()
    assert store.last_seen(ORIGIN).checkpoint.size == 3  # type: ignore[union-attr]
    honest.add(release_entry(3))  # the honest log grows: still fine from the saved state
    assert audit(str(honest.dir), "--policy", str(policy_file), "--state", str(state))[0] == 0


def test_checkpoint_without_witness_quorum_is_a_log_failure(tmp_path, policy_file) -> None:
    log = ReleaseLog(tmp_path)
    log.add(release_entry(0), witnesses=(0,))
    code, _, err = audit(str(log.dir), "--policy", str(policy_file))
    assert code == 2 and "log.witness.quorum" in err


def test_tampered_entry_bundle_is_a_log_failure(tmp_path, policy_file) -> None:
    log = ReleaseLog(tmp_path)
    log.add(*(release_entry(i) for i in range(3)))
    bundle = next((log.dir / "tile" / "entries").glob("000*"))
    if bundle.is_dir():
        bundle = next(bundle.iterdir())
    data = bytearray(bundle.read_bytes())
    data[-3] ^= 1
    bundle.write_bytes(bytes(data))
    code, _, err = audit(str(log.dir), "--policy", str(policy_file))
    assert code == 2 and "log.tiles" in err


def test_entries_that_fail_are_flagged_never_dropped(tmp_path, policy_file) -> None:
    good = release_entry(0)
    foreign = release_entry(1, key=OTHER_RELEASE_KEY)
    log = ReleaseLog(tmp_path)
    log.add(good, foreign, b"not a DSSE envelope", revocation_entry(release_entry(99)))
    code, out, err = audit(str(log.dir), "--policy", str(policy_file), "--json")
    assert code == cli_audit.EXIT_FLAGGED, err
    report = json.loads(out)
    assert [r["index"] for r in report["releases"]] == [0]
    assert [(f["index"], f["check"]) for f in report["flags"]] == [
        (1, "release.signature"), (2, "release.entry.format"), (3, "release.revocation.target")]
    assert report["flags"][0]["digest"] == entry_digest(foreign).hex()
    assert "release.dsse.signer" in report["flags"][0]["message"]
    code, out, _ = audit(str(log.dir), "--policy", str(policy_file))
    assert code == 6 and "FAIL release.signature: entry 1" in out and "FLAGGED (3)" in out


def test_without_policy_statements_are_listed_unverified(tmp_path) -> None:
    log = ReleaseLog(tmp_path)
    log.add(release_entry(0), release_entry(1, key=OTHER_RELEASE_KEY))
    code, out, err = audit(str(log.dir), "--vkey", LOG_VKEY, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["checks"]["signatures"] is False and report["cosigners"] is None
    assert [r["signers"] for r in report["releases"]] == [[RELEASE_KEY.keyid],
                                                          [OTHER_RELEASE_KEY.keyid]]
    assert audit(str(log.dir))[0] == 64  # neither --vkey nor --policy: usage error


def test_vkey_must_agree_with_the_policy(tmp_path, policy_file) -> None:
    log = ReleaseLog(tmp_path)
    log.add(release_entry(0))
    from transparency_log.core.note import generate_keys

    _, other = generate_keys(ORIGIN, seed=bytes([0x55]) * 32)
    code, _, err = audit(str(log.dir), "--policy", str(policy_file), "--vkey", other)
    assert code == 4 and "audit.vkey" in err


def test_reproduce_flags_releases_that_do_not_reproduce(tmp_path, policy_file,
                                                        artifacts) -> None:
    entries = [signed(snp_release(0, SNP_WITH_KERNEL)),
               signed(snp_release(1, SNP_NO_KERNEL, kernel=False)),
               signed(snp_release(2, bytes(48))),  # logged measurement is not what builds
               signed(dataclasses.replace(snp_release(3, SNP_WITH_KERNEL), artifacts=(
                   Artifact("firmware", "OVMF-other.fd", sha(b"unpublished")),)))]
    log = ReleaseLog(tmp_path)
    log.add(*entries)
    code, out, err = audit(str(log.dir), "--policy", str(policy_file), "--json",
                           "--reproduce", str(artifacts), "--snp-guest-features", "0x21")
    assert code == cli_audit.EXIT_FLAGGED, err
    report = json.loads(out)
    status = [r["reproduce"]["status"] for r in report["releases"]]
    assert status == ["reproduced", "reproduced", "mismatch", "missing"]
    assert [(f["index"], f["check"]) for f in report["flags"]] == [
        (2, "release.reproduce"), (3, "release.artifacts.missing")]
    (m,) = report["releases"][0]["reproduce"]["measurements"]
    assert m["ok"] and m["config"] == {"guest_features": "0x21"}
    assert report["releases"][2]["reproduce"]["measurements"][0]["computed"] == [
        SNP_WITH_KERNEL.hex()]
    assert report["releases"][3]["reproduce"]["missing"] == ["OVMF-other.fd"]

    # QEMU's default SEV_FEATURES (0x1) does not give the vectors' measurements.
    code, out, _ = audit(str(log.dir), "--policy", str(policy_file), "--json",
                         "--reproduce", str(artifacts))
    flags = [(f["index"], f["check"]) for f in json.loads(out)["flags"]]
    assert (0, "release.reproduce") in flags and (1, "release.reproduce") in flags


def test_artifacts_found_by_name_only_when_the_digest_matches(tmp_path) -> None:
    d = tmp_path / "build"
    d.mkdir()
    (d / "OVMF.fd").write_bytes(OVMF)
    assert find_artifact(d, Artifact("firmware", "OVMF.fd", sha(OVMF))) == OVMF
    assert find_artifact(d, Artifact("firmware", "OVMF.fd", sha(b"other"))) is None
    (d / "sha256").mkdir()
    (d / "sha256" / sha(b"k").hex()).write_bytes(b"k")
    assert find_artifact(d, Artifact("kernel", "vmlinuz", sha(b"k"))) == b"k"
    release = snp_release(0, SNP_NO_KERNEL, kernel=False)
    assert reproduce_release(release, d, snp_guest_features=(0x21,)).status == "reproduced"


def test_follow_picks_up_new_entries(tmp_path, policy_file, monkeypatch) -> None:
    log = ReleaseLog(tmp_path)
    log.add(release_entry(0))
    grown = iter([[release_entry(1)], [release_entry(2), revocation_entry(release_entry(0))]])
    monkeypatch.setattr(cli_audit.time, "sleep", lambda _s: log.add(*next(grown)))
    code, out, err = audit(str(log.dir), "--policy", str(policy_file), "--json", "--follow",
                           "--interval", "0", "--iterations", "3")
    assert code == 0, err
    rounds = [json.loads(line) for line in out.splitlines()]
    assert [r["checkpoint"]["size"] for r in rounds] == [1, 2, 4]
    assert [r["new_entries"] for r in rounds] == [1, 1, 2]
    assert [len(r["releases"]) for r in rounds] == [1, 2, 3]
    assert rounds[-1]["releases"][0]["revoked_by"]


def test_auditor_reads_only_new_entries_and_recovers_after_a_failure(tmp_path) -> None:
    policy = load_policy_for(tmp_path)
    log = ReleaseLog(tmp_path)
    log.add(*(release_entry(i) for i in range(300)))
    reads: list[str] = []
    fetch = directory_source(log.dir)

    def counting(path: str) -> bytes:
        reads.append(path)
        return fetch(path)

    client = LogClient(counting, Verifier(LOG_VKEY), policy=policy.log.witness_policy,
                       store=CheckpointStore(tmp_path / "state"))
    auditor = Auditor(client, AuditOptions(release=policy.release))
    first = auditor.run()
    assert (first.new_entries, len(first.releases), first.ok) == (300, 300, True)
    log.add(release_entry(300))
    reads.clear()
    second = auditor.run()
    assert (second.new_entries, len(second.releases)) == (1, 301)
    assert not any(p.startswith("tile/entries/000") for p in reads)  # the full bundle: kept
    fork = ReleaseLog(tmp_path, "fork")
    fork.add(*(release_entry(i + 1000) for i in range(302)))
    client.fetch = directory_source(fork.dir)
    with pytest.raises(ConsistencyError):
        auditor.run()
    assert auditor.entries == []
    client.fetch = directory_source(log.dir)
    assert len(auditor.run().releases) == 301


def load_policy_for(tmp_path: Path):
    path = tmp_path / "policy.toml"
    path.write_text(policy_toml())
    return load_policy(path)


def test_audit_entries_is_pure_and_orders_flags() -> None:
    releases, revocations, flags = audit_entries(
        [b"{}", release_entry(0), revocation_entry(release_entry(0))], AuditOptions())
    assert [r.index for r in releases] == [1] and revocations[0].release_indexes == (1,)
    assert [f.check for f in flags] == ["release.entry.format"]


def test_audit_links_statement_and_measurement_revocations() -> None:
    """A re-logged variant is revoked with its original; a measurement revocation revokes
    every release listing it, later ones included, and names no single release (no flag)."""
    rel0, rel1 = release_entry(0), release_entry(1)
    m = sample_release().measurements.snp[0].measurement
    entries = [rel0, revocation_entry(rel0), relogged_variant(rel0),
               measurement_revocation_entry(m), rel1]
    releases, revocations, flags = audit_entries(entries, AuditOptions())
    assert flags == ()
    assert [(r.index, [v.index for v in r.revoked_by]) for r in releases] == [
        (0, [1, 3]), (2, [1, 3]), (4, [3])]
    assert [v.release_indexes for v in revocations] == [(0, 2), (0, 2, 4)]


def test_reproduce_tdx_mrtd_from_a_tdvf_image(tmp_path) -> None:
    from attest.release.measurements import TdxMeasurement

    image = build_image()
    d = tmp_path / "tdx"
    d.mkdir()
    (d / sha(image).hex()).write_bytes(image)

    def tdx_release(mrtd: bytes) -> Release:
        return Release((Subject("td.qcow2", sha(b"td")),), "https://github.com/example/td",
                       "a" * 40, "https://github.com/example/td/ci",
                       (Artifact("firmware", "TDVF.fd", sha(image)),),
                       Measurements(tdx=TdxMeasurement(mrtd, *(bytes(48),) * 3)))

    two_pass = reproduce_release(tdx_release(expected_mrtd(image, True)), d)
    assert two_pass.status == "reproduced"
    assert two_pass.measurements[0]["config"] == {"page_order": "two-pass"}
    assert any("RTMR" in n for n in two_pass.notes)
    bad = reproduce_release(tdx_release(bytes(48)), d)
    assert bad.status == "mismatch" and "tdx MRTD" in bad.describe()
    not_tdvf = tmp_path / "snp"
    not_tdvf.mkdir()
    (not_tdvf / "TDVF.fd").write_bytes(OVMF)
    release = dataclasses.replace(tdx_release(bytes(48)), artifacts=(
        Artifact("firmware", "TDVF.fd", sha(OVMF)),))
    result = reproduce_release(release, not_tdvf)
    assert result.status == "mismatch" and "no firmware artifact is a TDVF image" in result.notes


def test_long_runs_draw_a_progress_bar_on_stderr(tmp_path, policy_file, monkeypatch) -> None:
    monkeypatch.setattr(cli_audit, "PROGRESS_MIN", 1)
    log = ReleaseLog(tmp_path)
    log.add(*(release_entry(i) for i in range(3)))
    code, out, err = audit(str(log.dir), "--policy", str(policy_file), "--json")
    assert code == 0 and "auditing entries" in err and json.loads(out)["ok"]
