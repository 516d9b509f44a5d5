"""Issue 15's shortcuts on the SNP and GPU paths never accept what the full check refuses:

- a supplied ASK is taken as the embedded one only when byte-identical (compared by SHA-256);
  any other ASK is verified under the pinned ARK, warm or not;
- the link of an embedded (pinned) intermediate to its root is verified once per process, but
  its validity is checked at every call;
- reports are parsed once per exact bytes: other bytes are parsed and verified afresh.
Each attack is built at run time after a warm run of the genuine evidence.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from attest.formats.spdm_measurements import parse_report_text
from attest.simulate.snp import SimulatedAmd
from tests.support.snp_fixtures import sim
from tests.support.vectors import vector_path
from transparency_log.common.errors import AttestlogError, ChainError, StaleError
from verifier.gpu.evidence import GpuCaches, GpuTrust, verify_gpu_evidence
from verifier.snp.roots import amd_roots
from verifier.snp.verify import SnpCaches, SnpCollateral, SnpVerifier
from verifier.transcript import Transcript
from verifier.x509chain import PinnedRoot, fingerprint, verify_chain

AT = datetime(2026, 11, 23, tzinfo=UTC)
NO_CRL = frozenset({"snp.crl"})


def _snp() -> tuple[bytes, bytes, SnpCollateral]:
    report = vector_path("snp", "trustee", "test-report.bin").read_bytes()
    vcek = vector_path("snp", "trustee", "test-vcek.der").read_bytes()
    milan = amd_roots()["Milan"]
    return report, vcek, SnpCollateral(vcek=vcek, ask=milan.ask.public_bytes(Encoding.DER),
                                       ark=milan.ark.certificate.public_bytes(Encoding.DER))


def test_a_supplied_ask_other_than_the_embedded_one_is_verified_under_the_ark() -> None:
    report, vcek, col = _snp()
    SnpVerifier.production().verify(report, at=AT, collateral=col,
                                    transcript=Transcript(waive=NO_CRL))  # warm: link known
    assert col.ask is not None
    forged = col.ask[:-1] + bytes([col.ask[-1] ^ 1])  # the ARK's signature over it broken
    t = Transcript(waive=NO_CRL)
    with pytest.raises(ChainError) as e:
        SnpVerifier.production(caches=SnpCaches()).verify(
            report, at=AT, collateral=SnpCollateral(vcek=vcek, ask=forged, ark=col.ark),
            transcript=t)
    assert (e.value.check, e.value.field) == ("snp.vcek.chain", "ASK.signature")
    assert [s.check for s in t.steps if s.result == "fail"] == ["snp.vcek.chain"]


def test_a_pinned_intermediate_is_time_checked_on_every_call() -> None:
    amd = sim("Milan")
    root = PinnedRoot("ARK (sim)", amd.ark)
    pinned = frozenset({fingerprint(amd.ask)})
    inside = amd.ask.not_valid_before_utc + timedelta(days=1)
    for _ in range(2):  # the second call finds the link remembered
        verify_chain([amd.ask], [root], at=inside, check="test.chain", roles=["ASK", "ARK"],
                     pinned=pinned)
    with pytest.raises(StaleError) as e:
        verify_chain([amd.ask], [root], at=amd.ask.not_valid_after_utc + timedelta(seconds=1),
                     check="test.chain", roles=["ASK", "ARK"], pinned=pinned)
    assert e.value.field == "ASK.notAfter"
    # same names, another key: not the pinned one, so verified (and refused)
    other = SimulatedAmd.create("Milan")
    with pytest.raises(ChainError) as e:
        verify_chain([other.ask], [root], at=inside, check="test.chain", roles=["ASK", "ARK"],
                     pinned=pinned)
    assert e.value.field == "ASK.issuer"


def test_a_changed_snp_report_after_a_warm_run_is_refused() -> None:
    report, _, col = _snp()
    verifier = SnpVerifier.production()
    verifier.verify(report, at=AT, collateral=col, transcript=Transcript(waive=NO_CRL))
    changed = bytearray(report)
    changed[0x50] ^= 1  # REPORT_DATA, inside the signed part
    t = Transcript(waive=NO_CRL)
    with pytest.raises(AttestlogError) as e:
        verifier.verify(bytes(changed), at=AT, collateral=col, transcript=t)
    assert e.value.check == "snp.report.signature"
    assert [s.check for s in t.steps if s.result == "fail"] == ["snp.report.signature"]


def test_a_changed_gpu_report_after_a_warm_run_is_refused() -> None:
    nv = ("nvidia", "nvtrust")
    report = parse_report_text(vector_path(*nv, "hopperAttestationReport.txt").read_bytes())
    chain = vector_path(*nv, "hopperCertChain.txt").read_bytes()
    caches, at = GpuCaches(), datetime(2025, 1, 1, tzinfo=UTC)

    def run(data: bytes) -> Transcript:
        t = Transcript(waive=frozenset({"gpu.ocsp", "gpu.rim.fetch"}))
        verify_gpu_evidence(data, chain, nonce=data[4:36], trust=GpuTrust.production(), at=at,
                            transcript=t, caches=caches)
        return t

    run(report)
    changed = bytearray(report)
    changed[60] ^= 1  # the first measurement value, inside the signed part
    with pytest.raises(AttestlogError) as e:
        run(bytes(changed))
    assert e.value.check == "gpu.report.signature"
