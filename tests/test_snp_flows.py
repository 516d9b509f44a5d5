"""Simulated SEV-SNP flows: every product and report version through the fake KDS (429
back-off included), VLEK, revocation, caching, offline mode, and one test per failing check."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attest.collateral.kds_fetch import KdsClient
from attest.formats.snp_report import GENOA, MILAN, SIGNING_KEY_NONE, TURIN, encode_tcb
from attest.simulate.fake_kds import fake_kds
from attest.simulate.fake_service import serve
from attest.simulate.snp import der
from tests.support.snp_fixtures import AT, sim, sim_roots
from transparency_log.common.errors import (
    ChainError,
    FetchError,
    FormatError,
    SignatureError,
    TrustConfigError,
    VerificationError,
)
from transparency_log.common.http_fetch import DiskCache, HttpFetcher
from verifier.checks import CheckNotRun
from verifier.snp.verify import SnpCollateral, SnpVerifier
from verifier.transcript import Transcript

PRODUCTS = (MILAN, GENOA, TURIN)


def online(base: str, cache: DiskCache | None = None) -> KdsClient:
    return KdsClient(HttpFetcher(sleep=lambda s: None, retries=3), cache, base=base)


@pytest.mark.parametrize("product", PRODUCTS)
def test_each_product_and_version_verifies_through_the_fake_kds(product: str) -> None:
    sims = {p: sim(p) for p in PRODUCTS}
    service = fake_kds(sims, throttle=2)  # the first two requests get 429
    with serve(service) as base:
        v = SnpVerifier(sim_roots(), kds=online(base))
        for version in (2, 3, 5):
            raw = sim(product).report(version=version, report_data=b"\x42" * 64)
            res = v.verify(raw, at=AT, product=product if version == 2 else None)
            assert res.product == product and res.report.report_data == b"\x42" * 64
            assert all(s.result == "pass" for s in res.transcript.steps)
    paths = [t for _, t in service.requests]
    assert any(f"/vcek/v1/{product}/{sim(product).hwid.hex()}?" in p for p in paths)
    assert any(p == f"/vcek/v1/{product}/crl" for p in paths)
    if product == TURIN:
        assert any("fmcSPL=1&blSPL=3" in p for p in paths)


def test_kds_is_asked_for_reported_tcb_not_current_tcb() -> None:
    s = sim(MILAN)
    current = encode_tcb(MILAN, boot_loader=3, tee=0, snp=8, microcode=0xCE)
    raw = s.report(version=3, current_tcb=current)
    service = fake_kds({MILAN: s})
    with serve(service) as base:
        SnpVerifier(sim_roots(MILAN), kds=online(base)).verify(raw, at=AT)
    vcek_paths = [t for _, t in service.requests if "SPL" in t]
    assert vcek_paths and all("ucodeSPL=115" in p for p in vcek_paths)


def test_vlek_flow_and_its_extensions() -> None:
    s = sim(GENOA)
    raw = s.report(version=5, vlek=True)
    res = SnpVerifier(sim_roots(GENOA), kds=None).verify(
        raw, at=AT, collateral=SnpCollateral(vlek=der(s.vlek()), crl=s.crl()))
    assert res.key.role == "VLEK" and res.key.extensions.csp_id == "attestlog-sim-csp"
    assert res.key.extensions.hwid is None


def test_vlek_not_supplied_cannot_be_fetched() -> None:
    s = sim(GENOA)
    with pytest.raises(FetchError) as e:
        SnpVerifier(sim_roots(GENOA), kds=online("http://127.0.0.1:9")).verify(
            s.report(version=3, vlek=True), at=AT)
    assert e.value.check == "snp.vcek.collateral"


def test_revoked_ask_fails_the_crl_check() -> None:
    s = sim(MILAN)
    col = SnpCollateral(vcek=der(s.vcek()), crl=s.crl((s.ask.serial_number,)))
    with pytest.raises(ChainError) as e:
        SnpVerifier(sim_roots(MILAN)).verify(s.report(version=3), at=AT, collateral=col)
    assert e.value.check == "snp.crl" and e.value.field == "ASK.serialNumber"


def test_crl_not_signed_by_the_ark_fails() -> None:
    s, other = sim(MILAN), sim(GENOA)
    forged = replace(other, ark=s.ark).crl()  # issuer name of Milan's ARK, Genoa's key
    col = SnpCollateral(vcek=der(s.vcek()), crl=forged)
    with pytest.raises(ChainError) as e:
        SnpVerifier(sim_roots(MILAN)).verify(s.report(version=3), at=AT, collateral=col)
    assert e.value.check == "snp.crl" and e.value.field == "CRL.signature"


def test_stale_crl_fails() -> None:
    s = sim(MILAN)
    crl = s.crl(next_update=datetime(2025, 1, 1, tzinfo=UTC))
    col = SnpCollateral(vcek=der(s.vcek()), crl=crl)
    with pytest.raises(ChainError) as e:
        SnpVerifier(sim_roots(MILAN)).verify(s.report(version=3), at=AT, collateral=col)
    assert e.value.field == "CRL.nextUpdate"


def test_offline_without_crl_cannot_run_and_is_a_failure_unless_waived() -> None:
    s = sim(MILAN)
    col = SnpCollateral(vcek=der(s.vcek()))
    t = Transcript()
    with pytest.raises(CheckNotRun) as e:
        SnpVerifier(sim_roots(MILAN)).verify(s.report(version=3), at=AT, collateral=col,
                                             transcript=t)
    assert e.value.check == "snp.crl"
    assert [(st.check, st.result) for st in t.steps if st.result != "pass"] == [
        ("snp.crl", "fail")]
    res = SnpVerifier(sim_roots(MILAN)).verify(s.report(version=3), at=AT, collateral=col,
                                               transcript=Transcript(waive={"snp.crl"}))
    [crl] = [st for st in res.transcript.steps if st.check == "snp.crl"]
    assert crl.result == "waived" and "revocation of the ASK/ASVK NOT checked" in crl.detail
    # A waiver never excuses a CRL that is there and refuses (only one that cannot be had).
    revoked = SnpCollateral(vcek=der(s.vcek()), crl=s.crl((s.ask.serial_number,)))
    with pytest.raises(ChainError) as e2:
        SnpVerifier(sim_roots(MILAN)).verify(s.report(version=3), at=AT, collateral=revoked,
                                             transcript=Transcript(waive={"snp.crl"}))
    assert e2.value.check == "snp.crl"


def test_kds_failing_for_the_crl_cannot_run_and_is_waived_only_by_name() -> None:
    s = sim(MILAN)
    col = SnpCollateral(vcek=der(s.vcek()))
    down = KdsClient(HttpFetcher(sleep=lambda x: None, retries=0), base="http://127.0.0.1:9")
    with pytest.raises(CheckNotRun) as e:
        SnpVerifier(sim_roots(MILAN), kds=down).verify(s.report(version=3), at=AT,
                                                       collateral=col)
    assert e.value.check == "snp.crl"
    t = Transcript(waive={"snp.crl"})
    SnpVerifier(sim_roots(MILAN), kds=down).verify(s.report(version=3), at=AT, collateral=col,
                                                   transcript=t)
    assert {st.check: st.result for st in t.steps}["snp.crl"] == "waived"


def test_cache_serves_offline_after_one_online_fetch(tmp_path) -> None:
    s = sim(TURIN)
    raw = s.report(version=5)
    cache = DiskCache(tmp_path)
    service = fake_kds({TURIN: s})
    with serve(service) as base:
        SnpVerifier(sim_roots(TURIN), kds=online(base, cache)).verify(raw, at=AT)
    n = len(service.requests)
    res = SnpVerifier(sim_roots(TURIN), kds=KdsClient(None, cache)).verify(raw, at=AT)
    assert len(service.requests) == n
    assert "from cache" in res.transcript.steps[2].detail
    with pytest.raises(FetchError):  # offline, empty cache
        SnpVerifier(sim_roots(TURIN), kds=KdsClient(None, DiskCache(tmp_path / "x"))).verify(
            raw, at=AT)


def test_unknown_chip_at_kds_is_a_fetch_error() -> None:
    s = sim(MILAN)
    raw = s.report(version=3, chip_id=b"\x01" * 64)
    with serve(fake_kds({MILAN: s})) as base, pytest.raises(FetchError):
        SnpVerifier(sim_roots(MILAN), kds=online(base)).verify(raw, at=AT)


def test_warm_verification_reuses_the_chain_and_gives_the_same_result() -> None:
    s = sim(MILAN)
    col = SnpCollateral(vcek=der(s.vcek()), crl=s.crl())
    v = SnpVerifier(sim_roots(MILAN))
    raw = s.report(version=3)
    a = v.verify(raw, at=AT, collateral=col)
    b = v.verify(raw, at=AT, collateral=col)
    assert a.key is b.key and a.report == b.report
    with pytest.raises(ChainError):  # the cache never stretches validity
        v.verify(s.report(version=3), at=datetime(2050, 1, 1, tzinfo=UTC), collateral=col)


# --- one test per failing check --------------------------------------------------------------

def _col(s, tcb=None):
    return SnpCollateral(vcek=der(s.vcek(tcb)), crl=s.crl())


def test_report_signed_by_another_key_fails_the_signature() -> None:
    s = sim(MILAN)
    rep = s.report_template(version=3)
    raw = s.sign(rep, key=ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(SignatureError) as e:
        SnpVerifier(sim_roots(MILAN)).verify(raw, at=AT, collateral=_col(s))
    assert e.value.check == "snp.report.signature"


def test_unsigned_report_is_refused() -> None:
    s = sim(MILAN)
    raw = s.report(version=3, signing_key=SIGNING_KEY_NONE)
    with pytest.raises(SignatureError):
        SnpVerifier(sim_roots(MILAN)).verify(raw, at=AT, collateral=_col(s))


def test_vcek_for_another_tcb_fails_the_extensions() -> None:
    s = sim(MILAN)
    other = encode_tcb(MILAN, boot_loader=3, tee=0, snp=9, microcode=115)
    with pytest.raises(VerificationError) as e:
        SnpVerifier(sim_roots(MILAN)).verify(s.report(version=3), at=AT,
                                             collateral=_col(s, other))
    assert e.value.check == "snp.vcek.extensions" and e.value.field == "REPORTED_TCB.SNP"


def test_vcek_of_another_chip_fails_the_extensions() -> None:
    s = sim(MILAN)
    raw = s.report(version=3, chip_id=b"\x07" * 64)
    with pytest.raises(VerificationError) as e:
        SnpVerifier(sim_roots(MILAN)).verify(raw, at=AT, collateral=_col(s))
    assert e.value.check == "snp.vcek.extensions" and e.value.field == "CHIP_ID"


def test_product_sources_must_agree() -> None:
    s = sim(MILAN)
    with pytest.raises(VerificationError) as e:
        SnpVerifier(sim_roots()).verify(s.report(version=3), at=AT, collateral=_col(s),
                                        product=GENOA)
    assert e.value.check == "snp.report.product"


def test_simulated_roots_are_not_trusted_by_default_and_unknown_products_refused() -> None:
    s = sim(GENOA)
    with pytest.raises(TrustConfigError):
        SnpVerifier(sim_roots(MILAN)).verify(s.report(version=3), at=AT, collateral=_col(s))
    with pytest.raises(ChainError):
        SnpVerifier.production().verify(s.report(version=3), at=AT, collateral=_col(s))


def test_vcek_with_an_octet_string_hwid_verifies() -> None:
    s = replace(sim(GENOA), hwid_encoding="octet-string", _vceks={})
    res = SnpVerifier(sim_roots(GENOA)).verify(
        s.report(version=3), at=AT, collateral=SnpCollateral(vcek=der(s.vcek()), crl=s.crl()))
    assert res.key.extensions.hwid_encoding == "octet-string"
    assert res.key.extensions.hwid == s.chip_id


def test_v2_report_with_no_product_source_is_refused() -> None:
    s = sim(MILAN)
    with pytest.raises(FormatError) as e:
        SnpVerifier(sim_roots(), kds=online("http://127.0.0.1:9")).verify(
            s.report(version=2), at=AT)
    assert e.value.check == "snp.report.product"


def test_transcript_records_input_digests() -> None:
    import hashlib

    s = sim(MILAN)
    raw = s.report(version=3)
    col = _col(s)
    res = SnpVerifier(sim_roots(MILAN)).verify(raw, at=AT, collateral=col)
    steps = {st.check: st for st in res.transcript.steps}
    assert steps["snp.report.format"].inputs == {
        "report_sha256": hashlib.sha256(raw).hexdigest()}
    assert steps["snp.vcek.chain"].inputs["key_sha256"] == hashlib.sha256(col.vcek).hexdigest()
    assert "crl_sha256" in steps["snp.crl"].inputs


def test_masked_chip_id_verifies_with_a_supplied_vcek_and_says_so() -> None:
    s = sim(MILAN)
    raw = s.report(version=3, mask_chip_key=True, chip_id=bytes(64))
    res = SnpVerifier(sim_roots(MILAN)).verify(raw, at=AT, collateral=_col(s))
    detail = {st.check: st.detail for st in res.transcript.steps}["snp.vcek.extensions"]
    assert "hwID not compared (MASK_CHIP_KEY" in detail
    with pytest.raises(FetchError):  # and it cannot be fetched by chip
        SnpVerifier(sim_roots(MILAN), kds=online("http://127.0.0.1:9")).verify(raw, at=AT)
