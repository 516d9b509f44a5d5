"""Oblivious HTTP (RFC 9458): Appendix A byte for byte, key configurations, gateway refusals,
single-use contexts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from attest.formats import ohttp as fmt
from attest.formats.ohttp import KeyConfig, SymmetricSuite
from attest.private.errors import DecryptError
from attest.private.hpke import PrivateKey
from attest.private.ohttp import (
    ClientRequest,
    Gateway,
    GatewayKey,
    encapsulate_request,
    request_info,
    response_key_nonce,
)
from transparency_log.common.errors import FormatError

A = json.loads((Path(__file__).parent / "vectors" / "rfc" / "rfc9458-appendix-a.json").read_text())
x = bytes.fromhex
AES = SymmetricSuite(1, 1)
CHACHA = SymmetricSuite(1, 3)


def _fixed(value: bytes):
    def rng(n: int) -> bytes:
        assert n == len(value)
        return value
    return rng


def _key(seed: int, key_id: int = 1, suites=(AES, CHACHA)) -> GatewayKey:
    return GatewayKey(key_id, PrivateKey(bytes([seed]) * 32), suites)


# ---------------------------------------------------------------- RFC 9458 Appendix A


def test_appendix_a_key_config() -> None:
    config = fmt.decode_key_config(x(A["key_config"]))
    assert config == KeyConfig(1, 0x20, PrivateKey(x(A["gateway_secret_key"])).public_bytes(),
                               (AES, CHACHA))
    key = GatewayKey(1, PrivateKey(x(A["gateway_secret_key"])), (AES, CHACHA))
    assert fmt.encode_key_config(key.config()) == x(A["key_config"])


def test_appendix_a_request_byte_for_byte() -> None:
    config = fmt.decode_key_config(x(A["key_config"]))
    assert PrivateKey(x(A["ephemeral_secret_key"])).public_bytes().hex() == \
        A["ephemeral_public_key"]
    assert request_info(fmt.RequestHeader(1, 0x20, 1, 1)).hex() == A["info"]
    enc_request, _ = encapsulate_request(config, x(A["request"]),
                                         rng=_fixed(x(A["ephemeral_secret_key"])))
    assert enc_request.hex() == A["encapsulated_request"]


def test_appendix_a_response_byte_for_byte() -> None:
    gateway = Gateway([GatewayKey(1, PrivateKey(x(A["gateway_secret_key"])), (AES, CHACHA))])
    request, server = gateway.decapsulate(x(A["encapsulated_request"]))
    assert request == x(A["request"])
    enc_response = server.encapsulate(x(A["response"]), rng=_fixed(x(A["response_nonce"])))
    assert enc_response.hex() == A["encapsulated_response"]


def test_appendix_a_response_keys() -> None:
    from attest.private.hpke import suite
    key, nonce = response_key_nonce(suite(0x20, 1, 1), x(A["response_secret"]),
                                    x(A["ephemeral_public_key"]), x(A["response_nonce"]))
    assert (key.hex(), nonce.hex()) == (A["aead_key"], A["aead_nonce"])


def test_appendix_a_client_opens_the_response() -> None:
    config = fmt.decode_key_config(x(A["key_config"]))
    _, client = encapsulate_request(config, x(A["request"]),
                                    rng=_fixed(x(A["ephemeral_secret_key"])))
    assert client.decapsulate(x(A["encapsulated_response"])) == x(A["response"])


# ---------------------------------------------------------------- key configurations


def _config_bytes(key_id: int, kem_id: int, pk: bytes, pairs: bytes) -> bytes:
    return (bytes([key_id]) + kem_id.to_bytes(2, "big") + pk + len(pairs).to_bytes(2, "big")
            + pairs)


def _listed(*configs: bytes) -> bytes:
    return b"".join(len(c).to_bytes(2, "big") + c for c in configs)


def test_key_config_list_round_trip() -> None:
    configs = (_key(5, 1).config(), _key(6, 2, (CHACHA,)).config())
    assert fmt.decode_key_config_list(fmt.encode_key_config_list(configs)) == configs


def test_key_config_list_skips_only_unsupported() -> None:
    good = fmt.encode_key_config(_key(5).config())
    p256 = _config_bytes(7, 0x0010, b"\x04" + bytes(64), b"\x00\x01\x00\x01")  # unknown KEM
    aes256_only = _config_bytes(8, 0x20, bytes(32), b"\x00\x01\x00\x02")  # no usable pair
    assert fmt.decode_key_config_list(_listed(p256, good, aes256_only)) == (_key(5).config(),)
    with pytest.raises(FormatError) as exc:
        fmt.decode_key_config_list(_listed(p256, aes256_only))
    assert exc.value.check == "ohttp.format" and exc.value.field == "application/ohttp-keys"


@pytest.mark.parametrize("bad", [
    "suites length 0", "suites length 3", "leftover byte", "short key", "truncated list",
    "empty list"])
def test_key_config_list_refuses_malformed(bad: str) -> None:
    good = fmt.encode_key_config(_key(5).config())
    pk = _key(5).config().public_key
    body = {
        "suites length 0": _listed(good, _config_bytes(2, 0x20, pk, b"")),
        "suites length 3": _listed(good, _config_bytes(2, 0x20, pk, b"\x00\x01\x00")),
        "leftover byte": _listed(good, good + b"\x00"),
        "short key": _listed(good, _config_bytes(2, 0x20, pk[:31], b"\x00\x01\x00\x01")),
        "truncated list": _listed(good)[:-1],
        "empty list": b"",
    }[bad]
    with pytest.raises(FormatError) as exc:
        fmt.decode_key_config_list(body)
    assert exc.value.check == "ohttp.format", bad


# ---------------------------------------------------------------- the gateway's refusals


@pytest.mark.parametrize("symmetric", [AES, CHACHA], ids=["aes128gcm", "chacha20poly1305"])
def test_round_trip_both_suites(symmetric: SymmetricSuite) -> None:
    key = _key(9)
    enc_request, client = encapsulate_request(key.config(), b"\x00request", rng=os.urandom,
                                              symmetric=symmetric)
    request, server = Gateway([key]).decapsulate(enc_request)
    assert request == b"\x00request"
    assert client.decapsulate(server.encapsulate(b"\x01answer", rng=os.urandom)) == b"\x01answer"


def test_fresh_encapsulation_each_time() -> None:
    config = _key(9).config()
    a, _ = encapsulate_request(config, b"same", rng=os.urandom)
    b, _ = encapsulate_request(config, b"same", rng=os.urandom)
    assert a[:7] == b[:7] and a[7:] != b[7:]


def test_request_to_another_nodes_key_fails_at_decrypt() -> None:
    node_a, node_b = _key(1), _key(2)  # same key id, different keys
    enc_request, _ = encapsulate_request(node_a.config(), b"for A", rng=os.urandom)
    with pytest.raises(DecryptError) as exc:
        Gateway([node_b]).decapsulate(enc_request)
    assert str(exc.value) == "ohttp.decrypt: cannot decrypt"


def test_unknown_key_id_refused_before_crypto() -> None:
    enc_request, _ = encapsulate_request(_key(1, key_id=7).config(), b"r", rng=os.urandom)
    with pytest.raises(FormatError) as exc:
        Gateway([_key(1, key_id=3)]).decapsulate(enc_request)
    assert exc.value.check == "ohttp.key_id" and exc.value.field == "Key Identifier"


def test_suite_not_offered_for_the_key_is_refused() -> None:
    enc_request, _ = encapsulate_request(_key(1).config(), b"r", rng=os.urandom,
                                         symmetric=CHACHA)
    with pytest.raises(FormatError) as exc:
        Gateway([_key(1, suites=(AES,))]).decapsulate(enc_request)
    assert exc.value.check == "ohttp.suite"
    with pytest.raises(FormatError) as exc:
        ClientRequest(_key(1, suites=(AES,)).config(), symmetric=CHACHA)
    assert exc.value.check == "ohttp.suite"


def test_every_tampered_request_byte_is_refused() -> None:
    key = _key(4)
    enc_request, _ = encapsulate_request(key.config(), b"hello", rng=os.urandom)
    gateway = Gateway([key])
    for i in range(len(enc_request)):
        bad = bytearray(enc_request)
        bad[i] ^= 0x01
        with pytest.raises((FormatError, DecryptError)) as exc:
            gateway.decapsulate(bytes(bad))
        want = {0: "ohttp.key_id"}.get(i, "ohttp.format" if i < 7 else "ohttp.decrypt")
        assert exc.value.check == want, i


@pytest.mark.parametrize("cut", [0, 1, 6, 7, 38, 38 + 15])
def test_truncated_request_is_a_format_error(cut: int) -> None:
    key = _key(4)
    enc_request, _ = encapsulate_request(key.config(), b"", rng=os.urandom)
    assert len(enc_request) == 7 + 32 + 16
    with pytest.raises(FormatError) as exc:
        Gateway([key]).decapsulate(enc_request[:cut])
    assert exc.value.check == "ohttp.format"


def test_tampered_or_foreign_response_is_refused_by_the_client() -> None:
    key = _key(4)
    gateway = Gateway([key])
    r1, c1 = encapsulate_request(key.config(), b"one", rng=os.urandom)
    _, c2 = encapsulate_request(key.config(), b"two", rng=os.urandom)
    s1 = gateway.decapsulate(r1)[1]
    resp1 = s1.encapsulate(b"answer one", rng=os.urandom)
    with pytest.raises(DecryptError):
        c2.decapsulate(resp1)  # the answer to another request
    flipped = bytearray(resp1)
    flipped[3] ^= 0x80  # in the response nonce
    with pytest.raises(DecryptError):
        c1.decapsulate(bytes(flipped))
    _, c3 = encapsulate_request(key.config(), b"three", rng=os.urandom)
    with pytest.raises(FormatError) as exc:
        c3.decapsulate(resp1[: 16 + 15])
    assert exc.value.check == "ohttp.format"


def test_contexts_are_single_use() -> None:
    key = _key(4)
    request = ClientRequest(key.config())
    enc_request, client = request.encapsulate(b"r", rng=os.urandom)
    with pytest.raises(RuntimeError):
        request.encapsulate(b"r", rng=os.urandom)
    _, server = Gateway([key]).decapsulate(enc_request)
    enc_response = server.encapsulate(b"a", rng=os.urandom)
    with pytest.raises(RuntimeError):
        server.encapsulate(b"b", rng=os.urandom)
    assert client.decapsulate(enc_response) == b"a"
    with pytest.raises(RuntimeError):
        client.decapsulate(enc_response)
