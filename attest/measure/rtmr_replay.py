"""RTMR0-3 from a TDX event log: the expected RTMR values of a reference boot.

Intel TDX Virtual Firmware Design Guide, section 10 "Event Log": each measured event with MR
index 1..4 extends RTMR0..3 as ``RTMR := SHA384(RTMR || digest)``, starting from 48 zero
bytes. Index 0 (MRTD) is measured by the TDX module, not replayed; EV_NO_ACTION events are
informational and never extended (TCG PC Client PFP 10.4.5).

Used on both sides: ``attest measure tdx --event-log`` derives a release's expected RTMR0-2
from a reference boot, and the verifier replays a node's log against its quote
(``verifier/tdx/rtmr.py``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from attest.formats.ccel import ALG_SHA384, EV_NO_ACTION, Event, EventLog
from transparency_log.common.errors import FormatError

CHECK = "tdx.rtmr.replay"
RTMR_COUNT = 4


@dataclass(frozen=True)
class RtmrReplay:
    rtmrs: tuple[bytes, bytes, bytes, bytes]
    events_per_rtmr: tuple[tuple[Event, ...], ...]  # the extended events, per RTMR


def replay(log: EventLog) -> RtmrReplay:
    """Fold the log's SHA-384 digests into RTMR0..3."""
    values = [bytes(48)] * RTMR_COUNT
    per: list[list[Event]] = [[] for _ in range(RTMR_COUNT)]
    for i, event in enumerate(log.events):
        if event.event_type == EV_NO_ACTION or event.mr_index == 0:
            continue
        if not 1 <= event.mr_index <= RTMR_COUNT:
            raise FormatError(CHECK, "event names no RTMR", field=f"event[{i}].PCRIndex",
                              got=event.mr_index, want="0..4")
        digest = event.digest(ALG_SHA384)
        if digest is None:
            raise FormatError(CHECK, "event has no SHA-384 digest", field=f"event[{i}].Digests")
        r = event.mr_index - 1
        values[r] = hashlib.sha384(values[r] + digest).digest()
        per[r].append(event)
    return RtmrReplay((values[0], values[1], values[2], values[3]),
                      tuple(tuple(p) for p in per))
