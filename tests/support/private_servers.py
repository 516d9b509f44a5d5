"""Issuer, router, relay and stub node gateways on 127.0.0.1 for the private-path tests
(tests/test_private_servers.py) and bench/privacy_pass_bench.py."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import cache

import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from attest.formats.node_directory import DIRECTORY_PATH, NodeDirectory, NodeEntry
from attest.formats.privacy_pass import TokenChallenge
from attest.formats.privacy_pass_http import (
    DIRECTORY_PATH as ISSUER_DIRECTORY_PATH,
)
from attest.formats.privacy_pass_http import (
    TOKEN_REQUEST_MEDIA_TYPE,
    IssuerDirectory,
    authorization,
)
from attest.oblivious.forward_client import Forwarder
from attest.oblivious.issuer_service import ISSUE_PATH, HourlyQuota, create_issuer_app
from attest.oblivious.relay_service import ClientLimits, create_relay_app
from attest.oblivious.router_service import create_router_app
from attest.oblivious.spent_tokens import SpentTokenStore
from attest.private import blind_rsa
from attest.private import privacy_pass as pp
from transparency_log.common.asgi_serving import serve_in_thread
from transparency_log.serve.server import Submitters

ACCOUNT_TOKEN = "alice-secret-bearer"
OHTTP_REQ = "message/ohttp-req"
OHTTP_RES = "message/ohttp-res"


@cache
def issuer_key(seed: int = 0) -> pp.Issuer:
    """A fresh 2048-bit issuer per seed (cached: RSA key generation is slow)."""
    del seed
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return pp.Issuer(blind_rsa.PrivateKey.from_cryptography(key))


def issuer_app(issuer: pp.Issuer, base: str = "http://issuer.invalid",
               per_hour: int = 10_000) -> Starlette:
    accounts = Submitters.from_config(
        {}, {"alice": hashlib.sha256(ACCOUNT_TOKEN.encode()).hexdigest()})
    return create_issuer_app(issuer, accounts=accounts, request_uri=base + ISSUE_PATH,
                             quota=HourlyQuota(per_hour, lambda: 0.0), rng=os.urandom)


def challenge_for(issuer_name: str = "issuer.example", origin: str = "router.example") -> bytes:
    return TokenChallenge(token_type=2, issuer_name=issuer_name, origin_info=origin).encode()


def fetch_token(issuer_url: str, challenge: bytes, account_token: str = ACCOUNT_TOKEN) -> bytes:
    """RFC 9578 issuance over HTTP: directory, TokenRequest with the account's bearer token,
    finalize. Returns the encoded Token."""
    directory = IssuerDirectory.decode(
        requests.get(issuer_url + ISSUER_DIRECTORY_PATH, timeout=10).content)
    key = pp.select_token_key(directory, now=2**40)
    request, pending = pp.Client(key).begin(challenge, os.urandom)
    resp = requests.post(issuer_url + ISSUE_PATH, data=request.encode(), timeout=10,
                         headers={"Content-Type": TOKEN_REQUEST_MEDIA_TYPE,
                                  "Authorization": f"Bearer {account_token}"})
    assert resp.status_code == 200, resp.text
    return pending.finalize(resp.content).encode()


@dataclass
class Recorded:
    """What a stub received (bodies and header lists, in order)."""

    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


def echo_gateway(seen: Recorded, extra: dict[str, str] | None = None) -> Starlette:
    """A stub node gateway: records the encapsulated request and answers the same bytes as
    ``message/ohttp-res`` (with ``extra`` headers, e.g. a Set-Cookie)."""

    async def gateway(request: Request) -> Response:
        body = await request.body()
        seen.bodies.append(body)
        seen.headers.append({k.lower(): v for k, v in request.headers.items()})
        return Response(body, media_type=OHTTP_RES, headers=extra)

    async def directory(request: Request) -> Response:
        return Response(b"{}", media_type="application/json", headers=extra)

    return Starlette(routes=[Route("/.well-known/ohttp-gateway", gateway, methods=["POST"]),
                             Route("/nodes/{node}", gateway, methods=["POST"]),
                             Route(DIRECTORY_PATH, directory, methods=["GET"])])


def router_app(gateway_url: str, issuer: pp.Issuer, spent: SpentTokenStore,
               nodes: tuple[str, ...] = ("node-a",)) -> Starlette:
    directory = NodeDirectory(
        token_challenge=challenge_for(),
        issuer_directory="http://issuer.invalid" + ISSUER_DIRECTORY_PATH,
        nodes=tuple(NodeEntry(n, f"https://{n}.invalid", f"https://{n}.invalid/b", 1)
                    for n in nodes))
    return create_router_app(directory, dict.fromkeys(nodes, gateway_url), issuer=issuer.key,
                             spent=spent, forwarder=Forwarder(10, 1 << 20))


def relay_app(router_url: str, client_burst: int = 1000,
              client_rate: float = 1000.0) -> Starlette:
    return create_relay_app(router_url, forwarder=Forwarder(10, 1 << 20),
                            limits=ClientLimits(1000, 1000, client_rate, client_burst))


def url(address: tuple[str, int]) -> str:
    return f"http://{address[0]}:{address[1]}"


@dataclass
class PrivatePath:
    issuer: str
    router: str
    relay: str
    gateway: Recorded


@contextmanager
def private_path(spent: SpentTokenStore, *, client_burst: int = 1000) -> Iterator[PrivatePath]:
    """issuer, echo gateway, router (over ``spent``) and relay, each on its own port."""
    seen = Recorded()
    with ExitStack() as stack:
        iss = url(stack.enter_context(serve_in_thread(issuer_app(issuer_key()))))
        gw = url(stack.enter_context(serve_in_thread(echo_gateway(seen))))
        rt = url(stack.enter_context(serve_in_thread(
            router_app(gw + "/.well-known/ohttp-gateway", issuer_key(), spent))))
        rl = url(stack.enter_context(serve_in_thread(relay_app(rt, client_burst))))
        yield PrivatePath(iss, rt, rl, seen)


def post_private(base: str, body: bytes, token: bytes | None, node: str = "node-a",
                 headers: dict[str, str] | None = None) -> requests.Response:
    h = {"Content-Type": OHTTP_REQ, **(headers or {})}
    if token is not None:
        h["Authorization"] = authorization(token)
    return requests.post(f"{base}/nodes/{node}", data=body, headers=h, timeout=10)
