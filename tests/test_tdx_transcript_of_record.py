"""Issue 15: making TDX verification faster skips no check. The real vectors' transcripts,
cold (fresh caches, parse memos forgotten), warm (the same caches again) and uncached, equal
the transcripts recorded before the speed-up (tests/assets/tdx/transcripts_of_record.json):
the same steps, check ids, results, details and inputs; only ``source=cache`` may be added."""

from __future__ import annotations

import json
from typing import Any

import pytest

from attest.certificates import clear_parse_memos
from tests.support.tdx_transcripts import (
    EVIDENCE_CASES,
    RECORD,
    STAGE_CASE,
    evidence_run,
    stage_run,
    steps,
)
from verifier.pipeline_trust import VerifierCaches
from verifier.transcript import Transcript
from verifier.verified_cache import CACHE_SOURCE, VendorCaches


def _record() -> dict[str, list[dict[str, Any]]]:
    return json.loads(RECORD.read_text())  # type: ignore[no-any-return]


def _only_cache_sources(t: Transcript) -> None:
    assert {s.inputs["source"] for s in t.steps if "source" in s.inputs} <= {CACHE_SOURCE}


@pytest.mark.parametrize("case", sorted(EVIDENCE_CASES))
def test_evidence_transcripts_equal_the_record_cold_warm_and_uncached(case: str) -> None:
    want = _record()[case]
    clear_parse_memos()
    cache = VendorCaches()
    cold = evidence_run(case, cache)
    warm = evidence_run(case, cache)
    for t in (cold, warm, evidence_run(case, None)):
        assert steps(t) == want
        _only_cache_sources(t)
    assert any("source" in s.inputs for s in warm.steps)


def test_stage_transcript_equals_the_record_cold_and_warm() -> None:
    want = _record()[STAGE_CASE]
    clear_parse_memos()
    caches = VerifierCaches()
    cold, warm = stage_run(caches), stage_run(caches)
    assert steps(cold) == want and steps(warm) == want
    _only_cache_sources(cold)
    _only_cache_sources(warm)
    assert any("source" in s.inputs for s in warm.steps)
