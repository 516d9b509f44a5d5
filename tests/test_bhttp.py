"""Binary HTTP (RFC 9292), known-length: the RFC's examples, strict decoding, padding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attest.formats import bhttp
from attest.formats.bhttp import BinaryRequest, BinaryResponse
from transparency_log.common.errors import FormatError

EX = json.loads((Path(__file__).parent / "vectors" / "rfc" / "rfc9292-examples.json").read_text())
REQ = bytes.fromhex(EX["known_length_request"]["bhttp"])
RESP = bytes.fromhex(EX["known_length_response"]["bhttp"])


def _refused(data: bytes, decode=bhttp.decode_request, field: str | None = None) -> FormatError:
    with pytest.raises(FormatError) as exc:
        decode(data)
    assert exc.value.check == "bhttp.format"
    if field is not None:
        assert exc.value.field == field, str(exc.value)
    return exc.value


def test_rfc9292_request_example() -> None:
    req = bhttp.decode_request(REQ)
    assert req == BinaryRequest(
        b"GET", b"https", b"", b"/hello.txt",
        ((b"user-agent", b"curl/7.16.3 libcurl/7.16.3 OpenSSL/0.9.7l zlib/1.2.3"),
         (b"host", b"www.example.com"), (b"accept-language", b"en, mi")))
    assert bhttp.encode_request(req) == REQ


def test_rfc9292_request_example_truncated() -> None:
    # RFC 9292 §5.1: "the last two bytes ... can each be removed without altering the semantics"
    want = bhttp.decode_request(REQ)
    assert bhttp.decode_request(REQ[:-1]) == want
    assert bhttp.decode_request(REQ[:-2]) == want
    assert bhttp.encode_request(want, truncate=True) == REQ[:-2]


def test_rfc9292_response_example() -> None:
    resp = bhttp.decode_response(RESP)
    assert resp == BinaryResponse(200, (), b"This content contains CRLF.\r\n",
                                  ((b"trailer", b"text"),))
    assert bhttp.encode_response(resp) == RESP


def test_informational_responses_round_trip() -> None:
    resp = BinaryResponse(200, ((b"date", b"x"),), b"hi", (),
                          ((102, ((b"running", b'"sleep 15"'),)), (103, ())))
    assert bhttp.decode_response(bhttp.encode_response(resp)) == resp


def test_every_cut_inside_a_field_is_refused() -> None:
    """Truncation is allowed only before the header-section, content and trailer lengths."""
    allowed = {len(REQ), len(REQ) - 1, len(REQ) - 2}
    control_end = len(bhttp.encode_request(BinaryRequest(b"GET", b"https", b"", b"/hello.txt"),
                                           truncate=True))
    allowed.add(control_end)
    for cut in range(len(REQ)):
        if cut in allowed:
            bhttp.decode_request(REQ[:cut])
        else:
            _refused(REQ[:cut])


def test_padding_zero_accepted_nonzero_refused() -> None:
    assert bhttp.decode_request(REQ + bytes(100)) == bhttp.decode_request(REQ)
    _refused(REQ + b"\x00\x00\x01", field="Padding")
    _refused(RESP + b"trailing", decode=bhttp.decode_response, field="Padding")


def test_length_over_the_cap_is_refused_before_reading() -> None:
    # content length 2^62-1 in an 8-byte varint, followed by a few bytes: refused on the cap,
    # not on the end of the data (nothing of that size is ever allocated)
    msg = bhttp.encode_request(BinaryRequest(b"GET", b"https", b"a", b"/"), truncate=True)
    huge = (0xC000_0000_0000_0000 | bhttp.VARINT_MAX).to_bytes(8, "big")
    err = _refused(msg + b"\x00" + huge + b"abc", field="Content Length")
    assert "cap" in err.message
    err = _refused(msg + huge, field="Header Section Length")
    assert "cap" in err.message
    over = bhttp.MAX_PATH + 1
    err = _refused(b"\x00\x03GET\x05https\x00" + bhttp.encode_varint(over) + b"/" * over,
                   field="Path")
    assert "cap" in err.message


def test_length_past_the_end_is_refused() -> None:
    _refused(b"\x00\x03GET\x05https\x00\x05/a", field="Path")


def test_varint_any_valid_encoding_decodes_shortest_is_written() -> None:
    long_form = b"\x40\x00" + b"\x40\x03GET" + b"\x80\x00\x00\x05https\x00\x01/"
    assert bhttp.decode_request(long_form) == BinaryRequest(b"GET", b"https", b"", b"/")
    for v in (0, 63, 64, 16383, 16384, (1 << 30) - 1, 1 << 30, bhttp.VARINT_MAX):
        enc = bhttp.encode_varint(v)
        assert len(enc) == (1 if v < 64 else 2 if v < 16384 else 4 if v < 1 << 30 else 8)
    with pytest.raises(FormatError):
        bhttp.encode_varint(bhttp.VARINT_MAX + 1)


@pytest.mark.parametrize("framing", [1, 2, 3, 4])
def test_only_known_length_request_framing(framing: int) -> None:
    _refused(bytes([framing]) + REQ[1:], field="Framing Indicator")


def test_response_framing_and_status() -> None:
    _refused(b"\x00\x40\xc8", decode=bhttp.decode_response, field="Framing Indicator")
    _refused(b"\x01\x40\x63", decode=bhttp.decode_response, field="Status Code")  # 99
    _refused(b"\x01\x42\x58", decode=bhttp.decode_response, field="Status Code")  # 600


@pytest.mark.parametrize(("name", "value"), [
    (b"User-Agent", b"x"), (b":path", b"/"), (b"", b"x"), (b"a b", b"x"),
    (b"x", b"a\r\nb"), (b"x", b"a\x00"), (b"x", b" lead"), (b"x", b"trail\t")])
def test_bad_field_lines_refused_both_ways(name: bytes, value: bytes) -> None:
    line = bhttp.encode_varint(len(name)) + name + bhttp.encode_varint(len(value)) + value
    msg = b"\x00\x03GET\x05https\x00\x01/" + bhttp.encode_varint(len(line)) + line
    _refused(msg, field="Header Section")
    with pytest.raises(FormatError):
        bhttp.encode_request(BinaryRequest(b"GET", b"https", b"", b"/", ((name, value),)))


def test_pad_to_bucket_hides_the_length() -> None:
    short = bhttp.encode_request(BinaryRequest(b"POST", b"https", b"n", b"/v1", (), b"hi"))
    longer = bhttp.encode_request(BinaryRequest(b"POST", b"https", b"n", b"/v1", (), b"x" * 150))
    a, b = bhttp.pad_to_bucket(short), bhttp.pad_to_bucket(longer)
    assert len(a) == len(b) == 256
    assert bhttp.decode_request(a).content == b"hi"
    assert bhttp.decode_request(b).content == b"x" * 150
    assert len(bhttp.pad_to_bucket(bytes(257))) == 512
    with pytest.raises(FormatError) as exc:
        bhttp.pad_to_bucket(bytes(1025), buckets=(256, 1024))
    assert exc.value.field == "Padding"


_token = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12).map(str.encode)
_value = st.text("abc xyz/=;,0123456789", max_size=20).map(
    lambda s: s.strip().encode())
_fields = st.lists(st.tuples(_token, _value), max_size=5).map(tuple)


@given(st.builds(BinaryRequest, _token, st.sampled_from([b"https", b"http"]), _token,
                 _token.map(lambda p: b"/" + p), _fields, st.binary(max_size=64), _fields),
       st.booleans())
def test_request_round_trip(req: BinaryRequest, truncate: bool) -> None:
    assert bhttp.decode_request(bhttp.encode_request(req, truncate=truncate)) == req
    assert bhttp.decode_request(bhttp.pad_to_bucket(bhttp.encode_request(req))) == req


@given(st.builds(BinaryResponse, st.integers(200, 599), _fields, st.binary(max_size=64),
                 _fields), st.booleans())
def test_response_round_trip(resp: BinaryResponse, truncate: bool) -> None:
    assert bhttp.decode_response(bhttp.encode_response(resp, truncate=truncate)) == resp
