"""A fail-closed reader for decoded JSON objects (house rule 2: decode strictly).

Every value is read by name with its expected type; unknown names are a FormatError naming the
field by its dotted path (``predicate.artifacts[2].sha256``), and so are wrong types, strings
that are not canonical lowercase hex of the right size, and lists over their cap.
"""

from __future__ import annotations

import re
from typing import Any

from transparency_log.common.errors import FormatError

__all__ = ["Fields", "as_list", "as_object", "hex_bytes"]

_HEX = re.compile(r"[0-9a-f]*")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def as_object(value: Any, path: str, check: str) -> Fields:
    if not isinstance(value, dict):
        raise FormatError(check, "wrong type", field=path, got=_kind(value), want="object")
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


class Fields:
    """Reads the members of one JSON object; :meth:`finish` refuses the ones not read."""

    def __init__(self, obj: dict[str, Any], path: str, check: str) -> None:
        self.obj = obj
        self.path = path
        self.check = check
        self.seen: set[str] = set()

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.obj

    def raw(self, key: str) -> Any:
        if key not in self.obj:
            raise FormatError(self.check, "missing field", field=self.sub(key))
        self.seen.add(key)
        return self.obj[key]

    def string(self, key: str, *, max_len: int = 1024, pattern: re.Pattern[str] | None = None,
               choices: tuple[str, ...] | None = None) -> str:
        value = self.raw(key)
        if not isinstance(value, str):
            raise FormatError(self.check, "wrong type", field=self.sub(key), got=_kind(value),
                              want="string")
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
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise FormatError(self.check, "wrong type", field=self.sub(key), got=_kind(value),
                              want="integer")
        if not lo <= value <= hi:
            raise FormatError(self.check, "integer out of range", field=self.sub(key),
                              got=value, want=f"{lo}..{hi}")
        return value

    def hex(self, key: str, *, size: int) -> bytes:
        return hex_bytes(self.raw(key), self.sub(key), self.check, size=size)

    def object(self, key: str) -> Fields:
        return as_object(self.raw(key), self.sub(key), self.check)

    def list(self, key: str, *, max_items: int, min_items: int = 0) -> list:
        return as_list(self.raw(key), self.sub(key), self.check, max_items=max_items,
                       min_items=min_items)

    def finish(self) -> None:
        extra = sorted(set(self.obj) - self.seen)
        if extra:
            raise FormatError(self.check, "unknown field", field=self.sub(extra[0]),
                              got=", ".join(extra))
