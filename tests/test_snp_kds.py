"""KDS URLs (pure) and the cache-then-network client."""

from __future__ import annotations

from pathlib import Path

import pytest

from attest.collateral.kds_fetch import KdsClient, cert_chain_url, crl_url, vcek_url
from attest.formats.snp_report import GENOA, MILAN, TURIN, decode_tcb, encode_tcb
from transparency_log.common.errors import FetchError
from transparency_log.common.http_fetch import DiskCache, FetchResponse


def test_urls() -> None:
    t = decode_tcb(encode_tcb(TURIN, fmc=1, boot_loader=2, tee=3, snp=4, microcode=5), TURIN)
    assert vcek_url(TURIN, bytes(range(64)), t, base="http://k") == (
        "http://k/vcek/v1/Turin/0001020304050607?fmcSPL=1&blSPL=2&teeSPL=3&snpSPL=4&ucodeSPL=5")
    assert cert_chain_url(GENOA) == "https://kdsintf.amd.com/vcek/v1/Genoa/cert_chain"
    assert crl_url(MILAN, "vlek") == "https://kdsintf.amd.com/vlek/v1/Milan/crl"


class Counting:
    def __init__(self, status: int = 200) -> None:
        self.urls: list[str] = []
        self.status = status

    def __call__(self, url: str) -> FetchResponse:
        self.urls.append(url)
        return FetchResponse(self.status, b"body:" + url.encode() if self.status == 200
                             else b"")


def test_vcek_is_fetched_once_per_chip_and_tcb(tmp_path: Path) -> None:
    fetch, cache = Counting(), DiskCache(tmp_path)
    kds = KdsClient(fetch, cache)
    tcb = decode_tcb(0x7308000000000003, MILAN)
    sources: list[str] = []
    a = kds.vcek(MILAN, b"\x01" * 64, tcb, on_get=lambda url, src, body: sources.append(src))
    assert sources == ["fetched"]
    assert kds.vcek(MILAN, b"\x01" * 64, tcb,
                    on_get=lambda url, src, body: sources.append(src)) == a
    assert sources == ["fetched", "cache"]
    kds.vcek(MILAN, b"\x01" * 64, decode_tcb(0x7408000000000003, MILAN))
    assert len(fetch.urls) == 2
    assert KdsClient(None, cache).vcek(MILAN, b"\x01" * 64, tcb) == a  # offline: cache


def test_crl_is_refreshed_online_and_falls_back_to_cache(tmp_path: Path) -> None:
    fetch, cache = Counting(), DiskCache(tmp_path)
    kds = KdsClient(fetch, cache)
    kds.crl(MILAN)
    kds.crl(MILAN)
    assert len(fetch.urls) == 2
    down = KdsClient(Counting(status=404), cache)
    sources: list[str] = []
    assert down.crl(MILAN, on_get=lambda url, src, body: sources.append(src)).startswith(
        b"body:") and sources == ["cache"]


def test_offline_or_not_found_without_cache_is_a_fetch_error(tmp_path: Path) -> None:
    with pytest.raises(FetchError):
        KdsClient(None, DiskCache(tmp_path)).cert_chain(MILAN)
    with pytest.raises(FetchError, match="HTTP 404"):
        KdsClient(Counting(status=404)).cert_chain(MILAN)
