"""Issue 15: a GPU step satisfied from a cache says so (``source=cache``), and a cached OCSP
answer or RIM is verified again, and refused, when it no longer holds.

The OCSP cache (verifier/gpu/ocsp.py ``OcspCache``) and the RIM cache (verifier/gpu/rim_verify.py
``RimCache``) already reused verified answers and RIMs; their steps (``gpu.ocsp``,
``gpu.rim.signature``) did not say so. A warm stage run now marks both; a cold one marks
what it reuses within the run (the GPUs of a node share their RIMs); a partly cached OCSP
step (one answer verified now) is not marked.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from attest.simulate.gpu import SimulatedGpu, make_rim_pki, sign_rim
from tests.support.pipeline_support import World, make_world
from transparency_log.common.errors import AttestlogError, SignatureError
from verifier.gpu.report_verify import load_device_chain
from verifier.gpu.rim_verify import RimCache, check_rim
from verifier.gpu.stage import run_gpu_stage
from verifier.pipeline_trust import VerifierCaches
from verifier.stage_context import StageContext
from verifier.transcript import Transcript
from verifier.x509chain import fingerprint, pinned_root


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("gpu-cache-source"), gpus=2)


def stage_steps(world: World, caches: VerifierCaches, *, days: float = 0
                ) -> dict[tuple[str, str], dict[str, Any]]:
    """Every GPU item of the world's bundle through the stage, offline: the steps by
    (subject, check)."""
    bundle = world.fx.decoded
    t = Transcript()
    ctx = StageContext(bundle, world.policy, world.fx.now + timedelta(days=days),
                       world.trust.for_bundle(bundle.simulated), caches, None, t)
    for item in bundle.gpu_evidence:
        run_gpu_stage(ctx, item)
    return {(s.subject, s.check): s.to_dict() for s in t.steps}


def sources(steps: dict[tuple[str, str], dict[str, Any]], check: str) -> list[str | None]:
    return [s.get("inputs", {}).get("source") for (_, c), s in sorted(steps.items())
            if c == check]


@pytest.mark.parametrize(("check", "cold_sources"), [
    ("gpu.ocsp", [None, None]),
    # the GPUs of one node share their RIMs: GPU 1 reuses the ones GPU 0 just verified
    ("gpu.rim.signature", [None, "cache"])])
def test_a_warm_step_says_cache_and_a_cold_one_does_not(world: World, check: str,
                                                        cold_sources: list[str | None]
                                                        ) -> None:
    caches = VerifierCaches()
    cold = stage_steps(world, caches)
    warm = stage_steps(world, caches)
    assert sources(cold, check) == cold_sources
    assert sources(warm, check) == ["cache", "cache"]
    assert unmarked(warm) == unmarked(cold)  # the marker is the only difference


def unmarked(steps: dict[tuple[str, str], dict[str, Any]]) -> dict[tuple[str, str], Any]:
    out = {}
    for key, step in steps.items():
        step = dict(step)
        inputs = {k: v for k, v in step.pop("inputs", {}).items() if (k, v) != ("source",
                                                                               "cache")}
        out[key] = {**step, **({"inputs": inputs} if inputs else {})}
    return out


def test_a_partly_cached_ocsp_step_is_not_marked(world: World) -> None:
    """GPU 0's leaf answer is not in the cache (verified now, from the stapled answer), its
    three other answers are: the step is not marked; GPU 1's, all cached, is."""
    warm = VerifierCaches()
    stage_steps(world, warm)
    at = world.fx.now
    partly = VerifierCaches()
    for n, item in enumerate(world.fx.decoded.gpu_evidence):
        chain = load_device_chain(item.cert_chain)
        for cert in chain[1 if n == 0 else 0:-1]:
            status = warm.gpu.ocsp.get(cert, at)
            assert status is not None
            partly.gpu.ocsp.put(cert, status)
    steps = stage_steps(world, partly)
    assert sources(steps, "gpu.ocsp") == [None, "cache"]


def test_a_cached_ocsp_answer_past_its_next_update_is_checked_again_and_refused(
        world: World) -> None:
    caches = VerifierCaches()
    stage_steps(world, caches)
    assert stage_steps(world, caches)[("nvidia-gpu[0]", "gpu.ocsp")]["inputs"] == {
        "source": "cache"}
    # a week on: the stapled answers (nextUpdate = thisUpdate + 7 days) are out of date; the
    # cache holds them only inside thisUpdate..nextUpdate, so they are verified again
    with pytest.raises(AttestlogError) as refused:
        stage_steps(world, caches, days=8)
    assert refused.value.check == "gpu.ocsp.fresh", str(refused.value)


RIM_PKI = make_rim_pki()
SIM_RIM_ROOT = pinned_root("sim rim root", RIM_PKI.root_pem(), fingerprint(RIM_PKI.root).hex())
DRIVER, _ = SimulatedGpu().rims()


def test_a_cached_rim_is_a_hit_only_for_its_exact_bytes_inside_its_window(
        world: World) -> None:
    cache = RimCache()
    signed = sign_rim(DRIVER, RIM_PKI)
    at = world.fx.now
    first, hit = check_rim(signed, kind="driver", roots=[SIM_RIM_ROOT], at=at, cache=cache)
    assert not hit
    again, hit = check_rim(bytes(bytearray(signed)), kind="driver", roots=[SIM_RIM_ROOT],
                           at=at, cache=cache)  # equal bytes, another object: a hit
    assert hit and again is first
    # one byte of a measurement changed after the RIM was cached: verified, and refused
    value = DRIVER.measurements[20].alternatives[0].hex().encode()
    bad = signed.replace(value, b"00" + value[2:], 1)
    with pytest.raises(SignatureError) as refused:
        check_rim(bad, kind="driver", roots=[SIM_RIM_ROOT], at=at, cache=cache)
    assert refused.value.check == "gpu.rim.signature"
    # past the signer chain's notAfter: not a hit, verified again, and the chain refuses
    with pytest.raises(AttestlogError) as expired:
        check_rim(signed, kind="driver", roots=[SIM_RIM_ROOT],
                  at=first.not_after + timedelta(seconds=1), cache=cache)
    assert expired.value.check == "gpu.rim.chain", str(expired.value)
