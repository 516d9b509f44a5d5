"""Collect TDX evidence on a node: quotes through configfs-tsm, TD reports via /dev/tdx_guest.

configfs-tsm (Linux Documentation/ABI/testing/configfs-tsm, since 6.7): under
``/sys/kernel/config/tsm/report`` each new directory is one request. Write the 64-byte
REPORTDATA to ``inblob``, read the quote from ``outblob``; ``provider`` names the backend
(``tdx_guest``) and ``generation`` counts writes, so a reader can detect that another
process wrote in between (the kernel serializes, we re-check). The directory is removed
afterwards.

/dev/tdx_guest (Linux include/uapi/linux/tdx-guest.h): ioctl TDX_CMD_GET_REPORT0 =
_IOWR('T', 1, struct tdx_report_req { u8 reportdata[64]; u8 tdreport[1024]; }) returns the
1024-byte TDREPORT_STRUCT (not signed; the quote is what a verifier wants).

The root path, the file operations and the ioctl are parameters, so tests run against a
fake configfs tree and a fake device; without TDX the error says so plainly.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path

from transparency_log.common.errors import FetchError, FormatError

CHECK = "tdx.collect"
TSM_REPORT_ROOT = Path("/sys/kernel/config/tsm/report")
TDX_GUEST_DEVICE = Path("/dev/tdx_guest")
PROVIDER = "tdx_guest"
REPORT_DATA_SIZE = 64
TDREPORT_SIZE = 1024
TDX_CMD_GET_REPORT0 = (3 << 30) | ((REPORT_DATA_SIZE + TDREPORT_SIZE) << 16) | (ord("T") << 8) | 1
MAX_QUOTE_SIZE = 1 << 20


def _no_tdx(what: str, path: Path, err: OSError | None = None) -> FetchError:
    reason = f": {err.strerror}" if err is not None and err.strerror else ""
    return FetchError(CHECK, f"no TDX {what} at {path}{reason} (not a TDX guest, or the "
                      "kernel lacks configfs-tsm / tdx_guest)", field=str(path))


def _check_report_data(report_data: bytes) -> None:
    if len(report_data) != REPORT_DATA_SIZE:
        raise FormatError(CHECK, "REPORTDATA must be 64 bytes", field="REPORTDATA",
                          got=len(report_data), want=REPORT_DATA_SIZE)


class TsmFs:
    """The file operations on configfs-tsm (the real ones); tests substitute a fake kernel."""

    def mkdir(self, path: Path) -> None:
        path.mkdir()

    def rmdir(self, path: Path) -> None:
        path.rmdir()

    def read(self, path: Path) -> bytes:
        return path.read_bytes()

    def write(self, path: Path, data: bytes) -> None:
        path.write_bytes(data)


def _read_int(fs: TsmFs, path: Path) -> int:
    text = fs.read(path).decode("ascii", "replace").strip()
    if not text.isdigit():
        raise FormatError(CHECK, "generation is not a decimal number", field=str(path), got=text)
    return int(text)


def get_quote(report_data: bytes, *, root: Path = TSM_REPORT_ROOT,
              entry_name: str | None = None, fs: TsmFs | None = None) -> bytes:
    """Ask the kernel (configfs-tsm, provider tdx_guest) for a quote over ``report_data``."""
    _check_report_data(report_data)
    fs = fs or TsmFs()
    if not root.is_dir():
        raise _no_tdx("configfs-tsm report directory", root)
    entry = root / (entry_name or f"attestlog-{uuid.uuid4().hex}")
    try:
        fs.mkdir(entry)
    except OSError as err:
        raise _no_tdx("configfs-tsm report entry", entry, err) from None
    try:
        provider = fs.read(entry / "provider").decode("ascii", "replace").strip()
        if provider != PROVIDER:
            raise FetchError(CHECK, "configfs-tsm provider is not TDX", field="provider",
                             got=provider, want=PROVIDER)
        before = _read_int(fs, entry / "generation")
        fs.write(entry / "inblob", report_data)
        quote = fs.read(entry / "outblob")
        after = _read_int(fs, entry / "generation")
        if after != before + 1:
            raise FetchError(CHECK, "configfs-tsm entry was written concurrently",
                             field="generation", got=after, want=before + 1)
        if not quote or len(quote) > MAX_QUOTE_SIZE:
            raise FormatError(CHECK, "quote has an implausible size", field="outblob",
                              got=len(quote), want=f"1..{MAX_QUOTE_SIZE}")
        return quote
    except OSError as err:
        raise FetchError(CHECK, f"configfs-tsm request failed: {err}", field=str(entry)) from None
    finally:
        with contextlib.suppress(OSError):  # best effort: the kernel may hold it briefly
            fs.rmdir(entry)


Ioctl = Callable[[int, int, bytearray], object]


def _os_ioctl(fd: int, request: int, buf: bytearray) -> object:
    import fcntl

    return fcntl.ioctl(fd, request, buf, True)


def get_td_report(report_data: bytes, *, device: Path = TDX_GUEST_DEVICE,
                  ioctl: Ioctl = _os_ioctl) -> bytes:
    """The 1024-byte TDREPORT_STRUCT over ``report_data`` from /dev/tdx_guest."""
    _check_report_data(report_data)
    try:
        fd = os.open(device, os.O_RDWR)
    except OSError as err:
        raise _no_tdx("guest device", device, err) from None
    try:
        buf = bytearray(report_data + bytes(TDREPORT_SIZE))
        ioctl(fd, TDX_CMD_GET_REPORT0, buf)
    except OSError as err:
        raise FetchError(CHECK, f"TDX_CMD_GET_REPORT0 failed: {err}", field=str(device)) from None
    finally:
        os.close(fd)
    return bytes(buf[REPORT_DATA_SIZE:])
