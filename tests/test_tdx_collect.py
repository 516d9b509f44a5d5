"""Node-side collection (attest/collect/tdx.py) against a fake configfs-tsm tree and a fake
/dev/tdx_guest, and `attest tdx-quote`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from attest.cli import main as attest_main
from attest.collect.tdx import TDX_CMD_GET_REPORT0, TsmFs, get_quote, get_td_report
from attest.formats.tdx_quote import parse_quote
from tests.support.tdx_support import sim
from transparency_log.common.errors import FetchError, FormatError

RD = bytes(range(64))


class FakeKernel(TsmFs):
    """A configfs-tsm report directory on tmp_path: mkdir populates the attributes, writing
    inblob produces outblob (a simulated quote over it) and bumps generation."""

    def __init__(self, provider: str = "tdx_guest", racing: bool = False) -> None:
        self.sim = sim()
        self.provider = provider
        self.racing = racing
        self.removed: list[Path] = []

    def mkdir(self, path: Path) -> None:
        path.mkdir()
        (path / "provider").write_text(self.provider + "\n")
        (path / "generation").write_text("0\n")

    def write(self, path: Path, data: bytes) -> None:
        super().write(path, data)
        if path.name == "inblob":
            quote = self.sim.quote(report_data=data).to_bytes()
            (path.parent / "outblob").write_bytes(quote)
            gen = int((path.parent / "generation").read_text())
            (path.parent / "generation").write_text(f"{gen + (2 if self.racing else 1)}\n")

    def rmdir(self, path: Path) -> None:
        self.removed.append(path)
        shutil.rmtree(path)


def test_quote_through_fake_configfs(tmp_path: Path) -> None:
    kernel = FakeKernel()
    raw = get_quote(RD, root=tmp_path, fs=kernel)
    assert parse_quote(raw).body.report_data == RD
    assert len(kernel.removed) == 1 and not any(tmp_path.iterdir())


def test_wrong_provider_and_races_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="provider is not TDX"):
        get_quote(RD, root=tmp_path, fs=FakeKernel(provider="sev_guest"))
    with pytest.raises(FetchError, match="concurrently"):
        get_quote(RD, root=tmp_path, fs=FakeKernel(racing=True))
    assert not any(tmp_path.iterdir())


def test_no_tdx_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FetchError) as err:
        get_quote(RD, root=tmp_path / "missing")
    assert "not a TDX guest" in err.value.message
    with pytest.raises(FetchError, match="not a TDX guest"):
        get_td_report(RD, device=tmp_path / "tdx_guest")
    with pytest.raises(FormatError):
        get_quote(b"short", root=tmp_path)


def test_td_report_through_a_fake_device(tmp_path: Path) -> None:
    device = tmp_path / "tdx_guest"
    device.write_bytes(b"")
    seen = []

    def fake_ioctl(fd: int, request: int, buf: bytearray) -> int:
        seen.append(request)
        assert bytes(buf[:64]) == RD and len(buf) == 64 + 1024
        buf[64:] = b"\xaa" * 1024
        return 0

    assert get_td_report(RD, device=device, ioctl=fake_ioctl) == b"\xaa" * 1024
    assert seen == [TDX_CMD_GET_REPORT0] and TDX_CMD_GET_REPORT0 == 0xC4405401


def test_attest_tdx_quote_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import attest.collect.cli_tdx as cli_tdx

    kernel = FakeKernel()
    real = cli_tdx.get_quote
    monkeypatch.setattr(cli_tdx, "get_quote", lambda rd, root: real(rd, root=root, fs=kernel))
    tsm = tmp_path / "tsm"
    tsm.mkdir()
    out = tmp_path / "q.dat"
    result = CliRunner().invoke(attest_main, ["tdx-quote", "--report-data", RD.hex(),
                                              "-o", str(out), "--tsm-root", str(tsm)])
    assert result.exit_code == 0, result.output
    assert parse_quote(out.read_bytes()).body.report_data == RD
    bad = CliRunner().invoke(attest_main, ["tdx-quote", "--report-data", "xyz"])
    assert bad.exit_code == 2
    missing = CliRunner().invoke(attest_main, ["tdx-quote", "--report-data", RD.hex(),
                                               "--tsm-root", str(tmp_path / "none")])
    assert missing.exit_code == 3 and "not a TDX guest" in missing.output
