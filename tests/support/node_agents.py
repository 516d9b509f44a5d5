"""Simulated node agents (attest/agent) for the tests of the private path (issue 13): booted
in-process on the world's simulated platform, each with a fresh OHTTP gateway key, in front
of a configured inference upstream; and an ASGI tap that records what a server received.
Also the `attest agent` command run on a written config (``write_config``, ``run_agent``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from attest.agent.config import parse_config
from attest.agent.gateway import NodeGateway
from attest.agent.node_identity import make_node_identity
from attest.agent.release_lookup import ReleaseTracker
from attest.agent.service import NodeAgent, boot_agent
from attest.cli import main
from attest.simulate.node_fixture import NodeFixture, release_key
from attest.simulate.platform import SimulatedPlatform
from tests.support.pipeline_support import World, policy_text
from transparency_log.client.log_client import LogClient, directory_source
from transparency_log.core.key_types import Verifier

SEED = "attestlog-sim-node"  # the node fixture's simulated build


def write_config(tmp_path: Path, tiles: Path, vkey: str, *, cpu: str = "sev-snp",
                 gpus: int = 1, cc_mode: str = "on", extra: str = "") -> Path:
    """An `attest agent` config file for the simulated build (``[simulate]`` table)."""
    path = tmp_path / "agent.toml"
    pub = release_key().public.to_text().strip()
    path.write_text(f'listen = "127.0.0.1:1"\nstate_dir = "state"\n'
                    f'[log]\nurl = "{tiles}"\nvkey = "{vkey}"\n'
                    f'[release]\nkeys = ["{pub}"]\n{extra}'
                    f'[simulate]\ncpu = "{cpu}"\ngpus = {gpus}\ncc_mode = "{cc_mode}"\n'
                    f'seed = "{SEED}"\n')
    return path


def run_agent(config: Path, *args: str) -> tuple[int, str]:
    """``attest agent --config CONFIG ARGS``: (exit code, output)."""
    result = CliRunner().invoke(main, ["agent", "--config", str(config), *args])
    return result.exit_code, result.output


def agent_config(fx: NodeFixture, upstream: str | None) -> str:
    gateway = f'[gateway]\nupstream = "{upstream}"\ntimeout = 5\n' if upstream else ""
    return (f'state_dir = "state"\n[log]\nurl = "{fx.tiles_dir}"\nvkey = "{fx.log_vkey}"\n'
            f'[release]\nkeys = ["{fx.release_public_key.strip()}"]\n{gateway}')


def boot(world: World, upstream: str | None, *, gateway: bool = True) -> NodeAgent:
    """A node agent on the world's simulated platform (1 GPU); with ``gateway`` a fresh
    request key that every bundle binds, else bundles that bind no HPKE key."""
    fx = world.fx
    platform = SimulatedPlatform(cpu="sev-snp", gpus=1, seed=SEED.encode(), now=fx.now)
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
