"""Helpers for the verifier pipeline tests: a simulated world (attest.simulate.node_fixture)
with the client side around it (policy, simulator roots, revocation mirror, checkpoint store),
and an HTTPS node on 127.0.0.1 (uvicorn, self-signed certificate) for the CLI and the session.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from attest.bundle_builder import build_bundle
from attest.formats.bundle import EvidenceBundle
from attest.simulate.node_fixture import NodeFixture, make_node_fixture
from tests.support.tlog_net import free_port
from transparency_log.client.checkpoint_store import CheckpointStore
from transparency_log.client.log_client import LogClient, directory_source
from transparency_log.common.errors import PolicyError
from verifier.pipeline import run_pipeline
from verifier.pipeline_trust import VerifierCaches, VerifierTrust
from verifier.policy import Policy, parse_policy
from verifier.result import REFUSED, Result
from verifier.revocations import RevocationMirror
from verifier.transcript import FAIL


@dataclass
class World:
    """A simulated node (``fx``) and a client configured for it."""

    fx: NodeFixture
    policy: Policy
    trust: VerifierTrust
    mirror: RevocationMirror | None
    store: CheckpointStore
    caches: VerifierCaches = field(default_factory=VerifierCaches)

    def verify(self, bundle: bytes | EvidenceBundle | None = None, *,
               at: datetime | None = None, nonce: bytes | None = None,
               policy: Policy | None = None, **kwargs: Any) -> Result:
        data = bundle.encode() if isinstance(bundle, EvidenceBundle) else bundle
        args: dict[str, Any] = {"trust": self.trust, "revocations": self.mirror,
                                "checkpoint_store": self.store, "caches": self.caches}
        args.update(kwargs)
        return run_pipeline(self.fx.bundle if data is None else data, policy or self.policy,
                            at=at or self.fx.now, expected_nonce=nonce or self.fx.nonce, **args)

    def rebundle(self, **changes: Any) -> EvidenceBundle:
        """The fixture's bundle with fields replaced (the evidence is not re-made)."""
        return dataclasses.replace(self.fx.decoded, **changes)


def policy_text(fx: NodeFixture, *, drop_waiver: bool = True, extra: str = "",
                replace: tuple[str, str] | None = None) -> str:
    """The fixture's policy; by default without its ``log.consistency`` waiver (the tests
    give a checkpoint store), with text appended or one substring replaced."""
    text = fx.policy_toml
    if drop_waiver:
        text = text.replace('waive = ["log.consistency"]\n', "")
    if replace is not None:
        assert replace[0] in text, replace[0]
        text = text.replace(*replace)
    return text + extra


def make_world(tmp: Path, *, case: str = "ok", cpu: str = "sev-snp", gpus: int = 2,
               sync_mirror: bool = True, **fixture_args: Any) -> World:
    fx = make_node_fixture(tmp / "node", case=case, cpu=cpu, gpus=gpus, **fixture_args)
    policy = parse_policy(policy_text(fx).encode())
    trust = VerifierTrust.production().with_simulated(fx.trust)
    mirror = None
    if sync_mirror:
        mirror = RevocationMirror(tmp / "client" / "revocations", policy.log.origin,
                                  policy.release)
        client = LogClient(directory_source(fx.tiles_dir), policy.log.verifier,
                           origin=policy.log.origin)
        current = client.checkpoint()
        size = current.checkpoint.size
        mirror.sync(current.checkpoint, lambda a, b: [e for _, e in client.entries(a, b, size)])
    store = CheckpointStore(tmp / "client" / "checkpoints")
    return World(fx, policy, trust, mirror, store)


# --------------------------------------------------------------------------------------------
# An HTTPS node on 127.0.0.1


def self_signed(key: ec.EllipticCurvePrivateKey, directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``key`` (the node's TLS key), as PEM files."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attestlog test node")])
    start = datetime(2024, 1, 1, tzinfo=UTC)  # not checked: the pin is the check
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + timedelta(days=365 * 25))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass
class NodeApp:
    """A tiny ASGI node: ``POST /.well-known/attestlog/bundle`` answers a fresh bundle for the
    posted nonce, bound to ``bundle_key``; any other request is recorded (path, body)."""

    fx: NodeFixture
    bundle_key: bytes
    received: list[tuple[str, bytes]] = field(default_factory=list)
    bundles_served: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bundle_for(self, nonce: bytes) -> bytes:
        with self.lock:  # the simulators are not thread-safe
            self.bundles_served += 1
            return build_bundle(self.fx.platform, nonce, self.bundle_key,
                                self.fx.release_entry, self.fx.tlog_proof,
                                simulated=True).encode()

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "POST" and scope["path"] == "/.well-known/attestlog/bundle":
            payload, ctype = self.bundle_for(body), b"application/cbor"
        else:
            self.received.append((scope["path"], body))
            payload, ctype = b"hello from the node", b"text/plain"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", ctype)]})
        await send({"type": "http.response.body", "body": payload})


@contextmanager
def https_node(app: NodeApp, tls_key: ec.EllipticCurvePrivateKey, directory: Path
               ) -> Iterator[str]:
    """Serve ``app`` over HTTPS on 127.0.0.1 with a self-signed certificate for ``tls_key``."""
    cert, key = self_signed(tls_key, directory, f"tls-{id(app)}")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           ssl_certfile=str(cert), ssl_keyfile=str(key),
                                           log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def failed_checks(result: Result) -> set[str]:
    """Every check id the refusal names: failed steps and the error's (policy) failures."""
    out = {s.check for s in result.transcript.steps if s.result == FAIL}
    err = result.error
    if isinstance(err, PolicyError):
        out |= {f.check for f in err.failures}
    elif err is not None:
        out.add(err.check)
    return out


def assert_refused(result: Result, check: str, error: type[Exception]) -> None:
    assert result.verdict == REFUSED
    assert isinstance(result.error, error), result.error
    assert check in failed_checks(result), (check, failed_checks(result), str(result.error))
