"""The untrusted servers of the private path on 127.0.0.1 (issue 13): Privacy Pass issuance
and redemption through relay and router, double spend, foreign keys, what the relay strips,
what the servers log, and that neither changes the encapsulated bytes."""

from __future__ import annotations

import logging
import os
from contextlib import ExitStack

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from attest.formats.bhttp import BinaryRequest, decode_request, encode_request
from attest.formats.node_directory import DIRECTORY_PATH, NodeDirectory
from attest.formats.privacy_pass_http import parse_www_authenticate
from attest.oblivious.spent_tokens import SqliteSpentTokens
from attest.private import blind_rsa
from attest.private import privacy_pass as pp
from attest.private.hpke import PrivateKey
from attest.private.ohttp import Gateway, GatewayKey, encapsulate_request
from tests.support import private_servers as ps
from transparency_log.common.asgi_serving import serve_in_thread


@pytest.fixture
def spent(tmp_path):
    store = SqliteSpentTokens(tmp_path / "spent.sqlite")
    yield store
    store.close()


def _challenge(base: str) -> bytes:
    return NodeDirectory.decode(requests.get(base + DIRECTORY_PATH, timeout=10).content
                                ).token_challenge


def test_issue_and_redeem_through_relay_and_router(spent) -> None:
    with ps.private_path(spent) as p:
        challenge = _challenge(p.relay)  # the directory, fetched through the relay
        assert challenge == ps.challenge_for()
        token = ps.fetch_token(p.issuer, challenge)
        body = os.urandom(777)
        resp = ps.post_private(p.relay, body, token)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == ps.OHTTP_RES
        assert p.gateway.bodies == [body]  # the gateway got the bytes unchanged
        assert resp.content == body  # and its answer came back unchanged


def test_a_token_spent_twice_is_refused(spent) -> None:
    with ps.private_path(spent) as p:
        token = ps.fetch_token(p.issuer, ps.challenge_for())
        assert ps.post_private(p.relay, b"first", token).status_code == 200
        again = ps.post_private(p.relay, b"second", token)
        assert again.status_code == 401
        assert again.text.startswith("router.token.spent:")
        assert p.gateway.bodies == [b"first"]  # the replay never reached a node


def test_a_second_signature_over_the_same_nonce_is_the_same_token(spent) -> None:
    """RSASSA-PSS is salted: two issuances with one nonce give two different valid
    authenticators. The store is keyed on the signed input, so the second is refused."""
    issuer = ps.issuer_key()
    nonce = os.urandom(32)
    tokens = []

    def same_nonce_rng(n: int, calls: list[int]) -> bytes:
        calls.append(n)
        return nonce if len(calls) == 1 else os.urandom(n)  # the nonce, then salt and r

    for _ in range(2):
        calls: list[int] = []
        request, pending = pp.Client(issuer.key).begin(
            ps.challenge_for(), lambda n, calls=calls: same_nonce_rng(n, calls))
        tokens.append(pending.finalize(issuer.evaluate(request, os.urandom)).encode())
    assert tokens[0] != tokens[1]
    with ps.private_path(spent) as p:
        assert ps.post_private(p.router, b"a", tokens[0]).status_code == 200
        second = ps.post_private(p.router, b"b", tokens[1])
        assert second.status_code == 401 and second.text.startswith("router.token.spent:")


def test_a_token_of_another_issuer_key_is_refused(spent) -> None:
    other = ps.issuer_key(1)
    with ps.private_path(spent) as p, serve_in_thread(ps.issuer_app(other)) as addr:
        token = ps.fetch_token(ps.url(addr), ps.challenge_for())
        resp = ps.post_private(p.relay, b"x", token)
        assert resp.status_code == 401 and resp.text.startswith("privacypass.key_id:")
        assert p.gateway.bodies == []


def test_a_token_for_another_challenge_is_refused(spent) -> None:
    with ps.private_path(spent) as p:
        token = ps.fetch_token(p.issuer, ps.challenge_for(origin="other.example"))
        resp = ps.post_private(p.relay, b"x", token)
        assert resp.status_code == 401 and resp.text.startswith("privacypass.challenge:")


def test_no_token_is_answered_with_the_challenge(spent) -> None:
    with ps.private_path(spent) as p:
        resp = ps.post_private(p.relay, b"x", None)
        assert resp.status_code == 401 and resp.text.startswith("router.token.missing:")
        (challenge,) = parse_www_authenticate(resp.headers["www-authenticate"])
        assert challenge.challenge == ps.challenge_for()
        assert challenge.token_key == ps.issuer_key().key.spki
        assert p.gateway.bodies == []


def test_a_forged_authenticator_is_refused(spent) -> None:
    with ps.private_path(spent) as p:
        token = bytearray(ps.fetch_token(p.issuer, ps.challenge_for()))
        token[-1] ^= 1
        resp = ps.post_private(p.relay, b"x", bytes(token))
        assert resp.status_code == 401 and resp.text.startswith("privacypass.signature:")


def test_spent_tokens_survive_a_router_restart(tmp_path) -> None:
    db = tmp_path / "spent.sqlite"
    seen = ps.Recorded()
    with serve_in_thread(ps.echo_gateway(seen)) as gw, \
            serve_in_thread(ps.issuer_app(ps.issuer_key())) as iss:
        gateway = ps.url(gw) + "/.well-known/ohttp-gateway"
        token = ps.fetch_token(ps.url(iss), ps.challenge_for())
        for expect in (200, 401):  # the second router process is a new app on the same file
            store = SqliteSpentTokens(db)
            try:
                with serve_in_thread(ps.router_app(gateway, ps.issuer_key(), store)) as rt:
                    assert ps.post_private(ps.url(rt), b"x", token).status_code == expect
            finally:
                store.close()


def test_unknown_account_and_spent_quota_are_refused() -> None:
    with serve_in_thread(ps.issuer_app(ps.issuer_key(), per_hour=1)) as addr:
        base = ps.url(addr)
        with pytest.raises(AssertionError, match=r"issuer\.account"):
            ps.fetch_token(base, ps.challenge_for(), account_token="mallory")
        ps.fetch_token(base, ps.challenge_for())
        with pytest.raises(AssertionError, match=r"issuer\.quota"):
            ps.fetch_token(base, ps.challenge_for())


def test_issuer_refuses_a_request_for_another_key() -> None:
    mine = ps.issuer_key()
    other = ps.issuer_key(1)
    while other.key.truncated_token_key_id == mine.key.truncated_token_key_id:
        # a one-byte key id: 1 in 256 pairs of keys collide; draw an uncached one instead
        other = pp.Issuer(blind_rsa.PrivateKey.from_cryptography(
            rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    request, _ = pp.Client(other.key).begin(ps.challenge_for(), os.urandom)
    with serve_in_thread(ps.issuer_app(mine)) as addr:
        resp = requests.post(ps.url(addr) + "/token-request", data=request.encode(),
                             timeout=10, headers={
                                 "Content-Type": "application/private-token-request",
                                 "Authorization": f"Bearer {ps.ACCOUNT_TOKEN}"})
    assert resp.status_code == 400 and resp.text.startswith("privacypass.key_id:")


def test_relay_forwards_only_the_body_type_and_token() -> None:
    seen = ps.Recorded()
    planted = {"Set-Cookie": "id=42", "X-Node-Secret": "s"}
    with serve_in_thread(ps.echo_gateway(seen, planted)) as fake_router, \
            serve_in_thread(ps.relay_app(ps.url(fake_router))) as relay:
        body = os.urandom(300)
        resp = ps.post_private(ps.url(relay), body, b"\x00\x02" + bytes(352), headers={
            "Cookie": "session=abc", "User-Agent": "Client/1.0 (device 1234)",
            "X-Forwarded-For": "203.0.113.9", "Forwarded": "for=203.0.113.9",
            "Accept-Language": "fr-CH", "X-Client-Id": "u-77"})
        plain = ps.post_private(ps.url(relay), body, None,
                                headers={"Authorization": "Bearer identifying-account"})
    assert resp.status_code == 200 and resp.content == body
    assert seen.bodies == [body, body]
    first, second = seen.headers
    assert first["authorization"].startswith("PrivateToken token=")
    assert "authorization" not in second  # another scheme identifies the client: dropped
    for sent in (first, second):
        assert sent["content-type"] == ps.OHTTP_REQ
        assert set(sent) <= {"host", "content-type", "content-length", "authorization",
                             "user-agent", "accept", "accept-encoding", "connection"}
        assert sent["user-agent"].startswith("python-requests/")  # the relay's, not the client's
        others = {k: v for k, v in sent.items() if k != "host"}  # host: the router's own
        assert "203.0.113.9" not in str(others) and "127.0.0.1" not in str(others)
    assert "set-cookie" not in resp.headers and "x-node-secret" not in resp.headers
    assert plain.status_code == 200


def test_relay_rate_limits_each_client() -> None:
    seen = ps.Recorded()
    with serve_in_thread(ps.echo_gateway(seen)) as fake_router, \
            serve_in_thread(ps.relay_app(ps.url(fake_router), client_burst=2,
                                         client_rate=0.01)) as relay:
        codes = [ps.post_private(ps.url(relay), b"x", None).status_code for _ in range(3)]
        last = ps.post_private(ps.url(relay), b"x", None)
    assert codes == [200, 200, 429]
    assert last.text.startswith("relay.rate:") and int(last.headers["retry-after"]) >= 1
    assert len(seen.bodies) == 2


def test_logs_carry_no_client_address_and_no_plaintext(spent, caplog) -> None:
    """A real OHTTP request with a marker in its plaintext, through relay and router to a
    gateway that decrypts it; then a request to a node whose gateway is down, so the router
    logs an error. No log record names the client's address or carries the marker."""
    marker = b"SECRET-PROMPT-" + os.urandom(8).hex().encode()
    gw_key = GatewayKey(1, PrivateKey(os.urandom(32)))
    opened: list[bytes] = []

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def gateway(request: Request) -> Response:
        inner, reply = Gateway([gw_key]).decapsulate(await request.body())
        opened.append(decode_request(inner).content)
        return Response(reply.encapsulate(b"answer", rng=os.urandom),
                        media_type=ps.OHTTP_RES)

    caplog.set_level(logging.DEBUG)
    app = Starlette(routes=[Route("/g", gateway, methods=["POST"])])
    with ExitStack() as stack:
        gw = ps.url(stack.enter_context(serve_in_thread(app)))
        iss = ps.url(stack.enter_context(serve_in_thread(ps.issuer_app(ps.issuer_key()))))
        rt = ps.url(stack.enter_context(serve_in_thread(
            ps.router_app(gw + "/g", ps.issuer_key(), spent))))
        rl = ps.url(stack.enter_context(serve_in_thread(ps.relay_app(rt))))
        inner = encode_request(BinaryRequest(b"POST", b"https", b"node-a", b"/v1/chat",
                                             content=marker))
        enc, pending = encapsulate_request(gw_key.config(), inner, rng=os.urandom)
        resp = ps.post_private(rl, enc, ps.fetch_token(iss, ps.challenge_for()),
                               headers={"User-Agent": "marker-agent"})
        assert resp.status_code == 200
        assert pending.decapsulate(resp.content) == b"answer"
        assert opened == [marker]
        with serve_in_thread(ps.router_app("http://127.0.0.1:9/down", ps.issuer_key(),
                                           spent)) as down:
            rl2 = ps.url(stack.enter_context(serve_in_thread(ps.relay_app(ps.url(down)))))
            resp = ps.post_private(rl2, enc, ps.fetch_token(iss, ps.challenge_for()))
            assert resp.status_code == 502 and resp.text.startswith("router.gateway:")
    assert any("gateway is unreachable" in r.getMessage() for r in caplog.records)
    ours = [r for r in caplog.records  # urllib3 is the test client's and the forwarder's
            if r.name.split(".")[0] in ("attest", "transparency_log", "uvicorn", "starlette")]
    text = "\n".join(f"{r.name} {r.getMessage()}" for r in ours)
    assert marker.decode() not in text and "marker-agent" not in text
    assert "127.0.0.1" not in text
