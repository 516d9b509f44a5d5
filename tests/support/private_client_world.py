"""The private path on 127.0.0.1 for verifier/private tests (issue 13), all real: the issuer,
router and relay of attest/oblivious, and node agents (attest/agent, each with its own HPKE
request key bound into its evidence) whose OHTTP gateways forward to one echo backend
(attest/simulate/echo_backend.py).

Each node's upstream is ``<echo>/<node id>``, so what the echo backend received
(:attr:`ClientPath.echo`) names the node that opened the request; what each node's gateway
received (still encapsulated) is in :attr:`Node.received`.

Hostile variants, built at run time: ``bind=False`` serves bundles from an agent that binds
no HPKE key while a real gateway (with its own key) stands behind the router; ``route``
makes the router deliver a node's requests to another node's gateway.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from attest.agent.gateway import GATEWAY_PATH
from attest.agent.service import BUNDLE_PATH, create_agent_app
from attest.formats.node_directory import NodeDirectory, NodeEntry
from attest.formats.privacy_pass_http import DIRECTORY_PATH as ISSUER_DIRECTORY_PATH
from attest.oblivious.forward_client import Forwarder
from attest.oblivious.router_service import create_router_app
from attest.oblivious.spent_tokens import SpentTokenStore
from attest.simulate.echo_backend import create_echo_app
from tests.support import private_servers as ps
from tests.support.node_agents import Tap, boot
from tests.support.pipeline_support import World
from transparency_log.common.asgi_serving import serve_in_thread


@dataclass
class Node:
    """One node of the directory. ``bind``: its evidence binds its gateway's key (honest);
    ``route``: the node whose gateway the router delivers its requests to (itself)."""

    id: str
    claimed_gpus: int = 1
    bind: bool = True
    route: str | None = None
    gateway_url: str = ""
    tap: Tap | None = field(default=None, repr=False)

    @property
    def received(self) -> list[bytes]:
        """The encapsulated requests its gateway received."""
        assert self.tap is not None
        return [body for path, body in self.tap.seen if path == GATEWAY_PATH]


class Late:
    """An ASGI app whose inner app is set after its port is known (the issuer names its own
    request URL in its directory)."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # before the inner app exists
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.app(scope, receive, send)


@dataclass
class ClientPath:
    relay: str
    issuer: str
    nodes: dict[str, Node]
    echo: Tap  # (path, body) the echo backend received: "/<node>/..." and the plaintext

    def opened(self) -> list[tuple[str, bytes]]:
        """(node id, request content) for each request a node opened and forwarded."""
        return [(path.split("/")[1], body) for path, body in self.echo.seen]


def honest_nodes(n: int, claimed: int = 1) -> dict[str, Node]:
    ids = [f"node-{chr(97 + i)}" for i in range(n)]
    return {i: Node(i, claimed) for i in ids}


@contextmanager
def client_path(world: World, nodes: dict[str, Node], spent: SpentTokenStore
                ) -> Iterator[ClientPath]:
    """issuer, echo backend, one agent per node, router (its directory lists ``nodes``) and
    relay, each on its own 127.0.0.1 port."""
    with ExitStack() as stack:
        issuer_app = Late()
        issuer = ps.url(stack.enter_context(serve_in_thread(issuer_app)))
        issuer_app.app = ps.issuer_app(ps.issuer_key(), base=issuer)
        echo = Tap(create_echo_app())
        echo_url = ps.url(stack.enter_context(serve_in_thread(echo)))
        entries = []
        for node in nodes.values():
            agent = boot(world, f"{echo_url}/{node.id}")
            node.tap = Tap(create_agent_app(agent))
            base = ps.url(stack.enter_context(serve_in_thread(node.tap)))
            node.gateway_url = base + GATEWAY_PATH
            bundles = base
            if not node.bind:  # its evidence comes from an agent that binds no key
                bare = create_agent_app(boot(world, None, gateway=False))
                bundles = ps.url(stack.enter_context(serve_in_thread(bare)))
            entries.append(NodeEntry(node.id, base, bundles + BUNDLE_PATH, node.claimed_gpus))
        directory = NodeDirectory(token_challenge=ps.challenge_for(),
                                  issuer_directory=issuer + ISSUER_DIRECTORY_PATH,
                                  nodes=tuple(entries))
        routes = {n.id: nodes[n.route or n.id].gateway_url for n in nodes.values()}
        router = create_router_app(directory, routes, issuer=ps.issuer_key().key, spent=spent,
                                   forwarder=Forwarder(10, 1 << 24))
        rt = ps.url(stack.enter_context(serve_in_thread(router)))
        rl = ps.url(stack.enter_context(serve_in_thread(ps.relay_app(rt))))
        yield ClientPath(rl, issuer, nodes, echo)
