"""Hostile input to the TDX parsers: truncations and random mutations give a FormatError or a
value, never another exception (house rule 2: decode strictly)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from attest.formats.ccel import parse_ccel_table, parse_event_log
from attest.formats.intel_pcs import parse_tcb_info, split_signed_json
from attest.formats.sgx_pck_extensions import parse_sgx_extensions
from attest.formats.tdx_quote import parse_quote
from tests.support.tdx_support import SPR_E4, V5, read
from transparency_log.common.errors import FormatError

QUOTE_V4 = read(SPR_E4)
QUOTE_V5 = read(V5)
LOG = read("ccel_ccel_data.dat")[:20000]
TCB = read("sample_tcbinfo_response_v5")


def _parses_or_format_error(fn, data: bytes) -> None:  # type: ignore[no-untyped-def]
    try:
        fn(data)
    except FormatError:
        pass


def test_every_truncation_of_a_quote_is_a_format_error() -> None:
    end = len(QUOTE_V4) - 39  # the 39 trailing bytes are not part of the quote
    for n in range(0, end, 7):
        try:
            parse_quote(QUOTE_V4[:n])
        except FormatError:
            continue
        raise AssertionError(f"truncation to {n} bytes parsed")


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(QUOTE_V5) - 1), st.integers(0, 255), st.booleans())
def test_mutated_quotes(pos: int, value: int, v4: bool) -> None:
    raw = bytearray(QUOTE_V4 if v4 else QUOTE_V5)
    raw[pos % len(raw)] = value
    _parses_or_format_error(parse_quote, bytes(raw))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_everywhere(data: bytes) -> None:
    for fn in (parse_quote, parse_sgx_extensions, parse_ccel_table, parse_event_log):
        _parses_or_format_error(fn, data)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(LOG) - 1), st.integers(0, 255))
def test_mutated_event_logs(pos: int, value: int) -> None:
    raw = bytearray(LOG)
    raw[pos] = value
    _parses_or_format_error(parse_event_log, bytes(raw))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(TCB) - 1), st.sampled_from(list(b'{}[]":,0aZ \\')))
def test_mutated_collateral_json(pos: int, value: int) -> None:
    raw = bytearray(TCB)
    raw[pos] = value

    def parse(data: bytes) -> None:
        _, member, _ = split_signed_json(data, "tcbInfo", check="tdx.tcb_info.format")
        parse_tcb_info(member)

    _parses_or_format_error(parse, bytes(raw))


def test_deeply_nested_json_is_a_format_error() -> None:
    body = b'{"tcbInfo":' + b"[" * 100_000 + b"]" * 100_000 + b',"signature":"00"}'
    try:
        split_signed_json(body, "tcbInfo", check="t")
    except FormatError:
        return
    raise AssertionError("parsed")
