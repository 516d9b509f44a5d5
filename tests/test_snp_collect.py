"""Node-side collection against a fake configfs-tsm tree and a fake /dev/sev-guest ioctl."""

from __future__ import annotations

import ctypes
import errno
from pathlib import Path

import pytest
from click.testing import CliRunner

from attest.cli import main as attest_main
from attest.collect.snp import (
    SNP_GET_EXT_REPORT,
    _ExtReportReq,
    _GuestRequest,
    collect_snp_report,
)
from attest.formats.snp_report import MILAN
from tests.support.snp_fixtures import sim
from transparency_log.common.errors import FetchError, VerificationError

RD = bytes(range(64))


def fake_tsm(report: bytes, aux: bytes = b"table", provider: str = "sev_guest"):
    """make_entry/remove_entry hooks that play the kernel's part of configfs-tsm."""
    seen: dict[str, object] = {}

    def make_entry(entry: Path) -> None:
        entry.mkdir()
        (entry / "provider").write_text(provider + "\n")
        (entry / "outblob").write_bytes(report)
        (entry / "auxblob").write_bytes(aux)
        (entry / "generation").write_text("1\n")
        seen["entry"] = entry

    def remove_entry(entry: Path) -> None:
        inblob = entry / "inblob"
        seen["inblob"] = inblob.read_bytes() if inblob.exists() else None
        seen["removed"] = entry

    return make_entry, remove_entry, seen


def test_configfs_tsm_round_trip(tmp_path: Path) -> None:
    raw = sim(MILAN).report(version=3, report_data=RD)
    mk, rm, seen = fake_tsm(raw)
    ev = collect_snp_report(RD, tsm_root=tmp_path, make_entry=mk, remove_entry=rm)
    assert ev.report == raw and ev.cert_table == b"table" and ev.source == "configfs-tsm"
    assert seen["inblob"] == RD and seen["removed"] == seen["entry"]


def test_configfs_wrong_provider(tmp_path: Path) -> None:
    mk, rm, seen = fake_tsm(b"", provider="tdx_guest")
    with pytest.raises(FetchError) as e:
        collect_snp_report(RD, tsm_root=tmp_path, make_entry=mk, remove_entry=rm)
    assert e.value.check == "snp.collect.provider" and "removed" in seen


def test_configfs_generation_race(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = sim(MILAN).report(version=3, report_data=RD)
    mk, rm, _ = fake_tsm(raw)
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:  # another writer bumps the generation mid-read
        if self.name == "outblob":
            (self.parent / "generation").write_text("2\n")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(FetchError) as e:
        collect_snp_report(RD, tsm_root=tmp_path, make_entry=mk, remove_entry=rm)
    assert e.value.check == "snp.collect.generation"


def test_configfs_report_with_other_report_data(tmp_path: Path) -> None:
    mk, rm, _ = fake_tsm(sim(MILAN).report(version=3, report_data=b"\x01" * 64))
    with pytest.raises(VerificationError):
        collect_snp_report(RD, tsm_root=tmp_path, make_entry=mk, remove_entry=rm)


def fake_ioctl(report: bytes, certs: bytes, *, want_len: int | None = None):
    calls = []

    def ioctl(fd: int, request: int, arg: ctypes.Structure) -> int:
        assert request == SNP_GET_EXT_REPORT == 0xC0205302
        g = _GuestRequest.from_buffer(arg)
        req = _ExtReportReq.from_address(g.req_data)
        calls.append(req.certs_len)
        if want_len is not None and req.certs_len < want_len:
            req.certs_len = want_len
            g.exitinfo2 = 1 << 32  # SNP_GUEST_VMM_ERR_INVALID_LEN
            raise OSError(errno.EINVAL, "invalid length")
        user = bytes(req.data.user_data)
        resp = bytearray(0x20) + bytearray(report[:0x50]) + user + bytearray(report[0x90:])
        resp[4:8] = (0x4A0).to_bytes(4, "little")
        ctypes.memmove(g.resp_data, bytes(resp), len(resp))
        ctypes.memmove(req.certs_address, certs, len(certs))
        return 0

    return ioctl, calls


def test_sev_guest_ioctl_with_certificate_buffer_retry(tmp_path: Path) -> None:
    dev = tmp_path / "sev-guest"
    dev.write_bytes(b"")
    report = sim(MILAN).report(version=3, report_data=RD)
    ioctl, calls = fake_ioctl(report, b"certs", want_len=5 * 4096)
    ev = collect_snp_report(RD, tsm_root=tmp_path / "none", device=dev, ioctl=ioctl)
    assert ev.source == "sev-guest" and ev.report == report
    assert ev.cert_table[:5] == b"certs" and calls == [4 * 4096, 5 * 4096]


def test_no_device_is_a_clear_fetch_error(tmp_path: Path) -> None:
    with pytest.raises(FetchError) as e:
        collect_snp_report(RD, tsm_root=tmp_path / "no-tsm", device=tmp_path / "no-dev")
    assert e.value.check == "snp.collect.device" and "not an SNP guest" in e.value.message


def test_attest_snp_report_command_without_device(tmp_path: Path) -> None:
    res = CliRunner().invoke(attest_main, [
        "snp-report", "--report-data", RD.hex(), "-o", str(tmp_path / "r.bin"),
        "--tsm-root", str(tmp_path / "no-tsm"), "--device", str(tmp_path / "no-dev")])
    assert res.exit_code == 3 and "snp.collect.device" in res.output
    res = CliRunner().invoke(attest_main, ["snp-report", "--report-data", "abcd"])
    assert res.exit_code == 64 and "64 bytes" in res.output


def test_attest_snp_report_writes_report_and_table(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from attest.collect import cli_snp
    from attest.collect.snp import SnpEvidence

    raw = sim(MILAN).report(version=3, report_data=RD)
    got = {}

    def fake(report_data: bytes, **kw) -> SnpEvidence:
        got["rd"] = report_data
        return SnpEvidence(raw, b"TABLE", "configfs-tsm")

    monkeypatch.setattr(cli_snp, "collect_snp_report", fake)
    out, certs = tmp_path / "r.bin", tmp_path / "t.bin"
    res = CliRunner().invoke(attest_main, ["snp-report", "--report-data", RD.hex(), "-o",
                                           str(out), "--extended", "--certs-out", str(certs)])
    assert res.exit_code == 0, res.output
    assert got["rd"] == RD and out.read_bytes() == raw + b"TABLE"
    assert certs.read_bytes() == b"TABLE" and "configfs-tsm" in res.output
