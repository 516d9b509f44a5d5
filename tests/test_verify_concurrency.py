"""Verifiers and caches are safe to share (issue 11): ``run_pipeline`` from 8 threads sharing
one ``VerifierTrust`` and one ``VerifierCaches`` gives the transcripts (steps, check ids,
results, details, collateral listing) that sequential runs give.

The bundles carry no stapled collateral, so the fetch hooks run: SNP with its VCEK, chain and
CRL from the fake AMD KDS; TDX with Intel PCS collateral; two GPUs each with OCSP and RIMs
from the fake NVIDIA services (attest/simulate, served on 127.0.0.1). What a warm cache
changes is left out of the comparison: ``source`` (``cache`` / ``fetched``) on steps and on
collateral entries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from attest.collateral.kds_fetch import KDS_BASE
from attest.collateral.ocsp_fetch import NVIDIA_OCSP_URL
from attest.collateral.pcs_fetch import PCS_BASE, ROOT_CRL_URL
from attest.collateral.rim_fetch import NVIDIA_RIM_SERVICE
from attest.simulate.fake_service import serve
from tests.support.pipeline_support import World, make_world
from transparency_log.common.http_fetch import FetchResponse, HttpFetcher
from verifier.pipeline_trust import VerifierCaches
from verifier.result import Result

THREADS = 8
ROUNDS = 3


def bare(world: World) -> bytes:
    """The fixture's bundle without any stapled collateral (all of it must be fetched)."""
    b = world.fx.decoded
    evidence = []
    for item in b.evidence:
        if hasattr(item, "certs"):  # SEV-SNP: no certificates, no CRL
            item = dataclasses.replace(item, certs={}, collateral={})
        elif hasattr(item, "rims"):  # GPU: no RIMs, no OCSP answers
            item = dataclasses.replace(item, rims={}, ocsp=())
        else:  # TDX: no PCS collateral
            item = dataclasses.replace(item, collateral={})
        evidence.append(item)
    return world.rebundle(evidence=tuple(evidence), collateral={}).encode()


@contextmanager
def vendor_fetch(world: World) -> Iterator[Callable[[str], FetchResponse]]:
    """A fetch that sends every vendor URL to the platform's fake services on 127.0.0.1."""
    with serve(world.fx.platform.fake_vendor_service()) as base:
        http = HttpFetcher(retries=0)

        def fetch(url: str) -> FetchResponse:
            for real in (ROOT_CRL_URL, NVIDIA_RIM_SERVICE, KDS_BASE, PCS_BASE):
                if url.startswith(real):
                    tail = "/IntelSGXRootCA.der" if real == ROOT_CRL_URL else url[len(real):]
                    if real == NVIDIA_RIM_SERVICE:
                        tail = "/v1/rim/" + tail
                    return http(base + tail)
            return http(url.replace(NVIDIA_OCSP_URL, base))

        yield fetch


def comparable(result: Result) -> dict[str, Any]:
    """What must not depend on threads or on warm caches."""
    steps = []
    for s in result.transcript.steps:
        d = s.to_dict()
        d["inputs"] = {k: v for k, v in d.get("inputs", {}).items() if k != "source"}
        steps.append(d)
    uses = sorted((u.name, u.sha256, u.kind, u.not_before, u.not_after, u.used_by)
                  for u in result.collateral)
    error = result.error.to_dict() if result.error is not None else None
    return {"verdict": result.verdict, "steps": steps, "collateral": uses, "error": error}


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, World]:
    tmp: Path = tmp_path_factory.mktemp("concurrency")
    return {"sev-snp": make_world(tmp / "snp", cpu="sev-snp", gpus=2),
            "tdx": make_world(tmp / "tdx", cpu="tdx", gpus=2)}


@pytest.mark.parametrize("cpu", ["sev-snp", "tdx"])
def test_threads_sharing_trust_and_caches_give_the_sequential_transcripts(
        worlds: dict[str, World], cpu: str) -> None:
    world = worlds[cpu]
    bundle = bare(world)
    with vendor_fetch(world) as fetch:
        world.verify(bundle, fetch=fetch)  # the client's checkpoint store has seen this log
        sequential = comparable(world.verify(bundle, fetch=fetch, caches=VerifierCaches()))
        assert sequential["verdict"] == "accepted", sequential["error"]
        fetched = {u[0] for u in sequential["collateral"]}
        assert any(".rim." in n for n in fetched) and any(".ocsp." in n for n in fetched)
        shared = VerifierCaches()  # world.trust is shared too

        def job(_: int) -> dict[str, Any]:
            return comparable(world.verify(bundle, fetch=fetch, caches=shared))

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            results = list(pool.map(job, range(THREADS * ROUNDS)))
    different = [i for i, r in enumerate(results) if r != sequential]
    assert not different, _first_difference(sequential, results[different[0]])


def _first_difference(want: dict[str, Any], got: dict[str, Any]) -> str:
    for key in want:
        if want[key] != got[key]:
            if isinstance(want[key], list):
                for i, (a, b) in enumerate(zip(want[key], got[key], strict=False)):
                    if a != b:
                        return f"{key}[{i}]: sequential {a} != threaded {b}"
                return f"{key}: {len(want[key])} sequential != {len(got[key])} threaded"
            return f"{key}: sequential {want[key]} != threaded {got[key]}"
    return "equal"
