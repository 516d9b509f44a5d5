"""Verified-chain / verified-collateral caches (issue 15): they never change a verdict.

- On the real vectors (tests/vectors/snp, tdx, nvidia) a cold and a warm verification give the
  same transcript except for ``source=cache`` on the steps the cache satisfied, and threads
  sharing one cache give the sequential transcripts.
- A cached chain, CRL, TCB Info or QE Identity is re-checked when the time leaves its window
  or the CRL changes: each attack is built at run time on a warm cache and refused by its
  own check id.
- A failed verification is never cached as good; the caches are bounded; a pinned root whose
  self-signature is bad is refused on every call (its check is remembered only on success).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from attest.formats.spdm_measurements import parse_report, parse_report_text
from attest.simulate.snp import der
from tests.support.snp_fixtures import AT as SNP_AT
from tests.support.snp_fixtures import REAL, sim, sim_roots, vec
from tests.support.tdx_support import (
    SIM_NOW,
    SPR_E4,
    SPR_E4_TIME,
    V5,
    V5_TIMES,
    read,
    real_collateral,
    sim_collateral,
    sim_root,
)
from tests.support.tdx_support import sim as tdx_sim
from tests.support.vectors import vector_path
from transparency_log.common.errors import AttestlogError, ChainError, VerificationError
from verifier.gpu.evidence import GpuCaches, GpuTrust, verify_gpu_evidence
from verifier.snp.chain import load_key_certificate
from verifier.snp.verify import SnpCollateral, SnpVerifier
from verifier.tdx.collateral import VerificationTimes
from verifier.tdx.evidence import verify_tdx_evidence
from verifier.tdx.roots import production_roots
from verifier.transcript import Transcript
from verifier.verified_cache import VendorCaches, VerifiedCache
from verifier.x509chain import PinnedRoot, verify_chain

MILAN = "Milan"
TDX_CASES = {"v5": (V5, "sample_tcbinfo_response_v5", V5_TIMES),
             "spr_e4": (SPR_E4, "sample_tcbInfo_response", VerificationTimes.uniform(SPR_E4_TIME))}
GPU_CHAIN = "hopperCertChain.txt"
GPU_WAIVE = frozenset({"gpu.ocsp", "gpu.rim.fetch"})  # no OCSP answer or RIM in the vectors


def steps(t: Transcript) -> list[dict[str, Any]]:
    """The transcript with ``source=cache`` removed: what must not change."""
    out = []
    for s in t.steps:
        d = s.to_dict()
        inputs = {k: v for k, v in d.pop("inputs", {}).items() if k != "source"}
        out.append({**d, "inputs": inputs})
    return out


def cached_checks(t: Transcript) -> set[str]:
    return {s.check for s in t.steps if s.inputs.get("source") == "cache"}


def tdx_run(case: str, cache: VendorCaches | None) -> Transcript:
    quote, tcb, times = TDX_CASES[case]
    t = Transcript()
    try:
        verify_tdx_evidence(read(quote), real_collateral(tcb), roots=production_roots(),
                            times=times, transcript=t, cache=cache)
    except AttestlogError:
        pass  # SPR_E4 is refused at tdx.tcb.level (MANIFEST): its transcript must not change
    return t


def snp_run(name: str, verifier: SnpVerifier) -> Transcript:
    t = Transcript(waive={"snp.crl"})  # the vectors carry no CRL: the check cannot run
    verifier.verify(vec(name), at=SNP_AT, collateral=SnpCollateral(vcek=vec(REAL[name])),
                    transcript=t)
    return t


def gpu_run(caches: GpuCaches) -> Transcript:
    report = parse_report_text(vector_path("nvidia", "nvtrust", "hopperAttestationReport.txt")
                               .read_bytes())
    t = Transcript(waive=GPU_WAIVE)
    verify_gpu_evidence(report, vector_path("nvidia", "nvtrust", GPU_CHAIN).read_bytes(),
                        nonce=parse_report(report).request.nonce, trust=GpuTrust.production(),
                        at=SNP_AT, transcript=t, caches=caches)
    return t


# ------------------------------------------------------------ same transcripts, real vectors

@pytest.mark.parametrize("case", sorted(TDX_CASES))
def test_tdx_warm_transcript_equals_cold_but_for_cache_sources(case: str) -> None:
    cache = VendorCaches()
    cold, warm = tdx_run(case, cache), tdx_run(case, cache)
    assert steps(warm) == steps(cold)
    assert steps(tdx_run(case, None)) == steps(cold)
    assert cold.verdict == warm.verdict
    # Warm: every chain and collateral signature came from the cache, and the revocation
    # lookups (the collateral's composite entry); the quote's own signature never.
    want = {"tdx.pck.chain", "tdx.qe.report.signature", "tdx.root_crl.signature",
            "tdx.pck_crl.chain", "tdx.pck_crl.signature", "tdx.tcb_info.chain",
            "tdx.tcb_info.signature", "tdx.qe.identity.chain", "tdx.qe.identity.signature",
            "tdx.root_crl.revocation", "tdx.pck_crl.revocation"}
    assert cached_checks(warm) == want
    assert "tdx.quote.signature" not in cached_checks(warm)
    # Cold: only what this very quote met twice (the PCK CA under the root; one TCB signer).
    assert cached_checks(cold) <= {"tdx.pck_crl.chain", "tdx.qe.identity.chain"}


@pytest.mark.parametrize("name", sorted(REAL))
def test_snp_warm_transcript_equals_cold_but_for_cache_sources(name: str) -> None:
    verifier = SnpVerifier.production()
    cold, warm = snp_run(name, verifier), snp_run(name, verifier)
    assert steps(warm) == steps(cold)
    assert cached_checks(cold) == set() and cached_checks(warm) == {"snp.vcek.chain"}


def test_gpu_warm_transcript_equals_cold_but_for_cache_sources() -> None:
    caches = GpuCaches()
    cold, warm = gpu_run(caches), gpu_run(caches)
    assert steps(warm) == steps(cold)
    assert cached_checks(cold) == set() and cached_checks(warm) == {"gpu.chain"}


def test_threads_sharing_the_caches_give_the_sequential_transcripts() -> None:
    sequential = ([steps(tdx_run(c, None)) for c in sorted(TDX_CASES)]
                  + [steps(snp_run(n, SnpVerifier.production())) for n in sorted(REAL)]
                  + [steps(gpu_run(GpuCaches()))])
    vendor, snp, gpu = VendorCaches(), SnpVerifier.production(), GpuCaches()
    jobs = ([lambda c=c: steps(tdx_run(c, vendor)) for c in sorted(TDX_CASES)]
            + [lambda n=n: steps(snp_run(n, snp)) for n in sorted(REAL)]
            + [lambda: steps(gpu_run(gpu))])
    with ThreadPoolExecutor(max_workers=8) as pool:
        rounds = [pool.map(lambda job: job(), jobs) for _ in range(12)]
        results = [list(r) for r in rounds]
    assert all(r == sequential for r in results)


# ------------------------------------------------------------ re-checked outside the window

def test_cached_pck_chain_is_rechecked_when_the_time_passes_its_validity() -> None:
    cache = VendorCaches()
    tdx_run("v5", cache)
    leaf = x509.load_pem_x509_certificates(
        _pck_chain_pem(read(V5)))[0]
    late = leaf.not_valid_after_utc + timedelta(days=1)
    with pytest.raises(VerificationError) as e:
        verify_tdx_evidence(read(V5), real_collateral("sample_tcbinfo_response_v5"),
                            roots=production_roots(), times=V5_TIMES.override(pck_chain=late),
                            cache=cache)
    assert e.value.check == "tdx.pck.chain" and e.value.field == "PCK.notAfter"


def test_cached_tcb_info_is_rechecked_when_the_time_passes_next_update() -> None:
    cache = VendorCaches()
    tdx_run("v5", cache)
    with pytest.raises(VerificationError) as e:
        verify_tdx_evidence(read(V5), real_collateral("sample_tcbinfo_response_v5"),
                            roots=production_roots(),
                            times=V5_TIMES.override(tcb_info=datetime(2030, 1, 1, tzinfo=UTC)),
                            cache=cache)
    assert e.value.check == "tdx.tcb_info.validity"


def test_cached_qe_identity_is_rechecked_when_the_time_passes_next_update() -> None:
    cache = VendorCaches()
    tdx_run("v5", cache)
    with pytest.raises(VerificationError) as e:
        verify_tdx_evidence(read(V5), real_collateral("sample_tcbinfo_response_v5"),
                            roots=production_roots(),
                            times=V5_TIMES.override(qe_identity=datetime(2030, 1, 1,
                                                                         tzinfo=UTC)),
                            cache=cache)
    assert e.value.check == "tdx.qe.identity.validity"


def test_cached_tcb_signing_chain_is_rechecked_when_the_time_passes_its_validity() -> None:
    cache = VendorCaches()
    tdx_run("v5", cache)
    with pytest.raises(VerificationError) as e:
        verify_tdx_evidence(read(V5), real_collateral("sample_tcbinfo_response_v5"),
                            roots=production_roots(),
                            times=V5_TIMES.override(tcb_signing_chain=datetime(
                                2026, 2, 3, tzinfo=UTC)), cache=cache)
    assert e.value.check == "tdx.tcb_info.chain"


def test_cached_tdx_crl_is_rechecked_when_the_time_passes_next_update() -> None:
    cache = VendorCaches()
    tdx_run("v5", cache)
    with pytest.raises(VerificationError) as e:
        verify_tdx_evidence(read(V5), real_collateral("sample_tcbinfo_response_v5"),
                            roots=production_roots(),
                            times=V5_TIMES.override(pck_crl=datetime(2026, 2, 3, tzinfo=UTC)),
                            cache=cache)
    assert e.value.check == "tdx.pck_crl.validity"


def test_a_new_tdx_crl_revoking_the_pck_is_refused_after_a_warm_run() -> None:
    s = tdx_sim()
    roots, quote, cache = [sim_root(s)], s.quote().to_bytes(), VendorCaches()
    times = VerificationTimes.uniform(SIM_NOW)
    verify_tdx_evidence(quote, sim_collateral(s), roots=roots, times=times, cache=cache)
    revoked = sim_collateral(s, pck_crl=s.pck_crl(revoked=(s.pck_cert.serial_number,)))
    with pytest.raises(VerificationError) as e:
        verify_tdx_evidence(quote, revoked, roots=roots, times=times, cache=cache)
    assert e.value.check == "tdx.pck_crl.revocation"


def test_cached_snp_chain_is_rechecked_when_the_time_passes_its_validity() -> None:
    verifier = SnpVerifier.production()
    name = "virtee-sev/report_milan.bin"
    snp_run(name, verifier)
    vcek = load_key_certificate(vec(REAL[name]), "VCEK")
    with pytest.raises(ChainError) as e:
        verifier.verify(vec(name), at=vcek.not_valid_after_utc + timedelta(seconds=1),
                        collateral=SnpCollateral(vcek=vec(REAL[name])))
    assert e.value.check == "snp.vcek.chain" and e.value.field == "VCEK.notAfter"


def test_cached_snp_crl_is_rechecked_when_it_changes_or_goes_stale() -> None:
    s = sim(MILAN)
    verifier = SnpVerifier(sim_roots(MILAN))
    report = s.report(version=3)
    good = SnpCollateral(vcek=der(s.vcek()), crl=s.crl())
    t = Transcript()
    verifier.verify(report, at=SNP_AT, collateral=good)
    verifier.verify(report, at=SNP_AT, collateral=good, transcript=t)
    assert "snp.crl" in cached_checks(t)
    revoking = replace(good, crl=s.crl((s.ask.serial_number,)))
    with pytest.raises(ChainError) as e:
        verifier.verify(report, at=SNP_AT, collateral=revoking)
    assert e.value.check == "snp.crl" and e.value.field == "ASK.serialNumber"
    short = replace(good, crl=s.crl(next_update=SNP_AT + timedelta(days=1)))
    verifier.verify(report, at=SNP_AT, collateral=short)
    with pytest.raises(ChainError) as e:
        verifier.verify(report, at=SNP_AT + timedelta(days=2), collateral=short)
    assert e.value.check == "snp.crl" and e.value.field == "CRL.nextUpdate"


def test_cached_gpu_chain_is_rechecked_when_the_time_leaves_its_validity() -> None:
    caches = GpuCaches()
    gpu_run(caches)
    certs = x509.load_pem_x509_certificates(
        vector_path("nvidia", "nvtrust", GPU_CHAIN).read_bytes())
    early = max(c.not_valid_before_utc for c in certs) - timedelta(days=1)  # valid to 9999
    report = parse_report_text(vector_path("nvidia", "nvtrust", "hopperAttestationReport.txt")
                               .read_bytes())
    with pytest.raises(ChainError) as e:
        verify_gpu_evidence(report, vector_path("nvidia", "nvtrust", GPU_CHAIN).read_bytes(),
                            nonce=None, trust=GpuTrust.production(), at=early,
                            transcript=Transcript(waive=GPU_WAIVE), caches=caches)
    assert e.value.check == "gpu.chain"


# ------------------------------------------------------------ failures are never cached

def test_a_failed_collateral_signature_is_never_cached_as_good() -> None:
    s = tdx_sim()
    roots, quote, cache = [sim_root(s)], s.quote().to_bytes(), VendorCaches()
    times = VerificationTimes.uniform(SIM_NOW)
    forged = sim_collateral(s, root_crl=tdx_sim(seed=b"other").root_crl())
    for _ in range(3):
        with pytest.raises(VerificationError) as e:
            verify_tdx_evidence(quote, forged, roots=roots, times=times, cache=cache)
        assert e.value.check == "tdx.root_crl.signature"
    assert not any(k[0] == "tdx.root_crl.signature" for k in cache.signatures._entries)


def test_a_failed_chain_is_never_cached_as_good() -> None:
    cache = VendorCaches()
    pem = _pck_chain_pem(read(V5))
    chain = x509.load_pem_x509_certificates(pem)
    late = chain[0].not_valid_after_utc + timedelta(days=1)
    for _ in range(2):
        with pytest.raises(ChainError):
            verify_chain(chain, production_roots(), at=late, check="tdx.pck.chain", cache=cache)
    assert len(cache.chains) == 0


def test_a_pinned_root_with_a_bad_self_signature_is_refused_every_time() -> None:
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "self-signed, wrongly")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7)
            .not_valid_before(SIM_NOW - timedelta(days=1))
            .not_valid_after(SIM_NOW + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(other, hashes.SHA256()))
    root = PinnedRoot("bad root", cert)
    for _ in range(3):
        with pytest.raises(ChainError) as e:
            verify_chain([cert], [root], at=SIM_NOW, check="test.chain", cache=VendorCaches())
        assert e.value.field == "cert[0].signature"


# ------------------------------------------------------------ the cache itself

def test_cache_is_lru_bounded_and_windowed() -> None:
    c: VerifiedCache[str, int] = VerifiedCache(maxsize=2)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    c.put("a", 1, t0, t0 + timedelta(days=1))
    c.put("b", 2)
    assert c.get("a", t0) == 1  # a is now the most recent
    c.put("c", 3)
    assert len(c) == 2 and c.get("b") is None and c.get("c") == 3
    assert c.get("a", t0 + timedelta(days=2)) is None  # outside its window: a miss
    assert c.get("a", t0 - timedelta(seconds=1)) is None
    assert c.get("a") is None  # a windowed fact needs a time


def _pck_chain_pem(quote: bytes) -> bytes:
    from attest.formats.tdx_quote import parse_quote

    return parse_quote(quote).signature_data.certification.pck_cert_chain.rstrip(b"\x00")


def test_cache_stays_bounded_and_consistent_under_concurrent_lookups_and_inserts() -> None:
    c: VerifiedCache[tuple[bytes, int], int] = VerifiedCache(maxsize=16)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def work(seed: int) -> list[str]:
        wrong = []
        for i in range(3000):
            key = (b"k", (seed * 7 + i) % 40)
            if i % 3 == 0:
                c.put(key, key[1], t0, t0 + timedelta(days=1))
            got = c.get(key, t0)
            if got is not None and got != key[1]:
                wrong.append(f"{key} -> {got}")
            if c.get(key, t0 + timedelta(days=2)) is not None:
                wrong.append(f"{key} outside its window")
        return wrong

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert [w for ws in pool.map(work, range(8)) for w in ws] == []
    c.put((b"k", 99), 99)  # an insert also drops the read marks of evicted entries
    assert len(c) <= 16 and len(c._read) <= 16 and c.get((b"k", 99)) == 99
