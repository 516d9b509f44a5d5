"""`attest agent --config FILE [--simulate]`: the node's boot-time agent (docs/operations.md,
"Node agent"). The only place the agent wires in the wall clock, files and the network."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import click
import uvicorn
from starlette.applications import Starlette

from attest.agent.config import AgentConfig, load_config
from attest.agent.gateway import GATEWAY_PATH, NodeGateway
from attest.agent.node_identity import make_node_identity
from attest.agent.release_lookup import OwnRelease, ReleaseTracker
from attest.agent.service import BUNDLE_PATH, NodeAgent, boot_agent, create_agent_app
from attest.agent.sigstore_staple import SigstoreStaple
from attest.collateral.stapler import CollateralStapler, StaplingPlatform
from attest.platform import LaunchIdentity, Platform, detect_platform
from attest.release.dsse import entry_digest
from transparency_log.client.log_client import LogClient, source_for
from transparency_log.common.asgi_serving import HEADER_TIMEOUT, bind_listener, make_server
from transparency_log.common.errors import (
    AttestlogError,
    PolicyError,
    StartupError,
    TrustConfigError,
)
from transparency_log.common.http_fetch import DiskCache, HttpFetcher
from transparency_log.common.service_logging import configure_logging, log_format_option
from transparency_log.common.state_files import HeldLock, try_hold
from transparency_log.core.key_types import Verifier
from transparency_log.core.tlog_proof import TlogProof

log = logging.getLogger("attest.agent.cli")
BANNER = ("*** SIMULATED HARDWARE: attest agent --simulate makes evidence signed by test keys "
          "(attest.simulate). Every bundle says simulated = true; no production policy "
          "accepts it. ***")
UNLOGGED_BANNER = ("*** UNSAFE: --unsafe-serve-unlogged: this node's build is NOT in the release "
                   "log; it serves anyway, for demonstrations of client refusal only. ***")
EXIT_REFUSED = 1


def _platform(cfg: AgentConfig, simulate: bool) -> Platform:
    """Real hardware (or ``--simulate``), wrapped in the collateral stapler unless the config
    says ``staple_collateral = false``. The simulator staples its own test collateral unless
    ``[simulate] collateral = "services"`` (bare hardware: the stapler fetches)."""
    platform: Platform
    if not simulate:
        platform = detect_platform()
    else:
        from attest.simulate.platform import SimulatedPlatform

        s = cfg.simulate
        try:
            platform = SimulatedPlatform(cpu=s.cpu, gpus=s.gpus, cc_mode=s.cc_mode,
                                         seed=s.seed.encode(), now=datetime.now(UTC),
                                         bare=s.collateral == "services")
        except ValueError as err:
            raise TrustConfigError("agent.config", str(err), field="simulate") from None
        if s.collateral == "simulator":
            return platform
    c = cfg.collateral
    if not c.staple_collateral:
        return platform
    stapler = CollateralStapler(HttpFetcher(), services=c.services,
                                cache=DiskCache(cfg.collateral_cache), snp_product=c.snp_product)
    return StaplingPlatform(platform, stapler)


def _unlogged(entry_file: str):  # type: ignore[no-untyped-def]
    def serve_unlogged(tracker: ReleaseTracker, err: PolicyError) -> OwnRelease:
        entry = Path(entry_file).read_bytes()
        cp = tracker.client.checkpoint()
        # No inclusion path exists: staple the current checkpoint with an empty path, which
        # every client refuses as log.inclusion.
        proof = TlogProof(0, (), cp.note).to_text()
        return OwnRelease(entry, 0, entry_digest(entry), proof, cp.checkpoint.size)

    return serve_unlogged


def _refuse(err: AttestlogError) -> None:
    detail = str(err.failures[0]) if isinstance(err, PolicyError) else str(err)
    click.echo(f"attest agent: REFUSING TO START: {detail}", err=True)
    raise SystemExit(err.exit_code or EXIT_REFUSED)


@click.command("agent")
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False),
              help="Agent configuration (TOML; examples/agent.example.toml).")
@click.option("--simulate", is_flag=True,
              help="Run on simulated hardware ([simulate] table). Loudly labelled.")
@click.option("--unsafe-serve-unlogged", "unsafe_unlogged", is_flag=True,
              help="DEV ONLY: serve even though this build is not in the log (clients refuse "
                   "it with log.inclusion). Needs --release-entry.")
@click.option("--release-entry", type=click.Path(dir_okay=False, exists=True),
              help="With --unsafe-serve-unlogged: the (unlogged) release entry to staple.")
@log_format_option
def agent_command(config_file: str, simulate: bool, unsafe_unlogged: bool,
                  release_entry: str | None, log_format: str) -> None:
    """Boot-time agent: check this node's build is logged and not revoked, then serve
    evidence bundles over HTTPS. Refuses to start (non-zero exit, one line) otherwise."""
    configure_logging(log_format)
    if unsafe_unlogged and release_entry is None:
        raise click.UsageError("--unsafe-serve-unlogged needs --release-entry")
    cfg = load_config(config_file)
    if simulate:
        click.echo(BANNER, err=True)
    if unsafe_unlogged:
        click.echo(UNLOGGED_BANNER, err=True)
    host, _, port_text = cfg.listen.rpartition(":")
    if not port_text.isdigit():
        raise click.BadParameter(f"listen must be HOST:PORT, got {cfg.listen!r}")
    try:
        # Bind and lock before anything is written: a second agent on a taken port or on
        # the same state folder stops here and leaves the running agent's files alone.
        sock = bind_listener(host or "127.0.0.1", int(port_text), check="agent.listen")
    except AttestlogError as err:
        _refuse(err)
        return
    with sock:
        held = _hold_state(cfg.state_dir)
        _boot_and_serve(cfg, simulate, release_entry if unsafe_unlogged else None, sock)
        held.release()


def _hold_state(state_dir: Path) -> HeldLock:
    """The agent's lock on its state folder (flock), held while it runs."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        held = try_hold(state_dir)
    except OSError as err:
        raise TrustConfigError("agent.config", f"cannot use the state folder: {err}",
                               field="state_dir", got=str(state_dir)) from None
    if held is None:
        _refuse(StartupError("agent.state_lock", "another agent holds this state folder; "
                             "nothing was written", field="state_dir", got=str(state_dir)))
    assert held is not None
    return held


def _boot_and_serve(cfg: AgentConfig, simulate: bool, unlogged_entry: str | None,
                    sock: socket.socket) -> None:
    try:
        sigstore = (SigstoreStaple.load(cfg.sigstore_bundles)
                    if cfg.sigstore_bundles is not None else None)
        platform = _platform(cfg, simulate)
        identity = make_node_identity(datetime.now(UTC), cfg.hostnames)
        client = LogClient(source_for(cfg.log_url), Verifier(cfg.log_vkey),
                           policy=cfg.witness_policy)

        def make_tracker(ident: LaunchIdentity) -> ReleaseTracker:
            return ReleaseTracker(client, cfg.release_keys, ident, threshold=cfg.threshold)

        agent = boot_agent(platform, identity, make_tracker, settings=cfg.agent,
                           wall=time.time, monotonic=time.monotonic,
                           unsafe_unlogged=_unlogged(unlogged_entry) if unlogged_entry
                           else None, sigstore=sigstore,
                           gateway=NodeGateway.generate(cfg.gateway))
    except AttestlogError as err:
        _refuse(err)
        return
    key_path, cert_path = identity.write(cfg.state_dir)
    if agent.trust_json is not None:
        (cfg.state_dir / "simulated-trust.json").write_bytes(agent.trust_json)
    _serve(agent, sock, key_path, cert_path)


def _serve(agent: NodeAgent, sock: socket.socket, key_path: Path, cert_path: Path) -> None:
    @asynccontextmanager
    async def lifespan(app: object) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = threading.Thread(target=agent.run_refresher, args=(stop,), daemon=True,
                                  name="tlog-proof-refresh")
        thread.start()
        try:
            yield
        finally:
            stop.set()

    app = create_agent_app(agent)
    app.router.lifespan_context = lifespan
    own = agent.own
    host, port = sock.getsockname()[:2]
    log.info("attest agent: %s; release sha256:%s (log index %d, checkpoint size %d); "
             "serving https://%s:%s%s", agent.platform.describe(), own.digest.hex(), own.index,
             own.checkpoint_size, host, port, BUNDLE_PATH)
    if agent.gateway is not None:
        log.info("attest agent: OHTTP gateway at %s (request key id %d, in memory only); "
                 "inference upstream %s", GATEWAY_PATH, agent.gateway.key_config.key_id,
                 agent.gateway.upstream or "NOT CONFIGURED: private requests get 503")
    if agent.sigstore is not None:
        found = agent.sigstore.for_entry(own.entry) is not None
        if found:
            log.info("attest agent: Sigstore bundle stapled")
        else:
            log.warning("attest agent: Sigstore bundle NOT FOUND for this release (clients "
                        "requiring provenance refuse)")
    agent_server(app, host, port, key_path, cert_path).run(sockets=[sock])


def agent_server(app: Starlette, host: str, port: int, key_path: Path, cert_path: Path, *,
                 header_timeout: float = HEADER_TIMEOUT) -> uvicorn.Server:
    """The agent's HTTPS server, with the log server's limits (nodes face the internet): TLS
    handshake and request head deadlines, head size caps, connection limit
    (transparency_log.common.asgi_serving)."""
    return make_server(app, host, port, header_timeout=header_timeout,
                       tls=(str(key_path), str(cert_path)), graceful_shutdown=2)
