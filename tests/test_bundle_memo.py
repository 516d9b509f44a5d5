"""Issue 15: the verifier decodes a bundle once per exact bytes (attest/formats/bundle_memo.py,
verifier/pipeline.py step 1). A memo hit is these very bytes decoded before: it is recorded
``source=cache`` on ``bundle.format``, every later step runs again, and it never turns a
refusal into an acceptance: other bytes (a non-canonical encoding of the same bundle) are
decoded and refused afresh, and the same bytes at a later time, under another policy, another
nonce or other trust roots are refused by the step that judges them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import cbor2
import pytest

from attest.certificates import clear_parse_memos
from attest.formats.bundle import decode_bundle, encode_bundle, to_cbor_value
from attest.formats.bundle_memo import BUNDLE_MEMO, BundleMemo
from bench.vendor_ratio import clear_parse_memos as clear_bench_memos
from tests.support.pipeline_support import World, assert_refused, make_world, policy_text
from transparency_log.common.errors import (
    FormatError,
    PolicyError,
    TrustConfigError,
    VerificationError,
)
from verifier.pipeline_trust import VerifierTrust
from verifier.policy import parse_policy
from verifier.result import ACCEPTED, Result
from verifier.transcript import FAIL, PASS


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("memo"), gpus=1)


def _format_step(result: Result) -> tuple[str, dict[str, str]]:
    step = result.transcript.steps[0]
    assert step.check == "bundle.format"
    return step.result, step.inputs


def _warm(world: World) -> None:
    assert world.verify().verdict == ACCEPTED
    assert _format_step(world.verify())[1].get("source") == "cache"


def test_the_second_verification_reuses_the_decode_and_says_so(world: World) -> None:
    BUNDLE_MEMO.cache_clear()
    cold, warm = world.verify(), world.verify()
    assert cold.verdict == warm.verdict == ACCEPTED
    assert _format_step(cold) == (PASS, {"bundle_sha256": cold.bundle_sha256.hex()})
    assert _format_step(warm) == (PASS, {"bundle_sha256": cold.bundle_sha256.hex(),
                                         "source": "cache"})
    assert warm.bundle == cold.bundle
    steps = [(s.check, s.result) for s in warm.transcript.steps]
    assert steps == [(s.check, s.result) for s in cold.transcript.steps]


# --------------------------------------------------------------------------------------------
# The same bytes, judged again: each refusal still happens after a memo hit


def _other_policy(world: World) -> dict[str, Any]:
    text = policy_text(world.fx, replace=('driver_versions = ["550.90.07"]',
                                          'driver_versions = ["999.1.1"]'))
    return {"policy": parse_policy(text.encode())}


CHANGES: list[tuple[str, Callable[[World], dict[str, Any]], str, type[Exception]]] = [
    ("later: checkpoint too old", lambda w: {"at": w.fx.now + timedelta(days=2)},
     "log.checkpoint.age", PolicyError),
    ("later: OCSP answer stale", lambda w: {"at": w.fx.now + timedelta(days=400)},
     "gpu.ocsp.fresh", VerificationError),
    ("much later: VCEK expired", lambda w: {"at": w.fx.now + timedelta(days=365 * 30)},
     "snp.vcek.chain", VerificationError),
    ("another nonce", lambda w: {"nonce": bytes(32)}, "binding.nonce", VerificationError),
    ("another policy", _other_policy, "gpu.policy.driver", PolicyError),
    ("no simulator roots", lambda w: {"trust": VerifierTrust.production()},
     "policy.simulated", TrustConfigError),
]


@pytest.mark.parametrize(("change", "check", "error"), [c[1:] for c in CHANGES],
                         ids=[c[0] for c in CHANGES])
def test_a_memo_hit_never_hides_a_refusal(world: World,
                                          change: Callable[[World], dict[str, Any]],
                                          check: str, error: type[Exception]) -> None:
    _warm(world)
    refused = world.verify(**change(world))
    assert _format_step(refused) == (PASS, {"bundle_sha256": refused.bundle_sha256.hex(),
                                            "source": "cache"})  # the decode was reused
    assert_refused(refused, check, error)
    assert world.verify().verdict == ACCEPTED  # and the memo still serves the right bundle


# --------------------------------------------------------------------------------------------
# Other bytes for the same bundle: every non-canonical encoding is refused although the memo
# holds the canonical one's decode


def _value(world: World) -> dict[str, Any]:
    return to_cbor_value(decode_bundle(world.fx.bundle))


def _in_order(value: dict[str, Any], reverse: bool = False) -> dict[str, Any]:
    """The map with its keys in RFC 8949 §4.2.1 order (text keys: length first), or reversed:
    cbor2 writes a map in insertion order when not asked for canonical output."""
    keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()), reverse=reverse)
    return {k: value[k] for k in keys}


def _unsorted_nested(world: World) -> bytes:
    """Canonical except one nested map (the SNP item), whose keys are in reverse order."""
    value = _value(world)
    value["evidence"][0] = _in_order(value["evidence"][0], reverse=True)
    return cbor2.dumps(_in_order(value))


def _non_shortest_length(data: bytes) -> bytes:
    """The nonce's byte-string head 0x58 0x20 (length 32 in one byte) as 0x59 0x00 0x20."""
    at = data.index(b"\x65nonce\x58\x20")
    return data[:at + 6] + b"\x59\x00\x20" + data[at + 8:]


NON_CANONICAL: list[tuple[str, Callable[[World, bytes], bytes]]] = [
    ("trailing byte", lambda w, d: d + b"\x00"),
    ("second item", lambda w, d: d + d),
    ("non-shortest int", lambda w, d: d.replace(b"gversion\x01", b"gversion\x18\x01", 1)),
    ("non-shortest length", lambda w, d: _non_shortest_length(d)),
    ("indefinite map", lambda w, d: b"\xbf" + d[1:] + b"\xff"),
    ("unsorted keys", lambda w, d: cbor2.dumps(dict(sorted(_value(w).items())))),
    ("unsorted nested keys", lambda w, d: _unsorted_nested(w)),
    ("duplicate key", lambda w, d: bytes([d[0] + 1]) + b"\x65nonce\x58\x20" + bytes(32)
     + d[1:]),
]


@pytest.mark.parametrize("change", [c[1] for c in NON_CANONICAL],
                         ids=[c[0] for c in NON_CANONICAL])
def test_a_non_canonical_encoding_is_refused_though_the_canonical_one_is_memoized(
        world: World, change: Callable[[World, bytes], bytes]) -> None:
    _warm(world)
    data = change(world, world.fx.bundle)
    assert data != world.fx.bundle
    for _ in range(2):  # a refusal is never memoized: refused again, by the same check
        refused = world.verify(data)
        assert _format_step(refused)[0] == FAIL
        assert "source" not in _format_step(refused)[1]
        assert_refused(refused, "bundle.canonical", FormatError)
    assert world.verify().verdict == ACCEPTED


# --------------------------------------------------------------------------------------------
# The memo itself


def test_refusals_are_not_stored_and_the_memo_is_bounded(world: World) -> None:
    memo = BundleMemo(max_entries=2, max_bytes=3 * len(world.fx.bundle))
    with pytest.raises(FormatError):
        memo.decode(world.fx.bundle + b"\x00")
    assert len(memo) == 0
    bundles = [encode_bundle(world.rebundle(nonce=bytes([i]) * 32)) for i in range(3)]
    for data in bundles:
        assert memo.decode(data) == decode_bundle(data)
    assert len(memo) == 2  # the oldest went out
    assert memo.get(bundles[0]) is None
    assert memo.get(bundles[2]) == decode_bundle(bundles[2])
    small = BundleMemo(max_entries=8, max_bytes=len(bundles[0]) + 1)
    small.decode(bundles[0])
    small.decode(bundles[1])
    assert len(small) == 1  # bounded by bytes as well
    assert BundleMemo(max_bytes=1).decode(bundles[0]) is not None  # too big: not stored


def test_cold_runs_forget_decoded_bundles(world: World) -> None:
    for clear in (clear_parse_memos, clear_bench_memos):
        _warm(world)
        assert len(BUNDLE_MEMO) > 0
        clear()
        assert len(BUNDLE_MEMO) == 0
        assert "source" not in _format_step(world.verify())[1]


def test_threads_share_the_memo(world: World) -> None:
    bundles = [encode_bundle(world.rebundle(nonce=bytes([i]) * 32)) for i in range(4)]
    memo = BundleMemo(max_entries=3)
    errors: list[BaseException] = []

    def work(data: bytes) -> None:
        try:
            for _ in range(20):
                assert memo.decode(data).nonce == data[data.index(b"\x65nonce") + 8:][:32]
        except BaseException as err:  # reported below, in the test's thread
            errors.append(err)

    threads = [threading.Thread(target=work, args=(b,)) for b in bundles * 2]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(memo) <= 3
