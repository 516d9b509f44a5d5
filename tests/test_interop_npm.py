"""Interop of the private-request crypto with independent npm implementations.

The other side runs in node from tests/interop/ (versions pinned in its package-lock.json,
installed by ``npm ci --prefix tests/interop`` in .ci/run; docs/private.md,
"Interoperability"): @hpke/core for HPKE (RFC 9180), an OHTTP client and gateway written on
it from RFC 9458 alone, and @cloudflare/privacypass-ts for token type 0x0002 (RFC 9578).
Every test goes both ways: they encrypt or sign, we open or verify, and the reverse.

Skips when node or the packages are missing; fails instead under
``ATTESTLOG_REQUIRE_NODE_INTEROP=1`` (CI). Nothing is downloaded at test time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from attest.formats.ohttp import (
    AEAD_AES_128_GCM,
    AEAD_CHACHA20_POLY1305,
    KDF_HKDF_SHA256,
    SymmetricSuite,
)
from attest.formats.privacy_pass import TokenChallenge
from attest.private import blind_rsa, hpke
from attest.private import privacy_pass as pp
from attest.private.errors import DecryptError
from attest.private.ohttp import Gateway, GatewayKey, encapsulate_request
from tests.support.node_interop import NodeScript, node_binary
from tests.support.privacy_pass_vectors import rfc9578_type2_vectors
from transparency_log.common.errors import SignatureError

AEADS = pytest.mark.parametrize("aead", [AEAD_AES_128_GCM, AEAD_CHACHA20_POLY1305],
                                ids=["aes128gcm", "chacha20poly1305"])
INFO = b"attestlog interop info"
AAD = b"attestlog interop aad"
MESSAGES = [b"", b"first", os.urandom(4096)]  # three sequence numbers, one 4 KiB
EXPORTER_CONTEXT = b"attestlog interop exporter"
EXPORT_LEN = 32


def _script(name: str) -> Iterator[NodeScript]:
    script = NodeScript(node_binary(), name)
    try:
        yield script
    finally:
        script.close()


@pytest.fixture
def node_hpke() -> Iterator[NodeScript]:
    yield from _script("hpke")


@pytest.fixture
def node_ohttp() -> Iterator[NodeScript]:
    yield from _script("ohttp")


@pytest.fixture
def node_pp() -> Iterator[NodeScript]:
    yield from _script("privacypass")


def _suite(aead: int) -> hpke.Suite:
    return hpke.suite(0x0020, KDF_HKDF_SHA256, aead)


# ------------------------------------------------------------------ HPKE (RFC 9180 base mode)


@AEADS
def test_hpke_npm_seals_we_open(node_hpke: NodeScript, aead: int) -> None:
    sk = hpke.PrivateKey.generate(os.urandom)
    out = node_hpke.call("seal", aead=aead, pk=sk.public_bytes(), info=INFO, aad=AAD,
                         pts=[m.hex() for m in MESSAGES], exporter_context=EXPORTER_CONTEXT,
                         export_len=EXPORT_LEN)
    ctx = hpke.setup_base_r(_suite(aead), bytes.fromhex(out["enc"]), sk, INFO)
    assert [ctx.open(bytes.fromhex(ct), AAD) for ct in out["cts"]] == MESSAGES
    assert ctx.export(EXPORTER_CONTEXT, EXPORT_LEN).hex() == out["exported"]


@AEADS
def test_hpke_we_seal_npm_opens(node_hpke: NodeScript, aead: int) -> None:
    sk = hpke.PrivateKey.generate(os.urandom)
    enc, ctx = hpke.setup_base_s(_suite(aead), sk.public_bytes(), INFO, rng=os.urandom)
    cts = [ctx.seal(m, AAD).hex() for m in MESSAGES]
    out = node_hpke.call("open", aead=aead, sk=sk.private_bytes(), enc=enc, info=INFO, aad=AAD,
                         cts=cts, exporter_context=EXPORTER_CONTEXT, export_len=EXPORT_LEN)
    assert [bytes.fromhex(pt) for pt in out["pts"]] == MESSAGES
    assert out["exported"] == ctx.export(EXPORTER_CONTEXT, EXPORT_LEN).hex()


@AEADS
def test_hpke_npm_ciphertext_under_other_info_does_not_open(node_hpke: NodeScript,
                                                            aead: int) -> None:
    """The interop is not vacuous: their ciphertext bound to another info fails here."""
    sk = hpke.PrivateKey.generate(os.urandom)
    out = node_hpke.call("seal", aead=aead, pk=sk.public_bytes(), info=INFO, aad=AAD,
                         pts=["00"], exporter_context=b"", export_len=EXPORT_LEN)
    ctx = hpke.setup_base_r(_suite(aead), bytes.fromhex(out["enc"]), sk, INFO + b"!")
    with pytest.raises(DecryptError):
        ctx.open(bytes.fromhex(out["cts"][0]), AAD)


# ------------------------------------------------------------------ OHTTP (RFC 9458)


def _gateway_key(aead: int) -> GatewayKey:
    return GatewayKey(key_id=0x2A, private_key=hpke.PrivateKey.generate(os.urandom),
                      suites=(SymmetricSuite(KDF_HKDF_SHA256, aead),))


@AEADS
def test_ohttp_npm_client_our_gateway(node_ohttp: NodeScript, aead: int) -> None:
    """Their request from our application/ohttp-keys opens at our Gateway; our response
    opens at their client (RFC 9458 §4.3, §4.4)."""
    key = _gateway_key(aead)
    request, response = os.urandom(4096), b"HTTP/1.1-ish answer " + os.urandom(100)
    out = node_ohttp.call("request", ohttp_keys=key.ohttp_keys(), aead=aead, request=request)
    got, server = Gateway([key]).decapsulate(bytes.fromhex(out["enc_request"]))
    assert got == request
    opened = node_ohttp.call("response",
                             enc_response=server.encapsulate(response, rng=os.urandom))
    assert bytes.fromhex(opened["response"]) == response


@AEADS
def test_ohttp_our_client_npm_gateway(node_ohttp: NodeScript, aead: int) -> None:
    key = _gateway_key(aead)
    request, response = os.urandom(4096), os.urandom(300)
    enc_request, client = encapsulate_request(key.config(), request, rng=os.urandom)
    out = node_ohttp.call("gateway", sk=key.private_key.private_bytes(), key_id=key.key_id,
                          enc_request=enc_request, response=response)
    assert bytes.fromhex(out["request"]) == request
    assert client.decapsulate(bytes.fromhex(out["enc_response"])) == response


def test_ohttp_npm_request_to_another_key_fails_at_our_gateway(node_ohttp: NodeScript) -> None:
    """Encapsulated to node A's config (same key id), opened by node B: refused."""
    node_a, node_b = _gateway_key(AEAD_AES_128_GCM), _gateway_key(AEAD_AES_128_GCM)
    out = node_ohttp.call("request", ohttp_keys=node_a.ohttp_keys(), aead=AEAD_AES_128_GCM,
                          request=b"for A only")
    with pytest.raises(DecryptError):
        Gateway([node_b]).decapsulate(bytes.fromhex(out["enc_request"]))


# ------------------------------------------------------------------ Privacy Pass (RFC 9578)

CHALLENGE = TokenChallenge(token_type=2, issuer_name="issuer.example",
                           redemption_context=os.urandom(32),
                           origin_info="router.example").encode()


def _rfc_issuer_key() -> tuple[pp.Issuer, bytes]:
    """The RFC 9578 Appendix A.2 issuer key (2048 bits): ours, and its PKCS#8 for node."""
    pem = rfc9578_type2_vectors()[0]["skS"]
    key = load_pem_private_key(pem, None)
    pkcs8 = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    return pp.Issuer(blind_rsa.PrivateKey.from_cryptography(key)), pkcs8  # type: ignore[arg-type]


def test_privacypass_their_client_our_issuer_our_verifier(node_pp: NodeScript) -> None:
    issuer, _ = _rfc_issuer_key()
    request = node_pp.call("client_begin", challenge=CHALLENGE, token_key=issuer.key.spki)
    response = issuer.evaluate(bytes.fromhex(request["token_request"]), os.urandom)
    token = bytes.fromhex(node_pp.call("client_finalize",
                                       token_response=response.encode())["token"])
    parsed = pp.verify_token(token, issuer.key, challenge=CHALLENGE)
    assert parsed.token_key_id == issuer.key.token_key_id
    assert node_pp.call("verify", token_key=issuer.key.spki, token=token)["valid"] is True


def test_privacypass_our_client_their_issuer_both_verify(node_pp: NodeScript) -> None:
    """Their Issuer signs with the same key; the SPKI they derive from it is byte-equal to
    ours (so the token key ids agree), and the token verifies on both sides."""
    issuer, pkcs8 = _rfc_issuer_key()
    request, pending = pp.Client(issuer.key).begin(CHALLENGE, os.urandom)
    out = node_pp.call("issue", pkcs8=pkcs8, token_request=request.encode())
    assert out["token_key"] == issuer.key.spki.hex()
    token = pending.finalize(bytes.fromhex(out["token_response"]))
    assert pp.verify_token(token, issuer.key, challenge=CHALLENGE) == token
    assert node_pp.call("verify", token_key=issuer.key.spki, token=token.encode())["valid"]


def test_privacypass_their_verifier_refuses_a_flipped_authenticator(node_pp: NodeScript) -> None:
    """Both verifiers reject the same tampered token (the npm check is not vacuous)."""
    issuer, _ = _rfc_issuer_key()
    request, pending = pp.Client(issuer.key).begin(CHALLENGE, os.urandom)
    token = bytearray(pending.finalize(issuer.evaluate(request, os.urandom)).encode())
    token[-1] ^= 1
    assert node_pp.call("verify", token_key=issuer.key.spki, token=bytes(token))["valid"] is False
    with pytest.raises(SignatureError):
        pp.verify_token(bytes(token), issuer.key, challenge=CHALLENGE)
