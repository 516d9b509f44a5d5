"""The node's HPKE request key and OHTTP gateway (issue 13): the key is bound into the evidence
(docs/formats.md "Binding"), served at /.well-known/ohttp-gateway (RFC 9540), and a private
request encapsulated to it (RFC 9458) goes through the agent to an echo backend and back. Every
server binds 127.0.0.1."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from starlette.applications import Starlette

from attest.agent.config import parse_config
from attest.agent.gateway import GATEWAY_PATH
from attest.agent.service import BUNDLE_PATH, NodeAgent, create_agent_app
from attest.binding import report_data
from attest.bundle_builder import build_bundle
from attest.formats.bhttp import (
    BinaryRequest,
    decode_response,
    encode_request,
    pad_to_bucket,
)
from attest.formats.bundle import decode_bundle, deterministic_cbor, to_cbor_value
from attest.formats.ohttp import (
    MEDIA_TYPE_KEYS,
    MEDIA_TYPE_REQUEST,
    MEDIA_TYPE_RESPONSE,
    decode_key_config_list,
    encode_key_config_list,
)
from attest.private.hpke import PrivateKey
from attest.private.ohttp import GatewayKey, encapsulate_request
from attest.simulate.echo_backend import create_echo_app
from tests.support.node_agents import agent_config, agent_policy_text, boot
from tests.support.pipeline_support import World, make_world
from transparency_log.common.asgi_serving import serve_in_thread
from transparency_log.common.errors import FormatError, TrustConfigError, VerificationError
from verifier.cli_bundle import summarize
from verifier.ohttp_keys import check_served_key_config
from verifier.policy import parse_policy
from verifier.transcript import FAIL

SECRET = b"my very private prompt: the launch codes are 0000"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("gw"), gpus=1)


def _failed(result) -> set[str]:  # type: ignore[no-untyped-def]
    return {s.check for s in result.transcript.steps if s.result == FAIL}


def _refused_only(result, check: str) -> None:  # type: ignore[no-untyped-def]
    assert not result.accepted
    assert isinstance(result.error, VerificationError) and result.error.check == check, \
        str(result.error)
    assert _failed(result) == {check}


# --------------------------------------------------------------------------- verifier side


def test_simulated_bundle_binds_its_key_and_the_client_gets_it(world: World) -> None:
    result = world.verify()
    assert result.accepted, str(result.error)
    key = world.fx.ohttp_key
    assert key is not None and world.fx.decoded.ohttp_keys == key.ohttp_keys()
    assert result.ohttp_key_config == key.config()
    assert check_served_key_config(result, key.ohttp_keys()) == (key.config(),)


def test_bundle_rebound_to_another_key_is_refused(world: World) -> None:
    """The attack: keep the node's genuine evidence, show the attacker's HPKE key."""
    attacker = GatewayKey.generate(os.urandom)
    forged = world.rebundle(ohttp_keys=attacker.ohttp_keys())
    result = world.verify(forged)
    _refused_only(result, "binding.report_data")
    with pytest.raises(VerificationError) as info:
        _ = result.ohttp_key_config
    assert info.value.check == "binding.ohttp_keys"


def test_cpu_report_remade_for_another_key_fails_at_the_gpu_nonce(world: World) -> None:
    """The strongest attacker: a genuine CPU report over REPORT_DATA for its own key; the GPU
    reports still sign the nonces of the node's key."""
    fx = world.fx
    attacker = GatewayKey.generate(os.urandom).ohttp_keys()
    bundle = fx.decoded
    rd = report_data(fx.nonce, fx.node_key, bundle.gpu_state, bundle.gpu_evidence,
                     ohttp_keys=attacker)
    forged = dataclasses.replace(bundle, ohttp_keys=attacker, evidence=(
        fx.platform.collect_cpu(rd).item, *bundle.gpu_evidence))
    result = world.verify(forged)
    _refused_only(result, "binding.gpu_nonce")


def test_key_added_to_evidence_that_binds_none_is_refused(world: World) -> None:
    """A node whose evidence binds no HPKE key, shown with one: ``binding.ohttp_keys``."""
    fx = world.fx
    bare = build_bundle(fx.platform, fx.nonce, fx.node_key, fx.release_entry, fx.tlog_proof,
                        simulated=True)
    plain = world.verify(bare)
    assert plain.accepted, str(plain.error)
    with pytest.raises(VerificationError) as info:
        _ = plain.ohttp_key_config  # accepted, but nothing to encapsulate to
    assert info.value.check == "binding.ohttp_keys"
    added = dataclasses.replace(bare, ohttp_keys=GatewayKey.generate(os.urandom).ohttp_keys())
    _refused_only(world.verify(added), "binding.ohttp_keys")


def test_served_key_other_than_the_attested_one_is_refused(world: World) -> None:
    result = world.verify()
    other = GatewayKey.generate(os.urandom).ohttp_keys()
    with pytest.raises(VerificationError) as info:
        check_served_key_config(result, other)
    assert info.value.check == "binding.ohttp_keys"


def test_key_of_a_refused_result_is_not_handed_out(world: World) -> None:
    refused = world.verify(nonce=bytes(32))
    assert not refused.accepted
    with pytest.raises(VerificationError) as info:
        _ = refused.ohttp_key_config
    assert info.value.check == "binding.ohttp_keys"


@pytest.mark.parametrize("keys", [
    b"\x00\x01",  # a truncated list
    encode_key_config_list([GatewayKey.generate(os.urandom).config()]) + b"\x00",
    bytes.fromhex("0029" "01" "0021") + bytes(32) + bytes.fromhex("0004 0001 0001"),  # KEM 0x21
])
def test_bundle_ohttp_keys_is_decoded_strictly(world: World, keys: bytes) -> None:
    data = world.rebundle(ohttp_keys=None).encode()
    # splice a bad value in through the data model (encode_bundle would refuse to write it)
    value = to_cbor_value(decode_bundle(data))
    value["ohttp_keys"] = keys
    with pytest.raises(FormatError) as info:
        decode_bundle(deterministic_cbor(value))
    assert info.value.check == "bundle.schema" and info.value.field == "ohttp_keys"


# --------------------------------------------------------------------------- node side


class Counter:
    def __init__(self) -> None:
        self.calls = 0


def counted_echo(counter: Counter) -> Starlette:
    echo = create_echo_app()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            counter.calls += 1
        await echo(scope, receive, send)

    return app  # type: ignore[return-value]


@pytest.fixture
def node(world: World) -> Iterator[tuple[str, NodeAgent, Counter]]:
    counter = Counter()
    with serve_in_thread(counted_echo(counter)) as (eh, ep):
        agent = boot(world, f"http://{eh}:{ep}")
        with serve_in_thread(create_agent_app(agent)) as (host, port):
            yield f"http://{host}:{port}", agent, counter


def private_request(config_url: str, keys: bytes, content: bytes):  # type: ignore[no-untyped-def]
    config = decode_key_config_list(keys)[0]
    inner = pad_to_bucket(encode_request(BinaryRequest(
        b"POST", b"https", b"node.example", b"/v1/chat/completions",
        ((b"content-type", b"application/json"),), content)))
    enc, opener = encapsulate_request(config, inner, rng=os.urandom)
    reply = requests.post(config_url + GATEWAY_PATH, data=enc, timeout=30,
                          headers={"Content-Type": MEDIA_TYPE_REQUEST})
    return reply, opener


def test_private_request_round_trips_through_the_gateway(
        world: World, node: tuple[str, NodeAgent, Counter],
        caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    url, agent, counter = node
    served = requests.get(url + GATEWAY_PATH, timeout=30)
    assert served.status_code == 200 and served.headers["content-type"] == MEDIA_TYPE_KEYS
    # the client encapsulates to the key the verified evidence binds, not to what is served
    nonce = os.urandom(32)
    bundle = requests.post(url + BUNDLE_PATH, data=nonce, timeout=30).content
    # the agent staples no OCSP answer for a fresh nonce here: waive that (and only that)
    policy = parse_policy(agent_policy_text(world).encode())
    result = world.verify(bundle, nonce=nonce, policy=policy)
    assert result.accepted, str(result.error)
    caplog.set_level(logging.DEBUG)
    assert decode_bundle(bundle).ohttp_keys == served.content == agent.gateway.ohttp_keys
    check_served_key_config(result, served.content)

    reply, opener = private_request(url, result.bundle.ohttp_keys, SECRET)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == MEDIA_TYPE_RESPONSE
    assert SECRET not in reply.content
    answer = decode_response(opener.decapsulate(reply.content))
    assert answer.status == 200 and answer.content == SECRET
    fields = dict(answer.headers)
    assert fields[b"x-echo-path"] == b"/v1/chat/completions"
    assert fields[b"x-echo-method"] == b"POST"
    assert counter.calls == 1
    # nothing of the request or the answer is logged or written
    assert SECRET.decode() not in caplog.text and b"/v1/chat" not in caplog.text.encode()
    for path in world.fx.directory.rglob("*"):
        assert not path.is_file() or SECRET not in path.read_bytes()


@pytest.mark.parametrize(("same_key_id", "check"), [(True, "ohttp.decrypt"),
                                                    (False, "ohttp.key_id")])
def test_request_to_another_key_fails_at_the_node(
        node: tuple[str, NodeAgent, Counter], caplog: pytest.LogCaptureFixture,
        same_key_id: bool, check: str) -> None:
    url, agent, counter = node
    caplog.set_level(logging.DEBUG)
    own = agent.gateway.key_config.key_id
    other = GatewayKey(own if same_key_id else (own + 1) % 256,
                       PrivateKey.generate(os.urandom))
    reply, _ = private_request(url, other.ohttp_keys(), SECRET)
    assert reply.status_code == 400
    assert reply.headers["content-type"].startswith("text/plain")
    assert reply.text.count("\n") == 1 and reply.text.startswith(f"{check}:")
    assert SECRET not in reply.content and counter.calls == 0
    assert SECRET.decode() not in caplog.text


def test_gateway_refuses_other_media_types(node: tuple[str, NodeAgent, Counter]) -> None:
    url, _, counter = node
    reply = requests.post(url + GATEWAY_PATH, data=b"x", timeout=30,
                          headers={"Content-Type": "application/json"})
    assert reply.status_code == 415 and counter.calls == 0


def test_unreachable_upstream_is_answered_encapsulated(world: World) -> None:
    agent = boot(world, "http://127.0.0.1:9")  # discard port: nothing listens
    with serve_in_thread(create_agent_app(agent)) as (host, port):
        reply, opener = private_request(f"http://{host}:{port}", agent.gateway.ohttp_keys,
                                        SECRET)
    assert reply.status_code == 200 and reply.headers["content-type"] == MEDIA_TYPE_RESPONSE
    answer = decode_response(opener.decapsulate(reply.content))
    assert answer.status == 502 and answer.content.startswith(b"agent.gateway.upstream:")


def test_each_boot_binds_a_fresh_key(world: World) -> None:
    a, b = boot(world, None), boot(world, None)
    assert a.gateway.ohttp_keys != b.gateway.ohttp_keys
    assert decode_bundle(a.bundle(os.urandom(32))).ohttp_keys == a.gateway.ohttp_keys


@pytest.mark.parametrize("upstream", ["ftp://127.0.0.1:1", "http://127.0.0.1:1/?q=1"])
def test_gateway_upstream_must_be_an_http_base_url(world: World, upstream: str) -> None:
    with pytest.raises(TrustConfigError) as info:
        parse_config(agent_config(world.fx, upstream).encode(), world.fx.directory)
    assert info.value.check == "agent.config" and info.value.field == "gateway.upstream"


def test_echo_backend_echoes() -> None:
    with serve_in_thread(create_echo_app()) as (host, port):
        r = requests.put(f"http://{host}:{port}/a/b?c=1", data=b"hi", timeout=30,
                         headers={"Content-Type": "text/x-test"})
    assert r.content == b"hi" and r.headers["content-type"].startswith("text/x-test")
    assert r.headers["x-echo-path"] == "/a/b?c=1" and r.headers["x-echo-method"] == "PUT"


def test_bundle_inspect_names_the_key_configuration(world: World) -> None:
    keys = world.fx.decoded.ohttp_keys
    assert keys is not None
    summary = summarize(world.fx.decoded, world.fx.bundle)
    assert summary["ohttp_keys"]["size"] == len(keys)
    assert summarize(world.rebundle(ohttp_keys=None), world.fx.bundle)["ohttp_keys"] is None
