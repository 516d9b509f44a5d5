"""Parse once (issue 15): a TDX quote is parsed once per exact bytes and its signed span is
the exact slice of those bytes; neither may let a changed quote pass its signature check."""

from __future__ import annotations

from dataclasses import replace

import pytest

from attest.formats.tdx_quote import parse_quote
from tests.support.tdx_support import SIM_NOW, sim, sim_root
from transparency_log.common.errors import SignatureError
from verifier.tdx.quote_verify import verify_quote
from verifier.transcript import Transcript


def test_parsed_quote_is_reused_and_signs_its_exact_bytes() -> None:
    raw = sim().quote(version=5).to_bytes()
    q = parse_quote(raw)
    assert parse_quote(bytearray(raw)) is q  # the same bytes: the same immutable object
    assert q.signed_bytes == raw[:len(q.signed_bytes)]
    assert q.signed_bytes == replace(q).signed_bytes  # serialized == sliced


def test_a_replaced_body_does_not_inherit_the_parsed_signed_span() -> None:
    s = sim()
    q = parse_quote(s.quote().to_bytes())
    verify_quote(q, roots=[sim_root(s)], at=SIM_NOW)  # authentic as parsed
    forged = replace(q, body=replace(q.body, mrtd=bytes(48)))
    assert forged.signed_bytes != q.signed_bytes
    t = Transcript()
    with pytest.raises(SignatureError) as err:
        verify_quote(forged, roots=[sim_root(s)], at=SIM_NOW, transcript=t)
    assert err.value.check == "tdx.quote.signature"
    assert [step.check for step in t.steps][-1] == "tdx.qe.report_data"
