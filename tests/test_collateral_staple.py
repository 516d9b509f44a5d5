"""The node staples vendor collateral it fetched (attest/collateral/stapler.py) and the client
verifies with no network; the client fetches what was not stapled when online, verified the
same way (issues 6 and 7). Fake vendor services on 127.0.0.1 only."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from pipeline_support import World, make_world

from attest.agent.service import probe_identity
from attest.bundle_builder import build_bundle
from attest.collateral.stapler import CollateralServices, CollateralStapler, StaplingPlatform
from attest.simulate.fake_service import serve
from transparency_log.errors import FetchError
from transparency_log.http_fetch import DiskCache, HttpFetcher
from verifier.pipeline import ACCEPTED
from verifier.pipeline_trust import VerifierCaches


def services(base: str) -> CollateralServices:
    return CollateralServices(amd_kds=base, intel_pcs=base,
                              intel_root_crl=base + "/IntelSGXRootCA.der",
                              nvidia_rim=base + "/v1/rim/", nvidia_ocsp=base)


def stapled_bundle(world: World, base: str, cache: Path | None = None) -> bytes:
    fx = world.fx
    bare = copy.copy(fx.platform)  # the same simulated chips and keys, stapling nothing
    bare.bare = True
    stapler = CollateralStapler(HttpFetcher(retries=0), services=services(base),
                                cache=DiskCache(cache) if cache else None)
    return build_bundle(StaplingPlatform(bare, stapler), fx.nonce, fx.node_key,
                        fx.release_entry, fx.tlog_proof, simulated=True).encode()


@pytest.mark.parametrize("cpu", ["sev-snp", "tdx"])
def test_node_staples_fetched_collateral_and_client_verifies_offline(tmp_path: Path,
                                                                      cpu: str) -> None:
    world = make_world(tmp_path, cpu=cpu, gpus=2)
    with serve(world.fx.platform.fake_vendor_service()) as base:
        data = stapled_bundle(world, base)
    result = world.verify(data, caches=VerifierCaches(), fetch=None)
    assert result.verdict == ACCEPTED, result.error


def _stapling(world: World, base: str, fetch=None, cache: Path | None = None):  # type: ignore[no-untyped-def]
    bare = copy.copy(world.fx.platform)
    bare.bare = True
    stapler = CollateralStapler(fetch or HttpFetcher(retries=0), services=services(base),
                                cache=DiskCache(cache) if cache else None)
    return StaplingPlatform(bare, stapler)


@pytest.mark.parametrize(("cpu", "down", "check"), [
    ("sev-snp", "/vcek/", "agent.collateral.snp.vcek"),
    ("sev-snp", "/crl", "agent.collateral.snp.crl"),
    ("tdx", "/tdx/certification/v4/tcb", "agent.collateral.tdx.tcb_info"),
    ("sev-snp", "/v1/rim/NV_GPU_DRIVER", "agent.collateral.gpu.rim.driver"),
    ("sev-snp", "/M", "agent.collateral.gpu.ocsp"),
])
def test_agent_refuses_to_start_when_a_service_is_down(tmp_path: Path, cpu: str, down: str,
                                                       check: str) -> None:
    world = make_world(tmp_path, cpu=cpu, gpus=1, sync_mirror=False)
    fx = world.fx
    service = fx.platform.fake_vendor_service()
    inner = service.handle

    def handle(method: str, target: str, body: bytes):  # type: ignore[no-untyped-def]
        if down in target:
            return 503, {}, b"down\n"
        return inner(method, target, body)

    service.handle = handle  # type: ignore[method-assign]
    with serve(service) as base, pytest.raises(FetchError) as info:
        probe_identity(_stapling(world, base), fx.node_key)
    assert info.value.check == check
    assert info.value.exit_code == 3
    assert info.value.field  # the item's bundle name


def test_refresh_refetches_and_keeps_the_last_on_failure(tmp_path: Path) -> None:
    world = make_world(tmp_path, cpu="sev-snp", gpus=1, sync_mirror=False)
    fx = world.fx
    service = fx.platform.fake_vendor_service()
    with serve(service) as base:
        platform = _stapling(world, base, cache=tmp_path / "cache")
        first = build_bundle(platform, fx.nonce, fx.node_key, fx.release_entry,
                             fx.tlog_proof, simulated=True)
        n = len(service.requests)
        build_bundle(platform, fx.nonce, fx.node_key, fx.release_entry, fx.tlog_proof,
                     simulated=True)
        assert len(service.requests) == n  # bundles reuse what was fetched
        assert platform.refresh_collateral() == []
        assert len(service.requests) > n  # the timer fetches everything anew
    assert platform.refresh_collateral()  # services gone: failures reported ...
    again = build_bundle(platform, fx.nonce, fx.node_key, fx.release_entry, fx.tlog_proof,
                         simulated=True)
    assert again.collateral.keys() == first.collateral.keys()  # ... the last ones kept
    # A restarted agent with the services down boots from its disk cache.
    with serve(fx.platform.fake_vendor_service()) as dead:
        pass
    restarted = _stapling(world, dead, cache=tmp_path / "cache")
    assert probe_identity(restarted, fx.node_key) is not None
