"""Collecting an SEV-SNP report inside the guest, with the caller's 64-byte REPORT_DATA.

1. configfs-tsm (Linux ``Documentation/ABI/testing/configfs-tsm``): make a directory under
   ``/sys/kernel/config/tsm/report``, check ``provider`` is ``sev_guest``, write ``inblob``
   (and ``privlevel``), read ``generation``, ``outblob`` (the report), ``auxblob`` (the
   certificate table), and ``generation`` again: a change means another writer raced us.
2. Fallback: ``/dev/sev-guest`` ioctl SNP_GET_EXT_REPORT (``include/uapi/linux/sev-guest.h``),
   retried once with the size the host asks for when the certificate buffer is too small.

Paths and the ioctl are parameters, so tests run against a fake configfs tree and a fake
device. No SNP device at all is a FetchError naming both places looked at.
"""

from __future__ import annotations

import ctypes
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from attest.formats.snp_report import REPORT_DATA_SIZE, REPORT_SIZE, parse_report
from transparency_log.common.errors import FetchError, VerificationError

TSM_ROOT = Path("/sys/kernel/config/tsm/report")
SEV_GUEST_DEVICE = Path("/dev/sev-guest")
CHECK = "snp.collect"
_names = itertools.count()


@dataclass(frozen=True)
class SnpEvidence:
    """A raw report and the raw certificate table the host supplied (may be empty)."""

    report: bytes
    cert_table: bytes
    source: str  # "configfs-tsm" | "sev-guest"


def _check_report_data(report: bytes, report_data: bytes) -> None:
    rep = parse_report(report[:REPORT_SIZE])
    if rep.report_data != report_data:
        raise VerificationError(f"{CHECK}.report_data", "device returned another REPORT_DATA",
                                field="REPORT_DATA", got=rep.report_data, want=report_data)


def collect_configfs(report_data: bytes, *, root: Path = TSM_ROOT, vmpl: int | None = None,
                     make_entry: Callable[[Path], None] = os.mkdir,
                     remove_entry: Callable[[Path], None] = os.rmdir) -> SnpEvidence:
    """One report through configfs-tsm; ``make_entry``/``remove_entry`` are the kernel's
    mkdir/rmdir (a fake tree in tests creates the attribute files itself)."""
    entry = root / f"attestlog-{os.getpid()}-{next(_names)}"
    make_entry(entry)
    try:
        provider = (entry / "provider").read_text().strip()
        if provider != "sev_guest":
            raise FetchError(f"{CHECK}.provider", "configfs-tsm provider is not sev_guest",
                             field="provider", got=provider, want="sev_guest")
        if vmpl is not None:
            (entry / "privlevel").write_text(f"{vmpl}\n")
        (entry / "inblob").write_bytes(report_data)
        before = (entry / "generation").read_text().strip()
        report = (entry / "outblob").read_bytes()
        aux = entry / "auxblob"
        certs = aux.read_bytes() if aux.exists() else b""
        after = (entry / "generation").read_text().strip()
        if before != after:
            raise FetchError(f"{CHECK}.generation", "report request changed while reading "
                             "(another writer)", field="generation", got=after, want=before)
    finally:
        remove_entry(entry)
    _check_report_data(report, report_data)
    return SnpEvidence(report, certs, "configfs-tsm")


# --- /dev/sev-guest (include/uapi/linux/sev-guest.h) ---------------------------------------

class _ReportReq(ctypes.Structure):
    _fields_ = [("user_data", ctypes.c_uint8 * 64), ("vmpl", ctypes.c_uint32),
                ("rsvd", ctypes.c_uint8 * 28)]


class _ExtReportReq(ctypes.Structure):
    _fields_ = [("data", _ReportReq), ("certs_address", ctypes.c_uint64),
                ("certs_len", ctypes.c_uint32)]


class _GuestRequest(ctypes.Structure):
    _fields_ = [("msg_version", ctypes.c_uint8), ("req_data", ctypes.c_uint64),
                ("resp_data", ctypes.c_uint64), ("exitinfo2", ctypes.c_uint64)]


SNP_GET_EXT_REPORT = (3 << 30) | (ctypes.sizeof(_GuestRequest) << 16) | (ord("S") << 8) | 0x2
RESP_SIZE = 4000  # struct snp_report_resp
MSG_REPORT_RSP_HEADER = 0x20  # status, report_size, reserved; then the report
SNP_GUEST_VMM_ERR_INVALID_LEN = 1
Ioctl = Callable[[int, int, ctypes.Structure], object]


def collect_ioctl(report_data: bytes, *, device: Path = SEV_GUEST_DEVICE, vmpl: int = 0,
                  ioctl: Ioctl | None = None, certs_size: int = 4 * 4096) -> SnpEvidence:
    """One report through ``/dev/sev-guest`` SNP_GET_EXT_REPORT."""
    if ioctl is None:
        import fcntl

        def ioctl(fd: int, request: int, arg: ctypes.Structure) -> object:
            return fcntl.ioctl(fd, request, arg, True)  # type: ignore[call-overload]

    fd = os.open(device, os.O_RDWR)
    try:
        for _ in range(2):
            certs = ctypes.create_string_buffer(certs_size)
            resp = ctypes.create_string_buffer(RESP_SIZE)
            req = _ExtReportReq()
            ctypes.memmove(req.data.user_data, report_data, REPORT_DATA_SIZE)
            req.data.vmpl = vmpl
            req.certs_address = ctypes.addressof(certs)
            req.certs_len = certs_size
            guest = _GuestRequest(msg_version=1, req_data=ctypes.addressof(req),
                                  resp_data=ctypes.addressof(resp))
            try:
                ioctl(fd, SNP_GET_EXT_REPORT, guest)
            except OSError as err:
                if (guest.exitinfo2 >> 32) == SNP_GUEST_VMM_ERR_INVALID_LEN \
                        and req.certs_len > certs_size:
                    certs_size = req.certs_len
                    continue
                raise FetchError(f"{CHECK}.ioctl", f"SNP_GET_EXT_REPORT failed: {err}",
                                 field="exitinfo2", got=hex(guest.exitinfo2)) from None
            raw = resp.raw
            status = int.from_bytes(raw[0:4], "little")
            size = int.from_bytes(raw[4:8], "little")
            if status != 0 or size != REPORT_SIZE:
                raise FetchError(f"{CHECK}.ioctl", "firmware refused the report request",
                                 field="MSG_REPORT_RSP.STATUS", got=f"{status}/{size}",
                                 want=f"0/{REPORT_SIZE}")
            report = raw[MSG_REPORT_RSP_HEADER:MSG_REPORT_RSP_HEADER + REPORT_SIZE]
            _check_report_data(report, report_data)
            return SnpEvidence(report, certs.raw[:req.certs_len], "sev-guest")
        raise FetchError(f"{CHECK}.ioctl", "certificate buffer size kept changing",
                         field="certs_len", got=certs_size)
    finally:
        os.close(fd)


def collect_snp_report(report_data: bytes, *, tsm_root: Path = TSM_ROOT,
                       device: Path = SEV_GUEST_DEVICE, vmpl: int | None = None,
                       ioctl: Ioctl | None = None,
                       make_entry: Callable[[Path], None] = os.mkdir,
                       remove_entry: Callable[[Path], None] = os.rmdir) -> SnpEvidence:
    """configfs-tsm when present, else /dev/sev-guest; FetchError when there is neither."""
    if len(report_data) != REPORT_DATA_SIZE:
        raise ValueError(f"REPORT_DATA must be {REPORT_DATA_SIZE} bytes, got {len(report_data)}")
    if tsm_root.is_dir():
        return collect_configfs(report_data, root=tsm_root, vmpl=vmpl, make_entry=make_entry,
                                remove_entry=remove_entry)
    if device.exists():
        try:
            return collect_ioctl(report_data, device=device, vmpl=vmpl or 0, ioctl=ioctl)
        except PermissionError as err:
            raise FetchError(f"{CHECK}.device", f"cannot open {device}: {err}",
                             field=str(device)) from None
    raise FetchError(f"{CHECK}.device", "no SEV-SNP guest device: not an SNP guest, or the "
                     "sev-guest driver is not loaded", field="device",
                     got=f"neither {tsm_root} nor {device}", want="configfs-tsm or /dev/sev-guest")

