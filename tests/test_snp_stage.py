"""The SEV-SNP pipeline stage (verifier/snp/stage.py): shareable between threads, the CRL
waived only through the transcript, and only our own errors escape it.

- Eight threads verify SNP bundles (some stapled and offline, some bare and fetching from a
  local fake KDS, some without a CRL and offline, waiving ``snp.crl``) through one shared
  VerifierCaches and get, bundle by bundle, the transcripts and collateral lists of
  sequential runs.
- ``snp.crl`` that cannot run is a failure unless the policy's ``waive`` list names it; the
  waived step says revocation was NOT checked; a CRL at hand that refuses is never waived.
- Real vectors (tests/vectors/snp) and the simulated bundle, truncated and bit-flipped in
  the report, the certificates and the CRL, are refused by an AttestlogError naming an
  ``snp.*`` check, never by a library's exception.
"""

from __future__ import annotations

import dataclasses
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from attest.formats.bundle import EvidenceBundle, SnpEvidence, decode_bundle
from attest.simulate.fake_service import serve
from tests.support.collateral_fetch import bare_bundle, routed
from tests.support.pipeline_support import World, make_world
from tests.support.snp_fixtures import AT, REAL, vec
from transparency_log.common.errors import AttestlogError
from verifier.checks import CheckNotRun
from verifier.pipeline_trust import TrustRoots, VerifierCaches
from verifier.policy import Policy, parse_policy
from verifier.result import ACCEPTED, REFUSED, Result
from verifier.snp.stage import run_snp_stage
from verifier.stage_context import StageContext
from verifier.transcript import Transcript

WAIVING_CRL = 'waive = ["log.consistency", "snp.crl"]\n'


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("snp_stage"), cpu="sev-snp", gpus=1)


def policy(world: World, *, waive_crl: bool) -> Policy:
    text = world.fx.policy_toml  # waives log.consistency: no checkpoint store is shared
    if waive_crl:
        text = text.replace('waive = ["log.consistency"]\n', WAIVING_CRL)
    return parse_policy(text.encode())


def without_crl(world: World) -> bytes:
    """The stapled bundle with its CRL taken out (offline, the CRL cannot be had)."""
    b = world.fx.decoded
    snp = b.cpu_evidence
    assert isinstance(snp, SnpEvidence) and "crl" in snp.collateral
    name = snp.collateral["crl"]
    evidence = tuple(dataclasses.replace(e, collateral={}) if e is snp else e
                     for e in b.evidence)
    return dataclasses.replace(b, evidence=evidence, collateral={
        k: v for k, v in b.collateral.items() if k != name}).encode()


def snapshot(result: Result) -> tuple[Any, ...]:
    return (result.verdict, [s.to_dict() for s in result.transcript.steps],
            [c.to_dict() for c in result.collateral])


def test_eight_threads_over_shared_caches_give_the_sequential_transcripts(
        world: World) -> None:
    strict, waiving = policy(world, waive_crl=False), policy(world, waive_crl=True)
    stapled, bare, no_crl = world.fx.bundle, bare_bundle(world), without_crl(world)
    with serve(world.fx.platform.fake_vendor_service()) as base:
        fetch = routed(base)
        kinds = [(stapled, strict, None), (bare, strict, fetch), (no_crl, waiving, None),
                 (no_crl, strict, None), (bare, waiving, fetch)]

        def run(i: int, caches: VerifierCaches) -> tuple[Any, ...]:
            data, pol, net = kinds[i % len(kinds)]
            return snapshot(world.verify(data, policy=pol, fetch=net, caches=caches,
                                         checkpoint_store=None))

        shared = VerifierCaches()
        jobs = list(range(40))
        # Sequential, cold: each kind on its own fresh caches; then warm, on ``shared``.
        cold = [run(i, VerifierCaches()) for i in range(len(kinds))]
        for i in range(len(kinds)):
            run(i, shared)
        warm = [run(i, shared) for i in range(len(kinds))]
        with ThreadPoolExecutor(max_workers=8) as pool:
            on_warm = list(pool.map(lambda i: run(i, shared), jobs))
            fresh = VerifierCaches()  # and all eight threads starting cold together
            on_cold = list(pool.map(lambda i: run(i, fresh), jobs))
    assert on_warm == [warm[i % len(kinds)] for i in jobs]
    assert [uncached(s) for s in on_cold] == [uncached(cold[i % len(kinds)]) for i in jobs]
    # The kinds are what they say: accepted, accepted after fetching, waived, refused.
    verdicts = [c[0] for c in cold]
    assert verdicts == [ACCEPTED, ACCEPTED, ACCEPTED, REFUSED, ACCEPTED]
    assert any(c["source"] == "fetched" for c in cold[1][2])
    crl = [{s["check"]: s for s in c[1]}.get("snp.crl") for c in cold]
    assert crl[2] is not None and crl[2]["result"] == "waived"
    assert crl[3] is not None and crl[3]["result"] == "fail"


def uncached(snap: tuple[Any, ...]) -> tuple[Any, ...]:
    """A snapshot without ``source=cache`` step inputs, and without the sources of the GPU's
    collateral (its OCSP cache): a cold thread may meet an entry another thread just made.
    The SNP collateral keeps its source (KDS is asked on every run: there is no disk cache)."""
    steps = [{**s, "inputs": {k: v for k, v in s.get("inputs", {}).items() if k != "source"}}
             for s in snap[1]]
    uses = [c if c["used_by"] == "sev-snp" else {k: v for k, v in c.items() if k != "source"}
            for c in snap[2]]
    return (snap[0], steps, uses)


def test_crl_that_cannot_run_is_waived_only_by_the_policy_and_says_so(world: World) -> None:
    no_crl = without_crl(world)
    refused = world.verify(no_crl, policy=policy(world, waive_crl=False),
                           checkpoint_store=None)
    assert refused.verdict == REFUSED and isinstance(refused.error, CheckNotRun)
    assert refused.error.check == "snp.crl"
    failed = [s for s in refused.transcript.steps if s.result == "fail"]
    assert [(s.check, s.subject) for s in failed] == [("snp.crl", "sev-snp")]
    waived = world.verify(no_crl, policy=policy(world, waive_crl=True), checkpoint_store=None)
    assert waived.verdict == ACCEPTED, waived.error
    [step] = [s for s in waived.transcript.steps if s.check == "snp.crl"]
    assert step.result == "waived" and step.subject == "sev-snp"
    assert step.detail.startswith("sev-snp: waived by policy (snp.crl): cannot run")
    assert "revocation of the ASK/ASVK NOT checked" in step.detail
    # A stapled CRL that revokes the ASK is refused even under the waiver.
    amd = world.fx.platform.amd
    b = world.fx.decoded
    snp = b.cpu_evidence
    assert isinstance(snp, SnpEvidence)
    revoking = dataclasses.replace(b, collateral={
        **b.collateral, snp.collateral["crl"]: amd.crl((amd.ask.serial_number,))})
    res = world.verify(revoking, policy=policy(world, waive_crl=True), checkpoint_store=None)
    assert res.verdict == REFUSED and res.error is not None
    assert (res.error.check, res.error.field) == ("snp.crl", "ASK.serialNumber")


# ------------------------------------------------------------ mutated evidence through the stage

def stage(bundle: EvidenceBundle, roots: TrustRoots, pol: Policy, at: Any) -> Transcript:
    item = bundle.cpu_evidence
    assert isinstance(item, SnpEvidence)
    t = Transcript(waive=pol.waive)
    ctx = StageContext(bundle, pol, at, roots, VerifierCaches(), None, t)
    run_snp_stage(ctx, item)
    return t


def mutations(data: bytes, rng: random.Random, n: int) -> list[bytes]:
    """Truncations at and around the start, then ``n`` single-bit flips."""
    cuts = [data[:k] for k in (0, 1, 16, len(data) // 2, len(data) - 1)]
    flips = []
    for _ in range(n):
        bit = rng.randrange(len(data) * 8)
        b = bytearray(data)
        b[bit // 8] ^= 1 << (bit % 8)
        flips.append(bytes(b))
    return cuts + flips


def assert_only_our_errors(run: Any, variants: list[bytes]) -> int:
    refused = 0
    for v in variants:
        try:
            run(v)
        except AttestlogError as err:
            assert err.check.startswith("snp."), err
            refused += 1
        # anything else (ValueError from cryptography, struct.error ...) fails the test
    return refused


def test_mutated_real_vectors_through_the_stage_raise_only_our_errors(world: World) -> None:
    rng = random.Random(11)
    roots = TrustRoots.production()
    pol = policy(world, waive_crl=True)  # the vectors carry no CRL
    for name, vcek in sorted(REAL.items()):
        report, cert = vec(name), vec(vcek)

        def bundle(rep: bytes, der: bytes) -> EvidenceBundle:
            return dataclasses.replace(world.fx.decoded, collateral={}, evidence=(
                SnpEvidence(rep, certs={"vcek": der}),))

        stage(bundle(report, cert), roots, pol, AT)  # the unmutated vector verifies
        assert assert_only_our_errors(lambda r: stage(bundle(r, cert), roots, pol, AT),
                                      mutations(report, rng, 60)) > 0
        assert assert_only_our_errors(lambda c: stage(bundle(report, c), roots, pol, AT),
                                      mutations(cert, rng, 120)) > 0


def test_mutated_simulated_bundle_crl_and_chain_raise_only_our_errors(world: World) -> None:
    rng = random.Random(12)
    roots = world.trust.for_bundle(True)
    pol = policy(world, waive_crl=False)
    b = decode_bundle(world.fx.bundle)
    snp = b.cpu_evidence
    assert isinstance(snp, SnpEvidence)
    stage(b, roots, pol, world.fx.now)
    name = snp.collateral["crl"]
    crl_runs = assert_only_our_errors(
        lambda c: stage(dataclasses.replace(b, collateral={**b.collateral, name: c}), roots,
                        pol, world.fx.now), mutations(b.collateral[name], rng, 120))
    assert crl_runs > 0
    for role, der in sorted(snp.certs.items()):
        def with_cert(c: bytes, role: str = role) -> Transcript:
            item = dataclasses.replace(snp, certs={**snp.certs, role: c})
            evidence = tuple(item if e is snp else e for e in b.evidence)
            return stage(dataclasses.replace(b, evidence=evidence), roots, pol, world.fx.now)
        assert assert_only_our_errors(with_cert, mutations(der, rng, 60)) > 0


def test_stage_keeps_no_state_on_shared_objects(world: World, tmp_path: Path) -> None:
    """The KDS client has no hook to set; VerifierCaches has no per-(roots, fetch) verifiers."""
    from attest.collateral.kds_fetch import KdsClient
    caches = VerifierCaches()
    assert not hasattr(KdsClient(None), "on_get")
    assert not hasattr(caches, "snp_verifier")
    world.verify(policy=policy(world, waive_crl=False), caches=caches, checkpoint_store=None)
    assert len(caches.snp.chains) == 1 and len(caches.snp.crls) == 1
