"""Test helpers: a log server with N witnesses, all on 127.0.0.1 in threads (real HTTP)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from transparency_log.common.asgi_serving import serve_in_thread
from transparency_log.core.cosignature import CosignatureSigner, cosign, generate_cosigner_keys
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import Signer, generate_keys
from transparency_log.core.witness_policy import parse_witness_policy
from transparency_log.log.lifecycle import Log
from transparency_log.log.storage.sqlite import SqliteStorage
from transparency_log.serve.server import Limits, Submitters, create_app
from transparency_log.serve.service import LogService
from transparency_log.witness.client import WitnessClient
from transparency_log.witness.service import Witness, WitnessState, create_witness_app

CLI = "from transparency_log.cli.main import main; main()"
ORIGIN = "example.com/attestlog-test"
TOKEN = "test-token"
FIXED_NOW = datetime(2026, 11, 23, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tlog(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the `tlog` command in a fresh interpreter."""
    return subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True,
                          timeout=60, check=False)


def token_submitters() -> Submitters:
    import hashlib

    return Submitters.from_config({}, {"ci": hashlib.sha256(TOKEN.encode()).hexdigest()})


@dataclass
class WitnessNode:
    name: str
    skey: str
    vkey: str
    url: str
    witness: Witness


@dataclass
class Net:
    base: str
    log_skey: str
    log_vkey: str
    service: LogService
    witnesses: list[WitnessNode] = field(default_factory=list)
    policy_text: bytes = b""

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}


@contextmanager
def witness_node(tmp: Path, name: str, logs: dict[str, list[Verifier]],
                 seed: int) -> Iterator[WitnessNode]:
    skey, vkey = generate_cosigner_keys(name, seed=bytes([seed]) * 32)
    signer = CosignatureSigner(skey)
    w = Witness(WitnessState(tmp / f"{name.replace('/', '_')}.db"), logs,
                cosign=lambda text, ts: cosign(text, signer, ts), now=lambda: 1_795_000_000)
    with serve_in_thread(create_witness_app(w)) as (host, port):
        yield WitnessNode(name, skey, vkey, f"http://{host}:{port}", w)


@contextmanager
def log_network(tmp: Path, n_witnesses: int = 2, quorum: str | None = None,
                interval: float = 0.02, log_seed: int = 7) -> Iterator[Net]:
    """A log on SQLite with ``n_witnesses`` witnesses; the policy's quorum is all of them
    (or ``quorum``). The publisher runs every ``interval`` seconds."""
    log_skey, log_vkey = generate_keys(ORIGIN, seed=bytes([log_seed]) * 32)
    with ExitStack() as stack:
        nodes = [stack.enter_context(witness_node(
            tmp, f"witness.test/w{i + 1}", {ORIGIN: [Verifier(log_vkey)]}, 100 + i))
            for i in range(n_witnesses)]
        lines = [f"log {log_vkey}"]
        lines += [f"witness w{i + 1} {n.vkey} {n.url}" for i, n in enumerate(nodes)]
        if nodes:
            members = " ".join(f"w{i + 1}" for i in range(len(nodes)))
            lines.append(f"group all-witnesses all {members}")
        lines.append(f"quorum {quorum or ('all-witnesses' if nodes else 'none')}")
        policy_text = "".join(line + "\n" for line in lines).encode()
        policy = parse_witness_policy(policy_text)
        clients = [WitnessClient(w.name, w.url, v)
                   for w, v in zip(policy.witnesses, policy.witness_verifiers, strict=True)]
        storage = SqliteStorage(tmp / "log.db")
        stack.callback(storage.close)
        service = LogService(Log(storage, ORIGIN), Signer(log_skey), log_vkey,
                             witnesses=clients, policy=policy, now=lambda: FIXED_NOW)
        stack.callback(service.close)

        @asynccontextmanager
        async def lifespan(app: object) -> AsyncIterator[None]:
            stop = threading.Event()
            t = threading.Thread(target=service.run_publisher, args=(stop, interval),
                                 daemon=True)
            t.start()
            yield
            stop.set()
            t.join(10)

        app = create_app(service, submitters=token_submitters(),
                         limits=Limits(proof_wait_timeout=20, proof_poll_interval=0.01),
                         lifespan=lifespan)
        host, port = stack.enter_context(serve_in_thread(app))
        yield Net(f"http://{host}:{port}", log_skey, log_vkey, service, nodes, policy_text)
