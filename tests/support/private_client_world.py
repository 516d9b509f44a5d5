"""The private path on 127.0.0.1 for verifier/private tests (issue 13): the real issuer,
router and relay (attest/oblivious) in front of simulated nodes whose evidence bundles bind
an X25519 key as ``node_key`` and whose stub gateways decapsulate with the key they hold.

The stub stands in for the agent's OHTTP gateway until the evidence binds the HPKE key
configuration itself; :func:`x25519_node_key_config` is then replaced by the real
:class:`verifier.private.KeyConfigSource`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from attest.bundle_builder import build_bundle
from attest.formats.bhttp import BinaryResponse, decode_request, encode_response
from attest.formats.node_directory import NodeDirectory, NodeEntry
from attest.formats.ohttp import KEM_X25519_HKDF_SHA256, KeyConfig
from attest.formats.privacy_pass_http import DIRECTORY_PATH as ISSUER_DIRECTORY_PATH
from attest.oblivious.forward_client import Forwarder
from attest.oblivious.router_service import create_router_app
from attest.oblivious.spent_tokens import SpentTokenStore
from attest.private.hpke import PrivateKey
from attest.private.ohttp import DEFAULT_SUITES, Gateway, GatewayKey
from tests.support import private_servers as ps
from tests.support.pipeline_support import World
from transparency_log.common.asgi_serving import serve_in_thread
from transparency_log.common.errors import AttestlogError, VerificationError
from verifier.pipeline import Result

KEY_ID = 1


def x25519_spki(key: PrivateKey) -> bytes:
    return X25519PublicKey.from_public_bytes(key.public_bytes()).public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def x25519_node_key_config(result: Result) -> KeyConfig:
    """The stub KeyConfigSource: the accepted bundle's ``node_key`` read as an X25519 key."""
    assert result.accepted and result.node_key is not None
    key = load_der_public_key(result.node_key)
    if not isinstance(key, X25519PublicKey):
        raise VerificationError("private.key_config", "node_key is not an X25519 key",
                                field="node_key")
    return KeyConfig(KEY_ID, KEM_X25519_HKDF_SHA256, key.public_bytes_raw(), DEFAULT_SUITES)


@dataclass
class StubNode:
    """``bound``: the key its evidence binds; ``held``: the key its gateway decapsulates with
    (the same for an honest node)."""

    id: str
    bound: PrivateKey
    held: PrivateKey
    claimed_gpus: int = 1
    answered: list[bytes] = field(default_factory=list)  # plaintext contents it opened
    failed: int = 0  # requests it could not open
    raw: list[bytes] = field(default_factory=list)  # encapsulated requests as received


class Late:
    """An ASGI app whose inner app is set after its port is known."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # before the inner app exists
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.app(scope, receive, send)


def node_farm(world: World, nodes: dict[str, StubNode]) -> Starlette:
    """``POST /b/<id>``: a fresh bundle for the nonce, binding the node's ``bound`` key;
    ``POST /gw/<id>``: the stub gateway (answers ``node <id>: <content>``, padded)."""

    async def bundle(request: Request) -> Response:
        node = nodes[request.path_params["node"]]
        nonce = await request.body()
        fx = world.fx
        data = build_bundle(fx.platform, nonce, x25519_spki(node.bound), fx.release_entry,
                            fx.tlog_proof, simulated=True).encode()
        return Response(data, media_type="application/cbor")

    async def gateway(request: Request) -> Response:
        node = nodes[request.path_params["node"]]
        gw = Gateway([GatewayKey(KEY_ID, node.held)])
        node.raw.append(await request.body())
        try:
            message, responder = gw.decapsulate(node.raw[-1])
            inner = decode_request(message)
        except AttestlogError:
            node.failed += 1
            return Response(b"cannot open", status_code=400, media_type="text/plain")
        node.answered.append(inner.content)
        answer = encode_response(BinaryResponse(200, ((b"content-type", b"text/plain"),),
                                                f"node {node.id}: ".encode() + inner.content))
        return Response(responder.encapsulate(answer + bytes(64), rng=os.urandom),
                        media_type="message/ohttp-res")

    return Starlette(routes=[Route("/b/{node}", bundle, methods=["POST"]),
                             Route("/gw/{node}", gateway, methods=["POST"])])


@dataclass
class ClientPath:
    relay: str
    issuer: str
    nodes: dict[str, StubNode]
    seen_by_relay: ps.Recorded


def honest_nodes(n: int, claimed: int = 1) -> dict[str, StubNode]:
    out = {}
    for i in range(n):
        key = PrivateKey.generate(os.urandom)
        out[f"node-{chr(97 + i)}"] = StubNode(f"node-{chr(97 + i)}", key, key, claimed)
    return out


@contextmanager
def client_path(world: World, nodes: dict[str, StubNode], spent: SpentTokenStore
                ) -> Iterator[ClientPath]:
    """issuer, node farm, router (its directory lists ``nodes``) and relay on 127.0.0.1."""
    with ExitStack() as stack:
        late = Late()
        issuer = ps.url(stack.enter_context(serve_in_thread(late)))
        late.app = ps.issuer_app(ps.issuer_key(), base=issuer)
        farm = ps.url(stack.enter_context(serve_in_thread(node_farm(world, nodes))))
        directory = NodeDirectory(
            token_challenge=ps.challenge_for(),
            issuer_directory=issuer + ISSUER_DIRECTORY_PATH,
            nodes=tuple(NodeEntry(n.id, farm, f"{farm}/b/{n.id}", n.claimed_gpus)
                        for n in nodes.values()))
        router = create_router_app(directory, {n: f"{farm}/gw/{n}" for n in nodes},
                                   issuer=ps.issuer_key().key, spent=spent,
                                   forwarder=Forwarder(10, 1 << 24))
        rt = ps.url(stack.enter_context(serve_in_thread(router)))
        rl = ps.url(stack.enter_context(serve_in_thread(ps.relay_app(rt))))
        yield ClientPath(rl, issuer, nodes, ps.Recorded())
