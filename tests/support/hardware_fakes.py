"""Fake devices for the real HardwarePlatform path (attest/platform.py, attest/collect/):
configfs-tsm entries (``FakeTsm``), a TDX kernel that answers with simulated quotes
(``FakeTdxKernel``), an SNP_GET_EXT_REPORT ioctl answered by a simulated AMD chip
(``fake_snp_ioctl``); and the nonce and fresh node key the bundles are built for."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attest.collect.snp import _ExtReportReq, _GuestRequest
from attest.collect.tdx import TsmFs
from attest.formats.snp_certtable import (
    NAME_GUIDS,
    CertTable,
    CertTableEntry,
    serialize_cert_table,
)
from attest.simulate.platform import SIM_NOW
from attest.simulate.snp import SimulatedAmd, der
from attest.simulate.tdx import IntelSimulator

NONCE = bytes(range(32))


def node_key() -> bytes:
    """A fresh P-256 node key (SubjectPublicKeyInfo, DER)."""
    return ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class FakeTsm(TsmFs):
    """configfs-tsm whose entries appear with a provider file (as the kernel makes them)."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.made: list[Path] = []

    def mkdir(self, path: Path) -> None:
        path.mkdir()
        (path / "provider").write_text(self.provider + "\n")
        self.made.append(path)

    def rmdir(self, path: Path) -> None:
        for f in path.iterdir():
            f.unlink()
        path.rmdir()


class FakeTdxKernel(FakeTsm):
    """configfs-tsm for TDX: writing inblob makes outblob a simulated quote over it."""

    def __init__(self) -> None:
        super().__init__("tdx_guest")
        self.intel = IntelSimulator(now=SIM_NOW)

    def mkdir(self, path: Path) -> None:
        super().mkdir(path)
        (path / "generation").write_text("0\n")

    def write(self, path: Path, data: bytes) -> None:
        super().write(path, data)
        if path.name == "inblob":
            (path.parent / "outblob").write_bytes(self.intel.quote(report_data=data).to_bytes())
            (path.parent / "generation").write_text("1\n")


def fake_snp_ioctl(amd: SimulatedAmd) -> Callable[[int, int, ctypes.Structure], int]:
    """An SNP_GET_EXT_REPORT ioctl (SNP guest driver, extended report) answered by ``amd``:
    a version 3 report over the request's user data and the VCEK/ASK/ARK certificate table."""
    table = serialize_cert_table(CertTable(tuple(
        CertTableEntry(NAME_GUIDS[name], der(cert))
        for name, cert in (("VCEK", amd.vcek()), ("ASK", amd.ask), ("ARK", amd.ark)))))

    def ioctl(fd: int, request: int, arg: ctypes.Structure) -> int:
        g = _GuestRequest.from_buffer(arg)
        req = _ExtReportReq.from_address(g.req_data)
        report = amd.sign(replace(amd.report_template(version=3),
                                  report_data=bytes(req.data.user_data)))
        resp = bytearray(0x20) + bytearray(report)
        resp[4:8] = (0x4A0).to_bytes(4, "little")
        ctypes.memmove(g.resp_data, bytes(resp), len(resp))
        ctypes.memmove(req.certs_address, table, len(table))
        req.certs_len = len(table)
        return 0

    return ioctl
