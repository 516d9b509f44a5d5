"""attest agent: it refuses to start in every failure case, serves fresh and cached bundles,
rate-limits fresh reports and stops serving once its release is revoked; config is strict;
the cached-bundle nonce encoding."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from attest.agent import cli_agent
from attest.agent.config import load_config, parse_config
from attest.agent.node_identity import make_node_identity
from attest.agent.nonce import TIME_NONCE_PREFIX, parse_time_nonce, time_nonce
from attest.agent.release_lookup import ReleaseTracker
from attest.agent.service import (
    BUNDLE_PATH,
    TRUST_PATH,
    TokenBucket,
    boot_agent,
    create_agent_app,
)
from attest.formats.bundle import decode_bundle
from attest.platform import detect_platform
from attest.release.dsse import entry_statement_digest, sign_statement
from attest.release.statement import Revocation
from attest.simulate.node_fixture import make_node_fixture, release_key, simulated_release
from attest.simulate.platform import SimulatedPlatform
from tests.support.log_fixtures import relogged_variant
from tests.support.node_agents import SEED, run_agent, write_config
from transparency_log.client.log_client import LogClient, directory_source
from transparency_log.common.asgi_serving import serve_in_thread
from transparency_log.common.errors import FormatError, PolicyError, TrustConfigError
from transparency_log.core.key_types import Verifier

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("case", "check", "code"), [
    ("unlogged", "agent.release.not_logged", 5),
    ("revoked", "agent.release.revoked", 5),
])
def test_agent_refuses_unlogged_or_revoked_build(tmp_path: Path, case: str, check: str,
                                                  code: int) -> None:
    f = make_node_fixture(tmp_path / "world", case=case, gpus=1)
    code_got, out = run_agent(write_config(tmp_path, f.tiles_dir, f.log_vkey), "--simulate")
    assert code_got == code
    assert f"REFUSING TO START: {check}" in out
    assert "SIMULATED HARDWARE" in out


@pytest.mark.parametrize(("cc_mode", "check", "code"), [
    ("off", "gpu.collect.cc_mode", 3),
    ("devtools", "agent.gpu.cc_mode", 5),
])
def test_agent_refuses_gpus_not_in_cc_mode(tmp_path: Path, cc_mode: str, check: str,
                                           code: int) -> None:
    f = make_node_fixture(tmp_path / "world", gpus=1)
    config = write_config(tmp_path, f.tiles_dir, f.log_vkey, cc_mode=cc_mode)
    got, out = run_agent(config, "--simulate")
    assert got == code and f"REFUSING TO START: {check}" in out, out


def test_agent_refuses_without_evidence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = make_node_fixture(tmp_path / "world", gpus=0)
    monkeypatch.setattr(cli_agent, "detect_platform", lambda: detect_platform(
        tsm_root=tmp_path / "no-tsm", sev_device=tmp_path / "no-sev",
        tdx_device=tmp_path / "no-tdx", nvml=False))
    got, out = run_agent(write_config(tmp_path, f.tiles_dir, f.log_vkey))
    assert got == 3 and "REFUSING TO START: platform.detect" in out


def test_agent_refuses_when_the_device_fails(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    f = make_node_fixture(tmp_path / "world", gpus=0)
    monkeypatch.setattr(cli_agent, "_platform", lambda cfg, simulate: SimulatedPlatform(
        gpus=0, seed=SEED.encode(), fail_collect=True))
    got, out = run_agent(write_config(tmp_path, f.tiles_dir, f.log_vkey), "--simulate")
    assert got == 3 and "REFUSING TO START: snp.collect.device" in out


def test_unsafe_serve_unlogged_needs_an_entry(tmp_path: Path) -> None:
    got, out = run_agent(tmp_path / "x.toml", "--simulate", "--unsafe-serve-unlogged")
    assert got == 64 and "--release-entry" in out  # a usage error


# --------------------------------------------------------------------------- running agent


def booted(tmp_path: Path, *, cpu: str = "sev-snp", gpus: int = 1, clock: list[float],
           settings_toml: str = "", case: str = "ok"):
    f = make_node_fixture(tmp_path / "world", case=case, cpu=cpu, gpus=gpus)
    cfg = load_config(write_config(tmp_path, f.tiles_dir, f.log_vkey, cpu=cpu, gpus=gpus,
                                   extra=settings_toml))
    platform = SimulatedPlatform(cpu=cpu, gpus=gpus, seed=SEED.encode(), now=NOW)
    client = LogClient(directory_source(f.tiles_dir), Verifier(f.log_vkey))
    agent = boot_agent(platform, make_node_identity(NOW), lambda ident: ReleaseTracker(
        client, cfg.release_keys, ident), settings=cfg.agent, wall=lambda: clock[0],
        monotonic=lambda: clock[0])
    return f, agent


def test_boot_finds_the_release_and_serves_bundles(tmp_path: Path) -> None:
    clock = [1_800_000_000.0]
    f, agent = booted(tmp_path, clock=clock, gpus=2)
    assert agent.own.entry == f.release_entry and agent.own.index == 1
    with serve_in_thread(create_agent_app(agent)) as (host, port):
        url = f"http://{host}:{port}{BUNDLE_PATH}"
        nonce = os.urandom(48)
        reply = requests.post(url, data=nonce, timeout=30)
        assert reply.status_code == 200 and reply.headers["content-type"] == "application/cbor"
        bundle = decode_bundle(reply.content)
        assert bundle.nonce == nonce and bundle.simulated and len(bundle.gpu_evidence) == 2
        assert bundle.release == f.release_entry and bundle.node_key == agent.identity.node_key
        cached = requests.get(url, timeout=30)
        again = requests.get(url, timeout=30)
        assert cached.content == again.content
        assert parse_time_nonce(decode_bundle(cached.content).nonce) == int(clock[0])
        clock[0] += 61  # older than cached_max_age (60 s): remade
        assert requests.get(url, timeout=30).content != cached.content
        assert requests.post(url, data=b"short", timeout=30).status_code == 400
        prefixed = TIME_NONCE_PREFIX + bytes(16)
        assert requests.post(url, data=prefixed, timeout=30).status_code == 400
        trust = requests.get(f"http://{host}:{port}{TRUST_PATH}", timeout=30)
        assert trust.status_code == 200 and b"amd_ark" in trust.content


def test_fresh_reports_are_rate_limited(tmp_path: Path) -> None:
    clock = [1_800_000_000.0]
    _, agent = booted(tmp_path, clock=clock, gpus=0,
                      settings_toml="[agent]\nfresh_per_second = 1\nfresh_burst = 2\n")
    with serve_in_thread(create_agent_app(agent)) as (host, port):
        url = f"http://{host}:{port}{BUNDLE_PATH}"
        codes = [requests.post(url, data=os.urandom(32), timeout=30) for _ in range(3)]
        assert [r.status_code for r in codes] == [200, 200, 429]
        assert int(codes[2].headers["retry-after"]) >= 1
        assert requests.get(url, timeout=30).status_code == 200  # the cached one still works
        clock[0] += 1.0
        assert requests.post(url, data=os.urandom(32), timeout=30).status_code == 200


@pytest.mark.parametrize("on_revocation", ["stop", "warn"])
def test_refresh_notices_a_revocation(tmp_path: Path, on_revocation: str) -> None:
    clock = [1_800_000_000.0]
    f, agent = booted(tmp_path, clock=clock, gpus=0, cpu="tdx",
                      settings_toml=f'[agent]\non_revocation = "{on_revocation}"\n')
    first = agent.own
    agent.refresh()
    assert agent.own == first and agent.stopped is None
    f.revoke()  # the log grows: a revocation of this release, witnessed
    agent.refresh()
    with serve_in_thread(create_agent_app(agent)) as (host, port):
        reply = requests.post(f"http://{host}:{port}{BUNDLE_PATH}", data=os.urandom(32),
                              timeout=30)
    if on_revocation == "stop":
        assert agent.stopped is not None
        assert reply.status_code == 503 and "revoked" in reply.text
    else:
        assert agent.stopped is None and reply.status_code == 200
        assert agent.own == first


def _post(agent) -> requests.Response:
    with serve_in_thread(create_agent_app(agent)) as (host, port):
        return requests.post(f"http://{host}:{port}{BUNDLE_PATH}", data=os.urandom(32),
                             timeout=30)


def _sign(statement) -> bytes:
    return sign_statement(statement, [release_key()]).encode()


def test_revocation_switches_loudly_then_stops_when_nothing_covers_the_build(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 16, with ``on_revocation = "stop"``: when its release is revoked and another
    unrevoked release lists the same measurement, the agent staples that one (the release
    clients accept) and logs the switch at ERROR level; a re-logged variant of a revoked
    release is never stapled; when the build itself is revoked, nothing covers it: 503,
    logged."""
    caplog.set_level(logging.WARNING, logger="attest.agent")
    f, agent = booted(tmp_path, clock=[1_800_000_000.0], gpus=0,
                      settings_toml='[agent]\non_revocation = "stop"\n')
    original = agent.own
    sibling = _sign(simulated_release(f.platform, commit_seed="build-2"))  # same build
    f.append_entries([sibling])  # index 2: the newest release listing the measurement
    agent.refresh()
    assert agent.own.entry == sibling and agent.stopped is None
    # the sibling is revoked (its statement); the original, older, still covers the build
    f.append_entries([_sign(Revocation.of_statement(entry_statement_digest(sibling), "bad"))])
    f.append_entries([relogged_variant(sibling)])  # the attack: the same statement re-logged
    caplog.clear()
    agent.refresh()
    assert agent.own.entry == original.entry and agent.stopped is None
    switched = [r for r in caplog.records if "SWITCHED" in r.getMessage()]
    assert switched and switched[0].levelno == logging.ERROR
    assert "STILL SERVED" in switched[0].getMessage() and "--measurement" in \
        switched[0].getMessage()
    assert _post(agent).status_code == 200
    # the build itself is revoked: every release listing it, older or newer, is refused
    measurement = sorted(simulated_release(f.platform).measurements.listed())[0]
    f.append_entries([_sign(Revocation.of_measurement(measurement, "bad build"))])
    caplog.clear()
    agent.refresh()
    assert agent.stopped is not None
    stopped = [r for r in caplog.records if "NOT SERVING" in r.getMessage()]
    assert stopped and stopped[0].levelno == logging.ERROR
    reply = _post(agent)
    assert reply.status_code == 503 and "revoked" in reply.text
    # a re-release of the same build cannot bring it back
    f.append_entries([_sign(simulated_release(f.platform, commit_seed="build-3"))])
    agent.refresh()
    assert agent.stopped is not None and _post(agent).status_code == 503


def test_a_stopped_agent_serves_again_when_a_valid_release_covers_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="attest.agent")
    f, agent = booted(tmp_path, clock=[1_800_000_000.0], gpus=0)
    f.revoke()
    agent.refresh()
    assert agent.stopped is not None and _post(agent).status_code == 503
    f.append_entries([relogged_variant(f.release_entry)])  # not a valid release
    agent.refresh()
    assert agent.stopped is not None
    rereleased = _sign(simulated_release(f.platform, commit_seed="build-2"))
    f.append_entries([rereleased])  # a new statement of the build, not revoked
    agent.refresh()
    assert agent.stopped is None and agent.own.entry == rereleased
    assert any("SERVING AGAIN" in r.getMessage() for r in caplog.records)
    assert _post(agent).status_code == 200


# --------------------------------------------------------------------------- small parts


def test_time_nonce_round_trip() -> None:
    n = time_nonce(1_800_000_123, b"\x01" * 8)
    assert len(n) == 32 and n.startswith(TIME_NONCE_PREFIX)
    assert parse_time_nonce(n) == 1_800_000_123
    with pytest.raises(FormatError):
        parse_time_nonce(os.urandom(32))


def test_token_bucket() -> None:
    t = [0.0]
    bucket = TokenBucket(2.0, 1, lambda: t[0])
    assert bucket.take() == 0.0
    assert bucket.take() == pytest.approx(0.5)
    t[0] = 0.5
    assert bucket.take() == 0.0


@pytest.mark.parametrize(("text", "field"), [
    ('state_dir = "s"\nbogus = 1\n[log]\nurl = "u"\nvkey = "v"\n[release]\nkeys = ["'
     + release_key().public.to_text().strip() + '"]\n', "bogus"),
    ('state_dir = "s"\n[log]\nurl = "u"\nvkey = "v"\nextra = 1\n', "log.extra"),
    ('state_dir = 5\n', "state_dir"),
    ('state_dir = "s"\n', "log"),
])
def test_config_is_fail_closed(text: str, field: str) -> None:
    with pytest.raises(TrustConfigError) as err:
        parse_config(text.encode(), Path("."))
    assert err.value.field == field


def test_example_config_parses() -> None:
    cfg = load_config(Path(__file__).resolve().parent.parent / "examples"
                      / "agent.example.toml")
    assert cfg.agent.on_revocation == "stop" and cfg.release_keys


def test_revoked_boot_raises_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as err:
        booted(tmp_path, clock=[0.0], gpus=0, case="revoked")
    assert err.value.check == "agent.release.revoked"


def _witness_policy(f) -> str:
    lines = "".join(f"witness w{i} {v}\n" for i, v in enumerate(f.witness_vkeys))
    return f'witness_policy = """\n{lines}group both 2 w0 w1\nquorum both\n"""\n'


def test_agent_checks_the_witness_quorum(tmp_path: Path) -> None:
    f = make_node_fixture(tmp_path / "world", case="no_quorum", gpus=0)
    config = write_config(tmp_path, f.tiles_dir, f.log_vkey, gpus=0)
    text = config.read_text().replace("[release]", _witness_policy(f) + "[release]")
    config.write_text(text)
    got, out = run_agent(config, "--simulate")
    assert got == 2 and "REFUSING TO START: log.witness.quorum" in out, out
    cfg = load_config(config)
    assert cfg.witness_policy is not None and len(cfg.witness_policy.witnesses) == 2
