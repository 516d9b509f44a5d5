"""The pipeline's GPU stage (verifier/gpu/stage.py) on its own: real H100 vectors and simulated
multi-GPU bundles, from many threads over one shared GpuCaches; mutated evidence and
collateral refused with our own errors only; the GPU caches bounded (issue 11).
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from attest.formats.bundle import EvidenceBundle, GpuEvidence
from attest.formats.spdm_measurements import parse_report_text
from tests.support.pipeline_support import World, make_world
from tests.support.vectors import vector_path
from transparency_log.common.errors import AttestlogError, FetchError
from verifier.gpu.evidence import GpuCaches, GpuEvidenceResult, verify_gpu_evidence
from verifier.gpu.ocsp import OcspCache, OcspStatus
from verifier.gpu.policy import UNAVAILABLE_WAIVED
from verifier.gpu.rim_verify import RimCache, VerifiedRim
from verifier.gpu.stage import run_gpu_stage
from verifier.pipeline_trust import VerifierCaches
from verifier.stage_context import StageContext
from verifier.transcript import Transcript

V = ("nvidia", "nvtrust")
REAL_AT = datetime(2025, 1, 1, tzinfo=UTC)  # the clock pinned: the vectors' RIMs are current
REAL_WAIVE = frozenset({"gpu.ocsp"})  # no OCSP answer is in the vectors


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("gpu-stage"), gpus=3)


def real_bundle(world: World) -> EvidenceBundle:
    """The world's bundle carrying, as its one GPU item, the real H100 report and chain with
    the real driver and VBIOS RIMs stapled (real hardware: NVIDIA's production roots)."""
    item = GpuEvidence(0, parse_report_text(vector_path(*V, "hopperAttestationReport.txt")
                                            .read_bytes()),
                       vector_path(*V, "hopperCertChain.txt").read_bytes(),
                       rims={"driver": "nvidia/rim/driver", "vbios": "nvidia/rim/vbios"})
    collateral = {
        "nvidia/rim/driver": vector_path(*V, "Driver_RIM_test_no_gpu.swidtag").read_bytes(),
        "nvidia/rim/vbios": vector_path(*V, "1010_0200_882_96005E0001_test_no_gpu.swidtag")
        .read_bytes()}
    return dataclasses.replace(world.fx.decoded, evidence=(item,), collateral=collateral,
                               simulated=False)


def stage_run(world: World, bundle: EvidenceBundle, caches: VerifierCaches, *,
              at: datetime, waive: frozenset[str] = frozenset()
              ) -> tuple[Transcript, list[Any], list[GpuEvidenceResult]]:
    """Every GPU item of ``bundle`` through the stage, offline, as the pipeline runs it."""
    t = Transcript(waive=waive)
    ctx = StageContext(bundle, world.policy, at, world.trust.for_bundle(bundle.simulated),
                       caches, None, t)
    results = [run_gpu_stage(ctx, item) for item in bundle.gpu_evidence]
    return t, ctx.uses, results


def shape(t: Transcript, uses: list[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The steps without ``source=cache`` and the collateral listed (names): what a warm
    cache or another thread must not change."""
    steps = []
    for s in t.steps:
        d = s.to_dict()
        d["inputs"] = {k: v for k, v in d.get("inputs", {}).items() if k != "source"}
        steps.append(d)
    return steps, [u.name for u in uses]


# --- threads ----------------------------------------------------------------------------------

def test_eight_threads_over_one_gpu_cache_give_the_sequential_transcripts(world: World) -> None:
    real = real_bundle(world)
    sim = world.fx.decoded
    assert len(sim.gpu_evidence) == 3

    def real_job(caches: VerifierCaches) -> tuple[Any, ...]:
        t, uses, results = stage_run(world, real, caches, at=REAL_AT, waive=REAL_WAIVE)
        return (*shape(t, uses), [r.facts for r in results])

    def sim_job(caches: VerifierCaches) -> tuple[Any, ...]:
        t, uses, results = stage_run(world, sim, caches, at=world.fx.now)
        return (*shape(t, uses), [r.facts for r in results])

    sequential = (real_job(VerifierCaches()), sim_job(VerifierCaches()))
    # The real RIMs are of another report (tests/vectors MANIFEST): facts, not a raise.
    assert {f.check for f in sequential[0][2][0].rim_failures} >= {"gpu.rim.measurements"}
    assert all(f.ocsp == "good" and f.rims == "match" for f in sequential[1][2])
    shared = VerifierCaches()  # one GpuCaches (shared.gpu) for every thread
    jobs = [real_job, sim_job] * 24
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda job: job(shared), jobs))
    for job, result in zip(jobs, got, strict=True):
        assert result == sequential[0 if job is real_job else 1]
    # The threads did share the caches: a warm run takes chains and answers from them.
    t, uses, _ = stage_run(world, sim, shared, at=world.fx.now)
    assert any(s.inputs.get("source") == "cache" for s in t.steps)
    assert any(u.source == "cache" for u in uses)


def test_the_stage_records_no_report_nonce_step(world: World) -> None:
    """The SPDM nonce is the binding step's: the stage leaves no gpu.report.nonce step (it
    is not recorded and dropped afterwards: there is no sub-transcript any more)."""
    t, _, _ = stage_run(world, world.fx.decoded, VerifierCaches(), at=world.fx.now)
    checks = [s.check for s in t.steps]
    assert "gpu.report.nonce" not in checks and checks.count("gpu.report.signature") == 3
    assert {s.subject for s in t.steps} == {f"nvidia-gpu[{i}]" for i in range(3)}


# --- only our errors escape -------------------------------------------------------------------

def _mutations(blob: bytes, count: int) -> list[bytes]:
    """Single bit flips spread over the blob, and truncations."""
    out = []
    step = max(1, len(blob) * 8 // count)
    for bit in range(0, len(blob) * 8, step):
        b = bytearray(blob)
        b[bit // 8] ^= 1 << (bit % 8)
        out.append(bytes(b))
    out += [blob[:n] for n in (0, 1, len(blob) // 3, len(blob) // 2, len(blob) - 1)]
    return out


def _mutated_items(bundle: EvidenceBundle, count: int) -> list[EvidenceBundle]:
    """The bundle with its first GPU item's report, chain, RIMs and OCSP answers mutated."""
    item = bundle.gpu_evidence[0]
    out = []
    for report in _mutations(item.report, count):
        out.append(dataclasses.replace(bundle, evidence=(dataclasses.replace(item,
                                                                             report=report),)))
    for chain in _mutations(item.cert_chain, count):
        out.append(dataclasses.replace(bundle, evidence=(dataclasses.replace(
            item, cert_chain=chain),)))
    for name in (*item.rims.values(), *item.ocsp):
        for blob in _mutations(bundle.collateral[name], count // 2):
            out.append(dataclasses.replace(bundle, evidence=(item,), collateral={
                **bundle.collateral, name: blob}))
    return out


@pytest.mark.parametrize("which", ["real", "simulated"])
def test_mutated_evidence_and_collateral_raise_only_our_errors(world: World,
                                                               which: str) -> None:
    bundle, at = ((real_bundle(world), REAL_AT) if which == "real"
                  else (world.fx.decoded, world.fx.now))
    caches = VerifierCaches()
    refused = 0
    foreign: list[str] = []
    for mutated in _mutated_items(bundle, 60):
        try:
            stage_run(world, mutated, caches, at=at, waive=REAL_WAIVE)
        except AttestlogError:
            refused += 1
        except Exception as err:  # a library's exception escaping the GPU stage is a bug
            foreign.append(f"{type(err).__name__}: {str(err)[:120]}")
    assert foreign == [], foreign[:5]
    assert refused > 100


# --- waivers only through the transcript ------------------------------------------------------

def test_unwaived_unavailable_collateral_is_never_a_fact(world: World) -> None:
    """Offline, no OCSP answer and no RIM: without the transcript's waiver the verification
    raises (exit 3); "unavailable (waived)" is a fact only under the waiver."""
    item = world.fx.decoded.gpu_evidence[0]
    report, chain = item.report, item.cert_chain
    trust = world.trust.for_bundle(True).gpu
    for waive, refused_by in ((frozenset(), "gpu.ocsp.fetch"), ({"gpu.ocsp"}, "gpu.rim.fetch")):
        with pytest.raises(FetchError) as err:
            verify_gpu_evidence(report, chain, nonce=None, trust=trust, at=world.fx.now,
                                transcript=Transcript(waive=frozenset(waive)))
        assert err.value.check == refused_by
    t = Transcript(waive=frozenset({"gpu.ocsp", "gpu.rim.fetch"}))
    result = verify_gpu_evidence(report, chain, nonce=None, trust=trust, at=world.fx.now,
                                 transcript=t)
    assert (result.facts.ocsp, result.facts.rims) == (UNAVAILABLE_WAIVED, UNAVAILABLE_WAIVED)
    assert [s.check for s in t.steps if s.result == "waived"] == [
        "gpu.report.nonce", "gpu.ocsp", "gpu.rim.fetch", "gpu.rim.fetch"]


# --- bounded caches ---------------------------------------------------------------------------

def test_the_ocsp_and_rim_caches_are_bounded(world: World) -> None:
    chain = world.fx.platform.sim_gpus[0].device_pki.certificates
    now = world.fx.now
    ocsp = OcspCache(maxsize=2)
    for cert in chain[:3]:
        ocsp.put(cert, OcspStatus("leaf", cert.serial_number, "good", now, now + timedelta(1),
                                  False))
    assert ocsp.get(chain[0], now) is None  # the least recently used went
    assert ocsp.get(chain[2], now) is not None
    assert ocsp.get(chain[2], now + timedelta(2)) is None  # outside thisUpdate..nextUpdate
    rims = RimCache(maxsize=1)
    rim = VerifiedRim(rim=None, kind="driver", signer=chain[0], not_before=now,  # type: ignore[arg-type]
                      not_after=now + timedelta(1))
    rims.put("a", rim)
    rims.put("b", rim)
    assert rims.get("a", now) is None and rims.get("b", now) is rim
    assert isinstance(GpuCaches().ocsp, OcspCache)


def test_verify_takes_no_policy_and_no_collector() -> None:
    import inspect

    params = inspect.signature(verify_gpu_evidence).parameters
    assert not {"policy", "collector", "check_ocsp"} & set(params)
