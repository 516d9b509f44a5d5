"""The client fetching collateral a node did not staple (issues 6 and 7): a bundle from the
world's simulated chips with nothing stapled (``bare_bundle``), and a fetch that answers the
production vendor URLs (AMD KDS, Intel PCS and root CRL, NVIDIA RIM and OCSP) from a fake
vendor service on 127.0.0.1 (``routed``)."""

from __future__ import annotations

import copy

from attest.bundle_builder import build_bundle
from attest.collateral.kds_fetch import KDS_BASE
from attest.collateral.ocsp_fetch import NVIDIA_OCSP_URL
from attest.collateral.pcs_fetch import PCS_BASE, ROOT_CRL_URL
from attest.collateral.rim_fetch import NVIDIA_RIM_SERVICE
from tests.support.pipeline_support import World
from transparency_log.common.http_fetch import Fetch, FetchResponse, HttpFetcher

VENDOR_BASES = (KDS_BASE, PCS_BASE, NVIDIA_RIM_SERVICE.removesuffix("/v1/rim/"),
                NVIDIA_OCSP_URL)


def bare_bundle(world: World) -> bytes:
    """The world's bundle built on the same simulated chips and keys, stapling nothing."""
    fx = world.fx
    bare = copy.copy(fx.platform)
    bare.bare = True
    return build_bundle(bare, fx.nonce, fx.node_key, fx.release_entry, fx.tlog_proof,
                        simulated=True).encode()


def routed(base: str, urls: list[str] | None = None) -> Fetch:
    """The production vendor URLs, answered by the fake service at ``base``; each URL asked
    for is appended to ``urls`` when given."""
    http = HttpFetcher(retries=0)

    def fetch(url: str) -> FetchResponse:
        if urls is not None:
            urls.append(url)
        if url == ROOT_CRL_URL:
            return http(base + "/IntelSGXRootCA.der")
        for vendor in VENDOR_BASES:
            if url.startswith(vendor):
                return http(base + url[len(vendor):])
        raise AssertionError(f"unexpected URL {url}")

    return fetch
