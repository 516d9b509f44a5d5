"""A fail-closed reader for decoded JSON objects (house rule 2: decode strictly).

Every value is read by name with its expected type; unknown names are a FormatError naming the
field by its dotted path (``predicate.artifacts[2].sha256``), and so are wrong types, strings
that are not canonical lowercase hex of the right size, and lists over their cap. The reading
itself is the project's one strict mapping reader (transparency_log/common/strict_mapping.py,
JSON style); this module adds the value checks JSON release documents need.
"""

from __future__ import annotations

import re
from typing import Any

from transparency_log.common.errors import FormatError
from transparency_log.common.strict_mapping import JSON, StrictMapping

__all__ = ["Fields", "as_list", "as_object", "hex_bytes"]

_HEX = re.compile(r"[0-9a-f]*")


def _kind(value: Any) -> str:
    return JSON.kind(type(value))


def as_object(value: Any, path: str, check: str) -> Fields:
    """``value`` read as a JSON object (FormatError ``check`` if it is not one)."""
    return Fields(value, path, check)


def as_list(value: Any, path: str, check: str, *, max_items: int, min_items: int = 0) -> list:
    if not isinstance(value, list):
        raise FormatError(check, "wrong type", field=path, got=_kind(value), want="array")
    if not min_items <= len(value) <= max_items:
        raise FormatError(check, "wrong number of items", field=path, got=len(value),
                          want=f"{min_items}..{max_items}")
    return value


def hex_bytes(value: Any, path: str, check: str, *, size: int) -> bytes:
    """Lowercase hex of exactly ``size`` bytes (no prefix, no upper case: canonical)."""
    if not isinstance(value, str):
        raise FormatError(check, "wrong type", field=path, got=_kind(value), want="hex string")
    if len(value) != 2 * size or not _HEX.fullmatch(value):
        raise FormatError(check, "not lowercase hex of the right size", field=path,
                          got=value[:200], want=f"{2 * size} lowercase hex digits")
    return bytes.fromhex(value)


class Fields(StrictMapping):
    """Reads the members of one JSON object; :meth:`finish` refuses the ones not read."""

    def __init__(self, obj: Any, path: str, check: str) -> None:
        super().__init__(obj, path, error=FormatError, check=check, style=JSON)

    def string(self, key: str, *, max_len: int = 1024, pattern: re.Pattern[str] | None = None,
               choices: tuple[str, ...] | None = None) -> str:
        value = self.get(key, str)
        if not 0 < len(value) <= max_len:
            raise FormatError(self.check, "string length out of range", field=self.sub(key),
                              got=len(value), want=f"1..{max_len}")
        if choices is not None and value not in choices:
            raise FormatError(self.check, "unknown value", field=self.sub(key), got=value,
                              want=" | ".join(choices))
        if pattern is not None and not pattern.fullmatch(value):
            raise FormatError(self.check, "malformed value", field=self.sub(key), got=value,
                              want=pattern.pattern)
        return value

    def integer(self, key: str, *, lo: int, hi: int) -> int:
        value = self.get(key, int)
        if not lo <= value <= hi:
            raise FormatError(self.check, "integer out of range", field=self.sub(key),
                              got=value, want=f"{lo}..{hi}")
        return value

    def hex(self, key: str, *, size: int) -> bytes:
        return hex_bytes(self.raw(key), self.sub(key), self.check, size=size)

    def object(self, key: str) -> Fields:
        return self.nested(self.raw(key), self.sub(key))

    def list(self, key: str, *, max_items: int, min_items: int = 0) -> list:
        return as_list(self.raw(key), self.sub(key), self.check, max_items=max_items,
                       min_items=min_items)
