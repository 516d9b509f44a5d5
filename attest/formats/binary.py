"""Strict little helpers for fixed-layout binary formats (house rule 2: decode strictly).

Offsets are passed as the spec writes them (hex), sizes are exact, reserved ranges must be
zero, and every failure is a FormatError naming the check and the field.
"""

from __future__ import annotations

from transparency_log.common.errors import FormatError


def require_size(data: bytes, size: int, *, check: str, field: str) -> None:
    """Fail unless ``len(data) == size``."""
    if len(data) != size:
        raise FormatError(check, "wrong size", field=field, got=len(data), want=size)


def require_min_size(data: bytes, size: int, *, check: str, field: str) -> None:
    """Fail unless ``len(data) >= size``."""
    if len(data) < size:
        raise FormatError(check, "too short", field=field, got=len(data), want=f">= {size}")


def mbz(data: bytes, lo: int, hi: int, *, check: str, field: str) -> None:
    """Fail unless ``data[lo:hi]`` is all zero ("must be zero" reserved range)."""
    chunk = data[lo:hi]
    if len(chunk) != hi - lo:
        raise FormatError(check, f"range [0x{lo:x}:0x{hi:x}] out of bounds", field=field)
    if any(chunk):
        raise FormatError(
            check,
            f"reserved range [0x{lo:x}:0x{hi:x}] not all zero",
            field=field,
            got=chunk,
            want=bytes(hi - lo),
        )


def u16le(data: bytes, off: int) -> int:
    return int.from_bytes(data[off : off + 2], "little")


def u32le(data: bytes, off: int) -> int:
    return int.from_bytes(data[off : off + 4], "little")


def u64le(data: bytes, off: int) -> int:
    return int.from_bytes(data[off : off + 8], "little")


class Reader:
    """A cursor over bytes for variable-layout formats; never reads past the end silently."""

    def __init__(self, data: bytes, *, check: str) -> None:
        self.data = bytes(data)
        self.pos = 0
        self.check = check

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, field: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise FormatError(
                self.check,
                f"truncated at offset 0x{self.pos:x}",
                field=field,
                got=self.remaining,
                want=n,
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int, field: str, *, order: str = "little") -> int:
        return int.from_bytes(self.take(n, field), order)  # type: ignore[arg-type]

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out
