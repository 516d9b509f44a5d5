"""Comparison of a replayed CCEL event log with a TD quote's RTMRs.

The replay itself (TDX Virtual Firmware Design Guide, section 10) lives in
``attest/measure/rtmr_replay.py``, shared with ``attest measure tdx --event-log``.
"""

from __future__ import annotations

from attest.formats.ccel import EventLog
from attest.formats.tdx_quote import TdReportBody
from attest.measure.rtmr_replay import CHECK, RTMR_COUNT, RtmrReplay, replay
from transparency_log.common.errors import VerificationError

__all__ = ["CHECK", "RTMR_COUNT", "RtmrReplay", "check_rtmrs", "replay"]


def check_rtmrs(log: EventLog, body: TdReportBody, *, registers: tuple[int, ...] = (0, 1, 2)
                ) -> RtmrReplay:
    """Replay ``log`` and require the named RTMRs to equal the quote's; returns the replay.

    RTMR3 is left out by default: it is extended at run time by the guest OS and is not
    covered by the firmware log.
    """
    result = replay(log)
    for r in registers:
        got = result.rtmrs[r]
        want = body.rtmrs[r]
        if got != want:
            raise VerificationError(CHECK, "event log replay does not match the quote",
                                    field=f"RTMR{r}", got=got, want=want)
    return result
