"""Intel PCS v4 client (attest/collateral/pcs_fetch.py) against a fake PCS on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from attest.collateral.pcs_fetch import PcsClient, pck_ca_kind, pck_crl_url, tcb_info_url
from attest.simulate.fake_service import FakeService, serve
from tests.support.tdx_support import SIM_NOW, sim, sim_root
from transparency_log.common.errors import FetchError
from transparency_log.common.http_fetch import DiskCache, FetchResponse, HttpFetcher
from verifier.tdx.collateral import VerificationTimes
from verifier.tdx.evidence import verify_tdx_evidence


def test_urls() -> None:
    assert tcb_info_url("https://x", bytes.fromhex("50806f000000")) == (
        "https://x/tdx/certification/v4/tcb?fmspc=50806f000000")
    assert pck_crl_url("https://x", "processor").endswith("pckcrl?ca=processor&encoding=der")
    assert pck_ca_kind("CN=Intel SGX PCK Processor CA") == "processor"
    assert pck_ca_kind("CN=Intel SGX PCK Platform CA") == "platform"
    with pytest.raises(ValueError):
        pck_crl_url("https://x", "other")


def test_fetch_from_fake_pcs_verifies_and_is_cached(tmp_path: Path) -> None:
    s = sim()
    service = FakeService(s.pcs_routes())
    cache = DiskCache(tmp_path)
    with serve(service) as base:
        client = PcsClient(HttpFetcher(retries=0), cache=cache, base=base,
                           root_crl_url=base + "/IntelSGXRootCA.der")
        coll = client.collateral(s.extensions.fmspc)
        assert len(service.requests) == 4
        again = client.collateral(s.extensions.fmspc)
        assert len(service.requests) == 4, "warm cache: no request"
        assert again == coll
    assert coll.tcb_info_issuer_chain == s.tcb_signing_chain_pem
    result = verify_tdx_evidence(s.quote().to_bytes(), coll, roots=[sim_root(s)],
                                 times=VerificationTimes.uniform(SIM_NOW))
    assert result.tcb.status == "UpToDate"
    # Offline: the cache only.
    offline = PcsClient(None, cache=cache, base=base, root_crl_url=base + "/IntelSGXRootCA.der")
    assert offline.collateral(s.extensions.fmspc) == coll


def test_offline_without_cache_is_a_fetch_error() -> None:
    with pytest.raises(FetchError) as err:
        PcsClient(None).collateral(bytes(6))
    assert err.value.exit_code == 3


def test_missing_issuer_chain_header_and_http_errors() -> None:
    def no_header(url: str) -> FetchResponse:
        return FetchResponse(200, b"{}", {})

    with pytest.raises(FetchError, match="issuer chain header missing"):
        PcsClient(no_header).collateral(bytes(6))

    def not_found(url: str) -> FetchResponse:
        return FetchResponse(404, b"", {})

    with pytest.raises(FetchError, match="HTTP 404"):
        PcsClient(not_found).collateral(bytes(6))


def test_refresh_bypasses_the_cache(tmp_path: Path) -> None:
    s = sim()
    service = FakeService(s.pcs_routes())
    with serve(service) as base:
        kwargs = {"cache": DiskCache(tmp_path), "base": base,
                  "root_crl_url": base + "/IntelSGXRootCA.der"}
        PcsClient(HttpFetcher(retries=0), **kwargs).collateral(s.extensions.fmspc)
        PcsClient(HttpFetcher(retries=0), refresh=True, **kwargs).collateral(s.extensions.fmspc)
    assert len(service.requests) == 8
