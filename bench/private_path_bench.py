"""The added CPU cost of the private path per request, and token rates (issue 13; run by hand,
prints tables).

1. CPU time (``time.process_time``, in process, median over many rounds) of what the private
   path adds to one request with 4 KiB of content, on each side: the **client** (Binary HTTP
   encoding, padding to the 16 KiB bucket, OHTTP encapsulation to the node's key; then
   decapsulation and decoding of the answer) and the **node** gateway (decapsulation and
   decoding; then encoding, padding and encapsulation of the answer). Target: under 1 ms each.
2. Over HTTP on 127.0.0.1, the same 4 KiB to the same echo backend (attest/simulate): plain
   HTTP, and the private way (OHTTP to a node gateway, :class:`attest.agent.gateway.NodeGateway`,
   which forwards to the echo backend). The baseline is **plain HTTP**, not HTTPS: there is no
   HTTPS echo backend here, and TLS would add its own cost to the baseline. The CPU column
   is the whole process (client, gateway and echo in threads of it), per request.
3. Privacy Pass token type 2 issuance and redemption rates, in process
   (bench/privacy_pass_bench.py has the HTTP figures).

    .venv/bin/python -m bench.private_path_bench
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from attest.agent.gateway import GATEWAY_PATH, GatewaySettings, NodeGateway
from attest.formats.bhttp import (
    BinaryRequest,
    BinaryResponse,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    pad_to_bucket,
)
from attest.formats.ohttp import MEDIA_TYPE_REQUEST, MEDIA_TYPE_RESPONSE
from attest.oblivious.spent_tokens import SqliteSpentTokens, spend_key
from attest.private import privacy_pass as pp
from attest.private.ohttp import Gateway, GatewayKey, encapsulate_request
from attest.simulate.echo_backend import create_echo_app
from tests.support import private_servers as ps
from transparency_log.common.asgi_serving import serve_in_thread
from verifier.private import BUCKETS

CONTENT = os.urandom(4096)
ROUNDS = 500


def _cpu_ms(fn: Callable[[], object], n: int = ROUNDS) -> float:
    """Median CPU milliseconds of one call (process_time; median of n)."""
    times = []
    for _ in range(n):
        t0 = time.process_time_ns()
        fn()
        times.append(time.process_time_ns() - t0)
    return statistics.median(times) / 1e6


def _per_request(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """(wall ms, process CPU ms) per call, averaged over n calls."""
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    return ((time.perf_counter() - w0) * 1000 / n, (time.process_time() - c0) * 1000 / n)


def _request() -> BinaryRequest:
    return BinaryRequest(b"POST", b"https", b"node.example", b"/v1/echo",
                         ((b"content-type", b"application/octet-stream"),), CONTENT)


def cpu_rows() -> list[tuple[str, float]]:
    key = GatewayKey.generate(os.urandom)
    gateway = Gateway([key])
    answer = BinaryResponse(200, ((b"content-type", b"application/octet-stream"),), CONTENT)
    state: dict[str, object] = {}

    def client_out() -> None:
        message = pad_to_bucket(encode_request(_request()), BUCKETS)
        state["req"], state["opener"] = encapsulate_request(key.config(), message,
                                                            rng=os.urandom)

    def node_in() -> None:
        inner, state["responder"] = gateway.decapsulate(state["req"])  # type: ignore[arg-type]
        decode_request(inner)

    def node_out() -> None:
        state["res"] = state["responder"].encapsulate(  # type: ignore[attr-defined]
            pad_to_bucket(encode_response(answer)), rng=os.urandom)

    def client_in() -> None:
        decode_response(state["opener"].decapsulate(state["res"]))  # type: ignore[attr-defined]

    def round_trip() -> tuple[float, float, float, float]:
        return (_cpu_ms(client_out, 1), _cpu_ms(node_in, 1), _cpu_ms(node_out, 1),
                _cpu_ms(client_in, 1))

    samples = [round_trip() for _ in range(ROUNDS)]
    med = [statistics.median(s[i] for s in samples) for i in range(4)]
    return [("client: encode + pad + encapsulate", med[0]),
            ("client: decapsulate + decode answer", med[3]),
            ("client total", med[0] + med[3]),
            ("node: decapsulate + decode", med[1]),
            ("node: encode + pad + encapsulate answer", med[2]),
            ("node total", med[1] + med[2])]


def gateway_app(node: NodeGateway) -> Starlette:
    async def post(request: Request) -> Response:
        body = await request.body()
        return Response(await run_in_threadpool(node.answer, body),
                        media_type=MEDIA_TYPE_RESPONSE)

    return Starlette(routes=[Route(GATEWAY_PATH, post, methods=["POST"])])


def http_rows(n: int = 200) -> list[tuple[str, float, float]]:
    with serve_in_thread(create_echo_app()) as echo:
        echo_url = ps.url(echo)
        node = NodeGateway.generate(GatewaySettings(upstream=echo_url, timeout=10))
        with serve_in_thread(gateway_app(node)) as gw:
            gw_url = ps.url(gw) + GATEWAY_PATH
            session = requests.Session()

            def plain() -> None:
                r = session.post(echo_url + "/v1/echo", data=CONTENT, timeout=10)
                assert r.content == CONTENT

            def private() -> None:
                message = pad_to_bucket(encode_request(_request()), BUCKETS)
                req, opener = encapsulate_request(node.key_config, message, rng=os.urandom)
                r = session.post(gw_url, data=req, timeout=10,
                                 headers={"Content-Type": MEDIA_TYPE_REQUEST})
                assert decode_response(opener.decapsulate(r.content)).content == CONTENT

            plain(), private()  # warm up
            rows = [("plain HTTP to the echo backend", *_per_request(plain, n)),
                    ("OHTTP via the node gateway to it", *_per_request(private, n))]
    added = ("added by the private path", rows[1][1] - rows[0][1], rows[1][2] - rows[0][2])
    return [*rows, added]


def token_rows(n: int = 100) -> list[tuple[str, float]]:
    issuer = ps.issuer_key()
    challenge = ps.challenge_for()
    client = pp.Client(issuer.key)

    def issue() -> bytes:
        req, pending = client.begin(challenge, os.urandom)
        return pending.finalize(issuer.evaluate(req, os.urandom)).encode()

    w0 = time.perf_counter()
    tokens = [issue() for _ in range(n)]
    rows = [("issuance (blind, sign, finalize)", n / (time.perf_counter() - w0))]
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteSpentTokens(Path(tmp) / "spent.sqlite")
        w0 = time.perf_counter()
        for data in tokens:
            token = pp.verify_token(data, issuer.key, challenge=challenge)
            assert store.spend(spend_key(token), token.token_key_id)
        rows.append(("redemption (verify + spend, SQLite)", n / (time.perf_counter() - w0)))
        store.close()
    return rows


def main() -> None:
    print(f"CPU per request, 4 KiB content, in process (median of {ROUNDS}; target < 1 ms)")
    print(f"{'step':<44} {'CPU ms':>8}")
    for name, ms in cpu_rows():
        print(f"{name:<44} {ms:>8.3f}")
    print("\nper request over HTTP on 127.0.0.1, same echo backend (baseline: plain HTTP)")
    print(f"{'path':<44} {'wall ms':>8} {'CPU ms':>8}")
    for name, wall, cpu in http_rows():
        print(f"{name:<44} {wall:>8.2f} {cpu:>8.2f}")
    print("\nPrivacy Pass token type 2, in process")
    print(f"{'operation':<44} {'per s':>8}")
    for name, rate in token_rows():
        print(f"{name:<44} {rate:>8.0f}")


if __name__ == "__main__":
    main()
