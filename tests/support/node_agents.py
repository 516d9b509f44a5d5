"""Simulated node agents (attest/agent) for the tests of the private path (issue 13): booted
in-process on the world's simulated platform, each with a fresh OHTTP gateway key, in front
of a configured inference upstream; and an ASGI tap that records what a server received."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from attest.agent.config import parse_config
from attest.agent.gateway import NodeGateway
from attest.agent.node_identity import make_node_identity
from attest.agent.release_lookup import ReleaseTracker
from attest.agent.service import NodeAgent, boot_agent
from attest.simulate.node_fixture import NodeFixture
from attest.simulate.platform import SimulatedPlatform
from tests.support.pipeline_support import World, policy_text
from transparency_log.client.log_client import LogClient, directory_source
from transparency_log.core.key_types import Verifier


def agent_config(fx: NodeFixture, upstream: str | None) -> str:
    gateway = f'[gateway]\nupstream = "{upstream}"\ntimeout = 5\n' if upstream else ""
    return (f'state_dir = "state"\n[log]\nurl = "{fx.tiles_dir}"\nvkey = "{fx.log_vkey}"\n'
            f'[release]\nkeys = ["{fx.release_public_key.strip()}"]\n{gateway}')


def boot(world: World, upstream: str | None, *, gateway: bool = True) -> NodeAgent:
    """A node agent on the world's simulated platform (1 GPU); with ``gateway`` a fresh
    request key that every bundle binds, else bundles that bind no HPKE key."""
    fx = world.fx
    platform = SimulatedPlatform(cpu="sev-snp", gpus=1, seed=b"attestlog-sim-node", now=fx.now)
    client = LogClient(directory_source(fx.tiles_dir), Verifier(fx.log_vkey))
    cfg = parse_config(agent_config(fx, upstream).encode(), fx.directory)
    return boot_agent(platform, make_node_identity(fx.now), lambda ident: ReleaseTracker(
        client, cfg.release_keys, ident), settings=cfg.agent, wall=fx.now.timestamp,
        monotonic=lambda: 0.0,
        gateway=NodeGateway.generate(cfg.gateway) if gateway else None)


def agent_policy_text(world: World, *, keep_log_waiver: bool = False, extra: str = "") -> str:
    """The world's policy for an agent's bundles: the agent staples no OCSP answer for a fresh
    nonce here, so ``gpu.ocsp`` (and only that, unless ``keep_log_waiver``) is waived."""
    waive = '"log.consistency", "gpu.ocsp"' if keep_log_waiver else '"gpu.ocsp"'
    return policy_text(world.fx, replace=('waive = ["log.consistency"]', f"waive = [{waive}]"),
                       drop_waiver=False, extra=extra)


@dataclass
class Tap:
    """An ASGI app that records (path, body) of each HTTP request, then passes it to ``app``."""

    app: Any
    seen: list[tuple[str, bytes]] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.seen.append((scope["path"], body))
        pending = iter(messages)

        async def replay() -> Any:
            return next(pending, {"type": "http.disconnect"})

        await self.app(scope, replay, send)
