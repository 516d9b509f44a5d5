"""Readers for the RFC test-vector texts in tests/vectors/rfc/privacypass/ (MANIFEST.md there).

The RFC appendices wrap long hex values over several lines; a line that does not start a new
``name = value`` / ``name: value`` pair continues the value before it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

RFC_DIR = Path(__file__).resolve().parents[1] / "vectors" / "rfc" / "privacypass"

_PAIR = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)\s*(=|:)\s*(.*)$")


def _pairs(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    last = None
    for line in lines:
        text = line.strip()
        if not text or text.startswith("//"):
            continue
        m = _PAIR.match(text)
        if m:
            last = m.group(1)
            out[last] = m.group(3).strip()
        elif last is not None:
            out[last] += text
    return out


def rfc9474_vectors() -> dict[str, dict[str, bytes]]:
    """RFC 9474 Appendix A: variant name -> {p, q, n, e, d, msg, msg_prefix, ...} as bytes."""
    text = (RFC_DIR / "rfc9474-appendix-a.txt").read_text()
    out: dict[str, dict[str, bytes]] = {}
    for chunk in text.split("# ")[1:]:
        name, _, body = chunk.partition("\n")
        out[name.strip()] = {k: bytes.fromhex(v) for k, v in _pairs(body.splitlines()).items()}
    return out


def rfc9578_type2_vectors() -> list[dict[str, bytes]]:
    """RFC 9578 Appendix A.2 (token type 0x0002): five vectors, values as bytes."""
    text = (RFC_DIR / "rfc9578-appendix-a2.txt").read_text()
    chunks = re.split(r"^// Test vector \d+\s*$", text, flags=re.M)[1:]
    return [{k: bytes.fromhex(v) for k, v in _pairs(c.splitlines()).items()} for c in chunks]


def rfc9577_structure_vectors() -> list[dict[str, bytes]]:
    """RFC 9577 Appendix A.1: challenge and redemption structures, values as bytes."""
    text = (RFC_DIR / "rfc9577-appendix-a1.txt").read_text()
    chunks = re.split(r"^// Test vector \d+:\s*$", text, flags=re.M)[1:]
    return [{k: bytes.fromhex(v) for k, v in _pairs(c.splitlines()).items()} for c in chunks]


def rfc9577_header_vectors() -> list[tuple[dict[str, str], str]]:
    """RFC 9577 Appendix A.2: (per-challenge parameters, the WWW-Authenticate value).

    The RFC folds the header over lines only to fit the page ("not supported in actual
    requests"): a folded line joins the previous one with nothing between them.
    """
    text = (RFC_DIR / "rfc9577-appendix-a2.txt").read_text()
    out: list[tuple[dict[str, str], str]] = []
    for block in re.split(r"\n\s*\n(?=token-type-0)", text.strip()):
        params_text, _, header_text = block.partition("WWW-Authenticate:")
        header = "".join(line.rstrip("\n") for line in header_text.strip().splitlines())
        out.append((_pairs(params_text.splitlines()), header))
    return out


def scripted(*chunks: bytes) -> Callable[[int], bytes]:
    """An rng that returns the given byte strings in order (each of the size asked for)."""
    queue = list(chunks)

    def rng(n: int) -> bytes:
        out = queue.pop(0)
        assert len(out) == n, (n, len(out))
        return out

    return rng
