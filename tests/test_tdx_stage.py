"""The TDX pipeline stage (verifier/tdx/stage.py) and the verify/validate split on the real
vectors: one shared cache verified from 8 threads gives the sequential transcript; hostile
bytes give only the project's own errors; the stage records straight into the run's
transcript, with what it obtained listed per run."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest

from attest.collateral.pcs_fetch import (
    PCS_BASE,
    ROOT_CRL_URL,
    pck_crl_url,
    qe_identity_url,
    tcb_info_url,
)
from attest.formats.bundle import EvidenceBundle, GpuState, TdxEvidence
from tests.support.tdx_support import (
    SIM_NOW,
    SPR_E4,
    SPR_E4_TIME,
    V5,
    V5_TIMES,
    read,
    real_collateral,
    sim,
    sim_collateral,
    sim_root,
)
from transparency_log.common.errors import AttestlogError, StaleError, VerificationError
from transparency_log.common.http_fetch import DiskCache
from verifier.pipeline_trust import TrustRoots, VerifierCaches
from verifier.policy import load_policy
from verifier.policy_base import FailureCollector
from verifier.stage_context import StageContext
from verifier.tdx.collateral import TdxCollateral, VerificationTimes
from verifier.tdx.evidence import verify_tdx_evidence
from verifier.tdx.policy import TdxPolicy
from verifier.tdx.roots import production_roots
from verifier.tdx.stage import run_tdx_stage
from verifier.transcript import Transcript
from verifier.verified_cache import VendorCaches

V5_TCB = "sample_tcbinfo_response_v5"
THREADS = 8
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _steps(t: Transcript, *, drop_source: bool = False) -> list[tuple[Any, ...]]:
    return [(s.check, s.result, s.detail, s.subject,
             tuple(sorted((k, v) for k, v in s.inputs.items()
                          if not (drop_source and k == "source"))))
            for s in t.steps]


def _verify_v5(cache: VendorCaches) -> list[tuple[Any, ...]]:
    t = Transcript()
    verify_tdx_evidence(read(V5), real_collateral(V5_TCB), roots=production_roots(),
                        times=V5_TIMES, transcript=t, cache=cache)
    return _steps(t)


def test_eight_threads_over_one_shared_cache_give_the_sequential_transcript() -> None:
    """The real v5 quote, clock pinned per item: warm, every thread's transcript is the
    sequential one, byte for byte; cold, the same steps (only which ones the cache served
    may differ, and nothing else)."""
    shared = VendorCaches()
    cold = _verify_v5(shared)
    warm = _verify_v5(shared)
    assert warm == _verify_v5(shared)
    assert any(dict(s[4]).get("source") == "cache" for s in warm)
    with ThreadPoolExecutor(THREADS) as pool:
        assert list(pool.map(lambda _: _verify_v5(shared), range(THREADS))) == [warm] * THREADS
    fresh = VendorCaches()
    with ThreadPoolExecutor(THREADS) as pool:
        runs = list(pool.map(lambda _: _verify_v5(fresh), range(THREADS)))

    def plain(steps: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [(*s[:4], tuple(kv for kv in s[4] if kv[0] != "source")) for s in steps]
    assert all(plain(r) == plain(cold) for r in runs)


# ---------------------------------------------------------------- the stage, real SPR_E4


def _spr_e4_item() -> tuple[TdxEvidence, dict[str, bytes]]:
    """The SPR_E4 quote with its PCK CRL stapled, the rest left for the stage to obtain."""
    return (TdxEvidence(quote=read(SPR_E4), collateral={"pck_crl": "intel/pck_crl",
                                                        "pck_crl_issuer_chain": "intel/chain"}),
            {"intel/pck_crl": read("pckcrl"), "intel/chain": read("pck_crl_issuer_chain.pem")})


def _pcs_cache(directory: Path) -> DiskCache:
    """An on-disk PCS cache holding the SPR_E4 collateral (FMSPC 50806f000000)."""
    cache = DiskCache(directory)
    tcb = tcb_info_url(PCS_BASE, bytes.fromhex("50806f000000"))
    for url, body, chain in (
            (tcb, read("sample_tcbInfo_response"), read("tcb_info_issuer_chain.pem")),
            (qe_identity_url(PCS_BASE), read("sample_qeIdentity_response"),
             read("qe_identity_issuer_chain.pem")),
            (pck_crl_url(PCS_BASE, "platform"), read("pckcrl"),
             read("pck_crl_issuer_chain.pem")),
            (ROOT_CRL_URL, read("rootcrl.der"), None)):
        cache.put(url, body)
        if chain is not None:
            cache.put(url + "#issuer-chain", chain)
    return cache


def _context(item: TdxEvidence, stapled: dict[str, bytes], caches: VerifierCaches, *,
             waive: frozenset[str] = frozenset()) -> StageContext:
    bundle = EvidenceBundle(nonce=bytes(64), node_key=b"k", simulated=False, evidence=(item,),
                            release=b"{}", tlog_proof=b"", collateral=stapled,
                            gpu_state=GpuState("off", 0))
    policy = load_policy(EXAMPLES / "policy.example.toml").with_waivers(waive)
    return StageContext(bundle, policy, SPR_E4_TIME, TrustRoots.production(), caches, None,
                        Transcript(waive=policy.waive))


def _run_stage(ctx: StageContext, item: TdxEvidence) -> list[tuple[Any, ...]]:
    with pytest.raises(VerificationError) as err:  # every item current; no TCB level matches
        run_tdx_stage(ctx, item)
    assert err.value.check == "tdx.tcb.level"
    return _steps(ctx.t, drop_source=True) + [tuple(u.to_dict().items()) for u in ctx.uses]


def test_stage_records_in_the_run_transcript_and_lists_what_it_obtained(tmp_path: Path) -> None:
    item, stapled = _spr_e4_item()
    ctx = _context(item, stapled, VerifierCaches(disk=_pcs_cache(tmp_path)))
    _run_stage(ctx, item)
    assert {s.subject for s in ctx.t.steps} == {"tdx"}
    assert all((s.detail == "tdx" or s.detail.startswith("tdx: "))
               and not s.detail.startswith("tdx: tdx: ") for s in ctx.t.steps)
    assert "tdx.policy" not in [s.check for s in ctx.t.steps]  # judged by the pipeline
    sources = sorted((u.name.rsplit("/", 1)[-1], u.source) for u in ctx.uses)
    assert ("IntelSGXRootCA.der", "cache") in sources
    assert ("pck_crl", "stapled") in sources
    assert sum(1 for _, src in sources if src == "cache") == 3  # TCB Info, QE Id, Root CRL


def test_stage_from_eight_threads_over_shared_caches_matches_sequential(tmp_path: Path) -> None:
    """Each run's collateral list holds its own fetches only (the on_get hook is per call):
    8 concurrent stages over one VerifierCaches give the sequential steps and listing."""
    item, stapled = _spr_e4_item()
    caches = VerifierCaches(disk=_pcs_cache(tmp_path))
    sequential = _run_stage(_context(item, stapled, caches), item)
    assert sequential == _run_stage(_context(item, stapled, caches), item)
    with ThreadPoolExecutor(THREADS) as pool:
        runs = list(pool.map(lambda _: _run_stage(_context(item, stapled, caches), item),
                             range(THREADS)))
    assert runs == [sequential] * THREADS


# ---------------------------------------------------------------- waivers, policy split


def test_stale_crl_through_the_stage_is_refused_unless_the_policy_waives_it() -> None:
    """Built at run time: the simulator's Root CA CRL made stale before the run's instant.
    Without a waiver: StaleError tdx.root_crl.validity. Waived by name: recorded 'waived'
    and the stage goes on (to the simulated quote's other checks)."""
    s = sim()
    col = sim_collateral(s, root_crl=s.root_crl(this_update=SIM_NOW.replace(year=2025)))
    given = {f.name: getattr(col, f.name) for f in fields(TdxCollateral)}
    item = TdxEvidence(quote=s.quote().to_bytes(),
                       collateral={k: f"intel/{k}" for k, v in given.items() if v is not None})
    stapled = {f"intel/{k}": v for k, v in given.items() if v is not None}
    sim_roots = replace(TrustRoots.production(), tdx=(sim_root(s),), simulated=True)

    def ctx(waive: frozenset[str]) -> StageContext:
        c = _context(item, stapled, VerifierCaches(), waive=waive)
        return replace(c, at=SIM_NOW, roots=sim_roots)

    refused = ctx(frozenset())
    with pytest.raises(StaleError) as err:
        run_tdx_stage(refused, item)
    assert err.value.check == "tdx.root_crl.validity"
    assert [x.check for x in refused.t.steps if x.result == "fail"] == ["tdx.root_crl.validity"]
    other = ctx(frozenset({"tdx.pck_crl.validity"}))  # the other CRL's waiver does not help
    with pytest.raises(StaleError):
        run_tdx_stage(other, item)
    waived = ctx(frozenset({"tdx.root_crl.validity"}))
    result = run_tdx_stage(waived, item)
    step = next(x for x in waived.t.steps if x.check == "tdx.root_crl.validity")
    assert step.result == "waived" and "waived by name (root_crl)" in step.detail
    assert [x.result for x in waived.t.steps].count("fail") == 0
    collector = FailureCollector()
    TdxPolicy().check(result, collector)
    assert collector.failures == []


def test_policy_check_collects_every_failure_of_an_authentic_result() -> None:
    """verify does not judge: a debug TD without SEPT_VE_DISABLE verifies; the policy then
    reports both attributes (and nothing stops at the first)."""
    s = sim()
    debug = s.body(td_attributes=(1).to_bytes(8, "little"))
    result = verify_tdx_evidence(s.quote(body=debug).to_bytes(), sim_collateral(s),
                                 roots=[sim_root(s)], times=VerificationTimes.uniform(SIM_NOW))
    assert result.transcript.verdict == "accepted"
    collector = FailureCollector()
    TdxPolicy().with_measurements(mrtd=[bytes(48)]).check(result, collector)
    assert [(f.check, f.field) for f in collector.failures] == [
        ("tdx.policy.td_attributes", "TDATTRIBUTES.DEBUG"),
        ("tdx.policy.td_attributes", "TDATTRIBUTES.SEPT_VE_DISABLE"),
        ("tdx.policy.mrtd", "MRTD")]


# ---------------------------------------------------------------- hostile bytes


def _mutants(data: bytes, rng: random.Random, n: int) -> list[bytes]:
    out = [data[:k] for k in sorted({1, len(data) // 2, len(data) - 1})]
    for _ in range(n):
        b = bytearray(data)
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
        out.append(bytes(b))
    return out


@pytest.mark.parametrize("field", ["quote"] + [f.name for f in fields(TdxCollateral)])
def test_mutated_real_vectors_give_only_attestlog_errors(field: str) -> None:
    """Truncations and bit flips of the real v5 quote and of each collateral item (PEM
    chains, DER CRLs, signed JSON): verified or refused with the project's error class and
    a tdx.* check id, never a library exception."""
    rng = random.Random(f"tdx-{field}")
    quote, col = read(V5), real_collateral(V5_TCB)
    original = quote if field == "quote" else getattr(col, field)
    refused = 0
    for mutant in _mutants(original, rng, 40):
        q = mutant if field == "quote" else quote
        c = col if field == "quote" else replace(col, **{field: mutant})
        try:
            verify_tdx_evidence(q, c, roots=production_roots(), times=V5_TIMES)
        except AttestlogError as err:
            assert err.check.startswith("tdx."), err
            refused += 1
    assert refused > 0
