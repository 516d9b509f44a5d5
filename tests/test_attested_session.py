"""verifier.requests.AttestedSession against HTTPS nodes on 127.0.0.1 (uvicorn, self-signed
certificates): it verifies before the first request, pins the attested TLS key, refuses a
server whose key differs before any byte of the request is sent, and re-verifies after
``max_age``."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.pipeline_support import NodeApp, World, https_node, make_world, policy_text, spki
from transparency_log.common.errors import PolicyError, TrustConfigError
from verifier.policy import parse_policy
from verifier.requests import AttestedSession, NodeKeyMismatch, PinnedAdapter


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("session"), gpus=1)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def session(world: World, url: str, clock: Clock, **kwargs: object) -> AttestedSession:
    args: dict[str, object] = {"trust": world.trust, "revocations": world.mirror,
                               "checkpoint_store": world.store, "caches": world.caches}
    args.update(kwargs)
    return AttestedSession(url, world.policy, clock=clock, max_age=timedelta(minutes=5),
                           **args)  # type: ignore[arg-type]


def test_verifies_then_sends(world: World, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    app = NodeApp(world.fx, spki(key))
    clock = Clock(world.fx.now)
    with https_node(app, key, tmp_path) as url, session(world, url, clock) as s:
        r = s.post(url + "/v1/infer", data=b"a secret prompt")
        assert r.status_code == 200 and r.text == "hello from the node"
        del r  # a response keeps its connection pool (and so its connection) alive
        assert s.result is not None and s.result.accepted
        assert [st.check for st in s.result.transcript.steps][-1] == "tls.node_key"
        s.get(url + "/v1/models")
        assert app.bundles_served == 1  # the verdict is reused ...
        clock.now += timedelta(minutes=6)
        s.get(url + "/v1/models")
        assert app.bundles_served == 2  # ... for at most max_age
    assert app.received == [("/v1/infer", b"a secret prompt"), ("/v1/models", b""),
                            ("/v1/models", b"")]


def test_refuses_a_server_whose_tls_key_is_not_the_attested_one(world: World,
                                                                tmp_path: Path) -> None:
    """A relay serves a genuine bundle bound to key A over TLS key B: never sent the body."""
    key_a, key_b = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    app = NodeApp(world.fx, spki(key_a))
    with https_node(app, key_b, tmp_path) as url, session(world, url, Clock(world.fx.now)) as s:
        with pytest.raises(NodeKeyMismatch) as info:
            s.post(url + "/v1/infer", data=b"a secret prompt")
        assert info.value.check == "tls.node_key"
        assert info.value.got == spki(key_b) and info.value.want == spki(key_a)
    assert app.bundles_served == 1
    assert app.received == []


def test_pinned_connection_is_refused_before_the_request_is_written(world: World,
                                                                     tmp_path: Path) -> None:
    """The pin is checked right after the handshake: the server never sees a request."""
    key_a, key_b = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    app = NodeApp(world.fx, spki(key_b))
    with https_node(app, key_b, tmp_path) as url, requests.Session() as s:
        s.mount("https://", PinnedAdapter(spki(key_a)))
        with pytest.raises(NodeKeyMismatch):
            s.post(url + "/v1/infer", data=b"a secret prompt")
        s.mount("https://", PinnedAdapter(spki(key_b)))
        assert s.post(url + "/v1/infer", data=b"ok to send").status_code == 200
    assert app.received == [("/v1/infer", b"ok to send")]


def test_refused_node_gets_nothing(world: World, tmp_path: Path) -> None:
    strict = parse_policy(policy_text(world.fx, replace=(
        "unsafe_allow_simulated_hardware = true", "unsafe_allow_simulated_hardware = false"))
        .encode())
    key = ec.generate_private_key(ec.SECP256R1())
    app = NodeApp(world.fx, spki(key))
    with https_node(app, key, tmp_path) as url:
        s = AttestedSession(url, strict, clock=Clock(world.fx.now), trust=world.trust)
        with pytest.raises(PolicyError) as info:
            s.post(url + "/v1/infer", data=b"a secret prompt")
        assert info.value.check == "policy.simulated"
        assert info.value.result.verdict == "refused"  # type: ignore[attr-defined]
        with pytest.raises(NodeKeyMismatch):  # a bare send through the session's adapters
            s.send(requests.Request("POST", url + "/x", data=b"s").prepare())
    assert app.received == []


def test_bound_to_one_node(world: World) -> None:
    s = AttestedSession("https://node.example", world.policy, clock=Clock(world.fx.now))
    with pytest.raises(TrustConfigError):
        s.get("https://other.example/v1")
    with pytest.raises(TrustConfigError):
        AttestedSession("http://node.example", world.policy, clock=Clock(world.fx.now))
