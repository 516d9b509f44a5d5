"""CCEL ACPI table, TCG2 crypto-agile event log, and RTMR replay against the GCP quote."""

from __future__ import annotations

from dataclasses import replace

import pytest

from attest.formats.ccel import (
    ALG_SHA384,
    CC_TYPE_TDX,
    EV_NO_ACTION,
    Event,
    parse_ccel_table,
    parse_event_log,
)
from attest.formats.tdx_quote import parse_quote
from tests.support.tdx_support import GCP, read
from transparency_log.common.errors import FormatError, VerificationError
from verifier.tdx.rtmr import check_rtmrs, replay


def test_ccel_table() -> None:
    raw = read("ccel_ccel_table.dat")
    table = parse_ccel_table(raw)
    assert table.cc_type == CC_TYPE_TDX
    assert table.log_area_minimum_length == 0x40000
    assert table.log_area_start_address == 0xBEDBF000
    assert table.to_bytes() == raw


def test_ccel_table_strictness() -> None:
    raw = read("ccel_ccel_table.dat")
    with pytest.raises(FormatError, match="checksum"):
        parse_ccel_table(raw[:20] + bytes([raw[20] ^ 1]) + raw[21:])
    with pytest.raises(FormatError, match="not a CCEL"):
        parse_ccel_table(b"XCEL" + raw[4:])
    with pytest.raises(FormatError):
        parse_ccel_table(raw[:-1])


def test_event_log_parses_and_round_trips() -> None:
    raw = read("ccel_ccel_data.dat")
    log = parse_event_log(raw)
    assert len(log.events) == 43
    assert log.spec_id.algorithms == ((ALG_SHA384, 48),)
    assert set(log.padding) == {0xFF}
    assert log.to_bytes() == raw
    assert log.events[0].type_name.startswith("EV_") or log.events[0].type_name.startswith("0x")


def test_ccel_replay_matches_rtmr0_to_2_of_the_gcp_quote() -> None:
    """Test of record: the replay equals RTMR0, RTMR1 and RTMR2 of the quote exactly."""
    log = parse_event_log(read("ccel_ccel_data.dat"))
    body = parse_quote(read(GCP)).body
    result = check_rtmrs(log, body)
    assert result.rtmrs[:3] == (body.rtmr0, body.rtmr1, body.rtmr2)
    assert result.rtmrs[3] == body.rtmr3 == bytes(48)
    assert [len(e) for e in result.events_per_rtmr] == [16, 7, 20, 0]


def test_a_changed_event_breaks_the_replay() -> None:
    log = parse_event_log(read("ccel_ccel_data.dat"))
    body = parse_quote(read(GCP)).body
    i = next(i for i, e in enumerate(log.events) if e.mr_index == 2)
    ev = log.events[i]
    forged = replace(ev, digests=((ALG_SHA384, bytes(48)),))
    events = (*log.events[:i], forged, *log.events[i + 1:])
    with pytest.raises(VerificationError) as err:
        check_rtmrs(replace(log, events=events), body)
    assert err.value.check == "tdx.rtmr.replay" and err.value.field == "RTMR1"


def test_no_action_events_are_not_extended() -> None:
    log = parse_event_log(read("ccel_ccel_data.dat"))
    extra = Event(1, EV_NO_ACTION, ((ALG_SHA384, b"\x11" * 48),), b"note")
    assert replay(replace(log, events=(*log.events, extra))).rtmrs == replay(log).rtmrs


def test_event_log_strictness() -> None:
    raw = read("ccel_ccel_data.dat")
    with pytest.raises(FormatError, match="crypto-agile"):
        parse_event_log(raw[:32] + b"Spec ID Event02\x00" + raw[48:])
    log = parse_event_log(raw)
    body = log.to_bytes()[: len(raw) - len(log.padding)]
    with pytest.raises(FormatError):
        parse_event_log(body[:-5])  # truncated last event


def test_attest_measure_tdx_event_log_gives_the_quotes_rtmrs(tmp_path) -> None:
    """`attest measure tdx --event-log` derives a release's RTMR0-2 from a reference boot:
    on the real GCP capture they equal the quote's RTMR0-2."""
    from click.testing import CliRunner

    from attest.cli import main

    log = tmp_path / "ccel.bin"
    log.write_bytes(read("ccel_ccel_data.dat"))
    body = parse_quote(read(GCP)).body
    res = CliRunner().invoke(main, ["measure", "tdx", "--event-log", str(log)])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == ":".join(r.hex() for r in (body.rtmr0, body.rtmr1, body.rtmr2))
    res = CliRunner().invoke(main, ["measure", "tdx"])
    assert res.exit_code == 64 and "--event-log" in res.output
