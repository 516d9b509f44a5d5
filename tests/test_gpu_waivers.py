"""Issue 12, "one way to waive": the GPU waivers cover only what cannot be had, never a check
of what is at hand (docs/policy.md "Waivers").

- ``gpu.ocsp``: a device certificate with no OCSP answer (not stapled or cached, and offline or
  the responder unreachable) is waived; a stapled answer that says revoked, or is badly
  signed, still refuses, and so does one for another certificate of the chain when the rest
  have none.
- ``gpu.rim.fetch`` (formerly ``gpu.rim``, which skipped the comparison outright): a RIM that
  cannot be had is waived; a RIM at hand is still verified and compared.

Each attack is built at run time on an accepted simulated node (one GPU); in each test only
the check under test fails.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from attest.formats.bundle import EvidenceBundle
from attest.simulate import gpu as simgpu
from tests.support.pipeline_support import World, failed_checks, make_world
from transparency_log.common.errors import (
    FetchError,
    FormatError,
    PolicyError,
    SignatureError,
    TrustConfigError,
    VerificationError,
)
from transparency_log.common.http_fetch import FetchResponse
from verifier.pipeline_trust import VerifierCaches
from verifier.policy import Policy, validate_waivers
from verifier.result import ACCEPTED, REFUSED, Result
from verifier.transcript import WAIVED


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("gpu-waivers"), gpus=1)


def _results(result: Result) -> dict[str, str]:
    return {s.check: s.result for s in result.transcript.steps}


def _verify(world: World, bundle: EvidenceBundle, *waive: str, fetch=None) -> Result:
    """Verify with fresh caches (no answer cached by another test), offline unless ``fetch``,
    with ``waive`` added as `--waive` adds it (validated first)."""
    policy: Policy = world.policy.with_waivers(validate_waivers(list(waive), field="--waive"))
    return world.verify(bundle, policy=policy, caches=VerifierCaches(), fetch=fetch)


def _chain(world: World) -> list[x509.Certificate]:
    return world.fx.platform.sim_gpus[0].device_pki.certificates


def _ocsp_name(cert: x509.Certificate) -> str:
    der = cert.public_bytes(serialization.Encoding.DER)
    return f"nvidia/ocsp/{hashlib.sha256(der).hexdigest()}"


def _answer(world: World, index: int, *, revoked: bool = False) -> bytes:
    """A current answer about certificate ``index`` of the GPU's chain, signed by its issuer."""
    chain = _chain(world)
    responder = simgpu.OcspResponder(world.fx.platform.sim_gpus[0].device_pki,
                                     now=world.fx.now,
                                     revoked={chain[index].serial_number} if revoked else set())
    request = ocsp.OCSPRequestBuilder().add_certificate(
        chain[index], chain[index + 1], hashes.SHA384()).build()
    return responder.respond(request.public_bytes(serialization.Encoding.DER))


def _with_ocsp(world: World, answers: dict[int, bytes]) -> EvidenceBundle:
    """The node's bundle stapling exactly ``answers`` (chain index -> DER) for its GPU."""
    b = world.fx.decoded
    chain = _chain(world)
    collateral = {n: d for n, d in b.collateral.items() if not n.startswith("nvidia/ocsp/")}
    names = []
    for index, der in answers.items():
        names.append(_ocsp_name(chain[index]))
        collateral[names[-1]] = der
    gpus = tuple(dataclasses.replace(g, ocsp=tuple(names)) for g in b.gpu_evidence)
    return world.rebundle(evidence=(*b.evidence[:1], *gpus), collateral=collateral)


def _all_good(world: World) -> dict[int, bytes]:
    return {i: _answer(world, i) for i in range(len(_chain(world)) - 1)}


# --- gpu.ocsp ---------------------------------------------------------------------------------

def test_the_stapled_answers_are_accepted_unwaived(world: World) -> None:
    result = _verify(world, _with_ocsp(world, _all_good(world)))
    assert result.verdict == ACCEPTED, result.error
    assert _results(result)["gpu.ocsp"] != WAIVED


def test_a_revoked_stapled_answer_is_refused_even_with_the_waiver(world: World) -> None:
    answers = {**_all_good(world), 0: _answer(world, 0, revoked=True)}
    for waive in ((), ("gpu.ocsp",)):
        result = _verify(world, _with_ocsp(world, answers), *waive)
        assert result.verdict == REFUSED and isinstance(result.error, VerificationError)
        assert failed_checks(result) == {"gpu.ocsp.revoked"}, (waive, failed_checks(result))


def test_a_badly_signed_stapled_answer_is_refused_even_with_the_waiver(world: World) -> None:
    good = _answer(world, 1)
    tampered = good[:-1] + bytes([good[-1] ^ 0x01])  # the last byte of the ECDSA signature
    result = _verify(world, _with_ocsp(world, {**_all_good(world), 1: tampered}), "gpu.ocsp")
    assert result.verdict == REFUSED and isinstance(result.error, SignatureError)
    assert failed_checks(result) == {"gpu.ocsp.signature"}


def test_a_revoked_answer_is_checked_when_the_other_answers_are_missing(world: World) -> None:
    """The waiver covers the certificates with no answer; the one answer stapled (for the
    leaf's issuer, revoked) is still verified, whatever comes first in the chain."""
    result = _verify(world, _with_ocsp(world, {1: _answer(world, 1, revoked=True)}), "gpu.ocsp")
    assert result.verdict == REFUSED
    assert failed_checks(result) == {"gpu.ocsp.revoked"}


def test_a_revoked_answer_is_not_hidden_by_missing_ones_unwaived(world: World) -> None:
    """Issue 11: every answer at hand is verified before a missing one refuses, so a revoked
    certificate is named (gpu.ocsp.revoked), not hidden behind "unreachable" (the leaf, first
    in the chain, has no answer here)."""
    result = _verify(world, _with_ocsp(world, {1: _answer(world, 1, revoked=True)}))
    assert result.verdict == REFUSED and isinstance(result.error, VerificationError)
    assert failed_checks(result) == {"gpu.ocsp.revoked"}


def test_a_garbage_stapled_answer_is_refused_with_a_warm_cache(world: World) -> None:
    """Issue 11: a warm OCSP cache does not change the verdict: a stapled answer that is not
    DER OCSP is refused (FormatError gpu.ocsp) whether or not every certificate of the chain
    has a cached answer (it was listed and ignored when all were cached)."""
    caches = VerifierCaches()
    answers = _all_good(world)
    assert world.verify(_with_ocsp(world, answers), caches=caches).verdict == ACCEPTED
    garbage = _with_ocsp(world, {**answers, 2: b"not an OCSP answer"})
    for run_caches in (caches, VerifierCaches()):  # warm, then cold
        result = world.verify(garbage, caches=run_caches)
        assert result.verdict == REFUSED and isinstance(result.error, FormatError)
        assert failed_checks(result) == {"gpu.ocsp"}


def test_offline_without_answers_is_waived_only_with_the_waiver(world: World) -> None:
    bare = _with_ocsp(world, {})
    unwaived = _verify(world, bare)
    assert unwaived.verdict == REFUSED and isinstance(unwaived.error, FetchError)
    assert failed_checks(unwaived) == {"gpu.ocsp.fetch"}
    waived = _verify(world, bare, "gpu.ocsp")
    assert waived.verdict == ACCEPTED, waived.error
    step = next(s for s in waived.transcript.steps if s.check == "gpu.ocsp")
    assert step.result == WAIVED
    assert "waived by policy (gpu.ocsp): no OCSP answer can be had" in step.detail
    assert [s for s in waived.transcript.steps if s.result == WAIVED] == [step]


def test_some_answers_stapled_the_rest_waived(world: World) -> None:
    result = _verify(world, _with_ocsp(world, {0: _answer(world, 0)}), "gpu.ocsp")
    assert result.verdict == ACCEPTED, result.error
    step = next(s for s in result.transcript.steps if s.check == "gpu.ocsp")
    assert step.result == WAIVED and "1 other certificate(s) good" in step.detail


def test_an_unreachable_responder_is_waived(world: World) -> None:
    calls: list[str] = []

    def unreachable(url: str) -> FetchResponse:
        calls.append(url)
        raise FetchError("fetch.unreachable", "connection refused", field=url)

    bare = _with_ocsp(world, {})
    result = _verify(world, bare, fetch=unreachable)
    assert result.verdict == REFUSED and "fetch.unreachable" in failed_checks(result)
    result = _verify(world, bare, "gpu.ocsp", fetch=unreachable)
    assert result.verdict == ACCEPTED, result.error
    assert _results(result)["gpu.ocsp"] == WAIVED and calls


# --- gpu.rim.fetch ----------------------------------------------------------------------------

def _with_rims(world: World, *, bad_driver: bool = False, drop: tuple[str, ...] = ()
               ) -> EvidenceBundle:
    """The node's bundle with its driver RIM re-signed with one measurement changed, and/or
    the RIMs of ``drop`` kinds not stapled."""
    platform = world.fx.platform
    b = world.fx.decoded
    gpu_item = b.gpu_evidence[0]
    collateral = dict(b.collateral)
    if bad_driver:
        driver, _ = platform.sim_gpus[0].rims()
        first = next(iter(driver.active()))
        driver = dataclasses.replace(driver, measurements=tuple(
            dataclasses.replace(m, alternatives=(b"\xee" * 48,)) if m.index == first else m
            for m in driver.measurements))
        collateral[gpu_item.rims["driver"]] = simgpu.sign_rim(driver, platform.rim_pki)
    rims = {k: v for k, v in gpu_item.rims.items() if k not in drop}
    for kind in drop:
        collateral.pop(gpu_item.rims[kind])
    gpus = (dataclasses.replace(gpu_item, rims=rims),)
    return world.rebundle(evidence=(*b.evidence[:1], *gpus), collateral=collateral)


# A RIM mismatch fails its own check, and the [gpu] step's "RIMs match" fact with it.
RIM_MISMATCH = {"gpu.rim.measurements", "gpu.policy.rims", "gpu.policy"}


def test_a_mismatching_rim_is_refused_even_with_the_waiver(world: World) -> None:
    for waive in ((), ("gpu.rim.fetch",)):
        result = _verify(world, _with_rims(world, bad_driver=True), *waive)
        assert result.verdict == REFUSED and isinstance(result.error, PolicyError)
        assert failed_checks(result) == RIM_MISMATCH, failed_checks(result)


def test_a_mismatching_rim_is_refused_when_the_other_is_waived(world: World) -> None:
    result = _verify(world, _with_rims(world, bad_driver=True, drop=("vbios",)),
                     "gpu.rim.fetch")
    assert result.verdict == REFUSED
    assert failed_checks(result) == RIM_MISMATCH
    assert _results(result)["gpu.rim.fetch"] == WAIVED


def test_rims_that_cannot_be_had_are_waived_only_with_the_waiver(world: World) -> None:
    bare = _with_rims(world, drop=("driver", "vbios"))
    unwaived = _verify(world, bare)
    assert unwaived.verdict == REFUSED and isinstance(unwaived.error, FetchError)
    assert failed_checks(unwaived) == {"gpu.rim.fetch"}
    waived = _verify(world, bare, "gpu.rim.fetch")
    assert waived.verdict == ACCEPTED, waived.error
    steps = [s for s in waived.transcript.steps if s.result == WAIVED]
    assert [s.check for s in steps] == ["gpu.rim.fetch", "gpu.rim.fetch"]
    assert all("NOT compared" in s.detail for s in steps)


def test_one_rim_waived_the_other_compared(world: World) -> None:
    result = _verify(world, _with_rims(world, drop=("vbios",)), "gpu.rim.fetch")
    assert result.verdict == ACCEPTED, result.error
    got = _results(result)
    assert got["gpu.rim.fetch"] == WAIVED and got["gpu.rim.measurements"] != WAIVED


def test_the_old_gpu_rim_waiver_names_its_replacement(tmp_path: Path) -> None:
    with pytest.raises(TrustConfigError) as err:
        validate_waivers(["gpu.rim"])
    assert err.value.check == "policy.waive" and "gpu.rim.fetch" in err.value.message
