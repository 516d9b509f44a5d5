"""The node staples vendor collateral it fetched (attest/collateral/stapler.py) and the client
verifies with no network; the client fetches what was not stapled when online, verified the
same way (issues 6 and 7). Fake vendor services on 127.0.0.1 only."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from urllib.parse import quote

import pytest

from attest.agent.config import load_config
from attest.agent.service import probe_identity
from attest.bundle_builder import build_bundle
from attest.collateral.kds_fetch import KDS_BASE
from attest.collateral.pcs_fetch import PCS_BASE
from attest.collateral.stapler import CollateralServices, CollateralStapler, StaplingPlatform
from attest.formats.bundle import decode_bundle
from attest.simulate import gpu as simgpu
from attest.simulate.fake_service import serve
from attest.simulate.snp import SimulatedAmd, der
from attest.simulate.tdx import IntelSimulator
from tests.support.collateral_fetch import bare_bundle, routed
from tests.support.hardware_fakes import NONCE, FakeTdxKernel, fake_snp_ioctl, node_key
from tests.support.node_agents import run_agent, write_config
from tests.support.pipeline_support import World, make_world
from transparency_log.common.errors import FetchError, TrustConfigError
from transparency_log.common.http_fetch import DiskCache, HttpFetcher
from verifier.pipeline_trust import VerifierCaches
from verifier.result import ACCEPTED, REFUSED


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


# --------------------------------------------------------------------------------------------
# The client: collateral the node did not staple is fetched when online (verified the same way)


@pytest.mark.parametrize("cpu", ["sev-snp", "tdx"])
def test_nothing_stapled_online_fetches_offline_fails_closed(tmp_path: Path, cpu: str) -> None:
    world = make_world(tmp_path, cpu=cpu, gpus=1)
    data = bare_bundle(world)
    offline = world.verify(data, caches=VerifierCaches(), fetch=None)
    assert offline.verdict == REFUSED
    assert offline.error is not None and offline.error.exit_code in (2, 3)
    urls: list[str] = []
    with serve(world.fx.platform.fake_vendor_service()) as base:
        online = world.verify(data, caches=VerifierCaches(), fetch=routed(base, urls))
    assert online.verdict == ACCEPTED, online.error
    sources = {c.source for c in online.collateral}
    assert "fetched" in sources and "stapled" not in sources
    assert any(u.startswith(KDS_BASE if cpu == "sev-snp" else PCS_BASE) for u in urls)
    doc = online.to_json()
    assert all("source" in c for c in doc["collateral"])


def _serve_forged(service, prefix: str, body: bytes, headers=None):  # type: ignore[no-untyped-def]
    inner = service.handle

    def handle(method: str, target: str, payload: bytes):  # type: ignore[no-untyped-def]
        if target.startswith(prefix):
            return 200, headers or {}, body
        return inner(method, target, payload)

    service.handle = handle
    return service


def _check(result) -> str:  # type: ignore[no-untyped-def]
    assert result.verdict == REFUSED and result.error is not None
    return result.error.check


def test_forged_vcek_fetched_is_refused_like_a_stapled_one(tmp_path: Path) -> None:
    world = make_world(tmp_path, cpu="sev-snp", gpus=1)
    amd = world.fx.platform.amd
    forger = SimulatedAmd.create(amd.product, chip_id=amd.chip_id)  # a self-made ARK
    forged = der(forger.vcek(amd.default_tcb()))
    service = _serve_forged(world.fx.platform.fake_vendor_service(), "/vcek/v1/", forged)
    with serve(service) as base:
        online = world.verify(bare_bundle(world), caches=VerifierCaches(), fetch=routed(base))
    b = world.fx.decoded
    snp = b.evidence[0]
    stapled = world.rebundle(evidence=(dataclasses.replace(
        snp, certs={**snp.certs, "vcek": forged}), *b.evidence[1:]))
    assert _check(online) == _check(world.verify(stapled, caches=VerifierCaches())) \
        == "snp.vcek.chain"


def test_forged_tcb_info_fetched_is_refused_like_a_stapled_one(tmp_path: Path) -> None:
    world = make_world(tmp_path, cpu="tdx", gpus=1)
    forger = IntelSimulator(now=world.fx.now, seed=b"forger")
    chain = quote(forger.tcb_signing_chain_pem.decode())
    service = _serve_forged(world.fx.platform.fake_vendor_service(),
                            "/tdx/certification/v4/tcb", forger.tcb_info(),
                            {"TCB-Info-Issuer-Chain": chain})
    with serve(service) as base:
        online = world.verify(bare_bundle(world), caches=VerifierCaches(), fetch=routed(base))
    stapled = world.rebundle(collateral={
        **world.fx.decoded.collateral, "intel/tcb_info": forger.tcb_info(),
        "intel/tcb_info_issuer_chain": forger.tcb_signing_chain_pem})
    assert _check(online) == _check(world.verify(stapled, caches=VerifierCaches()))
    assert _check(online).startswith("tdx.")


def test_forged_rim_fetched_is_refused_like_a_stapled_one(tmp_path: Path) -> None:
    world = make_world(tmp_path, cpu="sev-snp", gpus=1)
    p = world.fx.platform
    forger_pki = simgpu.make_rim_pki(b"forger-rim")
    forged_service = simgpu.fake_nvidia_service(p.sim_gpus, forger_pki, p.now)
    service = p.fake_vendor_service()
    inner = service.handle

    def handle(method: str, target: str, body: bytes):  # type: ignore[no-untyped-def]
        if target.startswith("/v1/rim/"):
            return forged_service.handle(method, target, body)
        return inner(method, target, body)

    service.handle = handle  # type: ignore[method-assign]
    with serve(service) as base:
        online = world.verify(bare_bundle(world), caches=VerifierCaches(), fetch=routed(base))
    driver, _ = p.sim_gpus[0].rims()
    b = world.fx.decoded
    name = b.gpu_evidence[0].rims["driver"]
    stapled = world.rebundle(collateral={**b.collateral,
                                         name: simgpu.sign_rim(driver, forger_pki)})
    assert _check(online) == _check(world.verify(stapled, caches=VerifierCaches()))
    assert _check(online).startswith("gpu.rim")


# --------------------------------------------------------------------------------------------
# `attest agent`: the [collateral] table


def test_agent_cli_refuses_to_start_without_collateral(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from attest.agent import cli_agent
    from attest.simulate.node_fixture import make_node_fixture

    monkeypatch.setattr(cli_agent, "HttpFetcher", lambda: HttpFetcher(retries=0))
    f = make_node_fixture(tmp_path / "world", gpus=0)
    with serve(f.platform.fake_vendor_service()) as dead:
        pass  # nothing listens there any more
    urls = "".join(f'{k} = "{dead}"\n' for k in ("amd_kds", "intel_pcs", "nvidia_ocsp"))
    extra = (f'[collateral]\n{urls}intel_root_crl = "{dead}/IntelSGXRootCA.der"\n'
             f'nvidia_rim = "{dead}/v1/rim/"\ncache_dir = "cache"\n')
    config = write_config(tmp_path, f.tiles_dir, f.log_vkey, gpus=0, extra=extra)
    config.write_text(config.read_text() + 'collateral = "services"\n')
    code, out = run_agent(config, "--simulate")
    assert code == 3, out
    assert "REFUSING TO START: agent.collateral.snp.vcek" in out and "amd/genoa/vcek/" in out
    # staple_collateral = false: the agent starts without it (clients must fetch).
    cfg = load_config(config)
    assert cfg.collateral.staple_collateral and cfg.collateral_cache == tmp_path / "cache"
    config.write_text(config.read_text().replace("[collateral]\n",
                                                 "[collateral]\nstaple_collateral = false\n"))
    platform = cli_agent._platform(load_config(config), True)
    assert not isinstance(platform, StaplingPlatform) and platform.bare  # type: ignore[attr-defined]


def test_collateral_config_is_fail_closed(tmp_path: Path) -> None:
    for extra, field in (('[collateral]\nstapel = true\n', "collateral.stapel"),
                         ('[collateral]\namd_kds = "ftp://x"\n', "collateral.amd_kds"),
                         ('[collateral]\nstaple_collateral = "no"\n',
                          "collateral.staple_collateral")):
        config = write_config(tmp_path, tmp_path, "k", extra=extra)
        with pytest.raises(TrustConfigError) as info:
            load_config(config)
        assert info.value.field == field
    defaults = load_config(write_config(tmp_path, tmp_path, "k")).collateral
    assert defaults.staple_collateral and defaults.services == CollateralServices()


def test_stale_stapled_collateral_is_refetched_online(tmp_path: Path) -> None:
    from datetime import timedelta

    world = make_world(tmp_path, cpu="tdx", gpus=1)
    intel = world.fx.platform.intel
    now = world.fx.now
    old = intel.tcb_info(issue=now - timedelta(days=40), next_update=now - timedelta(days=10))
    stale = world.rebundle(collateral={**world.fx.decoded.collateral, "intel/tcb_info": old})
    offline = world.verify(stale, caches=VerifierCaches())
    assert offline.verdict == REFUSED and offline.error is not None
    assert offline.error.check.startswith("tdx.")
    with serve(world.fx.platform.fake_vendor_service()) as base:
        online = world.verify(stale, caches=VerifierCaches(), fetch=routed(base))
    assert online.verdict == ACCEPTED, online.error
    assert any(s.check == "collateral.stale" for s in online.transcript.steps)
    assert any(c.source == "fetched" and "tcb?fmspc=" in c.name for c in online.collateral)


def test_agent_serves_stapled_bundles_verified_offline_and_refreshes(tmp_path: Path) -> None:
    """The running agent (boot_agent + NodeAgent) on bare simulated hardware: every bundle
    carries the fetched collateral, a client with no network accepts it, and the refresh
    timer fetches the collateral anew."""
    from attest.agent.config import AgentSettings
    from attest.agent.node_identity import make_node_identity
    from attest.agent.release_lookup import ReleaseTracker
    from attest.agent.service import boot_agent
    from attest.simulate.node_fixture import release_key
    from transparency_log.client.log_client import LogClient, directory_source
    from transparency_log.core.key_types import Verifier
    from verifier.pipeline import verify_bundle

    world = make_world(tmp_path, cpu="sev-snp", gpus=1)
    fx = world.fx
    service = fx.platform.fake_vendor_service()
    client = LogClient(directory_source(fx.tiles_dir), Verifier(fx.log_vkey))
    with serve(service) as base:
        agent = boot_agent(_stapling(world, base), make_node_identity(fx.now),
                           lambda ident: ReleaseTracker(client, (release_key().public,), ident),
                           settings=AgentSettings(), wall=lambda: 0.0, monotonic=lambda: 0.0)
        data = agent.bundle(fx.nonce)
        before = len(service.requests)
        agent.refresh()
        assert len(service.requests) > before
    assert {"amd/genoa/crl", "nvidia/rim/driver/550.90.07"} <= set(
        decode_bundle(data).collateral)
    result = verify_bundle(data, world.policy, at=fx.now, expected_nonce=fx.nonce,
                           trust=world.trust, fetch=None, caches=VerifierCaches(),
                           checkpoint_store=world.store, revocations=world.mirror)
    assert result.accepted
    assert {c.source for c in result.collateral} == {"stapled"}


# --------------------------------------------------------------------------------------------
# Real-hardware path (fake devices): the stapler completes what the device hands out


def test_hardware_snp_certificate_table_completed_with_the_crl(tmp_path: Path) -> None:
    from attest.platform import detect_platform
    from attest.simulate.fake_kds import fake_kds

    amd = SimulatedAmd.create("Milan")
    (tmp_path / "sev-guest").write_bytes(b"")
    hw = detect_platform(tsm_root=tmp_path / "none", sev_device=tmp_path / "sev-guest",
                         tdx_device=tmp_path / "x", snp_ioctl=fake_snp_ioctl(amd), nvml=False)
    kds = fake_kds({"Milan": amd})
    with serve(kds) as base:
        platform = StaplingPlatform(hw, CollateralStapler(HttpFetcher(retries=0),
                                                          services=services(base)))
        bundle = build_bundle(platform, NONCE, node_key(), b"r", b"p", simulated=False)
    assert sorted(bundle.cpu_evidence.certs) == ["ark", "ask", "vcek"]  # from the table
    assert bundle.cpu_evidence.collateral == {"crl": "amd/milan/crl"}
    assert set(bundle.collateral) == {"amd/milan/crl"}
    assert [t for _, t in kds.requests] == ["/vcek/v1/Milan/crl"]  # nothing else needed


def test_hardware_tdx_quote_gets_pcs_collateral(tmp_path: Path) -> None:
    from cryptography import x509

    from attest.formats.bundle import TDX_COLLATERAL_ROLES
    from attest.platform import detect_platform
    from attest.simulate.fake_service import FakeService
    from attest.simulate.platform import SIM_NOW
    from verifier.tdx.collateral import TdxCollateral, VerificationTimes
    from verifier.tdx.evidence import verify_tdx_evidence
    from verifier.x509chain import PinnedRoot

    root = tmp_path / "tsm"
    root.mkdir()
    kernel = FakeTdxKernel()
    hw = detect_platform(tsm_root=root, sev_device=tmp_path / "x", tdx_device=tmp_path / "y",
                         tsm_fs=kernel, nvml=False)
    pcs = FakeService(kernel.intel.pcs_routes())
    with serve(pcs) as base:
        platform = StaplingPlatform(hw, CollateralStapler(HttpFetcher(retries=0),
                                                          services=services(base)))
        bundle = build_bundle(platform, NONCE, node_key(), b"r", b"p", simulated=False)
        before = len(pcs.requests)
        assert platform.refresh_collateral() == []
        assert len(pcs.requests) - before == 7  # every role fetched anew, none memoised
    assert set(bundle.cpu_evidence.collateral) == set(TDX_COLLATERAL_ROLES)
    decode_bundle(bundle.encode())  # every name resolves
    col = TdxCollateral(**{role: bundle.collateral[name]
                           for role, name in bundle.cpu_evidence.collateral.items()})
    intel_root = x509.load_pem_x509_certificate(kernel.intel.root_pem)
    verify_tdx_evidence(bundle.cpu_evidence.quote, col,
                        roots=(PinnedRoot("SIMULATED Intel root", intel_root),),
                        times=VerificationTimes.uniform(SIM_NOW))
