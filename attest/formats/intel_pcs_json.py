"""The signed envelope of an Intel PCS JSON response, split strictly (Intel PCS API v4: "Get
TDX TCB Info", "Get TD QE Identity"): ``{"<member>": {...}, "signature": "<hex r||s>"}``.
The signature is over the **exact JSON text** of the member, so :func:`split_signed_json`
returns those bytes as they appear in the response, with the decoded member and the
signature. Pure (house rule 1); strict (house rule 2): duplicate keys, non-standard
constants, other top-level members and a malformed signature are refused. The members are
read by attest/formats/intel_pcs.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

from transparency_log.common.errors import FormatError

MAX_COLLATERAL_BYTES = 1 << 20
HEX_RE = re.compile(r"^[0-9a-fA-F]*$")


def _no_dups(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):  # a key repeated: name the first repeat
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise ValueError(f"duplicate key {k!r}")
            seen.add(k)
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_dups, parse_constant=_reject_constant)


def split_signed_json(body: bytes, member: str, *, check: str) -> tuple[bytes, Any, bytes]:
    """Split ``{"<member>": {...}, "signature": "<hex>"}`` into (exact member text, member
    value, signature bytes). Only these two keys are allowed, each once."""
    if len(body) > MAX_COLLATERAL_BYTES:
        raise FormatError(check, "collateral too large", field=member, got=len(body),
                          want=f"<= {MAX_COLLATERAL_BYTES}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(check, "collateral is not UTF-8", field=member) from None
    ws = " \t\r\n"
    spans: dict[str, tuple[int, int, Any]] = {}
    try:
        i = len(text) - len(text.lstrip(ws))
        if text[i:i + 1] != "{":
            raise ValueError("not a JSON object")
        i += 1
        while True:
            while text[i] in ws:
                i += 1
            if text[i] == "}" and not spans:
                raise ValueError("empty object")
            key, i = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
            while text[i] in ws:
                i += 1
            if text[i] != ":":
                raise ValueError("expected ':'")
            i += 1
            while text[i] in ws:
                i += 1
            value, end = _DECODER.raw_decode(text, i)
            if key in spans:
                raise ValueError(f"duplicate key {key!r}")
            spans[key] = (i, end, value)
            i = end
            while text[i] in ws:
                i += 1
            if text[i] == "}":
                i += 1
                break
            if text[i] != ",":
                raise ValueError("expected ',' or '}'")
            i += 1
        if text[i:].strip(ws):
            raise ValueError("trailing data after the JSON object")
    except (ValueError, IndexError, RecursionError) as err:
        raise FormatError(check, f"collateral is not valid JSON: {err}", field=member) from None
    if set(spans) != {member, "signature"}:
        raise FormatError(check, "unexpected top-level keys", field=member,
                          got=",".join(sorted(spans)), want=f"{member},signature")
    start, end, value = spans[member]
    sig_hex = spans["signature"][2]
    if not isinstance(sig_hex, str) or len(sig_hex) != 128 or not HEX_RE.match(sig_hex):
        raise FormatError(check, "signature is not 64 bytes of hex", field="signature")
    return text[start:end].encode("utf-8"), value, bytes.fromhex(sig_hex)
