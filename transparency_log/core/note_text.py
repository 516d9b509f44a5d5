"""Strict text helpers of c2sp.org/signed-note: canonical base64, note characters, key names.

Split out of :mod:`transparency_log.core.note` (which re-exports them). Each has a fast path
in C for what is accepted and keeps the old path for what is refused, so the errors (check
ids, fields, offsets) are those of the plain implementation (issue 15: a checkpoint note is
parsed in a few microseconds).
"""

from __future__ import annotations

import base64
import binascii
import re

from transparency_log.common.errors import FormatError

__all__ = ["b64decode_canonical", "check_note_chars"]

_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")  # ASCII controls except newline
_CONTROL_BYTES = bytes(range(0x0A)) + bytes(range(0x0B, 0x20))  # the same, as bytes


def b64decode_canonical(text: str, check: str, field_name: str) -> bytes:
    """Decode standard padded base64 (RFC 4648 §4), refusing any non-canonical spelling."""
    if type(text) is str and (raw := _b64decode_fast(text)) is not None:
        return raw
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise FormatError(check, f"invalid base64: {err}", field=field_name, got=text) from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise FormatError(check, "non-canonical base64", field=field_name, got=text)
    return raw


def _b64decode_fast(text: str) -> bytes | None:
    """The bytes of ``text`` when it is canonical padded base64, else None (the caller then
    calls :func:`b64decode_canonical` for the precise error). Canonical means it equals the
    encoding of what it decodes to, so the lenient C decoder suffices here."""
    try:
        raw = binascii.a2b_base64(text)
    except (binascii.Error, ValueError):
        return None
    if binascii.b2a_base64(raw, newline=False) != text.encode("utf-8", "replace"):
        return None
    return raw


def _b64decode_bytes(data: bytes) -> bytes | None:
    """:func:`_b64decode_fast` of ASCII bytes: the decoded bytes when ``data`` is canonical
    padded base64, else None (the caller then decodes it with :func:`b64decode_canonical`
    for the precise error)."""
    try:
        raw = binascii.a2b_base64(data)
    except binascii.Error:
        return None
    return raw if binascii.b2a_base64(raw, newline=False) == data else None


def _is_valid_name(name: str) -> bool:
    # str.split() splits at exactly the characters str.isspace() accepts (what \s matches)
    return "+" not in name and name.split() == [name]


def check_note_chars(data: bytes, check: str, what: str) -> str:
    """Valid UTF-8 and no ASCII control character but newline (signed-note §"Format").

    The control check deletes those bytes with :meth:`bytes.translate` and compares lengths
    (C, a few times faster than a regex scan); only a refused text is searched for the
    offender, so the error names it as before."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FormatError(check, f"{what} is not valid UTF-8", field=what,
                          got=f"byte offset {err.start}") from None
    if len(data.translate(None, _CONTROL_BYTES)) == len(data):
        return text
    bad = _CONTROL.search(text)
    if bad is not None:
        raise FormatError(check, f"{what} contains a control character", field=what,
                          got=f"U+{ord(bad.group()):04X} at character {bad.start()}")
    return text
