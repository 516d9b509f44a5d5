"""`verifier serve` (verifier/serve.py) over real HTTP on 127.0.0.1: a verified node's EAR and
transcript, a refused node's contraindicated EAR, unreachable collateral as 503, and the log
server's hostile-input contract: 413, 400, 404, 405, never a 500 or a traceback."""

from __future__ import annotations

import socket
from datetime import timedelta

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from tests.support.pipeline_support import World, make_world
from transparency_log.common.asgi_serving import serve_in_thread
from transparency_log.common.errors import FetchError
from verifier.ear_token import EarSigner, verify_ear
from verifier.serve import ServiceLimits, create_app


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("serve"), gpus=1)


@pytest.fixture(scope="module")
def service(world: World):
    signer = EarSigner(ed25519.Ed25519PrivateKey.generate(), "attestlog test")
    app = create_app(world.policy, signer, now=lambda: world.fx.now, trust=world.trust,
                     pipeline_args={"checkpoint_store": world.store,
                                    "revocations": world.mirror},
                     limits=ServiceLimits(max_bundle_bytes=len(world.fx.bundle) + 10,
                                          body_timeout=0.5))
    with serve_in_thread(app) as (host, port):
        yield f"http://{host}:{port}", signer


def _post(url: str, body: bytes, nonce: str | None, **kw) -> requests.Response:
    q = "" if nonce is None else f"?nonce={nonce}"
    return requests.post(f"{url}/verify{q}", data=body, timeout=30, **kw)


def _one_line(r: requests.Response, status: int) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text.count("\n") == 1 and "Traceback" not in r.text


def test_accepted_node_gets_its_ear_and_transcript(world: World, service) -> None:
    url, _ = service
    r = _post(url, world.fx.bundle, world.fx.nonce.hex())
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["verdict"] == "accepted"
    assert doc["transcript"]["verdict"] == "accepted"
    pub = load_pem_public_key(requests.get(f"{url}/ear-key", timeout=5).content)
    claims = jwt.decode(doc["ear"], pub, algorithms=["EdDSA"])  # a relying party, pyjwt only
    assert claims["ear.attestlog.verdict"] == "accepted"
    assert claims["submods"]["release"]["ear.status"] == "affirming"
    assert verify_ear(doc["ear"], pub, expected_nonce=world.fx.nonce).statuses[
        "nvidia-gpu[0]"] == "warning"  # simulated hardware


def test_replayed_bundle_is_200_contraindicated(world: World, service) -> None:
    """The attack: the bundle answered another nonce. Refused, with a signed EAR."""
    url, signer = service
    r = _post(url, world.fx.bundle, "ab" * 32)
    assert r.status_code == 200
    doc = r.json()
    assert doc["verdict"] == "refused"
    assert doc["transcript"]["error"]["check"] == "binding.nonce"
    claims = verify_ear(doc["ear"], signer.key.public_key()).claims
    assert {s["ear.status"] for s in claims["submods"].values()} == {"contraindicated"}


def test_garbage_bundle_is_a_refused_node_not_an_error(service) -> None:
    url, _ = service
    r = _post(url, b"\xff" * 100, "00" * 32)
    assert r.status_code == 200
    assert r.json()["transcript"]["error"]["check"].startswith("bundle.")


def test_oversized_body_is_413(world: World, service) -> None:
    url, _ = service
    _one_line(_post(url, world.fx.bundle + b"\0" * 11, "00" * 32), 413)


@pytest.mark.parametrize("nonce", [None, "zz", "00" * 31, "00" * 65, "0x" + "00" * 32,
                                   "00" * 32 + "&x=1", "00" * 32 + "&nonce=" + "00" * 32,
                                   "%C2%B2" * 32])
def test_malformed_request_is_400(service, nonce) -> None:
    url, _ = service
    _one_line(_post(url, b"bundle", nonce), 400)


def test_empty_body_is_400(service) -> None:
    url, _ = service
    _one_line(_post(url, b"", "00" * 32), 400)


def test_unknown_path_and_wrong_method(service) -> None:
    url, _ = service
    _one_line(requests.get(f"{url}/nothing", timeout=5), 404)
    _one_line(requests.get(f"{url}/verify", timeout=5), 405)
    _one_line(requests.post(f"{url}/ear-key", timeout=5), 405)


def test_garbage_request_line_does_not_stop_the_server(world: World, service) -> None:
    url, _ = service
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"\x00\xffNOT HTTP\r\n\r\n")
        s.recv(1024)
    assert _post(url, world.fx.bundle, world.fx.nonce.hex()).status_code == 200


def test_unreachable_collateral_is_503(world: World) -> None:
    """No stapled CRL and a fetcher that cannot reach the vendor: the verifier cannot decide."""
    import dataclasses

    from attest.formats.bundle import SnpEvidence

    def down(url: str, *a, **k):
        raise FetchError("collateral.fetch", "vendor unreachable", field="url", got=url)

    b = world.fx.decoded
    cpu = b.cpu_evidence
    assert isinstance(cpu, SnpEvidence)
    snp = dataclasses.replace(cpu, certs={}, collateral={})
    dropped = set(cpu.collateral.values())
    bundle = dataclasses.replace(
        b, evidence=tuple(snp if e is cpu else e for e in b.evidence),
        collateral={k: v for k, v in b.collateral.items() if k not in dropped})
    signer = EarSigner(ed25519.Ed25519PrivateKey.generate(), "attestlog test")
    app = create_app(world.policy, signer, now=lambda: world.fx.now + timedelta(seconds=1),
                     trust=world.trust, fetch=down)
    with serve_in_thread(app) as (host, port):
        r = _post(f"http://{host}:{port}", bundle.encode(), world.fx.nonce.hex())
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"]
    doc = r.json()
    assert doc["transcript"]["error"]["kind"] == "fetch"
    claims = verify_ear(doc["ear"], signer.key.public_key()).claims
    assert claims["submods"]["sev-snp"]["ear.status"] == "none"
    assert set(claims["submods"]["sev-snp"]["ear.trustworthiness-vector"].values()) == {-1}
