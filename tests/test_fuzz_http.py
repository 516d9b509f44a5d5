"""Property fuzzing of every HTTP handler, in process (issue 16 part 8; docs/fuzzing.md).

The ASGI apps of ``tlog serve`` (read paths, POST /add), ``tlog witness serve``
(POST /add-checkpoint) and ``attest agent`` (POST/GET the bundle, GET the trust file) get
generated requests: seeds of valid paths and bodies, mutated, with good and bad headers and
bodies split into chunks. A crash is any 5xx answer or an exception out of the app: none of
these servers is unavailable here (healthy SQLite, healthy simulated platform), so the
documented 503s ("log storage unavailable", "evidence unavailable") must not occur either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from tests.support.fuzz_support import HttpRequest, asgi_call, fuzz_settings, http_requests
from tests.support.fuzz_targets import release_entries
from tests.support.fuzz_tlog import witness_bodies
from tests.support.log_fixtures import LOG_SKEY, LOG_VKEY, ORIGIN, FakeLog
from tests.support.tlog_net import TOKEN, token_submitters
from transparency_log.core.cosignature import CosignatureSigner, cosign, generate_cosigner_keys
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import Signer
from transparency_log.core.tiles import entries_path, tile_path
from transparency_log.log.lifecycle import Log
from transparency_log.log.storage.sqlite import SqliteStorage
from transparency_log.serve.server import Limits, create_app
from transparency_log.serve.service import LogService
from transparency_log.witness.service import Witness, WitnessState, create_witness_app

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def run(app: Any, req: HttpRequest) -> tuple[int, bytes]:
    status, body = asyncio.run(asgi_call(app, req))
    assert status < 500, f"{status} {body[:200]!r} for {req!r}"
    return status, body


# --------------------------------------------------------------------------- tlog serve


@pytest.fixture(scope="module")
def log_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    storage = SqliteStorage(tmp_path_factory.mktemp("fuzz-log") / "log.db")
    service = LogService(Log(storage, ORIGIN), Signer(LOG_SKEY), LOG_VKEY, now=lambda: NOW)
    service.add_entries([b"entry %d" % i for i in range(300)])
    service.publish_once()
    yield create_app(service, submitters=token_submitters(),
                     limits=Limits(proof_wait_timeout=0.05, proof_poll_interval=0.01,
                                   body_timeout=1.0))
    service.close()
    storage.close()


LOG_PATHS = (b"/checkpoint", f"/{tile_path(0, 0)}".encode(), f"/{tile_path(0, 1, 44)}".encode(),
             f"/{tile_path(1, 0, 1)}".encode(), f"/{entries_path(0)}".encode(),
             f"/{entries_path(1, 44)}".encode(), b"/add")
AUTH = ((b"authorization", f"Bearer {TOKEN}".encode()),)


@fuzz_settings(60)
@given(req=http_requests(LOG_PATHS, release_entries(), ("GET", "HEAD", "POST"), AUTH))
def test_log_server_never_fails(log_app: Any, req: HttpRequest) -> None:
    run(log_app, req)


def test_log_server_seeds_are_served(log_app: Any) -> None:
    for path in LOG_PATHS[:-1]:
        assert run(log_app, HttpRequest("GET", path))[0] == 200, path
    status, body = run(log_app, HttpRequest("POST", b"/add", headers=AUTH,
                                            body=release_entries()[0]))
    assert status == 200 and body.strip().isdigit()


# --------------------------------------------------------------------------- tlog witness


def make_witness_app(state_dir: Path) -> Any:
    skey, _ = generate_cosigner_keys("witness.fuzz/w1", seed=bytes([9]) * 32)
    signer = CosignatureSigner(skey)
    w = Witness(WitnessState(state_dir / "w.db"), {ORIGIN: [Verifier(LOG_VKEY)]},
                cosign=lambda text, ts: cosign(text, signer, ts), now=lambda: 1_795_000_000)
    return create_witness_app(w)


@pytest.fixture(scope="module")
def witness_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_witness_app(tmp_path_factory.mktemp("fuzz-witness"))


def _witness_seeds() -> tuple[bytes, ...]:
    log = FakeLog([b"a", b"b", b"c"])
    return (*witness_bodies(), b"old 0\n\n" + log.note(1, witnesses=()))


@fuzz_settings(60)
@given(req=http_requests((b"/add-checkpoint",), _witness_seeds(), ("POST",),
                         ((b"content-type", b"text/plain"),)))
def test_witness_never_fails(witness_app: Any, req: HttpRequest) -> None:
    run(witness_app, req)


def test_witness_seed_is_cosigned(tmp_path: Path) -> None:
    status, body = run(make_witness_app(tmp_path), HttpRequest("POST", b"/add-checkpoint",
                                                body=_witness_seeds()[-1]))
    assert status == 200 and body.startswith("— witness.fuzz/w1 ".encode())


# --------------------------------------------------------------------------- attest agent


@pytest.fixture(scope="module")
def agent_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from attest.agent.config import AgentSettings
    from attest.agent.node_identity import make_node_identity
    from attest.agent.release_lookup import ReleaseTracker
    from attest.agent.service import boot_agent, create_agent_app
    from attest.simulate.node_fixture import make_node_fixture, release_key
    from attest.simulate.platform import SimulatedPlatform
    from transparency_log.client.log_client import LogClient, directory_source

    seed = "attestlog-sim-node"
    f = make_node_fixture(tmp_path_factory.mktemp("fuzz-agent"), case="ok", cpu="tdx", gpus=1)
    platform = SimulatedPlatform(cpu="tdx", gpus=1, seed=seed.encode(), now=NOW)
    client = LogClient(directory_source(f.tiles_dir), Verifier(f.log_vkey))
    clock = NOW.timestamp()
    agent = boot_agent(platform, make_node_identity(NOW), lambda ident: ReleaseTracker(
        client, [release_key().public], ident),
        settings=AgentSettings(fresh_per_second=1000, fresh_burst=1000),
        wall=lambda: clock, monotonic=lambda: clock)
    return create_agent_app(agent)


AGENT_BODIES = (bytes(range(32)), bytes(64), b"attestlog/ts/v1\x00" + bytes(16))


@fuzz_settings(30)
@given(req=http_requests((b"/.well-known/attestlog/bundle",
                          b"/.well-known/attestlog/simulated-trust"),
                         AGENT_BODIES, ("GET", "POST")))
def test_agent_never_fails(agent_app: Any, req: HttpRequest) -> None:
    run(agent_app, req)


def test_agent_seeds_are_served(agent_app: Any) -> None:
    from attest.agent.service import BUNDLE_PATH, TRUST_PATH
    assert run(agent_app, HttpRequest("POST", BUNDLE_PATH.encode(), body=bytes(32)))[0] == 200
    assert run(agent_app, HttpRequest("GET", BUNDLE_PATH.encode()))[0] == 200
    assert run(agent_app, HttpRequest("GET", TRUST_PATH.encode()))[0] in (200, 404)


@pytest.mark.parametrize("path", [b"*", b"OPTIONS", b"/\ncheckpoint", b"/%0Acheckpoint",
                                  b"/tile/0/x009/x223/x372/x036/x854/x775/808",
                                  b"/tile/entries/x018/x446/x744/x073/x709/x551/615.p/3"])
def test_once_known_hostile_classes_are_4xx(path: bytes, log_app: Any, witness_app: Any,
                                             agent_app: Any) -> None:
    """The request classes issue 16 part 8 found (GET/OPTIONS *, a newline in the path, tile
    indexes >= 2**63) are answered 4xx by every server; the generator no longer avoids them."""
    for app in (log_app, witness_app, agent_app):
        for method in ("GET", "OPTIONS"):
            status, _ = run(app, HttpRequest(method, path))
            assert 400 <= status < 500, (method, path, status)
